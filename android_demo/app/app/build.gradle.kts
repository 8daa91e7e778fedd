plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.i2vadapter.app"
    compileSdk = 36

    defaultConfig {
        applicationId = "org.i2vadapter.app"
        // As LiteRT's NPU samples: Android 12+, arm64 only (the NPU dispatch libraries are arm64).
        minSdk = 31
        targetSdk = 35
        versionCode = 1
        versionName = "0.1"
        ndk { abiFilters.add("arm64-v8a") }
    }

    // The NPU dispatch libraries are loaded from the APK's native library directory
    // (BuiltinNpuAcceleratorProvider.getLibraryDir), so keep them uncompressed and extracted.
    packaging { jniLibs { useLegacyPackaging = true } }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_1_8
        targetCompatibility = JavaVersion.VERSION_1_8
    }
}

kotlin {
    compilerOptions { jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_1_8) }
}

dependencies {
    implementation(project(":core"))
    implementation(libs.litert)
    implementation(libs.litert.gpu)
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.ktx)
}
