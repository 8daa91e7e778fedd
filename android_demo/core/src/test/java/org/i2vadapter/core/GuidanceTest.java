package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;
import org.junit.jupiter.api.Test;

class GuidanceTest {
    @Test
    void combinationMatchesRuntimePy() throws Exception {
        Map<String, Object> g = Golden.load("guidance.json");
        Tensor pred = Golden.tensor(g.get("noise_pred"));
        int n = 0;
        for (Object o : Golden.list(g.get("cases"))) {
            Map<String, Object> c = Golden.obj(o);
            double scale = Json.number(c.get("scale"), "scale");
            Golden.assertClose(Golden.tensor(c.get("out")), Guidance.combine(pred, scale), "guidance " + scale);
            n++;
        }
        assertEquals(4, n);
    }

    @Test
    void needsTheUncondCondBatch() {
        assertEquals("expected a guided batch (2, ...) [uncond, cond], got (1, 4, 2)",
                assertThrows(IllegalArgumentException.class, () -> Guidance.combine(Tensor.zeros(1, 4, 2), 7.5)).getMessage());
    }
}
