#!/bin/sh
# preStop of the Redis container. On the master: choose the replicas the master role should go
# to, wait until a Sentinel would promote one of them (this pod's, or a peer's when this one
# cannot: that one then leads the hand-over), pause writes, wait until every replica
# holds every write, then have Sentinel fail over and wait until a quorum of Sentinels names the
# new master. Pausing first is what keeps acknowledged writes: a plain SENTINEL FAILOVER leaves
# the old master accepting writes that vanish when it is demoted. The pause outlives the pod,
# so a master whose hand-over failed never takes writes again; the Sentinels then fail over as
# after a crash, to a replica that holds every acknowledged write. Before the failover, the
# server closes its TCP port and the applications' connections, so no client meets it demoted
# (READONLY). Where the engine has it (Valkey 9), the failover is coordinated: the
# master itself hands over to the chosen replica once that replica holds every write
# (FAILOVER TO, which pauses writes itself) instead of being demoted after Sentinel promoted a
# replica; the hook then does not pause writes first (see pause_writes). Once a new master is
# named, the hook points the other replicas at it.
set -u
# shellcheck source=lib.sh
. /scripts/lib.sh
# A hook's output is discarded and the pod's log goes with the pod: keep the hook's log on the
# volume, where the next start of this pod prints it.
if [ -w "$SHUTDOWN_LOG" ] || [ -w "${SHUTDOWN_LOG%/*}" ]; then
    exec 2>"$SHUTDOWN_LOG"
fi

hook_deadline=$(($(date +%s) + HANDOVER_BUDGET_SECONDS))
failover_deadline=$((hook_deadline - QUORUM_ANNOUNCE_SECONDS))

info=$(local_redis_cmd INFO replication) || exit 0
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
    ordinal=$(host_ordinal "$host")
    if [ -z "$lowest" ] || [ "$ordinal" -lt "$lowest_ordinal" ]; then
        lowest=$host
        lowest_ordinal=$ordinal
    fi
done
[ -n "$preferred" ] || preferred=" $lowest"
log "preStop: handing the master role to one of:$preferred"

is_preferred() {
    for candidate in $preferred; do
        [ "$candidate" = "$1" ] && return 0
    done
    return 1
}

last_choice=""
for host in $replica_hosts; do
    is_preferred "$host" && continue
    if redis_cmd "$host" CONFIG SET replica-priority "$LAST_CHOICE_REPLICA_PRIORITY" >/dev/null; then
        last_choice="$last_choice $host"
    fi
done

# promotable SENTINEL: "GOOD LAST" from that Sentinel's view of the replicas: how many preferred
# ones it would promote now (up, answering, recently informed, linked to this master), and how
# many of the others it already knows as last choice. Sentinel refreshes replica INFO only
# every 10 s and loses sight of a restarted pod until its new address resolves, which is
# what makes SENTINEL FAILOVER answer NOGOODSLAVE right after a rolling update restarted them.
promotable() {
    sentinel_cmd "$1" SENTINEL REPLICAS "$MASTER_SET" |
        entry_fields ip flags master-link-status last-ok-ping-reply info-refresh slave-priority | {
        good=0
        known_last=0
        while read -r ip flags link ping refresh priority; do
            if is_preferred "$ip"; then
                [ "$flags" = slave ] && [ "$link" = ok ] && [ "$priority" != 0 ] &&
                    [ "$ping" -lt "$PROMOTABLE_MAX_PING_MILLISECONDS" ] 2>/dev/null &&
                    [ "$refresh" -lt "$PROMOTABLE_MAX_INFO_AGE_MILLISECONDS" ] 2>/dev/null &&
                    good=$((good + 1))
            elif [ "$priority" = "$LAST_CHOICE_REPLICA_PRIORITY" ]; then
                known_last=$((known_last + 1))
            fi
        done
        echo "$good $known_last"
    }
}

