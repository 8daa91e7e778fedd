#!/usr/bin/env bash
# Build the Android app's pure-Java core with javac and run its JUnit 5 tests against the golden vectors
# (android_demo/make_golden.py). Prints "N passed, M failed" and exits non-zero on any failure.
#
#   bash android_demo/core/test.sh
#
# Needs a JDK (javac, java; 17 here, the code targets Java 8 with --release 8 so Android's toolchain takes
# it as is) and the JUnit console launcher (Debian: apt-get install -y junit5). JUNIT_JAR overrides its path.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
junit="${JUNIT_JAR:-/usr/share/java/junit-platform-console-standalone.jar}"
build="$here/build"

for tool in javac java; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found: install a JDK (Debian: apt-get install -y openjdk-17-jdk-headless)" >&2
        exit 2
    fi
done
if [ ! -f "$junit" ]; then
    echo "error: JUnit console launcher not found at $junit (Debian: apt-get install -y junit5, or set JUNIT_JAR)" >&2
    exit 2
fi

rm -rf "$build"
mkdir -p "$build/main" "$build/test" "$build/reports"
# -Xlint:all -Werror keeps the core warning-free; Java 8 bytecode and API, as Android desugars it.
find "$here/src/main/java" -name '*.java' >"$build/main.txt"
javac --release 8 -Xlint:all -Werror -encoding UTF-8 -d "$build/main" @"$build/main.txt"
find "$here/src/test/java" -name '*.java' >"$build/test.txt"
javac --release 8 -encoding UTF-8 -cp "$build/main:$junit" -d "$build/test" @"$build/test.txt"

set +e
java -Di2v.bpe="$repo/i2v_core/data/bpe_simple_vocab_16e6.txt.gz" -jar "$junit" \
    --disable-banner --details=tree --fail-if-no-tests \
    --class-path "$build/main:$build/test:$here/src/test/resources" \
    --scan-class-path "$build/test" \
    --reports-dir "$build/reports" >"$build/junit.log" 2>&1
status=$?
set -e

report="$build/reports/TEST-junit-jupiter.xml"
if [ ! -f "$report" ]; then
    cat "$build/junit.log"
    echo "0 passed, 1 failed (the JUnit launcher wrote no report; exit status $status)"
    exit 1
fi
# The legacy XML report's first <testsuite ...> element holds the totals.
attr() { grep -o "<testsuite [^>]*" "$report" | head -1 | grep -o " $1=\"[0-9]*\"" | grep -o "[0-9]*"; }
tests="$(attr tests)"; failures="$(attr failures)"; errors="$(attr errors)"; skipped="$(attr skipped)"
failed=$((failures + errors))
passed=$((tests - failed - skipped))
if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ]; then
    grep -v "✔" "$build/junit.log" || true
fi
note=""
if [ "${skipped:-0}" -gt 0 ]; then note=", $skipped skipped"; fi
echo "java core: ${passed} passed, ${failed} failed${note} (JUnit report: $report)"
if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ]; then
    exit 1
fi
