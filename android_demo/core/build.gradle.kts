// The pure-Java core as a Gradle module of the app (android_demo/app/settings.gradle.kts includes it).
// On this repository's CI it is built and tested without Gradle, by core/test.sh (javac + JUnit console).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

dependencies {
    testImplementation("org.junit.jupiter:junit-jupiter:5.9.2")
    testRuntimeOnly("org.junit.platform:junit-platform-launcher:1.9.1")
}

tasks.test {
    useJUnitPlatform()
    systemProperty("i2v.bpe", rootDir.resolve("../../i2v_core/data/bpe_simple_vocab_16e6.txt.gz").absolutePath)
}
