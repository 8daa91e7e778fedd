package org.i2vadapter.core;

/** An 8-bit RGB image, rows top to bottom, pixels interleaved {@code r, g, b} ({@code (H, W, 3)} uint8). */
public final class RgbImage {
    public final int width;
    public final int height;
    private final byte[] rgb;

    public RgbImage(int width, int height, byte[] rgb) {
        if (width < 1 || height < 1 || rgb.length != width * height * 3) {
            throw new IllegalArgumentException("expected an RGB image of shape (" + height + ", " + width + ", 3) = "
                    + (long) width * height * 3 + " bytes, got " + rgb.length);
        }
        this.width = width;
        this.height = height;
        this.rgb = rgb;
    }

    /** The backing bytes (not a copy). */
    public byte[] bytes() {
        return rgb;
    }

    /** Channel value 0..255 of pixel index {@code i} (row-major) and channel {@code c}. */
    public int get(int i, int c) {
        return rgb[i * 3 + c] & 0xff;
    }

    public int pixels() {
        return width * height;
    }

    public boolean sameSize(RgbImage other) {
        return width == other.width && height == other.height;
    }

    /** {@code (H, W, 3)} uint8 -> {@code (1, 3, H, W)} float32 in [-1, 1] (the {@code vae_encoder} input). */
    public Tensor toUnitRange() {
        int n = pixels();
        float[] out = new float[3 * n];
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < n; i++) {
                out[c * n + i] = (float) get(i, c) / 127.5f - 1f;
            }
        }
        return new Tensor(new int[] {1, 3, height, width}, out);
    }

    /** {@code (1, 3, H, W)} float in about [-1, 1] -> uint8 RGB: {@code round(clip(x / 2 + 0.5, 0, 1) * 255)}. */
    public static RgbImage fromUnitRange(Tensor image) {
        if (image.rank() != 4 || image.dim(0) != 1 || image.dim(1) != 3) {
            throw new IllegalArgumentException("expected a decoded image of shape (1, 3, H, W), got "
                    + Tensor.shapeString(image.shape()));
        }
        int h = image.dim(2), w = image.dim(3), n = h * w;
        float[] x = image.data();
        byte[] out = new byte[3 * n];
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < n; i++) {
                float v = Math.max(0f, Math.min(1f, x[c * n + i] / 2f + 0.5f));
                out[i * 3 + c] = (byte) (int) Math.rint(v * 255f);
            }
        }
        return new RgbImage(w, h, out);
    }
}
