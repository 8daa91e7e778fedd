package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.File;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class TokenizerTest {
    static ClipTokenizer full;
    static Map<String, Object> golden;

    @BeforeAll
    static void load() throws Exception {
        full = ClipTokenizer.fromBpeGz(Golden.bpeFile());
        golden = Golden.load("tokenizer.json");
    }

    @Test
    void vocabularyIsSd15s() {
        assertEquals(Json.integer(golden.get("vocab_size"), "vocab_size"), full.vocabSize());
        assertEquals(49406, full.bosId);
        assertEquals(49407, full.eosId);
    }

    @Test
    void idsMatchPythonOnTheTextSet() {
        List<Object> cases = Golden.list(golden.get("cases"));
        assertEquals(14, cases.size());
        for (Object c : cases) {
            Map<String, Object> m = Golden.obj(c);
            String text = Json.string(m.get("text"), "text");
            assertArrayEquals(Json.ints(m.get("ids"), "ids"), full.encode(text), "ids of \"" + text + "\"");
            assertEquals(Json.integer(m.get("num_tokens"), "num_tokens"), full.tokenize(text).size(), "count of \"" + text + "\"");
        }
    }

    @Test
    void longPromptsTruncateOrAreRefused() {
        Map<String, Object> last = Golden.obj(Golden.list(golden.get("cases")).get(13));
        String text = Json.string(last.get("text"), "text");
        int[] ids = full.encode(text);
        assertEquals(full.eosId, ids[76]);
        assertEquals(101, full.tokenize(text).size());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> full.encode(text, false));
        assertEquals("prompt is 101 tokens, the text encoder takes at most 75 (77 with start and end tokens)", e.getMessage());
    }

    @Test
    void bundleFilesReadBack() throws Exception {
        File dir = new File(Golden.bundle(), "tokenizer");
        ClipTokenizer mini = ClipTokenizer.fromFiles(new File(dir, "vocab.json"), new File(dir, "merges.txt"));
        assertEquals(256 * 2 + 300 + 2, mini.vocabSize());
        Map<String, Object> pipeline = Golden.load("pipeline.json");
        List<Object> ids = Golden.list(pipeline.get("prompt_ids"));
        assertArrayEquals(Json.ints(ids.get(0), "ids"), mini.encode(""));
        assertArrayEquals(Json.ints(ids.get(1), "ids"), mini.encode(Json.string(pipeline.get("prompt"), "prompt")));
    }

    @Test
    void normalisationFollowsTransformers() {
        assertEquals("a b c", ClipTokenizer.normalize("A \t\n\u00a0 B\u3000C"));
        assertEquals("caf\u00e9", ClipTokenizer.normalize("CAFE\u0301"));
    }
}
