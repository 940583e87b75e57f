"""The Grafana dashboard of the release's metrics, provisioned as a ConfigMap that Grafana's
dashboard sidecar (kube-prometheus-stack, the Grafana chart) loads by its label.

The dashboard itself is ``dashboards/redis-sentinel.json``, importable into any Grafana by
hand too. It is generic over releases: its ``namespace`` and ``release`` variables select one,
from the same target labels the alert rules read (``namespace``, ``pod``, ``process``), so one
file serves every release and every ConfigMap of it holds the same content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

DASHBOARD_FILE = Path(__file__).parent / "dashboards" / "redis-sentinel.json"
DASHBOARD_KEY = "redis-sentinel.json"
"""Key of the dashboard in the ConfigMap: the file name the sidecar writes it to."""
DEFAULT_DASHBOARD_LABELS = {"grafana_dashboard": "1"}
"""The label Grafana's dashboard sidecar looks for by default."""

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@cache
def dashboard_json() -> str:
    """The dashboard file's text, as the ConfigMap carries it."""
    return DASHBOARD_FILE.read_text()


def dashboard() -> dict[str, Any]:
    """The dashboard as a JSON object."""
    loaded: dict[str, Any] = json.loads(dashboard_json())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel with queries, rows' nested panels included."""
    for panel in board["panels"]:
        yield from panels(panel) if panel.get("panels") else ()
        if panel.get("targets"):
            yield panel


def panel_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every panel query, then of every annotation query."""
    queries = [
        (panel["title"], target["expr"]) for panel in panels(board) for target in panel["targets"]
    ]
    queries += [
        (f"annotation {annotation['name']}", annotation["expr"])
        for annotation in board.get("annotations", {}).get("list", [])
        if annotation.get("expr")
    ]
    return queries


def expand(expr: str, values: dict[str, str]) -> str:
    """``expr`` with Grafana's ``$name`` and ``${name}`` variables replaced from ``values``;
    an unknown variable raises KeyError naming it."""
    return _VARIABLE.sub(lambda match: values[match.group(1) or match.group(2)], expr)


def query_values(namespace: str, release: str) -> dict[str, str]:
    """Variable values that turn the dashboard's queries into ones Prometheus runs as is."""
    return {
        "namespace": namespace,
        "release": release,
        "__rate_interval": "1m",
        "__interval": "30s",
        "__range": "1h",
    }
