#!/usr/bin/env bash
# Provides a ZooKeeper server for the zookeeper controller's end-to-end tests.
#
# Prints, as its last stdout line, the folder holding ZooKeeper's jars (the classpath root the
# test helper uses to start a standalone server with `java ... QuorumPeerMain`). All logs go to
# stderr. Idempotent: a ZooKeeper that is already there is used as is.
#
#   ZOOKEEPER_HOME=/opt/zookeeper scripts/provision-zookeeper.sh   # use that installation
#   scripts/provision-zookeeper.sh                                # find one, or apt-get install zookeeper
set -euo pipefail

log() { echo "provision-zookeeper: $*" >&2; }

has_jars() {
    # A folder is usable when it (or its lib/) holds a zookeeper jar.
    local d="$1"
    [ -d "$d" ] || return 1
    compgen -G "$d/zookeeper*.jar" >/dev/null || compgen -G "$d/lib/zookeeper*.jar" >/dev/null
}

find_zookeeper() {
    local d
    for d in "${ZOOKEEPER_HOME:-}" /usr/share/zookeeper /usr/share/java /opt/zookeeper /usr/local/zookeeper; do
        [ -n "$d" ] || continue
        if has_jars "$d"; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if ! command -v java >/dev/null 2>&1; then
    log "java is missing; it comes with the zookeeper package"
fi

if dir=$(find_zookeeper); then
    log "using ZooKeeper in $dir"
    echo "$dir"
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    log "no ZooKeeper found and not root: install Debian's zookeeper package or set ZOOKEEPER_HOME"
    exit 1
fi

# Serialise concurrent runs (several test binaries may provision at once).
lock="${TMPDIR:-/tmp}/anvil-provision-zookeeper.lock"
exec 9>"$lock"
flock 9
if dir=$(find_zookeeper); then
    log "using ZooKeeper in $dir (installed by a concurrent run)"
    echo "$dir"
    exit 0
fi

log "installing Debian's zookeeper package (apt-get update first)"
export DEBIAN_FRONTEND=noninteractive
apt-get update >&2
apt-get install -y --no-install-recommends zookeeper >&2

if dir=$(find_zookeeper); then
    log "installed; using ZooKeeper in $dir"
    echo "$dir"
    exit 0
fi
log "zookeeper package installed but no zookeeper jar found"
exit 1
