"""The whole program under mocks, for every stack: objects, names, wiring, secrets, outputs."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Coroutine
from functools import cache
from typing import Any, TypeVar

import pulumi
import pytest

from components.conf import checksum
from tests.harness import (
    FAKE_CA_CERTIFICATE,
    FAKE_PASSWORD,
    PROJECT,
    Deployment,
    Registered,
    fake_password_result,
    run_program,
    stack_config,
)

T = TypeVar("T")

STS = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ROLLED_NETPOL = (NETPOL, "redis-server-rolled-netpol")
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
ROLLOUT_JOB = ("kubernetes:batch/v1:Job", "redis-roll")
ROLLOUT = {
    ROLLOUT_JOB,
    ("kubernetes:core/v1:ServiceAccount", "redis-roller"),
    (ROLE, "redis-roller"),
    (ROLE_BINDING, "redis-roller"),
}
"""The rolling update's Job and its ServiceAccount, Role and RoleBinding."""
NAMESPACE = "kubernetes:core/v1:Namespace"
PASSWORD = "random:index/randomPassword:RandomPassword"
ESC = "pulumiservice:index:Environment"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
COMPONENT = "sophia:redis:RedisSentinel"
JOB = "kubernetes:batch/v1:Job"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
ISSUER = "kubernetes:cert-manager.io/v1:Issuer"
TLS_ROLE = "sophia:redis:Certificates"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
MONITORING_ROLE = "sophia:redis:Monitoring"
ROLES = {
    "sophia:redis:Access",
    "sophia:redis:RedisServers",
    "sophia:redis:MasterRouting",
    "sophia:redis:Publishing",
}

STACKS = ["dev", "prod", "local"]


@cache
def deployed(stack: str) -> Deployment:
    return run_program(stack_config(stack), stack)


def deploy_with(stack: str, **overrides: str) -> Deployment:
    config = {**stack_config(stack), **{f"redis:{k}": v for k, v in overrides.items()}}
    return run_program(config, stack)


def pod_spec(deployment: Deployment, resource_type: str = STS) -> dict[str, Any]:
    spec: dict[str, Any] = deployment.one(resource_type).inputs["spec"]["template"]["spec"]
    return spec


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def server_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The Redis and Sentinel containers, without the metrics exporter."""
    return [c for c in spec["containers"] if c["name"] != "exporter"]


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def key(resource: object) -> tuple[str, str]:
    """(type, name) of a resource object the program created."""
    assert isinstance(resource, pulumi.Resource), resource
    return resource._type, resource._name


def custom_resources(deployment: Deployment) -> list[Registered]:
    """Every provider-managed resource: what an existing stack holds in its state."""
    return [r for r in deployment.resources if r.options]


@pytest.mark.parametrize("stack", STACKS)
def test_statefulset_shape(stack: str) -> None:
    sts = deployed(stack).one(STS, "redis").inputs["spec"]
    assert sts["replicas"] == 3
    assert sts["serviceName"] == "redis-headless"
    assert sts["podManagementPolicy"] == "Parallel"
    assert [c["name"] for c in sts["template"]["spec"]["containers"]] == [
        "redis",
        "sentinel",
        "exporter",
    ]
    claim = sts["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    expected_size = {"dev": "2Gi", "prod": "10Gi", "local": "1Gi"}[stack]
    assert claim["spec"]["resources"]["requests"]["storage"] == expected_size


def test_storage_class_and_retention() -> None:
    assert (
        deployed("local")
        .one(STS)
        .inputs["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"]
        == "local-path"
    )
    assert (
        "storageClassName"
        not in deployed("prod").one(STS).inputs["spec"]["volumeClaimTemplates"][0]["spec"]
    )
    for stack, policy in (("prod", "Retain"), ("dev", "Delete"), ("local", "Delete")):
        retention = deployed(stack).one(STS).inputs["spec"]["persistentVolumeClaimRetentionPolicy"]
        assert retention == {"whenDeleted": policy, "whenScaled": policy}


def test_prod_statefulset_is_protected() -> None:
    assert deployed("prod").options[(STS, "redis")].protect is True
    assert not deployed("dev").options[(STS, "redis")].protect


def test_volume_claim_change_orphans_pods_instead_of_deleting_them() -> None:
    annotations = deployed("dev").one(STS).inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/deletionPropagationPolicy"] == "orphan"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("workload", [STS, DEPLOYMENT])
def test_every_container_has_requests_and_limits(stack: str, workload: str) -> None:
    for container in all_containers(pod_spec(deployed(stack), workload)):
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert set(resources[kind]) == {"cpu", "memory"}, container["name"]


def test_prod_redis_limits() -> None:
    redis = pod_spec(deployed("prod"))["containers"][0]
    assert redis["resources"]["limits"] == {"cpu": "2", "memory": "8Gi"}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("workload", [STS, DEPLOYMENT])
def test_restricted_security_context(stack: str, workload: str) -> None:
    spec = pod_spec(deployed(stack), workload)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in all_containers(spec):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["runAsNonRoot"] is True


def test_service_accounts_mount_no_token() -> None:
    accounts = deployed("dev").of_type("kubernetes:core/v1:ServiceAccount")
    assert {account.name for account in accounts} == {"redis-serviceaccount", "redis-roller"}
    for account in accounts:
        assert account.inputs["automountServiceAccountToken"] is False


def revocation_jobs(deployment: Deployment) -> list[Registered]:
    """The Jobs of the deployment but the rolling update's."""
    return [job for job in deployment.of_type(JOB) if (JOB, job.name) != ROLLOUT_JOB]


