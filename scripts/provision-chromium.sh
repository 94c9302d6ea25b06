#!/usr/bin/env bash
# Provides a headless Chromium for the browser test of `anvil verify --html`
# (crates/anvil/tests/browser.rs).
#
# Prints, as its last stdout line, the path of the browser binary. All logs go to stderr.
# Idempotent: a browser that is already there is used as is.
#
#   CHROME=/opt/chrome/chrome scripts/provision-chromium.sh   # use that binary
#   scripts/provision-chromium.sh                             # find one, or apt-get install chromium
#
# Exit status non-zero when no browser can be provided (the test then fails loudly, it never
# skips).
set -euo pipefail

log() { echo "provision-chromium: $*" >&2; }

find_chromium() {
    local c
    if [ -n "${CHROME:-}" ]; then
        if [ -x "$CHROME" ]; then
            echo "$CHROME"
            return 0
        fi
        if c=$(command -v "$CHROME" 2>/dev/null); then
            echo "$c"
            return 0
        fi
        log "CHROME=$CHROME is not an executable; looking elsewhere"
    fi
    for c in chromium chromium-headless-shell chromium-browser; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if bin=$(find_chromium); then
    log "using $bin"
    echo "$bin"
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    log "no Chromium found and not root: install Debian's chromium package or set CHROME"
    exit 1
fi

# Serialise concurrent runs (several test binaries may provision at once).
lock="${TMPDIR:-/tmp}/anvil-provision-chromium.lock"
exec 9>"$lock"
flock 9
if bin=$(find_chromium); then
    log "using $bin (installed by a concurrent run)"
    echo "$bin"
    exit 0
fi

log "installing Debian's chromium package (apt-get update first)"
export DEBIAN_FRONTEND=noninteractive
apt-get update >&2
# fonts-dejavu-core: the report's text in the screenshot (Chromium itself only recommends fonts).
apt-get install -y --no-install-recommends chromium fonts-dejavu-core >&2

if bin=$(find_chromium); then
    log "installed; using $bin"
    echo "$bin"
    exit 0
fi
log "chromium package installed but no chromium binary found on PATH"
exit 1
