"""A live engine change (version upgrade or engine migration) by ``pulumi up`` under the
writer, optionally with the master crashing while the pods run two engines: shared by the
integration tests (once) and the benchmark (repeated)."""

from __future__ import annotations

import threading
import time
from typing import Any

from .deployment import Deployed
from .health import masters_by_role, pods_ready, wait_healthy
from .kube import Kube
from .scenarios import kill_from_host
from .traffic import (
    finish_writer,
    longest_gap_span,
    missing_confirmed,
    readonly_after_settle,
    start_writer,
    stop_writer,
    wait_for_writes,
)
from .wait import wait_until

WRITER_SECONDS = 900.0
"""An upper bound; the writer is stopped once the roll is done."""
MIXED_WAIT_SECONDS = 300.0
"""How long a mid-migration crash waits for the pods to run two engines with the master on
the old one."""


def server_versions(kube: Kube) -> dict[str, str]:
    """``server_name version`` of each reachable pod's server (``valkey 9.1.2``; Redis
    reports no server_name)."""
    versions: dict[str, str] = {}
    for pod in kube.redis_pods():
        try:
            info = kube.redis(pod, "INFO", "server")
        except AssertionError:
            continue
        fields = dict(
            line.split(":", 1) for line in info.replace("\r", "").splitlines() if ":" in line
        )
        if "redis_version" in fields:
            name = fields.get("server_name", "redis")
            version = fields.get("valkey_version", fields["redis_version"])
            versions[pod] = f"{name} {version}"
    return versions


def migrate_under_load(
    deployed: Deployed, overrides: dict[str, str], crash_master_midway: bool = False
) -> dict[str, Any]:
    """``pulumi up`` with ``overrides`` (``redis:<key>`` without the prefix) while the writer
    runs through ``redis_url``; with ``crash_master_midway``, SIGKILL of the master's server
    once at least one pod runs the new engine and the master still the old one. Spans are in
    seconds after ``pulumi up`` began."""
    kube = deployed.kube
    master_before = wait_healthy(kube)
    versions_before = server_versions(kube)
    prefix = f"migrate-{int(time.time())}"
    begun = time.time()
    writer = start_writer(kube, deployed.url, prefix, WRITER_SECONDS)
    crash: dict[str, Any] = {}
    failure: list[BaseException] = []

    def roll() -> None:
        try:
            deployed.up(**overrides)
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    try:
        wait_for_writes(writer, since=begun)
        started = time.time()
        rolling = threading.Thread(target=roll, daemon=True)
        rolling.start()
        if crash_master_midway:
            crash = crash_when_mixed(kube, versions_before, rolling)
        rolling.join()
        finished = time.time()
        if failure:
            raise failure[0]
        master_after = wait_healthy(kube)
        wait_for_writes(writer, since=time.time())
    finally:
        stop_writer(writer)
    run = finish_writer(writer, prefix, timeout=60)
    gap_start, gap_end = longest_gap_span([t for _, t in run.confirmed], started, finished)
    ready = pods_ready(kube)
    return {
        "from": sorted(set(versions_before.values())),
        "to": sorted(set(server_versions(kube).values())),
        "started_at": time.strftime("%H:%M:%S", time.gmtime(started)) + f"{started % 1:.3f}"[1:],
        "rollout_seconds": round(finished - started, 3),
        "longest_write_gap_seconds": round(gap_end - gap_start, 3),
        "longest_write_gap_span": [round(gap_start - started, 3), round(gap_end - started, 3)],
        "switchovers": run.switchovers,
        "confirmed_writes": len(run.confirmed),
        "confirmed_writes_lost": len(missing_confirmed(kube, deployed.url, run)),
        "readonly_errors": len(run.readonly),
        "readonly_errors_after_settle": readonly_after_settle(run, started),
        "readonly_span": [
            round(min(run.readonly) - started, 3),
            round(max(run.readonly) - started, 3),
        ]
        if run.readonly
        else [],
        "masters_after": len(masters_by_role(kube, ready)),
        "master_before": master_before,
        "master_after": master_after,
        "writer_errors": run.errors,
        **({"crash": crash} if crash_master_midway else {}),
    }


def crash_when_mixed(
    kube: Kube, versions_before: dict[str, str], rolling: threading.Thread
) -> dict[str, Any]:
    """Waits until a pod runs a new engine while the master runs an old one, then SIGKILLs
    the master's server; returns what was killed, and when, or why nothing was."""
    old = set(versions_before.values())
    found: dict[str, Any] = {}

    def mixed() -> bool:
        if not rolling.is_alive():
            return True
        versions = server_versions(kube)
        ready = pods_ready(kube)
        masters = masters_by_role(kube, [p for p in versions if p in ready])
        upgraded = any(v not in old for v in versions.values())
        if len(masters) == 1 and versions.get(masters[0]) in old and upgraded:
            found.update(master=masters[0], versions=versions)
            return True
        return False

    wait_until(mixed, MIXED_WAIT_SECONDS, "a pod on the new engine, the master on the old")
    if not found:
        return {"skipped": "the roll ended before the pods ran two engines"}
    kill_from_host(kube, found["master"], ("redis",))
    return {**found, "at": time.time()}
