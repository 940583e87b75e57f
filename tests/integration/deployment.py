"""Stacks of their own, for the tests that change or destroy a release without touching the
session's stack (:mod:`redistest.deployment`, which new code imports for everything else;
``Deployed`` is re-exported here for older imports).

Such a stack deploys the local config into a namespace the test creates with kubectl, with
``redis:createNamespace`` false: the stack does not own the namespace, as in prod, so what a
destroy leaves behind stays visible instead of going with the namespace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pulumi import automation as auto

from automation.workspace import REPO, Workspace
from redistest.deployment import Deployed, log_line, write_stack_file
from redistest.kube import CLIENT_POD, Kube

__all__ = ["RELEASE", "Deployed", "leftovers", "own_stack", "release_claims"]

RELEASE = "redis"
"""The release name of the local config: every object's name starts with it."""

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


def create_namespace(kube: Kube) -> None:
    """The namespace, made by the test (not the stack), restricted like the program's own."""
    kube.run("create", "namespace", kube.namespace)
    kube.run(
        "label",
        "namespace",
        kube.namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "--overwrite",
    )


def delete_namespace(kube: Kube) -> None:
    kube.run(
        "delete", "namespace", kube.namespace, "--ignore-not-found", "--wait=true", timeout=300
    )


def has_resources(stack: auto.Stack) -> bool:
    return bool((stack.export_stack().deployment or {}).get("resources"))


@contextlib.contextmanager
def own_stack(name: str, namespace: str, **config: str) -> Iterator[Deployed]:
    """Stack ``name``: the local config in ``namespace`` (created here, so not owned by the
    stack) with ``redis:<key>`` overrides, not yet deployed. Afterwards the stack is destroyed
    if it still holds resources, then removed with its config file, and the namespace is
    deleted, whatever happened."""
    kube = Kube(namespace)
    write_stack_file(name, namespace)
    stack = Workspace().stack(name)
    if has_resources(stack):  # left by a killed earlier run
        stack.destroy(on_output=log_line, color="never")
    delete_namespace(kube)
    create_namespace(kube)
    try:
        for key, value in {"createNamespace": "false", **config}.items():
            stack.set_config(f"redis:{key}", auto.ConfigValue(value))
        yield Deployed(stack=stack, outputs={}, kube=kube)
    finally:
        try:
            if has_resources(stack):
                stack.destroy(on_output=log_line, color="never")
            stack.workspace.remove_stack(name)
            (REPO / f"Pulumi.{name}.yaml").unlink(missing_ok=True)
        finally:
            delete_namespace(kube)
