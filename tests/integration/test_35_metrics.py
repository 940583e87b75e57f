"""The release's metrics on a real Prometheus: every endpoint scraped, every series the alert
rules and the dashboard read present, the monitoring user never refused, the metrics ports
closed to others."""

from __future__ import annotations

import json
import time

from components.alerts import alerts
from components.dashboard import DASHBOARD_KEY, dashboard, expand, panel_queries, query_values
from components.metrics import EXPORTER_PORT
from components.naming import Names
from redistest.deployment import Deployed
from redistest.kube import Kube
from redistest.monitoring import (
    SCRAPE_INTERVAL_SECONDS,
    Prometheus,
    metric_selectors,
    stack_settings,
)
from redistest.wait import wait_until

DASHBOARD_SERIES_TIMEOUT_SECONDS = 60
QUIET_ALERTS = {"RedisFailover"}
"""Alerts a healthy release may show: the failovers of earlier tests are news, not trouble."""


def release_alerts(deployed: Deployed) -> list[tuple[str, list[str]]]:
    settings = stack_settings(deployed.stack)
    return [
        (alert.name, metric_selectors(alert.expr)) for alert in alerts(settings, Names.of(settings))
    ]


def test_every_endpoint_is_scraped(deployed: Deployed, prometheus: Prometheus) -> None:
    namespace = deployed.kube.namespace
    jobs = {f"{namespace}/redis-{process}" for process in ("server", "sentinel", "proxy")}
    targets = prometheus.wait_targets_up(jobs)
    per_job = {job: sum(t["labels"]["job"] == job for t in targets) for job in jobs}
    assert per_job == {
        f"{namespace}/redis-server": 3,
        f"{namespace}/redis-sentinel": 3,
        f"{namespace}/redis-proxy": 2,
    }, per_job


def test_every_series_the_rules_read_exists(deployed: Deployed, prometheus: Prometheus) -> None:
    names = {name for name, _ in release_alerts(deployed)}
    assert prometheus.rule_names() >= names
    missing = []
    for name, selectors in release_alerts(deployed):
        for selector in selectors:
            if not prometheus.query(selector):
                missing.append((name, selector))
    assert missing == [], missing


def test_every_dashboard_query_has_series(deployed: Deployed, prometheus: Prometheus) -> None:
    """Each panel's query as Grafana would send it for this release returns series, and so
    does each metric selector in it (the annotation's query is empty without a failover).
    A rate needs two scrapes in its window: a Prometheus deployed moments ago gets them."""
    settings = stack_settings(deployed.stack)
    values = query_values(settings.namespace, Names.of(settings).release)

    def every_query_has_series() -> bool:
        empty = []
        for title, expr in panel_queries(dashboard()):
            query = expand(expr, values)
            selectors = metric_selectors(query)
            empty += [(title, s) for s in selectors if not prometheus.query(s)]
            if not title.startswith("annotation ") and not prometheus.query(query):
                empty.append((title, query))
        assert empty == [], empty
        return True

    wait_until(
        every_query_has_series,
        DASHBOARD_SERIES_TIMEOUT_SECONDS,
        "every dashboard query to return series",
        interval=SCRAPE_INTERVAL_SECONDS,
    )
    configmap = deployed.kube.json("get", "configmap", f"{Names.of(settings).release}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"][DASHBOARD_KEY]) == dashboard()


def test_a_healthy_release_fires_nothing(deployed: Deployed, prometheus: Prometheus) -> None:
    firing = [
        (a["labels"]["alertname"], a["labels"].get("pod"))
        for a in prometheus.alerts()
        if a["state"] == "firing"
        and a["labels"].get("namespace", deployed.kube.namespace) == deployed.kube.namespace
        and a["labels"]["alertname"] not in QUIET_ALERTS
    ]
    assert firing == []


def test_the_monitoring_user_is_never_refused(deployed: Deployed, prometheus: Prometheus) -> None:
    pods = deployed.kube.redis_pods()
    for pod in pods:  # the boundary tests' refusals of this user are expected ones
        deployed.kube.redis(pod, "ACL", "LOG", "RESET")
        deployed.kube.sentinel(pod, "ACL", "LOG", "RESET")
    time.sleep(3 * SCRAPE_INTERVAL_SECONDS)
    for pod in pods:
        log = deployed.kube.redis(pod, "ACL", "LOG", "128")
        assert "monitoring" not in log, (pod, log)
        log = deployed.kube.sentinel(pod, "ACL", "LOG", "128")
        assert "monitoring" not in log, (pod, log)


def test_metrics_ports_admit_only_the_monitoring_namespace(
    deployed: Deployed, client: Kube
) -> None:
    pods = deployed.kube.json("get", "pods", "-l", "app.kubernetes.io/component=server")["items"]
    addresses = [p["status"]["podIP"] for p in pods]
    script = (
        "import json, socket, sys\n"
        "result = {}\n"
        "for address in json.load(sys.stdin):\n"
        "    try:\n"
        f"        socket.create_connection((address, {EXPORTER_PORT}), timeout=2).close()\n"
        "        result[address] = 'open'\n"
        "    except OSError as error:\n"
        "        result[address] = type(error).__name__\n"
        "print(json.dumps(result))\n"
    )
    reached = client.client_python(script, addresses)
    assert "open" not in reached.values(), reached


def test_the_operator_objects_are_applied_for_real(
    deployed: Deployed, prometheus: Prometheus
) -> None:
    """The PodMonitor and PrometheusRule passed the API server's schema validation (the CRDs
    are installed), and the rules in the PrometheusRule are the ones Prometheus evaluates."""
    monitor = deployed.kube.json("get", "podmonitor", "redis")
    paths = [e["path"] for e in monitor["spec"]["podMetricsEndpoints"]]
    assert paths == ["/metrics", "/scrape", "/metrics"], paths
    rule = deployed.kube.json("get", "prometheusrule", "redis")
    names = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert names == {name for name, _ in release_alerts(deployed)}
    assert names <= prometheus.rule_names()
