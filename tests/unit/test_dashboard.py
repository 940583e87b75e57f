"""The Grafana dashboard: a well-formed dashboard whose every query parses (promtool), stays
within one release's targets and computes what its panel says (``promtool test rules``
evaluating the queries on series shaped like the exporters'), and its ConfigMap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.dashboard import (
    DASHBOARD_KEY,
    dashboard,
    dashboard_json,
    expand,
    panel_queries,
    panels,
    query_values,
)
from components.monitoring import dashboard_metadata
from components.naming import Names
from components.proxy import CHECKED_BACKEND
from components.settings import ConfigError, load_settings
from redistest.monitoring import metric_selectors
from tests.unit.promtool import run_promtool, series

BOARD = dashboard()
VALUES = query_values("shop", "cache")


def queries() -> list[tuple[str, str]]:
    return [(title, expand(expr, VALUES)) for title, expr in panel_queries(BOARD)]


def query_of(title: str, index: int = 0) -> str:
    found = [expr for name, expr in queries() if name == title]
    assert found, f"no panel {title!r}"
    return found[index]


def test_the_file_is_one_dashboard_with_its_variables() -> None:
    assert BOARD["uid"] == "sophia-redis-sentinel"
    variables = {v["name"]: v for v in BOARD["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "release"}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["release"]["regex"] == "/^(.+)-[0-9]+$/"


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    every = BOARD["panels"]
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in every:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


def test_every_panel_reads_the_chosen_data_source() -> None:
    for panel in panels(BOARD):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        assert panel["description"], panel["title"]


def test_the_operators_questions_each_have_a_panel() -> None:
    titles = {panel["title"] for panel in panels(BOARD)}
    assert titles >= {
        "Role of each server",
        "Master named by the Sentinels",
        "Failovers",
        "Replication lag",
        "Commands per second",
        "Latency p99 by command",
        "Memory used and maxmemory",
        "Evictions",
        "Connected clients",
        "Master backend: server state in each proxy",
    }


def test_every_query_stays_within_one_release() -> None:
    """The release's own targets, or (the kubelets' volume stats) its own claims."""
    for title, expr in queries():
        for selector in metric_selectors(expr):
            assert 'namespace="shop"' in selector, (title, selector)
            if selector.startswith("kubelet_volume_stats_"):
                assert 'persistentvolumeclaim=~"data-cache-[0-9]+"' in selector, selector
                continue
            assert 'pod=~"cache-' in selector, (title, selector)
            assert 'process="' in selector, (title, selector)


def test_the_proxy_panels_read_the_checked_backend() -> None:
    proxy_selectors = [s for _, e in queries() for s in metric_selectors(e) if "haproxy_" in s]
    assert proxy_selectors
    assert all(f'proxy="{CHECKED_BACKEND}"' in s for s in proxy_selectors), proxy_selectors


def test_every_query_parses(tmp_path: Path) -> None:
    """Each query as a recording rule: ``promtool check rules`` parses every expression."""
    rules = [
        {"record": f"dashboard:query{index}", "expr": expr}
        for index, (_, expr) in enumerate(queries())
    ]
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    result = run_promtool(tmp_path, "check", "rules", "/tmp/queries.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def server_info(pod: str, role_before: str, role_after: str) -> list[dict[str, str]]:
    """``redis_instance_info`` of one server whose role may change after 5 minutes."""
    if role_before == role_after:
        return [series("redis_instance_info", pod, "server", "1x40", role=role_before)]
    return [
        series("redis_instance_info", pod, "server", "1x20 stale", role=role_before),
        series("redis_instance_info", pod, "server", "_x20 1x20", role=role_after),
    ]


FAILOVER_AT_5M = [
    *server_info("cache-0", "master", "slave"),
    *server_info("cache-1", "slave", "master"),
    *server_info("cache-2", "slave", "slave"),
    *server_info("other-0", "master", "master"),
    *[
        series(
            "redis_sentinel_master_config_epoch",
            f"cache-{i}",
            "sentinel",
            "1x20 stale",
            master_address="cache-0:6379",
        )
        for i in range(3)
    ],
    *[
        series(
            "redis_sentinel_master_config_epoch",
            f"cache-{i}",
            "sentinel",
            "_x20 2x20",
            master_address="cache-1:6379",
        )
        for i in range(3)
    ],
    *[
        series("redis_sentinel_master_status", f"cache-{i}", "sentinel", "1x40", master_address=a)
        for i, a in enumerate(["cache-1:6379", "cache-1:6379", "cache-0:6379"])
    ],
    *[
        series(
            "haproxy_server_status",
            "cache-proxy-7f9-abc",
            "proxy",
            "1x40" if server == "cache-1" else "0x40",
            proxy=CHECKED_BACKEND,
            server=server,
            state="UP",
        )
        for server in ("cache-0", "cache-1", "cache-2")
    ],
    series(
        "redis_connected_slave_lag_seconds", "cache-1", "server", "0x20 7x20", slave_ip="cache-2"
    ),
    *[
        {
            "series": f'{metric}{{namespace="shop",persistentvolumeclaim="{claim}",job="kubelet"}}',
            "values": values,
        }
        for claim in ("data-cache-0", "data-other-0")
        for metric, values in (
            ("kubelet_volume_stats_capacity_bytes", "1000x40"),
            ("kubelet_volume_stats_available_bytes", "250x40"),
        )
    ],
]


def sample(value: float, **labels: str) -> dict[str, Any]:
    rendered = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return {"labels": rendered, "value": value}


EXPECTED: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        "Role of each server",
        "4m",
        [sample(1, pod="cache-0"), sample(0, pod="cache-1"), sample(0, pod="cache-2")],
    ),
    (
        "Role of each server",
        "6m",
        [sample(0, pod="cache-0"), sample(1, pod="cache-1"), sample(0, pod="cache-2")],
    ),
    (
        "Master named by the Sentinels",
        "6m",
        [sample(2, master_address="cache-1:6379"), sample(1, master_address="cache-0:6379")],
    ),
    ("Failovers", "4m", [sample(0)]),
    ("Failovers", "8m", [sample(1)]),
    (
        "Master backend: server state in each proxy",
        "6m",
        [
            sample(v, pod="cache-proxy-7f9-abc", server=s)
            for s, v in (("cache-0", 0), ("cache-1", 1), ("cache-2", 0))
        ],
    ),
    ("Replication lag", "6m", [sample(7, slave_ip="cache-2")]),
    ("Data volume used", "6m", [sample(0.75, persistentvolumeclaim="data-cache-0")]),
]


def test_the_key_panels_compute_what_they_show(tmp_path: Path) -> None:
    """Series of a failover from cache-0 to cache-1 at 5 minutes (another release's server
    beside them): who is master before and after, which master each Sentinel names, one
    failover counted, the proxy's route and a lagging replica."""
    tests = [
        {
            "expr": query_of(title),
            "eval_time": at,
            "exp_samples": samples,
        }
        for title, at, samples in EXPECTED
    ]
    document = {
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": FAILOVER_AT_5M, "promql_expr_test": tests}],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = run_promtool(tmp_path, "test", "rules", "/tmp/tests.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_configmap_carries_the_file_with_the_sidecar_label() -> None:
    settings = load_settings(
        {
            "redis:namespace": "shop",
            "redis:name": "cache",
            "redis:metrics": '{"grafanaDashboard": true}',
        }
    )
    metadata = dashboard_metadata(settings, Names.of(settings))
    assert metadata["name"] == "cache-dashboard"
    assert metadata["namespace"] == "shop"
    assert metadata["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard_json()) == BOARD
    assert DASHBOARD_KEY.endswith(".json")


def test_the_sidecar_label_is_configurable() -> None:
    settings = load_settings(
        {
            "redis:metrics": json.dumps(
                {"grafanaDashboard": True, "dashboardLabels": {"team": "platform"}}
            )
        }
    )
    labels = dashboard_metadata(settings, Names.of(settings))["labels"]
    assert labels["team"] == "platform"
    assert "grafana_dashboard" not in labels


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"grafanaDashboard": "sometimes"}, "redis:metrics.grafanaDashboard: 'sometimes'"),
        ({"grafanaDashboard": True, "dashboardLabels": {}}, "redis:metrics.dashboardLabels"),
        ({"dashboardLabels": {"bad key!": "1"}}, "redis:metrics.dashboardLabels"),
        (
            {"enabled": False, "grafanaDashboard": True},
            "redis:metrics.grafanaDashboard: requires redis:metrics.enabled: true",
        ),
    ],
)
def test_bad_dashboard_values_are_named(metrics: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"redis:metrics": json.dumps(metrics)})
    assert any(message in problem for problem in error.value.problems), error.value.problems


def test_an_unknown_variable_is_named() -> None:
    with pytest.raises(KeyError, match="interval_ms"):
        expand("rate(x[$__interval_ms])", VALUES)
