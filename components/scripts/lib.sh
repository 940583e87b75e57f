# shellcheck shell=sh disable=SC2034
# Shared helpers of the Redis and Sentinel containers; sourced, never executed.
# Inputs (environment): POD_NAME POD_NAMESPACE HEADLESS_SERVICE CLUSTER_DOMAIN REPLICAS QUORUM
# MASTER_SET GRACE_SECONDS REDIS_PASSWORD [REDIS_PREVIOUS_PASSWORD]; REDISCLI_AUTH holds the
# password so that it never appears on a command line.

REDIS_PORT=6379
SENTINEL_PORT=26379
STS_NAME=${POD_NAME%-*}
ORDINAL=${POD_NAME##*-}
MAJORITY=$((REPLICAS / 2 + 1))

log() {
    printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$POD_NAME" "$*" >&2
}

# pod_host ORDINAL: the stable DNS name of a pod of this StatefulSet.
pod_host() {
    printf '%s-%s.%s.%s.svc.%s' "$STS_NAME" "$1" "$HEADLESS_SERVICE" "$POD_NAMESPACE" "$CLUSTER_DOMAIN"
}

SELF=$(pod_host "$ORDINAL")
SHUTDOWN_LOG=/data/redis/last-shutdown.log

# redis_cmd HOST ARGS...: a command to a Redis server as the admin user.
redis_cmd() {
    _host=$1
    shift
    timeout 3 redis-cli --no-auth-warning --user admin -h "$_host" -p "$REDIS_PORT" "$@" 2>/dev/null
}

# sentinel_cmd HOST ARGS...: a command to a Sentinel.
sentinel_cmd() {
    _host=$1
    shift
    timeout 3 redis-cli --no-auth-warning -h "$_host" -p "$SENTINEL_PORT" "$@" 2>/dev/null
}

# info_field NAME: reads "NAME:value" from INFO output on stdin.
info_field() {
    tr -d '\r' | sed -n "s/^$1://p" | head -n 1
}

# password_hash PASSWORD: the SHA-256 form ACL rules accept, so configs hold no plain text.
password_hash() {
    printf '%s' "$1" | sha256sum | cut -d ' ' -f 1
}

# acl_passwords: ACL password rules for the current and, during a rotation, the previous password.
acl_passwords() {
    printf '#%s' "$(password_hash "$REDIS_PASSWORD")"
    if [ -n "${REDIS_PREVIOUS_PASSWORD:-}" ] && [ "$REDIS_PREVIOUS_PASSWORD" != "$REDIS_PASSWORD" ]; then
        printf ' #%s' "$(password_hash "$REDIS_PREVIOUS_PASSWORD")"
    fi
}

# sentinel_view: prints "EPOCH HOST" for every Sentinel that knows the master, then a line
# "answered N" with the number of Sentinels that replied at all.
sentinel_view() {
    _answered=0
    _i=0
    while [ "$_i" -lt "$REPLICAS" ]; do
        _reply=$(sentinel_cmd "$(pod_host "$_i")" SENTINEL MASTER "$MASTER_SET") && [ -n "$_reply" ] && {
            _answered=$((_answered + 1))
            printf '%s\n' "$_reply" | tr -d '\r' | awk '
                NR % 2 == 1 { key = $0; next }
                key == "ip" { host = $0 }
                key == "config-epoch" { epoch = $0 }
                END { if (host != "" && epoch != "") print epoch, host }'
        }
        _i=$((_i + 1))
    done
    echo "answered $_answered"
}

# sentinel_master WAIT_SECONDS: the master named with the highest config epoch by the Sentinels,
# waiting up to WAIT_SECONDS for a majority of them to answer. Empty when none knows one.
sentinel_master() {
    _deadline=$(($(date +%s) + $1))
    while :; do
        _view=$(sentinel_view)
        _answered=$(printf '%s\n' "$_view" | sed -n 's/^answered //p')
        _best=$(printf '%s\n' "$_view" | grep -v '^answered ' | sort -n -r | head -n 1 | cut -d ' ' -f 2)
        if [ "$_answered" -ge "$MAJORITY" ] || [ "$(date +%s)" -ge "$_deadline" ]; then
            printf '%s' "$_best"
            return 0
        fi
        sleep 1
    done
}

# peer_master: a reachable pod of this StatefulSet, other than this one, that reports role:master.
peer_master() {
    _i=0
    while [ "$_i" -lt "$REPLICAS" ]; do
        if [ "$_i" != "$ORDINAL" ]; then
            _host=$(pod_host "$_i")
            if [ "$(redis_cmd "$_host" INFO replication | info_field role)" = master ]; then
                printf '%s' "$_host"
                return 0
            fi
        fi
        _i=$((_i + 1))
    done
}

# stranded_replicas: peers that replicated this pod, lost the link and still hold that data.
# Their data is newer than anything this pod can reload from its AOF after a crash.
stranded_replicas() {
    _count=0
    _i=0
    while [ "$_i" -lt "$REPLICAS" ]; do
        if [ "$_i" != "$ORDINAL" ]; then
            _info=$(redis_cmd "$(pod_host "$_i")" INFO replication || true)
            if [ "$(printf '%s\n' "$_info" | info_field master_host)" = "$SELF" ] &&
                [ "$(printf '%s\n' "$_info" | info_field master_link_status)" = down ] &&
                [ "$(printf '%s\n' "$_info" | info_field slave_repl_offset)" -gt 0 ] 2>/dev/null; then
                _count=$((_count + 1))
            fi
        fi
        _i=$((_i + 1))
    done
    echo "$_count"
}
