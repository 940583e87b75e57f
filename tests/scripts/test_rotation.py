"""Password rotation: pods on two generations keep replication and Sentinel working."""

from __future__ import annotations

from components.workload import PASSWORD_KEY, PREVIOUS_PASSWORD_KEY
from tests.harness import FAKE_PASSWORD

from .conftest import LoopbackFactory
from .writer import Writer, lost_writes

NEW_PASSWORD = "Rotated-Pa55word!*+_for.tests~9876543210zy"


def test_rotation_hand_off_between_generations(loopback: LoopbackFactory) -> None:
    cluster = loopback()
    cluster.start()
    cluster.wait_healthy(60)
    with Writer(cluster, password=FAKE_PASSWORD) as writer:
        writer.wait_confirmed(300)
        cluster.rolling_update(
            revision="rev-2",
            secret={PASSWORD_KEY: NEW_PASSWORD, PREVIOUS_PASSWORD_KEY: FAKE_PASSWORD},
        )
        writer.wait_confirmed(200)
    assert lost_writes(cluster, "w", writer.result.confirmed) == []
    for pod in cluster.running():
        assert pod.app_client(NEW_PASSWORD).ping()
        assert pod.app_client(FAKE_PASSWORD).ping(), "the previous password stays valid"
        assert pod.app_sentinel(NEW_PASSWORD).ping()
