"""Typed, validated configuration of one Redis + Sentinel release.

Every key lives under the ``redis`` config namespace.  :func:`load_settings` turns the raw
string map that Pulumi hands a program into :class:`RedisSettings`, checking every key before
anything is registered and failing once with every problem listed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pulumi
from lightkube.utils.quantity import parse_quantity

from .engines import (
    ENGINE_NAMES,
    ENGINES,
    KNOWN_BAD,
    Engine,
    Version,
    engine_of_image,
    version_of_image,
)
from .metrics import MetricsSettings, parse_metrics
from .tls import TlsSettings, parse_tls

CONFIG_NAMESPACE = "redis"

ROLES = ("redis", "sentinel", "proxy", "exporter")
"""Containers whose requests and limits are configurable: Redis, the Sentinel sidecar, HAProxy
and the metrics exporter."""

EVICTION_POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)
ANTI_AFFINITY_MODES = ("required", "preferred")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RETENTION_POLICIES = ("Retain", "Delete")

MAXMEMORY_SHARE_OF_LIMIT = Decimal("0.75")
"""Default maxmemory as a share of the Redis memory limit: the rest is headroom for the
copy-on-write pages of an AOF rewrite fork, replication buffers and client buffers."""

MIB = 1024 * 1024

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MASTER_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ConfigError(pulumi.RunError):
    """Raised once with every configuration problem found; Pulumi prints it without a trace."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class ContainerResources:
    """CPU and memory requests and limits of one container, as Kubernetes quantities."""

    cpu_request: str
    """CPU request, e.g. ``100m``."""
    memory_request: str
    """Memory request, e.g. ``128Mi``."""
    cpu_limit: str
    """CPU limit, e.g. ``"1"``."""
    memory_limit: str
    """Memory limit, e.g. ``256Mi``."""

    def as_kubernetes(self) -> dict[str, dict[str, str]]:
        """The ``resources`` block of a container spec."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


DEFAULT_RESOURCES: dict[str, ContainerResources] = {
    "redis": ContainerResources("100m", "256Mi", "1", "512Mi"),
    # Sentinel (Redis and Valkey alike) can spin at 100% CPU on a link whose peer pod went away
    # (redis/redis#9956, valkey-io/valkey#4766): the limit keeps a spinning Sentinel from
    # starving the node until its pod cures the spin (start-sentinel.sh, cure_busy_loop).
    # Throttling delays its own timer by a CFS period (100 ms) at most, far from TILT's 2 s.
    "sentinel": ContainerResources("20m", "32Mi", "250m", "64Mi"),
    "proxy": ContainerResources("20m", "32Mi", "1", "128Mi"),
    # Measured at 10-20 MiB resident; a scrape every 15 s costs a few ms of CPU.
    "exporter": ContainerResources("10m", "32Mi", "200m", "64Mi"),
}


@dataclass(frozen=True)
class RedisSettings:
    """Everything the component needs to build one release; see the README's config table."""

    name: str = "redis"
    """Release name: prefix of every object (``<name>-service``, ``<name>-headless`` ...)."""
    namespace: str = "redis"
    """Namespace the release lives in."""
    create_namespace: bool = True
    """Create the namespace (and own it). False when it already exists and holds other services."""
    replicas: int = 3
    """Redis pods, each with a Sentinel sidecar: odd and at least 3."""
    sentinel_quorum: int = 2
    """Sentinels that must agree a master is down; a majority of ``replicas``."""
    master_set_name: str = "mymaster"
    """Sentinel master-set name clients ask for."""
    engine: str = "valkey"
    """Server implementation: ``redis`` or ``valkey`` (see the README on choosing one)."""
    image: str = "valkey/valkey:9.1.2"
    """Image with the engine's server, Sentinel and CLI binaries and a POSIX ``sh``."""
    engine_version: Version | None = None
    """Version of the engine in ``image`` when its tag does not start with one."""
    acknowledge_one_way_migration: bool = False
    """Allows a migration after which the data no longer loads into the previous engine."""
    proxy_image: str = "haproxy:3.2"
    """HAProxy image that routes ``<name>-service`` to the current master."""
    roller_image: str = "alpine/k8s:1.34.2"
    """Image with ``kubectl`` and a POSIX ``sh`` for the Job that rolls the servers onto a new
    spec, the master last."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy of every container."""
    storage_size: str = "2Gi"
    """Size of each replica's PersistentVolumeClaim."""
    storage_class: str | None = None
    """StorageClass of the claims; the cluster default when unset."""
    pvc_retention_policy: str = "Delete"
    """What happens to the claims when the StatefulSet is deleted or scaled down."""
    protect: bool = False
    """Protect the StatefulSet from deletion and replacement (prod)."""
    resources: Mapping[str, ContainerResources] = field(
        default_factory=lambda: dict(DEFAULT_RESOURCES)
    )
    """Requests and limits per container role: ``redis``, ``sentinel``, ``proxy``."""
    maxmemory_bytes: int = 402653184
    """Redis ``maxmemory``; below the Redis memory limit."""
    maxmemory_policy: str = "volatile-lru"
    """Redis eviction policy."""
    down_after_milliseconds: int = 2000
    """Sentinel ``down-after-milliseconds``: how long a silent master is tolerated."""
    failover_timeout_milliseconds: int = 10000
    """Sentinel ``failover-timeout``."""
    parallel_syncs: int = 1
    """Replicas reconfigured at once after a failover."""
    min_replicas_to_write: int = 1
    """Replicas a master needs to accept writes (bounds write loss in a partition)."""
    min_replicas_max_lag_seconds: int = 5
    """Lag after which a replica stops counting towards ``min_replicas_to_write``."""
    anti_affinity: str = "preferred"
    """Pod anti-affinity on ``kubernetes.io/hostname``: ``required`` or ``preferred``."""
    proxy_replicas: int = 2
    """HAProxy pods behind ``<name>-service``."""
    allowed_namespaces: tuple[str, ...] = ()
    """Namespaces whose every pod may reach Redis, besides labelled client pods."""
    password_generation: int = 1
    """Bump to rotate the application password; the previous one stays valid during the roll."""
    revoked_password_generation: int = 0
    """The application password generation refused on every pod and Sentinel, without rolling
    the servers (0: none). Only the previous generation is ever still valid, so only
    ``password_generation - 1`` revokes anything; the next rotation keeps its previous password
    again until this is raised to match."""
    internal_password_generation: int = 1
    """Bump to rotate the passwords of every internal role (admin, replication, Sentinel,
    monitoring) together; the previous ones stay valid during the roll."""
    revoked_internal_password_generation: int = 0
    """The internal passwords' generation refused everywhere, without rolling the servers
    (0: none); only ``internal_password_generation - 1`` revokes anything."""
    cluster_domain: str = "cluster.local"
    """Cluster DNS domain used in pod and Service host names."""
    termination_grace_period_seconds: int = 30
    """Grace period of a Redis pod; its preStop failover must fit in it."""
    esc_publish: bool = False
    """Write the outputs into a Pulumi ESC environment (needs the Pulumi Cloud backend)."""
    esc_organization: str | None = None
    """Pulumi Cloud organization that owns the ESC environment."""
    esc_project: str = "redis"
    """ESC project of the environment."""
    esc_environment: str | None = None
    """ESC environment name; the stack name when unset."""
    tls: TlsSettings = field(default_factory=TlsSettings)
    """TLS on every link with certificates from cert-manager (``redis:tls``)."""
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    """Prometheus exporters and who may scrape them (``redis:metrics``)."""

    @property
    def server_engine(self) -> Engine:
        """The engine's binaries and capabilities."""
        return ENGINES[self.engine]

    @property
    def version(self) -> Version:
        """The engine version: ``engine_version``, else the image tag's (load_settings checks
        that one of them is known)."""
        version = self.engine_version or version_of_image(self.image)
        if version is None:
            raise ValueError(f"{self.image}: engine version unknown; set {_key('engineVersion')}")
        return version

    @property
    def previous_password_revoked(self) -> bool:
        """Whether the previous application password (generation ``password_generation - 1``)
        is revoked: dropped from the Secret and refused by the running pods."""
        return 0 < self.revoked_password_generation == self.password_generation - 1

    @property
    def previous_internal_passwords_revoked(self) -> bool:
        """Whether the internal roles' previous passwords are revoked: dropped from the Secret
        and refused by the running pods."""
        return (
            0 < self.revoked_internal_password_generation == self.internal_password_generation - 1
        )

    @property
    def coordinated_failover(self) -> bool:
        """Whether hand-overs use ``SENTINEL FAILOVER <master> COORDINATED``."""
        return self.server_engine.coordinated_failover(self.version)

    @property
    def client_label(self) -> str:
        """Label key that admits a client pod through the NetworkPolicy (value ``"true"``)."""
        return f"{self.name}-client"


