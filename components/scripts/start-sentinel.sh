#!/bin/sh
# Starts the Sentinel sidecar. Its state (known master, epochs, peers) lives on the pod's volume
# so that after every pod restarted the Sentinels still agree on the last elected master, which
# holds the most recent data. Entries of pods beyond the current replica count are dropped, so
# after a scale-down the majority is counted over live pods only.
set -eu
# shellcheck source=lib.sh
. /scripts/lib.sh

STATE=$SENTINEL_DIR/sentinel.conf
mkdir -p "$SENTINEL_DIR"

# known_state: the Sentinel's own state lines from its last run, trimmed to live pods, with the
# monitor line first (Sentinel requires it before any other option of the master).
known_state() {
    [ -f "$STATE" ] || return 0
    _monitor=$(grep "^sentinel monitor $MASTER_SET " "$STATE" | head -n 1 | cut -d ' ' -f 4)
    [ -n "$_monitor" ] || return 0
    grep -e '^sentinel myid ' -e '^sentinel current-epoch ' "$STATE" || true
    echo "sentinel monitor $MASTER_SET $_monitor $REDIS_PORT $QUORUM"
    grep -e "^sentinel config-epoch $MASTER_SET " -e "^sentinel leader-epoch $MASTER_SET " "$STATE" || true
    # Entries on another port are from before TLS was turned on or off: the Sentinel finds its
    # peers again on the ports they use now.
    grep -e "^sentinel known-replica $MASTER_SET [^ ]* $REDIS_PORT\$" \
        -e "^sentinel known-sentinel $MASTER_SET [^ ]* $SENTINEL_PORT " "$STATE" |
        while read -r _line; do
            removed_host "$(echo "$_line" | cut -d ' ' -f 4)" || echo "$_line"
        done
}

# removed_pod_entries HOST: "KNOWN UP" for the replicas and Sentinels on pods beyond the replica
# count that the Sentinel at HOST still lists: how many, and how many of them it does not yet
# flag as down.
removed_pod_entries() {
    {
        sentinel_cmd "$1" SENTINEL REPLICAS "$MASTER_SET" | entry_fields ip flags || true
        sentinel_cmd "$1" SENTINEL SENTINELS "$MASTER_SET" | entry_fields ip flags || true
    } | {
        known=0
        up=0
        while read -r ip flags; do
            removed_host "$ip" || continue
            known=$((known + 1))
            case $flags in
            *s_down* | *disconnected*) ;;
            *) up=$((up + 1)) ;;
            esac
        done
        echo "$known $up"
    }
}

# settled HOST: the Sentinel at HOST lists no removed pod and has found every live peer again.
settled() {
    [ "$(removed_pod_entries "$1")" = "0 0" ] || return 1
    sentinels=$(sentinel_cmd "$1" SENTINEL SENTINELS "$MASTER_SET" | entry_fields name | grep -c . || true)
    replicas=$(sentinel_cmd "$1" SENTINEL REPLICAS "$MASTER_SET" | entry_fields name | grep -c . || true)
    [ "${sentinels:-0}" -ge $((REPLICAS - 1)) ] && [ "${replicas:-0}" -ge $((REPLICAS - 1)) ]
}

# reset_when_safe REASON: SENTINEL RESET, which drops every link and lets this Sentinel relearn
# its replicas and peers, once no failover runs and the Sentinels of lower ordinals have found
# their live peers, so that at most one Sentinel is relearning its view at any time; false when
# it is not safe yet.
reset_when_safe() {
    [ "$(master_set_fields localhost flags)" = master ] || return 1
    for peer in $(pod_hosts | head -n "$ORDINAL"); do
        if sentinel_cmd "$peer" PING >/dev/null && ! settled "$peer"; then
            return 1
        fi
    done
    log "$1: SENTINEL RESET"
    sentinel_cmd localhost SENTINEL RESET "$MASTER_SET" >/dev/null || true
}

# forget_removed_pods: after a scale-down the running Sentinels still count the removed pods,
# and a Sentinel restarted while those pods were terminating learnt them again, so failover
# majorities would be counted over pods that are gone. Once every such entry is down this
# Sentinel resets itself (reset_when_safe).
forget_removed_pods() {
    while :; do
        sleep "$FORGET_CHECK_SECONDS"
        entries=$(removed_pod_entries localhost)
        if [ "${entries% *}" -eq 0 ] || [ "${entries#* }" -gt 0 ]; then
            continue
        fi
        reset_when_safe \
            "Sentinel still counts ${entries% *} replicas and Sentinels of removed pods" || true
    done
}

# commands_processed: how many commands this Sentinel has served since it started.
commands_processed() {
    sentinel_cmd localhost INFO stats | info_field total_commands_processed
}

