"""Prometheus metrics: a redis_exporter beside each server and HAProxy's built-in exporter.

One exporter container per server pod serves both local processes: the Redis server on
``/metrics`` and the Sentinel on ``/scrape?target=<sentinel URL>`` (its multi-target endpoint).
One process instead of two keeps the pod's extra cost at one small container; both targets
take the same monitoring user, which the servers and the Sentinels both define. The exporter
reads that user's password from ``REDIS_PASSWORD`` in its environment (a Secret reference),
never from its command line.

The scrape endpoints are admitted by the NetworkPolicy only from the configured monitoring
namespaces (and pod labels): ``/scrape`` makes the exporter log in to the target it is given,
so whoever may call it could aim the monitoring credential at a server of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .blocks import as_bool, block_entries
from .dashboard import DEFAULT_DASHBOARD_LABELS

EXPORTER_PORT = 9121
"""Port of the redis_exporter in each server pod."""
PROXY_METRICS_PORT = 8405
"""Port of HAProxy's Prometheus exporter in each proxy pod."""
METRICS_PATH = "/metrics"
SENTINEL_SCRAPE_PATH = "/scrape"
"""The exporter's multi-target endpoint, which the Sentinel's metrics are scraped from."""
DEFAULT_EXPORTER_IMAGE = "oliver006/redis_exporter:v1.86.0"
DEFAULT_MONITORING_NAMESPACES = ("monitoring",)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class MetricsSettings:
    """The ``redis:metrics`` block."""

    enabled: bool = True
    """Run an exporter in every server pod and serve HAProxy's metrics (opt-out)."""
    exporter_image: str = DEFAULT_EXPORTER_IMAGE
    """redis_exporter image; its entrypoint must be the exporter (only arguments are given)."""
    monitoring_namespaces: tuple[str, ...] = DEFAULT_MONITORING_NAMESPACES
    """Namespaces whose pods may scrape the metrics ports."""
    monitoring_pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels a scraping pod must also carry (empty: any pod of those namespaces)."""
    pod_monitor: bool = False
    """Create a Prometheus Operator ``PodMonitor`` for the three kinds of endpoint."""
    prometheus_rule: bool = False
    """Create a Prometheus Operator ``PrometheusRule`` with the release's alert rules."""
    monitor_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels of the PodMonitor and PrometheusRule, for a Prometheus whose selectors
    pick objects by label (e.g. ``release: kube-prometheus-stack``)."""
    grafana_dashboard: bool = False
    """Create ConfigMap ``<release>-dashboard`` with the Grafana dashboard, for Grafana's
    dashboard sidecar."""
    dashboard_labels: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_DASHBOARD_LABELS)
    )
    """Labels of the dashboard's ConfigMap: the ones the sidecar is configured to look for."""

    @property
    def operator_objects(self) -> bool:
        """Whether any Prometheus Operator object is requested."""
        return self.enabled and (self.pod_monitor or self.prometheus_rule)

    @property
    def monitoring_objects(self) -> bool:
        """Whether any object of :class:`~components.monitoring.Monitoring` is requested."""
        return self.operator_objects or (self.enabled and self.grafana_dashboard)


METRICS_FIELDS = {
    "enabled": "true or false",
    "exporterImage": "an image reference such as oliver006/redis_exporter:v1.86.0",
    "monitoringNamespaces": "a non-empty list of namespace names",
    "monitoringPodLabels": "an object of Kubernetes label keys to values",
    "podMonitor": "true or false",
    "prometheusRule": "true or false",
    "monitorLabels": "an object of Kubernetes label keys to values",
    "grafanaDashboard": "true or false",
    "dashboardLabels": "a non-empty object of Kubernetes label keys to values",
}


def parse_metrics(raw: Any, key: str, problems: list[str]) -> MetricsSettings:
    """The ``redis:metrics`` object, every problem appended to ``problems`` with its full key."""
    entries = block_entries(raw, key, METRICS_FIELDS, problems)
    if entries is None:
        return MetricsSettings()
    values: dict[str, Any] = {}
    for name, value in entries.items():
        parsed = _parse_field(name, value)
        if parsed is None:
            problems.append(
                f"{key}.{name}: '{value}' is not allowed; expected {METRICS_FIELDS[name]}"
            )
            continue
        values.update(parsed)
    metrics = MetricsSettings(**values)
    if not metrics.enabled:
        for name, on in (
            ("podMonitor", metrics.pod_monitor),
            ("prometheusRule", metrics.prometheus_rule),
            ("grafanaDashboard", metrics.grafana_dashboard),
        ):
            if on:
                problems.append(f"{key}.{name}: requires {key}.enabled: true")
    return metrics


