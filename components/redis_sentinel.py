"""The RedisSentinel component: Redis with Sentinel HA, its proxy, policies and outputs."""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import esc
from .auth import PASSWORD_LENGTH, PASSWORD_SPECIALS, password_resource_suffix, redis_url
from .conf import checksum, config_files
from .guards import disruption_budget_spec, proxy_network_policy_spec, server_network_policy_spec
from .naming import REDIS_PORT, Names, common_labels, image_version
from .proxy import deployment_spec, render_haproxy_cfg
from .services import headless_service_spec, master_service_spec, sentinel_service_spec
from .settings import RedisSettings
from .workload import PASSWORD_KEY, PREVIOUS_PASSWORD_KEY, statefulset_spec

RedisSentinelArgs = RedisSettings
"""The component's arguments are the validated settings; see :class:`RedisSettings`."""

DELETION_PROPAGATION = "pulumi.com/deletionPropagationPolicy"


class RedisSentinel(pulumi.ComponentResource):
    """A Redis StatefulSet with Sentinel sidecars, an HAProxy tier that tracks the master,
    and the canonical connection outputs every application consumes."""

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
    namespace: pulumi.Output[str]
    """Namespace of the release."""

    def __init__(
        self, name: str, args: RedisSentinelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:RedisSentinel", name, None, opts)
        settings = args
        names = Names.of(settings)
        version = image_version(settings.image)
        child = pulumi.ResourceOptions(parent=self)

        def metadata(object_name: str, component: str = "server") -> dict[str, object]:
            return {
                "name": object_name,
                "namespace": settings.namespace,
                "labels": common_labels(names, component, version),
            }

        prerequisites: list[pulumi.Resource] = []
        if settings.create_namespace:
            prerequisites.append(
                k8s.core.v1.Namespace(
                    f"{name}-namespace",
                    metadata={
                        "name": settings.namespace,
                        "labels": {
                            **common_labels(names, "server", version),
                            "pod-security.kubernetes.io/enforce": "restricted",
                        },
                    },
                    opts=child,
                )
            )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=prerequisites)

        password = _generated_password(name, settings.password_generation, child)
        secret_data: dict[str, pulumi.Input[str]] = {PASSWORD_KEY: password.result}
        if settings.password_generation > 1:
            previous = _generated_password(name, settings.password_generation - 1, child)
            secret_data[PREVIOUS_PASSWORD_KEY] = previous.result
        secret = k8s.core.v1.Secret(
            f"{name}-auth",
            metadata=metadata(names.secret),
            type="Opaque",
            string_data=secret_data,
            opts=in_namespace,
        )

        files = config_files(settings)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=metadata(names.config_map), data=files, opts=in_namespace
        )
        haproxy_cfg = render_haproxy_cfg(settings, names)
        proxy_config_map = k8s.core.v1.ConfigMap(
            f"{name}-proxy-config",
            metadata=metadata(names.proxy_config_map, "proxy"),
            data={"haproxy.cfg": haproxy_cfg},
            opts=in_namespace,
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=metadata(names.service_account),
            automount_service_account_token=False,
            opts=in_namespace,
        )
        headless = k8s.core.v1.Service(
            f"{name}-headless",
            metadata=metadata(names.headless_service),
            spec=headless_service_spec(names),
            opts=in_namespace,
        )
        k8s.core.v1.Service(
            f"{name}-sentinel",
            metadata=metadata(names.sentinel_service),
            spec=sentinel_service_spec(names),
            opts=in_namespace,
        )
        auth_checksum = hashlib.sha256(str(settings.password_generation).encode()).hexdigest()
        workload_inputs = [secret, config_map, service_account, headless]
        statefulset = k8s.apps.v1.StatefulSet(
            name,
            metadata={
                **metadata(names.statefulset),
                # A volumeClaimTemplates change forces a replacement: orphaning the pods lets
                # the new StatefulSet adopt them instead of taking the cluster down.
                "annotations": {DELETION_PROPAGATION: "orphan"},
            },
            spec=statefulset_spec(
                settings,
                names,
                {"checksum/config": checksum(files), "checksum/auth": auth_checksum},
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=prerequisites + workload_inputs,
                protect=settings.protect,
            ),
        )
        proxy = k8s.apps.v1.Deployment(
            f"{name}-proxy",
            metadata=metadata(names.proxy, "proxy"),
            spec=deployment_spec(
                settings,
                names,
                {
                    "checksum/config": checksum({"haproxy.cfg": haproxy_cfg}),
                    "checksum/auth": auth_checksum,
                },
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*prerequisites, secret, proxy_config_map, service_account],
            ),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(names.service, "proxy"),
            spec=master_service_spec(names),
            opts=in_namespace,
        )
        for component in ("server", "proxy"):
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{component}-pdb",
                metadata=metadata(f"{names.release}-{component}", component),
                spec=disruption_budget_spec(names, component),
                opts=in_namespace,
            )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-server-netpol",
            metadata=metadata(f"{names.release}-server"),
            spec=server_network_policy_spec(settings, names),
            opts=in_namespace,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-proxy-netpol",
            metadata=metadata(f"{names.release}-proxy", "proxy"),
            spec=proxy_network_policy_spec(settings, names),
            opts=in_namespace,
        )

        host = names.service_host()
        self.redis_password = pulumi.Output.secret(password.result)
        self.redis_url = pulumi.Output.secret(
            password.result.apply(lambda value: redis_url(value, host, REDIS_PORT))
        )
        # Outputs resolve once the workload is Ready, so consumers never get a URL to nothing.
        ready = pulumi.Output.all(statefulset.id, proxy.id, service.id)
        self.redis_host = ready.apply(lambda _: host)
        self.redis_port = pulumi.Output.from_input(REDIS_PORT)
        self.sentinel_hosts = pulumi.Output.from_input(names.sentinel_hosts(settings.replicas))
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
                "namespace": self.namespace,
            }
        )

    def _publish_environment(self, name: str, settings: RedisSettings) -> None:
        """Writes the outputs into the ESC environment ``<org>/<escProject>/<env>``."""
        import pulumi_pulumiservice as pulumiservice

        document = pulumi.Output.all(
            self.redis_url, self.redis_password, self.redis_host, self.sentinel_hosts
        ).apply(
            lambda values: esc.render_environment_yaml(
                esc.build_environment_document(
                    redis_url=values[0],
                    redis_password=values[1],
                    redis_host=values[2],
                    redis_port=REDIS_PORT,
                    sentinel_hosts=values[3],
                    sentinel_master_name=settings.master_set_name,
                    namespace=settings.namespace,
                )
            )
        )
        pulumiservice.Environment(
            f"{name}-esc",
            organization=settings.esc_organization,
            project=settings.esc_project,
            name=settings.esc_environment or pulumi.get_stack(),
            yaml=document.apply(pulumi.StringAsset),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _generated_password(
    name: str, generation: int, opts: pulumi.ResourceOptions
) -> random.RandomPassword:
    """The AUTH password of one rotation generation; its resource name carries the generation,
    so bumping it creates a new password and keeps the previous one."""
    return random.RandomPassword(
        f"{name}-{password_resource_suffix(generation)}",
        length=PASSWORD_LENGTH,
        special=True,
        override_special=PASSWORD_SPECIALS,
        min_special=2,
        min_numeric=2,
        min_upper=2,
        min_lower=2,
        opts=opts,
    )