def test_anti_affinity_required_in_prod_preferred_in_dev() -> None:
    prod = pod_spec(deployed("prod"))["affinity"]["podAntiAffinity"]
    dev = pod_spec(deployed("dev"))["affinity"]["podAntiAffinity"]
    term = prod["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in dev
    assert (
        dev["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"]
        == "kubernetes.io/hostname"
    )
    spread = pod_spec(deployed("prod"))["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"


@pytest.mark.parametrize("stack", STACKS)
def test_probes_on_redis_and_sentinel(stack: str) -> None:
    for container in server_containers(pod_spec(deployed(stack))):
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:2] == ["sh", "/scripts/probe.sh"], (container["name"], probe)
    redis, sentinel = server_containers(pod_spec(deployed(stack)))
    assert redis["readinessProbe"]["exec"]["command"][-1] == "redis-ready"
    assert redis["lifecycle"]["preStop"]["exec"]["command"] == ["sh", "/scripts/prestop-redis.sh"]
    assert sentinel["lifecycle"]["preStop"]["exec"]["command"][-1] == "/scripts/prestop-sentinel.sh"


@pytest.mark.parametrize("stack", STACKS)
def test_password_reaches_pods_only_by_secret_reference(stack: str) -> None:
    deployment = deployed(stack)
    for workload in (STS, DEPLOYMENT):
        for container in all_containers(pod_spec(deployment, workload)):
            env = {e["name"]: e for e in container["env"]}
            # The exporter's REDIS_PASSWORD is its own variable, for the monitoring user.
            key = "monitoring-password" if container["name"] == "exporter" else "password"
            assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
                "name": "redis-auth",
                "key": key,
            }
            for entry in container["env"]:
                if any(word in entry["name"] for word in ("PASSWORD", "AUTH")):
                    assert "value" not in entry, entry["name"]
            assert "-a" not in container.get("command", []) + container.get("args", [])


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_carry_the_application_password_and_no_other(stack: str) -> None:
    deployment = deployed(stack)
    exported = json.dumps(deployment.outputs, default=str)
    assert FAKE_PASSWORD in exported
    for name in INTERNAL_PASSWORDS:
        assert fake_password_result(name) not in exported, name


@pytest.mark.parametrize("stack", STACKS)
def test_no_literal_password_outside_the_secret(stack: str) -> None:
    deployment = deployed(stack)
    for resource in deployment.resources:
        if resource.type in (SECRET, PASSWORD, ESC):
            continue
        assert FAKE_PASSWORD not in json.dumps(resource.inputs, default=str), resource.name
    secret = deployment.one(SECRET, "redis-auth")
    assert secret.inputs["stringData"]["password"] == FAKE_PASSWORD


INTERNAL_PASSWORDS = [
    "redis-admin-password",
    "redis-monitoring-password",
    "redis-replication-password",
    "redis-sentinel-password",
]
"""One generated password per internal role (components.credentials)."""
SECRET_KEYS = {
    "password",
    "admin-password",
    "replication-password",
    "sentinel-password",
    "monitoring-password",
}


def test_every_role_gets_its_own_long_password() -> None:
    deployment = deployed("dev")
    passwords = deployment.of_type(PASSWORD)
    assert sorted(p.name for p in passwords) == sorted(["redis-password-v1", *INTERNAL_PASSWORDS])
    assert all(p.inputs["length"] >= 32 for p in passwords)
    assert set(deployment.one(SECRET).inputs["stringData"]) == SECRET_KEYS


