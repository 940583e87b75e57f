#!/bin/sh
# preStop of the Redis container. On the master: choose the replicas the master role should go
# to, wait until Sentinel would promote one of them, pause writes, wait until every replica
# holds every write, then have Sentinel fail over and wait until a quorum of Sentinels names the
# new master. Pausing first is what keeps acknowledged writes: a plain SENTINEL FAILOVER leaves
# the old master accepting writes that vanish when it is demoted. The pause outlives the pod,
# so a master whose hand-over failed never takes writes again; the Sentinels then fail over as
# after a crash, to a replica that holds every acknowledged write.
set -u
# shellcheck source=lib.sh
. /scripts/lib.sh
# A hook's output is discarded and the pod's log goes with the pod: keep the hook's log on the
# volume, where the next start of this pod prints it.
if [ -w "$SHUTDOWN_LOG" ] || [ -w "${SHUTDOWN_LOG%/*}" ]; then
    exec 2>"$SHUTDOWN_LOG"
fi

hook_deadline=$(($(date +%s) + GRACE_SECONDS - 5))

info=$(redis_cmd localhost INFO replication) || exit 0
[ "$(printf '%s\n' "$info" | info_field role)" = master ] || exit 0
replicas=$(printf '%s\n' "$info" | info_field connected_slaves)
[ "${replicas:-0}" -gt 0 ] || { log "preStop: master without replicas, nothing to hand over"; exit 0; }

revision_of() {
    redis_cmd "$1" INFO server | info_field config_file | awk -F / '{ print $(NF - 1) }'
}

replica_hosts=$(printf '%s\n' "$info" | tr -d '\r' | sed -n 's/^slave[0-9]*:ip=\([^,]*\),.*state=online.*/\1/p')

# The replicas the master role should go to. In a rolling update, the ones already on the new
# revision, so the master moves once. When none is (this pod is the first the controller
# updates, or it is deleted or drained outside an update), the lowest ordinal, which a rolling
# update reaches last: the master then moves at most twice.
preferred=""
lowest=""
for host in $replica_hosts; do
    if [ "$(revision_of "$host")" != "${REVISION:-unknown}" ]; then
        preferred="$preferred $host"
    fi
    name=${host%%.*}
    if [ -z "$lowest" ] || [ "${name##*-}" -lt "${lowest_ordinal}" ]; then
        lowest=$host
        lowest_ordinal=${name##*-}
    fi
done
[ -n "$preferred" ] || preferred=" $lowest"
log "preStop: handing the master role to one of:$preferred"

stale=0
for host in $replica_hosts; do
    for candidate in $preferred; do
        [ "$candidate" = "$host" ] && continue 2
    done
    redis_cmd "$host" CONFIG SET replica-priority "$STALE_REPLICA_PRIORITY" >/dev/null &&
        stale=$((stale + 1)) && stale_hosts="${stale_hosts:-} $host"
done

# promotable: "GOOD LAST" from the local Sentinel's view of the replicas: how many preferred
# ones it would promote now (up, answering, recently informed, linked to this master), and how
# many of the others it already knows as last choice. Sentinel refreshes replica INFO only
# every 10 s and loses sight of a restarted pod until its new address resolves, which is
# what makes SENTINEL FAILOVER answer NOGOODSLAVE right after a rolling update restarted them.
promotable() {
    sentinel_cmd localhost SENTINEL REPLICAS "$MASTER_SET" | tr -d '\r' |
        awk -v preferred="$preferred " -v last="$STALE_REPLICA_PRIORITY" '
            function finish() {
                if (ip != "" && index(preferred, " " ip " ")) {
                    if (flags == "slave" && link == "ok" && ping < 5000 && refresh < 30000 && priority > 0) good++
                } else if (ip != "" && priority == last) {
                    demoted++
                }
                ip = ""; flags = ""; link = ""; ping = 99999; refresh = 99999; priority = 0
            }
            BEGIN { ping = 99999; refresh = 99999 }
            NR % 2 == 1 { key = $0; next }
            key == "name" { finish() }
            key == "ip" { ip = $0 }
            key == "flags" { flags = $0 }
            key == "master-link-status" { link = $0 }
            key == "last-ok-ping-reply" { ping = $0 + 0 }
            key == "info-refresh" { refresh = $0 + 0 }
            key == "slave-priority" { priority = $0 + 0 }
            END { finish(); print good + 0, demoted + 0 }'
}

ready_deadline=$(($(date +%s) + 15))
[ "$ready_deadline" -lt $((hook_deadline - 10)) ] || ready_deadline=$((hook_deadline - 10))
view="0 0"
while [ "$(date +%s)" -lt "$ready_deadline" ]; do
    view=$(promotable)
    [ "${view% *}" -gt 0 ] && [ "${view#* }" -ge "$stale" ] && break
    sleep 0.5
done
log "preStop: the Sentinel would promote ${view% *} preferred replica(s) and knows ${view#* } of $stale others as last choice"

# agreeing_sentinels HOST: how many Sentinels name HOST master.
agreeing_sentinels() {
    _agree=0
    _i=0
    while [ "$_i" -lt "$REPLICAS" ]; do
        if [ "$(sentinel_cmd "$(pod_host "$_i")" SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_SET" | head -n 1 | tr -d '\r')" = "$1" ]; then
            _agree=$((_agree + 1))
        fi
        _i=$((_i + 1))
    done
    echo "$_agree"
}

while :; do
    log "preStop: pausing writes and handing the master role over"
    redis_cmd localhost CLIENT PAUSE $((GRACE_SECONDS * 1000)) WRITE >/dev/null
    acked=$(redis_cmd localhost WAIT "$replicas" 2000)
    reply=$(sentinel_cmd localhost SENTINEL FAILOVER "$MASTER_SET" | tr -d '\r')
    log "preStop: $acked of $replicas replicas hold every write; SENTINEL FAILOVER: $reply"
    [ "$reply" = OK ] && break
    if [ "$(date +%s)" -ge $((hook_deadline - 10)) ]; then
        log "preStop: no failover started; writes stay paused until shutdown, then the Sentinels fail over"
        exit 0
    fi
    redis_cmd localhost CLIENT UNPAUSE >/dev/null
    sleep 1
done

state=""
while [ "$(date +%s)" -lt "$hook_deadline" ]; do
    current=$(sentinel_cmd localhost SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_SET" | head -n 1 | tr -d '\r')
    # Returning lets the pod stop, Sentinel included, which may be the one leading the
    # failover: first make sure a quorum has learnt the new master from it.
    if [ -n "$current" ] && [ "$current" != "$SELF" ] && [ "$(agreeing_sentinels "$current")" -ge "$QUORUM" ]; then
        log "preStop: $current is master now, named by a quorum of Sentinels"
        # Equal priorities again: a later crash failover must pick the most up-to-date replica.
        for host in ${stale_hosts:-}; do
            redis_cmd "$host" CONFIG SET replica-priority 100 >/dev/null || true
        done
        exit 0
    fi
    now=$(sentinel_cmd localhost SENTINEL MASTER "$MASTER_SET" | tr -d '\r' |
        awk 'prev == "flags" || prev == "failover-state" { printf "%s=%s ", prev, $0 } { prev = $0 }')
    if [ "$now" != "$state" ]; then
        log "preStop: Sentinel: ${now}master $current"
        state=$now
    fi
    sleep 0.2
done
log "preStop: no new master named by a quorum in time; writes stay paused until shutdown"
