// Signature stubs (typecheck.sh only, never packaged) transcribed from LiteRT's Kotlin sources (litert/kotlin/src/main/kotlin/com/google/ai/edge/litert/
// Model.kt, Environment.kt, AcceleratorProvider.kt, TensorBuffer.kt), bodies omitted: a type check only.
package com.google.ai.edge.litert

import android.content.Context

enum class Accelerator { NONE, CPU, GPU, NPU }

open class JniHandle : AutoCloseable { override fun close() {} }

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
  fun getAvailableAccelerators(): Set<Accelerator> = setOf()
  companion object {
    @JvmStatic fun create(npuAcceleratorProvider: NpuAcceleratorProvider, options: Map<String, String> = mapOf()): Environment = Environment()
  }
}

class CompiledModel private constructor() : JniHandle() {
  class Options constructor(internal vararg val accelerators: Accelerator)
  fun createInputBuffer(inputName: String, signature: String? = null): TensorBuffer = TensorBuffer()
  fun createOutputBuffer(outputName: String, signature: String? = null): TensorBuffer = TensorBuffer()
  fun run(inputs: Map<String, TensorBuffer>, outputs: Map<String, TensorBuffer>, signature: String? = null) {}
  companion object {
    @JvmStatic fun create(filePath: String, options: Options = Options(Accelerator.CPU), optionalEnv: Environment? = null): CompiledModel = CompiledModel()
  }
}