def test_containers_read_every_password_from_the_secret_and_the_cli_the_admins() -> None:
    spec = deployed("dev").one(STS).inputs["spec"]["template"]["spec"]
    for container in server_containers(spec):
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert set(refs.values()) == SECRET_KEYS | {"previous-password"}
        assert refs["REDISCLI_AUTH"] == "admin-password"
        assert refs["REDIS_PASSWORD"] == "password"


def test_rotation_keeps_the_previous_password_during_the_roll() -> None:
    rotated = deploy_with("dev", passwordGeneration="2")
    assert sorted(p.name for p in rotated.of_type(PASSWORD)) == sorted(
        ["redis-password-v1", "redis-password-v2", *INTERNAL_PASSWORDS]
    )
    assert set(rotated.one(SECRET).inputs["stringData"]) == SECRET_KEYS | {"previous-password"}
    before = deployed("dev").one(STS).inputs["spec"]["template"]["metadata"]["annotations"]
    after = rotated.one(STS).inputs["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/auth"] != after["checksum/auth"], "rotation must roll the pods"
    assert before["checksum/config"] == after["checksum/config"]


def test_revocation_drops_the_previous_password_and_runs_a_job_without_rolling_the_servers() -> (
    None
):
    rotated = deploy_with("dev", passwordGeneration="2")
    revoked = deploy_with("dev", passwordGeneration="2", revokedPasswordGeneration="1")
    assert set(revoked.one(SECRET).inputs["stringData"]) == SECRET_KEYS
    assert sorted(p.name for p in revoked.of_type(PASSWORD)) == sorted(
        p.name for p in rotated.of_type(PASSWORD)
    ), "no password is generated or dropped by a revocation"

    def auth_checksum(deployment: Deployment, resource_type: str) -> str:
        annotations = pod_spec_metadata(deployment, resource_type)["annotations"]
        return str(annotations["checksum/auth"])

    assert auth_checksum(revoked, STS) == auth_checksum(rotated, STS), "servers must not roll"
    assert auth_checksum(revoked, DEPLOYMENT) != auth_checksum(rotated, DEPLOYMENT)
    (job,) = revocation_jobs(revoked)
    assert job.name == "redis-revoke-v1"
    assert job.inputs["metadata"]["name"] == "redis-revoke-v1"
    depends_on = revoked.options[(JOB, job.name)].depends_on or []
    assert isinstance(depends_on, list)
    assert {key(r) for r in depends_on} == {ROLLOUT_JOB, (DEPLOYMENT, "redis-proxy")}
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["sh", "/scripts/revoke.sh"]
    assert FAKE_PASSWORD not in json.dumps(job.inputs)
    assert not revocation_jobs(rotated)


def test_the_next_rotation_after_a_revocation_keeps_its_previous_password() -> None:
    rotated_again = deploy_with("dev", passwordGeneration="3", revokedPasswordGeneration="1")
    assert "previous-password" in rotated_again.one(SECRET).inputs["stringData"]
    assert not revocation_jobs(rotated_again)


def auth_checksum_of(deployment: Deployment, resource_type: str) -> str:
    return str(pod_spec_metadata(deployment, resource_type)["annotations"]["checksum/auth"])


