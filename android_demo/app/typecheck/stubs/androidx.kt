@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.activity
import android.content.Context
import android.view.View
import androidx.activity.result.ActivityResultCallback
import androidx.activity.result.ActivityResultLauncher
import androidx.activity.result.contract.ActivityResultContract
open class ComponentActivity : Context() {
    protected open fun onCreate(savedInstanceState: android.os.Bundle?) {}
    protected open fun onDestroy() {}
    fun setContentView(view: View) {}
    fun runOnUiThread(action: Runnable) {}
    fun <I, O> registerForActivityResult(contract: ActivityResultContract<I, O>, callback: ActivityResultCallback<O>): ActivityResultLauncher<I> = ActivityResultLauncher()
}
