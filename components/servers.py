"""Servers: the Redis StatefulSet with its Sentinel sidecars, their config and their Services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .access import WorkloadAccess
from .conf import checksum, config_files, revision_config_map
from .guards import server_network_policy_spec
from .migration import ENGINE_ANNOTATION, wanted_deployment
from .naming import Names
from .role import RoleComponent, object_metadata
from .rollout import (
    ROLLOUT_COMPONENT,
    job_deadline_seconds,
    roller_name,
    roller_rules,
    rollout_job_name,
    rollout_job_spec,
    template_digest,
)
from .services import headless_service_spec, sentinel_service_spec
from .settings import RedisSettings
from .workload import statefulset_spec

DELETION_PROPAGATION = "pulumi.com/deletionPropagationPolicy"
SKIP_AWAIT = "pulumi.com/skipAwait"


def owned_by_service(name: str, uid: pulumi.Input[str]) -> dict[str, pulumi.Input[object]]:
    """An ``ownerReferences`` entry naming the Service ``name`` (of the same namespace) as
    owner: deleting that Service makes the garbage collector delete the owned object, and,
    with ``blockOwnerDeletion``, the Service is gone only once the owned object is."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": name,
        "uid": uid,
        "controller": False,
        "blockOwnerDeletion": True,
    }


@dataclass(frozen=True)
class RedisServersArgs:
    """Arguments of :class:`RedisServers`."""

    settings: RedisSettings
    """Validated settings of the release."""
    access: WorkloadAccess
    """The Secret, ServiceAccount, auth checksum and prerequisites from :class:`Access`."""


