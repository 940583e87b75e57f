"""Revocation of the previous application password, without rolling the servers.

``redis:revokedPasswordGeneration`` set to the previous generation drops that password from the
Secret (pods that start from then on never learn it) and rolls the proxy onto the current one;
then a Job, named after the revoked generation, sets the application user of every running
server and Sentinel to the current password only. ``pulumi up`` waits for the Job, so when it
returns the previous password is refused everywhere. The next rotation keeps its previous
password again: a revocation names one generation, never "whatever comes before".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .credentials import ADMIN, APPLICATION
from .naming import Names, common_labels, image_version
from .pod_constants import SCRIPTS_MOUNT, TMP_MOUNT
from .role import RoleComponent, object_metadata
from .settings import RedisSettings
from .workload import (
    REDIS_UID,
    Json,
    field_env,
    pod_security,
    restricted_container_security,
    secret_env,
)

REVOCATION_COMPONENT = "credentials"
"""``app.kubernetes.io/component`` of the Job's pod: a pod of the release, which the
NetworkPolicy admits, that no Service selects."""
JOB_BACKOFF_LIMIT = 2
JOB_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}


def revocation_job_name(names: Names, generation: int) -> str:
    """One Job per revoked generation: a later rotation and revocation runs a new one."""
    return f"{names.release}-revoke-v{generation - 1}"


def revocation_job_spec(settings: RedisSettings, names: Names) -> Json:
    """The Job that runs ``revoke.sh`` with the admin and the current application password."""
    labels = common_labels(names, REVOCATION_COMPONENT, image_version(settings.image))
    return {
        "backoffLimit": JOB_BACKOFF_LIMIT,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": names.service_account,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security(REDIS_UID),
                "containers": [
                    {
                        "name": "revoke",
                        "image": settings.image,
                        "imagePullPolicy": settings.image_pull_policy,
                        "command": ["sh", f"{SCRIPTS_MOUNT}/revoke.sh"],
                        "env": [
                            field_env("POD_NAME", "metadata.name"),
                            {"name": "REDISCLI_HISTFILE", "value": "/dev/null"},
                            secret_env(APPLICATION.env, names.secret, APPLICATION.secret_key),
                            secret_env(ADMIN.env, names.secret, ADMIN.secret_key),
                            secret_env("REDISCLI_AUTH", names.secret, ADMIN.secret_key),
                        ],
                        "resources": JOB_RESOURCES,
                        "securityContext": restricted_container_security(),
                        "volumeMounts": [
                            {"name": "scripts", "mountPath": SCRIPTS_MOUNT},
                            {"name": "tmp", "mountPath": TMP_MOUNT},
                        ],
                    }
                ],
                "volumes": [
                    {
                        "name": "scripts",
                        "configMap": {"name": names.config_map, "defaultMode": 0o555},
                    },
                    {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                ],
            },
        },
    }


@dataclass(frozen=True)
class RevocationArgs:
    """Arguments of :class:`Revocation`."""

    settings: RedisSettings
    """Validated settings of the release, with ``previous_password_revoked``."""
    after: Sequence[pulumi.Resource]
    """What must be rolled out first: the servers, and the proxy on the current password."""


class Revocation(RoleComponent):
    """Job ``<name>-revoke-v<previous generation>``."""

    job_name: pulumi.Output[str]
    """Name of the Job that revoked the previous password."""

    def __init__(
        self, name: str, args: RevocationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:Revocation", name, opts)
        settings = args.settings
        names = Names.of(settings)
        job_name = revocation_job_name(names, settings.password_generation)
        job = k8s.batch.v1.Job(
            f"{name}-revoke-v{settings.password_generation - 1}",
            metadata=object_metadata(settings, job_name, REVOCATION_COMPONENT),
            spec=revocation_job_spec(settings, names),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.job_name = job.metadata.apply(lambda meta: str(meta.name))
        self.register_outputs({"job_name": self.job_name})
