package org.i2vadapter.core;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * CLIP byte-level BPE tokenizer, twin of {@code i2v_core.tokenizer.CLIPTokenizer}: NFC, whitespace runs
 * to one space, lower case; CLIP's pre-token pattern; bytes mapped to printable characters; merges by
 * rank; {@code encode} gives 77 ids: start, tokens, end, end-token padding.
 *
 * <p>Reads a bundle's {@code vocab.json} + {@code merges.txt} ({@link #fromFiles}) or CLIP's
 * {@code bpe_simple_vocab_16e6.txt.gz} ({@link #fromBpeGz}).
 */
public final class ClipTokenizer {
    public static final String BOS = "<|startoftext|>";
    public static final String EOS = "<|endoftext|>";
    public static final int MAX_LENGTH = 77;
    static final int NUM_MERGES = 49152 - 256 - 2;

    /** Python's {@code \s} for str patterns (the `regex` module's Unicode white space), spelled out
     * because Java's {@code \s} is ASCII-only by default and Android's regex flags differ. */
    private static final String WS = "\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
    private static final Pattern SPLIT = Pattern.compile(
            "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^" + WS + "\\p{L}\\p{N}]+");
    private static final Pattern WHITESPACE = Pattern.compile("[" + WS + "]+");

    private final Map<String, Integer> vocab;
    private final Map<String, Integer> ranks = new HashMap<>();
    private final char[] byteChars = byteToUnicode();
    private final Map<String, List<String>> cache = new HashMap<>();
    public final int bosId;
    public final int eosId;

    public ClipTokenizer(Map<String, Integer> vocab, List<String[]> merges) {
        for (String special : new String[] {BOS, EOS}) {
            if (!vocab.containsKey(special)) {
                throw new IllegalArgumentException("expected special token '" + special + "' in the vocabulary, not found");
            }
        }
        this.vocab = vocab;
        for (int i = 0; i < merges.size(); i++) {
            String[] pair = merges.get(i);
            ranks.put(pair[0] + " " + pair[1], i); // a repeated pair keeps its last rank, as a Python dict
        }
        bosId = vocab.get(BOS);
        eosId = vocab.get(EOS);
    }

    public int vocabSize() {
        return vocab.size();
    }

    /**
     * The reversible byte -> character map of GPT-2 / CLIP byte-level BPE: printable Latin-1 bytes map to
     * themselves, the others to code points from 256 up, in byte order.
     */
    static char[] byteToUnicode() {
        char[] table = new char[256];
        boolean[] printable = new boolean[256];
        for (int b = 0; b < 256; b++) {
            printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        }
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            table[b] = printable[b] ? (char) b : (char) (256 + extra++);
        }
        return table;
    }

    /** The vocabulary order of the byte symbols: printable bytes first, then the others. */
    private static List<String> byteSymbols() {
        char[] table = byteToUnicode();
        List<String> out = new ArrayList<>();
        for (int pass = 0; pass < 2; pass++) {
            for (int b = 0; b < 256; b++) {
                if ((table[b] == (char) b) == (pass == 0)) {
                    out.add(String.valueOf(table[b]));
                }
            }
        }
        return out;
    }

    /** Read {@code vocab.json} and {@code merges.txt} (a bundle's {@code tokenizer/} folder). */
    public static ClipTokenizer fromFiles(File vocabJson, File mergesTxt) throws IOException {
        Map<String, Object> raw = Json.object(Json.parse(vocabJson), vocabJson.getName());
        Map<String, Integer> vocab = new HashMap<>(raw.size() * 2);
        for (Map.Entry<String, Object> e : raw.entrySet()) {
            vocab.put(e.getKey(), Json.integer(e.getValue(), "the id of '" + e.getKey() + "'"));
        }
        String text = new String(Files.readAllBytes(mergesTxt.toPath()), StandardCharsets.UTF_8);
        List<String[]> merges = new ArrayList<>();
        for (String line : text.split("\n", -1)) {
            if (line.isEmpty() || line.startsWith("#version")) {
                continue;
            }
            String[] pair = line.trim().split("\\s+");
            if (pair.length != 2) {
                throw new IOException(mergesTxt + ": expected two symbols per merge line, got '" + line + "'");
            }
            merges.add(pair);
        }
        return new ClipTokenizer(vocab, merges);
    }

    /** Build vocabulary and merges from CLIP's gzipped merges file, as Python's {@code from_bpe_file}. */
    public static ClipTokenizer fromBpeGz(File gz) throws IOException {
        String text;
        try (InputStream in = new GZIPInputStream(new FileInputStream(gz))) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            byte[] chunk = new byte[1 << 16];
            for (int n; (n = in.read(chunk)) > 0; ) {
                buf.write(chunk, 0, n);
            }
            text = new String(buf.toByteArray(), StandardCharsets.UTF_8);
        }
        String[] lines = text.split("\n", -1);
        List<String[]> merges = new ArrayList<>();
        for (int i = 1; i <= NUM_MERGES && i < lines.length; i++) {
            merges.add(lines[i].trim().split("\\s+"));
        }
        List<String> symbols = byteSymbols();
        int bytes = symbols.size();
        for (int i = 0; i < bytes; i++) {
            symbols.add(symbols.get(i) + "</w>");
        }
        for (String[] pair : merges) {
            symbols.add(pair[0] + pair[1]);
        }
        symbols.add(BOS);
        symbols.add(EOS);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int i = 0; i < symbols.size(); i++) {
            vocab.put(symbols.get(i), i);
        }
        return new ClipTokenizer(vocab, merges);
    }

    /** transformers' CLIP normaliser: NFC, whitespace runs to one space, lower case. */
    public static String normalize(String text) {
        String nfc = Normalizer.normalize(text, Normalizer.Form.NFC);
        return WHITESPACE.matcher(nfc).replaceAll(" ").toLowerCase(Locale.ROOT);
    }

    /** Merge one byte-mapped pre-token into vocabulary symbols, lowest rank first. */
    List<String> bpe(String word) {
        List<String> cached = cache.get(word);
        if (cached != null) {
            return cached;
        }
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < word.length() - 1; i++) {
            parts.add(String.valueOf(word.charAt(i)));
        }
        parts.add(word.charAt(word.length() - 1) + "</w>");
        while (parts.size() > 1) {
            int bestRank = Integer.MAX_VALUE;
            String bestA = null, bestB = null;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer r = ranks.get(parts.get(i) + " " + parts.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    bestA = parts.get(i);
                    bestB = parts.get(i + 1);
                }
            }
            if (bestA == null) {
                break;
            }
            List<String> merged = new ArrayList<>();
            for (int i = 0; i < parts.size(); ) {
                if (i + 1 < parts.size() && parts.get(i).equals(bestA) && parts.get(i + 1).equals(bestB)) {
                    merged.add(bestA + bestB);
                    i += 2;
                } else {
                    merged.add(parts.get(i));
                    i += 1;
                }
            }
            parts = merged;
        }
        cache.put(word, parts);
        return parts;
    }

    /** Ids of {@code text} without start/end tokens and without truncation. */
    public List<Integer> tokenize(String text) {
        List<Integer> ids = new ArrayList<>();
        Matcher m = SPLIT.matcher(normalize(text));
        while (m.find()) {
            String piece = m.group();
            if (piece.equals(BOS) || piece.equals(EOS)) {
                ids.add(vocab.get(piece));
                continue;
            }
            StringBuilder word = new StringBuilder();
            for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
                word.append(byteChars[b & 0xff]);
            }
            for (String symbol : bpe(word.toString())) {
                Integer id = vocab.get(symbol);
                if (id == null) {
                    throw new IllegalStateException("BPE symbol '" + symbol + "' is not in the vocabulary");
                }
                ids.add(id);
            }
        }
        return ids;
    }

    /** 77 ids: start, tokens (truncated to 75 with {@code truncate}, else refused), end, end padding. */
    public int[] encode(String text, boolean truncate) {
        List<Integer> ids = tokenize(text);
        int room = MAX_LENGTH - 2;
        if (ids.size() > room) {
            if (!truncate) {
                throw new IllegalArgumentException("prompt is " + ids.size() + " tokens, the text encoder takes at most "
                        + room + " (" + MAX_LENGTH + " with start and end tokens)");
            }
            ids = ids.subList(0, room);
        }
        int[] out = new int[MAX_LENGTH];
        java.util.Arrays.fill(out, eosId);
        out[0] = bosId;
        for (int i = 0; i < ids.size(); i++) {
            out[i + 1] = ids.get(i);
        }
        out[ids.size() + 1] = eosId;
        return out;
    }

    /** {@link #encode(String, boolean)} with truncation, as the pipeline uses it. */
    public int[] encode(String text) {
        return encode(text, true);
    }
}
