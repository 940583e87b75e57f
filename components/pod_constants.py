"""Every value the pod scripts use, rendered into ``constants.sh``, which they source.

The scripts derive nothing that Python knows: ports, the pod host-name pattern, the quorum,
the master-set name, replica priorities, paths and every time budget come from here, so the
StatefulSet, the proxy and the scripts cannot disagree.
"""

from __future__ import annotations

import shlex
from decimal import Decimal

from lightkube.utils.quantity import parse_quantity

from . import credentials
from .engines import ENGINES
from .naming import REDIS_PORT, SENTINEL_PORT, Names, selector_labels
from .settings import RedisSettings, majority
from .tls import (
    CERTIFICATE_RELOAD_POLL_SECONDS,
    REDIS_TLS_PORT,
    SENTINEL_RESTART_STAGGER_SECONDS,
    SENTINEL_TLS_PORT,
    TLS_MOUNT,
    TlsSettings,
)

CONSTANTS_FILE = "constants.sh"
"""Key of the generated file in the ConfigMap, mounted beside the scripts."""

SCRIPTS_MOUNT = "/scripts"
CONFIG_MOUNT = "/config"
DATA_MOUNT = "/data"
RUN_MOUNT = "/run/redis"
REDIS_SOCKET = f"{RUN_MOUNT}/redis.sock"
"""Unix socket of the Redis server: how both containers' scripts and probes reach their own
server, also while a hand-over has closed its TCP port."""
TMP_MOUNT = "/tmp"

