"""Credentials by role: the ACL users of Redis (6379) and Sentinel (26379), what each may do,
the Secret key that holds its password and the environment variable the pods read it from.

Only the application credential leaves the cluster (``redis_url``, ``redis_password``, ESC);
every other one lives in the release's Secret and in the environment of the containers that
use it. The rules name only commands every supported engine knows (Redis 7.0 to 8.x, Valkey 8
and 9): an unknown command in an ACL rule stops the server from loading its config.
"""

from __future__ import annotations

from dataclasses import dataclass

APPLICATION_DENIED_COMMANDS = (
    "flushall",
    "flushdb",
    "debug",
    "config",
    "shutdown",
    "monitor",
    "replicaof",
    "slaveof",
    "failover",
    "module",
    "save",
    "bgsave",
    "bgrewriteaof",
    "sync",
    "psync",
    "keys",
    "acl",
)
"""Denied by name as well as by category, so the boundary does not rest on an engine's
category tags alone. KEYS is denied because it walks the whole keyspace in one call and
stalls every other client of the hot path; SCAN does the same job in steps."""

APPLICATION_RULES = " ".join(
    [
        "~*",
        "&*",
        "+@all",
        "-@admin",
        "-@dangerous",
        *(f"-{command}" for command in APPLICATION_DENIED_COMMANDS),
        # Read-only commands the categories above deny that clients and the proxy rely on:
        # INFO (the proxy's master check, client libraries' version probes), ROLE (clients
        # that verify they reached the master) and ACL WHOAMI.
        "+info",
        "+role",
        "+acl|whoami",
    ]
)
"""ACL rules of the application user (``default``) on Redis: data, scripting and pub/sub."""

SENTINEL_DISCOVERY_COMMANDS = (
    "sentinel|get-master-addr-by-name",
    "sentinel|master",
    "sentinel|masters",
    "sentinel|replicas",
    "sentinel|slaves",
    "sentinel|sentinels",
    "sentinel|myid",
)
"""What a Sentinel-aware client asks a Sentinel: where the master is, and who else is there."""

APPLICATION_SENTINEL_RULES = " ".join(
    [
        "-@all",
        "&*",
        "+auth",
        "+hello",
        "+ping",
        "+role",
        "+client|setname",
        "+client|getname",
        "+client|id",
        "+subscribe",
        "+psubscribe",
        "+unsubscribe",
        "+punsubscribe",
        *(f"+{command}" for command in SENTINEL_DISCOVERY_COMMANDS),
    ]
)
"""ACL rules of the application user (``default``) on Sentinel: discovery and the
``+switch-master`` notifications; never FAILOVER, RESET, REMOVE, SET, MONITOR or CONFIG."""

FULL_ACCESS_RULES = "~* &* +@all"

REPLICATION_RULES = "-@all +psync +sync +replconf +ping"
"""A replica's handshake and stream (``masteruser``): nothing else."""

SENTINEL_TO_REDIS_RULES = " ".join(
    [
        "-@all",
        "&__sentinel__:*",
        "+ping",
        "+info",
        "+role",
        "+publish",
        "+subscribe",
        "+client|setname",
        "+client|kill",
        "+multi",
        "+exec",
        "+slaveof",
        "+replicaof",
        "+config|rewrite",
        "+script|kill",
        # SENTINEL FAILOVER ... COORDINATED (Valkey 9) hands over with the FAILOVER command,
        # sent in a MULTI after CLIENT PAUSE; without the pause the master refuses the whole
        # transaction and the hand-over waits out the failover timeout.
        "+failover",
        "+client|pause",
        "+client|unpause",
    ]
)
"""What a Sentinel sends a Redis server it monitors: the hello channel, INFO, and the
reconfiguration of a failover."""

MONITORING_RULES = " ".join(
    [
        "-@all",
        "+ping",
        "+info",
        "+role",
        "+dbsize",
        "+select",
        "+client|setname",
        "+client|list",
        "+client|info",
        "+latency|latest",
        "+latency|history",
        "+latency|histogram",
        "+slowlog|get",
        "+slowlog|len",
        "+memory|stats",
    ]
)
"""Reads of a metrics exporter on Redis; no writes, no CONFIG GET (it returns passwords)."""

