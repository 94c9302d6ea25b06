#!/usr/bin/env bash
# Provides a RabbitMQ server for the rabbitmq controller's end-to-end tests.
#
# Prints, as its last stdout line, the folder holding RabbitMQ's own scripts (`rabbitmq-server`,
# `rabbitmq-diagnostics`, ...: the unwrapped ones, which run as the calling user with the
# RABBITMQ_* environment variables the test sets). The test helper starts a node from there on
# loopback with the configuration files the controller generates. All logs go to stderr.
# Idempotent: a RabbitMQ that is already there is used as is.
#
#   RABBITMQ_HOME=/opt/rabbitmq scripts/provision-rabbitmq.sh   # use that installation (its sbin/)
#   scripts/provision-rabbitmq.sh                              # find one, or apt-get install rabbitmq-server
#
# Installing Debian's package would also start the system-wide service; the script keeps it
# from starting (a temporary policy-rc.d during the install, and `invoke-rc.d ... stop`
# afterwards when it started anyway), so that only the tests' own nodes run.
set -euo pipefail

log() { echo "provision-rabbitmq: $*" >&2; }

usable() {
    # A folder is usable when it holds an executable rabbitmq-server script and Erlang's epmd
    # can be found.
    local d="$1"
    [ -n "$d" ] && [ -x "$d/rabbitmq-server" ] || return 1
    command -v erl >/dev/null 2>&1 || return 1
    return 0
}

find_rabbitmq() {
    local d
    for d in "${RABBITMQ_HOME:+$RABBITMQ_HOME/sbin}" /usr/lib/rabbitmq/bin /usr/local/lib/rabbitmq/bin; do
        if usable "$d"; then
            echo "$d"
            return 0
        fi
    done
    # Debian's versioned server folder
    for d in /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin; do
        if usable "$d"; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if dir=$(find_rabbitmq); then
    log "using RabbitMQ in $dir"
    echo "$dir"
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    log "no RabbitMQ found and not root: install Debian's rabbitmq-server package or set RABBITMQ_HOME"
    exit 1
fi

# Serialise concurrent runs (several test binaries may provision at once).
lock="${TMPDIR:-/tmp}/anvil-provision-rabbitmq.lock"
exec 9>"$lock"
flock 9
if dir=$(find_rabbitmq); then
    log "using RabbitMQ in $dir (installed by a concurrent run)"
    echo "$dir"
    exit 0
fi

log "installing Debian's rabbitmq-server package (apt-get update first)"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    # Keep the package's maintainer scripts from starting the system-wide service.
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() { [ -n "$made_policy" ] && rm -f "$policy"; return 0; }
trap cleanup EXIT
apt-get update >&2
apt-get install -y --no-install-recommends rabbitmq-server >&2
cleanup
made_policy=""
if command -v invoke-rc.d >/dev/null 2>&1; then
    invoke-rc.d rabbitmq-server stop >&2 2>&1 || true
fi

if dir=$(find_rabbitmq); then
    log "installed; using RabbitMQ in $dir"
    echo "$dir"
    exit 0
fi
log "rabbitmq-server package installed but no rabbitmq-server script found"
exit 1
