#!/usr/bin/env bash
# The project's test command (README Quick start; .ci/run calls exactly this).
# Provisions what the integration tests need (idempotent, cached outside the repository),
# then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> control plane (etcd, kube-apiserver, kube-controller-manager)" >&2
KUBEBUILDER_ASSETS="$(scripts/provision-control-plane.sh | tail -n 1)"
export KUBEBUILDER_ASSETS
echo "    using $KUBEBUILDER_ASSETS" >&2

if [[ -x scripts/provision-zookeeper.sh ]]; then
  echo "==> ZooKeeper server" >&2
  scripts/provision-zookeeper.sh >&2
fi
[[ -x scripts/provision-rabbitmq.sh ]] && { echo "==> RabbitMQ server" >&2; scripts/provision-rabbitmq.sh >&2; }
[[ -x scripts/provision-chromium.sh ]] && { echo "==> headless Chromium (browser test of anvil verify --html)" >&2; scripts/provision-chromium.sh >&2; }

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check

echo "==> cargo clippy --workspace --all-targets -- -D warnings" >&2
cargo clippy --workspace --all-targets -- -D warnings

echo "==> cargo test --workspace" >&2
cargo test --workspace --no-fail-fast "$@"