# linked_sentinels SENTINEL: how many other Sentinels that one has a working link to (no flag
# but "sentinel", a ping answered within two ping periods). A coordinated failover's election
# asks only those, and only once, when it starts; a link that still points at a restarted
# pod's old address (Sentinel re-resolves the name only when it reconnects) costs that vote.
linked_sentinels() {
    sentinel_cmd "$1" SENTINEL SENTINELS "$MASTER_SET" |
        entry_fields flags last-ok-ping-reply | {
        _linked=0
        while read -r _flags _ping; do
            [ "$_flags" = sentinel ] && [ "$_ping" -lt "$LINKED_MAX_PING_MILLISECONDS" ] 2>/dev/null &&
                _linked=$((_linked + 1))
        done
        echo "$_linked"
    }
}

# A coordinated failover starts with an election, so it needs a majority of live Sentinels; a
# plain SENTINEL FAILOVER is run by the Sentinel that gets it alone. Asked before writes pause.
coordinated=0
if [ "$COORDINATED_FAILOVER" = 1 ] && [ "$(agreeing_sentinels "$SELF")" -ge "$MAJORITY" ]; then
    coordinated=1
fi

# serves_tls_only HOST: the server at HOST refuses plain connections on the plain port (it is
# of the TLS-only spec) and answers on the TLS port beside it.
serves_tls_only() {
    if timeout "$COMMAND_TIMEOUT_SECONDS" "$CLI_BIN" --no-auth-warning --user "$ADMIN_USER" \
        -h "$1" -p "$REDIS_PORT" PING >/dev/null 2>&1; then
        return 1
    fi
    [ "$(redis_cmd "$1" PING)" = PONG ]
}

# FAILOVER TO promotes its target through a connection this server opens the way its own
# replication does: plain in the TLS transition mode, which a replica of the TLS-only spec
# refuses, so that target would never be promoted (seen: the leader then waited in
# wait_promotion until the hook saw it through, a 6.5 s gap). The plain failover has the
# Sentinel promote it over the Sentinel's own link instead.
if [ "$coordinated" = 1 ] && [ "$INTERNAL_TLS" = 0 ] && [ "$REDIS_LISTEN_TLS_PORT" != 0 ]; then
    for host in $preferred; do
        if serves_tls_only "$host"; then
            coordinated=0
            log "preStop: $host serves TLS only, which this server's replication does not speak: plain failover"
            break
        fi
    done
fi

# pause_writes: writes wait from here until this server is demoted or its pod stops, and the
# replicas get REPLICA_ACK_MILLISECONDS to hold every write. A plain failover needs this first:
# it promotes a replica without asking this server. A coordinated one must not have it: the
# failover pauses writes itself (FAILOVER TO waits until the chosen replica holds every write),
# and a pause of ours holds the Sentinel's request behind the hello message the Sentinel
# publishes on the same link every 2 s (CLIENT PAUSE WRITE blocks PUBLISH), so that the
# failover may never reach this server (seen: 10 s, then -failover-abort-slave-timeout).
pause_writes() {
    local_redis_cmd CLIENT PAUSE "$WRITE_PAUSE_MILLISECONDS" WRITE >/dev/null
    acked=$(local_redis_cmd WAIT "$replicas" "$REPLICA_ACK_MILLISECONDS")
    log "preStop: writes paused; $acked of $replicas replicas hold every write"
}

# start_failover: SENTINEL FAILOVER to the leader, coordinated when it can be; the reply in
# failover_reply.
# A Sentinel that refuses COORDINATED (an older engine's, mid-migration) gets the plain one at
# once, and the hand-over stays plain from then on.
start_failover() {
    if [ "$coordinated" = 1 ]; then
        failover_reply=$(sentinel_cmd "$leader" SENTINEL FAILOVER "$MASTER_SET" COORDINATED | tr -d '\r')
        case $failover_reply in
        OK | INPROG*) return 0 ;;
        esac
        coordinated=0
    fi
    pause_writes
    failover_reply=$(sentinel_cmd "$leader" SENTINEL FAILOVER "$MASTER_SET" | tr -d '\r')
}

