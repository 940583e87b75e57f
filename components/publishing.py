"""Publishing: the connection outputs every application consumes, and their ESC environment."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import esc
from .auth import redis_url
from .naming import REDIS_PORT, Names
from .pod_constants import peer_sentinel_port
from .role import RoleComponent
from .settings import RedisSettings
from .tls import REDIS_TLS_PORT


@dataclass(frozen=True)
class PublishingArgs:
    """Arguments of :class:`Publishing`."""

    settings: RedisSettings
    """Validated settings of the release."""
    password: pulumi.Input[str]
    """The AUTH password; published only as secrets."""
    ready: Sequence[pulumi.Input[str]]
    """IDs of what a client needs (StatefulSet, proxy Deployment, canonical Service): the host
    resolves only once they are all ready, so consumers never get a URL to nothing."""


class Publishing(RoleComponent):
    """The connection outputs of a release and, with ``esc_publish``, the ESC environment
    ``<org>/<escProject>/<env>`` that carries them to application stacks."""

    redis_url: pulumi.Output[str]
    """Secret ``redis://:<password>@<name>-service.<namespace>.svc.<domain>:6379/0``."""
    redis_password: pulumi.Output[str]
    """Secret AUTH password."""
    redis_host: pulumi.Output[str]
    """Host name of the canonical Service."""
    redis_port: pulumi.Output[int]
    """Port of the canonical Service."""
    sentinel_hosts: pulumi.Output[list[str]]
    """``host:port`` of every Sentinel."""
    sentinel_master_name: pulumi.Output[str]
    """Sentinel master-set name."""
    tls_ca_certificate: pulumi.Output[str]
    """PEM CA bundle that verifies the servers' certificate (``ca.crt`` of the certificate
    Secret, read once the servers run on it); empty without TLS."""
    namespace: pulumi.Output[str]
    """Namespace of the release."""

    def __init__(
        self, name: str, args: PublishingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:Publishing", name, opts)
        settings = args.settings
        names = Names.of(settings)
        host = names.service_host()
        password = pulumi.Output.from_input(args.password)

        tls = settings.tls.enabled
        port = REDIS_TLS_PORT if tls else REDIS_PORT
        self.redis_password = pulumi.Output.secret(password)
        self.redis_url = pulumi.Output.secret(
            password.apply(lambda value: redis_url(value, host, port, tls=tls))
        )
        ready = pulumi.Output.all(*args.ready)
        self.redis_host = ready.apply(lambda _: host)
        self.redis_port = pulumi.Output.from_input(port)
        self.sentinel_hosts = pulumi.Output.from_input(
            names.sentinel_hosts(settings.replicas, peer_sentinel_port(settings.tls))
        )
        self.tls_ca_certificate = (
            self._read_ca_certificate(name, settings, ready)
            if tls
            else pulumi.Output.from_input("")
        )
        self.sentinel_master_name = pulumi.Output.from_input(settings.master_set_name)
        self.namespace = pulumi.Output.from_input(settings.namespace)

        if settings.esc_publish:
            self._publish_environment(name, settings)

        self.register_outputs(
            {
                "redis_url": self.redis_url,
                "redis_password": self.redis_password,
                "redis_host": self.redis_host,
                "redis_port": self.redis_port,
                "sentinel_hosts": self.sentinel_hosts,
                "sentinel_master_name": self.sentinel_master_name,
                "tls_ca_certificate": self.tls_ca_certificate,
                "namespace": self.namespace,
            }
        )

    def _read_ca_certificate(
        self, name: str, settings: RedisSettings, ready: pulumi.Output[list[str]]
    ) -> pulumi.Output[str]:
        """``ca.crt`` of the certificate Secret, read once the servers are ready (so it exists;
        before that, as in the preview of a new stack, it is unknown)."""
        names = Names.of(settings)
        secret = k8s.core.v1.Secret.get(
            f"{name}-tls-ca",
            ready.apply(lambda _: f"{settings.namespace}/{names.tls_secret}"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # A CA certificate is public: clients need it to verify the servers.
        return pulumi.Output.unsecret(
            secret.data.apply(
                lambda data: base64.b64decode((data or {}).get("ca.crt", "")).decode()
            )
        )

    def _publish_environment(self, name: str, settings: RedisSettings) -> None:
        """Writes the outputs into the ESC environment ``<org>/<escProject>/<env>``."""
        import pulumi_pulumiservice as pulumiservice

        document = pulumi.Output.all(
            self.redis_url,
            self.redis_password,
            self.redis_host,
            self.sentinel_hosts,
            self.redis_port,
            self.tls_ca_certificate,
        ).apply(
            lambda values: esc.render_environment_yaml(
                esc.build_environment_document(
                    redis_url=values[0],
                    redis_password=values[1],
                    redis_host=values[2],
                    redis_port=values[4],
                    sentinel_hosts=values[3],
                    sentinel_master_name=settings.master_set_name,
                    namespace=settings.namespace,
                    tls_ca_certificate=values[5],
                )
            )
        )
        pulumiservice.Environment(
            f"{name}-esc",
            organization=settings.esc_organization,
            project=settings.esc_project,
            name=settings.esc_environment or pulumi.get_stack(),
            yaml=document.apply(pulumi.StringAsset),
            opts=self.moved_options(),
        )
