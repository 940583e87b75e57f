"""Every alert rule proven by ``promtool test rules``: silent on a healthy release, pending for
its ``for:`` window on a broken one, then firing with the labels an operator sees.

promtool runs from the Prometheus image's root filesystem (``scripts/cluster/images.sh``), the
same build as the Prometheus the integration suite scrapes with, chrooted like the loopback
harness runs the engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.alerts import alerts, rule_groups
from components.naming import Names
from components.settings import load_settings
from tests.unit.promtool import run_promtool, series

SETTINGS = load_settings({"redis:namespace": "shop", "redis:name": "cache"})
NAMES = Names.of(SETTINGS)
ALERTS = {alert.name: alert for alert in alerts(SETTINGS, NAMES)}


def target_labels(pod: str, process: str, **labels: str) -> dict[str, str]:
    return {"namespace": "shop", "pod": pod, "process": process, **labels}


def info(pod: str, role: str, values: str = "1x40", policy: str = "volatile-lru") -> dict[str, str]:
    return series("redis_instance_info", pod, "server", values, role=role, maxmemory_policy=policy)


KUBELET_LABELS = {"job": "kubelet", "instance": "node-1"}


def volume(
    claim: str, capacity: str, available: str, namespace: str = "shop"
) -> list[dict[str, str]]:
    """A kubelet's capacity and available-bytes series of one claim."""
    labels = {**KUBELET_LABELS, "namespace": namespace, "persistentvolumeclaim": claim}
    text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return [
        {"series": f"kubelet_volume_stats_capacity_bytes{{{text}}}", "values": capacity},
        {"series": f"kubelet_volume_stats_available_bytes{{{text}}}", "values": available},
    ]


HEALTHY_ROLES = [info("cache-0", "master"), info("cache-1", "slave"), info("cache-2", "slave")]
MASTER_INFO_LABELS = target_labels(
    "cache-0", "server", role="master", maxmemory_policy="volatile-lru"
)
IN_SYNC = [
    series("redis_connected_slave_lag_seconds", "cache-0", "server", "0x40", slave_ip=ip)
    for ip in ("10.0.0.2", "10.0.0.3")
]


@dataclass
class Case:
    """An alert's healthy and broken inputs and the labels it fires with."""

    healthy: list[dict[str, str]]
    broken: list[dict[str, str]]
    labels: list[dict[str, str]]
    """Labels of each firing alert, besides ``alertname`` and ``severity``."""
    fires_at: str = "5m"
    """An evaluation time after the broken input has held for the ``for:`` window."""
    pending_at: str | None = None
    """An evaluation time inside the window (for rules with one)."""
    extra: list[dict[str, str]] = field(default_factory=list)