last_choice_count=0
for host in $last_choice; do
    last_choice_count=$((last_choice_count + 1))
done

# sentinel_cpu_seconds SENTINEL: the CPU time that Sentinel has used since it started.
sentinel_cpu_seconds() {
    sentinel_cmd "$1" INFO cpu |
        awk -F: '/^used_cpu_(sys|user):/ { total += $2 } END { printf "%.6f\n", total }'
}

# busy SENTINEL: that Sentinel used more than BUSY_LEADER_CPU_SECONDS of CPU time over
# LEADER_CPU_SAMPLE_SECONDS; prints how much. One at its CPU limit is throttled (a restarted
# Sentinel spins for its first seconds, until its busy-loop check resets it): leading a
# rolling update's hand-overs, such a Sentinel took 0.30 s to reach FAILOVER TO where an idle
# one takes 0.15-0.25 s.
busy() {
    _before=$(sentinel_cpu_seconds "$1")
    sleep "$LEADER_CPU_SAMPLE_SECONDS"
    _after=$(sentinel_cpu_seconds "$1")
    _used=$(awk -v after="${_after:-0}" -v before="${_before:-0}" 'BEGIN { print after - before }')
    printf ', used %s s of CPU in %s s' "$_used" "$LEADER_CPU_SAMPLE_SECONDS"
    awk -v used="$_used" -v most="$BUSY_LEADER_CPU_SECONDS" 'BEGIN { exit !(used > most) }'
}

# ready_to_lead SENTINEL: that Sentinel can run the hand-over now: it names this server master,
# is not in TILT (for 30 s it would act on nothing), would promote a preferred replica, knows
# every other replica as last choice and, for a coordinated failover, knows exactly the live
# pods' Sentinels (the election needs a majority of every Sentinel it knows, removed pods
# included), has working links to enough of them to win, and a majority names this server at
# the same address as it does: a Sentinel votes only for a failover of the master it knows at
# the address the request names (SENTINEL IS-MASTER-DOWN-BY-ADDR), and while TLS goes
# TLS-only, Sentinels of the previous spec name the plain port, those of the new one the TLS
# port; and, until busy_leader_deadline, it is not busy. Prints its view when it can.
ready_to_lead() {
    _named=$(named_master "$1")
    [ "$_named" = "$SELF" ] || { printf 'names %s master' "${_named:-no}"; return 1; }
    [ "$(sentinel_cmd "$1" INFO sentinel | info_field sentinel_tilt)" = 0 ] ||
        { printf 'is in TILT'; return 1; }
    _view=$(promotable "$1")
    _linked=$(linked_sentinels "$1")
    printf '%s' "would promote ${_view% *} preferred replica(s), knows ${_view#* } of $last_choice_count others as last choice and is linked to $_linked other Sentinel(s)"
    [ "${_view% *}" -gt 0 ] && [ "${_view#* }" -ge "$last_choice_count" ] || return 1
    if [ "$coordinated" = 1 ]; then
        _same_address=$(printf '%s\n' "$addresses" | grep -c -x -F "$(named_master_address "$1")")
        printf ', %s Sentinel(s) name this server at its address' "$_same_address"
        [ "$(master_set_fields "$1" num-other-sentinels)" = "$((REPLICAS - 1))" ] &&
            [ "$_linked" -ge "$((MAJORITY - 1))" ] && [ "$_same_address" -ge "$MAJORITY" ] ||
            return 1
    fi
    [ "$(date +%s)" -lt "$busy_leader_deadline" ] || return 0
    if busy "$1"; then
        return 1
    fi
}

