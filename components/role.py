"""What the role components of a release share: the base class that keeps their resources'
URNs, and the metadata every Kubernetes object carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from .naming import Names, common_labels, image_version
from .settings import RedisSettings


class RoleComponent(pulumi.ComponentResource):
    """A child of :class:`~components.RedisSentinel` that owns the objects of one role.

    It takes the release's component name, so its resources keep the Pulumi names
    (``<name>-auth``, ``<name>-config`` ...) they had when the RedisSentinel registered them
    itself. :meth:`moved_options` aliases each of them to that former parent, which makes the
    engine match their old URNs: an existing stack sees the new components created and
    nothing else.
    """

    def __init__(self, type_name: str, name: str, opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(type_name, name, None, opts)
        self._former_parent: pulumi.Resource | None = opts.parent if opts is not None else None

    def moved_options(
        self, depends_on: Sequence[pulumi.Resource] = (), protect: bool | None = None
    ) -> pulumi.ResourceOptions:
        """Options of a resource that the former parent used to own directly."""
        aliases: list[pulumi.Input[str] | pulumi.Alias] = (
            [] if self._former_parent is None else [pulumi.Alias(parent=self._former_parent)]
        )
        return pulumi.ResourceOptions(
            parent=self, aliases=aliases, depends_on=list(depends_on), protect=protect
        )


def object_metadata(
    settings: RedisSettings, object_name: str, component: str = "server"
) -> dict[str, Any]:
    """``metadata`` of one object of the release: its name, namespace and recommended labels."""
    return {
        "name": object_name,
        "namespace": settings.namespace,
        "labels": common_labels(Names.of(settings), component, image_version(settings.image)),
    }
