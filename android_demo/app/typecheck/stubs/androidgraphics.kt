@file:Suppress("unused", "UNUSED_PARAMETER")
package android.graphics
import java.io.InputStream
class Bitmap private constructor() {
    enum class Config { ARGB_8888 }
    val width: Int = 0
    val height: Int = 0
    fun copy(config: Config, isMutable: Boolean): Bitmap = this
    fun getPixels(pixels: IntArray, offset: Int, stride: Int, x: Int, y: Int, width: Int, height: Int) {}
    companion object {
        @JvmStatic fun createBitmap(colors: IntArray, width: Int, height: Int, config: Config): Bitmap = Bitmap()
        @JvmStatic fun createBitmap(source: Bitmap, x: Int, y: Int, width: Int, height: Int): Bitmap = Bitmap()
        @JvmStatic fun createScaledBitmap(src: Bitmap, dstWidth: Int, dstHeight: Int, filter: Boolean): Bitmap = Bitmap()
    }
}
object BitmapFactory { @JvmStatic fun decodeStream(stream: InputStream?): Bitmap? = null }
class Canvas(bitmap: Bitmap) { fun drawText(text: String, x: Float, y: Float, paint: Paint) {} }
object Color {
    const val WHITE = -1
    const val BLACK = -16777216
    @JvmStatic fun rgb(red: Int, green: Int, blue: Int): Int = 0
}
class Paint(flags: Int) {
    enum class Align { LEFT, CENTER, RIGHT }
    var color: Int = 0
    var textSize: Float = 0f
    var textAlign: Align = Align.LEFT
    fun setShadowLayer(radius: Float, dx: Float, dy: Float, shadowColor: Int) {}
    companion object { const val ANTI_ALIAS_FLAG = 1 }
}
