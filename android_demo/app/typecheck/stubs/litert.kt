// Signature stubs (typecheck.sh only, never packaged) transcribed from LiteRT's Kotlin sources
// (litert/kotlin/src/main/kotlin/com/google/ai/edge/litert/ Model.kt, Environment.kt, AcceleratorProvider.kt,
// TensorBuffer.kt, Common.kt), identical for these calls at tag v2.2.0 and on main (2026-08-21); bodies omitted.
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

class CompiledModel private constructor() : JniHandle() {
  class Options constructor(internal val accelerators: Set<Accelerator>) {
    constructor(vararg accelerators: Accelerator) : this(setOf(*accelerators))
    companion object { @JvmStatic val CPU = Options(Accelerator.CPU) }
  }
  fun createInputBuffer(inputName: String, signature: String = ""): TensorBuffer = TensorBuffer()
  fun createOutputBuffer(outputName: String, signature: String = ""): TensorBuffer = TensorBuffer()
  fun run(inputs: Map<String, TensorBuffer>, outputs: Map<String, TensorBuffer>, signature: String = "") {}
  companion object {
    @JvmStatic fun create(filePath: String, options: Options = Options.CPU, optionalEnv: Environment? = null): CompiledModel = CompiledModel()
  }
}
