// Minimal Android SDK / AndroidX signature stubs (from the public API reference), only what the app uses.
@file:Suppress("unused", "UNUSED_PARAMETER")
package android.content
import android.net.Uri
import java.io.File
import java.io.InputStream
open class Context {
    val contentResolver: ContentResolver = ContentResolver()
    val cacheDir: File = File("/")
    val packageName: String = ""
    fun getExternalFilesDir(type: String?): File? = null
    open fun startActivity(intent: Intent) {}
}
class ContentResolver { fun openInputStream(uri: Uri): InputStream? = null }
class Intent(action: String?) {
    var type: String? = null
    fun putExtra(name: String, value: android.os.Parcelable?): Intent = this
    fun addFlags(flags: Int): Intent = this
    companion object {
        const val ACTION_SEND = "android.intent.action.SEND"
        const val EXTRA_STREAM = "android.intent.extra.STREAM"
        const val FLAG_GRANT_READ_URI_PERMISSION = 1
        @JvmStatic fun createChooser(target: Intent, title: CharSequence?): Intent = target
    }
}
