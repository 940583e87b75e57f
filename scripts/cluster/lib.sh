# shellcheck shell=bash
# Shared settings and helpers for the local single-node test cluster
# (build.sh, images.sh, up.sh, down.sh). Sourced, never run.
#
# Layout (everything this cluster writes lives under three roots, so a
# cleanup can be complete without guessing):
#   $CACHE            ${SOPHIA_CACHE:-$HOME/.cache/sophia-redis}
#     bin/            built binaries (kube multi-call + symlinks, coredns, kube-router)
#     build/          Go module and build caches
#     images/         debootstrap root filesystems and OCI archives
#     cluster/        certs (pki/), kubeconfigs, etcd data, logs/, run/ (pid files)
#   $STATE_DIR        /var/lib/sophia-redis  containerd root, kubelet root, CNI IPAM, volumes
#   $RUN_ROOT         /run/sophia-redis      containerd state and socket, runc state

# shellcheck disable=SC2034  # variables are used by the scripts that source this file

CLUSTER_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../common.sh
. "$CLUSTER_LIB_DIR/../common.sh"
IMAGES_DIR=$CACHE/images
CLUSTER_DIR=$CACHE/cluster
PKI_DIR=$CLUSTER_DIR/pki
LOG_DIR=$CLUSTER_DIR/logs
PID_DIR=$CLUSTER_DIR/run
ETCD_DATA_DIR=$CLUSTER_DIR/etcd
CONF_DIR=$CLUSTER_DIR/config
KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig

STATE_DIR=/var/lib/sophia-redis
RUN_ROOT=/run/sophia-redis
CONTAINERD_ROOT=$STATE_DIR/containerd
# containerd's root (image content + unpacked snapshots, ~0.6 GB) lives on a
# tmpfs: importing the images on every up and removing them on down is then
# a matter of seconds instead of half a minute of disk I/O on this VM.
CONTAINERD_TMPFS_SIZE=${SOPHIA_CONTAINERD_TMPFS_SIZE:-4g}
CONTAINERD_STATE=$RUN_ROOT/containerd
CONTAINERD_SOCK=$CONTAINERD_STATE/containerd.sock
RUNC_ROOT=$RUN_ROOT/runc
KUBELET_DIR=$STATE_DIR/kubelet
POD_LOG_DIR=$STATE_DIR/pod-logs
CNI_CONF_DIR=$CLUSTER_DIR/cni
CNI_DATA_DIR=$STATE_DIR/cni
CNI_BIN_DIR=/usr/lib/cni
VOLUMES_DIR=$STATE_DIR/volumes

NODE_NAME=${SOPHIA_NODE_NAME:-sophia-node}
POD_CIDR=10.244.0.0/16
# The controller-manager hands the first (only) node the first /24.
NODE_POD_CIDR=10.244.0.0/24
BRIDGE=cni0
BRIDGE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
# CoreDNS runs on the host and answers on the bridge address, which every pod
# reaches directly; kubelet's clusterDNS points there.
DNS_IP=$BRIDGE_IP
CLUSTER_DOMAIN=cluster.local
STORAGE_CLASS=local-path
PROVISIONER_NAME=sophia.local/local-path

# Components in start order; down.sh stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns kube-router local-path-provisioner)

# TCP ports the components listen on (host network); a port held by
# anything but our own healthy cluster makes up.sh stop early.
CLUSTER_PORTS=(2379 2380 6443 10248 10249 10250 10256 10257 10259 18080 18181 20244)

IMAGES=("$REDIS7_IMAGE" "$REDIS8_IMAGE" "$VALKEY9_IMAGE" "$HAPROXY_IMAGE" "$REDIS_CLIENT_IMAGE" "$PAUSE_IMAGE"
    "$REDIS_EXPORTER_IMAGE" "$PROMETHEUS_IMAGE")

PATH=$BIN_DIR:$PATH:/usr/sbin:/sbin
export PATH

log() { printf '%s cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it starts containerd, kubelet and changes iptables); try: sudo $0"
}

# require_go makes the missing toolchain a one-line error instead of a
# "command not found" deep inside a build.
require_go() {
    command -v go >/dev/null 2>&1 || die "Go is not installed or not on PATH (need Go >= 1.24 to build the cluster binaries)"
}

# go_env points Go's caches into $CACHE/build so nothing lands in the repo
# and a cleanup of the cache removes every build artefact.
go_env() {
    export GOCACHE=$BUILD_DIR/gocache GOMODCACHE=$BUILD_DIR/gomod
    export GOFLAGS="-buildvcs=false -modcacherw -mod=readonly"
    export GOTOOLCHAIN=local CGO_ENABLED=0
    mkdir -p "$GOCACHE" "$GOMODCACHE"
}

