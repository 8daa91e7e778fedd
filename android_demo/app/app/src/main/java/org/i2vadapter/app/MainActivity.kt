package org.i2vadapter.app

import android.content.Intent
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ProgressBar
import android.widget.ScrollView
import android.widget.Spinner
import android.widget.TextView
import android.widget.VideoView
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import androidx.core.content.FileProvider
import java.io.File
import java.util.concurrent.Executors
import org.i2vadapter.core.CancellationSignal
import org.i2vadapter.core.ClipTokenizer
import org.i2vadapter.core.I2VPipeline
import org.i2vadapter.core.Manifest
import org.i2vadapter.core.ProgressListener
import org.i2vadapter.core.RgbImage

/**
 * One screen: pick a photo, type a prompt, choose a style (a bundle folder, e.g. one exported with a
 * fused LoRA), a music track (.m4a) and a caption; generate with per-step progress and cancel; play and
 * share the MP4. Bundles live in the app's external files folder, `bundles/<style>/manifest.json`
 * (pushed with adb, see android_demo/README.md).
 */
class MainActivity : ComponentActivity() {
    private val worker = Executors.newSingleThreadExecutor()
    private var photo: Uri? = null
    private var music: Uri? = null
    private var cancel: CancellationSignal? = null
    private var video: File? = null
    private val verified = java.util.Collections.synchronizedSet(mutableSetOf<String>())

