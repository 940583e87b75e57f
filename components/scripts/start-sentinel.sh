#!/bin/sh
# Starts the Sentinel sidecar. Its state (known master, epochs, peers) lives on the pod's volume
# so that after every pod restarted the Sentinels still agree on the last elected master, which
# holds the most recent data. Entries of pods beyond the current replica count are dropped, so
# after a scale-down the majority is counted over live pods only.
set -eu
# shellcheck source=lib.sh
. /scripts/lib.sh

STATE_DIR=/data/sentinel
STATE=$STATE_DIR/sentinel.conf
mkdir -p "$STATE_DIR"

# known_state: the Sentinel's own state lines from its last run, trimmed to live pods, with the
# monitor line first (Sentinel requires it before any other option of the master).
known_state() {
    [ -f "$STATE" ] || return 0
    awk -v set="$MASTER_SET" -v sts="$STS_NAME" -v replicas="$REPLICAS" -v quorum="$QUORUM" '
        function live(host,    name, ordinal) {
            name = host
            sub(/\..*/, "", name)
            if (index(name, sts "-") != 1) return 1
            ordinal = substr(name, length(sts) + 2)
            return ordinal !~ /^[0-9]+$/ || ordinal + 0 < replicas
        }
        $1 == "sentinel" && $2 == "monitor" && $3 == set { monitor = "sentinel monitor " set " " $4 " " $5 " " quorum; next }
        $1 == "sentinel" && ($2 == "known-replica" || $2 == "known-sentinel") && $3 == set {
            if (live($4)) rest = rest $0 "\n"
            next
        }
        $1 == "sentinel" && ($2 == "myid" || $2 == "current-epoch") { head = head $0 "\n"; next }
        $1 == "sentinel" && ($2 == "config-epoch" || $2 == "leader-epoch") && $3 == set { rest = rest $0 "\n" }
        END { if (monitor != "") printf "%s%s\n%s", head, monitor, rest }
    ' "$STATE"
}

# removed_pod_entries HOST: "KNOWN UP" for the replicas and Sentinels on pods beyond the replica
# count that the Sentinel at HOST still lists: how many, and how many of them it does not yet
# flag as down.
removed_pod_entries() {
    {
        sentinel_cmd "$1" SENTINEL REPLICAS "$MASTER_SET" || true
        sentinel_cmd "$1" SENTINEL SENTINELS "$MASTER_SET" || true
    } | tr -d '\r' | awk -v sts="$STS_NAME" -v replicas="$REPLICAS" '
        function removed(host,    name, ordinal) {
            name = host
            sub(/\..*/, "", name)
            if (index(name, sts "-") != 1) return 0
            ordinal = substr(name, length(sts) + 2)
            return ordinal ~ /^[0-9]+$/ && ordinal + 0 >= replicas
        }
        function finish() {
            if (host != "" && removed(host)) { known++; if (flags !~ /s_down|disconnected/) up++ }
            host = ""; flags = ""
        }
        NR % 2 == 1 { key = $0; next }
        key == "name" { finish() }
        key == "ip" { host = $0 }
        key == "flags" { flags = $0 }
        END { finish(); print known + 0, up + 0 }'
}

# settled HOST: the Sentinel at HOST lists no removed pod and has found every live peer again.
settled() {
    [ "$(removed_pod_entries "$1")" = "0 0" ] || return 1
    _sentinels=$(sentinel_cmd "$1" SENTINEL SENTINELS "$MASTER_SET" | tr -d '\r' | grep -c '^runid$' || true)
    _replicas=$(sentinel_cmd "$1" SENTINEL REPLICAS "$MASTER_SET" | tr -d '\r' | grep -c '^runid$' || true)
    [ "${_sentinels:-0}" -ge $((REPLICAS - 1)) ] && [ "${_replicas:-0}" -ge $((REPLICAS - 1)) ]
}

# forget_removed_pods: after a scale-down the running Sentinels still count the removed pods,
# and a Sentinel restarted while those pods were terminating learnt them again, so failover
# majorities would be counted over pods that are gone. Once every such entry is down this
# Sentinel resets itself; Sentinels go in ordinal order, each waiting until the ones before it
# have found their live peers again, so at most one is relearning its view at any time.
forget_removed_pods() {
    while :; do
        sleep "$FORGET_CHECK_SECONDS"
        entries=$(removed_pod_entries localhost)
        if [ "${entries% *}" -eq 0 ] || [ "${entries#* }" -gt 0 ]; then
            continue
        fi
        flags=$(sentinel_cmd localhost SENTINEL MASTER "$MASTER_SET" | tr -d '\r' | awk 'prev == "flags" { print } { prev = $0 }')
        [ "$flags" = master ] || continue
        i=0
        while [ "$i" -lt "$ORDINAL" ]; do
            peer=$(pod_host "$i")
            if sentinel_cmd "$peer" PING >/dev/null && ! settled "$peer"; then
                break
            fi
            i=$((i + 1))
        done
        [ "$i" -eq "$ORDINAL" ] || continue
        log "Sentinel still counts ${entries% *} replicas and Sentinels of removed pods: SENTINEL RESET"
        sentinel_cmd localhost SENTINEL RESET "$MASTER_SET" >/dev/null || true
    done
}

state=$(known_state)
if [ -z "$state" ]; then
    log "no Sentinel state yet: waiting for the master to be known"
    while :; do
        master=$(sentinel_master 0)
        if [ -z "$master" ]; then
            info=$(redis_cmd localhost INFO replication || true)
            case "$(printf '%s\n' "$info" | info_field role)" in
                master) master=$SELF ;;
                slave) master=$(printf '%s\n' "$info" | info_field master_host) ;;
            esac
        fi
        [ -n "$master" ] && break
        sleep 1
    done
    state="sentinel monitor $MASTER_SET $master $REDIS_PORT $QUORUM"
fi

umask 077
# Sentinel rewrites this file as its view changes, which is what keeps its state on the volume.
{
    printf 'port %s\n' "$SENTINEL_PORT"
    printf 'dir %s\n' "$STATE_DIR"
    printf 'sentinel resolve-hostnames yes\n'
    printf 'sentinel announce-hostnames yes\n'
    printf 'sentinel announce-ip %s\n' "$SELF"
    printf 'sentinel announce-port %s\n' "$SENTINEL_PORT"
    printf 'user default on %s ~* &* +@all\n' "$(acl_passwords)"
    printf 'sentinel sentinel-pass %s\n' "$REDIS_PASSWORD"
    printf '%s\n' "$state"
    sed "s/@MASTER_SET@/$MASTER_SET/g" /config/sentinel.conf
    printf 'sentinel auth-user %s admin\n' "$MASTER_SET"
    printf 'sentinel auth-pass %s %s\n' "$MASTER_SET" "$REDIS_PASSWORD"
} > "$STATE.new"
mv "$STATE.new" "$STATE"
forget_removed_pods &
log "starting Sentinel for $(printf '%s\n' "$state" | sed -n 's/^sentinel monitor [^ ]* \([^ ]*\) .*/\1/p')"
exec redis-sentinel "$STATE"
