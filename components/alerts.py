"""Prometheus alert rules of one release, built from its settings.

The rules read the series of the release's own scrape targets, told apart by three target
labels that the PodMonitor (and any equivalent scrape config) sets: ``namespace``, ``pod`` and
``process`` (``server`` for a Redis server's exporter on ``/metrics``, ``sentinel`` for its
``/scrape`` of the local Sentinel, ``proxy`` for HAProxy). Not ``role``: ``redis_instance_info``
has a ``role`` label of its own (``master``, ``slave``). The volume alert reads the kubelets'
``kubelet_volume_stats_*`` series instead, by the claims' own ``namespace`` and
``persistentvolumeclaim`` labels, wherever the cluster's monitoring scrapes them. Every rule
has a runbook paragraph in the README under its alert name; ``promtool test rules`` proves
each one firing and not firing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .naming import Names
from .proxy import CHECKED_BACKEND
from .settings import RedisSettings

RULE_GROUP = "redis-sentinel"
VOLUME_FREE_RATIO = 0.15
"""Below this share of free space a data volume alerts: an AOF rewrite writes a new file
beside the old one, so it needs room for a second copy of the data set."""
EVALUATION_INTERVAL = "15s"


@dataclass(frozen=True)
class Alert:
    """One alerting rule."""

    name: str
    """Alert name; the README's runbook paragraph carries the same heading."""
    expr: str
    """PromQL expression; a result means the alert is pending, then firing after ``duration``."""
    duration: str
    """How long the expression must hold (``for``)."""
    severity: str
    """``critical`` pages, ``warning`` tickets, ``info`` only records."""
    summary: str
    """One line for the notification."""


def selector(names: Names, process: str, *extra: str) -> str:
    """The label selector of one kind of the release's scrape targets, plus ``extra`` matchers."""
    pod = f"{names.release}-proxy-.+" if process == "proxy" else f"{names.release}-[0-9]+"
    matchers = [f'namespace="{names.namespace}"', f'pod=~"{pod}"', f'process="{process}"', *extra]
    return "{" + ", ".join(matchers) + "}"


