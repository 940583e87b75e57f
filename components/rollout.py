"""The rolling update of the servers: the master last, whatever its ordinal.

The StatefulSet's update strategy is ``OnDelete``: its controller recreates a pod on the new
spec only once something deletes it. That something is a Job, one per pod template, that
``pulumi up`` waits for: ``roll-pods.sh`` deletes the pods of the previous revision one at a
time, each only while every pod is Ready, the replicas first and the master last, whose preStop
hook hands over to an updated replica. The controller's own order (highest ordinal first) moved
a master on the highest ordinal twice: first to a pod of the previous spec, then again.

The Job's pod has two containers that share a directory and nothing else: the engine image's
``roll-master.sh`` reads the master from the Sentinels with the admin password and no API
token; ``roll-pods.sh`` deletes pods with the token of a ServiceAccount whose Role may read the
release's pods and StatefulSet and delete its pods, in its namespace only, and never sees a
password.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .credentials import ADMIN
from .naming import Names, common_labels, image_version
from .pod_constants import ROLL_DIR, SCRIPTS_MOUNT, TMP_MOUNT, roll_deadline_seconds
from .settings import RedisSettings
from .workload import (
    REDIS_UID,
    Json,
    field_env,
    job_scripts_volume,
    pod_security,
    restricted_container_security,
    secret_env,
    tls_mounts,
    tls_volumes,
)

ROLLOUT_COMPONENT = "rollout"
"""``app.kubernetes.io/component`` of the Job's pod: a pod of the release, which the
NetworkPolicy admits to the Sentinels, that no Service selects."""
NAMESPACE_ENV = "NAMESPACE"
"""Environment variable of ``roll-pods.sh``: the namespace of the release."""
API_TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where ``kubectl`` looks for the in-cluster token, CA and namespace."""
API_TOKEN_SECONDS = 3600
"""Lifetime of the projected token; the kubelet renews it before it expires."""
JOB_BACKOFF_LIMIT = 1
"""A second pod if the first fails: the roll starts again from what runs."""
DEADLINE_MARGIN_SECONDS = 120
"""Time the Job and ``pulumi up`` give beyond the scripts' own deadline."""
ROLLER_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"cpu": "200m", "memory": "128Mi"},
}
WATCHER_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}


def roller_name(names: Names) -> str:
    """Name of the ServiceAccount, Role and RoleBinding of the rolling update."""
    return f"{names.release}-roller"


def template_digest(template: Any) -> str:
    """A short digest of a resolved pod template: one Job per template."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def rollout_job_name(names: Names, digest: str) -> str:
    """The Job that rolls the pods onto the template with ``digest``."""
    return f"{names.release}-roll-{digest}"


def server_pod_names(settings: RedisSettings, names: Names) -> list[str]:
    """The StatefulSet's pods at the current replica count."""
    return [f"{names.statefulset}-{ordinal}" for ordinal in range(settings.replicas)]


def roller_rules(settings: RedisSettings, names: Names) -> list[Json]:
    """The Role: read the release's pods and StatefulSet, delete its pods by name."""
    return [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "resourceNames": server_pod_names(settings, names),
            "verbs": ["delete"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["statefulsets"],
            "resourceNames": [names.statefulset],
            "verbs": ["get"],
        },
    ]


def job_deadline_seconds(settings: RedisSettings) -> int:
    """How long the Job, and ``pulumi up`` waiting for it, may take."""
    return roll_deadline_seconds(settings) + DEADLINE_MARGIN_SECONDS


def api_token_volume() -> Json:
    """The ServiceAccount's token, the cluster's CA and the namespace, as the kubelet mounts
    them, for the one container that uses them."""
    return {
        "name": "api-token",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": API_TOKEN_SECONDS}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ]
        },
    }


def rollout_job_spec(settings: RedisSettings, names: Names) -> Json:
    """The Job's spec: ``roll-pods.sh`` in the roller image, ``roll-master.sh`` in the engine
    image, sharing ``ROLL_DIR``."""
    labels = common_labels(names, ROLLOUT_COMPONENT, image_version(settings.image))
    scripts = {"name": "scripts", "mountPath": SCRIPTS_MOUNT}
    shared = {"name": "roll", "mountPath": ROLL_DIR}
    return {
        "backoffLimit": JOB_BACKOFF_LIMIT,
        "activeDeadlineSeconds": job_deadline_seconds(settings),
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": roller_name(names),
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security(REDIS_UID),
                "containers": [
                    {
                        "name": "roll",
                        "image": settings.roller_image,
                        "imagePullPolicy": settings.image_pull_policy,
                        "command": ["sh", f"{SCRIPTS_MOUNT}/roll-pods.sh"],
                        "env": [
                            field_env(NAMESPACE_ENV, "metadata.namespace"),
                            {"name": "HOME", "value": TMP_MOUNT},
                        ],
                        "resources": ROLLER_RESOURCES,
                        "securityContext": restricted_container_security(),
                        "volumeMounts": [
                            scripts,
                            shared,
                            {"name": "tmp", "mountPath": TMP_MOUNT},
                            {"name": "api-token", "mountPath": API_TOKEN_MOUNT, "readOnly": True},
                        ],
                    },
                    {
                        "name": "master",
                        "image": settings.image,
                        "imagePullPolicy": settings.image_pull_policy,
                        "command": ["sh", f"{SCRIPTS_MOUNT}/roll-master.sh"],
                        "env": [
                            field_env("POD_NAME", "metadata.name"),
                            {"name": "REDISCLI_HISTFILE", "value": "/dev/null"},
                            secret_env(ADMIN.env, names.secret, ADMIN.secret_key),
                            secret_env("REDISCLI_AUTH", names.secret, ADMIN.secret_key),
                        ],
                        "resources": WATCHER_RESOURCES,
                        "securityContext": restricted_container_security(),
                        "volumeMounts": [scripts, shared, *tls_mounts(settings)],
                    },
                ],
                "volumes": [
                    job_scripts_volume(settings),
                    {"name": "roll", "emptyDir": {"sizeLimit": "1Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    api_token_volume(),
                    *tls_volumes(settings, names),
                ],
            },
        },
    }