DEFAULT_REPLICA_PRIORITY = 100
"""Redis's default ``replica-priority``, restored after a hand-over."""
LAST_CHOICE_REPLICA_PRIORITY = 200
"""Priority a hand-over gives the replicas it does not prefer (higher is chosen last)."""
SENTINEL_WAIT_SECONDS = 10
"""How long a starting pod waits for a majority of Sentinels to say who the master is."""
SENTINEL_INFO_PERIOD_MILLISECONDS = 1000
"""How often each Sentinel asks the master and the replicas for INFO (Sentinel's own default:
10 s, and 1 s only once a failover runs). Nine INFO a second for three pods."""
SENTINEL_PING_PERIOD_MILLISECONDS = 250
"""How often each Sentinel pings the master, the replicas and its peers (Sentinel's own
default: 1 s). An instance is down ``down-after`` after the first PING it left unanswered, so a
master that stops answering without closing its connections (a partition, a hung host) is seen
down by each Sentinel within ``down-after`` + this period of the fault, and by the quorum within
one period of each other, instead of a second. Sixty PINGs a second for three pods."""
FORGET_CHECK_SECONDS = 5
"""How often a Sentinel looks for replicas and Sentinels of pods removed by a scale-down."""
BUSY_CHECK_SECONDS = 5
"""How often a Sentinel's CPU time and commands are compared with the last check's."""
BUSY_CHECKS_IN_A_ROW = 2
"""Busy checks in a row that make a spin: one busy check may be a burst of work."""
BUSY_SHARE_OF_LIMIT = Decimal("0.5")
"""A Sentinel that used more than this share of its CPU limit over a check is busy."""
BUSY_MAX_COMMANDS_PER_SECOND = 100
"""A busy Sentinel that served fewer commands than this a second is spinning, not loaded:
peers and discovering clients send it a few a second."""
CLOCK_TICKS_PER_SECOND = 100
"""Linux's unit of CPU time in ``/proc/PID/stat`` (USER_HZ), the same on every architecture."""
COMMAND_TIMEOUT_SECONDS = 3
"""Bound of every redis-cli call of the scripts, so a hung peer cannot stall them."""
PROMOTABLE_WAIT_SECONDS = 15
"""Longest wait of a hand-over for Sentinel to see a preferred replica it would promote."""
LEADER_CPU_SAMPLE_SECONDS = Decimal("0.5")
"""How long a hand-over measures the CPU time of a Sentinel that is ready to lead it."""
QUORUM_ANNOUNCE_SECONDS = 10
"""Time a hand-over keeps, after starting the failover, for a quorum to name the new master."""
HOOK_MARGIN_SECONDS = 5
"""The hand-over ends this long before the grace period, so the pod stops cleanly."""
REPLICA_ACK_MILLISECONDS = 2000
"""How long the paused master waits (``WAIT``) for its replicas to hold every write."""
PROMOTABLE_MAX_PING_MILLISECONDS = 5000
"""A replica Sentinel last heard from longer ago than this is not promotable."""
LINKED_MAX_PING_MILLISECONDS = 2000
"""A Sentinel whose ping another answered longer ago than this (two ping periods) has no
working link to it: a coordinated failover's election would not get that vote."""
PROMOTABLE_MAX_INFO_AGE_MILLISECONDS = 30000
"""A replica whose INFO Sentinel refreshed longer ago than this is not promotable."""
POLL_SECONDS = 0.5
"""Interval of the scripts' waiting loops."""
FAST_POLL_SECONDS = 0.2
"""Interval of the hand-over's wait for the new master, where every tenth of a second counts."""
PROXY_UP_CHECK_SECONDS = 1
"""How often the proxy checks a server that is up (servers that are down: four times as often)."""
PROXY_NOTICE_SECONDS = 2 * PROXY_UP_CHECK_SECONDS
"""How long a hand-over keeps the pod, its port closed, after the new master is named: each
proxy's next check of it fails first. A proxy that still holds the server up when the pod goes
keeps it up under the address of the pod that comes back, a replica (seen twice in one run:
18 READONLY replies in a rolling update whose hand-over took under a second)."""
STUCK_LEADER_SECONDS = 4
"""How long after FAILOVER TO demoted the master a hand-over lets the leading Sentinel go on
naming it before another Sentinel fails over to the promoted server: the leader names it within
a second or two, once its next INFO of the promoted server reports the promotion."""
DEMOTION_POLL_SECONDS = 0.05
"""Interval of the hand-over's watch for its server's demotion, the window in which a client
could still meet it demoted."""
REVOKE_DEADLINE_SECONDS = 120
"""How long the revocation Job retries servers that do not answer (a pod restarting)."""
ROLL_DIR = "/roll"
"""Directory the rolling-update Job's two containers share (an ``emptyDir``)."""
ROLL_POD_START_SECONDS = 600
"""How long the rolling update waits for one recreated pod to be Ready (its replica's full
sync included) before it gives up."""
ROLL_MASTER_MAX_AGE_SECONDS = 5
"""The rolling update deletes no pod while the master it last read from the Sentinels is older
than this."""
ROLL_MASTER_WAIT_SECONDS = 30
"""How long the rolling update waits for the Sentinels to name a master before it goes on in
the StatefulSet controller's order (highest ordinal first)."""
API_TIMEOUT_SECONDS = 10
"""Bound of every Kubernetes API request of the rolling update."""
REDIS_GONE_AFTER_MISSES = 2
"""Unanswered pings after which the Sentinel's preStop takes the Redis container as stopped."""


def failover_wait_seconds(settings: RedisSettings) -> int:
    """How long a master that restarted before the Sentinels noticed waits for them to
    promote a replica: detection, agreement and promotion, with margin."""
    budget = 3 * settings.down_after_milliseconds + settings.failover_timeout_milliseconds
    return budget // 1000 + 5


def handover_budget_seconds(settings: RedisSettings) -> int:
    """The master's preStop hand-over must end this many seconds after it starts."""
    return settings.termination_grace_period_seconds - HOOK_MARGIN_SECONDS


def promotable_wait_seconds(settings: RedisSettings) -> int:
    """Wait for a promotable preferred replica, leaving time for the failover itself."""
    return min(PROMOTABLE_WAIT_SECONDS, handover_budget_seconds(settings) - QUORUM_ANNOUNCE_SECONDS)


def peer_redis_port(tls: TlsSettings) -> int:
    """The Redis port pods, the proxy's checks and Sentinels use to reach a server."""
    return REDIS_TLS_PORT if tls.internal else REDIS_PORT


def peer_sentinel_port(tls: TlsSettings) -> int:
    """The Sentinel port pods and Sentinels use to reach each other."""
    return SENTINEL_TLS_PORT if tls.internal else SENTINEL_PORT


def sentinel_cpu_limit(settings: RedisSettings) -> Decimal:
    """The Sentinel container's CPU limit in cores."""
    limit = parse_quantity(settings.resources["sentinel"].cpu_limit)
    if limit is None:
        raise ValueError(f"not a CPU quantity: {settings.resources['sentinel'].cpu_limit}")
    return limit


