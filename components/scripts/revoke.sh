#!/bin/sh
# Revokes the previous passwords of REVOKE_ROLES (APPLICATION, or the internal roles): on every
# pod's Redis server and Sentinel each of their users keeps its current password only. Runs as
# a Job once the servers (and, for the application, the proxy) run on the current passwords;
# retries until REVOKE_DEADLINE_SECONDS, then fails naming the users and pods left.
set -eu
# shellcheck source=lib.sh
. /scripts/lib.sh

# reset_password ROLE redis|sentinel HOST: ROLE's user there takes its current password only.
reset_password() {
    _user=$(role_user "$1" "$2")
    [ -n "$_user" ] || return 0
    _current="#$(password_hash "$(role_password "$1")")"
    if [ "$2" = redis ]; then
        [ "$(redis_cmd "$3" ACL SETUSER "$_user" resetpass "$_current")" = OK ]
    else
        [ "$(sentinel_cmd "$3" ACL SETUSER "$_user" resetpass "$_current")" = OK ]
    fi
}

deadline=$(($(date +%s) + REVOKE_DEADLINE_SECONDS))
while :; do
    left=""
    for host in $(pod_hosts); do
        for role in $REVOKE_ROLES; do
            reset_password "$role" redis "$host" || left="$left $role@$host:$REDIS_PORT"
            reset_password "$role" sentinel "$host" || left="$left $role@$host:$SENTINEL_PORT"
        done
    done
    if [ -z "$left" ]; then
        log "previous passwords of $REVOKE_ROLES revoked on every server and Sentinel"
        exit 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "previous passwords still accepted by:$left"
        exit 1
    fi
    sleep "$POLL_SECONDS"
done
