#!/bin/sh
# preStop of the Sentinel sidecar: stay up while this pod's Redis is still master, so that the
# Redis preStop can ask this Sentinel for the failover and watch it complete.
set -u
# shellcheck source=lib.sh
. /scripts/lib.sh

deadline=$(($(date +%s) + PAUSE_MILLISECONDS / 1000 + 5))
while [ "$(date +%s)" -lt "$deadline" ]; do
    role=$(redis_cmd localhost ROLE | head -n 1 | tr -d '\r')
    [ "$role" = master ] || exit 0
    sleep 0.5
done
