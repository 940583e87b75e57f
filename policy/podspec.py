"""Read-only helpers over pulumi-kubernetes resource properties.

Properties are the resource inputs as the policy engine hands them over: camelCase
Kubernetes fields in nested mappings and sequences (``spec.template.spec.containers``).
Every helper tolerates missing or mistyped fields, returning empty values, so rules
report what is there instead of crashing on what is not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

STATEFULSET = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
REPLICASET = "kubernetes:apps/v1:ReplicaSet"
JOB = "kubernetes:batch/v1:Job"
CRONJOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"

TEMPLATED_WORKLOADS = (STATEFULSET, DEPLOYMENT, DAEMONSET, REPLICASET, JOB)
"""Resource types whose pod template is at ``spec.template``."""

NAME_LABEL = "app.kubernetes.io/name"
REDIS_NAME = "redis"
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def sequence(value: Any) -> Sequence[Any]:
    """``value`` if it is a list-like sequence (not a string), else an empty one."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return value
    return ()


def dig(props: Any, *path: str) -> Any:
    """The value at ``path`` under ``props``, or ``None`` when any step is missing."""
    node = props
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def pod_template(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod template (``metadata`` + ``spec``) of a workload, or ``None`` for other types.

    A bare Pod is returned as its own template.
    """
    if resource_type in TEMPLATED_WORKLOADS:
        return mapping(dig(props, "spec", "template"))
    if resource_type == CRONJOB:
        return mapping(dig(props, "spec", "jobTemplate", "spec", "template"))
    if resource_type == POD:
        return props
    return None


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of a workload (empty for non-workloads)."""
    return mapping(dig(pod_template(resource_type, props), "spec"))


def containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield ``(kind, container)`` for every container and initContainer of a pod spec."""
    for kind in ("initContainers", "containers"):
        for container in sequence(spec.get(kind)):
            if isinstance(container, Mapping):
                yield kind, container


def container_label(kind: str, container: Mapping[str, Any]) -> str:
    """Human-readable name of a container in violation messages."""
    noun = "initContainer" if kind == "initContainers" else "container"
    return f"{noun} {container.get('name', '<unnamed>')!s}"


def labels_of(metadata: Any) -> Mapping[str, Any]:
    """The labels of a metadata mapping."""
    return mapping(dig(metadata, "labels"))


def annotations_of(metadata: Any) -> Mapping[str, Any]:
    """The annotations of a metadata mapping."""
    return mapping(dig(metadata, "annotations"))


def is_redis_statefulset(resource_type: str, props: Mapping[str, Any]) -> bool:
    """True for a StatefulSet labelled ``app.kubernetes.io/name=redis`` on itself or its pods."""
    if resource_type != STATEFULSET:
        return False
    template_labels = labels_of(dig(props, "spec", "template", "metadata"))
    return REDIS_NAME in (
        labels_of(props.get("metadata")).get(NAME_LABEL),
        template_labels.get(NAME_LABEL),
    )


def redis_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The Redis server container(s): those named ``redis``, else the first container."""
    regular = [c for kind, c in containers(spec) if kind == "containers"]
    named = [c for c in regular if c.get("name") == REDIS_NAME]
    return named or regular[:1]


def selector_matches(selector: Any, pod_labels: Mapping[str, Any]) -> bool:
    """Evaluate a Kubernetes label selector against labels.

    An empty selector (or a missing one) matches nothing here: an anti-affinity term
    without a selector keeps no Redis pods apart.
    """
    selector = mapping(selector)
    match_labels = mapping(selector.get("matchLabels"))
    expressions = sequence(selector.get("matchExpressions"))
    if not match_labels and not expressions:
        return False
    if any(pod_labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        expr = mapping(expr)
        key, op = str(expr.get("key")), expr.get("operator")
        values = [str(v) for v in sequence(expr.get("values"))]
        present = key in pod_labels
        value = str(pod_labels.get(key)) if present else None
        ok = {
            "In": present and value in values,
            "NotIn": not present or value not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(str(op), False)
        if not ok:
            return False
    return True
