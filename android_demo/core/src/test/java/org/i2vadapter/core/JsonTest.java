package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
    @Test
    void parsesNestedValues() {
        Map<String, Object> m = Json.object(Json.parse(
                " {\"a\": [1, -2.5e1, 0.125, true, false, null], \"b\": {\"c\": \"x\\ty\\u00e9\\ud83d\\ude00\"}, \"e\": []} "),
                "doc");
        List<Object> a = Json.array(m.get("a"), "a");
        assertEquals(1L, a.get(0));
        assertEquals(-25.0, a.get(1));
        assertEquals(0.125, a.get(2));
        assertEquals(Boolean.TRUE, a.get(3));
        assertEquals(Boolean.FALSE, a.get(4));
        assertSame(Json.NULL, a.get(5));
        assertEquals("x\ty\u00e9\ud83d\ude00", Json.object(m.get("b"), "b").get("c"));
        assertEquals(Arrays.asList("a", "b", "e"), Arrays.asList(m.keySet().toArray()));
        assertTrue(Json.array(m.get("e"), "e").isEmpty());
    }

    @Test
    void floatsRoundTripTheirShortestForm() {
        float[] f = Json.floats(Json.parse("[-1.2345679, 1e-08, 0.1, 3.4028235e+38]"), "f");
        assertEquals(-1.2345679f, f[0]);
        assertEquals(1e-08f, f[1]);
        assertEquals(0.1f, f[2]);
        assertEquals(Float.MAX_VALUE, f[3]);
    }

    @Test
    void rejectsMalformedDocumentsWithThePosition() {
        for (String bad : new String[] {"[1, 2,]", "{a: 1}", "[01]", "\"abc", "[1] 2", "{\"a\" 1}", "tru", "[\"\\x\"]", "-"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
            assertTrue(e.getMessage().startsWith("JSON: expected "), e.getMessage());
            assertTrue(e.getMessage().contains(" at offset "), e.getMessage());
        }
    }

    @Test
    void typedAccessNamesWhatWasExpected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Json.integer(Json.parse("\"4\""), "preset.config.num_frames"));
        assertEquals("expected preset.config.num_frames to be an integer, found the string \"4\"", e.getMessage());
        assertEquals("\"a\\\"b\\\\c\\u000a\"", Json.quote("a\"b\\c\n"));
        assertEquals("a\"b\\c\n", Json.parse(Json.quote("a\"b\\c\n")));
    }
}
