#!/usr/bin/env bash
# Smoke test of a running local cluster (after up.sh): a restricted Redis pod
# with a PVC from the default StorageClass, headless + ClusterIP Services,
# pod DNS names, hairpin through a Service, a NetworkPolicy that admits only
# labelled clients, volume expansion, and volume deletion with the namespace.
# Prints one "N passed, N failed" line; exit status 1 on any failure.
# KEEP=1 leaves the cluster-smoke namespace in place for a look around.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS=cluster-smoke
PASSED=0
FAILED=0

check() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        PASSED=$((PASSED + 1))
        log "ok: $what"
    else
        FAILED=$((FAILED + 1))
        log "FAILED: $what"
    fi
}
fails() { ! "$@"; }

# eventually SECONDS CMD...: like wait_for, but a timeout is a failed check,
# not the end of the run.
eventually() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

k() { kctl -n "$NS" "$@"; }
in_pod() {
    local pod=$1
    shift
    k exec "$pod" -- "$@"
}
pong() { [[ $(in_pod "$1" timeout 5 redis-cli -h "$2" PING 2>/dev/null) == PONG ]]; }

# The "restricted" Pod Security profile plus a read-only root filesystem.
security_context='securityContext: {runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}'

apply_workload() {
    kctl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: Service
metadata: {name: redis-headless, namespace: $NS}
spec:
  clusterIP: None
  selector: {app: redis}
  ports: [{name: redis, port: 6379}]
---
apiVersion: v1
kind: Service
metadata: {name: redis, namespace: $NS}
spec:
  selector: {app: redis}
  ports: [{name: redis, port: 6379}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis, namespace: $NS}
spec:
  serviceName: redis-headless
  replicas: 1
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: redis
        image: $REDIS7_IMAGE
        imagePullPolicy: Never
        command: [redis-server, --dir, /data, --appendonly, "yes", --protected-mode, "no"]
        ports: [{containerPort: 6379}]
        readinessProbe:
          exec: {command: [redis-cli, PING]}
          periodSeconds: 2
        resources: {requests: {cpu: 50m, memory: 32Mi}}
        $security_context
        volumeMounts:
        - {name: data, mountPath: /data}
        - {name: tmp, mountPath: /tmp}
      volumes:
      - {name: tmp, emptyDir: {}}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 100Mi}}
EOF
    local pod
    for pod in client intruder; do
        kctl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  namespace: $NS
  labels: {role: "$([[ $pod == client ]] && echo client || echo none)"}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $REDIS_CLIENT_IMAGE
    imagePullPolicy: Never
    resources: {requests: {cpu: 10m, memory: 16Mi}}
    $security_context
EOF
    done
}

# A client locked down to DNS + Redis: CoreDNS is a host process on the
# bridge address, so DNS must be allowed by port (or ipBlock), not by a
# kube-system pod selector.
apply_egress_policy() {
    kctl apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress, namespace: $NS}
spec:
  podSelector: {matchLabels: {role: client}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
  - to: [{podSelector: {matchLabels: {app: redis}}}]
    ports: [{port: 6379}]
EOF
}

non_compliant_pod_rejected() {
    local out
    out=$(k run psa-probe --image="$REDIS_CLIENT_IMAGE" --image-pull-policy=Never --restart=Never 2>&1) && return 1
    grep -q 'violates PodSecurity "restricted' <<<"$out"
}

apply_policy() {
    kctl apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: redis-clients-only, namespace: $NS}
spec:
  podSelector: {matchLabels: {app: redis}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
    ports: [{port: 6379}]
EOF
}

capacity_is() { [[ $(k get pvc data-redis-0 -o 'jsonpath={.status.capacity.storage}') == "$1" ]]; }
pv_gone() { ! kctl get pv "$1" >/dev/null 2>&1; }

main() {
    require_root
    [[ -f $KUBECONFIG_PATH ]] || die "no cluster: run $CLUSTER_LIB_DIR/up.sh first"
    kctl delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
    apply_workload
    wait_for "redis-0 Ready" 120 "" k wait --for=condition=Ready pod/redis-0 --timeout=5s
    wait_for "client pods Ready" 60 "" k wait --for=condition=Ready pod/client pod/intruder --timeout=5s

    local fqdn=redis-0.redis-headless.$NS.svc.$CLUSTER_DOMAIN pv dir
    check "pod DNS name $fqdn resolves from another pod" in_pod client getent hosts "$fqdn"
    # kube-proxy programs the Service a moment after the pod turns Ready.
    check "ClusterIP service routes (PING)" eventually 20 pong client "redis.$NS.svc.$CLUSTER_DOMAIN"
    check "write through the pod DNS name" in_pod client redis-cli -h "$fqdn" SET smoke ok
    check "pod reaches itself through its Service (hairpin)" pong redis-0 "redis.$NS.svc.$CLUSTER_DOMAIN"
    check "unlabelled pod connects before the NetworkPolicy" pong intruder "redis.$NS.svc.$CLUSTER_DOMAIN"
    check "data lands on the provisioned volume" in_pod redis-0 test -s /data/appendonlydir/appendonly.aof.1.incr.aof
    check "root filesystem is read-only" fails in_pod redis-0 touch /etc/x

    apply_policy
    # kube-router applies policies on its informer events, within seconds.
    sleep 3
    check "labelled client still connects under the NetworkPolicy" pong client "redis.$NS.svc.$CLUSTER_DOMAIN"
    check "labelled client reaches the pod by DNS name" pong client "$fqdn"
    check "unlabelled pod is blocked by the NetworkPolicy" fails pong intruder "redis.$NS.svc.$CLUSTER_DOMAIN"
    check "unlabelled pod is blocked on the pod address too" fails pong intruder "$fqdn"

    apply_egress_policy
    sleep 3
    check "client with egress policy still resolves names" in_pod client getent hosts "$fqdn"
    check "client with egress policy still reaches Redis" pong client "redis.$NS.svc.$CLUSTER_DOMAIN"
    check "client with egress policy cannot reach the API server" fails in_pod client timeout 3 python3 -c \
        "import socket; socket.create_connection(('kubernetes.default.svc.$CLUSTER_DOMAIN', 443), 2)"
    check "PodSecurity admission rejects a non-restricted pod" non_compliant_pod_rejected

    pv=$(k get pvc data-redis-0 -o 'jsonpath={.spec.volumeName}')
    dir=$(kctl get pv "$pv" -o 'jsonpath={.spec.local.path}')
    k patch pvc data-redis-0 -p '{"spec":{"resources":{"requests":{"storage":"200Mi"}}}}' >/dev/null
    check "PVC expands to 200Mi" eventually 30 capacity_is 200Mi

    if [[ -z ${KEEP:-} ]]; then
        kctl delete namespace "$NS" --wait=true --timeout=90s >/dev/null
        check "PV is deleted with its claim" eventually 30 pv_gone "$pv"
        check "volume directory is removed" test ! -e "$dir"
    fi

    echo "cluster smoke: $PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

main "$@"
