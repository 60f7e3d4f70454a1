#!/usr/bin/env bash
# Install the system tools the local stack and the tests need, when missing:
# a Java 17+ JDK and Maven (Kafka, Connect and s3proxy run from Maven
# Central jars; the bundled S3 sink is compiled at first start), and
# promtool for the alert-rule tests. Quiet when present.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
# javac and jar build the bundled S3 sink connector (connect/plugin).
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "missing system packages: ${missing[*]} (install them, or run as root)" >&2
    exit 1
fi
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
echo "installing system packages: ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