def _parse_field(name: str, value: Any) -> dict[str, Any] | None:
    flags = {
        "enabled": "enabled",
        "podMonitor": "pod_monitor",
        "prometheusRule": "prometheus_rule",
        "grafanaDashboard": "grafana_dashboard",
    }
    if name in flags:
        flag = as_bool(value)
        return None if flag is None else {flags[name]: flag}
    if name == "exporterImage":
        image_ok = isinstance(value, str) and bool(value) and not any(c.isspace() for c in value)
        return {"exporter_image": value} if image_ok else None
    if name == "monitoringNamespaces":
        namespaces_ok = (
            isinstance(value, list)
            and len(value) > 0
            and all(isinstance(v, str) and _DNS_LABEL.fullmatch(v) for v in value)
        )
        return {"monitoring_namespaces": tuple(value)} if namespaces_ok else None
    ok = isinstance(value, dict) and all(
        isinstance(k, str)
        and _LABEL_KEY.fullmatch(k)
        and isinstance(v, str)
        and _LABEL_VALUE.fullmatch(v)
        for k, v in value.items()
    )
    attributes = {
        "monitoringPodLabels": "monitoring_pod_labels",
        "monitorLabels": "monitor_labels",
        "dashboardLabels": "dashboard_labels",
    }
    if name == "dashboardLabels" and not value:
        return None
    return {attributes[name]: dict(value)} if ok else None


def monitoring_peers(metrics: MetricsSettings) -> list[dict[str, Any]]:
    """NetworkPolicy peers that may scrape: pods of the monitoring namespaces (with the labels)."""
    peer: dict[str, Any] = {
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": list(metrics.monitoring_namespaces),
                }
            ]
        }
    }
    if metrics.monitoring_pod_labels:
        peer["podSelector"] = {"matchLabels": dict(metrics.monitoring_pod_labels)}
    return [peer]


def exporter_arguments(
    redis_url: str,
    user: str,
    *,
    ca_file: str | None = None,
    client_certificate: tuple[str, str] | None = None,
) -> list[str]:
    """The exporter's arguments: its own server as the default target, no password.

    ``CONFIG GET`` is skipped: the monitoring user may not run it (it returns passwords), and
    ``maxmemory`` comes from ``INFO`` anyway.
    """
    arguments = [
        f"--redis.addr={redis_url}",
        f"--redis.user={user}",
        f"--web.listen-address=:{EXPORTER_PORT}",
        f"--web.telemetry-path={METRICS_PATH}",
        "--config-command=-",
        "--log-format=json",
    ]
    if ca_file:
        arguments.append(f"--tls-ca-cert-file={ca_file}")
    if client_certificate:
        certificate, key = client_certificate
        arguments += [f"--tls-client-cert-file={certificate}", f"--tls-client-key-file={key}"]
    return arguments


def scrape_jobs(namespace: str, release: str, sentinel_target: str) -> list[dict[str, Any]]:
    """Prometheus scrape configs of one release's metrics endpoints, by Kubernetes pod
    discovery in its namespace: what its PodMonitor asks the Prometheus Operator to generate,
    for a Prometheus run without one. Every target gets the ``namespace``, ``pod`` and
    ``process`` labels the alert rules select on."""

    def job(process: str, component: str, path: str, **params: list[str]) -> dict[str, Any]:
        config: dict[str, Any] = {
            "job_name": f"{namespace}/{release}-{process}",
            "metrics_path": path,
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
            "relabel_configs": [
                {
                    "source_labels": [
                        "__meta_kubernetes_pod_label_app_kubernetes_io_instance",
                        "__meta_kubernetes_pod_label_app_kubernetes_io_component",
                        "__meta_kubernetes_pod_container_port_name",
                    ],
                    "regex": f"{re.escape(release)};{component};metrics",
                    "action": "keep",
                },
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                {"target_label": "process", "replacement": process},
            ],
        }
        if params:
            config["params"] = params
        return config

    return [
        job("server", "server", METRICS_PATH),
        job("sentinel", "server", SENTINEL_SCRAPE_PATH, target=[sentinel_target]),
        job("proxy", "proxy", METRICS_PATH),
    ]


def pod_monitor_spec(selector: Mapping[str, str], sentinel_target: str) -> dict[str, Any]:
    """The PodMonitor's spec: the same three endpoints and ``process`` labels as
    :func:`scrape_jobs`; the Prometheus Operator adds ``namespace`` and ``pod`` itself."""

    def endpoint(process: str, component: str, path: str, **params: list[str]) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "port": "metrics",
            "path": path,
            "relabelings": [
                {
                    "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
                    "regex": component,
                    "action": "keep",
                },
                {"targetLabel": "process", "replacement": process},
            ],
        }
        if params:
            spec["params"] = params
        return spec

    return {
        "selector": {"matchLabels": dict(selector)},
        "podMetricsEndpoints": [
            endpoint("server", "server", METRICS_PATH),
            endpoint("sentinel", "server", SENTINEL_SCRAPE_PATH, target=[sentinel_target]),
            endpoint("proxy", "proxy", METRICS_PATH),
        ],
    }
