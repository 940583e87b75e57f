"""The rules of the Redis policy pack, as pure functions over resource properties.

Each rule takes the Pulumi resource type token, the resource's input properties (camelCase
Kubernetes fields) and the policy's configuration, and returns violation messages (empty
when the resource complies or the rule does not apply). :func:`build_policies` wraps them in
``ResourceValidationPolicy`` objects, all mandatory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from literal_secrets import (
    annotation_findings,
    command_findings,
    configmap_findings,
    env_findings,
)
from podspec import (
    CONFIGMAP,
    DEPLOYMENT,
    HOSTNAME_TOPOLOGY,
    STATEFULSET,
    annotations_of,
    container_label,
    containers,
    dig,
    is_redis_statefulset,
    labels_of,
    mapping,
    pod_spec,
    pod_template,
    redis_containers,
    selector_matches,
    sequence,
)
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

Config = Mapping[str, Any]
Rule = Callable[[str, Mapping[str, Any], Config], list[str]]

MIN_REDIS_REPLICAS = 3
RESOURCE_KINDS = ("requests", "limits")
RESOURCE_NAMES = ("cpu", "memory")
REQUIRE_HARD_ANTI_AFFINITY = "requireHardAntiAffinity"
REQUIRE_TLS = "requireTls"
TLS_ONLY_LINES = {
    "redis.conf": ("port 0", "tls-replication yes"),
    "sentinel.conf": ("tls-replication yes",),
}
"""What a TLS-only redis.conf and sentinel.conf hold besides a ``tls-port``."""
PASSWORD_WORDS = ("PASS", "AUTH", "SECRET")
INTERNAL_CREDENTIALS_POLICY = "internal-credentials-stay-in-the-secret"


def redis_replicas(resource_type: str, props: Mapping[str, Any], _config: Config) -> list[str]:
    """A Redis StatefulSet runs an odd number (>= 3) of replicas: Sentinel needs a majority."""
    if not is_redis_statefulset(resource_type, props):
        return []
    replicas = dig(props, "spec", "replicas")
    if replicas is None:
        replicas = 1  # the Kubernetes default
    if (
        isinstance(replicas, bool)
        or not isinstance(replicas, (int, float))
        or replicas != int(replicas)
    ):
        return [f"spec.replicas must be an integer, got {replicas!r}"]
    count = int(replicas)
    if count < MIN_REDIS_REPLICAS or count % 2 == 0:
        return [
            f"spec.replicas is {count}; a Redis StatefulSet needs an odd number "
            f">= {MIN_REDIS_REPLICAS}"
        ]
    return []


def container_resources(resource_type: str, props: Mapping[str, Any], _config: Config) -> list[str]:
    """Every container and initContainer of a StatefulSet or Deployment sets cpu and memory
    requests and limits."""
    if resource_type not in (STATEFULSET, DEPLOYMENT):
        return []
    violations: list[str] = []
    for kind, container in containers(pod_spec(resource_type, props)):
        resources = mapping(container.get("resources"))
        missing = [
            f"{section}.{name}"
            for section in RESOURCE_KINDS
            for name in RESOURCE_NAMES
            if mapping(resources.get(section)).get(name) in (None, "")
        ]
        if missing:
            violations.append(
                f"{container_label(kind, container)} lacks resources {', '.join(missing)}"
            )
    return violations


def _secret_volumes(spec: Mapping[str, Any]) -> set[str]:
    """Names of the pod's volumes backed by a Secret (directly or projected)."""
    names: set[str] = set()
    for volume in sequence(spec.get("volumes")):
        volume = mapping(volume)
        projected = sequence(dig(volume, "projected", "sources"))
        if "secret" in volume or any("secret" in mapping(s) for s in projected):
            names.add(str(volume.get("name")))
    return names


def _password_from_secret(container: Mapping[str, Any], secret_volumes: set[str]) -> bool:
    for var in sequence(container.get("env")):
        var = mapping(var)
        ref = mapping(dig(var, "valueFrom", "secretKeyRef"))
        named = f"{var.get('name', '')} {ref.get('key', '')}".upper()
        if ref and any(word in named for word in PASSWORD_WORDS):
            return True
    if any("secretRef" in mapping(source) for source in sequence(container.get("envFrom"))):
        return True
    mounts = (str(mapping(m).get("name")) for m in sequence(container.get("volumeMounts")))
    return any(name in secret_volumes for name in mounts)


def redis_auth_from_secret(
    resource_type: str, props: Mapping[str, Any], _config: Config
) -> list[str]:
    """The Redis container gets its AUTH password from a Secret (``env.valueFrom.secretKeyRef``,
    ``envFrom.secretRef`` or a mounted secret volume) and from no literal env value."""
    if not is_redis_statefulset(resource_type, props):
        return []
    spec = pod_spec(resource_type, props)
    servers = redis_containers(spec)
    if not servers:
        return ["the Redis StatefulSet has no container"]
    violations: list[str] = []
    secret_volumes = _secret_volumes(spec)
    for container in servers:
        label = container_label("containers", container)
        if not _password_from_secret(container, secret_volumes):
            violations.append(
                f"{label} gets no password from a Secret (env valueFrom.secretKeyRef, "
                "envFrom secretRef or a mounted secret volume): AUTH must be on"
            )
        violations.extend(f"{label}: {f}" for f in env_findings(sequence(container.get("env"))))
    return violations


