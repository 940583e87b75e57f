"""Unit tests of the policy pack's rules: a compliant and a violating case for each.

The pack's modules are imported the way Pulumi runs the pack: with ``policy/`` on
``sys.path`` and its modules as top-level modules.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO / "policy"
for path in (POLICY_DIR, REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import literal_secrets  # noqa: E402
import redis_policies as rp  # noqa: E402
from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy  # noqa: E402

from components.access import internal_password_resource_name  # noqa: E402
from components.credentials import INTERNAL_CREDENTIALS  # noqa: E402
from tests.harness import FAKE_PASSWORD, fake_password_result, run_program, stack_config  # noqa: E402

STS = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
ESC_ENVIRONMENT = "pulumiservice:index:Environment"

Props = dict[str, Any]
NO_CONFIG: dict[str, Any] = {}
HARD = {"requireHardAntiAffinity": True}

SELECTOR = {
    "app.kubernetes.io/name": "redis",
    "app.kubernetes.io/instance": "redis",
    "app.kubernetes.io/component": "server",
}
RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}


def secret_env(name: str, key: str = "password") -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": key}}}


def container(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": "redis:7.0.15",
        "command": ["sh", f"/scripts/start-{name}.sh"],
        "env": [
            {"name": "MASTER_SET", "value": "mymaster"},
            secret_env("REDIS_PASSWORD"),
            secret_env("REDISCLI_AUTH"),
        ],
        "resources": copy.deepcopy(RESOURCES),
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" ping']}
        },
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }


def redis_statefulset(*, hard: bool = True) -> Props:
    """A compliant Redis StatefulSet, shaped like the component's."""
    term = {
        "labelSelector": {"matchLabels": dict(SELECTOR)},
        "topologyKey": "kubernetes.io/hostname",
    }
    affinity = (
        {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
        if hard
        else {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    )
    return {
        "metadata": {
            "name": "redis",
            "labels": {**SELECTOR, "app.kubernetes.io/version": "7.0.15"},
        },
        "spec": {
            "replicas": 3,
            "serviceName": "redis-headless",
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {
                    "labels": dict(SELECTOR),
                    "annotations": {"checksum/config": "ab" * 32},
                },
                "spec": {
                    "affinity": {"podAntiAffinity": affinity},
                    "initContainers": [],
                    "containers": [container("redis"), container("sentinel")],
                    "volumes": [{"name": "config", "configMap": {"name": "redis-config"}}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }


def deployment() -> Props:
    return {
        "metadata": {"name": "redis-proxy", "labels": {"app.kubernetes.io/name": "redis-proxy"}},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "redis-proxy"}},
                "spec": {
                    "containers": [{"name": "haproxy", "resources": copy.deepcopy(RESOURCES)}]
                },
            },
        },
    }


SCRIPT = """#!/bin/sh
# start-redis.sh: requirepass comes from the Secret at run time
{
    printf 'masteruser admin\\n'
    printf 'masterauth %s\\n' "$REDIS_PASSWORD"
    printf 'user default on %s %s\\n' "$(acl_passwords)" "$CLIENT_ACL_RULES"
    printf 'sentinel auth-pass %s %s\\n' "$MASTER_SET" "$REDIS_PASSWORD"
    echo "requirepass ${REDIS_PASSWORD}"
} >> /run/redis/redis.conf
timeout 3 redis-cli --no-auth-warning --user admin -h "$host" -a "$REDIS_PASSWORD" ping
ls -a /data
"""


def configmap(**data: str) -> Props:
    return {
        "metadata": {"name": "redis-config"},
        "data": {"redis.conf": "port 6379\nappendonly yes\n", "start-redis.sh": SCRIPT, **data},
    }


def pod_spec(props: Props) -> dict[str, Any]:
    spec: dict[str, Any] = props["spec"]["template"]["spec"]
    return spec


def redis_container(props: Props) -> dict[str, Any]:
    first: dict[str, Any] = pod_spec(props)["containers"][0]
    return first


# --- redis-odd-replicas ---------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [3, 5, 7])
def test_replicas_pass(replicas: int) -> None:
    props = redis_statefulset()
    props["spec"]["replicas"] = replicas
    assert rp.redis_replicas(STS, props, NO_CONFIG) == []


@pytest.mark.parametrize("replicas", [1, 2, 4, 6, None, "3", 3.5])
def test_replicas_violate(replicas: Any) -> None:
    props = redis_statefulset()
    if replicas is None:
        del props["spec"]["replicas"]
    else:
        props["spec"]["replicas"] = replicas
    assert rp.redis_replicas(STS, props, NO_CONFIG)


def test_replicas_only_concern_redis_statefulsets() -> None:
    other = redis_statefulset()
    other["spec"]["replicas"] = 2
    other["metadata"]["labels"] = {"app.kubernetes.io/name": "postgres"}
    other["spec"]["template"]["metadata"]["labels"] = {"app.kubernetes.io/name": "postgres"}
    assert rp.redis_replicas(STS, other, NO_CONFIG) == []
    assert rp.redis_replicas(DEPLOYMENT, {"spec": {"replicas": 2}}, NO_CONFIG) == []
    labelled_pods_only = redis_statefulset()
    labelled_pods_only["metadata"]["labels"] = {}
    labelled_pods_only["spec"]["replicas"] = 2
    assert rp.redis_replicas(STS, labelled_pods_only, NO_CONFIG)


# --- workload-resources ----------------------------------------------------------------------


def test_resources_pass() -> None:
    assert rp.container_resources(STS, redis_statefulset(), NO_CONFIG) == []
    assert rp.container_resources(DEPLOYMENT, deployment(), NO_CONFIG) == []


@pytest.mark.parametrize(
    ("section", "name"),
    [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")],
)
def test_resources_violate_on_each_missing_quantity(section: str, name: str) -> None:
    props = redis_statefulset()
    del pod_spec(props)["containers"][1]["resources"][section][name]
    violations = rp.container_resources(STS, props, NO_CONFIG)
    assert (
        len(violations) == 1
        and f"{section}.{name}" in violations[0]
        and "sentinel" in violations[0]
    )


def test_resources_violate_for_init_containers_and_deployments() -> None:
    props = redis_statefulset()
    pod_spec(props)["initContainers"] = [{"name": "init-perms", "image": "busybox"}]
    assert any(
        "initContainer init-perms" in v for v in rp.container_resources(STS, props, NO_CONFIG)
    )
    dep = deployment()
    pod_spec(dep)["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert rp.container_resources(DEPLOYMENT, dep, NO_CONFIG)
    assert rp.container_resources(SERVICE, {"spec": {}}, NO_CONFIG) == []


# --- redis-auth-from-secret ------------------------------------------------------------------


def test_auth_from_secret_env_passes() -> None:
    assert rp.redis_auth_from_secret(STS, redis_statefulset(), NO_CONFIG) == []


def test_auth_from_mounted_secret_volume_passes() -> None:
    props = redis_statefulset()
    redis = redis_container(props)
    redis["env"] = [{"name": "MASTER_SET", "value": "mymaster"}]
    redis["volumeMounts"].append({"name": "auth", "mountPath": "/run/secrets/redis"})
    pod_spec(props)["volumes"].append({"name": "auth", "secret": {"secretName": "redis-auth"}})
    assert rp.redis_auth_from_secret(STS, props, NO_CONFIG) == []


def test_auth_without_secret_violates() -> None:
    props = redis_statefulset()
    redis_container(props)["env"] = [{"name": "MASTER_SET", "value": "mymaster"}]
    violations = rp.redis_auth_from_secret(STS, props, NO_CONFIG)
    assert len(violations) == 1 and "container redis" in violations[0]


def test_auth_with_literal_password_violates() -> None:
    props = redis_statefulset()
    redis_container(props)["env"].append({"name": "REDIS_PASSWORD_OLD", "value": "hunter2"})
    violations = rp.redis_auth_from_secret(STS, props, NO_CONFIG)
    assert violations and "REDIS_PASSWORD_OLD" in violations[0]
    assert all("hunter2" not in v for v in violations), "a violation message leaked the password"


# --- redis-persistence -----------------------------------------------------------------------


def test_persistence_passes() -> None:
    assert rp.redis_persistence(STS, redis_statefulset(), NO_CONFIG) == []


def test_persistence_without_claim_templates_violates() -> None:
    props = redis_statefulset()
    del props["spec"]["volumeClaimTemplates"]
    assert rp.redis_persistence(STS, props, NO_CONFIG)
    props["spec"]["volumeClaimTemplates"] = []
    assert rp.redis_persistence(STS, props, NO_CONFIG)


def test_persistence_with_unmounted_claim_violates() -> None:
    props = redis_statefulset()
    redis_container(props)["volumeMounts"] = [{"name": "scratch", "mountPath": "/data"}]
    assert rp.redis_persistence(STS, props, NO_CONFIG)


# --- redis-hard-anti-affinity ----------------------------------------------------------------


def test_anti_affinity_hard_passes() -> None:
    assert rp.hard_anti_affinity(STS, redis_statefulset(hard=True), HARD) == []


def test_anti_affinity_with_match_expressions_passes() -> None:
    props = redis_statefulset()
    term = pod_spec(props)["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ][0]
    term["labelSelector"] = {
        "matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "In", "values": ["redis"]}
        ]
    }
    assert rp.hard_anti_affinity(STS, props, HARD) == []


def test_anti_affinity_soft_is_fine_unless_required() -> None:
    soft = redis_statefulset(hard=False)
    assert rp.hard_anti_affinity(STS, soft, NO_CONFIG) == []
    assert rp.hard_anti_affinity(STS, soft, {"requireHardAntiAffinity": False}) == []
    assert rp.hard_anti_affinity(STS, soft, HARD)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda term: term.update(topologyKey="topology.kubernetes.io/zone"),
        lambda term: term.update(
            labelSelector={"matchLabels": {"app.kubernetes.io/name": "other"}}
        ),
        lambda term: term.pop("labelSelector"),
    ],
    ids=["zone-topology", "foreign-selector", "no-selector"],
)
def test_anti_affinity_wrong_term_violates(mutate: Callable[[dict[str, Any]], Any]) -> None:
    props = redis_statefulset()
    mutate(
        pod_spec(props)["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ][0]
    )
    assert rp.hard_anti_affinity(STS, props, HARD)


# --- no-literal-credentials ------------------------------------------------------------------


def test_no_literal_credentials_passes_on_compliant_objects() -> None:
    assert rp.no_literal_credentials(STS, redis_statefulset(), NO_CONFIG) == []
    assert rp.no_literal_credentials(DEPLOYMENT, deployment(), NO_CONFIG) == []
    assert rp.no_literal_credentials(CONFIGMAP, configmap(), NO_CONFIG) == []


@pytest.mark.parametrize(
    "env",
    [
        {"name": "REDIS_PASSWORD", "value": "hunter2"},
        {"name": "SENTINEL_PASS", "value": "hunter2"},
        {"name": "REDISCLI_AUTH", "value": "hunter2"},
        {"name": "client_secret", "value": "hunter2"},
        {"name": "REDIS_URL", "value": "redis://:hunter2@redis:6379/0"},
    ],
)
def test_literal_env_violates(env: dict[str, str]) -> None:
    props = redis_statefulset()
    pod_spec(props)["containers"][1]["env"].append(env)
    violations = rp.no_literal_credentials(STS, props, NO_CONFIG)
    assert len(violations) == 1 and env["name"] in violations[0]
    assert "hunter2" not in violations[0]


@pytest.mark.parametrize(
    "env",
    [
        {"name": "AUTH_ENABLED", "value": "true"},
        {"name": "REDIS_PASSWORD", "value": ""},
        {"name": "REDIS_PASSWORD", "value": "$(REDIS_PASSWORD_FROM_SECRET)"},
        {"name": "REDIS_URL", "value": "redis://:$(REDIS_PASSWORD)@redis:6379/0"},
        {"name": "GRACE_SECONDS", "value": "30"},
    ],
)
def test_non_credential_env_passes(env: dict[str, str]) -> None:
    props = redis_statefulset()
    pod_spec(props)["containers"][1]["env"].append(env)
    assert rp.no_literal_credentials(STS, props, NO_CONFIG) == []


@pytest.mark.parametrize(
    ("field", "argv"),
    [
        ("command", ["redis-server", "--requirepass", "hunter2"]),
        ("args", ["--masterauth=hunter2"]),
        ("command", ["sh", "-c", "exec redis-server /config/redis.conf --requirepass hunter2"]),
        ("command", ["redis-cli", "-a", "hunter2", "ping"]),
        ("command", ["/usr/bin/redis-cli", "--pass", "hunter2", "ping"]),
        ("command", ["sh", "-c", "redis-cli -h localhost -a 'hunter2' ping"]),
        ("command", ["sh", "-c", "redis-cli -u redis://:hunter2@localhost:6379 ping"]),
    ],
)
def test_literal_password_in_command_violates(field: str, argv: list[str]) -> None:
    props = redis_statefulset()
    redis_container(props)[field] = argv
    violations = rp.no_literal_credentials(STS, props, NO_CONFIG)
    assert violations and all("hunter2" not in v for v in violations)


@pytest.mark.parametrize(
    "argv",
    [
        ["redis-server", "--requirepass", "$(REDIS_PASSWORD)"],
        ["sh", "-c", 'redis-server /config/redis.conf --requirepass "$REDIS_PASSWORD"'],
        ["redis-cli", "-a", "$(REDIS_PASSWORD)", "ping"],
        ["cp", "-a", "/src", "/dst"],
        ["sh", "-c", "ls -a /data && redis-cli ping"],
    ],
)
def test_referenced_password_in_command_passes(argv: list[str]) -> None:
    props = redis_statefulset()
    redis_container(props)["command"] = argv
    assert rp.no_literal_credentials(STS, props, NO_CONFIG) == []


def test_literal_password_in_probe_and_hook_violates() -> None:
    props = redis_statefulset()
    redis_container(props)["livenessProbe"] = {
        "exec": {"command": ["redis-cli", "-a", "hunter2", "ping"]}
    }
    redis_container(props)["lifecycle"] = {
        "preStop": {"exec": {"command": ["sh", "-c", "redis-cli -a hunter2 shutdown"]}}
    }
    violations = rp.no_literal_credentials(STS, props, NO_CONFIG)
    assert any("livenessProbe" in v for v in violations)
    assert any("lifecycle.preStop" in v for v in violations)


@pytest.mark.parametrize(
    "text",
    [
        "requirepass hunter2\n",
        'requirepass "hunter2"\n',
        "masterauth hunter2\n",
        "sentinel auth-pass mymaster hunter2\n",
        "user default on >hunter2 ~* +@all\n",
        "#!/bin/sh\nredis-cli -a hunter2 ping\n",
        "url: redis://default:hunter2@redis:6379\n",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
    ],
)
def test_literal_password_in_configmap_violates(text: str) -> None:
    violations = rp.no_literal_credentials(CONFIGMAP, configmap(extra=text), NO_CONFIG)
    assert violations and all("hunter2" not in v for v in violations)
    assert all("extra" in v for v in violations)


@pytest.mark.parametrize(
    "text",
    [
        "# requirepass foobared\n",
        "requirepass $REDIS_PASSWORD\n",
        "masterauth @REDIS_PASSWORD@\n",
        "sentinel auth-pass @MASTER_SET@ ${REDIS_PASSWORD}\n",
        "user default on #" + "a" * 64 + " ~* +@all\n",
        'requirepass ""\n',
    ],
)
def test_referenced_password_in_configmap_passes(text: str) -> None:
    assert rp.no_literal_credentials(CONFIGMAP, configmap(extra=text), NO_CONFIG) == []


def test_configmap_binary_data_and_credential_keys_violate() -> None:
    props = configmap()
    props["binaryData"] = {"redis.conf": base64.b64encode(b"requirepass hunter2\n").decode()}
    assert rp.no_literal_credentials(CONFIGMAP, props, NO_CONFIG)
    assert rp.no_literal_credentials(CONFIGMAP, configmap(password="hunter2"), NO_CONFIG)


@pytest.mark.parametrize(
    "annotation",
    [
        {"example.com/password": "hunter2"},
        {"example.com/api-key": "0123456789abcdef"},
        {"example.com/connection": "redis://:hunter2@redis:6379"},
        {"example.com/conf": "requirepass hunter2"},
        {"example.com/token-holder": "ghp_" + "a" * 36},
    ],
)
def test_credential_annotations_violate(annotation: dict[str, str]) -> None:
    on_object = redis_statefulset()
    on_object["metadata"]["annotations"] = annotation
    assert rp.no_literal_credentials(STS, on_object, NO_CONFIG)
    on_pods = redis_statefulset()
    on_pods["spec"]["template"]["metadata"]["annotations"].update(annotation)
    assert any(
        v.startswith("pod template") for v in rp.no_literal_credentials(STS, on_pods, NO_CONFIG)
    )
    service = {"metadata": {"name": "redis", "annotations": annotation}, "spec": {}}
    assert rp.no_literal_credentials(SERVICE, service, NO_CONFIG)


@pytest.mark.parametrize(
    "annotation",
    [
        {"checksum/config": "f" * 64},
        {"secret.reloader.stakater.com/reload": "redis-auth"},
        {"nginx.ingress.kubernetes.io/auth-secret": "basic-auth"},
        {"pulumi.com/skipAwait": "false"},
        {"example.com/password": "$(FROM_SECRET)"},
    ],
)
def test_harmless_annotations_pass(annotation: dict[str, str]) -> None:
    service = {"metadata": {"name": "redis", "annotations": annotation}, "spec": {}}
    assert rp.no_literal_credentials(SERVICE, service, NO_CONFIG) == []


def test_is_reference() -> None:
    for ref in ("$X", "${X}", "$(X)", '"$X"', "%s", "%s\\n'", "@MASTER_SET@", "{{ .Values.pw }}"):
        assert literal_secrets.is_reference(ref), ref
    for literal in ("hunter2", "p$ss", "s%cret"):
        assert not literal_secrets.is_reference(literal), literal


# --- wiring ------------------------------------------------------------------------------------


def make_args(
    resource_type: str, props: Props, config: dict[str, Any] | None = None
) -> ResourceValidationArgs:
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(props),
        "urn:pulumi:dev::redis::x",
        "redis",
        opts,
        None,
        config,
    )


def policy(name: str) -> ResourceValidationPolicy:
    for p in rp.build_policies():
        if p.name == name:
            assert isinstance(p, ResourceValidationPolicy)
            return p
    raise AssertionError(f"no policy {name}")


def test_every_policy_is_mandatory_and_unique() -> None:
    policies = rp.build_policies()
    names = [p.name for p in policies]
    assert len(names) == len(set(names)) == len(rp.RULES) + 1
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in policies)