class RedisServers(RoleComponent):
    """ConfigMap ``<name>-config``, Services ``<name>-headless`` and ``<name>-sentinel``, and
    the StatefulSet ``<name>``: Redis pods, each with a Sentinel sidecar and a volume."""

    statefulset_id: pulumi.Output[str]
    """ID of the StatefulSet; known once its pods are Ready."""
    statefulset_name: pulumi.Output[str]
    """Name of the StatefulSet (and prefix of its pods)."""
    headless_service_name: pulumi.Output[str]
    """Name of the headless Service that gives every pod a stable DNS name."""
    sentinel_service_name: pulumi.Output[str]
    """Name of the Service that reaches any ready Sentinel."""
    statefulset: k8s.apps.v1.StatefulSet
    """The StatefulSet."""
    rollout: k8s.batch.v1.Job
    """The Job that rolled the pods onto the StatefulSet's template, for what must wait until
    they have (see :mod:`components.rollout`)."""
    rolled_network_policy: k8s.networking.v1.NetworkPolicy
    """NetworkPolicy ``<release>-server-rolled``: the servers' ingress as the one before the
    StatefulSet, changed only once the pods have rolled (see :meth:`__init__`)."""

    def __init__(
        self, name: str, args: RedisServersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:RedisServers", name, opts)
        settings = args.settings
        names = Names.of(settings)
        prerequisites = list(args.access.prerequisites)
        in_namespace = self.moved_options(depends_on=prerequisites)

        files = config_files(settings)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=object_metadata(settings, revision_config_map(settings)),
            data=files,
            immutable=True,
            opts=in_namespace,
        )
        # The headless Service skips the provider's await: it waits for nothing on a headless
        # Service, yet returns the first object its watch delivers as the new state, which
        # after an update may be the cached one from before it (seen after an engine upgrade:
        # the next preview showed the old app.kubernetes.io/version label as a change). Without
        # the await the state is the API server's answer to the update itself.
        headless = k8s.core.v1.Service(
            f"{name}-headless",
            metadata={
                **object_metadata(settings, names.headless_service),
                "annotations": {SKIP_AWAIT: "true"},
            },
            spec=headless_service_spec(settings, names),
            opts=in_namespace,
        )
        sentinel = k8s.core.v1.Service(
            f"{name}-sentinel",
            metadata=object_metadata(settings, names.sentinel_service),
            spec=sentinel_service_spec(settings, names),
            opts=in_namespace,
        )
        # Replaced, and destroyed, without a pod left behind:
        # * A volumeClaimTemplates change forces a replacement (delete, then create: the name is
        #   fixed). Deleting with propagation "orphan" keeps the pods running; the new
        #   StatefulSet adopts them (same template, same revision hash: no restart).
        # * "orphan" applies to every delete of this resource, so `pulumi destroy` would leave
        #   the pods (and the claims it owns under pvcRetentionPolicy Delete) running wherever
        #   the namespace is not the stack's. So the headless Service owns the StatefulSet
        #   (ownerReferences) and the StatefulSet is `deleted_with` it: a destroy skips the
        #   orphaning delete of the StatefulSet and deletes the Service (foreground), whose
        #   garbage collection deletes the StatefulSet with its pods, and its claims as the
        #   retention policy says, before the Service goes. A size change does not touch the
        #   Service, so the replacement still orphans. No hook and no API call from the program.
        spec = statefulset_spec(
            settings,
            names,
            {"checksum/config": checksum(files), "checksum/auth": args.access.auth_checksum},
        )
        statefulset = k8s.apps.v1.StatefulSet(
            name,
            metadata={
                **object_metadata(settings, names.statefulset),
                "annotations": {
                    DELETION_PROPAGATION: "orphan",
                    ENGINE_ANNOTATION: str(wanted_deployment(settings)),
                },
                "ownerReferences": [
                    owned_by_service(names.headless_service, headless.metadata.uid)
                ],
            },
            spec=spec,
            opts=pulumi.ResourceOptions.merge(
                self.moved_options(
                    depends_on=[
                        *prerequisites,
                        args.access.secret,
                        config_map,
                        args.access.service_account,
                        headless,
                    ],
                    protect=settings.protect,
                ),
                pulumi.ResourceOptions(deleted_with=headless),
            ),
        )

        self.rollout = self._rollout(
            name, settings, names, spec["template"], statefulset, prerequisites
        )

        # NetworkPolicies add up. The one created before the StatefulSet admits the new spec's
        # ports before any pod serves them; this copy changes only once every pod has rolled,
        # so the pods of the previous spec keep the ports their own links use until they are
        # gone. Without it, going TLS-only closed the plain ports at once: a pod of the
        # transition spec could open no new link to a peer (its replication, its Sentinel's,
        # and FAILOVER TO's connection to its target were refused for the whole roll).
        self.rolled_network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-server-rolled-netpol",
            metadata=object_metadata(settings, f"{names.release}-server-rolled"),
            spec=server_network_policy_spec(settings, names),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.rollout]),
        )
        self.statefulset = statefulset
        self.statefulset_id = statefulset.id
        self.statefulset_name = statefulset.metadata.apply(lambda meta: str(meta.name))
        self.headless_service_name = headless.metadata.apply(lambda meta: str(meta.name))
        self.sentinel_service_name = sentinel.metadata.apply(lambda meta: str(meta.name))
        self.register_outputs(
            {
                "statefulset_id": self.statefulset_id,
                "statefulset_name": self.statefulset_name,
                "headless_service_name": self.headless_service_name,
                "sentinel_service_name": self.sentinel_service_name,
            }
        )

    def _rollout(
        self,
        name: str,
        settings: RedisSettings,
        names: Names,
        template: dict[str, object],
        statefulset: k8s.apps.v1.StatefulSet,
        prerequisites: list[pulumi.Resource],
    ) -> k8s.batch.v1.Job:
        """The roller's ServiceAccount, Role and RoleBinding, and the Job of this template."""
        child = pulumi.ResourceOptions(parent=self, depends_on=prerequisites)
        roller = roller_name(names)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-roller",
            metadata=object_metadata(settings, roller, ROLLOUT_COMPONENT),
            automount_service_account_token=False,
            opts=child,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-roller",
            metadata=object_metadata(settings, roller, ROLLOUT_COMPONENT),
            rules=roller_rules(settings, names),
            opts=child,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-roller",
            metadata=object_metadata(settings, roller, ROLLOUT_COMPONENT),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": roller},
            subjects=[{"kind": "ServiceAccount", "name": roller, "namespace": settings.namespace}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*prerequisites, account, role]),
        )
        job_name = pulumi.Output.from_input(template).apply(
            lambda resolved: rollout_job_name(names, template_digest(resolved))
        )
        deadline = f"{job_deadline_seconds(settings)}s"
        return k8s.batch.v1.Job(
            f"{name}-roll",
            metadata={
                **object_metadata(settings, "", ROLLOUT_COMPONENT),
                "name": job_name,
            },
            spec=rollout_job_spec(settings, names),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[statefulset, binding],
                delete_before_replace=True,
                custom_timeouts=pulumi.CustomTimeouts(create=deadline, update=deadline),
            ),
        )
