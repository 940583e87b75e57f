"""Policy objects: disruption budgets and network policies."""

from __future__ import annotations

from .metrics import EXPORTER_PORT, PROXY_METRICS_PORT, monitoring_peers
from .naming import PROXY_HEALTH_PORT, REDIS_PORT, SENTINEL_PORT, Names, selector_labels
from .settings import RedisSettings
from .tls import REDIS_TLS_PORT, SENTINEL_TLS_PORT
from .workload import Json


def disruption_budget_spec(names: Names, component: str) -> Json:
    """At most one pod of a component voluntarily down at a time."""
    return {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(names, component)}}


def allowed_peers(settings: RedisSettings, names: Names) -> list[Json]:
    """Who may open a connection: this release's pods, labelled clients, listed namespaces."""
    peers: list[Json] = [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": names.release}}},
        {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {settings.client_label: "true"}},
        },
    ]
    if settings.allowed_namespaces:
        peers.append(
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": list(settings.allowed_namespaces),
                        }
                    ]
                }
            }
        )
    return peers


def _ports(settings: RedisSettings, *pairs: tuple[int, int]) -> list[Json]:
    """The plain and TLS ports of each (plain, tls) pair that listen."""
    ports = []
    for plain, tls in pairs:
        if settings.tls.plain_ports_open:
            ports.append({"protocol": "TCP", "port": plain})
        if settings.tls.enabled:
            ports.append({"protocol": "TCP", "port": tls})
    return ports


def server_network_policy_spec(settings: RedisSettings, names: Names) -> Json:
    """Ingress to the Redis pods: their Redis and Sentinel ports from allowed peers only, the
    exporter's from the monitoring namespaces."""
    return {
        "podSelector": {"matchLabels": selector_labels(names, "server")},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": allowed_peers(settings, names),
                "ports": _ports(
                    settings, (REDIS_PORT, REDIS_TLS_PORT), (SENTINEL_PORT, SENTINEL_TLS_PORT)
                ),
            },
            *_scrapers(settings, EXPORTER_PORT),
        ],
    }


def _scrapers(settings: RedisSettings, port: int) -> list[Json]:
    """The metrics port from the monitoring namespaces only, with metrics on."""
    if not settings.metrics.enabled:
        return []
    return [
        {
            "from": monitoring_peers(settings.metrics),
            "ports": [{"protocol": "TCP", "port": port}],
        }
    ]


def proxy_network_policy_spec(settings: RedisSettings, names: Names) -> Json:
    """Ingress to the HAProxy pods: the Redis ports from allowed peers; the health port from
    anywhere; the metrics port from the monitoring namespaces."""
    return {
        "podSelector": {"matchLabels": selector_labels(names, "proxy")},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": allowed_peers(settings, names),
                "ports": _ports(settings, (REDIS_PORT, REDIS_TLS_PORT)),
            },
            {"ports": [{"protocol": "TCP", "port": PROXY_HEALTH_PORT}]},
            *_scrapers(settings, PROXY_METRICS_PORT),
        ],
    }
