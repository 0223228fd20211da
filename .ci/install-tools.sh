#!/bin/sh
# Installs the Debian packages the tests use: Chromium (the `tracec show` and `tracec report` screenshot
# tests), GNU patch (every patch tracec writes must pass `patch -p1 --dry-run` as well as
# `git apply --check`) and bubblewrap (`tracec optimize --sandbox`).
# Idempotent: does nothing when all are already there.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v patch >/dev/null 2>&1 || missing="$missing patch"
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
if [ -z "$missing" ]; then
    echo "chromium, patch and bubblewrap already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $missing