# cure_busy_loop: Sentinel can spin at its CPU limit on a link whose socket holds an error that
# reading never clears (EPOLLERR once a restarted pod's old address is gone: redis/redis#9956,
# valkey-io/valkey#4766, unfixed in the engines shipped here), and stays throttled at its limit
# for good. BUSY_CHECKS_IN_A_ROW checks with more CPU than BUSY_CPU_TICKS and fewer commands
# served than BUSY_MAX_COMMANDS (a loaded Sentinel serves many) mean a spin, which a reset
# (reset_when_safe) ends: the Sentinel closes every link and finds its replicas and peers
# again within seconds.
cure_busy_loop() {
    busy=0
    ticks=$(cpu_ticks $$)
    commands=$(commands_processed || true)
    while :; do
        sleep "$BUSY_CHECK_SECONDS"
        now_ticks=$(cpu_ticks $$)
        [ -n "$now_ticks" ] || return 0
        now_commands=$(commands_processed || true)
        used_ticks=$((now_ticks - ticks))
        if [ "$used_ticks" -gt "$BUSY_CPU_TICKS" ] &&
            [ $((${now_commands:-0} - ${commands:-0})) -lt "$BUSY_MAX_COMMANDS" ]; then
            busy=$((busy + 1))
        else
            busy=0
        fi
        ticks=$now_ticks
        commands=$now_commands
        [ "$busy" -ge "$BUSY_CHECKS_IN_A_ROW" ] || continue
        reset_when_safe "Sentinel spins: $used_ticks CPU ticks in ${BUSY_CHECK_SECONDS} s with few commands" ||
            continue
        busy=0
        ticks=$(cpu_ticks $$)
        commands=$(commands_processed || true)
    done
}

# tune_periods: once this Sentinel answers, it asks the master and replicas for INFO every
# SENTINEL_INFO_PERIOD_MILLISECONDS instead of every 10 s, and pings every instance every
# SENTINEL_PING_PERIOD_MILLISECONDS instead of every second (run-time settings only: every
# start applies them). Sentinel learns from INFO alone that a replica's priority changed, that
# its offset grew or that a restarted pod replicates again, and a hand-over waits for that view:
# up to 10 s, or 21 s once while TLS went TLS-only, of a budget of 25. An instance that stops
# answering is down down-after past the first PING it left unanswered: with a PING a second,
# the Sentinels of a partitioned master saw it down up to a second apart.
tune_periods() {
    _deadline=$(($(date +%s) + SENTINEL_WAIT_SECONDS))
    while ! sentinel_cmd localhost PING >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$_deadline" ] || return 0
        sleep "$POLL_SECONDS"
    done
    _reply=$(sentinel_cmd localhost SENTINEL DEBUG info-period "$SENTINEL_INFO_PERIOD_MILLISECONDS" \
        ping-period "$SENTINEL_PING_PERIOD_MILLISECONDS")
    [ "$_reply" = OK ] || log "Sentinel keeps its own INFO and PING periods: ${_reply:-no reply}"
}

# restart_for_new_certificate: stops this Sentinel (the shell's process, which it replaced by
# exec) after this pod's share of the stagger, so it starts again on the renewed certificate.
restart_for_new_certificate() {
    sleep $((ORDINAL * SENTINEL_RESTART_STAGGER_SECONDS))
    log "certificate renewed: restarting Sentinel to serve it"
    kill -TERM $$
}

state=$(known_state)
if [ -z "$state" ]; then
    log "no Sentinel state yet: waiting for the master to be known"
    while :; do
        master=$(sentinel_master 0)
        if [ -z "$master" ]; then
            info=$(local_redis_cmd INFO replication || true)
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
    printf 'port %s\n' "$SENTINEL_LISTEN_PORT"
    printf 'dir %s\n' "$SENTINEL_DIR"
    printf 'sentinel resolve-hostnames yes\n'
    printf 'sentinel announce-hostnames yes\n'
    printf 'sentinel announce-ip %s\n' "$SELF"
    printf 'sentinel announce-port %s\n' "$SENTINEL_PORT"
    acl_user_lines sentinel
    printf 'sentinel sentinel-user %s\n' "$ADMIN_SENTINEL_USER"
    printf 'sentinel sentinel-pass %s\n' "$REDIS_ADMIN_PASSWORD"
    printf '%s\n' "$state"
    cat "$CONFIG_DIR/sentinel.conf"
    printf 'sentinel auth-user %s %s\n' "$MASTER_SET" "$SENTINEL_USER"
    printf 'sentinel auth-pass %s %s\n' "$MASTER_SET" "$REDIS_SENTINEL_PASSWORD"
} > "$STATE.new"
mv "$STATE.new" "$STATE"
forget_removed_pods &
cure_busy_loop &
tune_periods &
# Sentinel cannot reload a certificate: after a renewal it stops and the kubelet restarts it on
# the new one, each pod's Sentinel after its own delay so the quorum stays.
on_certificate_change restart_for_new_certificate
log "starting Sentinel for $(printf '%s\n' "$state" | sed -n 's/^sentinel monitor [^ ]* \([^ ]*\) .*/\1/p')"
exec "$SENTINEL_BIN" "$STATE"
