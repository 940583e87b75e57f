#!/usr/bin/env bash
# Start the local single-node Kubernetes cluster and print its kubeconfig.
#
# Default ("local"): every component is a host process on this machine —
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd,
# kubelet, kube-proxy (iptables), CoreDNS, kube-router (NetworkPolicy only)
# and a local-path volume provisioner — because this VM cannot run the
# privileged containers kind needs. Needs root. cert-manager's controllers
# (CA and self-signed issuers) then run as a pod in namespace cert-manager.
# SOPHIA_CLUSTER=kind (or no root, with kind and a working docker) creates a
# kind cluster from kind/kind-config.yaml instead.
#
# Idempotent: a healthy cluster of ours is reused; anything a killed earlier
# run left is cleaned first. Last line of output: KUBECONFIG=<path>.
# Env: SOPHIA_CACHE, SOPHIA_CLUSTER (local|kind), SOPHIA_NODE_NAME,
#      SOPHIA_CONTAINERD_TMPFS_SIZE (default 4g; 0 keeps containerd on disk),
#      SOPHIA_DNS_FORWARD (upstream resolver for non-cluster names; default
#      none: pods get NXDOMAIN for them, so no DNS query leaves the machine).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Debian packages behind the commands this script runs.

KIND_NAME=sophia-redis

# ------------------------------------------------------------------- kind

