@file:Suppress("unused", "UNUSED_PARAMETER")
package android.text
object InputType { const val TYPE_CLASS_TEXT = 1 }
