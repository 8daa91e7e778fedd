@file:Suppress("unused", "UNUSED_PARAMETER")
package android.media
import java.nio.ByteBuffer
class MediaCrypto
class MediaFormat {
    fun setInteger(name: String, value: Int) {}
    fun getString(name: String): String? = null
    companion object {
        const val MIMETYPE_VIDEO_AVC = "video/avc"
        const val MIMETYPE_AUDIO_AAC = "audio/mp4a-latm"
        const val KEY_COLOR_FORMAT = "color-format"
        const val KEY_BIT_RATE = "bitrate"
        const val KEY_FRAME_RATE = "frame-rate"
        const val KEY_I_FRAME_INTERVAL = "i-frame-interval"
        const val KEY_MIME = "mime"
        @JvmStatic fun createVideoFormat(mime: String, width: Int, height: Int): MediaFormat = MediaFormat()
    }
}
class MediaCodecInfo { class CodecCapabilities { companion object { const val COLOR_FormatYUV420Flexible = 0x7F420888 } } }
abstract class Image {
    abstract class Plane { abstract val buffer: ByteBuffer; abstract val rowStride: Int; abstract val pixelStride: Int }
    abstract val width: Int
    abstract val height: Int
    abstract val planes: Array<Plane>
}
class MediaCodec private constructor() {
    class BufferInfo {
        @JvmField var flags: Int = 0
        @JvmField var size: Int = 0
        @JvmField var presentationTimeUs: Long = 0
        fun set(newOffset: Int, newSize: Int, newTimeUs: Long, newFlags: Int) {}
    }
    val outputFormat: MediaFormat = MediaFormat()
    fun configure(format: MediaFormat?, surface: android.view.Surface?, crypto: MediaCrypto?, flags: Int) {}
    fun start() {}
    fun dequeueInputBuffer(timeoutUs: Long): Int = 0
    fun getInputImage(index: Int): Image? = null
    fun queueInputBuffer(index: Int, offset: Int, size: Int, presentationTimeUs: Long, flags: Int) {}
    fun dequeueOutputBuffer(info: BufferInfo, timeoutUs: Long): Int = 0
    fun getOutputBuffer(index: Int): ByteBuffer? = null
    fun releaseOutputBuffer(index: Int, render: Boolean) {}
    fun release() {}
    companion object {
        const val CONFIGURE_FLAG_ENCODE = 1
        const val BUFFER_FLAG_KEY_FRAME = 1
        const val BUFFER_FLAG_CODEC_CONFIG = 2
        const val BUFFER_FLAG_END_OF_STREAM = 4
        const val INFO_OUTPUT_FORMAT_CHANGED = -2
        @JvmStatic fun createEncoderByType(type: String): MediaCodec = MediaCodec()
    }
}
class MediaExtractor {
    val trackCount: Int = 0
    val sampleTrackIndex: Int = 0
    val sampleTime: Long = 0
    val sampleFlags: Int = 0
    fun setDataSource(context: android.content.Context, uri: android.net.Uri, headers: Map<String, String>?) {}
    fun getTrackFormat(index: Int): MediaFormat = MediaFormat()
    fun selectTrack(index: Int) {}
    fun readSampleData(byteBuf: ByteBuffer, offset: Int): Int = -1
    fun advance(): Boolean = false
    fun release() {}
    companion object { const val SAMPLE_FLAG_SYNC = 1 }
}
class MediaMuxer(path: String, format: Int) {
    class OutputFormat { companion object { const val MUXER_OUTPUT_MPEG_4 = 0 } }
    fun addTrack(format: MediaFormat): Int = 0
    fun start() {}
    fun stop() {}
    fun release() {}
    fun writeSampleData(trackIndex: Int, byteBuf: ByteBuffer, bufferInfo: MediaCodec.BufferInfo) {}
}
class MediaPlayer { var isLooping: Boolean = false }
