"""Metrics: the ``redis:metrics`` block and what it renders (the exporter container, HAProxy's
exporter, the NetworkPolicy rules, the scrape jobs), without a cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.guards import proxy_network_policy_spec, server_network_policy_spec
from components.metrics import EXPORTER_PORT, PROXY_METRICS_PORT, scrape_jobs
from components.naming import Names
from components.proxy import deployment_spec, render_haproxy_cfg
from components.settings import ConfigError, RedisSettings, load_settings
from components.workload import sentinel_scrape_target, statefulset_spec
from redistest.monitoring import metric_selectors

Json = dict[str, Any]


def settings_with(metrics: Json | None = None, **extra: Any) -> RedisSettings:
    raw = {f"redis:{key}": json.dumps(value) for key, value in extra.items()}
    if metrics is not None:
        raw["redis:metrics"] = json.dumps(metrics)
    return load_settings(raw)


def containers(settings: RedisSettings) -> dict[str, Json]:
    spec = statefulset_spec(settings, Names.of(settings), {})["template"]["spec"]
    return {c["name"]: c for c in spec["containers"]}


def exporter(settings: RedisSettings) -> Json:
    return containers(settings)["exporter"]


def problems(metrics: object) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_settings({"redis:metrics": json.dumps(metrics)})
    return error.value.problems


def test_on_by_default_with_the_upstream_image() -> None:
    container = exporter(load_settings({}))
    assert container["image"] == "oliver006/redis_exporter:v1.86.0"
    assert "command" not in container, "only arguments: any image whose entrypoint is the exporter"
    assert container["ports"] == [{"name": "metrics", "containerPort": EXPORTER_PORT}]


def test_exporter_logs_in_as_the_monitoring_user_by_secret_reference() -> None:
    container = exporter(load_settings({}))
    assert "--redis.user=monitoring" in container["args"]
    assert "--redis.addr=redis://localhost:6379" in container["args"]
    assert "--config-command=-" in container["args"], "CONFIG GET returns passwords"
    assert not any("password" in arg for arg in container["args"])
    assert container["env"] == [
        {
            "name": "REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "monitoring-password"}},
        }
    ]


def test_exporter_is_restricted_and_within_its_budget() -> None:
    container = exporter(load_settings({}))
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    requests = container["resources"]["requests"]
    assert requests == {"cpu": "10m", "memory": "32Mi"}  # the issue's budget: 50m, 64Mi
    assert container["resources"]["limits"]["memory"] == "64Mi"


def test_exporter_speaks_tls_when_the_pods_links_do() -> None:
    tls_only = settings_with(tls={"enabled": True, "selfSignedCa": True})
    args = exporter(tls_only)["args"]
    assert "--redis.addr=rediss://localhost:6380" in args
    assert "--tls-ca-cert-file=/tls/ca.crt" in args
    assert "--tls-client-cert-file=/tls/tls.crt" in args
    assert {"name": "tls", "mountPath": "/tls", "readOnly": True} in exporter(tls_only)[
        "volumeMounts"
    ]
    assert sentinel_scrape_target(tls_only) == "rediss://localhost:26380"
    transition = settings_with(tls={"enabled": True, "selfSignedCa": True, "plaintext": True})
    assert "--redis.addr=redis://localhost:6379" in exporter(transition)["args"]
    assert sentinel_scrape_target(transition) == "redis://localhost:26379"


def test_metrics_off_removes_every_endpoint() -> None:
    off = settings_with({"enabled": False})
    assert set(containers(off)) == {"redis", "sentinel"}
    assert "prometheus-exporter" not in render_haproxy_cfg(off, Names.of(off))
    ports = deployment_spec(off, Names.of(off), {})["template"]["spec"]["containers"][0]["ports"]
    assert "metrics" not in {p["name"] for p in ports}
    names = Names.of(off)
    assert len(server_network_policy_spec(off, names)["ingress"]) == 1
    assert len(proxy_network_policy_spec(off, names)["ingress"]) == 2


def test_proxy_serves_haproxy_metrics() -> None:
    settings = load_settings({})
    config = render_haproxy_cfg(settings, Names.of(settings))
    assert f"bind :{PROXY_METRICS_PORT}" in config
    assert "http-request use-service prometheus-exporter if { path /metrics }" in config
    ports = deployment_spec(settings, Names.of(settings), {})["template"]["spec"]["containers"][0][
        "ports"
    ]
    assert {"name": "metrics", "containerPort": PROXY_METRICS_PORT} in ports


def test_metrics_ports_only_from_the_monitoring_namespaces() -> None:
    settings = settings_with(
        {"monitoringNamespaces": ["observability"], "monitoringPodLabels": {"app": "prometheus"}}
    )
    names = Names.of(settings)
    for spec, port in (
        (server_network_policy_spec(settings, names), EXPORTER_PORT),
        (proxy_network_policy_spec(settings, names), PROXY_METRICS_PORT),
    ):
        rules = [r for r in spec["ingress"] if {"protocol": "TCP", "port": port} in r["ports"]]
        assert rules == [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/metadata.name",
                                    "operator": "In",
                                    "values": ["observability"],
                                }
                            ]
                        },
                        "podSelector": {"matchLabels": {"app": "prometheus"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": port}],
            }
        ]


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (
            {"enabled": "maybe"},
            "redis:metrics.enabled: 'maybe' is not allowed; expected true or false",
        ),
        ({"exporterImage": ""}, "redis:metrics.exporterImage: '' is not allowed"),
        ({"monitoringNamespaces": []}, "redis:metrics.monitoringNamespaces: '[]' is not allowed"),
        (
            {"monitoringNamespaces": ["Monitoring"]},
            "redis:metrics.monitoringNamespaces: '['Monitoring']' is not allowed",
        ),
        (
            {"monitoringPodLabels": {"app": "a b"}},
            "redis:metrics.monitoringPodLabels: '{'app': 'a b'}' is not allowed",
        ),
        ({"scrapeInterval": "5s"}, "redis:metrics.scrapeInterval: unknown key; allowed are"),
        ("on", "redis:metrics: must be an object"),
    ],
)
def test_bad_metrics_values_are_named(metrics: object, message: str) -> None:
    found = problems(metrics)
    assert len(found) == 1 and found[0].startswith(message), found


def test_scrape_jobs_label_every_target_for_the_rules() -> None:
    jobs = scrape_jobs("shop", "cache", "redis://localhost:26379")
    assert [job["job_name"] for job in jobs] == [
        "shop/cache-server",
        "shop/cache-sentinel",
        "shop/cache-proxy",
    ]
    sentinel = jobs[1]
    assert sentinel["metrics_path"] == "/scrape"
    assert sentinel["params"] == {"target": ["redis://localhost:26379"]}
    for job, process in zip(jobs, ("server", "sentinel", "proxy"), strict=True):
        assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["shop"]}}]
        relabel = job["relabel_configs"]
        assert relabel[0]["action"] == "keep"
        assert {"target_label": "process", "replacement": process} in relabel


def test_metric_selectors_of_an_expression() -> None:
    expr = 'count(up{a="1"}) > 1 and on (pod) redis_up{b=~"x|y"} == 0'
    assert metric_selectors(expr) == ['up{a="1"}', 'redis_up{b=~"x|y"}']


def test_operator_objects_without_their_crds_fail_before_anything_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lightkube

    from components.monitoring import (
        POD_MONITOR_CRD,
        PROMETHEUS_RULE_CRD,
        check_prometheus_operator,
    )
    from tests.unit.test_tls import FakeCluster

    monkeypatch.setattr(lightkube, "Client", FakeCluster)
    both = settings_with({"podMonitor": True, "prometheusRule": True})
    FakeCluster.present = {POD_MONITOR_CRD}
    with pytest.raises(ConfigError) as error:
        check_prometheus_operator(both)
    assert error.value.problems == [
        f"redis:metrics.prometheusRule: the Prometheus Operator's CustomResourceDefinition "
        f"{PROMETHEUS_RULE_CRD} is not installed on the cluster; install the operator's CRDs "
        "or set redis:metrics.prometheusRule to false"
    ]
    FakeCluster.present = {POD_MONITOR_CRD, PROMETHEUS_RULE_CRD}
    check_prometheus_operator(both)
    FakeCluster.present = set()
    check_prometheus_operator(load_settings({}))  # nothing requested: nothing needed


def test_operator_objects_need_metrics_on() -> None:
    assert problems({"enabled": False, "podMonitor": True}) == [
        "redis:metrics.podMonitor: requires redis:metrics.enabled: true"
    ]
