"""Scale 3 -> 5 -> 3: the Sentinels forget the removed pods, one at a time."""

from __future__ import annotations

import re

import redis

from .conftest import LoopbackFactory, local_settings
from .loopback import LoopbackSet, call


def _usable_sentinels(cluster: LoopbackSet) -> list[str]:
    replies = []
    for pod in cluster.running():
        try:
            replies.append(
                str(call(pod.sentinel(), "SENTINEL", "CKQUORUM", cluster.settings.master_set_name))
            )
        except redis.RedisError as error:
            replies.append(str(error))
    return replies


def test_scale_up_and_down_leaves_sentinels_counting_live_pods(loopback: LoopbackFactory) -> None:
    cluster = loopback()
    cluster.start()
    cluster.wait_healthy(60)

    five = local_settings(replicas=5)
    cluster.configure(five)
    cluster.revision = "rev-5"
    cluster.start([3, 4])
    cluster.rolling_update(five, revision="rev-5", timeout=120)
    cluster.wait_healthy(60, expected_pods=5)
    assert all("5 usable Sentinels" in reply for reply in _usable_sentinels(cluster))

    three = local_settings(replicas=3)
    cluster.configure(three)
    for ordinal in (4, 3):
        cluster.pod(ordinal).delete()
    cluster.rolling_update(three, revision="rev-3", timeout=120)

    def forgotten() -> bool:
        return all(
            pod.sentinel_knows(2) and not pod.sentinel_knows(3) for pod in cluster.running()
        ) and all("3 usable Sentinels" in reply for reply in _usable_sentinels(cluster))

    cluster.wait(forgotten, 120, "every Sentinel counts the 3 live pods only")
    resets = sorted(
        match.groups()
        for pod in cluster.running()
        for match in re.finditer(r"^(\S+) (\S+): .*SENTINEL RESET", pod.log("sentinel"), re.M)
    )
    # Pods restarted after the removed ones were gone drop them from their saved state; the
    # others reset themselves, never two in the same second.
    times = [stamp for stamp, _ in resets]
    assert len(set(times)) == len(times), f"resets must go one at a time: {resets}"