def busy_cpu_ticks(settings: RedisSettings) -> int:
    """CPU time (clock ticks) over one check above which a Sentinel is busy: a share of its CPU
    limit, which a spinning Sentinel uses whole."""
    limit = sentinel_cpu_limit(settings)
    ticks = limit * CLOCK_TICKS_PER_SECOND * BUSY_CHECK_SECONDS * BUSY_SHARE_OF_LIMIT
    return int(ticks)


def busy_leader_wait_seconds(settings: RedisSettings) -> int:
    """How long a hand-over waits for a ready Sentinel that is not busy before a busy one may
    lead it: two thirds of its wait for a Sentinel ready to lead at all (10 s by default), so a
    busy one still leads in time. A restarted Sentinel spins for its first 10-15 s, until its
    busy-loop check resets it, and the others see a restarted replica again within seconds."""
    return promotable_wait_seconds(settings) * 2 // 3


def busy_leader_cpu_seconds(settings: RedisSettings) -> Decimal:
    """CPU time over ``LEADER_CPU_SAMPLE_SECONDS`` above which a Sentinel is too busy to lead a
    hand-over while another may: the same share of its CPU limit as a busy check's."""
    return sentinel_cpu_limit(settings) * LEADER_CPU_SAMPLE_SECONDS * BUSY_SHARE_OF_LIMIT


def roll_deadline_seconds(settings: RedisSettings) -> int:
    """How long a rolling update may take: each pod's graceful stop (its hand-over included)
    and its start, one pod after the other."""
    per_pod = settings.termination_grace_period_seconds + ROLL_POD_START_SECONDS
    return settings.replicas * per_pod