CASES: dict[str, Case] = {
    "RedisNoMaster": Case(
        healthy=HEALTHY_ROLES,
        broken=[info(f"cache-{i}", "slave") for i in range(3)],
        labels=[{"namespace": "shop"}],
        pending_at="15s",
    ),
    "RedisMultipleMasters": Case(
        healthy=HEALTHY_ROLES,
        broken=[info("cache-0", "master"), info("cache-1", "master"), info("cache-2", "slave")],
        labels=[{"namespace": "shop"}],
        pending_at="15s",
    ),
    "RedisSentinelsDisagree": Case(
        healthy=[
            series(
                "redis_sentinel_master_status",
                f"cache-{i}",
                "sentinel",
                "1x40",
                master_name="mymaster",
                master_address="10.0.0.1:6379",
                master_status="ok",
            )
            for i in range(3)
        ],
        broken=[
            series(
                "redis_sentinel_master_status",
                f"cache-{i}",
                "sentinel",
                "1x40",
                master_name="mymaster",
                master_address=address,
                master_status="ok",
            )
            for i, address in enumerate(["10.0.0.1:6379", "10.0.0.1:6379", "10.0.0.2:6379"])
        ],
        labels=[{"namespace": "shop"}],
        pending_at="45s",
    ),
    "RedisSentinelQuorumUnreachable": Case(
        healthy=[
            series(
                "redis_sentinel_master_ckquorum_status",
                "cache-1",
                "sentinel",
                "1x40",
                master_name="mymaster",
                message="OK 3 usable Sentinels",
            )
        ],
        broken=[
            series(
                "redis_sentinel_master_ckquorum_status",
                "cache-1",
                "sentinel",
                "0x40",
                master_name="mymaster",
                message="NOQUORUM 1 usable Sentinels",
            )
        ],
        labels=[
            target_labels(
                "cache-1", "sentinel", master_name="mymaster", message="NOQUORUM 1 usable Sentinels"
            )
        ],
        pending_at="45s",
    ),
    "RedisSentinelTilt": Case(
        healthy=[series("redis_sentinel_tilt", "cache-2", "sentinel", "0x40")],
        broken=[series("redis_sentinel_tilt", "cache-2", "sentinel", "1x40")],
        labels=[target_labels("cache-2", "sentinel")],
        pending_at="45s",
    ),
    "RedisFailover": Case(
        healthy=[
            series(
                "redis_sentinel_master_config_epoch",
                "cache-0",
                "sentinel",
                "3x40",
                master_name="mymaster",
                master_address="10.0.0.1:6379",
            )
        ],
        # As scraped: the failover ends the old master's series and starts the new one's.
        broken=[
            series(
                "redis_sentinel_master_config_epoch",
                "cache-0",
                "sentinel",
                "3x10 _x30",
                master_name="mymaster",
                master_address="10.0.0.1:6379",
            ),
            series(
                "redis_sentinel_master_config_epoch",
                "cache-0",
                "sentinel",
                "_x10 4x30",
                master_name="mymaster",
                master_address="10.0.0.2:6379",
            ),
        ],
        labels=[{"namespace": "shop", "pod": "cache-0"}],
        fires_at="4m",
    ),
    "RedisReplicaLinkDown": Case(
        healthy=[
            series(
                "redis_master_link_up",
                "cache-1",
                "server",
                "1x40",
                master_host="10.0.0.1",
                master_port="6379",
            )
        ],
        broken=[
            series(
                "redis_master_link_up",
                "cache-1",
                "server",
                "0x40",
                master_host="10.0.0.1",
                master_port="6379",
            )
        ],
        labels=[target_labels("cache-1", "server", master_host="10.0.0.1", master_port="6379")],
        pending_at="45s",
    ),
    "RedisReplicaLagging": Case(
        healthy=IN_SYNC,
        broken=[
            IN_SYNC[0],
            series(
                "redis_connected_slave_lag_seconds",
                "cache-0",
                "server",
                "9x40",
                slave_ip="10.0.0.3",
            ),
        ],
        labels=[target_labels("cache-0", "server", slave_ip="10.0.0.3")],
        pending_at="45s",
    ),
    "RedisMasterRefusesWrites": Case(
        healthy=[*HEALTHY_ROLES, IN_SYNC[0]],
        broken=[
            *HEALTHY_ROLES,
            series(
                "redis_connected_slave_lag_seconds",
                "cache-0",
                "server",
                "9x40",
                slave_ip="10.0.0.2",
            ),
        ],
        labels=[MASTER_INFO_LABELS],
        pending_at="15s",
    ),
    "RedisMemoryNearLimit": Case(
        healthy=[
            series("redis_memory_used_bytes", "cache-0", "server", "80x40"),
            series("redis_memory_max_bytes", "cache-0", "server", "100x40"),
        ],
        broken=[
            series("redis_memory_used_bytes", "cache-0", "server", "95x40"),
            series("redis_memory_max_bytes", "cache-0", "server", "100x40"),
        ],
        labels=[target_labels("cache-0", "server")],
        fires_at="6m",
        pending_at="4m",
    ),
    "RedisEvictingKeysWithoutTtl": Case(
        healthy=[
            *HEALTHY_ROLES,
            series("redis_evicted_keys_total", "cache-0", "server", "0+10x40"),
            series("redis_db_keys", "cache-0", "server", "100x40", db="db0"),
            series("redis_db_keys_expiring", "cache-0", "server", "90x40", db="db0"),
        ],
        broken=[
            *HEALTHY_ROLES,
            series("redis_evicted_keys_total", "cache-0", "server", "0+10x40"),
            series("redis_db_keys", "cache-0", "server", "100x40", db="db0"),
            series("redis_db_keys_expiring", "cache-0", "server", "10x40", db="db0"),
        ],
        labels=[target_labels("cache-0", "server")],
        fires_at="9m",
        pending_at="4m",
    ),
    "RedisRejectedConnections": Case(
        healthy=[series("redis_rejected_connections_total", "cache-0", "server", "5x40")],
        broken=[series("redis_rejected_connections_total", "cache-0", "server", "5x10 9x30")],
        labels=[target_labels("cache-0", "server")],
        fires_at="4m",
    ),
    "RedisAofWriteFailing": Case(
        healthy=[
            series("redis_aof_last_write_status", "cache-0", "server", "1x40"),
            series("redis_aof_last_bgrewrite_status", "cache-0", "server", "1x40"),
        ],
        broken=[
            series("redis_aof_last_write_status", "cache-0", "server", "1x40"),
            series("redis_aof_last_bgrewrite_status", "cache-0", "server", "0x40"),
        ],
        labels=[target_labels("cache-0", "server")],
        pending_at="45s",
    ),
    "RedisAuthenticationFailures": Case(
        healthy=[series("redis_acl_access_denied_auth_total", "cache-2", "server", "2x40")],
        broken=[series("redis_acl_access_denied_auth_total", "cache-2", "server", "2x10 3x30")],
        labels=[target_labels("cache-2", "server")],
        fires_at="4m",
    ),
    "RedisProxyNoMaster": Case(
        healthy=[
            series(
                "haproxy_backend_active_servers",
                "cache-proxy-7d9f-x2",
                "proxy",
                "1x40",
                proxy="redis_master",
            )
        ],
        broken=[
            series(
                "haproxy_backend_active_servers",
                "cache-proxy-7d9f-x2",
                "proxy",
                "0x40",
                proxy="redis_master",
            )
        ],
        labels=[target_labels("cache-proxy-7d9f-x2", "proxy", proxy="redis_master")],
        pending_at="15s",
    ),
    "RedisDataVolumeFilling": Case(
        healthy=[
            *volume("data-cache-0", "1073741824x40", "536870912x40"),
            *volume("data-other-0", "1073741824x40", "1048576x40"),
            *volume("data-cache-0", "1073741824x40", "1048576x40", namespace="elsewhere"),
        ],
        broken=[
            *volume("data-cache-0", "1073741824x40", "536870912x40"),
            *volume("data-cache-1", "1073741824x40", "536870912-41943040x10 104857600x30"),
        ],
        labels=[{**KUBELET_LABELS, "namespace": "shop", "persistentvolumeclaim": "data-cache-1"}],
        fires_at="9m",
        pending_at="5m",
    ),
    "RedisExporterDown": Case(
        healthy=[
            series("up", "cache-0", "sentinel", "1x40"),
            series("redis_up", "cache-0", "sentinel", "1x40"),
        ],
        broken=[
            series("up", "cache-0", "sentinel", "1x40"),
            series("redis_up", "cache-0", "sentinel", "0x40"),
        ],
        labels=[target_labels("cache-0", "sentinel")],
        pending_at="90s",
    ),
}


