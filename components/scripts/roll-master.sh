#!/bin/sh
# The rolling update's view of the master, in the engine container of the rolling-update Job:
# every second, until roll-pods.sh (beside it, with the API token this container never sees)
# leaves ROLL_DIR/finished, writes "SECONDS POD" to ROLL_DIR/master: the time and the pod of
# the master the Sentinels name with the highest config epoch.
set -eu
# shellcheck source=lib.sh
. /scripts/lib.sh

deadline=$(($(date +%s) + ROLL_DEADLINE_SECONDS))
while [ ! -e "$ROLL_DIR/finished" ]; do
    ordinal=$(host_ordinal "$(sentinel_master 1)")
    if [ -n "$ordinal" ]; then
        printf '%s %s-%s\n' "$(date +%s)" "$STATEFULSET" "$ordinal" >"$ROLL_DIR/master.next"
        mv "$ROLL_DIR/master.next" "$ROLL_DIR/master"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "the rolling update did not finish within $ROLL_DEADLINE_SECONDS s"
        exit 1
    fi
    sleep 1
done