def pod_constants(settings: RedisSettings) -> dict[str, str]:
    """Name and value of every constant the scripts read, in the order they are written."""
    names = Names.of(settings)
    host_suffix = names.pod_host(0).removeprefix(f"{names.statefulset}-0")
    values: dict[str, object] = {
        "REDIS_PORT": peer_redis_port(settings.tls),
        "SENTINEL_PORT": peer_sentinel_port(settings.tls),
        "REDIS_LISTEN_PORT": REDIS_PORT if settings.tls.plain_ports_open else 0,
        "REDIS_LISTEN_TLS_PORT": REDIS_TLS_PORT if settings.tls.enabled else 0,
        "SENTINEL_LISTEN_PORT": SENTINEL_PORT if settings.tls.plain_ports_open else 0,
        "INTERNAL_TLS": int(settings.tls.internal),
        "TLS_DIR": TLS_MOUNT,
        "CERTIFICATE_RELOAD_POLL_SECONDS": CERTIFICATE_RELOAD_POLL_SECONDS,
        "SENTINEL_RESTART_STAGGER_SECONDS": SENTINEL_RESTART_STAGGER_SECONDS,
        "STATEFULSET": names.statefulset,
        "POD_HOST_SUFFIX": host_suffix,
        "REPLICAS": settings.replicas,
        "QUORUM": settings.sentinel_quorum,
        "MAJORITY": majority(settings.replicas),
        "MASTER_SET": settings.master_set_name,
        "SERVER_BIN": settings.server_engine.server,
        "SENTINEL_BIN": settings.server_engine.sentinel,
        "CLI_BIN": settings.server_engine.cli,
        "COORDINATED_FAILOVER": int(settings.coordinated_failover),
        "SERVER_BINS": " ".join(engine.server for engine in ENGINES.values()),
        "SENTINEL_BINS": " ".join(engine.sentinel for engine in ENGINES.values()),
        "CLI_BINS": " ".join(engine.cli for engine in ENGINES.values()),
        **credentials.constants(),
        "CONFIG_DIR": CONFIG_MOUNT,
        "DATA_DIR": f"{DATA_MOUNT}/redis",
        "SENTINEL_DIR": f"{DATA_MOUNT}/sentinel",
        "RUN_DIR": RUN_MOUNT,
        "REDIS_SOCKET": REDIS_SOCKET,
        "DEFAULT_REPLICA_PRIORITY": DEFAULT_REPLICA_PRIORITY,
        "LAST_CHOICE_REPLICA_PRIORITY": LAST_CHOICE_REPLICA_PRIORITY,
        "GRACE_SECONDS": settings.termination_grace_period_seconds,
        "HANDOVER_BUDGET_SECONDS": handover_budget_seconds(settings),
        "PROMOTABLE_WAIT_SECONDS": promotable_wait_seconds(settings),
        "QUORUM_ANNOUNCE_SECONDS": QUORUM_ANNOUNCE_SECONDS,
        "LEADER_CPU_SAMPLE_SECONDS": LEADER_CPU_SAMPLE_SECONDS,
        "BUSY_LEADER_CPU_SECONDS": busy_leader_cpu_seconds(settings),
        "BUSY_LEADER_WAIT_SECONDS": busy_leader_wait_seconds(settings),
        "WRITE_PAUSE_MILLISECONDS": settings.termination_grace_period_seconds * 1000,
        "REPLICA_ACK_MILLISECONDS": REPLICA_ACK_MILLISECONDS,
        "PROMOTABLE_MAX_PING_MILLISECONDS": PROMOTABLE_MAX_PING_MILLISECONDS,
        "LINKED_MAX_PING_MILLISECONDS": LINKED_MAX_PING_MILLISECONDS,
        "PROMOTABLE_MAX_INFO_AGE_MILLISECONDS": PROMOTABLE_MAX_INFO_AGE_MILLISECONDS,
        "SENTINEL_WAIT_SECONDS": SENTINEL_WAIT_SECONDS,
        "SENTINEL_INFO_PERIOD_MILLISECONDS": SENTINEL_INFO_PERIOD_MILLISECONDS,
        "SENTINEL_PING_PERIOD_MILLISECONDS": SENTINEL_PING_PERIOD_MILLISECONDS,
        "FAILOVER_WAIT_SECONDS": failover_wait_seconds(settings),
        "FORGET_CHECK_SECONDS": FORGET_CHECK_SECONDS,
        "BUSY_CHECK_SECONDS": BUSY_CHECK_SECONDS,
        "BUSY_CHECKS_IN_A_ROW": BUSY_CHECKS_IN_A_ROW,
        "BUSY_CPU_TICKS": busy_cpu_ticks(settings),
        "BUSY_MAX_COMMANDS": BUSY_MAX_COMMANDS_PER_SECOND * BUSY_CHECK_SECONDS,
        "COMMAND_TIMEOUT_SECONDS": COMMAND_TIMEOUT_SECONDS,
        "POLL_SECONDS": POLL_SECONDS,
        "FAST_POLL_SECONDS": FAST_POLL_SECONDS,
        "DEMOTION_POLL_SECONDS": DEMOTION_POLL_SECONDS,
        "STUCK_LEADER_SECONDS": STUCK_LEADER_SECONDS,
        "PROXY_NOTICE_SECONDS": PROXY_NOTICE_SECONDS,
        "REDIS_GONE_AFTER_MISSES": REDIS_GONE_AFTER_MISSES,
        "REVOKE_DEADLINE_SECONDS": REVOKE_DEADLINE_SECONDS,
        "ROLL_DIR": ROLL_DIR,
        "ROLL_DEADLINE_SECONDS": roll_deadline_seconds(settings),
        "ROLL_MASTER_MAX_AGE_SECONDS": ROLL_MASTER_MAX_AGE_SECONDS,
        "ROLL_MASTER_WAIT_SECONDS": ROLL_MASTER_WAIT_SECONDS,
        "API_TIMEOUT_SECONDS": API_TIMEOUT_SECONDS,
        "ROLL_SELECTOR": ",".join(f"{k}={v}" for k, v in selector_labels(names, "server").items()),
    }
    return {key: str(value) for key, value in values.items()}


def render_constants_sh(settings: RedisSettings) -> str:
    """``constants.sh``: POSIX sh assignments of :func:`pod_constants`, nothing else."""
    lines = [
        "# shellcheck shell=sh disable=SC2034",
        "# Generated by the Pulumi program (components/pod_constants.py); sourced by lib.sh.",
    ]
    lines += [f"{key}={shlex.quote(value)}" for key, value in pod_constants(settings).items()]
    return "\n".join(lines) + "\n"
