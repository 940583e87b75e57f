"""Access: who may reach, authenticate to and disrupt a release.

The namespace (when the release creates it), the application password of each rotation
generation, the password of every internal role (:mod:`components.credentials`) and the Secret
holding them, the token-less ServiceAccount, the PodDisruptionBudgets and the NetworkPolicies.
The other roles wait for what this one creates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from .auth import PASSWORD_LENGTH, PASSWORD_SPECIALS, password_resource_suffix
from .credentials import INTERNAL_CREDENTIALS
from .guards import disruption_budget_spec, proxy_network_policy_spec, server_network_policy_spec
from .naming import Names, common_labels, image_version
from .role import RoleComponent, object_metadata
from .settings import RedisSettings
from .workload import PASSWORD_KEY, PREVIOUS_PASSWORD_KEY


@dataclass(frozen=True)
class WorkloadAccess:
    """What a workload of the release (servers, proxy) takes from :class:`Access`."""

    secret: pulumi.Resource
    """The AUTH Secret the pods read their password(s) from; a workload waits for it."""
    service_account: pulumi.Resource
    """The ServiceAccount the pods run as; a workload waits for it."""
    auth_checksum: str
    """Checksum of the password generation, in pod templates: a rotation rolls the pods."""
    proxy_auth_checksum: str
    """Checksum of the passwords the proxy authenticates with: a rotation and a revocation
    roll the proxy (a revocation does not roll the servers)."""
    prerequisites: Sequence[pulumi.Resource] = ()
    """What every object waits for: the namespace when the release creates it."""


@dataclass(frozen=True)
class AccessArgs:
    """Arguments of :class:`Access`."""

    settings: RedisSettings
    """Validated settings of the release."""


class Access(RoleComponent):
    """Namespace, password(s), Secret ``<name>-auth``, ServiceAccount, PodDisruptionBudgets
    and NetworkPolicies of a release."""

    namespace: pulumi.Output[str]
    """Namespace of the release (created here when ``create_namespace``)."""
    password: pulumi.Output[str]
    """Secret AUTH password of the current generation."""
    secret_name: pulumi.Output[str]
    """Name of the Secret the pods read the password from."""
    service_account_name: pulumi.Output[str]
    """Name of the ServiceAccount every pod runs as."""

    prerequisites: list[pulumi.Resource]
    """What every object of the release waits for: the namespace when created here."""
    secret: k8s.core.v1.Secret
    """The AUTH Secret, for the workloads to wait for."""
    service_account: k8s.core.v1.ServiceAccount
    """The ServiceAccount, for the workloads to wait for."""
    auth_checksum: str
    """Checksum of the password generation for pod templates: a rotation rolls the pods."""
    proxy_auth_checksum: str
    """Checksum for the proxy's pod template: a rotation and a revocation roll the proxy."""

    @property
    def workloads(self) -> WorkloadAccess:
        """The Secret, ServiceAccount, checksum and prerequisites every workload needs."""
        return WorkloadAccess(
            self.secret,
            self.service_account,
            self.auth_checksum,
            self.proxy_auth_checksum,
            tuple(self.prerequisites),
        )

    def __init__(
        self, name: str, args: AccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:Access", name, opts)
        settings = args.settings
        names = Names.of(settings)

        self.prerequisites = []
        namespace_name: pulumi.Output[str] = pulumi.Output.from_input(settings.namespace)
        if settings.create_namespace:
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata={
                    "name": settings.namespace,
                    "labels": {
                        **common_labels(names, "server", image_version(settings.image)),
                        "pod-security.kubernetes.io/enforce": "restricted",
                    },
                },
                opts=self.moved_options(),
            )
            self.prerequisites.append(namespace)
            namespace_name = namespace.metadata.apply(lambda meta: str(meta.name))
        in_namespace = self.moved_options(depends_on=self.prerequisites)

        password = self._generated_password(
            f"{name}-{password_resource_suffix(settings.password_generation)}"
        )
        secret_data: dict[str, pulumi.Input[str]] = {PASSWORD_KEY: password.result}
        if settings.password_generation > 1:
            # Kept after a revocation too, so that lifting it does not generate a new password.
            previous = self._generated_password(
                f"{name}-{password_resource_suffix(settings.password_generation - 1)}"
            )
            if not settings.previous_password_revoked:
                secret_data[PREVIOUS_PASSWORD_KEY] = previous.result
        internal_generation = settings.internal_password_generation
        for credential in INTERNAL_CREDENTIALS:
            internal = self._generated_password(
                internal_password_resource_name(name, credential.role, internal_generation)
            )
            secret_data[credential.secret_key] = internal.result
            if internal_generation > 1:
                previous_internal = self._generated_password(
                    internal_password_resource_name(name, credential.role, internal_generation - 1)
                )
                if not settings.previous_internal_passwords_revoked:
                    secret_data[credential.previous_secret_key] = previous_internal.result
        self.secret = k8s.core.v1.Secret(
            f"{name}-auth",
            metadata=object_metadata(settings, names.secret),
            type="Opaque",
            string_data=secret_data,
            opts=in_namespace,
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=object_metadata(settings, names.service_account),
            automount_service_account_token=False,
            opts=in_namespace,
        )
        self.auth_checksum = server_auth_checksum(settings.password_generation, internal_generation)
        self.proxy_auth_checksum = server_auth_checksum(settings.password_generation, 1)
        if settings.previous_password_revoked:
            revoked = f"{settings.password_generation}/revoked"
            self.proxy_auth_checksum = hashlib.sha256(revoked.encode()).hexdigest()

        for component in ("server", "proxy"):
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{component}-pdb",
                metadata=object_metadata(settings, f"{names.release}-{component}", component),
                spec=disruption_budget_spec(names, component),
                opts=in_namespace,
            )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-server-netpol",
            metadata=object_metadata(settings, f"{names.release}-server"),
            spec=server_network_policy_spec(settings, names),
            opts=in_namespace,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-proxy-netpol",
            metadata=object_metadata(settings, f"{names.release}-proxy", "proxy"),
            spec=proxy_network_policy_spec(settings, names),
            opts=in_namespace,
        )

        self.namespace = namespace_name
        self.password = pulumi.Output.secret(password.result)
        self.secret_name = self.secret.metadata.apply(lambda meta: str(meta.name))
        self.service_account_name = self.service_account.metadata.apply(lambda meta: str(meta.name))
        self.register_outputs(
            {
                "namespace": self.namespace,
                "password": self.password,
                "secret_name": self.secret_name,
                "service_account_name": self.service_account_name,
            }
        )

    def _generated_password(self, resource_name: str) -> random.RandomPassword:
        """A password; the application's resource name carries its rotation generation, so
        bumping it creates a new password and keeps the previous one."""
        return random.RandomPassword(
            resource_name,
            length=PASSWORD_LENGTH,
            special=True,
            override_special=PASSWORD_SPECIALS,
            min_special=2,
            min_numeric=2,
            min_upper=2,
            min_lower=2,
            opts=self.moved_options(),
        )


def internal_password_resource_name(name: str, role: str, generation: int) -> str:
    """The RandomPassword of an internal role's generation: ``<name>-<role>-password`` for the
    first (as before internal rotation existed, so no upgrade replaces it), ``-v<N>`` after."""
    base = f"{name}-{role}-password"
    return base if generation == 1 else f"{base}-v{generation}"


def server_auth_checksum(password_generation: int, internal_generation: int) -> str:
    """Checksum of the password generations for the server pods' template: a rotation of the
    application or of the internal passwords rolls them. With internal generation 1 it is the
    checksum of the application generation alone, as before internal rotation existed."""
    text = str(password_generation)
    if internal_generation > 1:
        text += f"/internal-{internal_generation}"
    return hashlib.sha256(text.encode()).hexdigest()