kind_usable() { command -v kind >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

# kind_up: for machines that can run privileged containers (not this one).
# Images come from images.sh's archives (build them once as root).
kind_up() {
    kind_usable || die "SOPHIA_CLUSTER=kind needs kind and a running docker"
    mkdir -p "$CLUSTER_DIR"
    if ! kind get clusters 2>/dev/null | grep -qx "$KIND_NAME"; then
        kind create cluster --name "$KIND_NAME" --config "$REPO_ROOT/kind/kind-config.yaml" \
            --kubeconfig "$KUBECONFIG_PATH" --wait 180s
    else
        kind export kubeconfig --name "$KIND_NAME" --kubeconfig "$KUBECONFIG_PATH"
    fi
    local key archive kc=kubectl
    [[ -x $BIN_DIR/kubectl ]] && kc=$BIN_DIR/kubectl
    for key in cert-manager redis-7.0 redis-8.0 valkey-9.1 haproxy redis-client redis-exporter prometheus kubectl; do
        archive=$IMAGES_DIR/$key.tar
        [[ -f $archive ]] || die "$archive is missing; build the images once with: sudo $CLUSTER_LIB_DIR/images.sh build"
        kind load image-archive "$archive" --name "$KIND_NAME"
    done
    # kind's own provisioner (rancher.io/local-path) behind the class name the
    # stacks use; it cannot expand volumes, the flag only keeps specs equal.
    "$kc" --kubeconfig "$KUBECONFIG_PATH" annotate storageclass standard --overwrite \
        storageclass.kubernetes.io/is-default-class=false
    storage_class_manifest rancher.io/local-path | "$kc" --kubeconfig "$KUBECONFIG_PATH" apply -f - >/dev/null
    [[ -x $BIN_DIR/kubectl ]] || kctl() { "$kc" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
    deploy_cert_manager
    deploy_monitoring_crds
    wait_cert_manager
    echo "KUBECONFIG=$KUBECONFIG_PATH"
}

# ------------------------------------------------------------- preparation

ensure_packages() {
    "$CLUSTER_LIB_DIR/../install-host-packages.sh"
}

# cluster_healthy: every process alive, API ready, node Ready, images there.
cluster_healthy() {
    local name ref
    for name in "${COMPONENTS[@]}"; do
        pid_of "$name" >/dev/null || return 1
    done
    [[ -f $KUBECONFIG_PATH ]] || return 1
    kctl get --raw=/readyz --request-timeout=5s >/dev/null 2>&1 || return 1
    [[ $(kctl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] || return 1
    for ref in "${IMAGES[@]}"; do
        ctr_k8s images ls -q "name==$ref" 2>/dev/null | grep -qx "$ref" || return 1
    done
}

check_ports() {
    local port owner
    for port in "${CLUSTER_PORTS[@]}"; do
        owner=$(port_owner "$port")
        [[ -z $owner ]] || die "TCP port $port is already in use by $owner; stop it (or run $CLUSTER_LIB_DIR/down.sh if it is an old cluster)"
    done
    owner=$(ss -Hlunp 'sport = :53' 2>/dev/null | awk -v ip="$DNS_IP" '$4 ~ "^(0\\.0\\.0\\.0|\\*|\\[::\\]|" ip "):53$" {print $NF; exit}')
    [[ -z $owner ]] || die "UDP port 53 on $DNS_IP is already in use by $owner"
}

prepare_host() {
    save_sysctls
    sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 ||
        die "cannot set the bridge/forwarding sysctls kube-proxy needs"
    # kubelet, containerd and every pod's inotify users share this budget.
    (($(sysctl -n fs.inotify.max_user_instances) >= 1024)) || sysctl -qw fs.inotify.max_user_instances=1024
    # Daemons inherit our limit; the hard limit here is 20000 and higher fails.
    ulimit -n "$(ulimit -Hn)"
    mkdir -p "$CLUSTER_DIR" "$PKI_DIR" "$LOG_DIR" "$PID_DIR" "$CONF_DIR" "$CNI_CONF_DIR" "$ETCD_DATA_DIR" \
        "$CONTAINERD_ROOT" "$CONTAINERD_STATE" "$RUNC_ROOT" "$KUBELET_DIR" "$POD_LOG_DIR" "$CNI_DATA_DIR" "$VOLUMES_DIR"
    chmod 700 "$ETCD_DATA_DIR" "$PKI_DIR"
    if [[ $CONTAINERD_TMPFS_SIZE != 0 ]]; then
        mount -t tmpfs -o "size=$CONTAINERD_TMPFS_SIZE,mode=0711" sophia-containerd "$CONTAINERD_ROOT" ||
            die "cannot mount a tmpfs on $CONTAINERD_ROOT (set SOPHIA_CONTAINERD_TMPFS_SIZE=0 to use the disk)"
    fi
    # CoreDNS binds the bridge address before the first pod makes the
    # bridge; the CNI bridge plugin adopts the existing device.
    ip link add "$BRIDGE" type bridge 2>/dev/null || true
    ip addr replace "$BRIDGE_IP/${NODE_POD_CIDR#*/}" dev "$BRIDGE"
    ip link set "$BRIDGE" up
}

# ------------------------------------------------------------------- certs

# sign NAME CN ORG EXT: key + certificate signed by our CA. EXT is an
# openssl extension section; certificates last ten years (a test cluster).
sign() {
    local name=$1 cn=$2 org=$3 ext=$4 subj
    subj="/CN=$cn"
    [[ -n $org ]] && subj="/O=$org$subj"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI_DIR/$name.key" 2>/dev/null
    openssl req -new -key "$PKI_DIR/$name.key" -subj "$subj" 2>/dev/null |
        openssl x509 -req -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" -CAcreateserial -days 3650 \
            -extfile <(printf '%s\n' "$ext") -out "$PKI_DIR/$name.crt" 2>/dev/null
}

# ensure_certs keeps certificates across down/up (kubeconfigs stay valid)
# and re-issues them when the node's names or addresses change.
ensure_certs() {
    local ip host sans client server stamp
    ip=$(node_ip)
    host=$(hostname)
    sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,DNS:$NODE_NAME,DNS:$host,IP:127.0.0.1,IP:$API_SERVICE_IP,IP:$BRIDGE_IP${ip:+,IP:$ip}"
    stamp="v1 $sans"
    if [[ -f $PKI_DIR/ca.crt && -f $PKI_DIR/sa.key && -f $PKI_DIR/stamp && $(cat "$PKI_DIR/stamp") == "$stamp" ]]; then
        return 0
    fi
    log "generating certificates in $PKI_DIR"
    rm -f "$PKI_DIR"/*
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI_DIR/ca.key" \
        -out "$PKI_DIR/ca.crt" -days 3650 -subj "/CN=sophia-redis-local-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    server="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$sans"
    sign apiserver kube-apiserver "" "$server"
    sign etcd-server etcd "" "$server"
    sign kubelet-server "$NODE_NAME" "" "$server"
    sign apiserver-etcd-client kube-apiserver-etcd-client "" "$client"
    sign apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "$client"
    sign admin kubernetes-admin system:masters "$client"
    sign controller-manager system:kube-controller-manager "" "$client"
    sign scheduler system:kube-scheduler "" "$client"
    sign kubelet "system:node:$NODE_NAME" system:nodes "$client"
    sign kube-proxy system:kube-proxy "" "$client"
    # CoreDNS, kube-router and the provisioner: cluster-internal host
    # processes of a throw-away test cluster, one admin identity.
    sign addons sophia:cluster-addons system:masters "$client"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI_DIR/sa.key" 2>/dev/null
    openssl pkey -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub"
    chmod 600 "$PKI_DIR"/*.key
    echo "$stamp" >"$PKI_DIR/stamp"
}

# write_kubeconfig FILE CERT: self-contained (embedded certs), so callers
# such as the Pulumi provider can read it from anywhere.
write_kubeconfig() {
    local file=$1 cert=$2
    umask 077
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sophia-local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 "$PKI_DIR/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 "$PKI_DIR/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI_DIR/$cert.key")
contexts:
- name: sophia-local
  context: {cluster: sophia-local, user: $cert}
current-context: sophia-local
EOF
    umask 022
}

write_kubeconfigs() {
    local name
    write_kubeconfig "$KUBECONFIG_PATH" admin
    for name in controller-manager scheduler kubelet kube-proxy addons; do
        write_kubeconfig "$CONF_DIR/$name.kubeconfig" "$name"
    done
}

# ----------------------------------------------------------------- configs

write_configs() {
    cat >"$CONF_DIR/containerd.toml" <<EOF
# Generated by scripts/cluster/up.sh. Own root/state/socket so this
# containerd never collides with a system one and cleanup is a rm -rf.
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
# The kernel forbids lowering oom_score_adj (no CAP_SYS_RESOURCE).
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_ROOT/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # kubelet asks for -997/-998 scores; clamp to containerd's own (0).
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  enable_selinux = false
  disable_apparmor = true
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUNC_ROOT"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CNI_CONF_DIR"
EOF

    # Bridge + host-local on the node's /24; hairpin so a pod reaches itself
    # through its Service; portmap for hostPort.
    cat >"$CNI_CONF_DIR/10-sophia.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sophia",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_DATA_DIR/networks",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$BRIDGE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

    cat >"$CONF_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI_DIR/kubelet-server.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet-server.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
# This VM has cgroup v1 only (kubelet >= 1.35 would refuse it).
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: /etc/resolv.conf
podLogsDir: $POD_LOG_DIR
volumePluginDir: $STATE_DIR/kubelet-plugins
# The kernel refuses negative oom_score_adj for us.
oomScoreAdj: 0
# 2 CPUs must hold a 3-pod Redis StatefulSet, HAProxy and test clients:
# reserve little, and evict only near real exhaustion.
kubeReserved: {cpu: 100m, memory: 256Mi}
systemReserved: {cpu: 0m, memory: 0Mi}
evictionHard: {memory.available: 200Mi, nodefs.available: 5%, imagefs.available: 5%}
# Local images cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
syncFrequency: 20s
maxPods: 110
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
serverTLSBootstrap: false
rotateCertificates: false
shutdownGracePeriod: 0s
EOF

    cat >"$CONF_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $CONF_DIR/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
# Leave the host's conntrack sysctls alone (a VM, possibly read-only).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 1s}
EOF

    local forward="template ANY ANY {
        rcode NXDOMAIN
    }"
    [[ -n ${SOPHIA_DNS_FORWARD:-} ]] && forward="forward . $SOPHIA_DNS_FORWARD"
    cat >"$CONF_DIR/Corefile" <<EOF
$CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $DNS_IP
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $CONF_DIR/addons.kubeconfig sophia-local
        pods insecure
        ttl 5
    }
    cache 5
    loadbalance
}
.:53 {
    bind $DNS_IP
    errors
    $forward
}
EOF
}

storage_class_manifest() {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $STORAGE_CLASS
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: $1
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
reclaimPolicy: Delete
EOF
}

# ------------------------------------------------------------------ start

start_control_plane() {
    local ip
    ip=$(node_ip)
    start_daemon etcd "$BIN_DIR/etcd" --name sophia --data-dir "$ETCD_DATA_DIR" \
        --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster sophia=http://127.0.0.1:2380 --initial-cluster-state new \
        --cert-file "$PKI_DIR/etcd-server.crt" --key-file "$PKI_DIR/etcd-server.key" \
        --trusted-ca-file "$PKI_DIR/ca.crt" --client-cert-auth \
        --unsafe-no-fsync --snapshot-count 10000 --log-level warn
    start_daemon kube-apiserver "$BIN_DIR/kube-apiserver" \
        --advertise-address "$ip" --secure-port 6443 \
        --etcd-servers https://127.0.0.1:2379 --etcd-cafile "$PKI_DIR/ca.crt" \
        --etcd-certfile "$PKI_DIR/apiserver-etcd-client.crt" --etcd-keyfile "$PKI_DIR/apiserver-etcd-client.key" \
        --client-ca-file "$PKI_DIR/ca.crt" \
        --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
        --kubelet-client-certificate "$PKI_DIR/apiserver-kubelet-client.crt" \
        --kubelet-client-key "$PKI_DIR/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority "$PKI_DIR/ca.crt" \
        --kubelet-preferred-address-types InternalIP,Hostname \
        --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
        --service-account-key-file "$PKI_DIR/sa.pub" --service-account-signing-key-file "$PKI_DIR/sa.key" \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --authorization-mode Node,RBAC \
        --enable-admission-plugins NodeRestriction \
        --allow-privileged=false --profiling=false --event-ttl 1h
}

start_controllers() {
    start_daemon kube-controller-manager "$BIN_DIR/kube-controller-manager" \
        --kubeconfig "$CONF_DIR/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$CONF_DIR/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$CONF_DIR/controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
        --service-account-private-key-file "$PKI_DIR/sa.key" --root-ca-file "$PKI_DIR/ca.crt" \
        --cluster-signing-cert-file "$PKI_DIR/ca.crt" --cluster-signing-key-file "$PKI_DIR/ca.key" \
        --allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 \
        --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
    start_daemon kube-scheduler "$BIN_DIR/kube-scheduler" \
        --kubeconfig "$CONF_DIR/scheduler.kubeconfig" \
        --authentication-kubeconfig "$CONF_DIR/scheduler.kubeconfig" \
        --authorization-kubeconfig "$CONF_DIR/scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --leader-elect=false --profiling=false
}

start_node() {
    local ip
    ip=$(node_ip)
    start_daemon kubelet "$BIN_DIR/kubelet" --config "$CONF_DIR/kubelet.yaml" \
        --kubeconfig "$CONF_DIR/kubelet.kubeconfig" --root-dir "$KUBELET_DIR" \
        --hostname-override "$NODE_NAME" --node-ip "$ip" \
        --node-labels "topology.kubernetes.io/region=local,topology.kubernetes.io/zone=local-a"
    start_daemon kube-proxy "$BIN_DIR/kube-proxy" --config "$CONF_DIR/kube-proxy.yaml"
    start_daemon coredns "$BIN_DIR/coredns" -conf "$CONF_DIR/Corefile"
    start_daemon local-path-provisioner "$BIN_DIR/local-path-provisioner" \
        --kubeconfig "$CONF_DIR/addons.kubeconfig" --node-name "$NODE_NAME" \
        --provisioner-name "$PROVISIONER_NAME" --base-dir "$VOLUMES_DIR"
}

# kube-router reads its Node object at start, so it follows registration.
start_firewall() {
    start_daemon kube-router "$BIN_DIR/kube-router" --kubeconfig "$CONF_DIR/addons.kubeconfig" \
        --hostname-override "$NODE_NAME" --run-firewall=true --run-router=false --run-service-proxy=false \
        --enable-ipv4=true --enable-ipv6=false --health-port 20244 --metrics-port 0
}

# ------------------------------------------------------------ cert-manager

CERT_MANAGER_MANIFEST=$CLUSTER_LIB_DIR/cert-manager.yaml

# apply_ssa: server-side, because the Issuer CRDs (~330 kB each) do not fit
# client-side apply's last-applied annotation (256 kB).
apply_ssa() { kctl apply --server-side --force-conflicts --field-manager=sophia-up "$@" >/dev/null; }

# deploy_cert_manager applies the CRDs of the pinned module version (from the
# Go module cache; build.sh/images.sh normally fetched it already) and the
# controller; idempotent, so a running cluster gains or keeps it.
deploy_cert_manager() {
    local dir crds=() file manifest
    require_go
    go_env
    dir=$GOMODCACHE/github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION/deploy/crds
    [[ -d $dir ]] || go_download "$REPO_ROOT/tools/cert-manager"
    for file in "$dir"/*.yaml; do
        [[ -f $file ]] || continue
        crds+=(-f "$file")
    done
    ((${#crds[@]} > 0)) || die "no cert-manager CRDs in $dir"
    log "deploying cert-manager $CERT_MANAGER_VERSION"
    apply_ssa "${crds[@]}"
    kctl wait --for condition=Established --timeout=60s "${crds[@]}" >/dev/null ||
        die "the cert-manager CRDs did not become Established in 60s (log: $LOG_DIR/kube-apiserver.log)"
    manifest=$(<"$CERT_MANAGER_MANIFEST")
    apply_ssa -f - <<<"${manifest//"\${CERT_MANAGER_IMAGE}"/$CERT_MANAGER_IMAGE}"
}

# deploy_monitoring_crds applies the Prometheus Operator's PodMonitor,
# ServiceMonitor and PrometheusRule CRDs of the pinned module version, so that
# a release's monitoring objects are applied for real. No operator runs here:
# the local Prometheus gets the same scrape jobs and rules from redistest/monitoring.py.
deploy_monitoring_crds() {
    local mod=github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION dir crds=() kind out
    require_go
    go_env
    dir=$GOMODCACHE/$mod/example/prometheus-operator-crd
    if [[ ! -d $dir ]] && ! out=$(cd "$CLUSTER_DIR" && GOFLAGS=-modcacherw timeout 900 go mod download "$mod" 2>&1); then
        die "downloading $mod failed; is the Go module proxy ($(go env GOPROXY)) reachable? $(tail -n1 <<<"$out")"
    fi
    for kind in podmonitors servicemonitors prometheusrules; do
        [[ -f $dir/monitoring.coreos.com_$kind.yaml ]] || die "no $kind CRD in $dir"
        crds+=(-f "$dir/monitoring.coreos.com_$kind.yaml")
    done
    log "applying the Prometheus Operator CRDs $PROMETHEUS_OPERATOR_VERSION"
    apply_ssa "${crds[@]}"
    kctl wait --for condition=Established --timeout=60s "${crds[@]}" >/dev/null ||
        die "the Prometheus Operator CRDs did not become Established in 60s (log: $LOG_DIR/kube-apiserver.log)"
}

# cert_manager_available: the current revision's single pod is available.
cert_manager_available() {
    [[ $(kctl -n cert-manager get deployment cert-manager \
        -o 'jsonpath={.metadata.generation} {.status.observedGeneration} {.status.replicas} {.status.updatedReplicas} {.status.availableReplicas}') =~ ^([0-9]+)\ \1\ 1\ 1\ 1$ ]]
}

wait_cert_manager() {
    local deadline=$((SECONDS + 120))
    until cert_manager_available 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            kctl -n cert-manager get pods -o wide >&2 || true
            kctl -n cert-manager logs deployment/cert-manager --tail=15 >&2 || true
            die "timed out after 120s waiting for Deployment cert-manager/cert-manager to be Available; see: kubectl -n cert-manager describe pods; kubectl -n cert-manager logs deployment/cert-manager (files: $POD_LOG_DIR/cert-manager_cert-manager-*)"
        fi
        sleep 0.5
    done
}

# ----------------------------------------------------------------- checks

node_registered() { kctl get node "$NODE_NAME" >/dev/null 2>&1; }
node_ready() {
    [[ $(kctl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
dns_answers() {
    [[ $(dig +short +time=1 +tries=1 "@$DNS_IP" "kubernetes.default.svc.$CLUSTER_DOMAIN" A) == "$API_SERVICE_IP" ]]
}
default_storage_class() {
    [[ $(kctl get storageclass "$STORAGE_CLASS" -o 'jsonpath={.metadata.annotations.storageclass\.kubernetes\.io/is-default-class}') == true ]]
}
firewall_healthy() { curl -fsS --max-time 2 http://127.0.0.1:20244/healthz; }

main() {
    local mode=${SOPHIA_CLUSTER:-}
    if [[ -z $mode && $(id -u) -ne 0 ]] && kind_usable; then
        mode=kind
    fi
    if [[ $mode == kind ]]; then
        kind_up
        return
    fi
    [[ -z $mode || $mode == local ]] || die "SOPHIA_CLUSTER must be local or kind, not '$mode'"
    require_root
    local t0=$SECONDS
    ensure_packages
    "$CLUSTER_LIB_DIR/build.sh"
    "$CLUSTER_LIB_DIR/images.sh" build
    if cluster_healthy; then
        log "reusing the running cluster"
        "$CLUSTER_LIB_DIR/images.sh" import
        deploy_cert_manager
        deploy_monitoring_crds
        wait_cert_manager
        echo "KUBECONFIG=$KUBECONFIG_PATH"
        return
    fi
    log "cleaning up leftovers of earlier runs"
    scrub
    check_ports
    prepare_host
    ensure_certs
    write_kubeconfigs
    write_configs
    log "starting etcd, kube-apiserver and containerd"
    start_control_plane
    start_daemon containerd containerd --config "$CONF_DIR/containerd.toml"
    wait_for "containerd" 30 containerd ctr --address "$CONTAINERD_SOCK" version
    "$CLUSTER_LIB_DIR/images.sh" import &
    local import_pid=$!
    wait_for "kube-apiserver /readyz" 120 kube-apiserver kctl get --raw=/readyz
    storage_class_manifest "$PROVISIONER_NAME" | kctl apply -f - >/dev/null
    start_controllers
    wait "$import_pid" || die "image import failed; see $LOG_DIR/images-import.log"
    log "starting kubelet, kube-proxy, CoreDNS, provisioner and kube-router"
    start_node
    wait_for "node $NODE_NAME to register" 60 kubelet node_registered
    kctl label node "$NODE_NAME" --overwrite node-role.kubernetes.io/control-plane= >/dev/null
    start_firewall
    wait_for "node $NODE_NAME Ready" 90 kubelet node_ready
    wait_for "CoreDNS on $DNS_IP" 60 coredns dns_answers
    deploy_cert_manager
    deploy_monitoring_crds
    wait_for "kube-router firewall" 60 kube-router firewall_healthy
    wait_for "default StorageClass $STORAGE_CLASS" 30 "" default_storage_class
    wait_for "the default ServiceAccount" 60 kube-controller-manager kctl -n default get serviceaccount default
    wait_cert_manager
    log "cluster up in $((SECONDS - t0))s"
    echo "KUBECONFIG=$KUBECONFIG_PATH"
}

main "$@"
