package org.i2vadapter.core;

import java.util.Arrays;

/**
 * A named stage's buffer: a row-major (C order) float32 array and its static shape.
 *
 * <p>Every stage input and output is passed as a float buffer, as the {@link StageRunner} contract says;
 * integer tensors (the text encoder's {@code input_ids}) hold whole numbers, exact in float32 below
 * 2^24 (the CLIP vocabulary has 49,408 ids), and the runner writes them as int32.
 */
public final class Tensor {
    private final int[] shape;
    private final float[] data;

    /** Wraps {@code data} (not copied); its length must be the product of {@code shape}. */
    public Tensor(int[] shape, float[] data) {
        long n = numel(shape);
        if (n != data.length) {
            throw new IllegalArgumentException(
                    "expected " + n + " values for shape " + shapeString(shape) + ", got " + data.length);
        }
        this.shape = shape.clone();
        this.data = data;
    }

    /** A zero tensor of {@code shape}. */
    public static Tensor zeros(int... shape) {
        return new Tensor(shape, new float[(int) numel(shape)]);
    }

    /** Number of elements of a shape; every dimension must be >= 1. */
    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 1) {
                throw new IllegalArgumentException("expected positive dimensions, got shape " + shapeString(shape));
            }
            n *= d;
        }
        return n;
    }

    /** A shape as Python writes a tuple: {@code (2, 4, 16, 32, 32)}, {@code (1,)}. */
    public static String shapeString(int[] shape) {
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            sb.append(i > 0 ? ", " : "").append(shape[i]);
        }
        return sb.append(shape.length == 1 ? ",)" : ")").toString();
    }

    public int[] shape() {
        return shape.clone();
    }

    public int dim(int axis) {
        return shape[axis];
    }

    public int rank() {
        return shape.length;
    }

    /** The backing array (not a copy). */
    public float[] data() {
        return data;
    }

    public int size() {
        return data.length;
    }

    public Tensor copy() {
        return new Tensor(shape, data.clone());
    }

    public boolean hasShape(int... expected) {
        return Arrays.equals(shape, expected);
    }

    /** Throw naming {@code what}, the expected and the found shape, unless the shape is {@code expected}. */
    public void requireShape(String what, int... expected) {
        if (!hasShape(expected)) {
            throw new IllegalArgumentException(
                    "expected " + what + " of shape " + shapeString(expected) + ", got " + shapeString(shape));
        }
    }

    @Override
    public String toString() {
        return "Tensor" + shapeString(shape);
    }
}
