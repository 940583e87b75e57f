"""Start-up: first start, restarts of one pod, and full restarts in every order."""

from __future__ import annotations

import itertools
import signal
import time

import pytest

from components.pod_constants import (
    SENTINEL_INFO_PERIOD_MILLISECONDS,
    SENTINEL_PING_PERIOD_MILLISECONDS,
)

from .conftest import LoopbackFactory
from .loopback import Pod, call
from .writer import Writer, lost_writes


@pytest.mark.every_engine
def test_first_start_makes_ordinal_0_master(loopback: LoopbackFactory) -> None:
    cluster = loopback()
    cluster.start()
    master = cluster.wait_healthy(60)
    assert master.ordinal == 0
    for pod in cluster.running():
        if pod is not master:
            info = pod.client().info("replication")
            assert info["role"] == "slave" and info["master_host"] == master.host
    assert all(p.named_master() == master.host for p in cluster.running())


@pytest.mark.every_engine
def test_every_sentinel_asks_for_info_every_second_and_pings_four_times_a_second(
    loopback: LoopbackFactory,
) -> None:
    """The INFO and PING periods are run-time settings (``SENTINEL DEBUG``): every start of a
    Sentinel sets them, restarts included."""
    cluster = loopback()
    cluster.start()
    cluster.wait_healthy(60)
    restarted = cluster.pod(1)
    restarted.crash("sentinel")
    cluster.wait(lambda: restarted.sentinel_knows(2), 60, "the restarted Sentinel is back")

    def periods(pod: Pod) -> tuple[int, int]:
        reply = call(pod.sentinel(), "SENTINEL", "DEBUG")
        settings = (
            reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
        )
        return int(settings["INFO-PERIOD"]), int(settings["PING-PERIOD"])

    cluster.wait(
        lambda: all(
            periods(pod) == (SENTINEL_INFO_PERIOD_MILLISECONDS, SENTINEL_PING_PERIOD_MILLISECONDS)
            for pod in cluster.running()
        ),
        20,
        "INFO every 1 s, PING every 250 ms",
    )


def test_replica_restart_rejoins_as_replica(loopback: LoopbackFactory) -> None:
    cluster = loopback()
    cluster.start()
    cluster.wait_healthy(60)
    with Writer(cluster) as writer:
        writer.wait_confirmed(200)
        cluster.pod(2).crash("redis")
        cluster.wait(lambda: cluster.pod(2).containers["redis"].starts == 2, 10, "pod 2 restarted")
        master = cluster.wait_healthy(30)
        writer.wait_confirmed(200)
    result = writer.result
    assert master.ordinal == 0 and cluster.pod(2).role() == "slave"
    assert lost_writes(cluster, "w", result.confirmed) == []


@pytest.mark.every_engine
def test_master_restarting_before_the_sentinels_notice_lets_them_fail_over(
    loopback: LoopbackFactory,
) -> None:
    cluster = loopback()
    cluster.start()
    cluster.wait_healthy(60)
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
        cluster.pod(0).crash("redis")
        master = cluster.wait_healthy(45)
        writer.wait_confirmed(200)
    assert master.ordinal != 0, "the restarted master must not wipe its replicas"
    assert "waiting for the failover" in cluster.pod(0).log()
    assert cluster.pod(0).role() == "slave"
    assert lost_writes(cluster, "w", writer.result.confirmed) == []


def _hang_master(loopback: LoopbackFactory, acks: int) -> tuple[list[int], list[int]]:
    """SIGSTOP of the master for longer than down-after, then SIGCONT; returns the confirmed
    writes and those of them the final master lacks."""
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    down_after = cluster.settings.down_after_milliseconds / 1000
    with Writer(cluster, acks=acks) as writer:
        writer.wait_confirmed(300)
        old.signal("redis", signal.SIGSTOP)
        try:
            cluster.wait(
                lambda: any(p.named_master() not in (None, old.host) for p in cluster.running()),
                down_after + 15,
                "the Sentinels promote a replica of the hung master",
            )
        finally:
            old.signal("redis", signal.SIGCONT)
        master = cluster.wait_healthy(30)
        writer.wait_confirmed(200)
    assert master is not old and old.role() == "slave", "the resumed master must be a replica"
    confirmed = writer.result.confirmed
    return confirmed, lost_writes(cluster, "w", confirmed)


@pytest.mark.every_engine
def test_hung_master_comes_back_as_replica_and_loses_no_write_every_replica_confirmed(
    loopback: LoopbackFactory,
) -> None:
    confirmed, lost = _hang_master(loopback, acks=2)
    assert confirmed and lost == []


@pytest.mark.xfail(
    reason="open defect found by this harness: Sentinel picks the replica to promote by the "
    "offsets of its last INFO of each (refreshed every 10 s until the master is objectively "
    "down), so it may promote the replica that is a few writes behind the other; writes that "
    "WAIT 1 confirmed on the other one are then lost (seen: 26 writes, 'Partial "
    "resynchronization not accepted: Requested offset ... 52899, but I can reply up to 31169')",
    strict=False,
)
def test_hung_master_loses_no_write_one_replica_confirmed(loopback: LoopbackFactory) -> None:
    confirmed, lost = _hang_master(loopback, acks=1)
    assert confirmed and lost == []


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
def test_full_restart_in_any_order_keeps_the_latest_master(
    loopback: LoopbackFactory, order: tuple[int, ...]
) -> None:
    cluster = loopback()
    cluster.start()
    cluster.wait_healthy(60)
    # Move the master off ordinal 0 first, so the latest data is not where a first start goes.
    cluster.pod(0).delete()
    cluster.pod(0).start()
    master = cluster.wait_healthy(60)
    assert master.ordinal != 0
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
    confirmed = writer.result.confirmed
    time.sleep(1.1)  # appendfsync everysec: what the master acknowledged is on its disk now
    for pod in cluster.running():
        pod.kill()
    cluster.start(list(order), pause=1.0)
    final = cluster.wait_healthy(90)
    assert len(cluster.masters()) == 1
    assert lost_writes(cluster, "w", confirmed) == []
    assert final.client().dbsize() >= len(confirmed)