def secret_refs(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """The Secret references of the Redis container's environment, by variable."""
    container = deployment.one(STS).inputs["spec"]["template"]["spec"]["containers"][0]
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_internal_rotation_keeps_the_previous_internal_passwords_and_rolls_only_the_servers() -> (
    None
):
    before = deployed("dev")
    rotated = deploy_with("dev", internalPasswordGeneration="2")
    assert sorted(p.name for p in rotated.of_type(PASSWORD)) == sorted(
        [
            "redis-password-v1",
            *INTERNAL_PASSWORDS,
            *(f"{name}-v2" for name in INTERNAL_PASSWORDS),
        ]
    )
    previous_keys = {f"previous-{key}" for key in SECRET_KEYS - {"password"}}
    assert set(rotated.one(SECRET).inputs["stringData"]) == SECRET_KEYS | previous_keys
    refs = secret_refs(rotated)
    assert refs["REDIS_PREVIOUS_ADMIN_PASSWORD"] == {
        "name": "redis-auth",
        "key": "previous-admin-password",
        "optional": True,
    }
    assert {ref["key"] for ref in refs.values()} >= previous_keys
    assert not any(key.startswith("REDIS_PREVIOUS_ADMIN") for key in secret_refs(before))
    assert auth_checksum_of(rotated, STS) != auth_checksum_of(before, STS)
    assert auth_checksum_of(rotated, DEPLOYMENT) == auth_checksum_of(before, DEPLOYMENT)


def test_internal_revocation_drops_the_previous_internal_passwords_with_a_job_of_its_own() -> None:
    rotated = deploy_with("dev", internalPasswordGeneration="2")
    revoked = deploy_with(
        "dev", internalPasswordGeneration="2", revokedInternalPasswordGeneration="1"
    )
    assert set(revoked.one(SECRET).inputs["stringData"]) == SECRET_KEYS
    assert sorted(p.name for p in revoked.of_type(PASSWORD)) == sorted(
        p.name for p in rotated.of_type(PASSWORD)
    )
    assert auth_checksum_of(revoked, STS) == auth_checksum_of(rotated, STS), "servers must not roll"
    assert auth_checksum_of(revoked, DEPLOYMENT) == auth_checksum_of(rotated, DEPLOYMENT)
    (job,) = revocation_jobs(revoked)
    assert job.name == "redis-revoke-internal-v1"
    assert job.inputs["metadata"]["name"] == "redis-revoke-internal-v1"
    env = {e["name"]: e for e in job.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REVOKE_ROLES"]["value"] == "ADMIN REPLICATION SENTINEL MONITORING"
    assert "REDIS_PASSWORD" not in env, "the application password is not revoked here"
    assert FAKE_PASSWORD not in json.dumps(job.inputs)


def test_both_revocations_run_two_jobs() -> None:
    both = deploy_with(
        "dev",
        passwordGeneration="3",
        revokedPasswordGeneration="2",
        internalPasswordGeneration="2",
        revokedInternalPasswordGeneration="1",
    )
    assert sorted(job.name for job in revocation_jobs(both)) == [
        "redis-revoke-internal-v1",
        "redis-revoke-v2",
    ]


def test_first_internal_generation_keeps_the_checksum_of_releases_before_internal_rotation() -> (
    None
):
    for generation in ("1", "4"):
        deployment = deploy_with("dev", passwordGeneration=generation)
        expected = hashlib.sha256(generation.encode()).hexdigest()
        assert auth_checksum_of(deployment, STS) == expected


def pod_spec_metadata(deployment: Deployment, resource_type: str) -> dict[str, Any]:
    metadata: dict[str, Any] = deployment.one(resource_type).inputs["spec"]["template"]["metadata"]
    return metadata


def test_config_change_rolls_the_pods() -> None:
    before = deployed("dev").one(STS).inputs["spec"]["template"]["metadata"]["annotations"]
    after = (
        deploy_with("dev", maxmemoryPolicy="allkeys-lru")
        .one(STS)
        .inputs["spec"]["template"]["metadata"]["annotations"]
    )
    assert before["checksum/config"] != after["checksum/config"]


def server_config_map(deployment: Deployment) -> Registered:
    (config_map,) = [
        r
        for r in deployment.of_type(CONFIG_MAP)
        if r.inputs["metadata"]["name"].startswith("redis-config-")
    ]
    return config_map


def test_each_config_revision_has_a_config_map_of_its_own() -> None:
    before, after = deployed("dev"), deploy_with("dev", maxmemoryPolicy="allkeys-lru")
    names = []
    for deployment in (before, after):
        config_map = server_config_map(deployment)
        name = config_map.inputs["metadata"]["name"]
        assert config_map.inputs["immutable"] is True
        assert name == f"redis-config-{checksum(config_map.inputs['data'])[:10]}"
        mounted = {
            v["configMap"]["name"] for v in pod_spec(deployment)["volumes"] if "configMap" in v
        }
        assert mounted == {name}
        names.append(name)
    assert names[0] != names[1], "a new revision must not change the files of running pods"
    revoked = deploy_with("dev", passwordGeneration="2", revokedPasswordGeneration="1")
    (job,) = revocation_jobs(revoked)
    job_volumes = job.inputs["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "scripts",
        "configMap": {
            "name": server_config_map(revoked).inputs["metadata"]["name"],
            "defaultMode": 0o555,
        },
    } in job_volumes


def test_config_map_holds_the_rendered_config() -> None:
    data = server_config_map(deployed("prod")).inputs["data"]
    conf = data["redis.conf"]
    assert "appendonly yes" in conf and "appendfsync everysec" in conf
    assert f"maxmemory {6 * 1024**3}" in conf
    assert "maxmemory-policy volatile-lru" in conf
    assert "min-replicas-to-write 1" in conf
    assert "repl-diskless-sync-delay 0" in conf
    assert "sentinel down-after-milliseconds mymaster 2000" in data["sentinel.conf"]
    assert "constants.sh" in data and "MASTER_SET=mymaster" in data["constants.sh"]
    assert data["start-redis.sh"].startswith("#!/bin/sh")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_services_have_the_names_clients_use(stack: str) -> None:
    deployment = deployed(stack)
    namespace = "sophia-ai-prod" if stack == "prod" else "sophia-ai-dev"
    master = deployment.one(SERVICE, "redis-service").inputs
    headless = deployment.one(SERVICE, "redis-headless").inputs
    sentinel = deployment.one(SERVICE, "redis-sentinel").inputs
    # prod runs TLS only: the TLS ports, named <port>-tls; dev runs plain.
    suffix, redis_port, sentinel_port = (
        ("-tls", 6380, 26380) if stack == "prod" else ("", 6379, 26379)
    )
    assert master["metadata"]["namespace"] == namespace
    assert master["spec"]["ports"] == [
        {
            "name": f"redis{suffix}",
            "port": redis_port,
            "targetPort": f"redis{suffix}",
            "protocol": "TCP",
        }
    ]
    assert master["spec"]["selector"]["app.kubernetes.io/component"] == "proxy"
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert [p["port"] for p in sentinel["spec"]["ports"]] == [sentinel_port]


def test_prod_uses_the_existing_namespace_and_never_owns_it() -> None:
    assert not deployed("prod").of_type(NAMESPACE)
    (namespace,) = deployed("dev").of_type(NAMESPACE)
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_disruption_budgets(stack: str) -> None:
    budgets = deployed(stack).of_type(PDB)
    assert len(budgets) == 2
    assert all(b.inputs["spec"]["maxUnavailable"] == 1 for b in budgets)


def test_network_policies_admit_release_pods_clients_and_listed_namespaces() -> None:
    deployment = deploy_with("dev", allowedNamespaces='["tools", "chat"]')
    server = deployment.one(NETPOL, "redis-server").inputs["spec"]
    rule = server["ingress"][0]
    assert {p["port"] for p in rule["ports"]} == {6379, 26379}
    peers = rule["from"]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "redis"}}} in peers
    assert {"namespaceSelector": {}, "podSelector": {"matchLabels": {"redis-client": "true"}}} in (
        peers
    )
    listed = [p for p in peers if "matchExpressions" in p.get("namespaceSelector", {})]
    assert listed[0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["tools", "chat"]
    proxy = deployment.one(NETPOL, "redis-proxy").inputs["spec"]
    assert proxy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]


