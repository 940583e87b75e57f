#!/bin/sh
# Rolls the StatefulSet's pods onto its update revision, the master last, in the kubectl
# container of the rolling-update Job. The StatefulSet's update strategy is OnDelete: its
# controller recreates a pod of the previous revision only once this deletes it. One pod at a
# time, and only while every pod is Ready: a replica of the previous revision while one is
# left, then the master (roll-master.sh, beside it, reads it from the Sentinels), whose preStop
# hands over to an updated replica. One switchover per roll, whichever ordinal the master is
# on, where the controller's own order (highest ordinal first) moved a master there twice.
set -eu
# shellcheck source=constants.sh
. "${0%/*}/constants.sh"

log() {
    printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STATEFULSET" "$*" >&2
}

# api ARGS...: one kubectl command in the release's namespace, bounded in time (not with
# --request-timeout: any such override makes kubectl skip its in-cluster configuration).
api() {
    timeout "$API_TIMEOUT_SECONDS" kubectl --namespace "$NAMESPACE" "$@"
}

# update_revision: the StatefulSet's update revision once its controller has seen the latest
# spec, else nothing.
update_revision() {
    api get statefulset "$STATEFULSET" \
        -o jsonpath='{.metadata.generation} {.status.observedGeneration} {.status.updateRevision}' |
        awk '$1 == $2 { print $3 }'
}

# pod_states: "NAME|REVISION|READY|DELETING" for every pod of the StatefulSet, one a line.
pod_states() {
    api get pods --selector "$ROLL_SELECTOR" -o jsonpath='{range .items[*]}{.metadata.name}|{.metadata.labels.controller-revision-hash}|{.status.conditions[?(@.type=="Ready")].status}|{.metadata.deletionTimestamp}{"\n"}{end}'
}

# current_master: the master's pod from roll-master.sh, if it wrote it lately.
current_master() {
    [ -r "$ROLL_DIR/master" ] || return 0
    read -r written pod <"$ROLL_DIR/master"
    [ $(($(date +%s) - written)) -gt "$ROLL_MASTER_MAX_AGE_SECONDS" ] || printf '%s' "$pod"
}

finish() {
    touch "$ROLL_DIR/finished"
}
trap finish EXIT

deadline=$(($(date +%s) + ROLL_DEADLINE_SECONDS))
waiting=""
unknown_since=""
while :; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "not rolled within $ROLL_DEADLINE_SECONDS s: $waiting"
        exit 1
    fi
    revision=$(update_revision) || revision=""
    states=$(pod_states) || states=""
    ready=$(printf '%s\n' "$states" | awk -F '|' '$3 == "True" && $4 == "" { n++ } END { print n + 0 }')
    stale=$(printf '%s\n' "$states" | awk -F '|' -v revision="$revision" 'NF > 1 && $2 != revision && $4 == "" { print $1 }')
    if [ -z "$revision" ] || [ "$ready" -lt "$REPLICAS" ]; then
        waiting="$ready of $REPLICAS pods Ready (revision ${revision:-not yet observed})"
        sleep 1
        continue
    fi
    if [ -z "$stale" ]; then
        log "every pod Ready on revision $revision"
        exit 0
    fi
    master=$(current_master)
    if [ -n "$master" ]; then
        unknown_since=""
        next=$(printf '%s\n' "$stale" | grep -v -x -e "$master" | head -n 1) || next=""
        [ -n "$next" ] || next=$master
    else
        # Sentinels that refuse the admin user (a release from before credentials by role)
        # name no master: after a while the roll goes on in the controller's order, highest
        # ordinal first, as a plain rolling update would; the preStop hook still hands over.
        unknown_since=${unknown_since:-$(date +%s)}
        if [ $(($(date +%s) - unknown_since)) -lt "$ROLL_MASTER_WAIT_SECONDS" ]; then
            waiting="no master named by the Sentinels"
            sleep 1
            continue
        fi
        next=$(printf '%s\n' "$stale" | awk -F - '{ print $(NF), $0 }' | sort -n -r | head -n 1 | cut -d ' ' -f 2)
        master="unknown"
    fi
    log "deleting $next (master $master; previous revision: $(echo "$stale" | tr '\n' ' '))"
    if api delete pod "$next" --wait=false >/dev/null; then
        waiting="$next to come back Ready"
        # A deleted pod counts Ready until its deletion is recorded: wait for the record, then
        # for the pod to be gone or back.
        while [ "$(date +%s)" -lt "$deadline" ] &&
            [ -n "$(api get pod "$next" -o jsonpath='{.metadata.deletionTimestamp}' 2>/dev/null)" ]; do
            sleep 1
        done
    else
        waiting="the deletion of $next"
        sleep 1
    fi
done
