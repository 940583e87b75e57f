#!/bin/sh
# preStop of the Redis container. On the master: prefer replicas already running the new
# revision, pause writes, wait until every replica holds every write, then have Sentinel fail
# over and wait for it. Pausing first is what keeps acknowledged writes: a plain SENTINEL
# FAILOVER leaves the old master accepting writes that vanish when it is demoted.
set -u
# shellcheck source=lib.sh
. /scripts/lib.sh

info=$(redis_cmd localhost INFO replication) || exit 0
[ "$(printf '%s\n' "$info" | info_field role)" = master ] || exit 0
replicas=$(printf '%s\n' "$info" | info_field connected_slaves)
[ "${replicas:-0}" -gt 0 ] || { log "preStop: master without replicas, nothing to hand over"; exit 0; }

revision_of() {
    redis_cmd "$1" INFO server | info_field config_file | awk -F / '{ print $(NF - 1) }'
}

replica_hosts=$(printf '%s\n' "$info" | tr -d '\r' | sed -n 's/^slave[0-9]*:ip=\([^,]*\),.*state=online.*/\1/p')
updated=0
for host in $replica_hosts; do
    if [ "$(revision_of "$host")" != "${REVISION:-unknown}" ]; then
        updated=$((updated + 1))
    fi
done
if [ "$updated" -gt 0 ]; then
    # A rolling update is under way: make the replicas still on this (old) revision the last
    # choice, so the master moves once, to a pod that will not restart next.
    stale=0
    for host in $replica_hosts; do
        if [ "$(revision_of "$host")" = "${REVISION:-unknown}" ]; then
            redis_cmd "$host" CONFIG SET replica-priority "$STALE_REPLICA_PRIORITY" >/dev/null &&
                stale=$((stale + 1)) && stale_hosts="${stale_hosts:-} $host"
        fi
    done
    # Sentinel picks the replica from its cached INFO, refreshed every 10 s: wait until it has
    # seen the new priorities.
    deadline=$(($(date +%s) + 12))
    while [ "$stale" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do
        seen=$(sentinel_cmd localhost SENTINEL REPLICAS "$MASTER_SET" | tr -d '\r' |
            awk -v p="$STALE_REPLICA_PRIORITY" 'key == "slave-priority" && $0 == p { n++ } { key = $0 } END { print n + 0 }')
        [ "$seen" -ge "$stale" ] && break
        sleep 1
    done
fi

log "preStop: pausing writes and handing the master role over"
redis_cmd localhost CLIENT PAUSE "$PAUSE_MILLISECONDS" WRITE >/dev/null
redis_cmd localhost WAIT "$replicas" 2000 >/dev/null
sentinel_cmd localhost SENTINEL FAILOVER "$MASTER_SET" >/dev/null
deadline=$(($(date +%s) + PAUSE_MILLISECONDS / 1000))
while [ "$(date +%s)" -lt "$deadline" ]; do
    current=$(sentinel_cmd localhost SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_SET" | head -n 1 | tr -d '\r')
    if [ -n "$current" ] && [ "$current" != "$SELF" ]; then
        log "preStop: $current is master now"
        # Equal priorities again: a later crash failover must pick the most up-to-date replica.
        for host in ${stale_hosts:-}; do
            redis_cmd "$host" CONFIG SET replica-priority 100 >/dev/null || true
        done
        exit 0
    fi
    sleep 0.2
done
log "preStop: no failover within $((PAUSE_MILLISECONDS / 1000)) s; shutting down anyway"