def test_validators_report_through_the_sdk_on_proxied_props() -> None:
    """The rules see props through the SDK's proxies (Mapping/Sequence, not dict/list)."""
    bad = redis_statefulset(hard=False)
    bad["spec"]["replicas"] = 2
    reported: list[str] = []
    for p in rp.build_policies():
        if not isinstance(p, ResourceValidationPolicy):
            continue
        p.validate(make_args(STS, bad, HARD), lambda message, urn: reported.append(message))
    assert any("spec.replicas is 2" in m for m in reported)
    assert any("anti-affinity" in m for m in reported)

    reported.clear()
    for p in rp.build_policies():
        if not isinstance(p, ResourceValidationPolicy):
            continue
        p.validate(
            make_args(STS, redis_statefulset(), HARD), lambda message, urn: reported.append(message)
        )
        p.validate(make_args(CONFIGMAP, configmap()), lambda message, urn: reported.append(message))
    assert reported == []


def test_prod_config_file_enables_hard_anti_affinity() -> None:
    config = json.loads((POLICY_DIR / "config.prod.json").read_text())
    names = {spec.name for spec in rp.RULES}
    assert set(config) <= names | {"all"}
    anti = policy("redis-hard-anti-affinity")
    assert anti.config_schema is not None
    assert anti.config_schema.properties[rp.REQUIRE_HARD_ANTI_AFFINITY]["default"] is False
    assert config["redis-hard-anti-affinity"][rp.REQUIRE_HARD_ANTI_AFFINITY] is True

    reported: list[str] = []
    soft = redis_statefulset(hard=False)
    args = make_args(STS, soft, {k: v for k, v in config["redis-hard-anti-affinity"].items()})
    anti.validate(args, lambda message, urn: reported.append(message))
    assert reported
    reported.clear()
    anti.validate(make_args(STS, soft, None), lambda message, urn: reported.append(message))
    assert reported == []


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_the_program_passes_every_policy(stack: str) -> None:
    """What ``__main__.py`` registers for each stack (under mocks) violates no rule; prod
    is checked with policy/config.prod.json, as the prod preview runs it."""
    prod_config = json.loads((POLICY_DIR / "config.prod.json").read_text())
    deployment = run_program(stack_config(stack), stack)
    kinds = {r.type for r in deployment.resources}
    assert {STS, CONFIGMAP, DEPLOYMENT} <= kinds
    violations = [
        f"{spec.name} {r.type} {r.name}: {message}"
        for r in deployment.resources
        for spec in rp.RULES
        for message in spec.rule(
            r.type, r.inputs, prod_config.get(spec.name, {}) if stack == "prod" else {}
        )
    ]
    assert violations == []


