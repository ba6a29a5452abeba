#!/usr/bin/env bash
# Installs Debian's chromium for the real-browser test of `esvae serve` (serve/browser_test.go)
# when no chromium is in PATH; does nothing otherwise. Needs root (or sudo) and apt-get.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
echo "installed $(chromium --version 2>/dev/null | tail -1)"
