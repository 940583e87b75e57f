#!/usr/bin/env bash
# Build the cluster's container images from Debian packages and import them
# into containerd. No container registry can be reached from this machine,
# so every image is made locally:
#   $REDIS_IMAGE         redis-server, redis-sentinel, redis-tools (uid 999)
#   $HAPROXY_IMAGE       Debian's haproxy (uid 999)
#   $REDIS_CLIENT_IMAGE  redis-tools (redis-cli, redis-benchmark), python3-redis (uid 999)
#   $PAUSE_IMAGE         static Go pause (tools/pause), containerd's sandbox image
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

# image_spec NAME prints "REF|PACKAGES" for an image key.
image_ref() {
    case $1 in
        redis) echo "$REDIS_IMAGE" ;;
        haproxy) echo "$HAPROXY_IMAGE" ;;
        redis-client) echo "$REDIS_CLIENT_IMAGE" ;;
        pause) echo "$PAUSE_IMAGE" ;;
    esac
}
image_packages() {
    case $1 in
        redis) echo redis-server,redis-sentinel,redis-tools ;;
        haproxy) echo haproxy ;;
        redis-client) echo redis-tools,python3,python3-redis ;;
    esac
}
IMAGE_KEYS=(pause redis haproxy redis-client)

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

image_hash() {
    local key=$1
    {
        echo "rev=$CLUSTER_BUILD_REVISION suite=$IMAGE_DEBIAN_SUITE mirror=$IMAGE_DEBIAN_MIRROR"
        echo "ref=$(image_ref "$key") packages=$(image_packages "$key") uid=$APP_UID"
        # Relative names: the hash must not depend on where the repository is checked out.
        (cd "$CLUSTER_LIB_DIR" && sha256sum images.sh mkimage.py)
        [[ $key != pause ]] || { go version; (cd "$REPO_ROOT/tools/pause" && sha256sum ./*.go go.mod); }
    } | sha256sum | cut -d' ' -f1
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
customize_haproxy() {
    local root=$1
    set_app_user "$root" haproxy
    install -d -o "$APP_UID" -g "$APP_UID" -m 0770 "$root/usr/local/etc/haproxy" "$root/run/haproxy" "$root/var/lib/haproxy"
}
customize_redis_client() {
    local root=$1
    set_app_user "$root" redis
    install -d -o "$APP_UID" -g "$APP_UID" -m 0770 "$root/data"
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

build_debian() {
    local key=$1 root=$ROOTFS_DIR/$1 tmp
    tmp=$root.tmp
    umount_under "$tmp"
    rm -rf "$tmp"
    mkdir -p "$DEB_CACHE"
    debootstrap --variant=minbase --include="$(image_packages "$key")" --cache-dir="$DEB_CACHE" \
        "$IMAGE_DEBIAN_SUITE" "$tmp" "$IMAGE_DEBIAN_MIRROR" >>"$IMAGES_DIR/$key.log" 2>&1 || {
        umount_under "$tmp"
        tail -n 5 "$IMAGES_DIR/$key.log" >&2
        die "debootstrap for $key failed; see $IMAGES_DIR/$key.log"
    }
    umount_under "$tmp"
    "customize_${key//-/_}" "$tmp"
    slim_rootfs "$tmp"
    local path=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    case $key in
        redis) pack "$key" "$tmp" --user "$APP_UID:$APP_UID" --workdir /data --env "$path" --cmd '["redis-server"]' ;;
        haproxy) pack "$key" "$tmp" --user "$APP_UID:$APP_UID" --env "$path" --stop-signal SIGUSR1 \
            --cmd '["haproxy","-W","-db","-f","/usr/local/etc/haproxy/haproxy.cfg"]' ;;
        redis-client) pack "$key" "$tmp" --user "$APP_UID:$APP_UID" --workdir /data --env "$path" \
            --env PYTHONDONTWRITEBYTECODE=1 --cmd '["sleep","infinity"]' ;;
    esac
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
    local key hash start
    for key in "${IMAGE_KEYS[@]}"; do
        hash=$(image_hash "$key")
        if [[ ${FORCE:-0} != 1 && -f $(archive_of "$key") ]] && stamp_ok "image-$key" "$hash"; then
            continue
        fi
        log "building image $(image_ref "$key") (log: $IMAGES_DIR/$key.log)"
        start=$SECONDS
        : >"$IMAGES_DIR/$key.log"
        if [[ $key == pause ]]; then build_pause; else build_debian "$key"; fi
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
