@file:Suppress("unused", "UNUSED_PARAMETER")
package android.widget
import android.content.Context
import android.view.View
import android.view.ViewGroup
interface SpinnerAdapter
class ArrayAdapter<T>(context: Context, resource: Int, objects: List<T>) : SpinnerAdapter
open class TextView(context: Context) : View(context) { open var text: CharSequence = "" }
class Button(context: Context) : TextView(context)
class EditText(context: Context) : TextView(context) {
    var hint: CharSequence? = null
    var inputType: Int = 0
}
class LinearLayout(context: Context) : ViewGroup(context) {
    var orientation: Int = 0
    companion object { const val VERTICAL = 1 }
}
class ScrollView(context: Context) : ViewGroup(context)
class ProgressBar(context: Context, attrs: Any?, defStyleAttr: Int) : View(context) { var max: Int = 100; var progress: Int = 0 }
class Spinner(context: Context) : View(context) { var adapter: SpinnerAdapter? = null; val selectedItem: Any? = null }
class VideoView(context: Context) : View(context) {
    fun interface OnPreparedListener { fun onPrepared(mp: android.media.MediaPlayer) }
    fun setVideoPath(path: String) {}
    fun setOnPreparedListener(l: OnPreparedListener) {}
    fun start() {}
}
