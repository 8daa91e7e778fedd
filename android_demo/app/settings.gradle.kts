// The phone app: Kotlin UI and LiteRT stage runner (:app) over the pure-Java core (:core, ../core, tested
// here with javac + JUnit by core/test.sh). Gradle 8.13+, Android Gradle Plugin 8.13.1, JDK 17.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "I2VAdapterDemo"
include(":app", ":core")
project(":core").projectDir = file("../core")
