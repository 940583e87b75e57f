"""A pod whose volume is empty while the Sentinels name it master never serves that emptiness."""

from __future__ import annotations

import pytest

from .conftest import LoopbackFactory
from .writer import Writer, lost_writes


@pytest.mark.parametrize("ordinal", [0, 1, 2])
def test_wiped_master_is_refused_and_rejoins_as_replica(
    loopback: LoopbackFactory, ordinal: int
) -> None:
    cluster = loopback()
    cluster.start()
    master = cluster.wait_healthy(60)
    while master.ordinal != ordinal:
        # Hand the master role over until it sits on the ordinal under test.
        for pod in cluster.running():
            if pod.ordinal not in (ordinal, master.ordinal):
                pod.client().config_set("replica-priority", 0)
        master.delete()
        master.start()
        master = cluster.wait_healthy(60)
        for pod in cluster.running():
            pod.client().config_set("replica-priority", 100)
    assert master.ordinal == ordinal
    with Writer(cluster) as writer:
        writer.wait_confirmed(300)
    confirmed = writer.result.confirmed

    master.kill()
    master.wipe_data()
    wiped_at = len(master.log())
    master.start()
    final = cluster.wait_healthy(90)
    after_wipe = master.log()[wiped_at:]
    assert "starting as master" not in after_wipe, after_wipe
    assert final is not master and master.role() == "slave"
    assert lost_writes(cluster, "w", confirmed) == []
