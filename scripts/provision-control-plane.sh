#!/usr/bin/env bash
# Provision etcd + kube-apiserver + kube-controller-manager binaries for the
# integration tests (crates/testenv). See scripts/README.md.
#
# Follows controller-runtime's envtest convention: if KUBEBUILDER_ASSETS names a
# folder holding `etcd` and `kube-apiserver`, that folder is used as is.
# Otherwise the binaries are built from Go modules (release binaries cannot be
# downloaded here) into a cache outside the repository:
#   ${ANVIL_CACHE_DIR:-$HOME/.cache/anvil}/control-plane/<k8s-version>/bin/
# The folder holding the binaries is printed as the last line of stdout; all
# logs go to stderr.
set -euo pipefail

K8S_VERSION="${ANVIL_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ANVIL_ETCD_VERSION:-v3.6.4}"

log() { printf '[provision-control-plane] %s\n' "$*" >&2; }

# 1. envtest convention.
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if [[ -x "${KUBEBUILDER_ASSETS}/etcd" && -x "${KUBEBUILDER_ASSETS}/kube-apiserver" ]]; then
    if [[ ! -x "${KUBEBUILDER_ASSETS}/kube-controller-manager" ]]; then
      log "note: ${KUBEBUILDER_ASSETS} has no kube-controller-manager (garbage collector and built-in controllers will not run)"
    fi
    printf '%s\n' "${KUBEBUILDER_ASSETS}"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS} does not hold executable etcd and kube-apiserver; building instead"
fi

CACHE_ROOT="${ANVIL_CACHE_DIR:-${HOME}/.cache/anvil}/control-plane"
VERSION_DIR="${CACHE_ROOT}/${K8S_VERSION}"
BIN_DIR="${VERSION_DIR}/bin"
STAMP="${BIN_DIR}/.stamp"
STAMP_CONTENT="kubernetes=${K8S_VERSION} etcd=${ETCD_VERSION}"

have_all() {
  [[ -x "${BIN_DIR}/etcd" && -x "${BIN_DIR}/kube-apiserver" && -x "${BIN_DIR}/kube-controller-manager" \
    && -f "${STAMP}" && "$(cat "${STAMP}")" == "${STAMP_CONTENT}" ]]
}

# 2. Warm cache: return immediately.
if have_all; then
  printf '%s\n' "${BIN_DIR}"
  exit 0
fi

command -v go >/dev/null 2>&1 || {
  log "error: 'go' is not on PATH; install Go >= 1.24 or set KUBEBUILDER_ASSETS to a folder with etcd, kube-apiserver and kube-controller-manager"
  exit 1
}

mkdir -p "${BIN_DIR}" "${VERSION_DIR}/src"

# Serialise concurrent provisioning (e.g. several test binaries at once).
exec 9>"${VERSION_DIR}/.lock"
if command -v flock >/dev/null 2>&1; then
  log "waiting for lock ${VERSION_DIR}/.lock"
  flock 9
  if have_all; then
    printf '%s\n' "${BIN_DIR}"
    exit 0
  fi
fi

export GOMODCACHE="${CACHE_ROOT}/go/mod"
export GOCACHE="${CACHE_ROOT}/go/build"
export GOPATH="${CACHE_ROOT}/go/path"
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
if [[ -z "${GOSUMDB:-}" ]]; then
  # The checksum database is often unreachable in sandboxes; module contents
  # still come from the proxy over TLS and are recorded in go.sum.
  if curl -s -m 5 -o /dev/null https://sum.golang.org/lookup/k8s.io/api@v0.34.0 2>/dev/null; then
    export GOSUMDB=sum.golang.org
  else
    log "sum.golang.org unreachable: GOSUMDB=off"
    export GOSUMDB=off
  fi
fi

STAGING_VERSION="v0.${K8S_VERSION#v1.}"
MINOR="$(cut -d. -f2 <<<"${K8S_VERSION}")"

# 3. kube-apiserver + kube-controller-manager.
build_kubernetes() {
  local dir="${VERSION_DIR}/src/kubernetes"
  mkdir -p "${dir}"
  log "resolving k8s.io/kubernetes ${K8S_VERSION}"
  local gomod
  gomod="$(cd "${dir}" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "${gomod}" ]] || { log "error: could not download k8s.io/kubernetes@${K8S_VERSION}"; return 1; }
  # Every staging module: both the `replace ... => ./staging/...` lines and
  # `k8s.io/x v0.0.0` requirements.
  local staging
  staging="$( {
    sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "${gomod}"
    sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) v0\.0\.0\([[:space:]].*\)\{0,1\}$#\1#p' "${gomod}"
  } | sort -u)"
  {
    printf 'module anvil.local/control-plane-kubernetes\n\ngo 1.24.0\n\n'
    printf 'require k8s.io/kubernetes %s\n\nreplace (\n' "${K8S_VERSION}"
    local m
    for m in ${staging}; do printf '\t%s => %s %s\n' "${m}" "${m}" "${STAGING_VERSION}"; done
    printf ')\n'
  } >"${dir}/go.mod"
  cat >"${dir}/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
EOF
  local pkg="k8s.io/component-base/version"
  local cgo="k8s.io/client-go/pkg/version"
  local date
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w"
  local p
  for p in "${pkg}" "${cgo}"; do
    ld+=" -X ${p}.gitVersion=${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${MINOR}"
    ld+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=${date} -X ${p}.gitCommit=module-${K8S_VERSION}"
  done
  log "building kube-apiserver and kube-controller-manager ${K8S_VERSION} (cold: tens of minutes on 2 cores)"
  (cd "${dir}" && go build -trimpath -ldflags "${ld}" -o "${BIN_DIR}/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
}

# 4. etcd.
build_etcd() {
  local dir="${VERSION_DIR}/src/etcd"
  mkdir -p "${dir}"
  printf 'module anvil.local/control-plane-etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "${ETCD_VERSION}" >"${dir}/go.mod"
  cat >"${dir}/tools.go" <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
  log "building etcd ${ETCD_VERSION}"
  (cd "${dir}" && go build -trimpath -ldflags "-s -w" -o "${BIN_DIR}/etcd" go.etcd.io/etcd/server/v3)
}

rm -f "${STAMP}"
start=$(date +%s)
[[ -x "${BIN_DIR}/etcd" ]] || build_etcd
if [[ ! -x "${BIN_DIR}/kube-apiserver" || ! -x "${BIN_DIR}/kube-controller-manager" ]]; then
  build_kubernetes
fi
"${BIN_DIR}/kube-apiserver" --version >&2
"${BIN_DIR}/etcd" --version >&2 || true
printf '%s' "${STAMP_CONTENT}" >"${STAMP}"
log "done in $(( $(date +%s) - start ))s"
printf '%s\n' "${BIN_DIR}"