    private lateinit var style: Spinner
    private lateinit var prompt: EditText
    private lateinit var caption: EditText
    private lateinit var status: TextView
    private lateinit var progress: ProgressBar
    private lateinit var generate: Button
    private lateinit var stop: Button
    private lateinit var share: Button
    private lateinit var player: VideoView

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.GetContent()) { uri ->
        photo = uri
        status.text = if (uri == null) "no photo chosen" else "photo: $uri"
    }
    private val pickMusic = registerForActivityResult(ActivityResultContracts.GetContent()) { uri ->
        music = uri
        status.text = if (uri == null) "no music" else "music: $uri"
    }

    private fun bundlesDir(): File = File(getExternalFilesDir(null), "bundles")

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val column = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(32, 32, 32, 32) }
        fun button(label: String, action: () -> Unit) = Button(this).apply { text = label; setOnClickListener { action() } }
        style = Spinner(this)
        val styles = bundlesDir().listFiles { f -> File(f, Manifest.FILE_NAME).isFile }?.map { it.name }?.sorted().orEmpty()
        style.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, styles)
        prompt = EditText(this).apply { hint = "prompt"; inputType = InputType.TYPE_CLASS_TEXT }
        caption = EditText(this).apply { hint = "caption (optional)"; inputType = InputType.TYPE_CLASS_TEXT }
        status = TextView(this).apply {
            text = if (styles.isEmpty()) "no bundles in ${bundlesDir()}: push one (README)" else "${styles.size} styles"
        }
        progress = ProgressBar(this, null, android.R.attr.progressBarStyleHorizontal)
        generate = button("Generate") { start() }
        stop = button("Cancel") { cancel?.cancel() }.apply { isEnabled = false }
        share = button("Share") { shareVideo() }.apply { isEnabled = false }
        player = VideoView(this).apply { visibility = View.GONE }
        listOf(
            button("Pick photo") { pickPhoto.launch("image/*") }, prompt, TextView(this).apply { text = "Style" }, style,
            button("Pick music (.m4a)") { pickMusic.launch("audio/*") }, caption, generate, stop, progress, status,
            player, share,
        ).forEach { column.addView(it) }
        setContentView(ScrollView(this).apply { addView(column) })
    }

    private fun start() {
        val chosen = photo ?: return run { status.text = "pick a photo first" }
        val styleName = style.selectedItem as? String ?: return run { status.text = "no style (bundle) installed" }
        val signal = CancellationSignal().also { cancel = it }
        setRunning(true)
        val text = prompt.text.toString()
        val captionText = caption.text.toString()
        val track = music
        worker.execute {
            try {
                val out = generateVideo(File(bundlesDir(), styleName), chosen, text, captionText, track, signal)
                runOnUiThread { showVideo(out) }
            } catch (e: CancellationSignal.CancelledException) {
                runOnUiThread { status.text = "cancelled" }
            } catch (e: Exception) {
                runOnUiThread { status.text = "error: ${e.message}" }
            } finally {
                runOnUiThread { setRunning(false) }
            }
        }
    }

    /** Runs on the worker thread: verify the bundle, generate, encode. */
    private fun generateVideo(dir: File, photoUri: Uri, text: String, captionText: String, track: Uri?,
                              signal: CancellationSignal): File {
        val manifest = Manifest.load(dir)
        if (dir.absolutePath !in verified) { // sha256 of every file, once per bundle and app run
            post("checking bundle $dir")
            manifest.verifyFiles()
            verified.add(dir.absolutePath)
        }
        val tokenizer = ClipTokenizer.fromFiles(manifest.tokenizerFile("vocab.json"), manifest.tokenizerFile("merges.txt"))
        val tokens = tokenizer.tokenize(text).size
        // As diffusers (and runtime_py) do, a long prompt is truncated; say so next to the progress.
        val note = if (tokens > ClipTokenizer.MAX_LENGTH - 2) "  (prompt cut to ${ClipTokenizer.MAX_LENGTH - 2} of $tokens tokens)" else ""
        val accelerators = linkedMapOf<String, String>()
        LiteRtStageRunner(this, manifest) { stage, acc -> accelerators[stage] = acc.name; post("$stage on ${acc.name}") }
            .use { runner ->
                val pipeline = I2VPipeline.fromManifest(manifest, runner, tokenizer)
                val (w, h) = pipeline.imageSize().let { it[0] to it[1] }
                val request = I2VPipeline.Request(loadPhoto(photoUri, w, h), text).apply { seed = System.nanoTime() }
                val listener = object : ProgressListener {
                    override fun onStage(stage: String) = post("running $stage ($accelerators)")
                    override fun onStep(step: Int, total: Int, timestep: Double) = runOnUiThread {
                        progress.max = total
                        progress.progress = step
                        status.text = "step $step/$total  ${accelerators["unet"] ?: ""}$note"
                    }
                }
                val result = pipeline.generate(request, listener, signal)
                post("encoding video (${accelerators.entries.joinToString { "${it.key}: ${it.value}" }})")
                val writer = Mp4Writer(this)
                val out = File(cacheDir, "videos/i2v_${System.currentTimeMillis()}.mp4").apply { parentFile?.mkdirs() }
                writer.write(writer.render(result.frames, 512, captionText), pipeline.sampling().fps, track, out)
                return out
            }
    }

    /** The photo centre-cropped to a square and scaled to the bundle's input size, as RGB bytes. */
    private fun loadPhoto(uri: Uri, width: Int, height: Int): RgbImage {
        val bitmap = contentResolver.openInputStream(uri).use { BitmapFactory.decodeStream(it) }
            ?: throw IllegalArgumentException("could not decode the photo $uri")
        val side = minOf(bitmap.width, bitmap.height)
        val square = Bitmap.createBitmap(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side)
        val scaled = Bitmap.createScaledBitmap(square, width, height, true)
        val argb = IntArray(width * height)
        scaled.getPixels(argb, 0, width, 0, 0, width, height)
        val rgb = ByteArray(width * height * 3)
        for (i in argb.indices) {
            rgb[3 * i] = (argb[i] shr 16).toByte()
            rgb[3 * i + 1] = (argb[i] shr 8).toByte()
            rgb[3 * i + 2] = argb[i].toByte()
        }
        return RgbImage(width, height, rgb)
    }

    private fun post(message: String) = runOnUiThread { status.text = message }

    private fun setRunning(running: Boolean) {
        generate.isEnabled = !running
        stop.isEnabled = running
        if (running) progress.progress = 0
    }

    private fun showVideo(file: File) {
        video = file
        status.text = "done: ${file.name}"
        share.isEnabled = true
        player.visibility = View.VISIBLE
        player.setVideoPath(file.absolutePath)
        player.setOnPreparedListener { it.isLooping = true }
        player.start()
    }

    private fun shareVideo() {
        val file = video ?: return
        val uri = FileProvider.getUriForFile(this, "$packageName.files", file)
        val send = Intent(Intent.ACTION_SEND).apply {
            type = "video/mp4"
            putExtra(Intent.EXTRA_STREAM, uri)
            addFlags(Intent.FLAG_GRANT_READ_URI_PERMISSION)
        }
        startActivity(Intent.createChooser(send, "Share video"))
    }

    override fun onDestroy() {
        cancel?.cancel()
        worker.shutdown()
        super.onDestroy()
    }
}
