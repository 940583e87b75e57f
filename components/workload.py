"""The Redis StatefulSet: one pod per replica with redis-server and a Sentinel sidecar."""

from __future__ import annotations

from typing import Any

from .conf import SCRIPT_VOLUME_FILES, revision_config_map
from .credentials import (
    ADMIN,
    APPLICATION,
    CREDENTIALS,
    INTERNAL_CREDENTIALS,
    MONITORING,
    PREVIOUS_APPLICATION_ENV,
    PREVIOUS_APPLICATION_KEY,
)
from .metrics import EXPORTER_PORT, exporter_arguments
from .naming import REDIS_PORT, SENTINEL_PORT, Names, common_labels, image_version, selector_labels
from .pod_constants import CONFIG_MOUNT, DATA_MOUNT, RUN_MOUNT, SCRIPTS_MOUNT, TMP_MOUNT
from .settings import RedisSettings
from .tls import REDIS_TLS_PORT, SENTINEL_TLS_PORT, TLS_MOUNT

REDIS_UID = 999

PASSWORD_KEY = APPLICATION.secret_key
PREVIOUS_PASSWORD_KEY = PREVIOUS_APPLICATION_KEY

Json = dict[str, Any]


def restricted_container_security() -> Json:
    """Container security context of the Pod Security Standard "restricted" profile."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(uid: int) -> Json:
    """Pod security context: a fixed non-root user whose group owns the volumes."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def secret_env(name: str, secret: str, key: str, optional: bool = False) -> Json:
    """An environment variable read from a Secret, so no value lands in the pod spec."""
    ref: Json = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def field_env(name: str, path: str) -> Json:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def affinity(settings: RedisSettings, labels: dict[str, str]) -> Json:
    """Anti-affinity on the node, hard or soft, so one node loss costs one replica at most."""
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
    if settings.anti_affinity == "required":
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    }


