#!/usr/bin/env bash
# Type-check the app's Kotlin sources without the Android SDK or the LiteRT AAR: kotlinc against the core's
# classes and against signature stubs (stubs/: LiteRT's Kotlin API as in its sources, Model.kt,
# Environment.kt, AcceleratorProvider.kt, TensorBuffer.kt; the few Android / AndroidX classes the app uses,
# from the public API reference). It catches Kotlin errors in the app, not API drift in a real LiteRT
# release: build the app with Gradle for that.
#
#   KOTLINC=/path/to/kotlinc bash android_demo/app/typecheck/typecheck.sh
#
# kotlinc: e.g. `npm install kotlin-compiler@2.4.20` (JetBrains' compiler, works offline), then
# KOTLINC=node_modules/kotlin-compiler/bin/kotlinc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
app="$here/../app/src/main/java/org/i2vadapter/app"
core="$here/../../core/src/main/java"
kotlinc="${KOTLINC:-kotlinc}"
command -v "$kotlinc" >/dev/null 2>&1 || { echo "error: kotlinc not found (set KOTLINC)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
find "$core" -name '*.java' >"$work/core.txt"
javac --release 8 -d "$work/core" @"$work/core.txt"
"$kotlinc" -jvm-target 1.8 -Werror -cp "$work/core" -d "$work/out" "$here"/stubs/*.kt "$app"/*.kt
echo "app Kotlin sources type-check: $(ls "$app"/*.kt | wc -l) files"