def redis_persistence(resource_type: str, props: Mapping[str, Any], _config: Config) -> list[str]:
    """A Redis StatefulSet has volumeClaimTemplates, and the Redis container mounts one."""
    if not is_redis_statefulset(resource_type, props):
        return []
    templates = [mapping(t) for t in sequence(dig(props, "spec", "volumeClaimTemplates"))]
    if not templates:
        return [
            "the Redis StatefulSet has no volumeClaimTemplates: data would not survive a restart"
        ]
    claims = {str(dig(t, "metadata", "name")) for t in templates}
    violations = []
    for container in redis_containers(pod_spec(resource_type, props)):
        mounted = {str(mapping(m).get("name")) for m in sequence(container.get("volumeMounts"))}
        if not mounted & claims:
            violations.append(
                f"{container_label('containers', container)} mounts none of the "
                f"volumeClaimTemplates ({', '.join(sorted(claims))})"
            )
    return violations


def hard_anti_affinity(resource_type: str, props: Mapping[str, Any], config: Config) -> list[str]:
    """With ``requireHardAntiAffinity``, Redis pods must never share a node: a
    ``requiredDuringSchedulingIgnoredDuringExecution`` pod anti-affinity term on
    ``kubernetes.io/hostname`` whose selector matches the Redis pods."""
    if not config.get(REQUIRE_HARD_ANTI_AFFINITY) or not is_redis_statefulset(resource_type, props):
        return []
    template = mapping(pod_template(resource_type, props))
    pod_labels = labels_of(template.get("metadata"))
    terms = sequence(
        dig(
            template,
            "spec",
            "affinity",
            "podAntiAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
        )
    )
    for term in terms:
        term = mapping(term)
        if term.get("topologyKey") == HOSTNAME_TOPOLOGY and selector_matches(
            term.get("labelSelector"), pod_labels
        ):
            return []
    return [
        "Redis pods need hard anti-affinity: podAntiAffinity."
        "requiredDuringSchedulingIgnoredDuringExecution with topologyKey "
        f"{HOSTNAME_TOPOLOGY} selecting the pods' own labels"
    ]


def _exec_commands(container: Mapping[str, Any]) -> list[tuple[str, Sequence[Any]]]:
    """(where, argv) of the container's command/args, exec probes and exec lifecycle hooks."""
    found: list[tuple[str, Sequence[Any]]] = [
        ("command/args", [*sequence(container.get("command")), *sequence(container.get("args"))])
    ]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        found.append((probe, sequence(dig(container, probe, "exec", "command"))))
    for hook in ("postStart", "preStop"):
        found.append(
            (f"lifecycle.{hook}", sequence(dig(container, "lifecycle", hook, "exec", "command")))
        )
    return found


def no_literal_credentials(
    resource_type: str, props: Mapping[str, Any], _config: Config
) -> list[str]:
    """No password in plain text anywhere: not in env values, command lines, probes, hooks,
    ConfigMap data or annotations (of the object and of its pod template)."""
    violations = [
        f"metadata: {f}" for f in annotation_findings(annotations_of(props.get("metadata")))
    ]
    if resource_type == CONFIGMAP:
        violations.extend(configmap_findings(props))
    template = pod_template(resource_type, props)
    if template is not None:
        if template is not props:
            violations.extend(
                f"pod template: {f}"
                for f in annotation_findings(annotations_of(template.get("metadata")))
            )
        for kind, container in containers(mapping(template.get("spec"))):
            label = container_label(kind, container)
            violations.extend(f"{label}: {f}" for f in env_findings(sequence(container.get("env"))))
            for where, argv in _exec_commands(container):
                violations.extend(f"{label} {where}: {f}" for f in command_findings(argv))
    return violations


def tls_required(resource_type: str, props: Mapping[str, Any], config: Config) -> list[str]:
    """With ``requireTls``, the Redis ConfigMap (the one holding ``redis.conf``) configures
    Redis and Sentinel TLS-only: each has a ``tls-port``, the servers ``port 0`` (the
    Sentinels' plain port follows the same mode in their start script), and both open their own
    links with TLS (``tls-replication yes``). The transition mode, which keeps the plain ports
    and plain links, fails this rule."""
    if not config.get(REQUIRE_TLS) or resource_type != CONFIGMAP:
        return []
    data = mapping(props.get("data"))
    if "redis.conf" not in data:
        return []
    violations = []
    for name, required in TLS_ONLY_LINES.items():
        lines = {line.strip() for line in str(data.get(name, "")).splitlines()}
        missing = [line for line in required if line not in lines]
        if not any(line.startswith("tls-port ") for line in lines):
            missing.insert(0, "tls-port")
        if missing:
            violations.append(
                f"TLS is required (redis:tls enabled, plaintext off): {name} lacks "
                + ", ".join(f"'{line}'" for line in missing)
            )
    return violations


