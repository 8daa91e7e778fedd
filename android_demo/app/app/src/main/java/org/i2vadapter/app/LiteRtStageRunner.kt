package org.i2vadapter.app

import android.content.Context
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.BuiltinNpuAcceleratorProvider
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.Environment
import com.google.ai.edge.litert.TensorBuffer
import com.google.ai.edge.litert.TensorType
import org.i2vadapter.core.BundleException
import org.i2vadapter.core.Manifest
import org.i2vadapter.core.StageRunner
import org.i2vadapter.core.Tensor

/**
 * The core's [StageRunner] on LiteRT's `CompiledModel` API (com.google.ai.edge.litert:litert 2.3.0).
 *
 * Each stage is compiled on its first call, NPU first, then GPU, then CPU, one accelerator per attempt:
 * with `Options(GPU, CPU)` LiteRT may silently run on the CPU, so a single accelerator per try is the
 * only way to know (and show) which one runs. For the NPU, a MediaTek ahead-of-time compiled export
 * (manifest target [NPU_TARGET]) is preferred when the bundle has one; otherwise the plain `.tflite`
 * is compiled on the device. An AOT-compiled file cannot run on the GPU or CPU, so those use the
 * plain `.tflite` of the bundle. A chunked UNet runs its chunks in order over one map of named tensors.
 *
 * [release] closes a stage's compiled models and buffers: the pipeline frees the text and image
 * encoders before the UNet loop and the UNet before decoding, so one large model is resident at a time.
 *
 * Model files are checked against the manifest's stage contract (names, shapes, dtypes) twice: every stage's
 * `.tflite` when the runner is built, from the flatbuffers (core `Manifest.checkModels`, a few pages per file,
 * nothing compiled), so a file of another shape is refused before any stage runs; and each compiled model's own
 * tensor types before its first run, which also covers an NPU-compiled file. A mismatch is a [BundleException]
 * naming the stage, the file, the tensor, the expected and the found; no other accelerator is tried for it.
 *
 * The LiteRT sources cited below (github.com/google-ai-edge/LiteRT, litert/kotlin/src/main/kotlin/com/google/ai/
 * edge/litert/) have these signatures unchanged at tag v2.2.0 and on main as of 2026-08-21.
 */
