@file:Suppress("unused", "UNUSED_PARAMETER")
package android.view
import android.content.Context
class Surface
open class View(context: Context) {
    fun interface OnClickListener { fun onClick(v: View) }
    var visibility: Int = VISIBLE
    open var isEnabled: Boolean = true
    fun setOnClickListener(l: OnClickListener?) {}
    fun setPadding(left: Int, top: Int, right: Int, bottom: Int) {}
    companion object { const val VISIBLE = 0; const val GONE = 8 }
}
open class ViewGroup(context: Context) : View(context) { fun addView(child: View) {} }
