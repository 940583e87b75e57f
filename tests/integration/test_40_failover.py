"""Failover under load through redis_url: bounds with margin here; exact figures in make bench."""

from __future__ import annotations

import pytest

from redistest import scenarios
from redistest.deployment import Deployed
from redistest.kube import Kube

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
    ["delete_master_pod", "kill_master_redis", "kill_master_redis_and_sentinel"],
)
def test_master_loss(scenario: str, deployed: Deployed, client: Kube) -> None:
    inject = getattr(scenarios, scenario)(deployed.kube)
    measurement = scenarios.run_scenario(scenario, deployed.kube, deployed.url, inject)
    deployed.log(f"measurement: {measurement.as_dict()}")
    check(measurement)
    assert measurement.new_master != measurement.old_master or scenario != "delete_master_pod"


def test_partitioned_master_refuses_writes(deployed: Deployed, client: Kube) -> None:
    inject = scenarios.partition_master(deployed.kube, max_lag=5)
    measurement = scenarios.run_scenario("partition_master", deployed.kube, deployed.url, inject)
    deployed.log(f"measurement: {measurement.as_dict()}")
    check(measurement)
    assert "NOREPLICAS" in str(measurement.extra["isolated_master_reply"]), measurement.extra
    assert measurement.new_master != measurement.old_master
