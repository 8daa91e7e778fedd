package org.i2vadapter.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The deterministic float32 stand-in stages of {@code make_golden.py} ({@code stand_in_stages}), same
 * formulas, same order of operations; records every call and release for the tests.
 */
final class StandInStages implements StageRunner {
    final List<String> events = new ArrayList<>();
    private final int textWidth;

    StandInStages(int textWidth) {
        this.textWidth = textWidth;
    }

    @Override
    public Map<String, Tensor> run(String stage, Map<String, Tensor> in) {
        events.add("run " + stage);
        switch (stage) {
            case "text_encoder":
                return Collections.singletonMap("last_hidden_state", text(in.get("input_ids")));
            case "vae_encoder":
                return Collections.singletonMap("latent", encode(in.get("image")));
            case "unet":
                return Collections.singletonMap("noise_pred",
                        unet(in.get("sample"), in.get("timestep"), in.get("encoder_hidden_states")));
            case "vae_decoder":
                return Collections.singletonMap("image", decode(in.get("latent")));
            default:
                throw new IllegalArgumentException("no stand-in for " + stage);
        }
    }

    @Override
    public void release(String stage) {
        events.add("release " + stage);
    }

    /** {@code (ids % 97) / 97 * (j + 1) / D}: {@code (1, 77)} -> {@code (1, 77, D)}. */
    private Tensor text(Tensor ids) {
        int n = ids.dim(1), d = textWidth;
        float[] out = new float[n * d];
        for (int i = 0; i < n; i++) {
            float v = (float) ((int) ids.data()[i] % 97) / 97f;
            for (int j = 0; j < d; j++) {
                out[i * d + j] = v * (((float) j + 1f) / (float) d);
            }
        }
        return new Tensor(new int[] {1, n, d}, out);
    }

    /** Every 8th pixel of channel {@code c % 3} times {@code 0.5 + 0.125 c}: {@code (1, 3, H, W)} -> {@code (1, 4, H/8, W/8)}. */
    private static Tensor encode(Tensor image) {
        int hh = image.dim(2), ww = image.dim(3), h = hh / 8, w = ww / 8;
        float[] out = new float[4 * h * w];
        for (int c = 0; c < 4; c++) {
            float factor = 0.5f + 0.125f * (float) c;
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    out[(c * h + y) * w + x] = image.data()[((c % 3) * hh + 8 * y) * ww + 8 * x] * factor;
                }
            }
        }
        return new Tensor(new int[] {1, 4, h, w}, out);
    }

    /** {@code 0.25 x + 0.001 t + states[b, 1, c]} over {@code (2, 4, F, h, w)}. */
    private static Tensor unet(Tensor sample, Tensor timestep, Tensor states) {
        int[] s = sample.shape();
        int per = s[2] * s[3] * s[4], d = states.dim(2), n = states.dim(1);
        float tt = timestep.data()[0] * 0.001f;
        float[] out = new float[sample.size()];
        for (int b = 0; b < 2; b++) {
            for (int c = 0; c < 4; c++) {
                float e = states.data()[(b * n + 1) * d + c];
                int base = (b * 4 + c) * per;
                for (int i = 0; i < per; i++) {
                    out[base + i] = sample.data()[base + i] * 0.25f + tt + e;
                }
            }
        }
        return new Tensor(s, out);
    }

    /** Nearest x8 upsampling of channels 0..2, times 0.5: {@code (1, 4, h, w)} -> {@code (1, 3, 8h, 8w)}. */
    private static Tensor decode(Tensor latent) {
        int h = latent.dim(2), w = latent.dim(3), hh = 8 * h, ww = 8 * w;
        float[] out = new float[3 * hh * ww];
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < hh; y++) {
                for (int x = 0; x < ww; x++) {
                    out[(c * hh + y) * ww + x] = latent.data()[(c * h + y / 8) * w + x / 8] * 0.5f;
                }
            }
        }
        return new Tensor(new int[] {1, 3, hh, ww}, out);
    }
}