# go_download DIR fetches DIR's modules (a no-op when they are cached), so
# an unreachable proxy is one clear line instead of a failure deep in a build.
go_download() {
    local dir=$1 out
    if ! out=$(cd "$dir" && timeout 900 go mod download 2>&1); then
        die "downloading Go modules for ${dir#"$REPO_ROOT"/} failed; is the Go module proxy ($(go env GOPROXY)) reachable? $(tail -n1 <<<"$out")"
    fi
}

# stamp_ok NAME HASH: true when the stamp file records HASH.
stamp_ok() { [[ -f $STAMP_DIR/$1 && $(cat "$STAMP_DIR/$1") == "$2" ]]; }
stamp_write() { mkdir -p "$STAMP_DIR" && printf '%s\n' "$2" >"$STAMP_DIR/$1"; }

# ---------------------------------------------------------------- processes

pid_file() { echo "$PID_DIR/$1.pid"; }

# pid_of NAME prints the pid recorded for NAME if that process is still the
# one we started (argv[0] is checked, so a recycled pid is never signalled).
pid_of() {
    local name=$1 file pid argv0
    file=$(pid_file "$name")
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n1)
    [[ $(basename -- "$argv0") == "$(daemon_argv0 "$name")" ]] || return 1
    echo "$pid"
}

# daemon_argv0 maps a component to the program name it runs under (all
# components run under their own name, kube's through symlinks).
daemon_argv0() { echo "$1"; }

# start_daemon NAME CMD...: detached from the calling shell (own session, no
# stdin, output to a log) so nothing dies with the terminal or CI step.
start_daemon() {
    local name=$1
    shift
    mkdir -p "$LOG_DIR" "$PID_DIR"
    setsid "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
    echo $! >"$(pid_file "$name")"
    sleep 0.2
    pid_of "$name" >/dev/null || die "$name exited at once; see $LOG_DIR/$name.log: $(tail -n 3 "$LOG_DIR/$name.log" | tr '\n' ' ')"
}

# alive PID: running and not a zombie (PID 1 here reaps orphans only
# every second or two, and a zombie is as good as gone).
alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# stop_daemons TIMEOUT NAME...: TERM them all at once, KILL what is left
# after TIMEOUT seconds.
stop_daemons() {
    local timeout=$1 name pid pids=() i
    shift
    for name in "$@"; do
        if pid=$(pid_of "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for ((i = 0; i < timeout * 10; i++)); do
        for pid in "${pids[@]}"; do
            if alive "$pid"; then
                sleep 0.1
                continue 2
            fi
        done
        break
    done
    for pid in "${pids[@]}"; do
        if alive "$pid"; then
            log "$(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-60) did not stop in ${timeout}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for name in "$@"; do
        rm -f "$(pid_file "$name")"
    done
}

# wait_for DESCRIPTION TIMEOUT LOGNAME CMD...: poll CMD until it succeeds.
wait_for() {
    local what=$1 timeout=$2 logname=$3 deadline
    shift 3
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            [[ -n $logname && -f $LOG_DIR/$logname.log ]] && tail -n 15 "$LOG_DIR/$logname.log" >&2
            die "timed out after ${timeout}s waiting for $what${logname:+ (log: $LOG_DIR/$logname.log)}"
        fi
        sleep 0.5
    done
}

kctl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# port_owner PORT prints "program(pid)" of a TCP listener on PORT, if any.
port_owner() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*' | head -n1 | sed 's/users:((//' || true
}

node_ip() {
    ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1
}

# ------------------------------------------------------------------ cleanup
# scrub removes everything a cluster run (finished, stopped or killed) can
# leave behind. Each step only touches what is recognisably ours: our pid
# files, processes naming our containerd socket, mounts under our
# directories, the cni0 bridge and its veths, KUBE-*/CNI-* iptables chains
# and kube-router's ipsets.

SYSCTL_SAVE=$CLUSTER_DIR/sysctl.orig
# kubelet rewrites these (it insists on its defaults); we restore them on down.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

scrub() {
    local agents=() name
    # Node agents and controllers first, so nothing restarts the containers
    # being removed; the API and etcd last.
    for name in "${COMPONENTS[@]}"; do
        case $name in
            containerd | kube-apiserver | etcd) ;;
            *) agents+=("$name") ;;
        esac
    done
    stop_daemons 10 "${agents[@]}"
    kill_containers
    stop_daemons 15 containerd
    kill_shims
    # The apiserver stops slowly once etcd is gone: one after the other.
    stop_daemons 10 kube-apiserver
    stop_daemons 10 etcd
    unmount_ours
    remove_netns_and_links
    strip_iptables iptables
    strip_iptables ip6tables
    destroy_ipsets
    remove_cgroups
    restore_sysctls
    rm -rf "$CONTAINERD_ROOT" "$RUN_ROOT" "$KUBELET_DIR" "$CNI_DATA_DIR" "$POD_LOG_DIR" "$VOLUMES_DIR" \
        "$STATE_DIR/kubelet-plugins" "$ETCD_DATA_DIR" "$PID_DIR"
    find /var/log/containers -maxdepth 1 -type l -lname "$POD_LOG_DIR/*" -delete 2>/dev/null || true
    rmdir /var/log/containers 2>/dev/null || true
}

