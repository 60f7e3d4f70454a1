#!/usr/bin/env bash
# Make sure `promtool` (Prometheus's rule checker) is installed, for the
# alert-rule tests. Installs Debian's `prometheus` package when it is missing;
# prints nothing and changes nothing when promtool is already there.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "promtool is missing: install Debian's prometheus package as root" >&2
        exit 1
    fi
    as_root=(sudo)
fi

echo "promtool is missing: installing Debian's prometheus package" >&2
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq \
    --no-install-recommends prometheus >/dev/null

if ! command -v promtool >/dev/null 2>&1; then
    echo "the prometheus package was installed but promtool is not on PATH" >&2
    exit 1
fi
