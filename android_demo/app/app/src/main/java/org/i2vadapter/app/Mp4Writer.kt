package org.i2vadapter.app

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.media.MediaCodec
import android.media.MediaCodecInfo
import android.media.MediaExtractor
import android.media.MediaFormat
import android.media.MediaMuxer
import android.net.Uri
import java.io.File
import java.nio.ByteBuffer
import org.i2vadapter.core.RgbImage

/**
 * Frames -> H.264 MP4 with an optional caption burnt in and an optional AAC music track muxed in
 * (MediaCodec encodes the video; the music's AAC samples are copied as they are, up to the video's
 * length, so no audio re-encoding happens). Written to a temporary file, then renamed.
 */
class Mp4Writer(private val context: Context) {

    /** Scale each frame to [size] x [size] (a multiple of 16, as H.264 encoders want) and draw [caption]. */
    fun render(frames: Array<RgbImage>, size: Int, caption: String): List<Bitmap> {
        val paint = Paint(Paint.ANTI_ALIAS_FLAG).apply {
            color = Color.WHITE
            textSize = size / 14f
            textAlign = Paint.Align.CENTER
            setShadowLayer(size / 100f, 0f, 0f, Color.BLACK)
        }
        return frames.map { frame ->
            val pixels = IntArray(frame.pixels()) { i ->
                Color.rgb(frame.get(i, 0), frame.get(i, 1), frame.get(i, 2))
            }
            val small = Bitmap.createBitmap(pixels, frame.width, frame.height, Bitmap.Config.ARGB_8888)
            val big = Bitmap.createScaledBitmap(small, size, size, true).copy(Bitmap.Config.ARGB_8888, true)
            if (caption.isNotBlank()) {
                Canvas(big).drawText(caption, size / 2f, size * 0.92f, paint)
            }
            big
        }
    }

    /** Encode [bitmaps] at [fps] into [out]; mux the AAC track of [music] (any length) if given. */
    fun write(bitmaps: List<Bitmap>, fps: Int, music: Uri?, out: File) {
        require(bitmaps.isNotEmpty()) { "expected at least one frame to encode, got none" }
        val width = bitmaps[0].width
        val height = bitmaps[0].height
        videoTrack = -1
        audioTrack = -1
        val tmp = File(out.parentFile, ".${out.name}.tmp")
        val extractor = music?.let { openAac(it) }
        val muxer = MediaMuxer(tmp.absolutePath, MediaMuxer.OutputFormat.MUXER_OUTPUT_MPEG_4)
        val format = MediaFormat.createVideoFormat(MediaFormat.MIMETYPE_VIDEO_AVC, width, height).apply {
            setInteger(MediaFormat.KEY_COLOR_FORMAT, MediaCodecInfo.CodecCapabilities.COLOR_FormatYUV420Flexible)
            setInteger(MediaFormat.KEY_BIT_RATE, 4 * width * height)
            setInteger(MediaFormat.KEY_FRAME_RATE, fps)
            setInteger(MediaFormat.KEY_I_FRAME_INTERVAL, 1)
        }
        val codec = MediaCodec.createEncoderByType(MediaFormat.MIMETYPE_VIDEO_AVC)
        try {
            codec.configure(format, null, null, MediaCodec.CONFIGURE_FLAG_ENCODE)
            codec.start()
            val durationUs = bitmaps.size * 1_000_000L / fps
            encodeVideo(codec, muxer, bitmaps, fps, extractor)
            extractor?.let { copyAudio(it, muxer, durationUs) }
            muxer.stop()
        } finally {
            codec.release()
            muxer.release()
            extractor?.release()
        }
        if (!tmp.renameTo(out)) {
            tmp.delete()
            throw IllegalStateException("could not move the video into place at $out")
        }
    }

    private var videoTrack = -1
    private var audioTrack = -1

    private fun openAac(uri: Uri): MediaExtractor {
        val extractor = MediaExtractor()
        extractor.setDataSource(context, uri, null)
        for (i in 0 until extractor.trackCount) {
            if (extractor.getTrackFormat(i).getString(MediaFormat.KEY_MIME) == MediaFormat.MIMETYPE_AUDIO_AAC) {
                extractor.selectTrack(i)
                return extractor
            }
        }
        val found = (0 until extractor.trackCount).map { extractor.getTrackFormat(it).getString(MediaFormat.KEY_MIME) }
        extractor.release()
        throw IllegalArgumentException("expected a music file with an AAC track (.m4a), found tracks $found")
    }

