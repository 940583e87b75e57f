#!/bin/sh
# preStop of the Sentinel sidecar: stay up while this pod's Redis runs, so that the Redis
# preStop can ask this Sentinel for the failover, and this Sentinel, if it leads the failover,
# can announce the new master until a quorum knows it.
set -u
# shellcheck source=lib.sh
. /scripts/lib.sh

deadline=$(($(date +%s) + GRACE_SECONDS))
misses=0
while [ "$(date +%s)" -lt "$deadline" ] && [ "$misses" -lt "$REDIS_GONE_AFTER_MISSES" ]; do
    if local_redis_cmd PING >/dev/null; then
        misses=0
    else
        misses=$((misses + 1))
    fi
    sleep "$POLL_SECONDS"
done