# kill_containers: runc removes every container of our runtime root,
# killing its processes and cgroups, whether or not containerd still runs.
kill_containers() {
    local root=$RUNC_ROOT/k8s.io id
    [[ -d $root ]] || return 0
    for id in $(runc --root "$root" list -q 2>/dev/null); do
        runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
}

# our_shims prints pids of containerd shims started for our socket.
our_shims() {
    local f pid
    { grep -lzF -- "$CONTAINERD_SOCK" /proc/[0-9]*/cmdline 2>/dev/null || true; } | while read -r f; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        if [[ $(tr '\0' '\n' <"$f" 2>/dev/null | head -n1) == *containerd-shim* ]]; then echo "$pid"; fi
    done
}

kill_shims() {
    local pid
    for pid in $(our_shims); do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# unmount_ours: deepest first; lazily when busy so a stuck mount cannot
# block the rest of the cleanup.
unmount_ours() {
    local mnt
    awk '{print $2}' /proc/self/mounts | { grep -E "^($STATE_DIR|$RUN_ROOT)(/|$)" || true; } | sort -r |
        while read -r mnt; do
            umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || log "warning: cannot unmount $mnt"
        done
}

# remove_netns_and_links: deleting a veth's host end removes the pair; a
# cni-* network namespace is then ours when nothing but lo is left in it.
remove_netns_and_links() {
    local link ns
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        for link in $(ip -o link show master "$BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1); do
            ip link del "$link" 2>/dev/null || true
        done
        ip link del "$BRIDGE" 2>/dev/null || true
    fi
    for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do
        if [[ $(ip -n "$ns" -o link show 2>/dev/null | grep -vc ': lo:') == 0 ]]; then
            ip netns delete "$ns" 2>/dev/null || true
        fi
    done
}

# strip_iptables TOOL: rewrite each table without KUBE-* (kube-proxy,
# kube-router) and CNI-* (bridge, portmap) chains and the jumps into them;
# every other rule (e.g. Docker's) is restored as it was.
strip_iptables() {
    local tool=$1 table rules
    command -v "$tool-save" >/dev/null || return 0
    for table in raw mangle nat filter; do
        rules=$("$tool-save" -t "$table" 2>/dev/null) || continue
        grep -Eq '^:(KUBE-|CNI-)|-j (KUBE-|CNI-)' <<<"$rules" || continue
        grep -Ev '^:(KUBE-|CNI-)|^-A (KUBE-|CNI-)|-j (KUBE-|CNI-)' <<<"$rules" | "$tool-restore" ||
            log "warning: could not clean $tool table $table"
    done
}

destroy_ipsets() {
    local set
    command -v ipset >/dev/null || return 0
    for set in $(ipset list -n 2>/dev/null | grep -E '^(inet6:)?(KUBE-|kube-router)' || true); do
        ipset destroy "$set" 2>/dev/null || log "warning: ipset $set is still in use"
    done
}

# remove_cgroups: kubelet (cgroupfs driver) makes a kubepods tree under
# each cgroup v1 controller; it is empty once the containers are gone.
remove_cgroups() {
    local dir
    for dir in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
        [[ -d $dir ]] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}

save_sysctls() {
    local key
    [[ -f $SYSCTL_SAVE ]] && return 0
    mkdir -p "$CLUSTER_DIR"
    for key in "${KUBELET_SYSCTLS[@]}" fs.inotify.max_user_instances; do
        echo "$key=$(sysctl -n "$key" 2>/dev/null)"
    done >"$SYSCTL_SAVE"
}

restore_sysctls() {
    local line
    [[ -f $SYSCTL_SAVE ]] || return 0
    while read -r line; do
        if [[ $line == *=?* ]]; then sysctl -qw "$line" 2>/dev/null || true; fi
    done <"$SYSCTL_SAVE"
    rm -f "$SYSCTL_SAVE"
}
