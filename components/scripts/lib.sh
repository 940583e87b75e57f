# shellcheck shell=sh disable=SC2034
# Shared helpers of the Redis and Sentinel containers; sourced, never executed.
# Every constant comes from constants.sh, which the Pulumi program generates beside this file.
# Environment: POD_NAME REVISION REDIS_PASSWORD [REDIS_PREVIOUS_PASSWORD]; REDISCLI_AUTH holds
# the password so that it never appears on a command line.

# shellcheck source=constants.sh
. "${0%/*}/constants.sh"

# installed NAME...: the first NAME this image has. The ConfigMap keeps its name when its
# content changes, so a pod still on the previous revision (another engine's image, during a
# migration) can read a constants.sh written for the next one.
installed() {
    for _candidate in "$@"; do
        if command -v "$_candidate" >/dev/null 2>&1; then
            printf '%s' "$_candidate"
            return 0
        fi
    done
    printf '%s' "$1"
}
# shellcheck disable=SC2086 # the *_BINS constants are lists of names
SERVER_BIN=$(installed "$SERVER_BIN" $SERVER_BINS)
# shellcheck disable=SC2086
SENTINEL_BIN=$(installed "$SENTINEL_BIN" $SENTINEL_BINS)
# shellcheck disable=SC2086
CLI_BIN=$(installed "$CLI_BIN" $CLI_BINS)