# choose_leader: the first Sentinel, this pod's before its peers', ready to lead the hand-over
# (silent_leader, a leader that stopped answering, is not asked), in leader; empty when none
# is, and the views of those that are not in views. This pod's Sentinel may have lost sight of
# the preferred replica (its link still points at the address a restarted pod had; TILT) or
# may not reach it at all (turning TLS on, a Sentinel of the previous spec speaks plain to
# replicas that have closed their plain ports); a peer's that sees it runs the hand-over then.
choose_leader() {
    leader=""
    views=""
    addresses=""
    if [ "$coordinated" = 1 ]; then
        addresses=$(for _host in $(pod_hosts); do
            named_master_address "$_host"
            echo
        done)
    fi
    for _candidate in localhost $(pod_hosts peers); do
        [ "$_candidate" != "${silent_leader:-}" ] || continue
        if _seen=$(ready_to_lead "$_candidate"); then
            leader=$_candidate
            log "preStop: the Sentinel at $leader leads the hand-over: it $_seen${views:+ (not ready$views)}"
            return 0
        fi
        views="$views; $_candidate $_seen"
    done
}

ready_deadline=$(($(date +%s) + PROMOTABLE_WAIT_SECONDS))
busy_leader_deadline=$(($(date +%s) + BUSY_LEADER_WAIT_SECONDS))
choose_leader
while [ -z "$leader" ] && [ "$(date +%s)" -lt "$ready_deadline" ]; do
    sleep "$POLL_SECONDS"
    choose_leader
done
if [ -z "$leader" ] && [ "$coordinated" = 1 ]; then
    log "preStop: no Sentinel ready for a coordinated failover in time$views"
    coordinated=0
    choose_leader
fi
if [ -z "$leader" ]; then
    leader=localhost
    log "preStop: no Sentinel would promote a preferred replica in time; this pod's leads$views"
fi
# From here a leader is chosen again only to see a stuck hand-over through, when every tenth of
# a second counts: a busy Sentinel may lead it at once.
busy_leader_deadline=0

# leave_network: no new TCP connection, and the applications' connections closed. A client
# then retries elsewhere instead of meeting this server demoted (READONLY) before the
# Sentinels and the proxy name the new master. Replication and Sentinel links are established
# and stay; this pod's scripts use the Unix socket.
leave_network() {
    close_ports
    closed=$(local_redis_cmd CLIENT KILL USER "$APPLICATION_USER")
    log "preStop: port closed, ${closed:-0} application connection(s) closed"
}

# reopen_port: while the failover has not demoted this server, a Sentinel that dropped its link
# (the pause blocks its hello messages, and it drops a link whose PING waits behind them) must
# be able to reconnect; watch_demotion closes the port again.
reopen_port() {
    open_ports
    log "preStop: a Sentinel lost its link before the demotion: port open again"
}

# request_acks: every replica acknowledges its replication offset at once. FAILOVER TO hands
# over when its target has acknowledged every write, but the master it paused sends no
# REPLCONF GETACK, and a replica acknowledges by itself only once a second. GETACK has no
# reply; --pipe ends on an ECHO of its own.
request_acks() {
    for _host in $replica_hosts; do
        printf 'REPLCONF GETACK *\r\n' | redis_cmd "$_host" --pipe >/dev/null
    done
}

# watch_demotion: in the background, leaves the network again, should reopen_port have opened
# it, once FAILOVER TO has reached this server (the Sentinel's link did its work, and the
# demotion follows as soon as the target holds every write: an application let in meanwhile
# would meet READONLY after it) or this server stopped being master; and speeds up a FAILOVER
# TO in progress.
watch_demotion() {
    while [ "$(date +%s)" -lt "$hook_deadline" ]; do
        _replication=$(local_redis_cmd INFO replication)
        if [ "$(printf '%s\n' "$_replication" | info_field role)" != master ]; then
            ports_closed || leave_network
            return 0
        fi
        case $(printf '%s\n' "$_replication" | info_field master_failover_state) in
        waiting-for-sync)
            ports_closed || leave_network
            request_acks
            ;;
        failover-in-progress) ports_closed || leave_network ;;
        esac
        sleep "$DEMOTION_POLL_SECONDS"
    done
}

