#!/usr/bin/env bash
# Build the cluster's container images from Debian packages and import them
# into containerd. No container registry can be reached from this machine,
# so every image is made locally:
#   $REDIS7_IMAGE        Redis 7.0 (bookworm): redis-server, redis-sentinel, redis-tools (uid 999)
#   $REDIS8_IMAGE        Redis 8.0 (testing), the same packages (uid 999)
#   $VALKEY9_IMAGE       Valkey 9.1 (testing): valkey-server, valkey-sentinel, valkey-tools (uid 999)
#   $HAPROXY_IMAGE       HAProxy 3.2 (testing) (uid 999)
#   $REDIS_CLIENT_IMAGE  redis-tools (redis-cli, redis-benchmark), python3-redis (uid 999)
#   $PAUSE_IMAGE         static Go pause (tools/pause), containerd's sandbox image
#   $KUBECTL_IMAGE       the cluster's kubectl (build.sh) on a minimal Debian (sh, coreutils)
#   $CERT_MANAGER_IMAGE  static cert-manager controller (tools/cert-manager, uid 65532)
#   $REDIS_EXPORTER_IMAGE  redis_exporter 1.86 (testing): prometheus-redis-exporter (uid 65534)
#   $PROMETHEUS_IMAGE    Prometheus 3.5 and promtool (testing) (uid 65534)
# All run as a non-root user and work with readOnlyRootFilesystem when the pod
# mounts volumes where it writes (/data, /tmp, config directories).
#
# Usage: images.sh [build|import|all]   (default: build)
#   build   debootstrap + pack into $CACHE/images/*.tar; skipped per image
#           while its stamp matches (FORCE=1 rebuilds)
#   import  import missing images into containerd's k8s.io namespace (the
#           cluster's containerd must be running; up.sh calls this)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# debian_mirror: the Debian archive the host's apt already uses, so the repository names none.
debian_mirror() {
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
        tr ' ' '\n' | { grep -v -- '-security' || true; } | head -n 1)
    [[ -n $uri ]] || uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
        /etc/apt/sources.list 2>/dev/null)
    echo "$uri"
}
IMAGE_DEBIAN_MIRROR=${IMAGE_DEBIAN_MIRROR:-$(debian_mirror)}

APP_UID=999
ROOTFS_DIR=$IMAGES_DIR/rootfs
DEB_CACHE=$IMAGES_DIR/debs

# image_ref, image_packages, image_suite KEY: what an image key is built from.
image_ref() {
    case $1 in
        redis-7.0) echo "$REDIS7_IMAGE" ;;
        redis-8.0) echo "$REDIS8_IMAGE" ;;
        valkey-9.1) echo "$VALKEY9_IMAGE" ;;
        haproxy) echo "$HAPROXY_IMAGE" ;;
        redis-client) echo "$REDIS_CLIENT_IMAGE" ;;
        pause) echo "$PAUSE_IMAGE" ;;
        kubectl) echo "$KUBECTL_IMAGE" ;;
        cert-manager) echo "$CERT_MANAGER_IMAGE" ;;
        redis-exporter) echo "$REDIS_EXPORTER_IMAGE" ;;
        prometheus) echo "$PROMETHEUS_IMAGE" ;;
    esac
}
image_packages() {
    case $1 in
        redis-client) echo redis-tools,python3,python3-redis ;;
        redis-[0-9]*) echo redis-server,redis-sentinel,redis-tools ;;
        valkey-[0-9]*) echo valkey-server,valkey-sentinel,valkey-tools ;;
        haproxy) echo haproxy ;;
        redis-exporter) echo prometheus-redis-exporter ;;
        prometheus) echo prometheus ;;
        kubectl) echo mawk ;;
    esac
}
image_suite() {
    case $1 in
        redis-7.0 | redis-client) echo "$IMAGE_DEBIAN_SUITE" ;;
        *) echo "$IMAGE_DEBIAN_CURRENT_SUITE" ;;
    esac
}
# image_version_pattern KEY: the `dpkg-query` version of the main package an image must hold
# (an extended regular expression); testing moves, and the tag promises a line.
image_version_pattern() {
    case $1 in
        redis-7.0) echo '^5:7\.0\.' ;;
        redis-8.0) echo '^5:8\.0\.' ;;
        # 9.1.0's Sentinel can crash in a coordinated failover (valkey-io/valkey#4066).
        valkey-9.1) echo '^9\.1\.([1-9]|[0-9]{2,})' ;;
        haproxy) echo '^3\.2\.' ;;
        redis-exporter) echo '^1\.86\.' ;;
        prometheus) echo '^3\.5\.' ;;
    esac
}
image_main_package() {
    case $1 in
        redis-[0-9]*) echo redis-server ;;
        valkey-[0-9]*) echo valkey-server ;;
        haproxy) echo haproxy ;;
    esac
}
IMAGE_KEYS=(pause cert-manager redis-7.0 redis-8.0 valkey-9.1 haproxy redis-client redis-exporter prometheus kubectl)

