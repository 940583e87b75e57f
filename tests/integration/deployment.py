"""Stacks of their own, for the tests that change or destroy a release without touching the
session's stack (:mod:`redistest.deployment`, which new code imports for everything else;
``Deployed`` is re-exported here for older imports).

Such a stack deploys the local config into a namespace the test creates with kubectl, with
``redis:createNamespace`` false: the stack does not own the namespace, as in prod, so what a
destroy leaves behind stays visible instead of going with the namespace.
"""

from __future__ import annotations

import json
from typing import Any

from pulumi import automation as auto

from components.settings import RedisSettings
from redistest.deployment import Deployed, has_resources, own_stack
from redistest.kube import CLIENT_POD, Kube
from redistest.monitoring import stack_settings

__all__ = [
    "RELEASE",
    "Deployed",
    "has_resources",
    "leftovers",
    "own_stack",
    "release_claims",
]

RELEASE = "redis"
"""The release name of the local config: every object's name starts with it."""

TLS_STACK = "tls"
TLS_NAMESPACE = "sophia-ai-tls"
TLS = {"enabled": True, "selfSignedCa": True}
"""The TLS release of ``test_88_tls``: TLS-only, with a CA cert-manager creates."""


def tls_release_settings(session_stack: auto.Stack) -> RedisSettings:
    """The settings the TLS release will deploy with: the session stack's config in its own
    namespace with TLS on (what the local Prometheus is set up to scrape from the start)."""
    return stack_settings(
        session_stack, {"redis:namespace": TLS_NAMESPACE, "redis:tls": json.dumps(TLS)}
    )


RELEASE_KINDS = (
    "pods",
    "services",
    "endpointslices",
    "statefulsets",
    "controllerrevisions",
    "deployments",
    "replicasets",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "poddisruptionbudgets",
    "networkpolicies",
    "podmonitors",
    "prometheusrules",
)
"""What a release creates in its namespace, directly or through its controllers."""


def is_release_object(kind: str, name: str, labels: dict[str, str]) -> bool:
    if kind == "Pod" and name == CLIENT_POD:
        return False
    return (
        name == RELEASE
        or name.startswith(f"{RELEASE}-")
        or labels.get("app.kubernetes.io/instance") == RELEASE
    )


def leftovers(kube: Kube) -> list[str]:
    """``Kind/name`` of every object of the release still in the namespace (terminating ones
    too), claims aside: see :func:`release_claims`."""
    items = kube.json("get", ",".join(RELEASE_KINDS))["items"]
    return sorted(
        f"{item['kind']}/{item['metadata']['name']}"
        for item in items
        if is_release_object(
            item["kind"], item["metadata"]["name"], item["metadata"].get("labels") or {}
        )
    )


def release_claims(kube: Kube) -> dict[str, dict[str, Any]]:
    """The release's PersistentVolumeClaims (``data-redis-N``) by name."""
    items = kube.json("get", "persistentvolumeclaims")["items"]
    return {
        item["metadata"]["name"]: item
        for item in items
        if item["metadata"]["name"].startswith(f"data-{RELEASE}-")
    }


def boundary_payload(
    deployed: Deployed, master: str, redis_port: int, sentinel_port: int
) -> dict[str, Any]:
    """The input of the credential-boundary probe (:mod:`redistest.boundaries`): ``master``
    and the Sentinel Service on the given ports, every role's password from the Secret, and
    the CA when the release runs TLS."""
    from components.credentials import CREDENTIALS

    secret = deployed.kube.secret_values("redis-auth")
    return {
        "endpoints": {
            "redis": [f"{master}.redis-headless", redis_port],
            "sentinel": ["redis-sentinel", sentinel_port],
        },
        "passwords": {c.role: secret[c.secret_key] for c in CREDENTIALS},
        "master_set": deployed.outputs["sentinel_master_name"],
        "ca": deployed.ca,
    }
