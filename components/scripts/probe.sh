#!/bin/sh
# Probes of the Redis and Sentinel containers: probe.sh redis-live|redis-ready|sentinel-live|sentinel-ready
# They authenticate through REDISCLI_AUTH, never with a password argument.
set -u
# shellcheck source=lib.sh
. /scripts/lib.sh

case "${1:-}" in
redis-live)
    # LOADING (AOF replay) and MASTERDOWN (replica without its master) are alive, not broken.
    case "$(local_redis_cmd PING)" in
    PONG | LOADING* | MASTERDOWN*) exit 0 ;;
    *) exit 1 ;;
    esac
    ;;
redis-ready)
    [ "$(local_redis_cmd PING)" = PONG ] || exit 1
    info=$(local_redis_cmd INFO replication) || exit 1
    case "$(printf '%s\n' "$info" | info_field role)" in
    master) exit 0 ;;
    slave)
        [ "$(printf '%s\n' "$info" | info_field master_link_status)" = up ] || exit 1
        # A replica whose link is up has loaded a full copy of the set's data.
        mark_initialized
        ;;
    *) exit 1 ;;
    esac
    ;;
sentinel-live)
    [ "$(sentinel_cmd localhost PING)" = PONG ]
    ;;
sentinel-ready)
    [ "$(sentinel_cmd localhost PING)" = PONG ] || exit 1
    [ -n "$(named_master localhost)" ]
    ;;
*)
    echo "usage: probe.sh redis-live|redis-ready|sentinel-live|sentinel-ready" >&2
    exit 2
    ;;
esac