def expected(name: str, labels: dict[str, str]) -> dict[str, object]:
    alert = ALERTS[name]
    rule = next(r for r in rule_groups(SETTINGS, NAMES)["groups"][0]["rules"] if r["alert"] == name)
    return {
        "exp_labels": {**labels, "severity": alert.severity},
        "exp_annotations": rule["annotations"],
    }


def promtool_tests(name: str, case: Case) -> list[dict[str, object]]:
    """The healthy, pending and firing tests of one alert."""
    tests: list[dict[str, object]] = [
        {
            "name": f"{name} healthy",
            "interval": "15s",
            "input_series": case.healthy,
            "alert_rule_test": [{"eval_time": case.fires_at, "alertname": name, "exp_alerts": []}],
        }
    ]
    checks: list[dict[str, object]] = []
    if case.pending_at is not None:
        checks.append({"eval_time": case.pending_at, "alertname": name, "exp_alerts": []})
    checks.append(
        {
            "eval_time": case.fires_at,
            "alertname": name,
            "exp_alerts": [expected(name, labels) for labels in case.labels],
        }
    )
    tests.append(
        {
            "name": f"{name} broken",
            "interval": "15s",
            "input_series": case.broken,
            "alert_rule_test": checks,
        }
    )
    return tests


def test_every_alert_has_a_case() -> None:
    assert set(CASES) == set(ALERTS)


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups(SETTINGS, NAMES)))
    result = run_promtool(tmp_path, "check", "rules", "/tmp/rules.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_after_its_window_and_only_when_broken(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups(SETTINGS, NAMES)))
    document = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "15s",
        "tests": [test for name, case in CASES.items() for test in promtool_tests(name, case)],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = run_promtool(tmp_path, "test", "rules", "/tmp/tests.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") >= 1, result.stdout
