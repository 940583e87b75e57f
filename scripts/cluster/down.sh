#!/usr/bin/env bash
# Stop the local cluster and remove its runtime state: processes, mounts,
# the cni0 bridge and veths, KUBE-*/CNI-* iptables chains, kube-router's
# ipsets, containerd/kubelet/etcd state and volume data. Certificates,
# kubeconfigs, binaries and image archives stay in $CACHE, so the next
# up.sh is warm. Safe to run when nothing is running.
# SOPHIA_CLUSTER=kind deletes the kind cluster instead.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
    if [[ ${SOPHIA_CLUSTER:-} == kind ]]; then
        kind delete cluster --name sophia-redis
        return
    fi
    require_root
    local t0=$SECONDS
    scrub
    log "cluster down in $((SECONDS - t0))s"
}

main "$@"