watcher=""
stop_watcher() {
    [ -z "$watcher" ] || kill "$watcher" 2>/dev/null || true
    watcher=""
}

while :; do
    log "preStop: handing the master role over"
    leave_network
    watch_demotion &
    watcher=$!
    start_failover
    log "preStop: SENTINEL FAILOVER (coordinated: $coordinated): $failover_reply"
    [ "$failover_reply" = OK ] && break
    stop_watcher
    if [ "$(date +%s)" -ge "$failover_deadline" ]; then
        log "preStop: no failover started; writes stay paused and the port closed until shutdown, then the Sentinels fail over"
        sleep "$PROXY_NOTICE_SECONDS"
        exit 0
    fi
    open_ports
    local_redis_cmd CLIENT UNPAUSE >/dev/null
    sleep 1
done

# repoint_replicas NEW_MASTER: the other replicas of this server replicate from NEW_MASTER now,
# as Sentinel's reconfiguration would have them do. Sentinel reaches a replica only through its
# link, which after the replica's pod restarted still points at the old address until it
# reconnects (seconds); meanwhile that replica follows this server, whose port is closed, and
# the new master has no replica left once this pod stops: writes fail with NOREPLICAS and the
# proxy routes nothing.
repoint_replicas() {
    [ "$(redis_cmd "$1" ROLE | head -n 1)" = master ] || return 1
    for host in $replica_hosts; do
        [ "$host" = "$1" ] && continue
        following=$(redis_cmd "$host" INFO replication | info_field master_host)
        [ "$following" = "$1" ] && continue
        reply=$(redis_cmd "$host" REPLICAOF "$1" "$REDIS_PORT" | tr -d '\r')
        log "preStop: $host replicated from ${following:-nothing}; REPLICAOF $1: $reply"
    done
}

# handed_over_to: after a coordinated failover, the server FAILOVER TO handed the master role
# to, which this server now follows or tries to. The Sentinels name that one only after their
# next INFO of it, a second later, and the other replicas need not wait for them. Its link
# need not be up: FAILOVER TO demotes this server first, then connects to the target with the
# request that promotes it, and a target this server cannot reach (seen while TLS went
# TLS-only: refused for 10 s) is never promoted by it.
handed_over_to() {
    [ "$coordinated" = 1 ] || return 0
    _info=$(local_redis_cmd INFO replication)
    [ "$(printf '%s\n' "$_info" | info_field role)" = slave ] &&
        printf '%s\n' "$_info" | info_field master_host
}

# leader_stuck ROLE: FAILOVER TO demoted this server STUCK_LEADER_SECONDS ago or more, it is
# still a replica (ROLE), and the leading Sentinel names it still.
leader_stuck() {
    [ "$coordinated" = 1 ] && [ -n "$demoted_at" ] && [ "$1" = slave ] &&
        [ "$current" != "$successor" ] &&
        [ $(($(date +%s) - demoted_at)) -ge "$STUCK_LEADER_SECONDS" ]
}