@dataclass(frozen=True)
class _Key:
    parse: Callable[[Any], Any]
    attribute: str
    allowed: str


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError
    return int(text)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ValueError


def _as_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError
    return value.strip()


def _as_structured(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value


def _as_string_list(value: Any) -> tuple[str, ...]:
    items = _as_structured(value)
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise ValueError
    return tuple(items)


def _one_of(choices: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _as_str(value)
        if text not in choices:
            raise ValueError
        return text

    return parse


def _matching(pattern: re.Pattern[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _as_str(value)
        if not pattern.fullmatch(text):
            raise ValueError
        return text

    return parse


def _version(value: Any) -> Version:
    version = Version.parse(_as_str(value))
    if version is None:
        raise ValueError
    return version


def _positive_quantity(value: Any) -> str:
    text = _as_str(value)
    quantity = parse_quantity(text)
    if quantity is None or quantity <= 0:
        raise ValueError
    return text


KEYS: dict[str, _Key] = {
    "name": _Key(_matching(DNS_LABEL), "name", "a DNS label such as 'redis'"),
    "namespace": _Key(_matching(DNS_LABEL), "namespace", "a DNS label such as 'sophia-ai-prod'"),
    "createNamespace": _Key(_as_bool, "create_namespace", "true or false"),
    "replicas": _Key(_as_int, "replicas", "an odd integer of at least 3"),
    "sentinelQuorum": _Key(_as_int, "sentinel_quorum", "a majority of replicas"),
    "masterSetName": _Key(
        _matching(MASTER_SET_NAME), "master_set_name", "letters, digits, '.', '_' or '-'"
    ),
    "engine": _Key(_one_of(ENGINE_NAMES), "engine", "one of " + ", ".join(ENGINE_NAMES)),
    "image": _Key(_as_str, "image", "an image reference"),
    "engineVersion": _Key(
        _version, "engine_version", "a version such as 9.1 or 9.1.2 (the engine in the image)"
    ),
    "acknowledgeOneWayMigration": _Key(_as_bool, "acknowledge_one_way_migration", "true or false"),
    "proxyImage": _Key(_as_str, "proxy_image", "an image reference"),
    "rollerImage": _Key(_as_str, "roller_image", "an image reference"),
    "imagePullPolicy": _Key(
        _one_of(PULL_POLICIES), "image_pull_policy", "one of " + ", ".join(PULL_POLICIES)
    ),
    "storageSize": _Key(
        _positive_quantity, "storage_size", "a positive Kubernetes quantity such as 10Gi"
    ),
    "storageClass": _Key(_matching(DNS_LABEL), "storage_class", "a StorageClass name"),
    "pvcRetentionPolicy": _Key(
        _one_of(RETENTION_POLICIES), "pvc_retention_policy", "Retain or Delete"
    ),
    "protect": _Key(_as_bool, "protect", "true or false"),
    "resources": _Key(_as_structured, "resources", "an object of roles redis/sentinel/proxy"),
    "maxmemory": _Key(
        _positive_quantity, "maxmemory_bytes", "a positive quantity below the Redis memory limit"
    ),
    "maxmemoryPolicy": _Key(
        _one_of(EVICTION_POLICIES), "maxmemory_policy", "one of " + ", ".join(EVICTION_POLICIES)
    ),
    "downAfterMilliseconds": _Key(
        _as_int, "down_after_milliseconds", "an integer from 500 to 60000"
    ),
    "failoverTimeoutMilliseconds": _Key(
        _as_int, "failover_timeout_milliseconds", "an integer from 1000 to 600000"
    ),
    "parallelSyncs": _Key(_as_int, "parallel_syncs", "an integer of at least 1"),
    "minReplicasToWrite": _Key(
        _as_int, "min_replicas_to_write", "an integer from 0 to replicas - 1"
    ),
    "minReplicasMaxLagSeconds": _Key(
        _as_int, "min_replicas_max_lag_seconds", "an integer from 1 to 60"
    ),
    "antiAffinity": _Key(_one_of(ANTI_AFFINITY_MODES), "anti_affinity", "required or preferred"),
    "proxyReplicas": _Key(_as_int, "proxy_replicas", "an integer of at least 1"),
    "allowedNamespaces": _Key(_as_string_list, "allowed_namespaces", "a list of namespace names"),
    "passwordGeneration": _Key(_as_int, "password_generation", "an integer of at least 1"),
    "revokedPasswordGeneration": _Key(
        _as_int,
        "revoked_password_generation",
        "0 or a password generation below passwordGeneration",
    ),
    "internalPasswordGeneration": _Key(
        _as_int, "internal_password_generation", "an integer of at least 1"
    ),
    "revokedInternalPasswordGeneration": _Key(
        _as_int,
        "revoked_internal_password_generation",
        "0 or a generation below internalPasswordGeneration",
    ),
    "clusterDomain": _Key(_as_str, "cluster_domain", "a DNS domain such as cluster.local"),
    "terminationGracePeriodSeconds": _Key(
        _as_int, "termination_grace_period_seconds", "an integer from 20 to 600"
    ),
    "escPublish": _Key(_as_bool, "esc_publish", "true or false"),
    "escOrganization": _Key(_as_str, "esc_organization", "a Pulumi Cloud organization"),
    "escProject": _Key(_matching(DNS_LABEL), "esc_project", "an ESC project name"),
    "escEnvironment": _Key(_matching(DNS_LABEL), "esc_environment", "an ESC environment name"),
    "tls": _Key(_as_structured, "tls", "an object such as {enabled: true, selfSignedCa: true}"),
    "metrics": _Key(_as_structured, "metrics", "an object such as {enabled: true}"),
}


def _key(name: str) -> str:
    return f"{CONFIG_NAMESPACE}:{name}"


def _closest(unknown: str) -> str:
    import difflib

    match = difflib.get_close_matches(unknown, KEYS, n=1)
    return f" (did you mean '{_key(match[0])}'?)" if match else ""


def _parse_resources(raw: Any, problems: list[str]) -> dict[str, ContainerResources]:
    """Merges the ``resources`` object over the defaults, checking every quantity."""
    merged = {role: DEFAULT_RESOURCES[role].as_kubernetes() for role in ROLES}
    if not isinstance(raw, dict):
        problems.append(f"{_key('resources')}: must be an object with roles {', '.join(ROLES)}")
        raw = {}
    for role, spec in raw.items():
        where = f"{_key('resources')}.{role}"
        if role not in ROLES:
            problems.append(f"{where}: unknown role; allowed roles are {', '.join(ROLES)}")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be an object with 'requests' and/or 'limits'")
            continue
        for kind, amounts in spec.items():
            if kind not in ("requests", "limits") or not isinstance(amounts, dict):
                problems.append(f"{where}.{kind}: unknown key; allowed are requests, limits")
                continue
            for resource, amount in amounts.items():
                if resource not in ("cpu", "memory"):
                    problems.append(
                        f"{where}.{kind}.{resource}: unknown resource; allowed are cpu, memory"
                    )
                    continue
                merged[role][kind][resource] = str(amount)

    result: dict[str, ContainerResources] = {}
    for role in ROLES:
        values: dict[str, Decimal] = {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                amount = merged[role][kind][resource]
                where = f"{_key('resources')}.{role}.{kind}.{resource}"
                try:
                    parsed = parse_quantity(amount)
                except ValueError:
                    problems.append(
                        f"{where}: '{amount}' is not a Kubernetes quantity "
                        "(e.g. 500m, 2, 256Mi, 8Gi)"
                    )
                    continue
                if parsed is None or parsed <= 0:
                    problems.append(f"{where}: '{amount}' must be greater than zero")
                    continue
                values[f"{kind}.{resource}"] = parsed
        for resource in ("cpu", "memory"):
            request, limit = values.get(f"requests.{resource}"), values.get(f"limits.{resource}")
            if request is not None and limit is not None and request > limit:
                problems.append(
                    f"{_key('resources')}.{role}.requests.{resource}: "
                    f"'{merged[role]['requests'][resource]}' is above the limit "
                    f"'{merged[role]['limits'][resource]}'; a request must not exceed its limit"
                )
        result[role] = ContainerResources(
            cpu_request=merged[role]["requests"]["cpu"],
            memory_request=merged[role]["requests"]["memory"],
            cpu_limit=merged[role]["limits"]["cpu"],
            memory_limit=merged[role]["limits"]["memory"],
        )
    return result


def majority(replicas: int) -> int:
    """The smallest number of ``replicas`` pods (or their Sentinels) that is a majority."""
    return replicas // 2 + 1


def load_settings(raw: Mapping[str, Any]) -> RedisSettings:
    """Validates the ``redis:*`` entries of ``raw`` (full ``namespace:key`` names).

    Raises :class:`ConfigError` listing every problem; entries of other namespaces are ignored.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    unparsed: set[str] = set()
    prefix = f"{CONFIG_NAMESPACE}:"
    for full_key, value in sorted(raw.items()):
        if not full_key.startswith(prefix):
            continue
        name = full_key[len(prefix) :]
        spec = KEYS.get(name)
        if spec is None:
            problems.append(f"{full_key}: unknown key{_closest(name)}")
            continue
        try:
            values[spec.attribute] = spec.parse(value)
        except (ValueError, TypeError, json.JSONDecodeError):
            problems.append(f"{full_key}: '{value}' is not allowed; expected {spec.allowed}")
            unparsed.add(spec.attribute)

    resources = _parse_resources(values.pop("resources", {}), problems)
    raw_maxmemory = values.pop("maxmemory_bytes", None)
    if "tls" in values:
        values["tls"] = parse_tls(values["tls"], _key("tls"), problems)
    if "metrics" in values:
        values["metrics"] = parse_metrics(values["metrics"], _key("metrics"), problems)
    settings = RedisSettings(**values, resources=resources)

    replicas = settings.replicas
    quorum = values.get("sentinel_quorum", majority(replicas))
    if replicas < 3 or replicas % 2 == 0:
        problems.append(
            f"{_key('replicas')}: {replicas} is not allowed; expected an odd integer of at "
            "least 3 (Sentinel needs a majority that survives the loss of a pod)"
        )
    else:
        _check_replica_dependents(problems, settings, quorum)

    memory_limit = _quantity_or_none(resources["redis"].memory_limit)
    maxmemory = _resolve_maxmemory(raw_maxmemory, memory_limit, problems)

    _check_range(problems, "downAfterMilliseconds", settings.down_after_milliseconds, 500, 60000)
    _check_range(
        problems,
        "failoverTimeoutMilliseconds",
        settings.failover_timeout_milliseconds,
        1000,
        600000,
    )
    _check_range(problems, "proxyReplicas", settings.proxy_replicas, 1, 9)
    _check_range(problems, "passwordGeneration", settings.password_generation, 1, 1_000_000)
    _check_range(
        problems,
        "internalPasswordGeneration",
        settings.internal_password_generation,
        1,
        1_000_000,
    )
    _check_range(
        problems,
        "terminationGracePeriodSeconds",
        settings.termination_grace_period_seconds,
        20,
        600,
    )
    if not unparsed & {"engine", "image", "engine_version"}:
        _check_engine(problems, settings)
    _check_revocation(
        problems,
        ("revokedPasswordGeneration", settings.revoked_password_generation),
        ("passwordGeneration", settings.password_generation),
    )
    _check_revocation(
        problems,
        ("revokedInternalPasswordGeneration", settings.revoked_internal_password_generation),
        ("internalPasswordGeneration", settings.internal_password_generation),
    )
    if settings.esc_publish and not settings.esc_organization:
        problems.append(f"{_key('escOrganization')}: required when {_key('escPublish')} is true")
    if problems:
        raise ConfigError(problems)
    return replace(settings, sentinel_quorum=quorum, maxmemory_bytes=maxmemory or 0)


def _check_revocation(
    problems: list[str], revoked_key: tuple[str, int], generation_key: tuple[str, int]
) -> None:
    """A revoked generation must be an earlier one: revoking the current password would lock
    out whoever holds it."""
    (revoked_name, revoked), (generation_name, current) = revoked_key, generation_key
    key, generation = _key(revoked_name), _key(generation_name)
    if revoked < 0:
        problems.append(f"{key}: {revoked} is not allowed: 0 or a generation below {current}")
    elif revoked and current == 1:
        problems.append(
            f"{key}: {revoked} is not allowed while {generation} is 1: there is no previous "
            f"password to revoke (bump {generation} to rotate first)"
        )
    elif revoked and revoked >= current:
        problems.append(
            f"{key}: {revoked} would revoke the current password (generation {current}); "
            f"expected at most {current - 1}"
        )


def _check_engine(problems: list[str], settings: RedisSettings) -> None:
    """The engine and its version against the image and what the scripts support."""
    engine = ENGINES.get(settings.engine)
    image_engine = engine_of_image(settings.image)
    if engine is not None and image_engine is not None and image_engine != engine.name:
        problems.append(
            f"{_key('image')}: '{settings.image}' is a {image_engine} image but "
            f"{_key('engine')} is '{engine.name}'; set both to the same engine"
        )
        return
    tagged = version_of_image(settings.image)
    version = settings.engine_version or tagged
    if version is None:
        problems.append(
            f"{_key('engineVersion')}: required because the tag of {_key('image')} "
            f"'{settings.image}' does not start with a version; expected e.g. 9.1.2"
        )
        return
    if settings.engine_version is not None and tagged is not None and tagged.line != version.line:
        problems.append(
            f"{_key('engineVersion')}: '{version}' contradicts the tag of {_key('image')} "
            f"'{settings.image}'; remove the key or make them agree"
        )
    if engine is None:
        return
    key = _key("engineVersion") if settings.engine_version is not None else _key("image")
    if not engine.supports(version):
        lines = ", ".join(f"{major}.x" for major in engine.majors)
        problems.append(
            f"{key}: {engine.name} {version} is not supported; the pod scripts support "
            f"{engine.name} {lines}"
        )
    reason = KNOWN_BAD.get((engine.name, version))
    if reason is not None:
        problems.append(f"{key}: {engine.name} {version} is refused: {reason}")


def _check_replica_dependents(problems: list[str], settings: RedisSettings, quorum: int) -> None:
    """Checks of keys whose range depends on a valid replica count."""
    replicas = settings.replicas
    least = majority(replicas)
    if not least <= quorum <= replicas:
        problems.append(
            f"{_key('sentinelQuorum')}: {quorum} is not a majority of {replicas} replicas; "
            f"expected {least}..{replicas}"
        )
    _check_range(problems, "parallelSyncs", settings.parallel_syncs, 1, replicas - 1)
    _check_range(problems, "minReplicasToWrite", settings.min_replicas_to_write, 0, replicas - 1)


def _resolve_maxmemory(
    raw: str | None, memory_limit: Decimal | None, problems: list[str]
) -> int | None:
    if memory_limit is None:
        return None
    if raw is None:
        return int(memory_limit * MAXMEMORY_SHARE_OF_LIMIT) // MIB * MIB
    maxmemory = int(parse_quantity(raw) or 0)
    if maxmemory >= memory_limit:
        problems.append(
            f"{_key('maxmemory')}: '{raw}' is not below the Redis memory limit "
            f"({int(memory_limit)} bytes); leave headroom for the AOF rewrite fork"
        )
    return maxmemory


def _check_range(problems: list[str], key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        problems.append(f"{_key(key)}: {value} is not allowed; expected {low}..{high}")


def _quantity_or_none(text: str) -> Decimal | None:
    try:
        quantity = parse_quantity(text)
    except ValueError:
        return None
    return quantity if quantity is not None and quantity > 0 else None


def read_pulumi_config() -> dict[str, Any]:
    """All config entries of the running program, ``namespace:key`` to raw value.

    The SDK's documented ``pulumi.Config`` reads one named key at a time and cannot list
    them, but the unknown-key check (``redis:replica`` -> did you mean ``redis:replicas``?)
    needs every key the stack sets; so this reads the runtime's config store, which the
    engine fills from the stack's config (and ``set_all_config`` fills under mocks).
    """
    from pulumi.runtime import config as runtime_config

    entries = dict(runtime_config.get_config_env())
    entries.update(runtime_config.CONFIG.get())
    return entries
