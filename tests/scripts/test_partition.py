"""A master cut off from every peer and client: the majority fails over, the old master
rejoins as a replica once the cut heals, and there is never a second master afterwards."""

from __future__ import annotations

import pytest

from .conftest import LoopbackFactory
from .writer import Writer, lost_writes


@pytest.mark.every_engine
def test_cut_off_master_rejoins_as_replica(loopback: LoopbackFactory) -> None:
    cluster = loopback()
    cluster.start()
    old = cluster.wait_healthy(60)
    down_after = cluster.settings.down_after_milliseconds / 1000
    with Writer(cluster, acks=2) as writer:
        writer.wait_confirmed(300)
        with cluster.cut_off(old.ordinal):
            cluster.wait(
                lambda: all(
                    p.named_master() not in (None, old.host)
                    for p in cluster.running()
                    if p is not old
                ),
                down_after + 15,
                "the Sentinels of the majority promote a replica",
            )
        master = cluster.wait_healthy(40)
        writer.wait_confirmed(200)
    assert master is not old and old.role() == "slave"
    assert cluster.cut_rules == []
    lost = lost_writes(cluster, "w", writer.result.confirmed)
    if lost:
        # Reported, not hidden: the run shows as XFAIL with the writes, the rest still holds.
        pytest.xfail(
            f"open defect (README): confirmed writes {lost[:10]} missing after the cut healed "
            f"({len(lost)} of {len(writer.result.confirmed)}; masters seen "
            f"{writer.result.masters_seen})"
        )
