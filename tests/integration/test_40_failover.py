"""Failover under load through redis_url: bounds with margin here; exact figures in make bench."""

from __future__ import annotations

import time

import pytest

from redistest import scenarios
from redistest.deployment import Deployed
from redistest.kube import Kube
from redistest.monitoring import Prometheus, watched_alerts

# 40 s: make bench measured 2.0-5.8 s in 31 of its 32 failover runs (down-after 2 s, election,
# proxy check; bench/results*.json). The 32nd (16.8 s) and this suite's runs on this 2-core node
# (22.1 s, seen 2026-12-02) met a Sentinel in TILT, an open defect (README.md): a TILTed
# Sentinel does not act for 30 s, and a hand-over that cannot finish keeps writes paused until
# the grace period (30 s) ends and the crash failover (~4 s) follows. 40 s bounds one such
# stall; anything longer is a different failure. The figures belong to make bench.
MAX_UNAVAILABILITY_SECONDS = 40


def check(measurement: scenarios.Measurement) -> None:
    assert measurement.confirmed_writes > 100, measurement
    assert measurement.confirmed_writes_lost == 0, measurement
    assert measurement.readonly_errors_after_settle == 0, measurement
    if measurement.scenario == "delete_master_pod":
        # A planned hand-over: the old master leaves the network before it is demoted.
        assert measurement.readonly_errors == 0, measurement
    assert measurement.switchovers_seen == 1, measurement
    assert measurement.masters_after == 1, measurement
    assert measurement.unavailability_seconds < MAX_UNAVAILABILITY_SECONDS, measurement


@pytest.mark.parametrize(
    "scenario",
    # The master's Redis and Sentinel killed together is make bench's (CRASH_SCENARIOS).
    ["delete_master_pod", "kill_master_redis"],
)
def test_master_loss(
    scenario: str, deployed: Deployed, client: Kube, request: pytest.FixtureRequest
) -> None:
    prometheus: Prometheus | None = None
    if scenario == "kill_master_redis":
        prometheus = request.getfixturevalue("prometheus")
        epochs_before = config_epochs(prometheus, deployed.kube.namespace)
    inject = getattr(scenarios, scenario)(deployed.kube)
    measurement = scenarios.run_scenario(scenario, deployed.kube, deployed.url, inject)
    deployed.log(f"measurement: {measurement.as_dict()}")
    check(measurement)
    assert measurement.new_master != measurement.old_master or scenario != "delete_master_pod"
    if prometheus is not None:
        check_alerts_saw_the_failover(prometheus, deployed.kube.namespace, epochs_before)


def config_epochs(prometheus: Prometheus, namespace: str) -> dict[str, float]:
    """Each Sentinel's configuration epoch of the master, as last scraped."""
    series = prometheus.query(
        f'redis_sentinel_master_config_epoch{{namespace="{namespace}", process="sentinel"}}'
    )
    return {s["metric"]["pod"]: float(s["value"][1]) for s in series}


def check_alerts_saw_the_failover(
    prometheus: Prometheus, namespace: str, epochs_before: dict[str, float]
) -> None:
    """The failover shows in the metrics and as the RedisFailover alert; once the release has
    settled, neither the no-master nor the two-masters alert stays pending or firing."""
    assert len(epochs_before) == 3, epochs_before
    deadline = time.monotonic() + 60
    while True:
        alerts = {
            a["labels"]["alertname"]: a["state"]
            for a in prometheus.alerts()
            if a["labels"].get("namespace", namespace) == namespace
        }
        epochs = config_epochs(prometheus, namespace)
        advanced = epochs and all(epochs.get(p, 0) > e for p, e in epochs_before.items())
        settled = not {"RedisNoMaster", "RedisMultipleMasters"} & alerts.keys()
        if advanced and "RedisFailover" in alerts and settled:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"after 60 s: epochs {epochs_before} -> {epochs}, alerts {alerts}")
        time.sleep(2)


def test_partitioned_master_refuses_writes(
    deployed: Deployed, client: Kube, prometheus: Prometheus
) -> None:
    inject = scenarios.partition_master(deployed.kube, max_lag=5)
    with watched_alerts(prometheus, deployed.kube.namespace) as seen:
        measurement = scenarios.run_scenario(
            "partition_master", deployed.kube, deployed.url, inject
        )
    deployed.log(f"measurement: {measurement.as_dict()}")
    check(measurement)
    assert "NOREPLICAS" in str(measurement.extra["isolated_master_reply"]), measurement.extra
    assert measurement.new_master != measurement.old_master
    # The isolated master and the promoted replica both report the master role to Prometheus
    # (the cut spares the monitoring namespace): the split-brain alert goes pending.
    assert seen.get("RedisMultipleMasters"), seen