    private fun encodeVideo(codec: MediaCodec, muxer: MediaMuxer, frames: List<Bitmap>, fps: Int, audio: MediaExtractor?) {
        val info = MediaCodec.BufferInfo()
        var next = 0
        var inputDone = false
        while (true) {
            if (!inputDone) {
                val index = codec.dequeueInputBuffer(TIMEOUT_US)
                if (index >= 0) {
                    val pts = next * 1_000_000L / fps
                    if (next == frames.size) {
                        codec.queueInputBuffer(index, 0, 0, pts, MediaCodec.BUFFER_FLAG_END_OF_STREAM)
                        inputDone = true
                    } else {
                        val image = codec.getInputImage(index) ?: error("encoder gave no input image")
                        fillYuv(image, frames[next++])
                        codec.queueInputBuffer(index, 0, image.width * image.height * 3 / 2, pts, 0)
                    }
                }
            }
            val out = codec.dequeueOutputBuffer(info, TIMEOUT_US)
            if (out == MediaCodec.INFO_OUTPUT_FORMAT_CHANGED) {
                videoTrack = muxer.addTrack(codec.outputFormat)
                audio?.let { audioTrack = muxer.addTrack(it.getTrackFormat(it.sampleTrackIndex)) }
                muxer.start()
            } else if (out >= 0) {
                val data = codec.getOutputBuffer(out) ?: error("encoder gave no output buffer")
                if ((info.flags and MediaCodec.BUFFER_FLAG_CODEC_CONFIG) == 0 && info.size > 0) {
                    muxer.writeSampleData(videoTrack, data, info)
                }
                codec.releaseOutputBuffer(out, false)
                if ((info.flags and MediaCodec.BUFFER_FLAG_END_OF_STREAM) != 0) {
                    return
                }
            }
        }
    }

    /** ARGB -> YUV 4:2:0 (BT.601, limited range) into the codec's planes, whatever their strides. */
    private fun fillYuv(image: android.media.Image, bitmap: Bitmap) {
        val w = image.width
        val h = image.height
        val argb = IntArray(w * h)
        bitmap.getPixels(argb, 0, w, 0, 0, w, h)
        val (yPlane, uPlane, vPlane) = image.planes
        for (row in 0 until h) {
            for (col in 0 until w) {
                val c = argb[row * w + col]
                val r = (c shr 16) and 0xff
                val g = (c shr 8) and 0xff
                val b = c and 0xff
                yPlane.buffer.put(row * yPlane.rowStride + col * yPlane.pixelStride, (((66 * r + 129 * g + 25 * b + 128) shr 8) + 16).toByte())
                if (row % 2 == 0 && col % 2 == 0) {
                    val u = ((-38 * r - 74 * g + 112 * b + 128) shr 8) + 128
                    val v = ((112 * r - 94 * g - 18 * b + 128) shr 8) + 128
                    uPlane.buffer.put((row / 2) * uPlane.rowStride + (col / 2) * uPlane.pixelStride, u.toByte())
                    vPlane.buffer.put((row / 2) * vPlane.rowStride + (col / 2) * vPlane.pixelStride, v.toByte())
                }
            }
        }
    }

    private fun copyAudio(extractor: MediaExtractor, muxer: MediaMuxer, durationUs: Long) {
        val buffer = ByteBuffer.allocate(1 shl 20)
        val info = MediaCodec.BufferInfo()
        while (true) {
            val size = extractor.readSampleData(buffer, 0)
            if (size < 0 || extractor.sampleTime > durationUs) {
                return
            }
            info.set(0, size, extractor.sampleTime, if ((extractor.sampleFlags and MediaExtractor.SAMPLE_FLAG_SYNC) != 0) MediaCodec.BUFFER_FLAG_KEY_FRAME else 0)
            muxer.writeSampleData(audioTrack, buffer, info)
            extractor.advance()
        }
    }

    private companion object {
        const val TIMEOUT_US = 10_000L
    }
}
