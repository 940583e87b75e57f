#!/usr/bin/env bash
# Build the local cluster's binaries from the Go module proxy into $CACHE/bin:
#   kube         multi-call binary (tools/kube): kube-apiserver,
#                kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#                kubectl, etcd and the local-path provisioner; symlinked under
#                each name
#   coredns      tools/coredns, reduced plugin set
#   kube-router  tools/kube-router, used as NetworkPolicy firewall only
# No registry ships these binaries here, and prebuilt downloads are not
# allowed, so they are compiled (cold: tens of minutes on 2 cores; warm: a
# stamp check, well under a second).
#
# Env: SOPHIA_CACHE, FORCE=1 (rebuild), GO_BUILD_JOBS (go build -p).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBE_LINKS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd local-path-provisioner)

# check_pins keeps versions.env and the wrapper go.mod files from drifting:
# the go.mod files are what is built, versions.env is what callers read.
check_pins() {
    local mod want
    while read -r mod want; do
        grep -Eq "(^|[[:space:]])${mod//./\\.} ${want//./\\.}([[:space:]]|$)" "$REPO_ROOT/tools/$1/go.mod" ||
            die "tools/$1/go.mod does not pin $mod $want as scripts/versions.env says"
    done
}

# source_hash DIR: everything that changes the binary (sources, module
# files, Go version, build revision) in one digest.
source_hash() {
    local dir=$1
    shift
    {
        go version
        echo "rev=$CLUSTER_BUILD_REVISION flags=$*"
        cd "$dir" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) ! -name '*_test.go' -print0 |
            sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

# build_one NAME MODULE_DIR PACKAGE LDFLAGS [TAGS]
build_one() {
    local name=$1 dir=$REPO_ROOT/tools/$2 pkg=$3 ldflags=$4 tags=${5:-} hash out start
    out=$BIN_DIR/$name
    hash=$(source_hash "$dir" "$pkg" "$ldflags" "$tags")
    if [[ ${FORCE:-0} != 1 && -x $out ]] && stamp_ok "bin-$name" "$hash"; then
        log "$name is up to date"
        return 0
    fi
    log "building $name (cold builds take long on 2 cores; log: $BUILD_DIR/$name.log)"
    go_download "$dir"
    start=$SECONDS
    if ! (cd "$dir" && nice -n 5 go build ${GO_BUILD_JOBS:+-p "$GO_BUILD_JOBS"} -trimpath \
        ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$out.tmp" "$pkg") >"$BUILD_DIR/$name.log" 2>&1; then
        tail -n 20 "$BUILD_DIR/$name.log" >&2
        die "building $name failed; see $BUILD_DIR/$name.log"
    fi
    mv -f "$out.tmp" "$out"
    stamp_write "bin-$name" "$hash"
    log "built $name in $((SECONDS - start))s"
}

main() {
    require_go
    go_env
    mkdir -p "$BIN_DIR" "$BUILD_DIR"
    check_pins kube <<EOF
k8s.io/kubernetes $KUBERNETES_VERSION
go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
    check_pins coredns <<<"github.com/coredns/coredns $COREDNS_VERSION"
    check_pins kube-router <<<"github.com/cloudnativelabs/kube-router/v2 $KUBE_ROUTER_VERSION"

    local v=k8s.io/component-base/version minor=${KUBERNETES_VERSION#v1.}
    minor=${minor%%.*}
    # Without these the binaries report v0.0.0-master, which breaks the
    # apiserver's compatibility-version checks and kubectl version skew.
    local kube_ldflags="-s -w -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
    build_one kube kube . "$kube_ldflags" providerless,notest
    local link
    for link in "${KUBE_LINKS[@]}"; do
        ln -sfn kube "$BIN_DIR/$link"
    done
    build_one coredns coredns . "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
    build_one kube-router kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
        "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
}

main "$@"