def program_resources(stack: str) -> list[tuple[str, str, dict[str, Any]]]:
    """What the program registers under mocks, each with the properties a stack policy sees
    after an update (the mocks' password results included)."""
    resources = []
    for r in run_program(stack_config(stack), stack).resources:
        props = dict(r.inputs)
        if r.type == rp.RANDOM_PASSWORD:
            props["result"] = fake_password_result(r.name)
        resources.append((r.type, r.name, props))
    return resources


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_the_program_keeps_internal_credentials_in_the_secret(stack: str) -> None:
    resources = program_resources(stack)
    assert len([r for r in resources if r[0] == rp.RANDOM_PASSWORD]) >= 5
    assert rp.internal_credential_leaks(resources) == []


def test_an_internal_credential_in_the_esc_environment_violates() -> None:
    resources = program_resources("dev")
    admin = fake_password_result("redis-admin-password")
    leaked = [*resources, (ESC_ENVIRONMENT, "redis-esc", {"yaml": f"values:\n  admin: {admin}\n"})]
    (message,) = rp.internal_credential_leaks(leaked)
    assert ESC_ENVIRONMENT in message and "redis-esc" in message and admin not in message
    application = [*resources, (ESC_ENVIRONMENT, "redis-esc", {"yaml": FAKE_PASSWORD})]
    assert rp.internal_credential_leaks(application) == []


