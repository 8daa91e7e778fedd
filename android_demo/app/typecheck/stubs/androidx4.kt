@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.core.content
object FileProvider {
    @JvmStatic fun getUriForFile(context: android.content.Context, authority: String, file: java.io.File): android.net.Uri = throw UnsupportedOperationException()
}