@pytest.mark.parametrize("stack", STACKS)
def test_recommended_labels_everywhere(stack: str) -> None:
    for resource in deployed(stack).resources:
        if not resource.type.startswith("kubernetes:"):
            continue
        labels = resource.inputs["metadata"]["labels"]
        for key in ("name", "instance", "component", "version", "part-of", "managed-by"):
            assert f"app.kubernetes.io/{key}" in labels, (resource.name, key)
        assert resource.inputs["metadata"]["name"], resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_children_are_parented_and_named_after_the_component(stack: str) -> None:
    deployment = deployed(stack)
    for resource in deployment.resources:
        if resource.type == "sophia:redis:RedisSentinel":
            continue
        assert resource.name.startswith("redis"), resource.name
        assert deployment.options[(resource.type, resource.name)].parent is not None, resource.name


def test_outputs_contract() -> None:
    outputs = deployed("prod").outputs
    assert outputs["redis_url"] == (
        "rediss://:Fake-Pa55word%21%2A%2B_for.tests~0123456789abcd"
        "@redis-service.sophia-ai-prod.svc.cluster.local:6380/0"
    )
    assert outputs["redis_password"] == FAKE_PASSWORD
    assert outputs["redis_host"] == "redis-service.sophia-ai-prod.svc.cluster.local"
    assert outputs["redis_port"] == 6380
    assert outputs["sentinel_master_name"] == "mymaster"
    assert outputs["namespace"] == "sophia-ai-prod"
    assert outputs["sentinel_hosts"] == [
        f"redis-{i}.redis-headless.sophia-ai-prod.svc.cluster.local:26380" for i in range(3)
    ]
    assert outputs["tls_ca_certificate"] == FAKE_CA_CERTIFICATE


