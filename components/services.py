"""Services: the canonical master endpoint, the headless pod-DNS Service and Sentinel."""

from __future__ import annotations

from .naming import REDIS_PORT, SENTINEL_PORT, Names, selector_labels
from .settings import RedisSettings
from .tls import REDIS_TLS_PORT, SENTINEL_TLS_PORT
from .workload import Json


def _port(name: str, port: int) -> Json:
    return {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}


def _ports(settings: RedisSettings, name: str, plain: int, tls: int) -> list[Json]:
    """The named plain port unless TLS-only, and the TLS one (``<name>-tls``) with TLS on."""
    ports = [_port(name, plain)] if settings.tls.plain_ports_open else []
    if settings.tls.enabled:
        ports.append(_port(f"{name}-tls", tls))
    return ports


def master_service_spec(settings: RedisSettings, names: Names) -> Json:
    """``<name>-service``: through the HAProxy tier, always the current master."""
    return {
        "type": "ClusterIP",
        "selector": selector_labels(names, "proxy"),
        "ports": _ports(settings, "redis", REDIS_PORT, REDIS_TLS_PORT),
    }


def headless_service_spec(settings: RedisSettings, names: Names) -> Json:
    """``<name>-headless``: stable DNS names for every pod, ready or not (start-up needs them)."""
    return {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": selector_labels(names, "server"),
        "ports": _ports(settings, "redis", REDIS_PORT, REDIS_TLS_PORT)
        + _ports(settings, "sentinel", SENTINEL_PORT, SENTINEL_TLS_PORT),
    }


def sentinel_service_spec(settings: RedisSettings, names: Names) -> Json:
    """``<name>-sentinel``: any ready Sentinel, for Sentinel-aware clients."""
    return {
        "type": "ClusterIP",
        "selector": selector_labels(names, "server"),
        "ports": _ports(settings, "sentinel", SENTINEL_PORT, SENTINEL_TLS_PORT),
    }
