"""What "healthy" means for the release, checked from inside its pods."""

from __future__ import annotations

import subprocess
import threading
import time

from .kube import Kube
from .wait import wait_until


def pods_ready(kube: Kube) -> list[str]:
    pods = kube.json("get", "pods", "-l", "app.kubernetes.io/component=server")["items"]
    ready = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        if conditions.get("Ready") == "True":
            ready.append(pod["metadata"]["name"])
    return sorted(ready)


def restarted_pods(kube: Kube) -> list[str]:
    """Server pods with a container that has restarted (the kubelet delays each further start
    of such a container, doubling from 10 s up to 5 minutes, until it has run for 10 minutes)."""
    pods = kube.json("get", "pods", "-l", "app.kubernetes.io/component=server")["items"]
    return sorted(
        pod["metadata"]["name"]
        for pod in pods
        if any(
            status.get("restartCount", 0) > 0
            for status in pod["status"].get("containerStatuses", [])
        )
    )


def sentinel_masters(kube: Kube, pods: list[str]) -> dict[str, str]:
    """Each pod's Sentinel answer to GET-MASTER-ADDR-BY-NAME (host only)."""
    views = {}
    for pod in pods:
        reply = kube.sentinel(pod, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster").split()
        views[pod] = reply[0] if reply else ""
    return views


def masters_by_role(kube: Kube, pods: list[str]) -> list[str]:
    """Pods whose Redis reports role:master."""
    return [p for p in pods if "role:master" in kube.redis(p, "INFO", "replication")]


def healthy(kube: Kube, replicas: int) -> str | None:
    """The master's pod name when the release is fully healthy, else None."""
    ready = pods_ready(kube)
    if len(ready) != replicas:
        return None
    views = set(sentinel_masters(kube, ready).values())
    if len(views) != 1 or "" in views:
        return None
    (host,) = views
    master_pod = host.split(".", 1)[0]
    if masters_by_role(kube, ready) != [master_pod]:
        return None
    info = kube.redis(master_pod, "INFO", "replication")
    if f"connected_slaves:{replicas - 1}" not in info:
        return None
    for pod in ready:
        if not kube.sentinel(pod, "SENTINEL", "CKQUORUM", "mymaster").startswith("OK"):
            return None
    return master_pod


def wait_healthy(kube: Kube, replicas: int = 3, timeout: float = 240) -> str:
    """Waits until exactly one master, agreed by every Sentinel, has all its replicas."""
    master: str = wait_until(
        lambda: healthy(kube, replicas), timeout, f"{replicas} ready pods with one agreed master"
    )
    return master


def config_epoch(kube: Kube, pod: str) -> int:
    """The Sentinel config epoch of the master: it grows by one per failover or switchover."""
    reply = kube.sentinel(pod, "SENTINEL", "MASTER", "mymaster").split("\n")
    fields = dict(zip(reply[::2], reply[1::2], strict=False))
    return int(fields["config-epoch"])


SENTINEL_CPU = r"""
. /scripts/lib.sh || exit 1
before=$(cpu_ticks 1)
sleep "$BUSY_CHECK_SECONDS"
echo "$(($(cpu_ticks 1) - before)) $BUSY_CPU_TICKS"
"""
"""The CPU time (clock ticks) the Sentinel, its container's first process, uses over one busy
check of the pod's scripts (lib.sh's ``cpu_ticks``, as the pod's own check measures it), and
the busy threshold for that time. Run with ``$0`` in ``/scripts``, where lib.sh finds
constants.sh."""


def spinning_sentinels(kube: Kube) -> dict[str, int]:
    """The pods whose Sentinel used more CPU than the pod scripts' busy threshold over one busy
    check (measured in every pod at once), with the clock ticks it used."""
    pods = kube.redis_pods()
    samples: dict[str, str] = {}
    failures: dict[str, str] = {}

    def sample(pod: str) -> None:
        try:
            samples[pod] = kube.exec(
                pod, "sentinel", "sh", "-c", SENTINEL_CPU, "/scripts/sentinel-cpu", timeout=30
            )
        except (AssertionError, subprocess.TimeoutExpired) as error:
            failures[pod] = str(error)

    threads = [threading.Thread(target=sample, args=(pod,)) for pod in pods]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, f"could not sample the Sentinels' CPU time: {failures}"
    spinning = {}
    for pod, reply in samples.items():
        used, threshold = (int(n) for n in reply.split())
        if used > threshold:
            spinning[pod] = used
    return spinning


def wait_no_sentinel_spins(kube: Kube, timeout: float = 90) -> None:
    """Waits until no Sentinel spins (the pod scripts cure a spin within about 15 s of its
    start); fails with the spinning ones and their clock ticks."""

    def calm() -> bool:
        spinning = spinning_sentinels(kube)
        assert not spinning, f"Sentinel CPU ticks over a busy check: {spinning}"
        return True

    wait_until(calm, timeout=timeout, message="no Sentinel spinning at its CPU limit")


PRIORITY_REFRESH_SECONDS = 2
"""Time for every Sentinel's next INFO of each replica (once a second) to see its priority."""


def move_master_to(kube: Kube, target: str, timeout: float = 120) -> None:
    """Makes ``target`` the master before a measurement: a Sentinel failover while every other
    server has ``replica-priority 0`` (never promoted), which then gets its own value back."""
    others = [pod for pod in kube.redis_pods() if pod != target]
    saved = {
        pod: kube.redis(pod, "CONFIG", "GET", "replica-priority").split()[-1] for pod in others
    }
    try:
        for pod in others:
            kube.redis(pod, "CONFIG", "SET", "replica-priority", "0")
        time.sleep(PRIORITY_REFRESH_SECONDS)
        kube.sentinel(target, "SENTINEL", "FAILOVER", "mymaster")
        wait_until(
            lambda: healthy(kube, len(others) + 1) == target, timeout, f"{target} the master"
        )
    finally:
        for pod, priority in saved.items():
            kube.redis(pod, "CONFIG", "SET", "replica-priority", priority)
    time.sleep(PRIORITY_REFRESH_SECONDS)
