"""Failure scenarios shared by the integration tests (once each) and the benchmark (x5).

Each scenario runs the writer through ``redis_url``, injects one event and measures the write
unavailability, confirmed writes lost and READONLY errors after the failover settled.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .health import masters_by_role, pods_ready, wait_healthy
from .kube import Kube
from .traffic import (
    WriterRun,
    finish_writer,
    missing_confirmed,
    readonly_after_settle,
    start_writer,
    stop_writer,
    unavailability,
    wait_for_writes,
)
from .wait import wait_until

LEAD_SECONDS = 5.0
"""At most this long from starting the writer to its first confirmed writes; the event comes
as soon as there are some. The writer runs for this plus the window."""
WINDOW_SECONDS = 30.0
PARTITION_SECONDS = 20.0
"""How long the partition scenario keeps the master cut off (the scenario, not a wait)."""


@dataclass
class Measurement:
    """One run of one scenario."""

    scenario: str
    old_master: str
    new_master: str
    unavailability_seconds: float
    confirmed_writes: int
    confirmed_writes_lost: int
    readonly_errors: int
    """Every READONLY the writer met, from the event on (a planned hand-over must cause none)."""
    readonly_errors_after_settle: int
    errors: dict[str, int]
    masters_after: int
    switchovers_seen: int
    """New masters the writer met behind ``redis_url`` (one failover: 1)."""
    extra: dict[str, object]
    fault_at: float = 0.0
    """When the fault took effect (wall clock); the write gap is measured from the moment
    the injection began, a little earlier."""
    trace: WriterRun | None = field(default=None, repr=False, compare=False)
    """Everything the writer saw, for a timeline; not part of :meth:`as_dict`."""

    def as_dict(self) -> dict[str, object]:
        fields = asdict(self)
        fields.pop("trace")
        return fields


def kill_from_host(kube: Kube, pod: str, containers: tuple[str, ...]) -> None:
    """SIGKILL the main process of each container from the host (PID 1 of a container ignores
    signals sent from inside it)."""
    pids = [kube.container_pid(pod, c) for c in containers]
    subprocess.run(["kill", "-9", *map(str, pids)], check=True)


def pod_ip(kube: Kube, pod: str) -> str:
    return str(kube.json("get", "pod", pod)["status"]["podIP"])


def partition(kube: Kube, pod: str, peers: list[str], action: str) -> None:
    """Adds (-I) or removes (-D) rules in the pod's network namespace that drop all traffic
    between it and ``peers``; the proxy's path to it stays open."""
    pid = kube.container_pid(pod, "redis")
    for ip in (pod_ip(kube, p) for p in peers):
        for chain, direction in (("INPUT", "-s"), ("OUTPUT", "-d")):
            subprocess.run(
                [
                    "nsenter",
                    "-t",
                    str(pid),
                    "-n",
                    "iptables",
                    action,
                    chain,
                    direction,
                    ip,
                    "-j",
                    "DROP",
                ],
                check=True,
            )


FAULT_AT = "fault_at"
"""Key of an injector's result: when the fault took effect, if later than the call began
(finding a container's process takes a second or more before the kill)."""
_FAULTS_ENDED: dict[str, float] = {}


def last_fault_ended(namespace: str) -> float:
    """When the last scenario this process ran in ``namespace`` returned (0: none), healed and
    settled: what an idle check counts from."""
    return _FAULTS_ENDED.get(namespace, 0.0)


def run_scenario(
    name: str,
    kube: Kube,
    url: str,
    inject: Callable[[str], dict[str, object]],
    replicas: int = 3,
    ca: str = "",
) -> Measurement:
    """Writer on; once it confirms writes, ``inject(master)`` at t0; the writer ends about
    t0 + 30 s; then verify and heal. ``ca`` verifies the servers of a ``rediss://`` URL."""
    old_master = wait_healthy(kube, replicas)
    prefix = f"{name}-{int(time.time())}"
    started = time.time()
    writer = start_writer(kube, url, prefix, LEAD_SECONDS + WINDOW_SECONDS, ca)
    try:
        wait_for_writes(writer, since=started, timeout=LEAD_SECONDS)
        event = time.time()
        extra = inject(old_master)
    except BaseException:
        stop_writer(writer)
        raise
    took_effect = extra.pop(FAULT_AT, event)
    fault_at = took_effect if isinstance(took_effect, float) else event
    run = finish_writer(writer, prefix, timeout=WINDOW_SECONDS + 120)
    new_master = wait_healthy(kube, replicas)
    _FAULTS_ENDED[kube.namespace] = time.time()
    missing = missing_confirmed(kube, url, run, ca)
    return Measurement(
        scenario=name,
        old_master=old_master,
        new_master=new_master,
        unavailability_seconds=round(unavailability(run, event, WINDOW_SECONDS), 3),
        confirmed_writes=len(run.confirmed),
        confirmed_writes_lost=len(missing),
        readonly_errors=sum(1 for at in run.readonly if at >= event),
        readonly_errors_after_settle=readonly_after_settle(run, event),
        errors=run.errors,
        masters_after=len(masters_by_role(kube, pods_ready(kube))),
        switchovers_seen=run.switchovers,
        extra=extra,
        fault_at=fault_at,
        trace=run,
    )


def delete_master_pod(kube: Kube) -> Callable[[str], dict[str, object]]:
    def inject(master: str) -> dict[str, object]:
        kube.run("delete", "pod", master, "--wait=false")
        return {FAULT_AT: time.time()}

    return inject


def kill_master_redis(kube: Kube) -> Callable[[str], dict[str, object]]:
    def inject(master: str) -> dict[str, object]:
        kill_from_host(kube, master, ("redis",))
        return {FAULT_AT: time.time()}

    return inject


def kill_master_redis_and_sentinel(kube: Kube) -> Callable[[str], dict[str, object]]:
    def inject(master: str) -> dict[str, object]:
        kill_from_host(kube, master, ("redis", "sentinel"))
        return {FAULT_AT: time.time()}

    return inject


def partition_master(kube: Kube, max_lag: int) -> Callable[[str], dict[str, object]]:
    """Cuts the master off from the other Redis/Sentinel pods for 20 s. Meanwhile it probes
    the isolated master with a write every 0.5 s until it refuses (``NOREPLICAS``, expected
    once ``min-replicas-max-lag`` has passed), for at most ``max_lag`` + 5 s, and records the
    last reply and when it came, in seconds after the cut."""

    def inject(master: str) -> dict[str, object]:
        peers = [p for p in pods_ready(kube) if p != master]
        partition(kube, master, peers, "-I")
        started = time.time()
        cut: dict[str, object] = {FAULT_AT: started}
        probes: list[tuple[float, str]] = []

        def refused() -> bool:
            reply = kube.redis(master, "SET", "partition-probe", str(started))
            probes.append((time.time() - started, reply))
            return reply.startswith("NOREPLICAS")

        try:
            # A master that never refuses is reported through the reply, not raised here.
            with contextlib.suppress(AssertionError):
                wait_until(refused, max_lag + 5, f"{master} to refuse writes", interval=0.5)
            time.sleep(max(0.0, PARTITION_SECONDS - (time.time() - started)))
        finally:
            partition(kube, master, peers, "-D")
        answered, reply = probes[-1] if probes else (time.time() - started, "no reply")
        return {
            **cut,
            "isolated_master_reply": reply.strip(),
            "probe_after_seconds": round(answered, 2),
        }

    return inject