def test_outputs_without_tls() -> None:
    outputs = deployed("dev").outputs
    assert str(outputs["redis_url"]).startswith("redis://")
    assert outputs["redis_url"].endswith("@redis-service.sophia-ai-dev.svc.cluster.local:6379/0")
    assert outputs["redis_port"] == 6379
    assert outputs["tls_ca_certificate"] == ""
    assert all(h.endswith(":26379") for h in outputs["sentinel_hosts"])


def test_url_and_password_outputs_are_secret() -> None:
    from pulumi.runtime import test as runtime_test  # noqa: F401  (mocks already set)

    raw = deployed("dev").raw_outputs
    import asyncio

    async def secrecy() -> dict[str, bool]:
        return {name: await output.is_secret() for name, output in raw.items()}

    loop = asyncio.new_event_loop()
    try:
        flags = loop.run_until_complete(secrecy())
    finally:
        loop.close()
    assert flags["redis_url"] and flags["redis_password"]
    assert not flags["redis_host"] and not flags["sentinel_hosts"] and not flags["namespace"]


def test_esc_environment_is_published_where_configured() -> None:
    environment = deployed("prod").one(ESC)
    assert environment.inputs["organization"] == "sophia-ai"
    assert environment.inputs["project"] == "redis"
    assert environment.inputs["name"] == "prod"
    assert not deployed("local").of_type(ESC)


OWNERS: dict[str, set[tuple[str, str]]] = {
    "sophia:redis:Access": {
        (NAMESPACE, "redis-namespace"),
        (PASSWORD, "redis-password-v1"),
        (PASSWORD, "redis-password-v2"),
        *((PASSWORD, name) for name in INTERNAL_PASSWORDS),
        (SECRET, "redis-auth"),
        (SERVICE_ACCOUNT, "redis-serviceaccount"),
        (PDB, "redis-server-pdb"),
        (PDB, "redis-proxy-pdb"),
        (NETPOL, "redis-server-netpol"),
        (NETPOL, "redis-proxy-netpol"),
    },
    "sophia:redis:RedisServers": {
        (CONFIG_MAP, "redis-config"),
        (SERVICE, "redis-headless"),
        (SERVICE, "redis-sentinel"),
        (STS, "redis"),
        ROLLED_NETPOL,
        *ROLLOUT,
    },
    "sophia:redis:MasterRouting": {
        (CONFIG_MAP, "redis-proxy-config"),
        (DEPLOYMENT, "redis-proxy"),
        (SERVICE, "redis-service"),
    },
    "sophia:redis:Publishing": {(ESC, "redis-esc")},
    "sophia:redis:Revocation": {(JOB, "redis-revoke-v1"), (JOB, "redis-revoke-internal-v1")},
    TLS_ROLE: {
        (ISSUER, "redis-selfsigned-issuer"),
        (CERTIFICATE, "redis-ca-certificate"),
        (ISSUER, "redis-ca-issuer"),
        (CERTIFICATE, "redis-server-certificate"),
        (CERTIFICATE, "redis-client-certificate"),
    },
    MONITORING_ROLE: {
        (POD_MONITOR, "redis-pod-monitor"),
        (PROMETHEUS_RULE, "redis-prometheus-rule"),
        (CONFIG_MAP, "redis-dashboard"),
    },
}
"""Which role component owns which resource (the namespace, the second password and the ESC
environment exist only with some settings)."""


@pytest.mark.parametrize("stack", STACKS)
def test_each_role_is_a_typed_child_component_named_after_the_release(stack: str) -> None:
    deployment = deployed(stack)
    component = deployment.registrations[(COMPONENT, "redis")]
    components = {r.type for r in deployment.resources if not r.options} - {COMPONENT}
    tls = json.loads(stack_config(stack).get("redis:tls", "{}")).get("enabled", False)
    metrics = json.loads(stack_config(stack).get("redis:metrics", "{}"))
    monitoring = any(metrics.get(k) for k in ("podMonitor", "prometheusRule", "grafanaDashboard"))
    assert components == ROLES | ({TLS_ROLE} if tls else set()) | (
        {MONITORING_ROLE} if monitoring else set()
    )
    for role in components:
        assert deployment.registrations[(role, "redis")].parent == component.urn, role
        assert key(deployment.options[(role, "redis")].parent) == (COMPONENT, "redis"), role


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_descends_from_the_redis_sentinel(stack: str) -> None:
    deployment = deployed(stack)
    by_urn = {r.urn: r for r in deployment.registrations.values()}
    component = deployment.registrations[(COMPONENT, "redis")]
    assert component.parent.endswith(f"::pulumi:pulumi:Stack::{PROJECT}-{stack}")
    for resource in deployment.resources:
        if resource.type == COMPONENT:
            continue
        chain = [deployment.registrations[(resource.type, resource.name)].parent]
        while chain[-1] not in ("", component.urn):
            chain.append(by_urn[chain[-1]].parent)
        assert chain[-1] == component.urn, (resource.type, resource.name, chain)


