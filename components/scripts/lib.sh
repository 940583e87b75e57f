# shellcheck shell=sh disable=SC2034
# Shared helpers of the Redis and Sentinel containers; sourced, never executed.
# Every constant comes from constants.sh, which the Pulumi program generates beside this file.
# Environment: POD_NAME REVISION, the password of every role (constants.sh names the variables)
# and REDIS_PREVIOUS_PASSWORD during a rotation; REDISCLI_AUTH holds the admin password so that
# no password ever appears on a command line.

# shellcheck source=constants.sh
. "${0%/*}/constants.sh"

# installed NAME...: the first NAME this image has: images of one engine differ in which of
# the engines' binary names they ship (some Valkey images also have the redis-* ones).
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

if [ -z "${REDIS_ADMIN_PASSWORD:-}" ]; then
    # A pod created from a spec before credentials by role (restarted mid-upgrade) has only
    # the application password: every role takes it, as in that layout.
    for _role in $ROLES; do
        eval "_variable=\$${_role}_PASSWORD_ENV"
        eval "$_variable=\${$_variable:-\$REDIS_PASSWORD}"
    done
fi

ORDINAL=${POD_NAME##*-}
LEGACY_ADMIN_HASHES=""
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

# The client certificate and CA of every TLS connection the scripts open; the pod's own
# certificate serves as client certificate (its usages include client auth).
TLS_CLI_ARGS="--tls --cacert $TLS_DIR/ca.crt --cert $TLS_DIR/tls.crt --key $TLS_DIR/tls.key"

# cli USER HOST PORT ARGS...: one command as USER (password in REDISCLI_AUTH), bounded in time;
# over TLS when the pods' links are. In the TLS transition mode the links are plain, but a peer
# already on the TLS-only spec refuses plain at once: the command is then sent again over TLS,
# on the TLS port beside the plain one (PORT + 1), so the last pods of the previous spec still
# hand over to the new ones.
cli() {
    _cli_user=$1
    _cli_host=$2
    shift
    shift
    _cli_port=$1
    shift
    _cli_tls=""
    [ "$INTERNAL_TLS" = 0 ] || _cli_tls=$TLS_CLI_ARGS
    # shellcheck disable=SC2086 # the TLS arguments are a list of words
    timeout "$COMMAND_TIMEOUT_SECONDS" "$CLI_BIN" --no-auth-warning $_cli_tls --user "$_cli_user" \
        -h "$_cli_host" -p "$_cli_port" "$@" 2>/dev/null && return 0
    _cli_status=$?
    [ "$INTERNAL_TLS" = 0 ] && [ "$REDIS_LISTEN_TLS_PORT" != 0 ] || return "$_cli_status"
    # shellcheck disable=SC2086
    timeout "$COMMAND_TIMEOUT_SECONDS" "$CLI_BIN" --no-auth-warning $TLS_CLI_ARGS --user "$_cli_user" \
        -h "$_cli_host" -p "$((_cli_port + 1))" "$@" 2>/dev/null
}

# redis_cmd HOST ARGS...: a command to a Redis server as the admin user.
redis_cmd() {
    _host=$1
    shift
    cli "$ADMIN_USER" "$_host" "$REDIS_PORT" "$@"
}

# local_redis_cmd ARGS...: a command to this pod's Redis server as the admin user, through its
# Unix socket (which stays open while a hand-over has closed the TCP port).
local_redis_cmd() {
    timeout "$COMMAND_TIMEOUT_SECONDS" "$CLI_BIN" --no-auth-warning --user "$ADMIN_USER" \
        -s "$REDIS_SOCKET" "$@" 2>/dev/null
}

# close_ports: this server stops accepting TCP connections, plain and TLS; established ones
# (replication, Sentinel links) stay.
close_ports() {
    if [ "$REDIS_LISTEN_TLS_PORT" = 0 ]; then
        local_redis_cmd CONFIG SET port 0 >/dev/null
    else
        local_redis_cmd CONFIG SET port 0 tls-port 0 >/dev/null
    fi
}

# open_ports: the ports this server listens on by its config, open again.
open_ports() {
    if [ "$REDIS_LISTEN_TLS_PORT" = 0 ]; then
        local_redis_cmd CONFIG SET port "$REDIS_LISTEN_PORT" >/dev/null
    else
        local_redis_cmd CONFIG SET port "$REDIS_LISTEN_PORT" tls-port "$REDIS_LISTEN_TLS_PORT" >/dev/null
    fi
}

# ports_closed: true while close_ports holds (the port peers use is closed).
ports_closed() {
    _port_setting=port
    [ "$INTERNAL_TLS" = 0 ] || _port_setting=tls-port
    [ "$(local_redis_cmd CONFIG GET "$_port_setting" | tail -n 1)" = 0 ]
}

# certificate_digest: a digest of the mounted certificate files, empty without TLS.
certificate_digest() {
    [ "$REDIS_LISTEN_TLS_PORT" != 0 ] || return 0
    cat "$TLS_DIR/tls.crt" "$TLS_DIR/tls.key" "$TLS_DIR/ca.crt" 2>/dev/null | sha256sum | cut -d ' ' -f 1
}

# on_certificate_change COMMAND...: in the background, runs COMMAND each time cert-manager has
# renewed the certificate (the kubelet swaps the Secret volume's files in one step).
on_certificate_change() {
    [ "$REDIS_LISTEN_TLS_PORT" != 0 ] || return 0
    watch_certificate "$@" &
}

# watch_certificate COMMAND...: the loop of on_certificate_change.
watch_certificate() {
    _seen=$(certificate_digest)
    while :; do
        sleep "$CERTIFICATE_RELOAD_POLL_SECONDS"
        _now=$(certificate_digest)
        if [ -n "$_now" ] && [ "$_now" != "$_seen" ]; then
            "$@" && _seen=$_now
        fi
    done
}

# sentinel_cmd HOST ARGS...: a command to a Sentinel as its admin user.
sentinel_cmd() {
    _host=$1
    shift
    cli "$ADMIN_SENTINEL_USER" "$_host" "$SENTINEL_PORT" "$@"
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

# named_master_address HOST: "HOST PORT" of the master the Sentinel at HOST names, empty when
# it names none.
named_master_address() {
    sentinel_cmd "$1" SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_SET" | tr -d '\r' | paste -s -d ' ' -
}

# cpu_ticks PID: the CPU time PID has used, user and system, in clock ticks.
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# password_hash PASSWORD: the SHA-256 form ACL rules accept, so configs hold no plain text.
password_hash() {
    printf '%s' "$1" | sha256sum | cut -d ' ' -f 1
}

# role_password ROLE: the password of ROLE (APPLICATION, ADMIN, ...) from the environment.
role_password() {
    eval "_variable=\$$1_PASSWORD_ENV"
    eval "printf '%s' \"\${$_variable:-}\""
}

# role_previous_password ROLE: the previous password of ROLE while a rotation keeps it.
role_previous_password() {
    eval "_variable=\$$1_PREVIOUS_PASSWORD_ENV"
    eval "printf '%s' \"\${$_variable:-}\""
}

# role_hashes ROLE: ACL password rules of ROLE: its password, its previous one while a rotation
# keeps it, and LEGACY_ADMIN_HASHES for the admin while pods of a release from before
# credentials by role still run.
role_hashes() {
    # An unset password gives no hash: the user is on but nobody can log in as it.
    _password=$(role_password "$1")
    [ -z "$_password" ] || printf '#%s' "$(password_hash "$_password")"
    _previous=$(role_previous_password "$1")
    if [ -n "$_previous" ] && [ "$_previous" != "$_password" ]; then
        printf ' #%s' "$(password_hash "$_previous")"
    fi
    if [ "$1" = ADMIN ] && [ -n "${LEGACY_ADMIN_HASHES:-}" ]; then
        printf ' %s' "$LEGACY_ADMIN_HASHES"
    fi
}

# role_user ROLE redis|sentinel: the ACL user of ROLE on that port, empty when it has none.
role_user() {
    if [ "$2" = sentinel ]; then eval "printf '%s' \"\$$1_SENTINEL_USER\""; else eval "printf '%s' \"\$$1_USER\""; fi
}

# role_rules ROLE redis|sentinel: the ACL rules of ROLE's user on that port.
role_rules() {
    if [ "$2" = sentinel ]; then eval "printf '%s' \"\$$1_SENTINEL_ACL_RULES\""; else eval "printf '%s' \"\$$1_ACL_RULES\""; fi
}

# acl_user_lines redis|sentinel: the config's "user" line of every role with a user there.
acl_user_lines() {
    for _role in $ROLES; do
        _user=$(role_user "$_role" "$1")
        [ -n "$_user" ] || continue
        printf 'user %s on %s %s\n' "$_user" "$(role_hashes "$_role")" "$(role_rules "$_role" "$1")"
    done
}

# setuser_role ROLE redis|sentinel AS_USER HOST: ACL SETUSER of ROLE's user on a running server,
# authenticated as AS_USER with REDISCLI_AUTH; adds ROLE's password hashes to those it has.
setuser_role() {
    _user=$(role_user "$1" "$2")
    [ -n "$_user" ] || return 0
    _port=$REDIS_PORT
    [ "$2" = redis ] || _port=$SENTINEL_PORT
    set -f
    # shellcheck disable=SC2046 # hashes and rules are lists of words
    cli "$3" "$4" "$_port" ACL SETUSER "$_user" on $(role_hashes "$1") $(role_rules "$1" "$2") >/dev/null || true
    set +f
}

# teach_legacy_peer HOST: a pod of a release from before credentials by role (its admin user
# and its Sentinel's default user take the application password) learns every role's user, and
# its Sentinel the credentials Sentinels now use with each other and with Redis. Fails when HOST
# accepts no application password as admin.
teach_legacy_peer() (
    for legacy in "$REDIS_PASSWORD" "${REDIS_PREVIOUS_PASSWORD:-}"; do
        [ -n "$legacy" ] || continue
        REDISCLI_AUTH=$legacy
        [ "$(redis_cmd "$1" PING)" = PONG ] || continue
        for role in $ROLES; do
            [ "$role" = APPLICATION ] && continue
            setuser_role "$role" redis "$ADMIN_USER" "$1"
            setuser_role "$role" sentinel "$APPLICATION_SENTINEL_USER" "$1"
        done
        cli "$APPLICATION_SENTINEL_USER" "$1" "$SENTINEL_PORT" SENTINEL CONFIG SET sentinel-user "$ADMIN_SENTINEL_USER" >/dev/null || true
        printf '%s' "$REDIS_ADMIN_PASSWORD" |
            cli "$APPLICATION_SENTINEL_USER" "$1" "$SENTINEL_PORT" -x SENTINEL CONFIG SET sentinel-pass >/dev/null || true
        cli "$APPLICATION_SENTINEL_USER" "$1" "$SENTINEL_PORT" SENTINEL SET "$MASTER_SET" auth-user "$SENTINEL_USER" >/dev/null || true
        printf '%s' "$REDIS_SENTINEL_PASSWORD" |
            cli "$APPLICATION_SENTINEL_USER" "$1" "$SENTINEL_PORT" >/dev/null -x SENTINEL SET "$MASTER_SET" auth-pass || true
        exit 0
    done
    exit 1
)

# teach_previous_generation_peer HOST: a pod still on the previous internal passwords (its admin
# user takes the previous admin password) learns every role's current password, so that this
# pod replicates from it, and its Sentinel and this pod's Sentinel talk to each other. Fails
# when there is no previous admin password or HOST does not take it.
teach_previous_generation_peer() (
    REDISCLI_AUTH=$(role_previous_password ADMIN)
    [ -n "$REDISCLI_AUTH" ] || exit 1
    [ "$(redis_cmd "$1" PING)" = PONG ] || exit 1
    for role in $ROLES; do
        setuser_role "$role" redis "$ADMIN_USER" "$1"
        setuser_role "$role" sentinel "$ADMIN_SENTINEL_USER" "$1"
    done
    exit 0
)

# teach_peers: peers still on the previous spec learn this spec's credentials, so replication,
# Sentinel and the proxy keep working while the pods roll: the current application password (new
# after a rotation; ACL SETUSER adds it to those a pod accepts, so this is a no-op otherwise),
# every role's password on pods still on the previous internal passwords, every role's user on
# pods from before credentials by role. Prints the hash of the
# application password while such a legacy pod answers (this pod's admin user must take it
# meanwhile: those pods' scripts and the previous proxy authenticate with it); once none does,
# no admin user of a peer takes it any more.
teach_peers() {
    _legacy_seen=""
    _current_peers=""
    for _peer in $(pod_hosts peers); do
        case $(redis_cmd "$_peer" PING) in
        PONG)
            _current_peers="$_current_peers $_peer"
            setuser_role APPLICATION redis "$ADMIN_USER" "$_peer"
            setuser_role APPLICATION sentinel "$ADMIN_SENTINEL_USER" "$_peer"
            ;;
        '') ;;
        *)
            if teach_previous_generation_peer "$_peer"; then
                log "taught $_peer the rotated internal passwords"
            elif teach_legacy_peer "$_peer"; then
                _legacy_seen=1
            fi
            ;;
        esac
    done
    _legacy_hash="#$(password_hash "$REDIS_PASSWORD")"
    if [ -n "$_legacy_seen" ]; then
        printf '%s' "$_legacy_hash"
        return 0
    fi
    for _peer in $_current_peers; do
        redis_cmd "$_peer" ACL SETUSER "$ADMIN_USER" "!${_legacy_hash#\#}" >/dev/null || true
    done
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
