"""Static parts of redis.conf, sentinel.conf and the scripts, rendered from settings.

The start scripts append what is only known inside the pod (its host name, the master, the
password hashes); everything here is free of secrets and goes into a ConfigMap.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from .naming import REDIS_PORT, Names
from .pod_constants import (
    CONSTANTS_FILE,
    REDIS_SOCKET,
    peer_redis_port,
    render_constants_sh,
)
from .settings import RedisSettings
from .tls import REDIS_TLS_PORT, SENTINEL_TLS_PORT, TLS_MOUNT, TlsSettings

SCRIPT_NAMES = (
    "lib.sh",
    "start-redis.sh",
    "start-sentinel.sh",
    "probe.sh",
    "prestop-redis.sh",
    "prestop-sentinel.sh",
    "revoke.sh",
    "roll-pods.sh",
    "roll-master.sh",
)


def render_redis_conf(settings: RedisSettings) -> str:
    """The part of redis.conf shared by every pod."""
    tls = settings.tls
    lines = [
        f"port {REDIS_PORT if tls.plain_ports_open else 0}",
        *tls_lines(tls, REDIS_TLS_PORT),
        "bind * -::*",
        f"unixsocket {REDIS_SOCKET}",
        "unixsocketperm 700",
        "protected-mode yes",
        "tcp-keepalive 60",
        "timeout 0",
        'logfile ""',
        "loglevel notice",
        "appendonly yes",
        "appendfsync everysec",
        'appenddirname "appendonlydir"',
        "aof-use-rdb-preamble yes",
        'save ""',
        # A full sync right after a failover must not wait: with min-replicas-to-write the new
        # master answers NOREPLICAS until a replica is attached.
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
        "repl-diskless-load disabled",
        "replica-serve-stale-data yes",
        "replica-read-only yes",
        f"replica-announce-port {peer_redis_port(tls)}",
        f"min-replicas-to-write {settings.min_replicas_to_write}",
        f"min-replicas-max-lag {settings.min_replicas_max_lag_seconds}",
        f"maxmemory {settings.maxmemory_bytes}",
        f"maxmemory-policy {settings.maxmemory_policy}",
        "enable-debug-command no",
        "enable-module-command no",
        "shutdown-timeout 10",
    ]
    return "\n".join(lines) + "\n"


def tls_lines(tls: TlsSettings, port: int) -> list[str]:
    """The TLS options of a server or Sentinel listening for TLS on ``port``; none without TLS.
    ``tls-replication`` makes a replica, and a Sentinel, connect out with TLS."""
    if not tls.enabled:
        return []
    return [
        f"tls-port {port}",
        f"tls-cert-file {TLS_MOUNT}/tls.crt",
        f"tls-key-file {TLS_MOUNT}/tls.key",
        f"tls-ca-cert-file {TLS_MOUNT}/ca.crt",
        f"tls-auth-clients {'yes' if tls.client_certificates else 'no'}",
        f"tls-replication {'yes' if tls.internal else 'no'}",
        'tls-protocols "TLSv1.2 TLSv1.3"',
    ]


def render_sentinel_conf(settings: RedisSettings) -> str:
    """Sentinel options of every pod: TLS, then the per-master options (they follow the
    ``sentinel monitor`` line)."""
    name = settings.master_set_name
    lines = [
        *tls_lines(settings.tls, SENTINEL_TLS_PORT),
        f"sentinel down-after-milliseconds {name} {settings.down_after_milliseconds}",
        f"sentinel failover-timeout {name} {settings.failover_timeout_milliseconds}",
        f"sentinel parallel-syncs {name} {settings.parallel_syncs}",
        "sentinel deny-scripts-reconfig yes",
    ]
    return "\n".join(lines) + "\n"


def script(name: str) -> str:
    """One of the POSIX sh scripts shipped with the component."""
    return resources.files(__package__).joinpath("scripts", name).read_text()


SCRIPT_VOLUME_FILES = (*SCRIPT_NAMES, CONSTANTS_FILE)
"""Files of the ``scripts`` volume: the scripts and the constants they source."""


def config_files(settings: RedisSettings) -> dict[str, str]:
    """Every file of the release's ConfigMap, mounted at ``/config`` and ``/scripts``."""
    files = {
        "redis.conf": render_redis_conf(settings),
        "sentinel.conf": render_sentinel_conf(settings),
        CONSTANTS_FILE: render_constants_sh(settings),
    }
    files.update({name: script(name) for name in SCRIPT_NAMES})
    return files


def checksum(files: dict[str, str]) -> str:
    """A stable digest of file contents, for the pod annotation that rolls pods on change."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(files[name].encode())
        digest.update(b"\0")
    return digest.hexdigest()


def revision_config_map(settings: RedisSettings) -> str:
    """The name of the ConfigMap holding ``config_files(settings)``: the release's config name
    and the files' checksum. Each revision of the pods mounts its own, immutable, so a pod of
    the previous revision runs its own scripts with its own constants to the end of a roll. A
    ConfigMap shared by every revision changes under the running pods once the kubelet syncs
    it, about a minute into a roll: the last pods of the previous spec then ran the next spec's
    scripts and ports (while TLS goes TLS-only, a replica told to replicate from the TLS port it
    cannot speak). The previous revision's ConfigMap is deleted once ``pulumi up`` has seen the
    StatefulSet roll out."""
    return f"{Names.of(settings).config_map}-{checksum(config_files(settings))[:10]}"
