"""The RedisSentinel component: Redis with Sentinel HA, its proxy, policies and outputs."""

from __future__ import annotations

import pulumi

from .access import Access, AccessArgs
from .certificates import Certificates, CertificatesArgs
from .monitoring import Monitoring, MonitoringArgs
from .publishing import Publishing, PublishingArgs
from .revocation import Revocation, RevocationArgs
from .routing import MasterRouting, MasterRoutingArgs
from .servers import RedisServers, RedisServersArgs
from .settings import RedisSettings

RedisSentinelArgs = RedisSettings
"""The component's arguments are the validated settings; see :class:`RedisSettings`."""


class RedisSentinel(pulumi.ComponentResource):
    """A Redis StatefulSet with Sentinel sidecars, an HAProxy tier that tracks the master,
    and the canonical connection outputs every application consumes.

    It composes one child component per role, each named ``name`` like the component itself,
    so every object keeps the Pulumi name and URN it had before the split:

    * :class:`~components.access.Access`: namespace, passwords, Secret, ServiceAccount,
      disruption budgets, network policies;
    * :class:`~components.servers.RedisServers`: the StatefulSet, its ConfigMap and Services;
    * :class:`~components.routing.MasterRouting`: the HAProxy tier and ``<name>-service``;
    * :class:`~components.publishing.Publishing`: the outputs and the ESC environment;
    * :class:`~components.monitoring.Monitoring`: with ``redis:metrics`` asking for them, the
      PodMonitor, the PrometheusRule and the Grafana dashboard's ConfigMap;
    * :class:`~components.revocation.Revocation`: when a previous application or internal
      generation is revoked, the Job that revokes it on the running pods.
    """

    redis_url: pulumi.Output[str]
    """Secret ``redis://:<password>@<name>-service.<namespace>.svc.<domain>:6379/0``, with TLS
    ``rediss://...:6380/0``."""
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
    """PEM CA bundle that verifies the servers' certificate; empty without TLS."""
    namespace: pulumi.Output[str]
    """Namespace of the release."""

    def __init__(
        self, name: str, args: RedisSentinelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:RedisSentinel", name, None, opts)
        settings = args
        child = pulumi.ResourceOptions(parent=self)

        access = Access(name, AccessArgs(settings), child)
        if settings.tls.enabled:
            Certificates(
                name,
                CertificatesArgs(settings, prerequisites=list(access.workloads.prerequisites)),
                child,
            )
        if settings.metrics.monitoring_objects:
            Monitoring(
                name,
                MonitoringArgs(settings, prerequisites=list(access.workloads.prerequisites)),
                child,
            )
        servers = RedisServers(name, RedisServersArgs(settings, access.workloads), child)
        routing = MasterRouting(name, MasterRoutingArgs(settings, access.workloads), child)
        if settings.previous_password_revoked or settings.previous_internal_passwords_revoked:
            Revocation(
                name, RevocationArgs(settings, after=[servers.rollout, routing.proxy]), child
            )
        publishing = Publishing(
            name,
            PublishingArgs(
                settings,
                password=access.password,
                ready=[servers.statefulset_id, routing.proxy_id, routing.service_id],
            ),
            child,
        )

        self.redis_url = publishing.redis_url
        self.redis_password = publishing.redis_password
        self.redis_host = publishing.redis_host
        self.redis_port = publishing.redis_port
        self.sentinel_hosts = publishing.sentinel_hosts
        self.sentinel_master_name = publishing.sentinel_master_name
        self.tls_ca_certificate = publishing.tls_ca_certificate
        self.namespace = publishing.namespace
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