def zone_spread(labels: dict[str, str]) -> list[Json]:
    """Spread over zones where nodes carry zone labels; a soft rule, so unlabelled nodes work."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels},
        }
    ]


def pod_env(settings: RedisSettings, names: Names) -> list[Json]:
    """Environment of both containers: who the pod is and every role's password (the servers
    define every role's user), the previous ones while a rotation keeps them (optional: a
    revocation drops them from the Secret without changing the spec); ``REDISCLI_AUTH`` is the
    admin's, for the scripts and operators. Everything else the scripts need is in
    ``constants.sh``."""
    previous_internal = (
        [
            secret_env(c.previous_env, names.secret, c.previous_secret_key, optional=True)
            for c in INTERNAL_CREDENTIALS
        ]
        if settings.internal_password_generation > 1
        else []
    )
    return [
        field_env("POD_NAME", "metadata.name"),
        field_env("REVISION", "metadata.labels['controller-revision-hash']"),
        {"name": "REDISCLI_HISTFILE", "value": "/dev/null"},
        *(secret_env(c.env, names.secret, c.secret_key) for c in CREDENTIALS),
        secret_env(PREVIOUS_APPLICATION_ENV, names.secret, PREVIOUS_APPLICATION_KEY, optional=True),
        *previous_internal,
        secret_env("REDISCLI_AUTH", names.secret, ADMIN.secret_key),
    ]


def _script_command(name: str, *args: str) -> list[str]:
    return ["sh", f"{SCRIPTS_MOUNT}/{name}", *args]


def _exec_probe(mode: str, period: int, failures: int, timeout: int = 5) -> Json:
    return {
        "exec": {"command": _script_command("probe.sh", mode)},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _mounts(*volumes: tuple[str, str]) -> list[Json]:
    return [{"name": name, "mountPath": path} for name, path in volumes]


def tls_mounts(settings: RedisSettings) -> list[Json]:
    """The certificate Secret's mount, with TLS on."""
    if not settings.tls.enabled:
        return []
    return [{"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True}]


def job_scripts_volume(settings: RedisSettings) -> Json:
    """The ``scripts`` volume of a Job's pod: the current revision's ConfigMap, every file
    executable (the scripts and ``constants.sh``)."""
    return {
        "name": "scripts",
        "configMap": {"name": revision_config_map(settings), "defaultMode": 0o555},
    }


def tls_volumes(settings: RedisSettings, names: Names) -> list[Json]:
    """The certificate Secret as a volume readable by the pod's group, with TLS on. The kubelet
    swaps its files in one step when cert-manager renews the certificate."""
    if not settings.tls.enabled:
        return []
    return [{"name": "tls", "secret": {"secretName": names.tls_secret, "defaultMode": 0o440}}]


def container_ports(settings: RedisSettings, name: str, plain: int, tls: int) -> list[Json]:
    """The ports a container listens on: plain unless TLS-only, TLS when enabled."""
    ports = []
    if settings.tls.plain_ports_open:
        ports.append({"name": name, "containerPort": plain})
    if settings.tls.enabled:
        ports.append({"name": f"{name}-tls", "containerPort": tls})
    return ports


def redis_container(settings: RedisSettings, names: Names) -> Json:
    return {
        "name": "redis",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": _script_command("start-redis.sh"),
        "env": pod_env(settings, names),
        "ports": container_ports(settings, "redis", REDIS_PORT, REDIS_TLS_PORT),
        "resources": settings.resources["redis"].as_kubernetes(),
        "securityContext": restricted_container_security(),
        "startupProbe": _exec_probe("redis-live", period=2, failures=150),
        "livenessProbe": _exec_probe("redis-live", period=10, failures=6),
        "readinessProbe": {
            **_exec_probe("redis-ready", period=2, failures=2),
            "successThreshold": 1,
        },
        "lifecycle": {"preStop": {"exec": {"command": _script_command("prestop-redis.sh")}}},
        "volumeMounts": _mounts(
            ("data", DATA_MOUNT),
            ("config", CONFIG_MOUNT),
            ("scripts", SCRIPTS_MOUNT),
            ("run", RUN_MOUNT),
            ("tmp", TMP_MOUNT),
        )
        + tls_mounts(settings),
    }


def sentinel_container(settings: RedisSettings, names: Names) -> Json:
    return {
        "name": "sentinel",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": _script_command("start-sentinel.sh"),
        "env": pod_env(settings, names),
        "ports": container_ports(settings, "sentinel", SENTINEL_PORT, SENTINEL_TLS_PORT),
        "resources": settings.resources["sentinel"].as_kubernetes(),
        "securityContext": restricted_container_security(),
        "startupProbe": _exec_probe("sentinel-live", period=2, failures=150),
        "livenessProbe": _exec_probe("sentinel-live", period=10, failures=6),
        "readinessProbe": _exec_probe("sentinel-ready", period=5, failures=2),
        # Keep this Sentinel up while the Redis container's preStop hands the master role over.
        "lifecycle": {"preStop": {"exec": {"command": _script_command("prestop-sentinel.sh")}}},
        # The run volume holds the Redis server's socket, through which this container's
        # scripts see their own server even while a hand-over has closed its TCP port.
        "volumeMounts": _mounts(
            ("data", DATA_MOUNT),
            ("config", CONFIG_MOUNT),
            ("scripts", SCRIPTS_MOUNT),
            ("run", RUN_MOUNT),
            ("tmp", TMP_MOUNT),
        )
        + tls_mounts(settings),
    }


def local_url(settings: RedisSettings, plain_port: int, tls_port: int) -> str:
    """URL of one of the pod's own processes as its peers reach it: TLS unless the pods' links
    stay plain."""
    if settings.tls.internal:
        return f"rediss://localhost:{tls_port}"
    return f"redis://localhost:{plain_port}"


def sentinel_scrape_target(settings: RedisSettings) -> str:
    """The ``target`` of the exporter's ``/scrape`` endpoint that exports the pod's Sentinel."""
    return local_url(settings, SENTINEL_PORT, SENTINEL_TLS_PORT)


def exporter_container(settings: RedisSettings, names: Names) -> Json:
    """redis_exporter for the pod's server (``/metrics``) and Sentinel (``/scrape``), logged in
    as the monitoring user; TLS files are read again at every scrape, so renewals need nothing."""
    tls = settings.tls.internal
    arguments = exporter_arguments(
        local_url(settings, REDIS_PORT, REDIS_TLS_PORT),
        MONITORING.redis_user or "",
        ca_file=f"{TLS_MOUNT}/ca.crt" if tls else None,
        client_certificate=(f"{TLS_MOUNT}/tls.crt", f"{TLS_MOUNT}/tls.key") if tls else None,
    )
    return {
        "name": "exporter",
        "image": settings.metrics.exporter_image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": arguments,
        "env": [secret_env("REDIS_PASSWORD", names.secret, MONITORING.secret_key)],
        "ports": [{"name": "metrics", "containerPort": EXPORTER_PORT}],
        "resources": settings.resources["exporter"].as_kubernetes(),
        "securityContext": restricted_container_security(),
        "volumeMounts": tls_mounts(settings),
    }


def statefulset_spec(settings: RedisSettings, names: Names, annotations: dict[str, str]) -> Json:
    """The StatefulSet spec; ``annotations`` go on the pod template (config checksums)."""
    selector = selector_labels(names, "server")
    labels = common_labels(names, "server", image_version(settings.image))
    config_map = revision_config_map(settings)
    return {
        "replicas": settings.replicas,
        "serviceName": names.headless_service,
        # Parallel: after a full restart every pod must start to find the latest master; with
        # OrderedReady pod 0 would wait for a master link before pod 1 may start.
        "podManagementPolicy": "Parallel",
        # The rolling-update Job deletes the pods, the master last (components/rollout.py).
        "updateStrategy": {"type": "OnDelete"},
        "persistentVolumeClaimRetentionPolicy": {
            "whenDeleted": settings.pvc_retention_policy,
            "whenScaled": settings.pvc_retention_policy,
        },
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": {
                "serviceAccountName": names.service_account,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": settings.termination_grace_period_seconds,
                "securityContext": pod_security(REDIS_UID),
                "affinity": affinity(settings, selector),
                "topologySpreadConstraints": zone_spread(selector),
                "containers": [
                    redis_container(settings, names),
                    sentinel_container(settings, names),
                    *([exporter_container(settings, names)] if settings.metrics.enabled else []),
                ],
                "volumes": [
                    {
                        "name": "config",
                        "configMap": {
                            "name": config_map,
                            "items": [
                                {"key": "redis.conf", "path": "redis.conf"},
                                {"key": "sentinel.conf", "path": "sentinel.conf"},
                            ],
                        },
                    },
                    {
                        "name": "scripts",
                        "configMap": {
                            "name": config_map,
                            "defaultMode": 0o555,
                            "items": [{"key": n, "path": n} for n in SCRIPT_VOLUME_FILES],
                        },
                    },
                    {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    *tls_volumes(settings, names),
                ],
            },
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data", "labels": selector},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": settings.storage_size}},
                    **(
                        {"storageClassName": settings.storage_class}
                        if settings.storage_class
                        else {}
                    ),
                },
            }
        ],
    }
