#!/usr/bin/env bash
# A JDK and the JUnit 5 console launcher for the Android core's Java tests (`make test`): installed
# from Debian when missing and this user can (root or passwordless sudo); otherwise one error line
# with the command to run.
set -euo pipefail
junit="${JUNIT_JAR:-/usr/share/java/junit-platform-console-standalone.jar}"
if command -v javac >/dev/null 2>&1 && command -v java >/dev/null 2>&1 && [ -f "$junit" ]; then
    exit 0
fi
packages="default-jdk-headless junit5"
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
else
    echo "error: the Java tests need a JDK and JUnit 5: run  sudo apt-get install -y $packages  (or set JUNIT_JAR)" >&2
    exit 2
fi
echo "installing $packages (Debian) for the Java tests"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
