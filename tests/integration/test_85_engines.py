"""The other engines of the local images, in a release of their own: Redis 7.0, then a live
upgrade to Redis 8.0 by ``pulumi up`` under a writer through ``redis_url``, then Redis 8.0.

On each engine: the deploy, the contract (every Sentinel has quorum, the master has every
replica), a SIGKILL failover and a graceful one (the master pod deleted), with the bounds of
the default engine's suite. The upgrade converges (a preview after it changes nothing).
Between them, the engine changes the program must refuse fail the preview, read from the
live StatefulSet, and leave the state and every live object as they were. The full suite, the
repeated runs and the migration to Valkey are ``make bench`` (``--engine``, ``--only
migration``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from pulumi import automation as auto

from redistest import scenarios
from redistest.deployment import Deployed, start_client_pod
from redistest.engines import engine_config, engine_overrides, other_engines
from redistest.health import wait_healthy
from redistest.migration import migrate_under_load, server_versions
from tests.integration.deployment import own_stack
from tests.integration.test_40_failover import MAX_UNAVAILABILITY_SECONDS, check

STACK = "engines"
NAMESPACE = "sophia-ai-engines"
FROM, TO = "redis-7.0", "redis-8.0"
"""The upgrade this module rolls: the oldest local engine to the next line of the same one."""


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
    versions = set(server_versions(kube).values())
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
    run = migrate_under_load(release, engine_overrides(TO))
    release.log(f"upgrade {FROM} -> {TO}: {run}")
    release.log(release.kube.handover_log())
    assert all(version.startswith("redis 8.0.") for version in run["to"]), run
    assert run["confirmed_writes"] > 100, run
    assert run["confirmed_writes_lost"] == 0, run
    assert run["readonly_errors_after_settle"] == 0, run
    assert run["masters_after"] == 1, run
    assert run["switchovers"] == 1, run  # the replicas first, the master last
    assert run["longest_write_gap_seconds"] < MAX_UNAVAILABILITY_SECONDS, run
    assert release.preview_changes() == {}


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (engine_config(FROM), "redis:image: redis 8.0"),
        (engine_config("valkey-9.1"), "redis:engine: redis 8.0"),
    ],
    ids=["downgrade", "to-valkey"],
)
def test_refused_engine_change_fails_the_preview(
    release: Deployed, change: dict[str, str], refusal: str
) -> None:
    stack = release.stack
    kept = {key: stack.get_config(key).value for key in change}
    state_before, live_before = stack.export_stack().deployment, live_objects(release)
    for key, value in change.items():
        stack.set_config(key, auto.ConfigValue(value))
    try:
        with pytest.raises(auto.CommandError) as error:
            stack.preview(on_output=release.log, color="never")
    finally:
        for key, value in kept.items():
            stack.set_config(key, auto.ConfigValue(value))
    assert refusal in str(error.value), str(error.value)[-2000:]
    assert {key: stack.get_config(key).value for key in change} == kept
    assert stack.export_stack().deployment == state_before
    assert live_objects(release) == live_before


def live_objects(release: Deployed) -> dict[str, str]:
    """Kind/name to a digest of what a change would touch in every object of the release:
    labels, annotations, spec and data (a digest, so a Secret's data is never printed)."""
    kinds = "statefulset,deployment,configmap,secret,service,poddisruptionbudget,networkpolicy"
    digests = {}
    for item in release.kube.json("get", kinds)["items"]:
        metadata = item["metadata"]
        content = {
            "labels": metadata.get("labels"),
            "annotations": metadata.get("annotations"),
            "spec": item.get("spec"),
            "data": item.get("data"),
        }
        text = json.dumps(content, sort_keys=True).encode()
        digests[f"{item['kind']}/{metadata['name']}"] = hashlib.sha256(text).hexdigest()
    return digests


def test_redis_8_0_fails_over_without_loss(release: Deployed) -> None:
    check_engine(release, TO)
