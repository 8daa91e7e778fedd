package org.i2vadapter.core;

import java.io.File;
import java.util.Arrays;

/**
 * {@code java -cp core.jar org.i2vadapter.core.BundleCheck BUNDLE [PROMPT]}: load and verify a bundle as
 * the app does (manifest, stage contract, every file's sha256, every {@code .tflite} file's declared inputs and
 * outputs against the contract, tokenizer), print its stages, and the ids of {@code PROMPT}. Exit status 0 when the bundle is usable, 1 with one {@code error:} line otherwise.
 */
public final class BundleCheck {
    private BundleCheck() {}

    public static void main(String[] args) {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: BundleCheck BUNDLE_DIR [PROMPT]");
            System.exit(2);
        }
        try {
            Manifest m = Manifest.load(new File(args[0]));
            m.verifyFiles();
            m.checkModels("tflite", m.tfliteSignature());
            System.out.println("bundle " + m.directory() + ": preset " + m.presetName() + ", " + m.numFrames() + " frames");
            for (StageSpec s : m.stages().values()) {
                StringBuilder sb = new StringBuilder("  " + s.name + ":");
                for (StageSpec.TensorSpec t : s.inputs) {
                    sb.append(' ').append(t.name).append(Tensor.shapeString(t.shape()));
                }
                sb.append(" ->");
                for (StageSpec.TensorSpec t : s.outputs) {
                    sb.append(' ').append(t.name).append(Tensor.shapeString(t.shape()));
                }
                System.out.println(sb + "  targets " + m.targets(s.name));
            }
            ClipTokenizer tokenizer = ClipTokenizer.fromFiles(m.tokenizerFile("vocab.json"), m.tokenizerFile("merges.txt"));
            System.out.println("tokenizer: " + tokenizer.vocabSize() + " symbols");
            if (args.length == 2) {
                System.out.println("ids: " + Arrays.toString(tokenizer.encode(args[1])));
            }
        } catch (Exception e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
