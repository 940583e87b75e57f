"""Master routing: the HAProxy tier and the canonical Service that always reaches the master."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .access import WorkloadAccess
from .conf import checksum
from .naming import Names
from .proxy import deployment_spec, render_haproxy_cfg
from .role import RoleComponent, object_metadata
from .services import master_service_spec
from .settings import RedisSettings


@dataclass(frozen=True)
class MasterRoutingArgs:
    """Arguments of :class:`MasterRouting`."""

    settings: RedisSettings
    """Validated settings of the release."""
    access: WorkloadAccess
    """The Secret, ServiceAccount, auth checksum and prerequisites from :class:`Access`."""


class MasterRouting(RoleComponent):
    """ConfigMap ``<name>-proxy-config`` (haproxy.cfg), Deployment ``<name>-proxy`` and the
    canonical Service ``<name>-service`` in front of it."""

    proxy_id: pulumi.Output[str]
    """ID of the proxy Deployment; known once its pods are available."""
    service_id: pulumi.Output[str]
    """ID of the canonical Service."""
    service_name: pulumi.Output[str]
    """Name of the canonical Service clients connect to."""
    proxy: k8s.apps.v1.Deployment
    """The proxy Deployment, for what must wait until it has rolled out."""

    def __init__(
        self, name: str, args: MasterRoutingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:MasterRouting", name, opts)
        settings = args.settings
        names = Names.of(settings)
        prerequisites = list(args.access.prerequisites)
        in_namespace = self.moved_options(depends_on=prerequisites)

        haproxy_cfg = render_haproxy_cfg(settings, names)
        proxy_config_map = k8s.core.v1.ConfigMap(
            f"{name}-proxy-config",
            metadata=object_metadata(settings, names.proxy_config_map, "proxy"),
            data={"haproxy.cfg": haproxy_cfg},
            opts=in_namespace,
        )
        proxy = k8s.apps.v1.Deployment(
            f"{name}-proxy",
            metadata=object_metadata(settings, names.proxy, "proxy"),
            spec=deployment_spec(
                settings,
                names,
                {
                    "checksum/config": checksum({"haproxy.cfg": haproxy_cfg}),
                    "checksum/auth": args.access.proxy_auth_checksum,
                },
            ),
            opts=self.moved_options(
                depends_on=[
                    *prerequisites,
                    args.access.secret,
                    proxy_config_map,
                    args.access.service_account,
                ]
            ),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=object_metadata(settings, names.service, "proxy"),
            spec=master_service_spec(settings, names),
            opts=in_namespace,
        )

        self.proxy = proxy
        self.proxy_id = proxy.id
        self.service_id = service.id
        self.service_name = service.metadata.apply(lambda meta: str(meta.name))
        self.register_outputs(
            {
                "proxy_id": self.proxy_id,
                "service_id": self.service_id,
                "service_name": self.service_name,
            }
        )
