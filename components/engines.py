"""The server engines the pod scripts support, their versions, and which changes between them
a rolling ``pulumi up`` can make.

Redis and Valkey speak the same protocol and run the same Sentinel, but ship differently
named binaries and, since Redis 7.4 and Valkey 9.0, persistence formats the other cannot
read: an RDB of format 12 (Redis 7.4 and later) does not load into Valkey, and one of
format 80 (Valkey 9) does not load into any Redis. A replica full-syncs through that
format, so these facts decide which live migrations are possible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

ENGINE_NAMES = ("redis", "valkey")


@total_ordering
@dataclass(frozen=True)
class Version:
    """A server version; ``patch`` is None when only ``major.minor`` is known."""

    major: int
    """Major version, e.g. 9."""
    minor: int
    """Minor version, e.g. 1."""
    patch: int | None = None
    """Patch version, e.g. 2, when the image tag or ``redis:engineVersion`` names one."""

    PATTERN = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:$|[-+_])")

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """``9.1``, ``9.1.2`` or a tag that starts with one (``9.1.2-alpine``); else None."""
        match = cls.PATTERN.match(text.strip())
        if match is None:
            return None
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch) if patch is not None else None)

    @property
    def line(self) -> tuple[int, int]:
        """``(major, minor)``: what compatibility depends on."""
        return (self.major, self.minor)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor, self.patch or 0) < (
            other.major,
            other.minor,
            other.patch or 0,
        )

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}" + (f".{self.patch}" if self.patch is not None else "")


@dataclass(frozen=True)
class Engine:
    """One server implementation: its binaries and the version lines the scripts support."""

    name: str
    """``redis`` or ``valkey``: the value of ``redis:engine``."""
    server: str
    """Server binary, run by ``start-redis.sh``."""
    sentinel: str
    """Sentinel binary, run by ``start-sentinel.sh``."""
    cli: str
    """Command-line client of every script and probe."""
    majors: tuple[int, ...]
    """Major versions whose Sentinel, ACL and INFO behaviour the scripts are tested against."""
    coordinated_failover_since: tuple[int, int] | None
    """First line with ``SENTINEL FAILOVER <master> COORDINATED``; None when the engine lacks it."""

    def supports(self, version: Version) -> bool:
        """Whether the scripts support ``version`` of this engine."""
        return version.major in self.majors

    def coordinated_failover(self, version: Version) -> bool:
        """Whether ``version`` hands over with ``SENTINEL FAILOVER ... COORDINATED``."""
        since = self.coordinated_failover_since
        return since is not None and version.line >= since


ENGINES: dict[str, Engine] = {
    "redis": Engine(
        name="redis",
        server="redis-server",
        sentinel="redis-sentinel",
        cli="redis-cli",
        majors=(7, 8),
        coordinated_failover_since=None,
    ),
    "valkey": Engine(
        name="valkey",
        server="valkey-server",
        sentinel="valkey-sentinel",
        cli="valkey-cli",
        majors=(8, 9),
        coordinated_failover_since=(9, 0),
    ),
}

KNOWN_BAD: dict[tuple[str, Version], str] = {
    ("valkey", Version(9, 1, 0)): (
        "Valkey 9.1.0's Sentinel can crash in a coordinated failover when the old leader's "
        "link drops (valkey-io/valkey#4066, fixed in 9.1.1); use 9.1.1 or later"
    ),
}
"""Exact releases refused, with the reason."""


@dataclass(frozen=True)
class Deployment:
    """An engine at a version: what runs, or what a change asks for."""

    engine: str
    """``redis`` or ``valkey``."""
    version: Version
    """Its version."""

    def __str__(self) -> str:
        return f"{self.engine} {self.version}"


def engine_of_image(image: str) -> str | None:
    """``redis`` or ``valkey`` when the image repository's last path part names one."""
    repository = image.split("@", 1)[0]
    name, _, tag = repository.rpartition(":")
    if not name or "/" in tag:
        name = repository
    last = name.rsplit("/", 1)[-1]
    return last if last in ENGINE_NAMES else None


def version_of_image(image: str) -> Version | None:
    """The version an image tag starts with (``valkey/valkey:9.1.2-trixie`` -> 9.1.2)."""
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return None
    return Version.parse(tag)


def writes_format_only_newer_lines_read(current: Deployment) -> bool:
    """Redis 7.4+ (RDB 12) and Valkey 9+ (RDB 80) write data older lines cannot load."""
    if current.engine == "redis":
        return current.version.line >= (7, 4)
    return current.version.major >= 9


def migration_problem(
    current: Deployment, wanted: Deployment, acknowledged: bool, acknowledge_key: str
) -> str | None:
    """Why a rolling update from ``current`` to ``wanted`` cannot run, or None when it can.

    A replica of the new line must full-sync from the old master (so the new line reads the
    old format), and the roll is one way when the old line cannot read what the new writes.
    """
    if current.engine == wanted.engine:
        if wanted.version.line < current.version.line:
            return (
                f"{current} -> {wanted} is a downgrade: {current} writes data {wanted} may not "
                "load, and replicas of the new line would fail to sync; restore a backup into "
                "a new release instead"
            )
        if wanted.version.major > current.version.major + 1:
            return (
                f"{current} -> {wanted} skips a major version; upgrade one major line at a "
                "time (each step a `pulumi up`)"
            )
        return None
    if current.engine == "valkey":
        return (
            f"{current} -> {wanted}: Valkey to Redis is not supported; Redis cannot load the "
            "data Valkey 9 writes, and Redis 7.4+ is no longer compatible; copy the data into "
            "a new release instead"
        )
    if current.version.line >= (7, 4):
        return (
            f"{current} -> {wanted}: Redis 7.4 and later write RDB format 12, which Valkey does "
            "not load in a full sync (valkey-io/valkey#845); a live migration needs Redis 7.2 "
            "or older. Copy the data into a new Valkey release instead (the README's runbook)"
        )
    if writes_format_only_newer_lines_read(wanted) and not acknowledged:
        return (
            f"{current} -> {wanted} is one-way: once the master runs {wanted} its data no "
            f"longer loads into Redis. Take a backup (the README's runbook), then set "
            f"{acknowledge_key} to true"
        )
    return None