@pytest.mark.parametrize("stack", STACKS)
def test_each_role_owns_its_resources(stack: str) -> None:
    deployment = deployed(stack)
    registered = {(r.type, r.name) for r in custom_resources(deployment)}
    assert registered <= set().union(*OWNERS.values())
    for role, owned in OWNERS.items():
        if (role, "redis") not in deployment.registrations:
            assert not owned & registered, role
            continue
        role_urn = deployment.registrations[(role, "redis")].urn
        children = {k for k in registered if deployment.registrations[k].parent == role_urn}
        assert children == owned & registered, role


@pytest.mark.parametrize("release", [*STACKS, "dev-rotating"])
def test_moved_resources_keep_the_urn_they_had_under_the_redis_sentinel(release: str) -> None:
    stack = release.removesuffix("-rotating")
    deployment = deploy_with(stack, passwordGeneration="2") if release != stack else deployed(stack)
    for resource in custom_resources(deployment):
        if (resource.type, resource.name) in OWNERS[TLS_ROLE] | OWNERS[MONITORING_ROLE] | {
            ROLLED_NETPOL,
            *ROLLOUT,
        }:
            continue  # created after the split: never under the RedisSentinel
        registration = deployment.registrations[(resource.type, resource.name)]
        before = f"urn:pulumi:{stack}::{PROJECT}::{COMPONENT}${resource.type}::{resource.name}"
        assert registration.urn != before, resource.name
        assert before in registration.aliases, resource.name
        former_parents = [
            key(alias.parent)
            for alias in deployment.options[(resource.type, resource.name)].aliases or []
            if isinstance(alias, pulumi.Alias) and isinstance(alias.parent, pulumi.Resource)
        ]
        assert former_parents == [(COMPONENT, "redis")], resource.name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_workloads_wait_for_what_they_read(stack: str) -> None:
    deployment = deployed(stack)
    namespace = {(NAMESPACE, "redis-namespace")} if stack == "dev" else set()

    def waits_for(resource_type: str, name: str) -> set[tuple[str, str]]:
        depends_on = deployment.options[(resource_type, name)].depends_on or []
        assert isinstance(depends_on, list)
        return {key(r) for r in depends_on}

    access = {(SECRET, "redis-auth"), (SERVICE_ACCOUNT, "redis-serviceaccount")}
    assert waits_for(STS, "redis") == namespace | access | {
        (CONFIG_MAP, "redis-config"),
        (SERVICE, "redis-headless"),
    }
    assert waits_for(DEPLOYMENT, "redis-proxy") == namespace | access | {
        (CONFIG_MAP, "redis-proxy-config")
    }
    unscoped = {
        (NAMESPACE, "redis-namespace"),
        (PASSWORD, "redis-password-v1"),
        *((PASSWORD, name) for name in INTERNAL_PASSWORDS),
        (ESC, "redis-esc"),
    }
    # Changed only once the pods have rolled: the pods of the previous spec keep their ports.
    assert waits_for(*ROLLED_NETPOL) == {ROLLOUT_JOB}
    assert waits_for(*ROLLOUT_JOB) == {(STS, "redis"), (ROLE_BINDING, "redis-roller")}
    assert waits_for(ROLE_BINDING, "redis-roller") == namespace | {
        (SERVICE_ACCOUNT, "redis-roller"),
        (ROLE, "redis-roller"),
    }
    for resource in custom_resources(deployment):
        if (resource.type, resource.name) not in unscoped | {
            (STS, "redis"),
            (DEPLOYMENT, "redis-proxy"),
            ROLLED_NETPOL,
            ROLLOUT_JOB,
            (ROLE_BINDING, "redis-roller"),
        }:
            assert waits_for(resource.type, resource.name) == namespace, resource.name


