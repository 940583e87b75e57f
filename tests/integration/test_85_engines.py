"""The other engines of the local images, in a release of their own: Redis 7.0, then a live
upgrade to Redis 8.0 by ``pulumi up`` under a writer through ``redis_url``, then Redis 8.0.

On each engine: the deploy, the contract (every Sentinel has quorum, the master has every
replica), a SIGKILL failover and a graceful one (the master pod deleted), with the bounds of
the default engine's suite. The full suite, and the repeated runs, are ``make bench --engine``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from redistest import scenarios
from redistest.deployment import Deployed, start_client_pod
from redistest.engines import engine_config, other_engines
from redistest.health import wait_healthy
from redistest.kube import Kube
from redistest.traffic import (
    finish_writer,
    longest_gap,
    missing_confirmed,
    readonly_after_settle,
    start_writer,
    stop_writer,
    wait_for_writes,
)
from tests.integration.deployment import own_stack
from tests.integration.test_40_failover import MAX_UNAVAILABILITY_SECONDS, check

STACK = "engines"
NAMESPACE = "sophia-ai-engines"
FROM, TO = "redis-7.0", "redis-8.0"
"""The upgrade this module rolls: the oldest local engine to the next line of the same one."""
WRITER_SECONDS = 600.0
"""An upper bound; the writer is stopped once the upgrade is done."""


def engine_overrides(engine_id: str) -> dict[str, str]:
    return {key.removeprefix("redis:"): value for key, value in engine_config(engine_id).items()}


def running_versions(kube: Kube) -> set[str]:
    """``server_name version`` of every pod's server (Valkey reports server_name:valkey)."""
    versions = set()
    for pod in kube.redis_pods():
        info = kube.redis(pod, "INFO", "server")
        fields = dict(
            line.split(":", 1) for line in info.replace("\r", "").splitlines() if ":" in line
        )
        versions.add(f"{fields.get('server_name', 'redis')} {fields['redis_version']}")
    return versions


@pytest.fixture(scope="module")
def release(cluster: None) -> Iterator[Deployed]:
    assert {FROM, TO} <= set(other_engines()), "the local stack itself runs one of them"
    with own_stack(STACK, NAMESPACE, **engine_overrides(FROM)) as deployed:
        deployed.up()
        start_client_pod(deployed.kube)
        yield deployed


def check_engine(deployed: Deployed, engine_id: str) -> None:
    kube = deployed.kube
    master = wait_healthy(kube)
    line = engine_id.split("-", 1)[1]
    versions = running_versions(kube)
    assert versions and all(v.startswith(f"redis {line}.") for v in versions), versions
    for pod in kube.redis_pods():
        assert kube.sentinel(pod, "SENTINEL", "CKQUORUM", "mymaster").startswith("OK"), pod
    info = kube.redis(master, "INFO", "replication")
    assert info.count("state=online") == 2, info
    for scenario in ("kill_master_redis", "delete_master_pod"):
        inject = getattr(scenarios, scenario)(kube)
        measurement = scenarios.run_scenario(scenario, kube, deployed.url, inject)
        deployed.log(f"{engine_id} measurement: {measurement.as_dict()}")
        check(measurement)


def test_redis_7_0_fails_over_without_loss(release: Deployed) -> None:
    check_engine(release, FROM)


def test_upgrade_to_redis_8_0_under_load_loses_nothing(release: Deployed) -> None:
    kube = release.kube
    master_before = wait_healthy(kube)
    prefix = f"upgrade-{int(time.time())}"
    begun = time.time()
    writer = start_writer(kube, release.url, prefix, WRITER_SECONDS)
    try:
        wait_for_writes(writer, since=begun)
        started = time.time()
        release.up(**engine_overrides(TO))
        finished = time.time()
        master_after = wait_healthy(kube)
        wait_for_writes(writer, since=time.time())
    finally:
        stop_writer(writer)
    run = finish_writer(writer, prefix, timeout=60)
    gap = longest_gap([t for _, t in run.confirmed], started, finished)
    release.log(
        f"upgrade {FROM} -> {TO}: {run.switchovers} switchover(s), longest gap {gap:.2f} s, "
        f"master {master_before} -> {master_after}, errors {run.errors}"
    )
    versions = running_versions(kube)
    assert versions and all(v.startswith("redis 8.0.") for v in versions), versions
    assert len(run.confirmed) > 100
    assert missing_confirmed(kube, release.url, run) == []
    assert readonly_after_settle(run, started) == 0
    assert 1 <= run.switchovers <= 2, run.masters
    assert gap < MAX_UNAVAILABILITY_SECONDS, gap


def test_redis_8_0_fails_over_without_loss(release: Deployed) -> None:
    check_engine(release, TO)
