"""Revocation of previous passwords, without rolling the servers.

``redis:revokedPasswordGeneration`` set to the previous application generation drops that
password from the Secret (pods that start from then on never learn it) and rolls the proxy onto
the current one; then a Job, named after the revoked generation, sets the application user of
every running server and Sentinel to the current password only.
``redis:revokedInternalPasswordGeneration`` does the same for the internal roles' previous
passwords (admin, replication, Sentinel, monitoring), with a Job of its own; no proxy rolls.
``pulumi up`` waits for the Jobs, so when it returns the revoked passwords are refused
everywhere. The next rotation keeps its previous password again: a revocation names one
generation, never "whatever comes before".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .credentials import ADMIN, APPLICATION, INTERNAL_CREDENTIALS, Credential
from .naming import Names, common_labels, image_version
from .pod_constants import SCRIPTS_MOUNT, TMP_MOUNT
from .role import RoleComponent, object_metadata
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

REVOCATION_COMPONENT = "credentials"
"""``app.kubernetes.io/component`` of the Job's pod: a pod of the release, which the
NetworkPolicy admits, that no Service selects."""
JOB_BACKOFF_LIMIT = 2
REVOKE_ROLES_ENV = "REVOKE_ROLES"
"""Environment variable of the Job naming the roles it revokes (``APPLICATION``, ``ADMIN`` ...)."""
JOB_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}


@dataclass(frozen=True)
class RevokedPasswords:
    """What one revocation Job revokes."""

    kind: str
    """``application`` or ``internal``: the Job's name and the log say which."""
    credentials: tuple[Credential, ...]
    """The roles whose users keep their current password only."""
    generation: int
    """The revoked generation."""


def revoked_passwords(settings: RedisSettings) -> list[RevokedPasswords]:
    """The revocations the settings ask for, application first."""
    revoked = []
    if settings.previous_password_revoked:
        revoked.append(
            RevokedPasswords("application", (APPLICATION,), settings.revoked_password_generation)
        )
    if settings.previous_internal_passwords_revoked:
        revoked.append(
            RevokedPasswords(
                "internal", INTERNAL_CREDENTIALS, settings.revoked_internal_password_generation
            )
        )
    return revoked


def revocation_job_name(names: Names, revoked: RevokedPasswords) -> str:
    """One Job per revoked generation: a later rotation and revocation runs a new one."""
    kind = "" if revoked.kind == "application" else f"{revoked.kind}-"
    return f"{names.release}-revoke-{kind}v{revoked.generation}"


def revocation_job_spec(settings: RedisSettings, names: Names, revoked: RevokedPasswords) -> Json:
    """The Job that runs ``revoke.sh`` with the admin password and the current password of every
    role it revokes (the roles by name in ``REVOKE_ROLES``)."""
    passwords = {credential.env: credential for credential in (*revoked.credentials, ADMIN)}
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
                            {
                                "name": REVOKE_ROLES_ENV,
                                "value": " ".join(c.role.upper() for c in revoked.credentials),
                            },
                            *(
                                secret_env(c.env, names.secret, c.secret_key)
                                for c in passwords.values()
                            ),
                            secret_env("REDISCLI_AUTH", names.secret, ADMIN.secret_key),
                        ],
                        "resources": JOB_RESOURCES,
                        "securityContext": restricted_container_security(),
                        "volumeMounts": [
                            {"name": "scripts", "mountPath": SCRIPTS_MOUNT},
                            {"name": "tmp", "mountPath": TMP_MOUNT},
                            *tls_mounts(settings),
                        ],
                    }
                ],
                "volumes": [
                    job_scripts_volume(settings),
                    {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                    *tls_volumes(settings, names),
                ],
            },
        },
    }


@dataclass(frozen=True)
class RevocationArgs:
    """Arguments of :class:`Revocation`."""

    settings: RedisSettings
    """Validated settings of the release, with at least one previous generation revoked."""
    after: Sequence[pulumi.Resource]
    """What must be rolled out first: the servers, and the proxy on the current password."""


class Revocation(RoleComponent):
    """Jobs ``<name>-revoke-v<generation>`` (application) and
    ``<name>-revoke-internal-v<generation>`` (internal roles)."""

    job_names: pulumi.Output[list[str]]
    """Names of the Jobs that revoked the previous passwords."""

    def __init__(
        self, name: str, args: RevocationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:Revocation", name, opts)
        settings = args.settings
        names = Names.of(settings)
        jobs = []
        for revoked in revoked_passwords(settings):
            job_name = revocation_job_name(names, revoked)
            kind = "" if revoked.kind == "application" else f"-{revoked.kind}"
            jobs.append(
                k8s.batch.v1.Job(
                    f"{name}-revoke{kind}-v{revoked.generation}",
                    metadata=object_metadata(settings, job_name, REVOCATION_COMPONENT),
                    spec=revocation_job_spec(settings, names, revoked),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
                )
            )
        self.job_names = pulumi.Output.all(
            *(job.metadata.apply(lambda meta: str(meta.name)) for job in jobs)
        ).apply(list)
        self.register_outputs({"job_names": self.job_names})