class LiteRtStageRunner(
    context: Context,
    private val manifest: Manifest,
    private val onCompiled: (stage: String, accelerator: Accelerator) -> Unit,
) : StageRunner, AutoCloseable {

    private val signature: String = manifest.tfliteSignature()

    init {
        // Before the environment exists (nothing to close if it throws) and before any stage is compiled.
        manifest.checkModels("tflite", signature)
    }

    // An environment whose NPU dispatch libraries come from the APK's native library directory.
    // API: Environment.create(NpuAcceleratorProvider) and BuiltinNpuAcceleratorProvider(context), as in
    // LiteRT litert/kotlin/src/main/kotlin/com/google/ai/edge/litert/{Environment,AcceleratorProvider}.kt
    // and litert-samples compiled_model_api/image_segmentation/kotlin_npu/.../ImageSegmentationHelper.kt.
    private val env: Environment = Environment.create(BuiltinNpuAcceleratorProvider(context))

    // Environment.getAvailableAccelerators() (Environment.kt): skip the NPU on phones without one.
    private val available: Set<Accelerator> = env.getAvailableAccelerators()

    private class Compiled(
        val file: Manifest.ModelFile,
        val model: CompiledModel,
        val inputs: Map<String, TensorBuffer>,
        val outputs: Map<String, TensorBuffer>,
    ) : AutoCloseable {
        override fun close() {
            // TensorBuffer and CompiledModel are JniHandles: close() frees the native memory (the NPU
            // sample closes its buffers, then the model).
            inputs.values.forEach { it.close() }
            outputs.values.forEach { it.close() }
            model.close()
        }
    }

    private class Loaded(val accelerator: Accelerator, val parts: List<Compiled>)

    private val loaded = LinkedHashMap<String, Loaded>()

    /** The accelerator each loaded stage runs on. */
    fun accelerators(): Map<String, Accelerator> = loaded.mapValues { it.value.accelerator }

    override fun run(stage: String, inputs: Map<String, Tensor>): Map<String, Tensor> {
        val stageRun = loaded.getOrPut(stage) { load(stage) }
        val values = HashMap(inputs)
        for (part in stageRun.parts) {
            for ((name, buffer) in part.inputs) {
                write(buffer, part.file.spec.tensor(name).dtype, values.getValue(name))
            }
            // CompiledModel.run(inputs: Map<String, TensorBuffer>, outputs: Map<String, TensorBuffer>, signature)
            // (LiteRT litert/kotlin/src/main/kotlin/com/google/ai/edge/litert/Model.kt).
            part.model.run(part.inputs, part.outputs, signature)
            for ((name, buffer) in part.outputs) {
                // TensorBuffer.readFloat() (TensorBuffer.kt; the Kotlin guide's "Retrieve Outputs").
                values[name] = Tensor(part.file.spec.tensor(name).shape(), buffer.readFloat())
            }
        }
        return manifest.stage(stage).outputNames().associateWith { values.getValue(it) }
    }

    private fun write(buffer: TensorBuffer, dtype: String, value: Tensor) {
        val data = value.data()
        // TensorBuffer.writeInt / writeFloat (TensorBuffer.kt; the guide's "Create Input and Output Buffers").
        if (dtype == "int32") {
            buffer.writeInt(IntArray(data.size) { data[it].toInt() })
        } else {
            buffer.writeFloat(data)
        }
    }

    private fun load(stage: String): Loaded {
        val errors = mutableListOf<String>()
        for (accelerator in listOf(Accelerator.NPU, Accelerator.GPU, Accelerator.CPU)) {
            if (accelerator != Accelerator.CPU && accelerator !in available) {
                errors += "$accelerator: not available on this device"
                continue
            }
            val target = if (accelerator == Accelerator.NPU && NPU_TARGET in manifest.targets(stage)) NPU_TARGET else "tflite"
            val parts = mutableListOf<Compiled>()
            try {
                for (file in manifest.modelFiles(stage, target)) {
                    parts += compile(file, accelerator)
                }
                onCompiled(stage, accelerator)
                return Loaded(accelerator, parts)
            } catch (e: BundleException) {
                parts.forEach { it.close() }
                throw e // the file does not match the contract: another accelerator would not change that
            } catch (e: Exception) {
                parts.forEach { it.close() }
                errors += "$accelerator ($target): ${e.message}"
            }
        }
        throw IllegalStateException("could not compile $stage on any accelerator: ${errors.joinToString("; ")}")
    }

    private fun compile(file: Manifest.ModelFile, accelerator: Accelerator): Compiled {
        val path = file.path.absolutePath // checked inside the bundle and hashed (Manifest.bundleFile)
        // CompiledModel.create(filePath, CompiledModel.Options(accelerator), env) (Model.kt; the NPU guide
        // https://developers.google.com/edge/litert/next/npu and the Kotlin guide's "Create CompiledModel").
        val model = CompiledModel.create(path, CompiledModel.Options(accelerator), env)
        try {
            checkTensorTypes(file, model)
            // createInputBuffer(name, signature) / createOutputBuffer(name, signature) (Model.kt): buffers by the
            // contract's tensor names, whatever order the converter wrote the signature in.
            val inputs = file.spec.inputNames().associateWith { model.createInputBuffer(it, signature) }
            val outputs = file.spec.outputNames().associateWith { model.createOutputBuffer(it, signature) }
            return Compiled(file, model, inputs, outputs)
        } catch (e: Exception) {
            model.close()
            throw e
        }
    }

    /**
     * The compiled model's tensors against the contract, before its first run: CompiledModel.getInputTensorType /
     * getOutputTensorType(name, signature) -> TensorType(elementType, layout?.dimensions) (Model.kt, tag v2.2.0
     * and main). A dimension or element type LiteRT does not report is not compared.
     */
    private fun checkTensorTypes(file: Manifest.ModelFile, model: CompiledModel) {
        for (name in file.spec.inputNames()) {
            checkTensorType(file, "input", name, model.getInputTensorType(name, signature))
        }
        for (name in file.spec.outputNames()) {
            checkTensorType(file, "output", name, model.getOutputTensorType(name, signature))
        }
    }

    private fun checkTensorType(file: Manifest.ModelFile, role: String, name: String, type: TensorType) {
        val dtype = when (type.elementType) {
            TensorType.ElementType.FLOAT -> "float32"
            TensorType.ElementType.INT -> "int32"
            TensorType.ElementType.INT8 -> "int8"
            TensorType.ElementType.BOOLEAN -> "bool"
            else -> null
        }
        file.spec.checkDeclaredTensor(file.path.path, role, name, type.layout?.dimensions?.toIntArray(), dtype)
    }

    override fun release(stage: String) {
        loaded.remove(stage)?.parts?.forEach { it.close() }
    }

    override fun close() {
        loaded.keys.toList().forEach { release(it) }
        env.close()
    }

    companion object {
        /** Manifest target of MediaTek NeuroPilot AOT-compiled `.tflite` files (export's NPU compile step). */
        const val NPU_TARGET = "tflite_mediatek"
    }
}
