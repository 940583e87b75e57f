#!/bin/sh
# Revokes the previous application password: on every pod's Redis server and Sentinel the
# application user keeps the current password only. Runs as a Job after the proxy rolled onto
# the current password; retries until REVOKE_DEADLINE_SECONDS, then fails naming the pods left.
set -eu
# shellcheck source=lib.sh
. /scripts/lib.sh

current="#$(password_hash "$REDIS_PASSWORD")"
deadline=$(($(date +%s) + REVOKE_DEADLINE_SECONDS))
while :; do
    left=""
    for host in $(pod_hosts); do
        [ "$(redis_cmd "$host" ACL SETUSER "$APPLICATION_USER" resetpass "$current")" = OK ] ||
            left="$left $host:$REDIS_PORT"
        [ "$(sentinel_cmd "$host" ACL SETUSER "$APPLICATION_SENTINEL_USER" resetpass "$current")" = OK ] ||
            left="$left $host:$SENTINEL_PORT"
    done
    if [ -z "$left" ]; then
        log "previous application password revoked on every server and Sentinel"
        exit 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "previous application password still accepted by:$left"
        exit 1
    fi
    sleep "$POLL_SECONDS"
done
