package org.i2vadapter.core;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small strict JSON reader (RFC 8259): objects become {@code LinkedHashMap<String, Object>}, arrays
 * {@code ArrayList<Object>}, strings {@code String}, integers without fraction or exponent {@code Long},
 * other numbers {@code Double}, {@code true}/{@code false} {@code Boolean}, and {@code null} {@link #NULL}.
 *
 * <p>The phone has no JSON library in this core (Android's org.json is not on a plain JVM), and the
 * manifest, vocabulary and golden vectors are all JSON. Errors name the position and what was expected.
 */
public final class Json {
    /** The JSON {@code null} value (a map never holds Java null, so absent and null differ). */
    public static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };

    private final String text;
    private int pos;

    private Json(String text) {
        this.text = text;
    }

    /** Parse one JSON document; trailing non-whitespace is an error. */
    public static Object parse(String text) {
        Json p = new Json(text);
        p.skipSpace();
        Object value = p.value();
        p.skipSpace();
        if (p.pos != text.length()) {
            throw p.error("end of document");
        }
        return value;
    }

    /** Parse a UTF-8 JSON file. */
    public static Object parse(File file) throws IOException {
        return parse(new String(Files.readAllBytes(file.toPath()), StandardCharsets.UTF_8));
    }

    private IllegalArgumentException error(String expected) {
        String found = pos < text.length() ? "'" + text.charAt(pos) + "'" : "end of input";
        return new IllegalArgumentException("JSON: expected " + expected + " at offset " + pos + ", found " + found);
    }

    private void skipSpace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            pos++;
        }
    }

    private Object value() {
        if (pos >= text.length()) {
            throw error("a value");
        }
        char c = text.charAt(pos);
        switch (c) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", NULL);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw error("a value");
        }
    }

    private Object literal(String word, Object value) {
        if (!text.startsWith(word, pos)) {
            throw error("'" + word + "'");
        }
        pos += word.length();
        return value;
    }

    private Map<String, Object> object() {
        Map<String, Object> out = new LinkedHashMap<>();
        pos++; // '{'
        skipSpace();
        if (peek('}')) {
            pos++;
            return out;
        }
        while (true) {
            skipSpace();
            if (!peek('"')) {
                throw error("a string key");
            }
            String key = string();
            skipSpace();
            expect(':');
            skipSpace();
            out.put(key, value());
            skipSpace();
            if (peek(',')) {
                pos++;
            } else {
                expect('}');
                return out;
            }
        }
    }

    private List<Object> array() {
        List<Object> out = new ArrayList<>();
        pos++; // '['
        skipSpace();
        if (peek(']')) {
            pos++;
            return out;
        }
        while (true) {
            skipSpace();
            out.add(value());
            skipSpace();
            if (peek(',')) {
                pos++;
            } else {
                expect(']');
                return out;
            }
        }
    }

    private boolean peek(char c) {
        return pos < text.length() && text.charAt(pos) == c;
    }

    private void expect(char c) {
        if (!peek(c)) {
            throw error("'" + c + "'");
        }
        pos++;
    }

    private String string() {
        pos++; // opening quote
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (pos >= text.length()) {
                throw error("'\"' closing the string");
            }
            char c = text.charAt(pos++);
            if (c == '"') {
                return sb.toString();
            }
            if (c < 0x20) {
                pos--;
                throw error("no control character inside a string");
            }
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            if (pos >= text.length()) {
                throw error("an escape character");
            }
            char e = text.charAt(pos++);
            switch (e) {
                case '"': sb.append('"'); break;
                case '\\': sb.append('\\'); break;
                case '/': sb.append('/'); break;
                case 'b': sb.append('\b'); break;
                case 'f': sb.append('\f'); break;
                case 'n': sb.append('\n'); break;
                case 'r': sb.append('\r'); break;
                case 't': sb.append('\t'); break;
                case 'u': sb.append(hex4()); break;
                default:
                    pos--;
                    throw error("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
            }
        }
    }

    private char hex4() {
        if (pos + 4 > text.length()) {
            throw error("4 hex digits");
        }
        int v = 0;
        for (int i = 0; i < 4; i++) {
            int d = Character.digit(text.charAt(pos), 16);
            if (d < 0) {
                throw error("a hex digit");
            }
            v = v * 16 + d;
            pos++;
        }
        return (char) v; // surrogate pairs arrive as two escapes and join in the StringBuilder
    }

    private Object number() {
        int start = pos;
        boolean integer = true;
        if (peek('-')) {
            pos++;
        }
        if (peek('0')) {
            pos++;
        } else if (!digits()) {
            throw error("a digit");
        }
        if (peek('.')) {
            integer = false;
            pos++;
            if (!digits()) {
                throw error("a digit after '.'");
            }
        }
        if (peek('e') || peek('E')) {
            integer = false;
            pos++;
            if (peek('+') || peek('-')) {
                pos++;
            }
            if (!digits()) {
                throw error("a digit in the exponent");
            }
        }
        String s = text.substring(start, pos);
        if (integer && s.length() < 19) {
            return Long.parseLong(s);
        }
        return Double.parseDouble(s);
    }

    private boolean digits() {
        int start = pos;
        while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
            pos++;
        }
        return pos > start;
    }

    // ---------------------------------------------------------------- typed access with clear errors

    /** {@code value} as an object; {@code what} names it in the error. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> object(Object value, String what) {
        if (!(value instanceof Map)) {
            throw new IllegalArgumentException("expected " + what + " to be a JSON object, found " + describe(value));
        }
        return (Map<String, Object>) value;
    }

    /** {@code value} as an array. */
    @SuppressWarnings("unchecked")
    public static List<Object> array(Object value, String what) {
        if (!(value instanceof List)) {
            throw new IllegalArgumentException("expected " + what + " to be a JSON array, found " + describe(value));
        }
        return (List<Object>) value;
    }

    /** {@code value} as a number. */
    public static double number(Object value, String what) {
        if (!(value instanceof Number)) {
            throw new IllegalArgumentException("expected " + what + " to be a number, found " + describe(value));
        }
        return ((Number) value).doubleValue();
    }

    /** {@code value} as a whole number that fits an int. */
    public static int integer(Object value, String what) {
        if (!(value instanceof Long) || (Long) value != (int) (long) (Long) value) {
            throw new IllegalArgumentException("expected " + what + " to be an integer, found " + describe(value));
        }
        return (int) (long) (Long) value;
    }

    /** {@code value} as a string. */
    public static String string(Object value, String what) {
        if (!(value instanceof String)) {
            throw new IllegalArgumentException("expected " + what + " to be a string, found " + describe(value));
        }
        return (String) value;
    }

    /** {@code value} as a boolean. */
    public static boolean bool(Object value, String what) {
        if (!(value instanceof Boolean)) {
            throw new IllegalArgumentException("expected " + what + " to be true or false, found " + describe(value));
        }
        return (Boolean) value;
    }

    /** An array of numbers as float32 values. */
    public static float[] floats(Object value, String what) {
        List<Object> list = array(value, what);
        float[] out = new float[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) number(list.get(i), what + "[" + i + "]");
        }
        return out;
    }

    /** An array of whole numbers as ints. */
    public static int[] ints(Object value, String what) {
        List<Object> list = array(value, what);
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = integer(list.get(i), what + "[" + i + "]");
        }
        return out;
    }

    /** A member of an object that must be present. */
    public static Object member(Map<String, Object> obj, String key, String what) {
        if (!obj.containsKey(key)) {
            throw new IllegalArgumentException("expected a '" + key + "' entry in " + what + ", not found");
        }
        return obj.get(key);
    }

    static String describe(Object value) {
        if (value == null) {
            return "nothing";
        }
        if (value instanceof Map) {
            return "an object";
        }
        if (value instanceof List) {
            return "an array";
        }
        if (value instanceof String) {
            String s = (String) value;
            return "the string \"" + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "\"";
        }
        return String.valueOf(value);
    }

    /** {@code s} as a JSON string literal (quotes and escapes), for writers such as the tests' vocab file. */
    public static String quote(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.append('"').toString();
    }
}
