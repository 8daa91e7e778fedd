package android
object R {
    object layout { const val simple_spinner_dropdown_item = 1 }
    object attr { const val progressBarStyleHorizontal = 2 }
}