MONITORING_SENTINEL_RULES = " ".join(
    [
        "-@all",
        "+ping",
        "+info",
        "+role",
        "+client|setname",
        "+sentinel|ckquorum",
        *(f"+{command}" for command in SENTINEL_DISCOVERY_COMMANDS),
    ]
)
"""Reads of a metrics exporter on Sentinel, including the quorum check."""


@dataclass(frozen=True)
class Credential:
    """One role's password and the ACL users it authenticates."""

    role: str
    """Name of the role in the docs and the credential table."""
    secret_key: str
    """Key of the release's Secret holding the password."""
    env: str
    """Environment variable of the containers that use the password."""
    redis_user: str | None
    """ACL user on the Redis servers, None when the role has none there."""
    redis_rules: str
    """ACL rules of ``redis_user``."""
    sentinel_user: str | None
    """ACL user on the Sentinels, None when the role has none there."""
    sentinel_rules: str
    """ACL rules of ``sentinel_user``."""

    @property
    def previous_secret_key(self) -> str:
        """Key of the Secret holding the previous generation's password during a rotation."""
        return f"previous-{self.secret_key}"

    @property
    def previous_env(self) -> str:
        """Environment variable of the previous generation's password during a rotation."""
        return self.env.replace("REDIS_", "REDIS_PREVIOUS_", 1)


APPLICATION = Credential(
    role="application",
    secret_key="password",
    env="REDIS_PASSWORD",
    redis_user="default",
    redis_rules=APPLICATION_RULES,
    sentinel_user="default",
    sentinel_rules=APPLICATION_SENTINEL_RULES,
)
ADMIN = Credential(
    role="admin",
    secret_key="admin-password",
    env="REDIS_ADMIN_PASSWORD",
    redis_user="admin",
    redis_rules=FULL_ACCESS_RULES,
    sentinel_user="admin",
    sentinel_rules=FULL_ACCESS_RULES,
)
REPLICATION = Credential(
    role="replication",
    secret_key="replication-password",
    env="REDIS_REPLICATION_PASSWORD",
    redis_user="replication",
    redis_rules=REPLICATION_RULES,
    sentinel_user=None,
    sentinel_rules="",
)
SENTINEL = Credential(
    role="sentinel",
    secret_key="sentinel-password",
    env="REDIS_SENTINEL_PASSWORD",
    redis_user="sentinel",
    redis_rules=SENTINEL_TO_REDIS_RULES,
    sentinel_user=None,
    sentinel_rules="",
)
MONITORING = Credential(
    role="monitoring",
    secret_key="monitoring-password",
    env="REDIS_MONITORING_PASSWORD",
    redis_user="monitoring",
    redis_rules=MONITORING_RULES,
    sentinel_user="monitoring",
    sentinel_rules=MONITORING_SENTINEL_RULES,
)

CREDENTIALS = (APPLICATION, ADMIN, REPLICATION, SENTINEL, MONITORING)
INTERNAL_CREDENTIALS = (ADMIN, REPLICATION, SENTINEL, MONITORING)
"""Credentials that never leave the cluster."""

PREVIOUS_APPLICATION_KEY = APPLICATION.previous_secret_key
"""Secret key of the previous application password during a rotation."""
PREVIOUS_APPLICATION_ENV = APPLICATION.previous_env


def constants(credentials: tuple[Credential, ...] = CREDENTIALS) -> dict[str, str]:
    """``constants.sh`` entries: per role, its users, rules and the variable of its password."""
    values: dict[str, str] = {}
    for credential in credentials:
        prefix = credential.role.upper()
        values[f"{prefix}_PASSWORD_ENV"] = credential.env
        values[f"{prefix}_PREVIOUS_PASSWORD_ENV"] = credential.previous_env
        values[f"{prefix}_USER"] = credential.redis_user or ""
        values[f"{prefix}_ACL_RULES"] = credential.redis_rules
        values[f"{prefix}_SENTINEL_USER"] = credential.sentinel_user or ""
        values[f"{prefix}_SENTINEL_ACL_RULES"] = credential.sentinel_rules
    values["ROLES"] = " ".join(credential.role.upper() for credential in credentials)
    return values