def alerts(settings: RedisSettings, names: Names) -> list[Alert]:
    """Every alert of the release, in runbook order."""
    server = selector(names, "server")
    master = selector(names, "server", 'role="master"')
    volatile_master = selector(names, "server", 'role="master"', 'maxmemory_policy=~"volatile-.*"')
    sentinel = selector(names, "sentinel")
    proxy = selector(names, "proxy")
    in_sync = settings.min_replicas_max_lag_seconds
    least = settings.min_replicas_to_write
    backend = selector(names, "proxy", f'proxy="{CHECKED_BACKEND}"')
    release = f"{names.namespace}/{names.release}"
    volume = (
        f'{{namespace="{names.namespace}", persistentvolumeclaim=~"data-{names.release}-[0-9]+"}}'
    )
    rules = [
        Alert(
            "RedisNoMaster",
            (
                f"(count by (namespace) (redis_instance_info{server})"
                f" unless on (namespace) count by (namespace) (redis_instance_info{master}))"
                f" or on (namespace) absent(redis_instance_info{master})"
            ),
            "30s",
            "critical",
            f"No Redis server of {release} reports the master role: writes fail.",
        ),
        Alert(
            "RedisMultipleMasters",
            f"count by (namespace) (redis_instance_info{master}) > 1",
            "30s",
            "critical",
            f"More than one Redis server of {release} reports the master role (split brain).",
        ),
        Alert(
            "RedisSentinelsDisagree",
            (
                "count by (namespace) (count by (namespace, master_address)"
                f" (redis_sentinel_master_status{sentinel})) > 1"
            ),
            "1m",
            "critical",
            f"The Sentinels of {release} name different masters.",
        ),
        Alert(
            "RedisSentinelQuorumUnreachable",
            f"redis_sentinel_master_ckquorum_status{sentinel} == 0",
            "1m",
            "critical",
            f"A Sentinel of {release} cannot reach the quorum or the majority to fail over.",
        ),
        Alert(
            "RedisSentinelTilt",
            f"redis_sentinel_tilt{sentinel} > 0",
            "1m",
            "warning",
            f"A Sentinel of {release} is in TILT mode and takes no action.",
        ),
        Alert(
            "RedisFailover",
            # Per pod, not per series: the epoch's series carries the master's address, so a
            # failover ends one series and starts another, each without a change of its own.
            (
                "changes((max by (namespace, pod)"
                f" (redis_sentinel_master_config_epoch{sentinel}))[5m:]) > 0"
            ),
            "0s",
            "info",
            f"The Sentinels of {release} moved the master role in the last 5 minutes.",
        ),
        Alert(
            "RedisReplicaLinkDown",
            f"redis_master_link_up{server} == 0",
            "1m",
            "warning",
            f"A replica of {release} has lost its link to the master.",
        ),
        Alert(
            "RedisReplicaLagging",
            f"redis_connected_slave_lag_seconds{server} > {in_sync}",
            "1m",
            "warning",
            f"A replica of {release} lags the master by more than {in_sync} s.",
        ),
        Alert(
            "RedisMasterRefusesWrites",
            (
                f"(count by (namespace, pod) (redis_connected_slave_lag_seconds{server}"
                f" <= {in_sync}) or on (namespace, pod) (redis_instance_info{master} * 0))"
                f" < {least}"
            ),
            "30s",
            "critical",
            (
                f"The master of {release} has fewer than {least} replica(s) in sync "
                "and refuses writes (NOREPLICAS)."
            ),
        ),
        Alert(
            "RedisMemoryNearLimit",
            (f"redis_memory_used_bytes{server} / (redis_memory_max_bytes{server} > 0) > 0.9"),
            "5m",
            "warning",
            f"A Redis server of {release} uses more than 90% of maxmemory.",
        ),
        Alert(
            "RedisEvictingKeysWithoutTtl",
            (
                f"increase(redis_evicted_keys_total{server}[5m]) > 0"
                f" and on (namespace, pod) redis_instance_info{volatile_master}"
                f" and on (namespace, pod) sum by (namespace, pod) (redis_db_keys{server})"
                f" > 2 * sum by (namespace, pod) (redis_db_keys_expiring{server})"
            ),
            "5m",
            "warning",
            (
                f"The master of {release} evicts under a volatile-* policy while most keys "
                "have no TTL: the keys with one are evicted early, writes may soon fail."
            ),
        ),
        Alert(
            "RedisRejectedConnections",
            f"increase(redis_rejected_connections_total{server}[5m]) > 0",
            "0s",
            "warning",
            f"A Redis server of {release} rejected connections (maxclients reached).",
        ),
        Alert(
            "RedisAofWriteFailing",
            (
                f"redis_aof_last_write_status{server} == 0"
                f" or redis_aof_last_bgrewrite_status{server} == 0"
            ),
            "1m",
            "critical",
            f"A Redis server of {release} fails to write or rewrite its append-only file.",
        ),
        Alert(
            "RedisAuthenticationFailures",
            f"increase(redis_acl_access_denied_auth_total{server}[5m]) > 0",
            "0s",
            "warning",
            f"Clients failed to authenticate to {release}: a stale or leaked password in use.",
        ),
        Alert(
            "RedisProxyNoMaster",
            f"haproxy_backend_active_servers{backend} == 0",
            "30s",
            "critical",
            f"A proxy of {release} has no master to route redis_url to: clients are refused.",
        ),
        Alert(
            "RedisDataVolumeFilling",
            (
                f"kubelet_volume_stats_available_bytes{volume}"
                f" / kubelet_volume_stats_capacity_bytes{volume} < {VOLUME_FREE_RATIO}"
            ),
            "5m",
            "warning",
            (
                f"A data volume of {release} has less than {VOLUME_FREE_RATIO:.0%} free: "
                "an append-only file rewrite may soon fail."
            ),
        ),
        Alert(
            "RedisExporterDown",
            (
                f"up{server} == 0 or up{sentinel} == 0 or up{proxy} == 0"
                f" or redis_up{server} == 0 or redis_up{sentinel} == 0"
            ),
            "2m",
            "warning",
            f"A metrics endpoint of {release} cannot be scraped or cannot reach its process.",
        ),
    ]
    return rules


def rule_groups(settings: RedisSettings, names: Names) -> dict[str, list[dict[str, Any]]]:
    """The rules as a Prometheus rule file (and the ``spec`` of a PrometheusRule)."""
    return {
        "groups": [
            {
                "name": f"{RULE_GROUP}.{names.namespace}.{names.release}",
                "interval": EVALUATION_INTERVAL,
                "rules": [
                    {
                        "alert": alert.name,
                        "expr": alert.expr,
                        "for": alert.duration,
                        "labels": {"severity": alert.severity},
                        "annotations": {
                            "summary": alert.summary,
                            "runbook": f"README.md#{alert.name.lower()}",
                        },
                    }
                    for alert in alerts(settings, names)
                ],
            }
        ]
    }