def test_a_rotated_internal_credential_is_still_internal() -> None:
    admin_v2 = "redis-admin-password-v2"
    resources = [
        (rp.RANDOM_PASSWORD, admin_v2, {"result": fake_password_result(admin_v2)}),
        (rp.RANDOM_PASSWORD, "redis-password-v3", {"result": FAKE_PASSWORD}),
        (ESC_ENVIRONMENT, "redis-esc", {"yaml": fake_password_result(admin_v2)}),
    ]
    assert len(rp.internal_credential_leaks(resources)) == 1
    names = {
        internal_password_resource_name("redis", credential.role, generation)
        for credential in INTERNAL_CREDENTIALS
        for generation in (1, 2)
    }
    assert all(rp.INTERNAL_PASSWORD_NAME.search(name) for name in names), names
    assert not rp.INTERNAL_PASSWORD_NAME.search("redis-password-v2")


def test_the_pack_runs_as_pulumi_runs_it() -> None:
    """Start the pack the way the Python analyzer host does (``python -m pulumi.policy``)
    and talk gRPC to it: policies, config schema, and a violating StatefulSet (gRPC
    numbers arrive as floats)."""
    import grpc
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICY_DIR)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert {p.name for p in info.policies} == {spec.name for spec in rp.RULES} | {
                rp.INTERNAL_CREDENTIALS_POLICY
            }
            assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}

            request = analyzer_pb2.ConfigureAnalyzerRequest()
            prod = json.loads((POLICY_DIR / "config.prod.json").read_text())
            for name, settings in prod.items():
                request.policyConfig[name].enforcementLevel = analyzer_pb2.MANDATORY
                request.policyConfig[name].properties.update(
                    {k: v for k, v in settings.items() if k != "enforcementLevel"}
                )
            stub.Configure(request, timeout=30)

            bad = redis_statefulset(hard=False)
            bad["spec"]["replicas"] = 4
            props = struct_pb2.Struct()
            props.update(bad)
            response = stub.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=STS, properties=props, urn="urn:pulumi:prod::p::t::redis", name="redis"
                ),
                timeout=30,
            )
            reported = {d.policyName for d in response.diagnostics}
            assert reported == {"redis-odd-replicas", "redis-hard-anti-affinity"}

            props = struct_pb2.Struct()
            props.update(redis_statefulset())
            response = stub.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=STS, properties=props, urn="urn:pulumi:prod::p::t::redis", name="redis"
                ),
                timeout=30,
            )
            assert list(response.diagnostics) == []
    finally:
        proc.kill()
        proc.wait(timeout=30)


