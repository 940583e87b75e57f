"""Replicas 3 -> 5 -> 3 through pulumi up: the quorum follows, Sentinels forget removed pods."""

from __future__ import annotations

from .deployment import Deployed
from .health import wait_healthy
from .kube import Kube


def sentinel_counts(kube: Kube, pod: str) -> tuple[int, int, int]:
    """(quorum, other Sentinels known, replicas known) as this pod's Sentinel sees them."""
    master = kube.sentinel(pod, "SENTINEL", "MASTER", "mymaster").split("\n")
    quorum = int(dict(zip(master[::2], master[1::2], strict=False))["quorum"])
    sentinels = kube.sentinel(pod, "SENTINEL", "SENTINELS", "mymaster").count("\nrunid\n")
    replicas = kube.sentinel(pod, "SENTINEL", "REPLICAS", "mymaster").count("\nrunid\n")
    return quorum, sentinels, replicas


def expect_view(kube: Kube, replicas: int) -> None:
    quorum = replicas // 2 + 1
    for pod in kube.redis_pods():
        kube.wait_for(
            f"{pod}'s Sentinel to see {replicas} pods",
            lambda pod=pod: sentinel_counts(kube, pod) == (quorum, replicas - 1, replicas - 1),
            timeout=90,
        )


def test_scale_up_and_down(deployed: Deployed, client: Kube) -> None:
    kube = deployed.kube
    deployed.up(replicas="5")
    wait_healthy(kube, 5)
    expect_view(kube, 5)
    assert len(deployed.outputs["sentinel_hosts"]) == 5
    assert deployed.preview_changes() == {}

    deployed.up(replicas="3")
    wait_healthy(kube, 3)
    assert kube.redis_pods() == ["redis-0", "redis-1", "redis-2"]
    for pod in kube.redis_pods():
        assert sentinel_counts(kube, pod)[0] == 2, "the quorum follows the replica count"
    assert len(deployed.outputs["sentinel_hosts"]) == 3
    assert deployed.preview_changes() == {}


def test_sentinels_forget_removed_pods(deployed: Deployed) -> None:
    """Each Sentinel resets itself, one at a time, once the removed pods' entries are down."""
    expect_view(deployed.kube, 3)
    for pod in deployed.kube.redis_pods():
        assert deployed.kube.sentinel(pod, "SENTINEL", "CKQUORUM", "mymaster").startswith("OK")
