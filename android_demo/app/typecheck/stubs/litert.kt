// Signature stubs (typecheck.sh only, never packaged) transcribed from LiteRT's Kotlin sources
// (litert/kotlin/src/main/kotlin/com/google/ai/edge/litert/ Model.kt, Environment.kt, AcceleratorProvider.kt,
// TensorBuffer.kt, Common.kt), identical for these calls at tag v2.2.0 and on main (2026-08-21); bodies omitted.
// TensorType and CompiledModel.getInputTensorType / getOutputTensorType: Model.kt at v2.2.0 and main.
package com.google.ai.edge.litert

import android.content.Context

enum class Accelerator { NONE, CPU, GPU, NPU }

abstract class JniHandle : AutoCloseable { final override fun close() {} }

class TensorBuffer : JniHandle() {
  fun writeInt(data: IntArray) {}
  fun writeFloat(data: FloatArray) {}
  fun readFloat(): FloatArray = FloatArray(0)
}

interface NpuAcceleratorProvider {
  fun isDeviceSupported(): Boolean
  fun isLibraryReady(): Boolean
  suspend fun downloadLibrary()
  fun getLibraryDir(): String
}

class BuiltinNpuAcceleratorProvider(private val context: Context) : NpuAcceleratorProvider {
  override fun isDeviceSupported() = true
  override fun isLibraryReady() = true
  override suspend fun downloadLibrary() {}
  override fun getLibraryDir(): String = ""
}

class Environment private constructor() : JniHandle() {
  enum class Option { CompilerPluginLibraryDir, DispatchLibraryDir }
  fun getAvailableAccelerators(): Set<Accelerator> = setOf()
  companion object {
    @JvmStatic fun create(npuAcceleratorProvider: NpuAcceleratorProvider, options: Map<Option, String> = mapOf()): Environment = Environment()
  }
}

data class TensorType constructor(val elementType: ElementType, val layout: Layout? = null) {
  enum class ElementType { INT, FLOAT, INT8, BOOLEAN, INT64 }
  data class Layout constructor(val dimensions: List<Int>, val strides: List<Int> = listOf())
}

class CompiledModel private constructor() : JniHandle() {
  class Options constructor(internal val accelerators: Set<Accelerator>) {
    constructor(vararg accelerators: Accelerator) : this(setOf(*accelerators))
    companion object { @JvmStatic val CPU = Options(Accelerator.CPU) }
  }
  fun createInputBuffer(inputName: String, signature: String = ""): TensorBuffer = TensorBuffer()
  fun createOutputBuffer(outputName: String, signature: String = ""): TensorBuffer = TensorBuffer()
  fun run(inputs: Map<String, TensorBuffer>, outputs: Map<String, TensorBuffer>, signature: String = "") {}
  fun getInputTensorType(inputName: String, signature: String = ""): TensorType = TensorType(TensorType.ElementType.FLOAT)
  fun getOutputTensorType(outputName: String, signature: String = ""): TensorType = TensorType(TensorType.ElementType.FLOAT)
  companion object {
    @JvmStatic fun create(filePath: String, options: Options = Options.CPU, optionalEnv: Environment? = null): CompiledModel = CompiledModel()
  }
}
