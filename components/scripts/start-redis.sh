#!/bin/sh
# Starts redis-server as the master or as a replica of the master the Sentinels agree on.
# When no Sentinel knows a master (first start of the set) the lowest ordinal becomes master,
# unless another pod already is one. Whatever its ordinal, a pod whose data directory never
# held this set's data becomes master only when no peer holds any (a new set): the directory
# is marked by the first master and by a completed sync (the readiness probe marks it).
set -eu
# shellcheck source=lib.sh
. /scripts/lib.sh

# The revision in the config path shows in INFO server (config_file), which is how a master's
# preStop tells updated replicas from ones still waiting for the rolling update.
CONF_DIR=$RUN_DIR/${REVISION:-unknown}
CONF=$CONF_DIR/redis.conf

mkdir -p "$DATA_DIR" "$CONF_DIR"
if [ -s "$SHUTDOWN_LOG" ]; then
    sed 's/^/previous shutdown: /' "$SHUTDOWN_LOG" >&2
    : >"$SHUTDOWN_LOG"
fi

master=$(sentinel_master "$SENTINEL_WAIT_SECONDS")
if [ -z "$master" ]; then
    master=$(peer_master)
fi
if [ -z "$master" ] && [ "$ORDINAL" = 0 ]; then
    log "no Sentinel knows a master and no peer is one: starting as the first master"
    master=$SELF
elif [ -z "$master" ]; then
    master=$(pod_host 0)
    log "no Sentinel knows a master yet: replicating the first pod, $master"
fi

if [ "$master" = "$SELF" ] && [ "$(stranded_replicas)" -gt 0 ]; then
    # This master crashed and came back before the Sentinels noticed. Its replicas hold writes
    # its AOF may not (fsync every second): let the Sentinels promote one instead of wiping
    # them with a full sync from this older copy.
    log "restarted while still named master and replicas hold newer data: waiting for the failover"
    deadline=$(($(date +%s) + FAILOVER_WAIT_SECONDS))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 1
        named=$(sentinel_master 0)
        if [ -n "$named" ] && [ "$named" != "$SELF" ]; then
            master=$named
            break
        fi
    done
fi

if [ "$master" = "$SELF" ] && [ ! -f "$DATA_DIR/.initialized" ]; then
    holders=$(peers_holding_data)
    if [ "$holders" -gt 0 ]; then
        log "named master, but the data directory never held this set's data and $holders peer(s) do: refusing to serve an empty dataset"
        exit 1
    fi
    mark_initialized
fi

# Before the config is written: while pods of the previous layout run, this pod's admin user
# also takes the application password they authenticate with.
LEGACY_ADMIN_HASHES=$(teach_peers)
if [ -n "$LEGACY_ADMIN_HASHES" ]; then
    log "peers of the layout before credentials by role answer: taught them every role's user"
fi

umask 077
{
    cat "$CONFIG_DIR/redis.conf"
    printf 'dir %s\n' "$DATA_DIR"
    printf 'replica-announce-ip %s\n' "$SELF"
    printf 'masteruser %s\n' "$REPLICATION_USER"
    printf 'masterauth %s\n' "$REDIS_REPLICATION_PASSWORD"
    acl_user_lines redis
    if [ "$master" != "$SELF" ]; then
        printf 'replicaof %s %s\n' "$master" "$REDIS_PORT"
    fi
} > "$CONF"

if [ "$master" = "$SELF" ]; then
    log "starting as master"
else
    log "starting as replica of $master"
fi
# reload_certificate: the server takes the renewed certificate, key and CA for new connections.
reload_certificate() {
    local_redis_cmd CONFIG SET tls-cert-file "$TLS_DIR/tls.crt" tls-key-file "$TLS_DIR/tls.key" \
        tls-ca-cert-file "$TLS_DIR/ca.crt" | grep -qx OK || return 1
    log "certificate renewed: reloaded"
}
on_certificate_change reload_certificate
exec "$SERVER_BIN" "$CONF"
