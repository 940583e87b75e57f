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
log "starting Sentinel for $(printf '%s\n' "$state" | sed -n 's/^sentinel monitor [^ ]* \([^ ]*\) .*/\1/p')"
exec redis-sentinel "$STATE"
