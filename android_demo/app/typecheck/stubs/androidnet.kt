package android.net
abstract class Uri : android.os.Parcelable