archive_of() { echo "$IMAGES_DIR/$1.tar"; }

# umount_under DIR: debootstrap mounts /proc and /sys in its target; a killed
# run leaves them mounted and `rm -rf` would then descend into the host's.
umount_under() {
    local dir mnt
    dir=$(realpath -m "$1")
    awk '{print $2}' /proc/self/mounts | { grep -E "^${dir}(/|$)" || true; } | sort -r | while read -r mnt; do
        umount "$mnt" 2>/dev/null || umount -l "$mnt"
    done
}

# image_recipe KEY: the shell functions that build KEY, as bash prints them; a change to
# another image's functions leaves this image's hash, and its archive, as they are.
image_recipe() {
    local key=$1 kind
    case $key in
        pause | cert-manager) declare -f "build_${key//-/_}" ;;
        *)
            kind=${key%%-[0-9]*}
            declare -f build_debian debootstrap_script umount_under check_package_version slim_rootfs \
                set_app_user free_app_ids free_system_id pack "customize_${kind//-/_}" "pack_${kind//-/_}"
            ;;
    esac
}

image_hash() {
    local key=$1
    {
        echo "rev=$CLUSTER_BUILD_REVISION suite=$(image_suite "$key") mirror=$IMAGE_DEBIAN_MIRROR"
        echo "ref=$(image_ref "$key") packages=$(image_packages "$key") uid=$APP_UID"
        echo "version=$(image_version_pattern "$key") main=$(image_main_package "$key")"
        image_recipe "$key"
        # Relative names: the hash must not depend on where the repository is checked out.
        (cd "$CLUSTER_LIB_DIR" && sha256sum mkimage.py)
        [[ $key != pause ]] || { go version; (cd "$REPO_ROOT/tools/pause" && sha256sum ./*.go go.mod); }
        [[ $key != cert-manager ]] || { go version; (cd "$REPO_ROOT/tools/cert-manager" && sha256sum ./*.go go.mod go.sum); }
        [[ $key != kubectl ]] || sha256sum <"$(kubectl_binary)"
    } | sha256sum | cut -d' ' -f1
}

# free_app_ids ROOTFS NAME: moves another user or group off uid/gid 999 (Debian testing's
# minbase gives gid 999 to lpadmin) to a free system id.
free_app_ids() {
    local root=$1 name=$2 holder id
    holder=$(chroot "$root" getent group "$APP_UID" | cut -d: -f1 || true)
    if [[ -n $holder && $holder != "$(chroot "$root" id -gn "$name")" ]]; then
        id=$(free_system_id "$root" group)
        chroot "$root" groupmod --gid "$id" "$holder"
        find "$root" -xdev -gid "$APP_UID" -exec chgrp -h "$id" {} +
    fi
    holder=$(chroot "$root" getent passwd "$APP_UID" | cut -d: -f1 || true)
    if [[ -n $holder && $holder != "$name" ]]; then
        id=$(free_system_id "$root" passwd)
        chroot "$root" usermod --uid "$id" "$holder"
        find "$root" -xdev -uid "$APP_UID" -exec chown -h "$id" {} +
    fi
}

# free_system_id ROOTFS DATABASE: a system id below 999 that DATABASE (group or passwd) does not use.
free_system_id() {
    local id
    for ((id = 998; id >= 100; id--)); do
        chroot "$1" getent "$2" "$id" >/dev/null || { echo "$id"; return; }
    done
    die "no free system id in $1"
}

# set_app_user ROOTFS NAME: give user NAME (created by the Debian package,
# or here) the fixed uid/gid 999, so pod specs can say runAsUser: 999.
set_app_user() {
    local root=$1 name=$2 old_uid old_gid
    if ! chroot "$root" getent passwd "$name" >/dev/null; then
        chroot "$root" groupadd --system --gid "$APP_UID" "$name"
        chroot "$root" useradd --system --uid "$APP_UID" --gid "$APP_UID" --home-dir /data --no-create-home --shell /usr/sbin/nologin "$name"
        return
    fi
    old_uid=$(chroot "$root" id -u "$name")
    old_gid=$(chroot "$root" id -g "$name")
    [[ $old_uid == "$APP_UID" && $old_gid == "$APP_UID" ]] && return
    free_app_ids "$root" "$name"
    chroot "$root" groupmod --gid "$APP_UID" "$(chroot "$root" id -gn "$name")"
    chroot "$root" usermod --uid "$APP_UID" --gid "$APP_UID" "$name"
    find "$root" -xdev -uid "$old_uid" -exec chown -h "$APP_UID" {} +
    find "$root" -xdev -gid "$old_gid" -exec chgrp -h "$APP_UID" {} +
}

# slim_rootfs drops what a container never reads: package lists, caches,
# documentation, locales; it roughly halves import time on every `up`.
slim_rootfs() {
    local root=$1
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
        "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/tmp/*
    find "$root"/usr/lib -name '__pycache__' -type d -prune -exec rm -rf {} +
}

# customize_KEY ROOTFS: the image-specific layout. Writable places are
# created owned by uid 999; the pods mount volumes over them when the root
# filesystem is read-only.
customize_redis() {
    local root=$1
    set_app_user "$root" redis
    install -d -o "$APP_UID" -g "$APP_UID" -m 0770 "$root/data" "$root/etc/redis/conf.d"
    chown -R "$APP_UID:$APP_UID" "$root/etc/redis"
}
customize_valkey() {
    local root=$1
    set_app_user "$root" valkey
    install -d -o "$APP_UID" -g "$APP_UID" -m 0770 "$root/data" "$root/etc/valkey"
    chown -R "$APP_UID:$APP_UID" "$root/etc/valkey"
}
customize_haproxy() {
    local root=$1
    set_app_user "$root" haproxy
    install -d -o "$APP_UID" -g "$APP_UID" -m 0770 "$root/usr/local/etc/haproxy" "$root/run/haproxy" "$root/var/lib/haproxy"
}
# The exporter runs as the pod's user; Prometheus writes only to its mounted data volume.
customize_redis_exporter() { :; }
customize_prometheus() {
    install -d -o 65534 -g 65534 -m 0770 "$1/prometheus"
}
# kubectl_binary: the cluster's kubectl, which build.sh builds before the images.
kubectl_binary() {
    local binary
    binary=$(readlink -f "$BIN_DIR/kubectl")
    [[ -x $binary ]] || die "$BIN_DIR/kubectl is missing: run scripts/cluster/build.sh first (make up does)"
    echo "$binary"
}
customize_kubectl() {
    install -m 0755 "$(kubectl_binary)" "$1/usr/local/bin/kubectl"
}
customize_redis_client() {
    local root=$1
    set_app_user "$root" redis
    install -d -o "$APP_UID" -g "$APP_UID" -m 0770 "$root/data"
}

# pack_KIND KEY ROOTFS: the image's user, working directory and command. The exporter and
# Prometheus keep the entrypoints of their upstream images, so pod specs give only arguments.
IMAGE_PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
pack_redis() {
    pack "$1" "$2" --user "$APP_UID:$APP_UID" --workdir /data --env "$IMAGE_PATH_ENV" --cmd '["redis-server"]'
}
pack_valkey() {
    pack "$1" "$2" --user "$APP_UID:$APP_UID" --workdir /data --env "$IMAGE_PATH_ENV" --cmd '["valkey-server"]'
}
pack_haproxy() {
    pack "$1" "$2" --user "$APP_UID:$APP_UID" --env "$IMAGE_PATH_ENV" --stop-signal SIGUSR1 \
        --cmd '["haproxy","-W","-db","-f","/usr/local/etc/haproxy/haproxy.cfg"]'
}
pack_redis_client() {
    pack "$1" "$2" --user "$APP_UID:$APP_UID" --workdir /data --env "$IMAGE_PATH_ENV" \
        --env PYTHONDONTWRITEBYTECODE=1 --cmd '["sleep","infinity"]'
}
pack_kubectl() {
    pack "$1" "$2" --user "$APP_UID:$APP_UID" --workdir /tmp --env "$IMAGE_PATH_ENV" --cmd '["kubectl","version","--client"]'
}
pack_redis_exporter() {
    pack "$1" "$2" --user 65534:65534 --env "$IMAGE_PATH_ENV" --entrypoint '["/usr/bin/prometheus-redis-exporter"]'
}
pack_prometheus() {
    pack "$1" "$2" --user 65534:65534 --workdir /prometheus --env "$IMAGE_PATH_ENV" \
        --entrypoint '["/usr/bin/prometheus"]'
}

pack() {
    local key=$1 root=$2
    shift 2
    python3 "$CLUSTER_LIB_DIR/mkimage.py" --rootfs "$root" --out "$(archive_of "$key")" --name "$(image_ref "$key")" \
        --label "org.opencontainers.image.source=scripts/cluster/images.sh" "$@" >>"$IMAGES_DIR/$key.log"
}

build_pause() {
    local root=$ROOTFS_DIR/pause
    require_go
    go_env
    rm -rf "$root" && mkdir -p "$root"
    (cd "$REPO_ROOT/tools/pause" && go build -trimpath -ldflags "-s -w" -o "$root/pause" .) >>"$IMAGES_DIR/pause.log" 2>&1 ||
        die "building tools/pause failed; see $IMAGES_DIR/pause.log"
    pack pause "$root" --user 65535:65535 --entrypoint '["/pause"]'
}

# check_cert_manager_pin: like build.sh's check_pins, keeps versions.env (what
# up.sh takes the CRDs from) and the go.mod that is built from drifting apart.
check_cert_manager_pin() {
    local mod=github.com/cert-manager/cert-manager want=$CERT_MANAGER_VERSION
    grep -Eq "(^|[[:space:]])${mod//./\\.} ${want//./\\.}([[:space:]]|$)" "$REPO_ROOT/tools/cert-manager/go.mod" ||
        die "tools/cert-manager/go.mod does not pin $mod $want as scripts/versions.env says"
}

# build_cert_manager: cert-manager's controllers as one static binary in an
# otherwise empty root filesystem, run as the unprivileged uid 65532.
build_cert_manager() {
    local root=$ROOTFS_DIR/cert-manager dir=$REPO_ROOT/tools/cert-manager
    require_go
    go_env
    go_download "$dir"
    rm -rf "$root" && mkdir -p "$root"
    (cd "$dir" && nice -n 5 go build ${GO_BUILD_JOBS:+-p "$GO_BUILD_JOBS"} -trimpath \
        -ldflags "-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=$CERT_MANAGER_VERSION" \
        -o "$root/cert-manager-controller" .) >>"$IMAGES_DIR/cert-manager.log" 2>&1 || {
        tail -n 20 "$IMAGES_DIR/cert-manager.log" >&2
        die "building tools/cert-manager failed; see $IMAGES_DIR/cert-manager.log"
    }
    pack cert-manager "$root" --user 65532:65532 --entrypoint '["/cert-manager-controller"]'
}

debootstrap_script() {
    local suite scripts=/usr/share/debootstrap/scripts
    suite=$(image_suite "$1")
    if [[ -e $scripts/$suite ]]; then echo "$scripts/$suite"; else echo "$scripts/sid"; fi
}

# check_package_version KEY ROOTFS: the image holds the line its tag names.
check_package_version() {
    local key=$1 root=$2 package version
    package=$(image_main_package "$key")
    [[ -n $package ]] || return 0
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    version=$(chroot "$root" dpkg-query -W -f '${Version}' "$package")
    [[ $version =~ $(image_version_pattern "$key") ]] ||
        die "$key: $(image_suite "$key") serves $package $version, not the line $(image_ref "$key") promises"
    echo "$package $version" >"$root/.package-version"
}

build_debian() {
    local key=$1 root=$ROOTFS_DIR/$1 tmp
    tmp=$root.tmp
    umount_under "$tmp"
    rm -rf "$tmp"
    mkdir -p "$DEB_CACHE"
    # The sid script serves every suite after bookworm, whatever the host's debootstrap knows.
    debootstrap --variant=minbase --include="$(image_packages "$key")" --cache-dir="$DEB_CACHE" \
        "$(image_suite "$key")" "$tmp" "$IMAGE_DEBIAN_MIRROR" "$(debootstrap_script "$key")" >>"$IMAGES_DIR/$key.log" 2>&1 || {
        umount_under "$tmp"
        tail -n 5 "$IMAGES_DIR/$key.log" >&2
        die "debootstrap for $key failed; see $IMAGES_DIR/$key.log"
    }
    umount_under "$tmp"
    check_package_version "$key" "$tmp"
    local kind=${key%%-[0-9]*}
    kind=${kind//-/_}
    "customize_$kind" "$tmp"
    slim_rootfs "$tmp"
    "pack_$kind" "$key" "$tmp"
    rm -rf "$root"
    mv "$tmp" "$root"
}

build_images() {
    require_root
    [[ -n $IMAGE_DEBIAN_MIRROR ]] || die "no Debian archive in /etc/apt sources: set IMAGE_DEBIAN_MIRROR"
    # One build at a time: two debootstraps into the same directory corrupt each other.
    mkdir -p "$IMAGES_DIR"
    exec 8>"$IMAGES_DIR/.build.lock"
    flock 8
    command -v debootstrap >/dev/null || die "debootstrap is not installed: run scripts/install-host-packages.sh (make up and make test do)"
    mkdir -p "$IMAGES_DIR" "$ROOTFS_DIR"
    check_cert_manager_pin
    local key hash start
    for key in "${IMAGE_KEYS[@]}"; do
        hash=$(image_hash "$key")
        if [[ ${FORCE:-0} != 1 && -f $(archive_of "$key") ]] && stamp_ok "image-$key" "$hash"; then
            continue
        fi
        log "building image $(image_ref "$key") (log: $IMAGES_DIR/$key.log)"
        start=$SECONDS
        : >"$IMAGES_DIR/$key.log"
        case $key in
            pause) build_pause ;;
            cert-manager) build_cert_manager ;;
            *) build_debian "$key" ;;
        esac
        stamp_write "image-$key" "$hash"
        log "built $(image_ref "$key") in $((SECONDS - start))s"
    done
}

# import_images loads what containerd lacks, in parallel: on a warm `up`
# after `down` (which wipes containerd) this is the slowest step.
import_images() {
    local key ref pids=() failed=0 pid
    for key in "${IMAGE_KEYS[@]}"; do
        ref=$(image_ref "$key")
        [[ -f $(archive_of "$key") ]] || die "image archive $(archive_of "$key") is missing; run $CLUSTER_LIB_DIR/images.sh build"
        if ctr_k8s images ls -q "name==$ref" | grep -qx "$ref"; then
            continue
        fi
        ctr_k8s images import --snapshotter overlayfs "$(archive_of "$key")" >>"$LOG_DIR/images-import.log" 2>&1 &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    ((failed == 0)) || die "importing images into containerd failed; see $LOG_DIR/images-import.log"
    for key in "${IMAGE_KEYS[@]}"; do
        ref=$(image_ref "$key")
        ctr_k8s images ls -q "name==$ref" | grep -qx "$ref" || die "image $ref is not in containerd after import"
    done
}

main() {
    case ${1:-build} in
        build) build_images ;;
        import) mkdir -p "$LOG_DIR" && import_images ;;
        all) build_images && mkdir -p "$LOG_DIR" && import_images ;;
        *) die "usage: $0 [build|import|all]" ;;
    esac
}

main "$@"
