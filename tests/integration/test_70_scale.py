"""Replicas 3 -> 5 -> 3 through pulumi up: the quorum follows, Sentinels forget removed pods.

The module's fixture runs the whole cycle once and records what it saw on the way, so each
test holds run alone or in any order.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest

from redistest.deployment import Deployed
from redistest.health import wait_healthy
from redistest.kube import Kube
from redistest.wait import wait_until

View = tuple[int, int, int]
"""(quorum, other Sentinels known, replicas known), as one pod's Sentinel sees them."""


def sentinel_counts(kube: Kube, pod: str) -> View:
    """(quorum, other Sentinels known, replicas known) as this pod's Sentinel sees them."""
    master = kube.sentinel(pod, "SENTINEL", "MASTER", "mymaster").split("\n")
    quorum = int(dict(zip(master[::2], master[1::2], strict=False))["quorum"])
    sentinels = kube.sentinel(pod, "SENTINEL", "SENTINELS", "mymaster").count("\nrunid\n")
    replicas = kube.sentinel(pod, "SENTINEL", "REPLICAS", "mymaster").count("\nrunid\n")
    return quorum, sentinels, replicas


def expected_view(replicas: int) -> View:
    return replicas // 2 + 1, replicas - 1, replicas - 1


def settled_views(kube: Kube, replicas: int, timeout: float = 90) -> dict[str, View]:
    """Each pod's view once its Sentinel counts ``replicas`` pods, or the last one seen when it
    has not within ``timeout`` seconds: the caller compares them with :func:`expected_view`."""
    views: dict[str, View] = {}
    for pod in kube.redis_pods():

        def settled(pod: str = pod) -> bool:
            views[pod] = sentinel_counts(kube, pod)
            return views[pod] == expected_view(replicas)

        with contextlib.suppress(AssertionError):
            wait_until(settled, timeout, f"{pod}'s Sentinel to see {replicas} pods")
    return views


@dataclass(frozen=True)
class Seen:
    """The release after ``pulumi up`` set the replica count and it became healthy."""

    pods: list[str]
    views: dict[str, View]
    sentinel_hosts: int
    preview_changes: dict[str, list[str]]


def scale(deployed: Deployed, replicas: int, settle: bool) -> Seen:
    """``pulumi up`` with ``replicas``; waits until healthy and, with ``settle``, until every
    Sentinel counts the new pods."""
    kube = deployed.kube
    deployed.up(replicas=str(replicas))
    wait_healthy(kube, replicas)
    pods = kube.redis_pods()
    views = (
        settled_views(kube, replicas)
        if settle
        else {pod: sentinel_counts(kube, pod) for pod in pods}
    )
    return Seen(pods, views, len(deployed.outputs["sentinel_hosts"]), deployed.preview_changes())


@pytest.fixture(scope="module")
def scaled(deployed: Deployed) -> tuple[Seen, Seen]:
    """Scales 3 -> 5 -> 3 once for the module: what was seen at 5, then back at 3. The
    Sentinels' forgetting of the removed pods is left for the test that checks it."""
    wait_healthy(deployed.kube, 3)
    try:
        up = scale(deployed, 5, settle=True)
        down = scale(deployed, 3, settle=False)
    except BaseException:
        # Later modules expect 3 replicas; the original error is what gets reported.
        with contextlib.suppress(Exception):
            deployed.up(replicas="3")
        raise
    return up, down


def test_scale_up_and_down(scaled: tuple[Seen, Seen]) -> None:
    up, down = scaled
    assert up.pods == [f"redis-{i}" for i in range(5)]
    assert up.views == dict.fromkeys(up.pods, expected_view(5)), "every Sentinel sees 5 pods"
    assert up.sentinel_hosts == 5
    assert up.preview_changes == {}

    assert down.pods == ["redis-0", "redis-1", "redis-2"]
    quorums = {pod: view[0] for pod, view in down.views.items()}
    assert quorums == dict.fromkeys(down.pods, 2), "the quorum follows the replica count"
    assert down.sentinel_hosts == 3
    assert down.preview_changes == {}


def test_sentinels_forget_removed_pods(deployed: Deployed, scaled: tuple[Seen, Seen]) -> None:
    """Each Sentinel resets itself, one at a time, once the removed pods' entries are down."""
    up, _ = scaled
    kube = deployed.kube
    knew = {pod: view[1:] for pod, view in up.views.items()}
    assert knew == dict.fromkeys(up.pods, (4, 4)), "at 5 replicas the Sentinels knew every pod"
    views = settled_views(kube, 3)
    assert views == dict.fromkeys(["redis-0", "redis-1", "redis-2"], expected_view(3)), views
    for pod in kube.redis_pods():
        assert kube.sentinel(pod, "SENTINEL", "CKQUORUM", "mymaster").startswith("OK"), pod