REQUIRE_TLS = {rp.REQUIRE_TLS: True}


def rendered_configmap(tls: dict[str, Any] | None) -> Props:
    """The Redis ConfigMap the program renders with ``redis:tls`` set to ``tls``."""
    from components.conf import config_files
    from components.settings import load_settings

    settings = load_settings({"redis:tls": json.dumps(tls)} if tls else {})
    return {"metadata": {"name": "redis-config"}, "data": config_files(settings)}


def test_tls_only_passes_when_tls_is_required() -> None:
    props = rendered_configmap({"enabled": True, "selfSignedCa": True})
    assert rp.tls_required(CONFIGMAP, props, REQUIRE_TLS) == []


@pytest.mark.parametrize(
    "tls",
    [None, {"enabled": True, "selfSignedCa": True, "plaintext": True}],
    ids=["off", "transition"],
)
def test_plain_ports_violate_when_tls_is_required(tls: dict[str, Any] | None) -> None:
    violations = rp.tls_required(CONFIGMAP, rendered_configmap(tls), REQUIRE_TLS)
    assert violations and all("TLS is required" in v for v in violations), violations
    assert any("redis.conf" in v for v in violations)
    assert any("sentinel.conf" in v for v in violations)


def test_tls_is_not_required_without_the_setting() -> None:
    assert rp.tls_required(CONFIGMAP, rendered_configmap(None), NO_CONFIG) == []
    # Other ConfigMaps (the proxy's) are not Redis configs.
    assert rp.tls_required(CONFIGMAP, configmap(), REQUIRE_TLS) != []
    proxy = {"metadata": {"name": "redis-proxy-config"}, "data": {"haproxy.cfg": "x"}}
    assert rp.tls_required(CONFIGMAP, proxy, REQUIRE_TLS) == []