def test_host_output_resolves_only_with_the_workloads_and_the_service() -> None:
    host = deployed("dev").raw_outputs["redis_host"]
    waited = {key(r) for r in run_async(host.resources())}
    assert {(STS, "redis"), (DEPLOYMENT, "redis-proxy"), (SERVICE, "redis-service")} <= waited


HEADLESS = (SERVICE, "redis-headless")


def deploy_with_service_uids(stack: str, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    """The program under mocks where each Service reports a ``uid`` (``uid-of-<name>``), as the
    API server does; the plain mocks only echo the inputs, which hold none."""
    from tests.harness import RecordingMocks

    original = RecordingMocks.new_resource

    def with_uid(
        self: RecordingMocks, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str, dict[str, Any]]:
        resource_id, outputs = original(self, args)
        if args.typ == SERVICE:
            metadata = outputs["metadata"]
            outputs = {**outputs, "metadata": {**metadata, "uid": f"uid-of-{metadata['name']}"}}
        return resource_id, outputs

    monkeypatch.setattr(RecordingMocks, "new_resource", with_uid)
    return run_program(stack_config(stack), stack)


@pytest.mark.parametrize("stack", STACKS)
def test_statefulset_is_owned_by_its_headless_service(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting the headless Service (foreground) garbage-collects the StatefulSet with its
    pods, and waits for it: that is how a destroy removes them despite the orphan policy."""
    metadata = deploy_with_service_uids(stack, monkeypatch).one(STS).inputs["metadata"]
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "redis-headless",
            "uid": "uid-of-redis-headless",
            "controller": False,
            "blockOwnerDeletion": True,
        }
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_destroy_leaves_the_statefulset_to_its_owner(stack: str) -> None:
    """A destroy skips the StatefulSet's own (orphaning) delete, so the Service's cascade
    removes it; a replacement (the Service stays) still orphans the pods for adoption."""
    deployment = deployed(stack)
    options = deployment.options[(STS, "redis")]
    assert key(options.deleted_with) == HEADLESS
    sts = deployment.one(STS).inputs
    assert sts["metadata"]["annotations"]["pulumi.com/deletionPropagationPolicy"] == "orphan"
    assert options.protect is (stack == "prod"), "deleted_with does not lift the protection"
    assert isinstance(options.depends_on, list)
    assert HEADLESS in {key(r) for r in options.depends_on}


def kubernetes_inputs(deployment: Deployment) -> dict[tuple[str, str], dict[str, Any]]:
    """A copy of the inputs of every Kubernetes object, by (type, name)."""
    import copy

    return {
        (r.type, r.name): copy.deepcopy(r.inputs)
        for r in deployment.resources
        if r.type.startswith("kubernetes:")
    }


def test_size_change_touches_only_the_claim_template() -> None:
    """A storage size change replaces the StatefulSet (immutable volumeClaimTemplates) and
    nothing else: the Service that owns it stays, so the replacement orphans, never cascades."""
    before = kubernetes_inputs(deployed("dev"))
    after = kubernetes_inputs(deploy_with("dev", storageSize="5Gi"))
    assert before.keys() == after.keys()
    assert {k for k in before if before[k] != after[k]} == {(STS, "redis")}
    sts_before, sts_after = before[(STS, "redis")], after[(STS, "redis")]
    assert sts_before["metadata"] == sts_after["metadata"]
    claims = [sts["spec"].pop("volumeClaimTemplates") for sts in (sts_before, sts_after)]
    assert sts_before["spec"] == sts_after["spec"], "no pod template change: no restart"
    assert [c[0]["spec"]["resources"]["requests"]["storage"] for c in claims] == ["2Gi", "5Gi"]


def test_prod_creates_the_pod_monitor_and_the_rules_of_its_release() -> None:
    deployment = deployed("prod")
    monitor = deployment.one(POD_MONITOR)
    assert monitor.inputs["metadata"]["namespace"] == "sophia-ai-prod"
    spec = monitor.inputs["spec"]
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "redis",
        "app.kubernetes.io/instance": "redis",
    }
    endpoints = spec["podMetricsEndpoints"]
    assert [e["path"] for e in endpoints] == ["/metrics", "/scrape", "/metrics"]
    assert endpoints[1]["params"] == {"target": ["rediss://localhost:26380"]}, "prod is TLS-only"
    rules = deployment.one(PROMETHEUS_RULE).inputs["spec"]["groups"][0]["rules"]
    assert "RedisNoMaster" in {rule["alert"] for rule in rules}
    assert all('namespace="sophia-ai-prod"' in rule["expr"] for rule in rules)
