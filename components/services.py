"""Services: the canonical master endpoint, the headless pod-DNS Service and Sentinel."""

from __future__ import annotations

from .naming import REDIS_PORT, SENTINEL_PORT, Names, selector_labels
from .workload import Json


def _port(name: str, port: int) -> Json:
    return {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}


def master_service_spec(names: Names) -> Json:
    """``<name>-service``: through the HAProxy tier, always the current master."""
    return {
        "type": "ClusterIP",
        "selector": selector_labels(names, "proxy"),
        "ports": [_port("redis", REDIS_PORT)],
    }


def headless_service_spec(names: Names) -> Json:
    """``<name>-headless``: stable DNS names for every pod, ready or not (start-up needs them)."""
    return {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": selector_labels(names, "server"),
        "ports": [_port("redis", REDIS_PORT), _port("sentinel", SENTINEL_PORT)],
    }


def sentinel_service_spec(names: Names) -> Json:
    """``<name>-sentinel``: any ready Sentinel, for Sentinel-aware clients."""
    return {
        "type": "ClusterIP",
        "selector": selector_labels(names, "server"),
        "ports": [_port("sentinel", SENTINEL_PORT)],
    }