ORDINAL=${POD_NAME##*-}
SHUTDOWN_LOG=$DATA_DIR/last-shutdown.log

log() {
    printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$POD_NAME" "$*" >&2
}

# pod_host ORDINAL: the stable DNS name of a pod of this StatefulSet.
pod_host() {
    printf '%s-%s%s' "$STATEFULSET" "$1" "$POD_HOST_SUFFIX"
}

SELF=$(pod_host "$ORDINAL")

# host_ordinal HOST: the ordinal of a pod host name of this StatefulSet, empty for any other.
host_ordinal() {
    _name=${1%%.*}
    _ordinal=${_name#"$STATEFULSET"-}
    case $_ordinal in
    "$_name" | '' | *[!0-9]*) return 0 ;;
    esac
    printf '%s' "$_ordinal"
}

# removed_host HOST: true for a pod of this StatefulSet beyond the replica count (scaled away).
removed_host() {
    _ordinal=$(host_ordinal "$1")
    [ -n "$_ordinal" ] && [ "$_ordinal" -ge "$REPLICAS" ]
}

# pod_hosts [all|peers]: the host name of every pod, or of every pod but this one, one a line.
pod_hosts() {
    _i=0
    while [ "$_i" -lt "$REPLICAS" ]; do
        if [ "${1:-all}" = all ] || [ "$_i" != "$ORDINAL" ]; then
            pod_host "$_i"
            echo
        fi
        _i=$((_i + 1))
    done
}

# redis_cmd HOST ARGS...: a command to a Redis server as the admin user.
redis_cmd() {
    _host=$1
    shift
    timeout "$COMMAND_TIMEOUT_SECONDS" "$CLI_BIN" --no-auth-warning --user "$ADMIN_USER" \
        -h "$_host" -p "$REDIS_PORT" "$@" 2>/dev/null
}

# local_redis_cmd ARGS...: a command to this pod's Redis server as the admin user, through its
# Unix socket (which stays open while a hand-over has closed the TCP port).
local_redis_cmd() {
    timeout "$COMMAND_TIMEOUT_SECONDS" "$CLI_BIN" --no-auth-warning --user "$ADMIN_USER" \
        -s "$REDIS_SOCKET" "$@" 2>/dev/null
}

# sentinel_cmd HOST ARGS...: a command to a Sentinel.
sentinel_cmd() {
    _host=$1
    shift
    timeout "$COMMAND_TIMEOUT_SECONDS" "$CLI_BIN" --no-auth-warning -h "$_host" -p "$SENTINEL_PORT" "$@" 2>/dev/null
}

# info_field NAME: reads "NAME:value" from INFO output on stdin.
info_field() {
    tr -d '\r' | sed -n "s/^$1://p" | head -n 1
}

# entry_fields FIELD...: reads a SENTINEL MASTER, REPLICAS or SENTINELS reply (redis-cli's raw
# form: one key or value a line, every entry starting with "name") on stdin and prints one line
# per entry with the values of FIELD..., "-" for a field the entry lacks or leaves empty. The
# one reader of Sentinel replies: `... | entry_fields ip flags | while read -r ip flags; do`.
entry_fields() {
    tr -d '\r' | awk -v fields="$*" '
        function flush(    i, line) {
            if (!seen) return
            line = ""
            for (i = 1; i <= count; i++) line = line (i > 1 ? " " : "") ((wanted[i] in value) ? value[wanted[i]] : "-")
            print line
            split("", value)
            seen = 0
        }
        BEGIN { count = split(fields, wanted, " ") }
        NR % 2 == 1 { key = $0; next }
        key == "name" { flush() }
        { value[key] = ($0 == "" ? "-" : $0); seen = 1 }
        END { flush() }'
}

# master_set_fields HOST FIELD...: entry_fields of the Sentinel at HOST's view of the master.
master_set_fields() {
    _host=$1
    shift
    sentinel_cmd "$_host" SENTINEL MASTER "$MASTER_SET" | entry_fields "$@"
}

# named_master HOST: the master the Sentinel at HOST names, empty when it names none.
named_master() {
    sentinel_cmd "$1" SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_SET" | head -n 1 | tr -d '\r'
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
    for _host in $(pod_hosts); do
        _reply=$(sentinel_cmd "$_host" SENTINEL MASTER "$MASTER_SET") || continue
        [ -n "$_reply" ] || continue
        _answered=$((_answered + 1))
        printf '%s\n' "$_reply" | entry_fields config-epoch ip | grep -v -e '^- ' -e ' -$' || true
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

# agreeing_sentinels HOST: how many Sentinels name HOST master.
agreeing_sentinels() {
    _agree=0
    for _host in $(pod_hosts); do
        [ "$(named_master "$_host")" = "$1" ] && _agree=$((_agree + 1))
    done
    echo "$_agree"
}

# peer_master: a reachable pod of this StatefulSet, other than this one, that reports role:master.
peer_master() {
    for _host in $(pod_hosts peers); do
        if [ "$(redis_cmd "$_host" INFO replication | info_field role)" = master ]; then
            printf '%s' "$_host"
            return 0
        fi
    done
}

# holds_data INFO: the INFO replication text on stdin is from a server holding this set's data:
# a replica that synced at some point (a replica that never did has offset 0) or a master.
holds_data() {
    _info=$(cat)
    [ "$(printf '%s\n' "$_info" | info_field master_repl_offset)" -gt 0 ] 2>/dev/null
}

# stranded_replicas: peers that replicated this pod, lost the link and still hold that data.
# Their data is newer than anything this pod can reload from its AOF after a crash.
stranded_replicas() {
    _count=0
    for _host in $(pod_hosts peers); do
        _info=$(redis_cmd "$_host" INFO replication || true)
        if [ "$(printf '%s\n' "$_info" | info_field master_host)" = "$SELF" ] &&
            [ "$(printf '%s\n' "$_info" | info_field master_link_status)" = down ] &&
            printf '%s\n' "$_info" | holds_data; then
            _count=$((_count + 1))
        fi
    done
    echo "$_count"
}

# peers_holding_data: how many reachable peers hold this set's data.
peers_holding_data() {
    _count=0
    for _host in $(pod_hosts peers); do
        redis_cmd "$_host" INFO replication | holds_data && _count=$((_count + 1))
    done
    echo "$_count"
}

# mark_initialized: records that the data directory holds this set's data (a completed sync,
# or the first master of a new set). Only a pod with this mark may ever be master.
mark_initialized() {
    [ -f "$DATA_DIR/.initialized" ] || touch "$DATA_DIR/.initialized"
}