@dataclass(frozen=True)
class RuleSpec:
    """One policy of the pack: its name, description, rule and optional config schema."""

    name: str
    description: str
    rule: Rule
    config_schema: PolicyConfigSchema | None = None


RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "redis-odd-replicas",
        "Redis StatefulSets run an odd number of replicas, at least 3, so Sentinel keeps a "
        "majority.",
        redis_replicas,
    ),
    RuleSpec(
        "workload-resources",
        "Every container and initContainer of StatefulSets and Deployments sets cpu and memory "
        "requests and limits.",
        container_resources,
    ),
    RuleSpec(
        "redis-auth-from-secret",
        "The Redis container reads its AUTH password from a Secret, never from a literal.",
        redis_auth_from_secret,
    ),
    RuleSpec(
        "redis-persistence",
        "Redis StatefulSets keep their data on volumeClaimTemplates.",
        redis_persistence,
    ),
    RuleSpec(
        "redis-hard-anti-affinity",
        "With requireHardAntiAffinity (prod), Redis pods never share a node.",
        hard_anti_affinity,
        PolicyConfigSchema(
            properties={
                REQUIRE_HARD_ANTI_AFFINITY: {
                    "type": "boolean",
                    "default": False,
                    "description": "Require requiredDuringScheduling pod anti-affinity on "
                    "kubernetes.io/hostname for Redis StatefulSets.",
                }
            }
        ),
    ),
    RuleSpec(
        "redis-tls-required",
        "With requireTls (prod), Redis and Sentinel serve TLS only, and replication and the "
        "Sentinels' links use it.",
        tls_required,
        PolicyConfigSchema(
            properties={
                REQUIRE_TLS: {
                    "type": "boolean",
                    "default": False,
                    "description": "Require redis:tls enabled with plaintext off.",
                }
            }
        ),
    ),
    RuleSpec(
        "no-literal-credentials",
        "No password or token in plain text in env values, command lines, probes, ConfigMaps "
        "or annotations.",
        no_literal_credentials,
    ),
)


RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
APPLICATION_PASSWORD_NAME = re.compile(r"-password-v[0-9]+$")
"""Resource names of the application password's generations; every other RandomPassword of
the stack is an internal credential (admin, replication, Sentinel, monitoring)."""
INTERNAL_PASSWORD_NAME = re.compile(
    r"-(admin|replication|sentinel|monitoring)-password(-v[0-9]+)?$"
)
"""Resource names of the internal roles' passwords, of every generation (``-v<N>`` from the
second on, which the application pattern alone would take for an application password)."""
CREDENTIAL_HOLDERS = (RANDOM_PASSWORD, "kubernetes:core/v1:Secret")
"""The only resources allowed to hold an internal credential."""


def internal_credential_leaks(resources: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
    """Over the whole stack (type, name, properties): an internal credential's value in any
    resource but its RandomPassword and the Secret, such as the ESC environment that app stacks
    import. Passwords not generated yet (a first preview) have no value to look for."""
    internal = [
        str(props["result"])
        for resource_type, name, props in resources
        if resource_type == RANDOM_PASSWORD
        and (INTERNAL_PASSWORD_NAME.search(name) or not APPLICATION_PASSWORD_NAME.search(name))
        and isinstance(props.get("result"), str)
        and props["result"]
    ]
    leaks = []
    for resource_type, name, props in resources:
        if resource_type in CREDENTIAL_HOLDERS:
            continue
        text = json.dumps(props, default=str)
        if any(value in text for value in internal):
            leaks.append(
                f"{resource_type} {name} holds an internal credential; only the application "
                "password may leave the Secret"
            )
    return leaks


def validate_stack_credentials(
    args: StackValidationArgs, report_violation: ReportViolation
) -> None:
    resources = [(r.resource_type, r.name, r.props) for r in args.resources]
    for message in internal_credential_leaks(resources):
        report_violation(message, None)


def validator(spec: RuleSpec) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """Adapt a pure rule to the policy SDK: one reported violation per message (the engine
    attributes it to the resource being validated)."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        config = args.get_config() or {}
        for message in spec.rule(args.resource_type, args.props, config):
            report_violation(message, None)

    return validate


def build_policies() -> list[Policy]:
    """The pack's policies, every one mandatory."""
    return [
        ResourceValidationPolicy(
            name=spec.name,
            description=spec.description,
            validate=validator(spec),
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=spec.config_schema,
        )
        for spec in RULES
    ] + [
        StackValidationPolicy(
            name=INTERNAL_CREDENTIALS_POLICY,
            description="No credential but the application's leaves the Secret: not in the "
            "ESC environment, a ConfigMap or any other resource.",
            validate=validate_stack_credentials,
            enforcement_level=EnforcementLevel.MANDATORY,
        )
    ]
