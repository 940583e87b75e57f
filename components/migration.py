"""The engine change a ``pulumi up`` would make, checked against what runs before anything
changes.

The StatefulSet records its engine in an annotation (:data:`ENGINE_ANNOTATION`); a release
deployed before the annotation existed ran Redis, and its image tag tells the version. The
check reads the live object through the same kubeconfig the Kubernetes provider uses
(``KUBECONFIG`` or the default), so what is compared is what runs, not what a state file says.
"""

from __future__ import annotations

import pulumi

from .engines import Deployment, Version, engine_of_image, migration_problem, version_of_image
from .naming import Names
from .settings import CONFIG_NAMESPACE, ConfigError, RedisSettings

ENGINE_ANNOTATION = "sophia.redis/engine"
"""StatefulSet annotation: the engine and version that run, e.g. ``valkey 9.1.2``."""
ACKNOWLEDGE_KEY = f"{CONFIG_NAMESPACE}:acknowledgeOneWayMigration"


def wanted_deployment(settings: RedisSettings) -> Deployment:
    """The engine and version ``settings`` ask for."""
    return Deployment(settings.engine, settings.version)


def parse_annotation(value: str) -> Deployment | None:
    """The inverse of ``str(Deployment)``: ``valkey 9.1.2`` -> Deployment."""
    engine, _, text = value.partition(" ")
    version = Version.parse(text)
    return Deployment(engine, version) if engine and version is not None else None


def deployment_of_statefulset(annotations: dict[str, str], image: str) -> Deployment | None:
    """What a live StatefulSet runs, from its annotation or, before it had one, its image."""
    recorded = annotations.get(ENGINE_ANNOTATION)
    if recorded:
        return parse_annotation(recorded)
    version = version_of_image(image)
    if version is None:
        return None
    return Deployment(engine_of_image(image) or "redis", version)


def read_running_deployment(settings: RedisSettings) -> Deployment | None:
    """What the release's StatefulSet runs now; None when there is none (a new release) or
    the cluster cannot be read (then the check is skipped with a warning)."""
    import httpx2 as httpx
    from lightkube import ApiError, Client
    from lightkube import ConfigError as KubeConfigError
    from lightkube.resources.apps_v1 import StatefulSet

    names = Names.of(settings)
    try:
        client = Client(timeout=httpx.Timeout(10.0))
        statefulset = client.get(StatefulSet, names.statefulset, namespace=settings.namespace)
    except ApiError as error:
        if error.status.code == 404:
            return None
        pulumi.log.warn(f"engine change not checked: reading the StatefulSet failed: {error}")
        return None
    except (KubeConfigError, httpx.HTTPError, OSError, ValueError) as error:
        pulumi.log.warn(f"engine change not checked: the cluster cannot be read: {error}")
        return None
    metadata = statefulset.metadata
    spec = statefulset.spec
    annotations = dict(metadata.annotations or {}) if metadata else {}
    containers = spec.template.spec.containers if spec and spec.template.spec else []
    image = next((c.image for c in containers if c.name == "redis" and c.image), "")
    return deployment_of_statefulset(annotations, image)


def check_migration(settings: RedisSettings, running: Deployment | None) -> None:
    """Raises ConfigError when the change from ``running`` to ``settings`` cannot be rolled."""
    if running is None:
        return
    wanted = wanted_deployment(settings)
    problem = migration_problem(
        running, wanted, settings.acknowledge_one_way_migration, ACKNOWLEDGE_KEY
    )
    if problem is not None:
        key = "engine" if running.engine != wanted.engine else "image"
        raise ConfigError([f"{CONFIG_NAMESPACE}:{key}: {problem}"])
