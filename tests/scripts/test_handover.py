"""The master's preStop hand-over: target choice, writes kept, and when it cannot finish."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import pytest
import redis

from components.credentials import SENTINEL
from components.naming import REDIS_PORT
from components.pod_constants import (
    LAST_CHOICE_REPLICA_PRIORITY,
    busy_leader_cpu_seconds,
    busy_leader_wait_seconds,
)

from .conftest import LoopbackFactory
from .loopback import LoopbackSet, Pod, call
from .writer import Writer, lost_writes


def leading_pod(cluster: LoopbackSet, old: Pod) -> Pod | None:
    """The pod whose Sentinel leads the hand-over of ``old``'s hook, from the hook's log; None
    until the hook names it."""
    path = old.dir / "data" / "redis" / "last-shutdown.log"
    found = re.search(r"the Sentinel at (\S+) leads", path.read_text() if path.exists() else "")
    if found is None:
        return None
    if found.group(1) == "localhost":
        return old
    return cluster.pod(cluster.host_ordinal(found.group(1)))


def on_demotion(
    cluster: LoopbackSet, old: Pod, act: Callable[[Pod | None], None]
) -> threading.Thread:
    """A running thread that, the moment ``old`` stops being master (within 30 s), calls
    ``act`` with the pod whose Sentinel leads the hand-over (None when none is named yet)."""
    local = old.local_client()

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if local.info("replication")["role"] != "master":
                    act(leading_pod(cluster, old))
                    return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def seconds_between(log: str, first: str, then: str) -> int:
    """Seconds from the hook's line containing ``first`` to its line containing ``then``
    (the log's timestamps are whole seconds)."""
    stamps = {}
    for line in log.splitlines():
        for text in (first, then):
            if text in line and text not in stamps:
                stamps[text] = datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
    assert len(stamps) == 2, log
    return int((stamps[then] - stamps[first]).total_seconds())


@pytest.mark.every_engine
def test_handover_goes_to_the_lowest_ordinal_and_keeps_every_confirmed_write(
    loopback: LoopbackFactory,
) -> None:
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        hooks = old.delete()
        new = cluster.wait_healthy(30, expected_pods=2)
        writer.wait_confirmed(200)
    assert new.ordinal == 1, "no replica on a newer revision: the lowest ordinal is preferred"
    assert hooks["redis"] < cluster.settings.termination_grace_period_seconds
    assert writer.result.readonly_errors == 0
    assert lost_writes(cluster, "w", writer.result.confirmed) == []
    shutdown_log = (old.dir / "data" / "redis" / "last-shutdown.log").read_text()
    assert "is master now, named by a quorum of Sentinels" in shutdown_log, shutdown_log
    coordinated = cluster.settings.coordinated_failover
    assert f"(coordinated: {int(coordinated)}): OK" in shutdown_log, shutdown_log
    # The coordinated failover itself handed over: not the plain one after it timed out (what
    # a Sentinel user refused a command of the coordinated failover, such as CLIENT PAUSE, gets).
    assert "ended without a new master" not in shutdown_log, shutdown_log
    # The Sentinel leading the hand-over is the one in the deleted pod, the case in which
    # Valkey 9.1.0's Sentinels crashed (valkey-io/valkey#4066).
    for pod in cluster.pods.values():
        assert "crashed by signal" not in pod.log("sentinel"), pod.name


@pytest.mark.every_engine
def test_handover_prefers_a_replica_already_on_the_new_revision(loopback: LoopbackFactory) -> None:
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    updated = cluster.pod(2)
    updated.delete()
    updated.revision = "rev-2"
    updated.start()
    cluster.wait_healthy(60)
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        old.delete()
        new = cluster.wait_healthy(30, expected_pods=2)
        writer.wait_confirmed(200)
    assert new is updated, "the replica on the new revision is preferred over the lowest ordinal"
    assert lost_writes(cluster, "w", writer.result.confirmed) == []


def test_handover_when_the_preferred_replica_is_hung(loopback: LoopbackFactory) -> None:
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    preferred = cluster.pod(1)
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        preferred.signal("redis", signal.SIGSTOP)
        try:
            old.delete()
            cluster.wait(
                lambda: cluster.pod(2).role() == "master", 40, "the other replica takes over"
            )
        finally:
            preferred.signal("redis", signal.SIGCONT)
        new = cluster.wait_healthy(40, expected_pods=2)
        writer.wait_confirmed(200)
    assert new.ordinal == 2
    assert lost_writes(cluster, "w", writer.result.confirmed) == []


@pytest.mark.every_engine
def test_handover_cut_short_by_the_grace_period_keeps_writes_paused(
    loopback: LoopbackFactory,
) -> None:
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    replicas = [pod for pod in cluster.running() if pod is not old]
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        for pod in replicas:
            pod.signal("sentinel", signal.SIGSTOP)
        try:
            hooks = old.delete()
        finally:
            for pod in replicas:
                pod.signal("sentinel", signal.SIGCONT)
        new = cluster.wait_healthy(60, expected_pods=2)
        writer.wait_confirmed(200)
    grace = cluster.settings.termination_grace_period_seconds
    assert hooks["redis"] >= grace - 6, "no quorum to fail over: the hook uses its whole budget"
    assert new is not old
    assert lost_writes(cluster, "w", writer.result.confirmed) == []


def test_an_application_let_in_while_the_port_is_reopened_never_meets_readonly(
    loopback: LoopbackFactory,
) -> None:
    """The hook reopens the port when a Sentinel lost its link before the demotion, and an
    application can get in then: its writes wait in the failover's pause, and the demotion
    closes its connection instead of answering them READONLY."""
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    local = old.local_client()
    replies: Counter[str] = Counter()
    done = threading.Event()

    def cut_sentinel_links() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not done.is_set():
            with contextlib.suppress(redis.RedisError):
                if local.config_get("port")["port"] == "0":
                    local.client_kill_filter(user=SENTINEL.redis_user)
                    return
            time.sleep(0.01)

    def write_directly() -> None:
        while not done.is_set():
            try:
                client = old.app_client()
                while not done.is_set():
                    client.set("direct", 1)
                    replies["OK"] += 1
            except redis.ReadOnlyError:
                replies["READONLY"] += 1
            except redis.RedisError as error:
                replies[type(error).__name__] += 1
                time.sleep(0.01)

    threads = [
        threading.Thread(target=f, daemon=True) for f in (cut_sentinel_links, write_directly)
    ]
    for thread in threads:
        thread.start()
    try:
        old.delete()
        cluster.wait_healthy(30, expected_pods=2)
    finally:
        done.set()
        for thread in threads:
            thread.join(10)
    shutdown_log = (old.dir / "data" / "redis" / "last-shutdown.log").read_text()
    assert "port open again" in shutdown_log, shutdown_log
    assert replies["OK"] > 0 and replies["READONLY"] == 0, replies


def test_a_handover_the_leading_sentinel_did_not_announce_is_seen_through(
    loopback: LoopbackFactory,
) -> None:
    """FAILOVER TO has made the old master a replica of the promoted one, but the Sentinel
    leading the coordinated failover stops before it tells its peers (elsewhere it ended the
    failover before it saw the promotion): the peers still name the old master. The hook has a
    peer fail over to the promoted server, so the Sentinels name the server that took the
    writes, and none of them is lost."""
    cluster = loopback()
    assert cluster.settings.coordinated_failover, "the default engine hands over coordinated"
    cluster.start()
    old = cluster.wait_healthy(60)
    shutdown_log_path = old.dir / "data" / "redis" / "last-shutdown.log"
    demoted = threading.Event()
    stopped: list[Pod] = []

    def stop_leader(leader: Pod | None) -> None:
        if leader is not None:
            leader.signal("sentinel", signal.SIGSTOP)
            stopped.append(leader)
        demoted.set()

    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        on_demotion(cluster, old, stop_leader)
        deletion = threading.Thread(target=old.delete, daemon=True)
        try:
            deletion.start()
            cluster.wait(demoted.is_set, 30, "the old master is demoted")
            cluster.wait(
                lambda: not old.containers["redis"].running(), 40, "the old master's hook ends"
            )
        finally:
            for pod in stopped:
                pod.signal("sentinel", signal.SIGCONT)
            deletion.join(40)
        new = cluster.wait_healthy(30, expected_pods=2)
        writer.wait_confirmed(200)
    shutdown_log = shutdown_log_path.read_text()
    assert stopped, f"no Sentinel led the coordinated failover:\n{shutdown_log}"
    assert "but the Sentinels name" in shutdown_log, shutdown_log
    # Ended by the quorum naming the new master, not by its budget; how soon depends on the
    # stopped Sentinel's 3 s command timeouts and on the machine's load (24.8 s of a 25 s
    # budget once under six parallel cases), so no duration is asserted.
    assert "is master now, named by a quorum of Sentinels" in shutdown_log, shutdown_log
    assert "no new master named by a quorum in time" not in shutdown_log, shutdown_log
    assert new.ordinal == 1, "the server FAILOVER TO promoted stays master"
    assert writer.result.readonly_errors == 0
    assert lost_writes(cluster, "w", writer.result.confirmed) == []


def test_a_handover_whose_leading_sentinel_enters_tilt_is_seen_through(
    loopback: LoopbackFactory,
) -> None:
    """FAILOVER TO has made the old master a replica of the promoted one, and the Sentinel
    leading the coordinated failover enters TILT (a timer late by over 2 s, seen during rolls):
    for 30 s it answers but acts on nothing, its failover stuck in wait_promotion, naming the
    old master still, as its peers do. The hook has another Sentinel fail over to the promoted
    server, so the Sentinels name the server that took the writes, and none of them is lost."""
    cluster = loopback()
    assert cluster.settings.coordinated_failover, "the default engine hands over coordinated"
    cluster.start()
    old = cluster.wait_healthy(60)
    shutdown_log_path = old.dir / "data" / "redis" / "last-shutdown.log"
    tilted: list[Pod] = []

    def tilt_leader(leader: Pod | None) -> None:
        if leader is None:
            return
        sentinel = leader.sentinel()
        # Every timer tick is late by more than 1 ms: TILT at the next one.
        call(sentinel, "SENTINEL", "DEBUG", "tilt-trigger", 1)
        cluster.wait(lambda: sentinel.info("sentinel")["sentinel_tilt"] == 1, 5, "TILT")
        call(sentinel, "SENTINEL", "DEBUG", "tilt-trigger", 2000)
        tilted.append(leader)

    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        tilter = on_demotion(cluster, old, tilt_leader)
        old.delete()
        tilter.join(30)
        new = cluster.wait_healthy(30, expected_pods=2)
        writer.wait_confirmed(200)
    shutdown_log = shutdown_log_path.read_text()
    assert tilted, f"no Sentinel led the coordinated failover:\n{shutdown_log}"
    assert "but the Sentinels name" in shutdown_log, shutdown_log
    # Left alone, the peers fail the demoted master over themselves once their failover delay
    # (twice failover-timeout after their vote) has passed: 20 s.
    assert seconds_between(shutdown_log, "SENTINEL FAILOVER (coordinated", "is master now") < 15
    assert new.ordinal == 1, "the server FAILOVER TO promoted stays master"
    assert writer.result.readonly_errors == 0
    assert lost_writes(cluster, "w", writer.result.confirmed) == []


def test_a_handover_whose_target_the_old_master_cannot_reach_is_seen_through(
    loopback: LoopbackFactory,
) -> None:
    """FAILOVER TO demotes the old master, then connects to the target with the request that
    promotes it; here every new connection to the target's port is refused, as it was while TLS
    went TLS-only (the NetworkPolicy closed the plain port before the pods of the previous spec
    had gone: 10 s of "Connection refused" from the old master, whose Sentinels' links to the
    target were established). Nothing promotes the target, the leader waits in wait_promotion
    and then reports the old master disconnected. The hook has another Sentinel fail over to
    the target, which holds every write (FAILOVER TO demotes only once it is in sync), over the
    Sentinels' links that stay up."""
    cluster = loopback()
    assert cluster.settings.coordinated_failover, "the default engine hands over coordinated"
    cluster.start()
    old = cluster.wait_healthy(60)
    target = cluster.pod(1)
    shutdown_log_path = old.dir / "data" / "redis" / "last-shutdown.log"
    refused = threading.Event()

    def refuse_until_named() -> None:
        cluster.wait(lambda: leading_pod(cluster, old) is not None, 30, "the hook chose its leader")
        with cluster.refuse_new_connections(target.ordinal, REDIS_PORT):
            refused.set()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                named = [pod.named_master() for pod in cluster.running() if pod is not old]
                if named.count(target.host) >= cluster.settings.sentinel_quorum:
                    return
                time.sleep(0.1)

    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        refuser = threading.Thread(target=refuse_until_named, daemon=True)
        refuser.start()
        old.delete()
        refuser.join(30)
        new = cluster.wait_healthy(30, expected_pods=2)
        writer.wait_confirmed(200)
    shutdown_log = shutdown_log_path.read_text()
    assert refused.is_set(), shutdown_log
    assert "but the Sentinels name" in shutdown_log, shutdown_log
    # Left alone, the leader's failover times out (10 s) and the peers fail over by themselves
    # after their failover delay (twice failover-timeout after their vote): 20 s.
    assert seconds_between(shutdown_log, "SENTINEL FAILOVER (coordinated", "is master now") < 12
    assert new.ordinal == target.ordinal, "the target of FAILOVER TO becomes master"
    assert writer.result.readonly_errors == 0
    assert lost_writes(cluster, "w", writer.result.confirmed) == []


def test_a_peer_sentinel_leads_the_handover_when_the_local_one_hangs(
    loopback: LoopbackFactory,
) -> None:
    """The master's own Sentinel cannot run the hand-over (hung here; elsewhere in TILT, blind
    to a restarted replica, or speaking plain to replicas that closed their plain ports): a
    peer's Sentinel that sees the preferred replica leads it, and nothing waits for a crash
    failover."""
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    hooks: dict[str, float] = {}
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        old.signal("sentinel", signal.SIGSTOP)
        deletion = threading.Thread(target=lambda: hooks.update(old.delete()), daemon=True)
        try:
            deletion.start()
            cluster.wait(
                lambda: not old.containers["redis"].running(), 40, "the old master's hook ends"
            )
        finally:
            old.signal("sentinel", signal.SIGCONT)
            deletion.join(40)
        new = cluster.wait_healthy(30, expected_pods=2)
        writer.wait_confirmed(200)
    shutdown_log = (old.dir / "data" / "redis" / "last-shutdown.log").read_text()
    assert "leads the hand-over" in shutdown_log, shutdown_log
    assert "the Sentinel at localhost leads" not in shutdown_log, shutdown_log
    assert "is master now, named by a quorum of Sentinels" in shutdown_log, shutdown_log
    assert hooks["redis"] < cluster.settings.termination_grace_period_seconds - 6, hooks
    assert new.ordinal == 1, "the peer promotes the preferred replica, the lowest ordinal"
    assert writer.result.readonly_errors == 0
    assert lost_writes(cluster, "w", writer.result.confirmed) == []


def keep_busy(pod: Pod, stop: threading.Event) -> None:
    """Keeps ``pod``'s Sentinel at work until ``stop``: PINGs in batches of 10,000 over a raw
    connection, the replies read in bulk and not parsed, so the client costs next to nothing
    and the Sentinel's CPU time grows as a spinning one's does."""
    login = pod.sentinel().connection_pool.connection_kwargs
    user, password = str(login["username"]), str(login["password"])
    auth = f"*3\r\n$4\r\nAUTH\r\n${len(user)}\r\n{user}\r\n${len(password)}\r\n{password}\r\n"
    batch, reply = b"PING\r\n" * 10_000, b"+PONG\r\n"
    link = socket.create_connection((login["host"], login["port"]), timeout=5)
    # The Sentinel goes with its pod: its connection then breaks, which ends the flood.
    with link, contextlib.suppress(OSError):
        link.sendall(auth.encode())
        assert link.recv(64).startswith(b"+OK"), "AUTH on the Sentinel"
        while not stop.is_set():
            link.sendall(batch)
            expected = len(reply) * 10_000
            while expected > 0:
                received = link.recv(1 << 16)
                if not received:
                    return
                expected -= len(received)


def knows_priority(observer: Pod, replica: Pod, priority: int) -> bool:
    """``observer``'s Sentinel lists ``replica`` with that ``replica-priority``."""
    cluster = observer.owner
    try:
        name = cluster.settings.master_set_name
        entries = call(observer.sentinel(), "SENTINEL", "REPLICAS", name)
    except redis.RedisError:
        return False
    for entry in entries:
        if isinstance(entry, dict):
            fields = entry
        else:
            fields = dict(zip(entry[::2], entry[1::2], strict=False))
        if cluster.host_ordinal(str(fields["ip"])) == replica.ordinal:
            return int(fields["slave-priority"]) == priority
    return False


def test_a_busy_sentinel_leads_the_handover_only_when_no_idle_one_is_ready(
    loopback: LoopbackFactory,
) -> None:
    """The master's own Sentinel is busy (as a restarted Sentinel spins at its CPU limit, which
    throttles it): a peer's Sentinel that is ready and idle leads the hand-over instead, and the
    hook's log gives the CPU time each used. Without the check, the master's own Sentinel, ready
    too and asked first, leads."""
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    threshold = float(busy_leader_cpu_seconds(cluster.settings))
    stop = threading.Event()
    flooders = [threading.Thread(target=keep_busy, args=(old, stop), daemon=True) for _ in range(2)]
    # Every Sentinel already knows the replica the hook will make last choice, as a Sentinel
    # that has run for a while would: that way only its CPU time can keep the master's own
    # Sentinel from leading (a flooded one refreshes its view late).
    last_choice = cluster.pod(2)
    priority = LAST_CHOICE_REPLICA_PRIORITY
    call(last_choice.local_client(), "CONFIG", "SET", "replica-priority", priority)
    cluster.wait(
        lambda: all(knows_priority(pod, last_choice, priority) for pod in cluster.running()),
        30,
        "every Sentinel knows the last-choice replica",
    )
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        for flooder in flooders:
            flooder.start()
        try:
            hooks = old.delete()
        finally:
            stop.set()
        new = cluster.wait_healthy(30, expected_pods=2)
        writer.wait_confirmed(200)
    shutdown_log = (old.dir / "data" / "redis" / "last-shutdown.log").read_text()
    leader = re.search(r"the Sentinel at (\S+) leads the hand-over: it (.*)", shutdown_log)
    assert leader is not None, shutdown_log
    assert leader.group(1) != "localhost", shutdown_log
    used_by_leader = re.search(r"used ([\d.e+-]+) s of CPU", leader.group(2))
    used_by_local = re.search(r"localhost [^;]*used ([\d.e+-]+) s of CPU", leader.group(2))
    assert used_by_leader and used_by_local, shutdown_log
    assert float(used_by_leader.group(1)) <= threshold < float(used_by_local.group(1)), shutdown_log
    assert "is master now, named by a quorum of Sentinels" in shutdown_log, shutdown_log
    assert hooks["redis"] < busy_leader_wait_seconds(cluster.settings) + 10, hooks
    assert new.ordinal == 1
    assert writer.result.readonly_errors == 0
    assert lost_writes(cluster, "w", writer.result.confirmed) == []
