"""A storage size change through pulumi up: zero downtime, and a destroy afterwards is clean.

``volumeClaimTemplates`` are immutable, so the change replaces the StatefulSet. Its old object
is deleted with propagation "orphan" and the new one adopts the running pods: no pod restarts,
no write is lost, the writer behind ``redis_url`` sees no failover. The existing claims are then
expanded as the README's runbook says (the local-path StorageClass allows expansion), still
without a restart. Last, a destroy of the replaced StatefulSet leaves nothing behind in the
namespace, which the stack does not own: the new StatefulSet took over the claims and the
headless Service's ownership of it is what the destroy relies on.

The release runs as a stack of its own in a namespace of its own, so the session's stack keeps
its size. The module's fixture runs the cycle once and records what it saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from redistest.deployment import Deployed, log_line, start_client_pod
from redistest.health import wait_healthy
from redistest.kube import CLIENT_POD, Kube
from redistest.traffic import (
    finish_writer,
    longest_gap_span,
    missing_confirmed,
    start_writer,
    stop_writer,
    wait_for_writes,
)
from redistest.wait import wait_until

from .deployment import leftovers, own_stack, release_claims

STACK = "volume"
NAMESPACE = "sophia-ai-volume"
SIZE_BEFORE = "1Gi"
SIZE_AFTER = "2Gi"
AFTER_UP_SECONDS = 5.0
"""How long the writer keeps writing once pulumi up returned."""

PodView = tuple[str, str, tuple[tuple[str, int, str], ...]]
"""(uid, startTime, (container, restartCount, startedAt) ...) of one pod."""


def pod_views(kube: Kube) -> dict[str, PodView]:
    pods = kube.json("get", "pods", "-l", "app.kubernetes.io/component=server")["items"]
    return {
        pod["metadata"]["name"]: (
            pod["metadata"]["uid"],
            pod["status"]["startTime"],
            tuple(
                sorted(
                    (c["name"], c["restartCount"], c["state"].get("running", {}).get("startedAt"))
                    for c in pod["status"]["containerStatuses"]
                )
            ),
        )
        for pod in pods
    }


def statefulset(kube: Kube) -> dict[str, Any]:
    sts: dict[str, Any] = kube.json("get", "statefulset", "redis")
    return sts


def template_size(sts: dict[str, Any]) -> str:
    return str(sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"])


def owner_uids(item: dict[str, Any], kind: str) -> list[str]:
    return [o["uid"] for o in item["metadata"].get("ownerReferences", []) if o["kind"] == kind]


def capacities(kube: Kube) -> dict[str, str | None]:
    return {
        name: (claim["status"].get("capacity") or {}).get("storage")
        for name, claim in release_claims(kube).items()
    }


@dataclass(frozen=True)
class Seen:
    """The release before and after ``pulumi up`` changed the storage size."""

    changes: dict[str, int]
    """Change summary of that up, without the unchanged count."""
    pods_before: dict[str, PodView]
    pods_after: dict[str, PodView]
    sts_before: dict[str, Any]
    sts_after: dict[str, Any]
    headless_uid: str
    claims_after: dict[str, dict[str, Any]]
    confirmed: int
    lost: list[int]
    switchovers: int
    errors: dict[str, int]
    longest_gap: float
    gap_at: float
    """Seconds after the up started at which the longest gap began."""
    up_seconds: float
    preview_after: dict[str, list[str]]
    pods_after_expansion: dict[str, PodView]
    capacities_after_expansion: dict[str, str | None]


def change_size(release: Deployed) -> Seen:
    kube = release.kube
    wait_healthy(kube, 3)
    pods_before, sts_before = pod_views(kube), statefulset(kube)
    prefix = f"volume-{int(time.time())}"
    started = time.time()
    writer = start_writer(kube, release.url, prefix, duration=900)
    try:
        wait_for_writes(writer, since=started, timeout=30)
        up_started = time.time()
        result = release.up(storageSize=SIZE_AFTER)
        up_ended = time.time()
        time.sleep(AFTER_UP_SECONDS)
    finally:
        stop_writer(writer)
    run = finish_writer(writer, prefix, timeout=60)
    times = [t for _, t in run.confirmed]
    gap_start, gap_end = longest_gap_span(times, up_started, up_ended + AFTER_UP_SECONDS)
    pods_after, sts_after = pod_views(kube), statefulset(kube)
    headless = kube.json("get", "service", "redis-headless")
    claims_after = release_claims(kube)
    preview_after = release.preview_changes()

    # The runbook: expand the existing claims; the pods keep running.
    for claim in claims_after:
        patch = {"spec": {"resources": {"requests": {"storage": SIZE_AFTER}}}}
        kube.run("patch", "pvc", claim, "--type=merge", "-p", json.dumps(patch))

    def expanded() -> dict[str, str | None] | None:
        sizes = capacities(kube)
        return sizes if set(sizes.values()) == {SIZE_AFTER} else None

    expanded_sizes = wait_until(expanded, 120, f"every claim to report {SIZE_AFTER}")
    changes: dict[str, int] = {}
    for op, count in (result.summary.resource_changes or {}).items():
        if op != "same" and count:
            changes[op] = count
    seen = Seen(
        changes=changes,
        pods_before=pods_before,
        pods_after=pods_after,
        sts_before=sts_before,
        sts_after=sts_after,
        headless_uid=headless["metadata"]["uid"],
        claims_after=claims_after,
        confirmed=len(run.confirmed),
        lost=missing_confirmed(kube, release.url, run),
        switchovers=run.switchovers,
        errors=run.errors,
        longest_gap=round(gap_end - gap_start, 3),
        gap_at=round(gap_start - up_started, 3),
        up_seconds=round(up_ended - up_started, 1),
        preview_after=preview_after,
        pods_after_expansion=pod_views(kube),
        capacities_after_expansion=expanded_sizes,
    )
    log_line(
        f"test_95: up {seen.up_seconds} s, changes {changes}, longest write gap "
        f"{seen.longest_gap} s at +{seen.gap_at} s, confirmed {seen.confirmed}, lost "
        f"{len(seen.lost)}, switchovers {seen.switchovers}, errors {seen.errors}"
    )
    return seen


@pytest.fixture(scope="module")
def release(cluster: None) -> Iterator[Deployed]:
    with own_stack(STACK, NAMESPACE, storageSize=SIZE_BEFORE) as deployed:
        deployed.up()
        start_client_pod(deployed.kube)
        yield deployed


@pytest.fixture(scope="module")
def seen(release: Deployed) -> Seen:
    return change_size(release)


def test_size_change_replaces_only_the_statefulset(seen: Seen) -> None:
    assert seen.changes == {"replace": 1}
    before, after = seen.sts_before, seen.sts_after
    assert after["metadata"]["uid"] != before["metadata"]["uid"], "the StatefulSet was replaced"
    assert (template_size(before), template_size(after)) == (SIZE_BEFORE, SIZE_AFTER)
    assert owner_uids(after, "Service") == [seen.headless_uid]
    assert seen.preview_after == {}


def test_size_change_restarts_no_pod_and_loses_no_write(seen: Seen) -> None:
    assert sorted(seen.pods_before) == ["redis-0", "redis-1", "redis-2"]
    assert seen.pods_after == seen.pods_before, "same pods (UIDs), started once, no restart"
    assert seen.pods_after_expansion == seen.pods_before
    assert seen.confirmed > 0
    assert seen.lost == []
    assert seen.switchovers == 0
    # A failover alone costs more than 2 s (downAfterMilliseconds); this is no failover.
    assert seen.longest_gap < 2.0, (seen.longest_gap, seen.errors)


def test_new_statefulset_takes_over_the_claims(seen: Seen) -> None:
    """With pvcRetentionPolicy Delete the claims must belong to the new StatefulSet, or a
    destroy would leave them behind; the runbook's expansion then grows them in place."""
    new_uid = seen.sts_after["metadata"]["uid"]
    owners = {name: owner_uids(claim, "StatefulSet") for name, claim in seen.claims_after.items()}
    assert owners == {
        claim: [new_uid] for claim in ("data-redis-0", "data-redis-1", "data-redis-2")
    }
    assert seen.capacities_after_expansion == dict.fromkeys(owners, SIZE_AFTER)


def test_destroy_after_the_size_change_leaves_nothing(release: Deployed, seen: Seen) -> None:
    kube = release.kube
    kube.run("delete", "pod", CLIENT_POD, "--ignore-not-found", "--wait=true")
    release.stack.destroy(on_output=release.log, color="never")
    assert leftovers(kube) == []
    assert release_claims(kube) == {}