# see_handover_through: FAILOVER TO made this server a replica of $successor, but the Sentinel
# that ran the coordinated failover names this server still, or no longer answers: it died or
# stopped before telling its peers, ended the failover before it saw the promotion (seen while
# TLS went TLS-only), or sits in it without acting (in TILT: seen during rolls). The other
# Sentinels name this server too, and once its role has read "slave" for a few seconds they
# fail it over by themselves, to a replica this hook did not choose (there: not the promoted
# one, whose writes were lost). A plain SENTINEL FAILOVER through another Sentinel ready to lead
# promotes the one preferred replica, the one already master (the others become last choice
# first: a replica following it reports a higher offset than its last one as a replica, and
# would win), and points the others at it: nothing it took is lost.
# Until a Sentinel takes the request, it is asked again on the next poll.
see_handover_through() {
    for _host in $preferred; do
        [ "$_host" != "$successor" ] || continue
        if redis_cmd "$_host" CONFIG SET replica-priority "$LAST_CHOICE_REPLICA_PRIORITY" >/dev/null; then
            last_choice="$last_choice $_host"
            last_choice_count=$((last_choice_count + 1))
        fi
    done
    preferred=" $successor"
    coordinated=0
    _passed_over=$leader
    choose_leader
    if [ -z "$leader" ]; then
        log "preStop: demoted, following $successor, but the Sentinels name ${current:-no master} and none is ready to fail over to it$views"
        leader=$_passed_over
        coordinated=1
        return 0
    fi
    failover_reply=$(sentinel_cmd "$leader" SENTINEL FAILOVER "$MASTER_SET" | tr -d '\r')
    log "preStop: demoted, following $successor, but the Sentinels name ${current:-no master}; SENTINEL FAILOVER at $leader: $failover_reply"
    case $failover_reply in
    OK | INPROG*) ;;
    *)
        coordinated=1
        ;;
    esac
}

state=""
repointed=""
demoted_at=""
while [ "$(date +%s)" -lt "$hook_deadline" ]; do
    current=$(named_master "$leader")
    successor=$current
    if [ -z "$successor" ] || [ "$successor" = "$SELF" ]; then
        successor=$(handed_over_to)
        [ -z "$successor" ] || demoted_at=${demoted_at:-$(date +%s)}
    fi
    if [ -n "$successor" ] && [ "$successor" != "$SELF" ] && [ "$successor" != "$repointed" ] &&
        repoint_replicas "$successor"; then
        repointed=$successor
    fi
    # Returning lets the pod stop, Sentinel included, which may be the one leading the
    # failover: first make sure a quorum has learnt the new master from it.
    if [ -n "$successor" ] && [ "$successor" != "$SELF" ] &&
        [ "$(agreeing_sentinels "$successor")" -ge "$QUORUM" ]; then
        log "preStop: $successor is master now, named by a quorum of Sentinels"
        stop_watcher
        # Equal priorities again: a later crash failover must pick the most up-to-date replica.
        for host in $last_choice; do
            redis_cmd "$host" CONFIG SET replica-priority "$DEFAULT_REPLICA_PRIORITY" >/dev/null || true
        done
        # The proxies see the port closed before the pod goes: one that still holds this
        # server up would keep it up under the next pod's address, a replica's.
        sleep "$PROXY_NOTICE_SECONDS"
        exit 0
    fi
    now=""
    silent_leader=$leader
    if [ -n "$current" ]; then
        now=$(master_set_fields "$leader" flags failover-state)
        silent_leader=""
    fi
    role=$(local_redis_cmd ROLE | head -n 1)
    # A leader whose link to this server dropped after the demotion (seen with the promotion
    # never made) reports it disconnected: stuck all the same.
    case $now in
    *disconnected*)
        if [ "$role" = master ] && ports_closed; then
            reopen_port
        elif leader_stuck "$role"; then
            silent_leader=$leader
            see_handover_through
        fi
        ;;
    *failover_in_progress*)
        if leader_stuck "$role"; then
            silent_leader=$leader
            see_handover_through
        fi
        ;;
    *)
        # A coordinated failover whose election failed ends aborted: the plain one needs none.
        if [ "$role" = master ] && [ "$coordinated" = 1 ]; then
            coordinated=0
            start_failover
            log "preStop: the coordinated failover ended without a new master; SENTINEL FAILOVER: $failover_reply"
        elif [ "$coordinated" = 1 ] && [ "$current" != "$successor" ]; then
            see_handover_through
        fi
        ;;
    esac
    if [ "$now" != "$state" ]; then
        log "preStop: Sentinel: flags and failover state $now, master $current"
        state=$now
    fi
    sleep "$FAST_POLL_SECONDS"
done
stop_watcher
pause_writes
log "preStop: no new master named by a quorum in time; writes stay paused until shutdown"
