"""What each credential may and may not do on Redis (6379) and Sentinel (26379).

One probe checks every case against a running master and a Sentinel. It needs only the
standard library and redis-py, so the same file runs in the loopback harness and, sent as a
script to the cluster's client pod (:func:`cluster_script`), on the real cluster. Commands are
chosen so that running one by mistake changes nothing that matters (``SHUTDOWN ABORT``,
``FAILOVER ABORT``, ``SENTINEL FAILOVER`` of a master set that does not exist, ...), except the
few whose refusal is the point (``FLUSHALL``); the harness runs them on a throwaway set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

ALLOWED = "allowed"
REFUSED = "refused"
LOGIN_REFUSED = "login refused"
UNSUPPORTED = "unknown to the engine"
"""A command form the engine rejects before its ACL check (e.g. ``SENTINEL FAILOVER ...
COORDINATED`` on Redis, an arity error): it cannot run, which satisfies a refusal."""

NO_SUCH_SET = "boundary-probe-no-such-set"
"""A master-set name no Sentinel monitors: admin commands on it fail harmlessly if let through."""

MASTER_SET = "{master_set}"
"""Placeholder for the real master-set name in a command."""

Case = tuple[str, str, tuple[str, ...], str]
"""(role, ``redis`` | ``sentinel``, command, expected outcome)."""

APPLICATION_REDIS: list[Case] = [
    *(
        ("application", "redis", command, ALLOWED)
        for command in (
            ("SET", "boundary:app", "1"),
            ("GET", "boundary:app"),
            ("EVAL", "return 1", "0"),
            ("PUBLISH", "boundary", "x"),
            ("SCAN", "0"),
            ("INFO", "replication"),
            ("ROLE",),
            ("ACL", "WHOAMI"),
            ("CLIENT", "SETNAME", "boundary"),
            ("WAIT", "0", "0"),
        )
    ),
    *(
        ("application", "redis", command, REFUSED)
        for command in (
            ("FLUSHALL",),
            ("FLUSHDB",),
            ("CONFIG", "GET", "maxmemory"),
            ("CONFIG", "SET", "maxmemory-policy", "noeviction"),
            ("SHUTDOWN", "ABORT"),
            ("MONITOR",),
            ("REPLICAOF", "NO", "ONE"),
            ("SLAVEOF", "NO", "ONE"),
            ("FAILOVER", "ABORT"),
            ("MODULE", "LIST"),
            ("SAVE",),
            ("BGSAVE",),
            ("BGREWRITEAOF",),
            ("SYNC",),
            ("PSYNC", "?", "-1"),
            ("ACL", "LIST"),
            ("ACL", "GETUSER", "admin"),
            ("ACL", "SETUSER", "boundary-probe"),
            ("CLIENT", "KILL", "ID", "999999999"),
            ("CLIENT", "PAUSE", "1"),
            ("CLIENT", "LIST"),
            ("KEYS", "boundary-probe-*"),
            ("DEBUG", "SLEEP", "0"),
            ("SLOWLOG", "GET"),
        )
    ),
]
APPLICATION_SENTINEL: list[Case] = [
    *(
        ("application", "sentinel", command, ALLOWED)
        for command in (
            ("PING",),
            ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_SET),
            ("SENTINEL", "MASTER", MASTER_SET),
            ("SENTINEL", "REPLICAS", MASTER_SET),
            ("SENTINEL", "SENTINELS", MASTER_SET),
            ("SUBSCRIBE", "+switch-master"),
        )
    ),
    *(
        ("application", "sentinel", command, REFUSED)
        for command in (
            ("SENTINEL", "FAILOVER", NO_SUCH_SET),
            ("SENTINEL", "FAILOVER", NO_SUCH_SET, "COORDINATED"),
            ("SENTINEL", "RESET", NO_SUCH_SET),
            ("SENTINEL", "REMOVE", NO_SUCH_SET),
            ("SENTINEL", "SET", NO_SUCH_SET, "down-after-milliseconds", "1000"),
            ("SENTINEL", "MONITOR", NO_SUCH_SET, "127.0.0.1", "6379", "0"),
            ("SENTINEL", "CONFIG", "GET", "resolve-hostnames"),
            ("SENTINEL", "CONFIG", "SET", "resolve-hostnames", "yes"),
            ("SENTINEL", "IS-MASTER-DOWN-BY-ADDR", "127.0.0.1", "6379", "0", "*"),
            ("SENTINEL", "FLUSHCONFIG"),
            ("SENTINEL", "CKQUORUM", MASTER_SET),
            ("PUBLISH", "__sentinel__:hello", "x"),
            ("ACL", "LIST"),
        )
    ),
]
MONITORING: list[Case] = [
    *(
        ("monitoring", "redis", command, ALLOWED)
        for command in (
            ("PING",),
            ("INFO",),
            ("CLIENT", "LIST"),
            ("SLOWLOG", "GET"),
            ("LATENCY", "LATEST"),
            ("MEMORY", "STATS"),
            ("DBSIZE",),
        )
    ),
    *(
        ("monitoring", "redis", command, REFUSED)
        for command in (
            ("GET", "boundary:app"),
            ("SET", "boundary:monitoring", "1"),
            ("CONFIG", "GET", "masterauth"),
            ("FLUSHALL",),
            ("CLIENT", "KILL", "ID", "999999999"),
            ("KEYS", "boundary-probe-*"),
        )
    ),
    *(
        ("monitoring", "sentinel", command, ALLOWED)
        for command in (
            ("INFO",),
            ("SENTINEL", "MASTERS"),
            ("SENTINEL", "CKQUORUM", MASTER_SET),
        )
    ),
    *(
        ("monitoring", "sentinel", command, REFUSED)
        for command in (
            ("SENTINEL", "FAILOVER", NO_SUCH_SET),
            ("SENTINEL", "SET", NO_SUCH_SET, "down-after-milliseconds", "1000"),
            ("SENTINEL", "CONFIG", "GET", "sentinel-pass"),
        )
    ),
]
REPLICATION: list[Case] = [
    ("replication", "redis", ("PING",), ALLOWED),
    *(
        ("replication", "redis", command, REFUSED)
        for command in (
            ("GET", "boundary:app"),
            ("SET", "boundary:replication", "1"),
            ("INFO",),
            ("CONFIG", "GET", "maxmemory"),
            ("FLUSHALL",),
        )
    ),
]
SENTINEL_TO_REDIS: list[Case] = [
    *(
        ("sentinel", "redis", command, ALLOWED)
        for command in (
            ("PING",),
            ("INFO", "replication"),
            ("ROLE",),
            ("PUBLISH", "__sentinel__:boundary-probe", "x"),
            # A coordinated failover pauses writes before FAILOVER (1 ms here).
            ("CLIENT", "PAUSE", "1", "WRITE"),
        )
    ),
    *(
        ("sentinel", "redis", command, REFUSED)
        for command in (
            ("GET", "boundary:app"),
            ("SET", "boundary:sentinel", "1"),
            ("PUBLISH", "boundary", "x"),
            ("CONFIG", "GET", "maxmemory"),
            ("FLUSHALL",),
            ("KEYS", "boundary-probe-*"),
        )
    ),
]
ADMIN: list[Case] = [
    ("admin", "redis", ("CONFIG", "GET", "maxmemory"), ALLOWED),
    ("admin", "redis", ("ACL", "WHOAMI"), ALLOWED),
    ("admin", "sentinel", ("SENTINEL", "CONFIG", "GET", "resolve-hostnames"), ALLOWED),
    ("admin", "sentinel", ("SENTINEL", "FAILOVER", NO_SUCH_SET), ALLOWED),
]
CASES: list[Case] = [
    *APPLICATION_REDIS,
    *APPLICATION_SENTINEL,
    *MONITORING,
    *REPLICATION,
    *SENTINEL_TO_REDIS,
    *ADMIN,
]

USERS = {
    "application": {"redis": "default", "sentinel": "default"},
    "admin": {"redis": "admin", "sentinel": "admin"},
    "replication": {"redis": "replication"},
    "sentinel": {"redis": "sentinel"},
    "monitoring": {"redis": "monitoring", "sentinel": "monitoring"},
}
"""Each role's ACL user per port (as components.credentials defines them; the cluster's
client pod cannot import that package)."""


TLS_OPTIONS: dict[str, Any] = {}
"""redis-py options of every connection with TLS on (set by :func:`main` from the payload's
``ca``): TLS, verifying the servers with that CA."""


def connect(endpoint: tuple[str, int], user: str, password: str) -> redis.Redis:
    """A connection that reports a refused login at once (redis-py retries an
    AuthenticationError, a ConnectionError, by default)."""
    return redis.Redis(
        host=endpoint[0],
        port=endpoint[1],
        username=user,
        password=password,
        socket_timeout=3,
        socket_connect_timeout=3,
        retry=Retry(NoBackoff(), 0),
        **TLS_OPTIONS,
    )


def outcome(connection: redis.Redis, command: tuple[str, ...]) -> str:
    """What the server made of ``command``: refused by ACL (or a disabled command), or let
    through (a reply, or an error from the command itself)."""
    try:
        if command[0] == "SUBSCRIBE":
            pubsub = connection.pubsub()  # type: ignore[no-untyped-call]
            pubsub.subscribe(*command[1:])
            message = pubsub.get_message(timeout=2)
            pubsub.close()
            return ALLOWED if message and message["type"] == "subscribe" else REFUSED
        connection.execute_command(*command)  # type: ignore[no-untyped-call]
    except redis.exceptions.NoPermissionError:
        return REFUSED
    except redis.exceptions.AuthenticationError:
        return LOGIN_REFUSED
    except redis.exceptions.ResponseError as error:
        text = str(error)
        if text.startswith("NOPERM") or "not allowed" in text:
            return REFUSED
        if text.startswith(("wrong number of arguments", "unknown subcommand", "unknown command")):
            return UNSUPPORTED
    return ALLOWED


def login(endpoint: tuple[str, int], user: str, password: str) -> str:
    """Whether ``user`` with ``password`` may authenticate at ``endpoint``."""
    connection = connect(endpoint, user, password)
    try:
        connection.execute_command("PING")  # type: ignore[no-untyped-call]
    except redis.exceptions.AuthenticationError:
        return LOGIN_REFUSED
    except redis.exceptions.ResponseError as error:
        if "WRONGPASS" in str(error) or "NOAUTH" in str(error):
            return LOGIN_REFUSED
        raise
    finally:
        connection.close()
    return ALLOWED


def probe(
    endpoints: dict[str, tuple[str, int]], passwords: dict[str, str], master_set: str
) -> list[str]:
    """Every case and cross-login, against the ``redis`` (a master) and ``sentinel`` endpoints;
    the cases whose outcome differs from the expected one, described (empty: all held)."""
    broken: list[str] = []
    for role, port, template, expected in CASES:
        command = tuple(part.replace(MASTER_SET, master_set) for part in template)
        connection = connect(endpoints[port], USERS[role][port], passwords[role])
        try:
            got = outcome(connection, command)
        finally:
            connection.close()
        if got != expected and not (expected == REFUSED and got == UNSUPPORTED):
            broken.append(f"{role} on {port}: {' '.join(command)}: {got}, expected {expected}")
    for role, password in passwords.items():
        for other, users in USERS.items():
            for port, user in users.items():
                if other == role or USERS[role].get(port) == user:
                    continue
                got = login(endpoints[port], user, password)
                if got != LOGIN_REFUSED:
                    broken.append(f"{role}'s password logs in as {user} on {port}")
    return broken


def main() -> None:
    """Reads ``{"endpoints", "passwords", "master_set"}`` (and ``ca`` with TLS) as JSON on
    stdin, prints the broken boundaries as a JSON list."""
    payload: dict[str, Any] = json.loads(sys.stdin.read())
    if payload.get("ca"):
        ca_file = Path("/tmp/boundaries-ca.crt")
        ca_file.write_text(payload["ca"])
        TLS_OPTIONS.update(ssl=True, ssl_ca_certs=str(ca_file))
    endpoints = {port: (host, int(number)) for port, (host, number) in payload["endpoints"].items()}
    print(json.dumps(probe(endpoints, payload["passwords"], payload["master_set"])))


def cluster_script() -> str:
    """This module as a script for the client pod: reads the payload, prints the result."""
    return Path(__file__).read_text() + "\nmain()\n"
