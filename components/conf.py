"""Static parts of redis.conf, sentinel.conf and the scripts, rendered from settings.

The start scripts append what is only known inside the pod (its host name, the master, the
password hashes); everything here is free of secrets and goes into a ConfigMap.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from .pod_constants import CONSTANTS_FILE, REDIS_SOCKET, render_constants_sh
from .settings import RedisSettings

SCRIPT_NAMES = (
    "lib.sh",
    "start-redis.sh",
    "start-sentinel.sh",
    "probe.sh",
    "prestop-redis.sh",
    "prestop-sentinel.sh",
    "revoke.sh",
)


def render_redis_conf(settings: RedisSettings) -> str:
    """The part of redis.conf shared by every pod."""
    lines = [
        "port 6379",
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
        "replica-announce-port 6379",
        f"min-replicas-to-write {settings.min_replicas_to_write}",
        f"min-replicas-max-lag {settings.min_replicas_max_lag_seconds}",
        f"maxmemory {settings.maxmemory_bytes}",
        f"maxmemory-policy {settings.maxmemory_policy}",
        "enable-debug-command no",
        "enable-module-command no",
        "shutdown-timeout 10",
    ]
    return "\n".join(lines) + "\n"


def render_sentinel_conf(settings: RedisSettings) -> str:
    """Per-master Sentinel options, appended after the ``sentinel monitor`` line."""
    name = settings.master_set_name
    lines = [
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
