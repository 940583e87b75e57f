"""The pure parts of the benchmark: aggregation, targets, the write-gap analysis of the
integration writer, the throughput percentiles and the shared bounded wait; no cluster needed."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import time
from collections.abc import Mapping
from typing import Any

import pytest

from bench import (
    CREDENTIAL_SERIES,
    ROLLING_SERIES,
    SCENARIO_SERIES,
    TARGET_MEDIAN_UNAVAILABILITY_SECONDS,
    TARGET_THROUGHPUT_COST,
    TARGET_WORST_UNAVAILABILITY_SECONDS,
    TLS_TRANSITION_SERIES,
    aggregate,
    evaluate,
    summarize_runs,
    summary,
)
from bench.host import STALL_SECONDS, watched_host
from bench.throughput import (
    Case,
    cases,
    compare,
    latency_summary,
    loadgen_script,
    master_host,
    percentile,
    replace_host,
)
from redistest.traffic import (
    WriterRun,
    longest_gap,
    readonly_after_settle,
    settled_at,
    unavailability,
)
from redistest.wait import wait_until

T0 = 1_700_000_000.0
"""An arbitrary wall-clock origin for synthetic writer runs."""


def writes(start: float, end: float, step: float = 0.1) -> list[float]:
    """Confirmed-write times every ``step`` seconds in [start, end], relative to T0."""
    count = round((end - start) / step)
    return [T0 + start + i * step for i in range(count + 1)]


def run_of(
    times: list[float], readonly: list[float] | None = None, ended: float | None = None
) -> WriterRun:
    return WriterRun(
        confirmed=list(enumerate(times, 1)),
        readonly=readonly or [],
        errors={},
        unconfirmed=0,
        attempts=len(times),
        ended=ended,
    )


# -- aggregation ------------------------------------------------------------------------


def test_aggregate_median_and_max() -> None:
    assert aggregate([3.0, 1.0, 2.0]) == {"median": 2.0, "max": 3.0}
    assert aggregate([4.0, 1.0, 2.0, 3.0]) == {"median": 2.5, "max": 4.0}
    assert aggregate([]) == {"median": None, "max": None}


def test_summarize_runs_keeps_failed_runs_out_of_the_series() -> None:
    runs: list[dict[str, Any]] = [
        {
            "unavailability_seconds": 4.0,
            "confirmed_writes_lost": 0,
            "readonly_errors": 0,
            "readonly_errors_after_settle": 0,
        },
        {"error": "AssertionError: timed out"},
        {
            "unavailability_seconds": 8.0,
            "confirmed_writes_lost": 2,
            "readonly_errors": 3,
            "readonly_errors_after_settle": 1,
        },
    ]
    summarized = summarize_runs(runs, SCENARIO_SERIES)
    assert summarized["unavailability_seconds"] == [4.0, 8.0]
    assert summarized["confirmed_writes_lost"] == [0, 2]
    assert summarized["readonly_errors_after_settle"] == [0, 1]
    assert (summarized["median"], summarized["max"]) == (6.0, 8.0)
    assert summarized["errors"] == ["AssertionError: timed out"]
    assert summarized["runs"] == runs


def scenario(unavailable: list[float], lost: int = 0, readonly: int = 0) -> dict[str, Any]:
    runs = [
        {
            "unavailability_seconds": u,
            "confirmed_writes_lost": lost,
            "readonly_errors": readonly,
            "readonly_errors_after_settle": readonly,
        }
        for u in unavailable
    ]
    return summarize_runs(runs, SCENARIO_SERIES)


def verdicts_of(results: Mapping[str, Any]) -> dict[str, bool | None]:
    return {v.target: v.met for v in evaluate(results)}


def test_targets_met_and_missed() -> None:
    good = TARGET_MEDIAN_UNAVAILABILITY_SECONDS / 2
    slow = TARGET_WORST_UNAVAILABILITY_SECONDS + 1
    results = {
        "scenarios": {
            "fast": scenario([good, good, good]),
            # Median fine, one run too slow, one write lost.
            "spiky": scenario([good, good, slow], lost=1),
        },
        "throughput": {"throughput_ratio": 1 - TARGET_THROUGHPUT_COST / 2},
    }
    verdicts = verdicts_of(results)
    fast = {k: v for k, v in verdicts.items() if k.startswith("fast:")}
    spiky = {k: v for k, v in verdicts.items() if k.startswith("spiky:")}
    assert len(fast) == 4 and all(fast.values()), fast
    assert [k for k, v in spiky.items() if not v] == [
        f"spiky: worst unavailability <= {TARGET_WORST_UNAVAILABILITY_SECONDS:g} s",
        "spiky: 0 confirmed writes lost",
    ]
    (throughput,) = [v for k, v in verdicts.items() if k.startswith("throughput")]
    assert throughput is True


def test_engine_targets_hand_over_crash_and_outliers() -> None:
    results = {
        "engine": "valkey-9.1",
        "down_after_seconds": 2.0,
        "scenarios": {
            "delete_master_pod": scenario([0.8, 0.9, 1.9]),
            "kill_master_redis": scenario([3.2, 3.4, 3.5]),
            "partition_master": scenario([3.0, 3.1, 5.5], readonly=1),
        },
    }
    verdicts = verdicts_of(results)
    assert verdicts["delete_master_pod: median hand-over <= 1 s on valkey"] is True
    assert verdicts["delete_master_pod: 0 READONLY during the hand-over"] is True
    assert verdicts["delete_master_pod: worst <= 2 x median (no outliers)"] is False
    assert verdicts["kill_master_redis: median <= down-after + 1.5 s"] is True
    assert verdicts["kill_master_redis: worst <= down-after + 3 s"] is True
    assert verdicts["partition_master: worst <= down-after + 3 s"] is False
    redis = verdicts_of({**results, "engine": "redis-8.0"})
    assert redis["delete_master_pod: median hand-over <= 2 s on redis"] is True
    assert not any("hand-over" in target for target in verdicts_of({"scenarios": {}}))


def test_throughput_target_missed_and_unknown() -> None:
    costly = {"throughput": {"throughput_ratio": 1 - 2 * TARGET_THROUGHPUT_COST}}
    assert list(verdicts_of(costly).values()) == [False]
    unknown = {"throughput": {"throughput_ratio": None}}
    assert list(verdicts_of(unknown).values()) == [None]


def test_failed_runs_fail_the_loss_targets_and_no_run_is_unknown() -> None:
    section = summarize_runs([{"error": "boom"}], SCENARIO_SERIES)
    verdicts = verdicts_of({"scenarios": {"x": section}})
    assert verdicts["x: 0 confirmed writes lost"] is False
    assert (
        verdicts[f"x: median unavailability <= {TARGET_MEDIAN_UNAVAILABILITY_SECONDS:g} s"] is None
    )


def test_soak_counts_false_failovers() -> None:
    quiet = {"seconds": 60.0, "false_failovers": 0, "sdown_master_lines": 0}
    noisy = {**quiet, "sdown_master_lines": 3}
    assert list(verdicts_of({"soak": quiet}).values()) == [True]
    assert list(verdicts_of({"soak": noisy}).values()) == [False]


def rollout(switchovers: int, expected: int) -> dict[str, Any]:
    return {
        "longest_write_gap_seconds": 1.0,
        "switchovers": switchovers,
        "expected_switchovers": expected,
        "confirmed_writes_lost": 0,
        "readonly_errors_after_settle": 0,
        "rollout_seconds": 60.0,
    }


def test_rolling_update_switchovers_must_match_the_master_position() -> None:
    target = "rolling_update: 1 switchover, whatever ordinal the master is on"
    as_expected = summarize_runs([rollout(1, 1), rollout(1, 1)], ROLLING_SERIES)
    one_too_many = summarize_runs([rollout(1, 1), rollout(2, 1)], ROLLING_SERIES)
    assert verdicts_of({"rolling_update": as_expected})[target] is True
    assert verdicts_of({"rolling_update": one_too_many})[target] is False


def test_summary_reports_every_section() -> None:
    results: dict[str, Any] = {
        "infra": {"cluster_up_seconds": 14.2},
        "scenarios": {"kill_master_redis": scenario([3.0, 12.0])},
    }
    results["targets"] = [v.as_dict() for v in evaluate(results)]
    text = summary(results)
    assert "cluster_up_seconds 14.2" in text
    assert "kill_master_redis" in text
    assert "NOT MET" in text and "[    met]" in text


def credentials_run(lost: int = 0, refused: bool = True, rolled: bool = False) -> dict[str, Any]:
    return {
        "revocation_longest_write_gap_seconds": 0.2,
        "rotation_new_password_longest_write_gap_seconds": 1.5,
        "rotation_longest_write_gap_seconds": 2.5,
        "rotation_new_password_first_write_after_seconds": 20.0,
        "rotation_confirmed_writes_lost": lost,
        "rotation_new_password_confirmed_writes_lost": 0,
        "revocation_confirmed_writes_lost": 0,
        "rotation_pulumi_up_seconds": 90.0,
        "revocation_pulumi_up_seconds": 20.0,
        "old_password_refused_everywhere": refused,
        "servers_rolled_by_revocation": rolled,
    }


@pytest.mark.parametrize(
    ("run", "failed_target"),
    [
        (credentials_run(), None),
        (credentials_run(lost=2), "credentials: 0 confirmed writes lost"),
        (
            credentials_run(refused=False),
            "credentials: the old password refused everywhere after the revocation",
        ),
        (credentials_run(rolled=True), "credentials: a revocation rolls no server"),
    ],
)
def test_credentials_targets(run: dict[str, Any], failed_target: str | None) -> None:
    section = summarize_runs([credentials_run(), run], CREDENTIAL_SERIES)
    verdicts = verdicts_of({"credentials": section})
    assert len(verdicts) == 3
    assert [target for target, met in verdicts.items() if not met] == (
        [failed_target] if failed_target else []
    )
    assert "rotate+revoke" in summary({"credentials": section})


def tls_transition_run(
    tls_only_gap: float = 0.9, lost: int = 0, masters: int = 1
) -> dict[str, Any]:
    return {
        "tls_only_longest_write_gap_seconds": tls_only_gap,
        "transition_longest_write_gap_seconds": 0.7,
        "transition_confirmed_writes_lost": 0,
        "tls_only_confirmed_writes_lost": lost,
        "transition_readonly_errors_after_settle": 0,
        "tls_only_readonly_errors_after_settle": 0,
        "transition_pulumi_up_seconds": 45.0,
        "tls_only_pulumi_up_seconds": 60.0,
        "masters_after": masters,
    }


@pytest.mark.parametrize(
    ("run", "failed_target"),
    [
        (tls_transition_run(), None),
        (tls_transition_run(tls_only_gap=27.4), "tls_transition: worst write gap <= 10 s"),
        (tls_transition_run(lost=1), "tls_transition: 0 confirmed writes lost"),
        (tls_transition_run(masters=2), "tls_transition: one master after the roll"),
    ],
)
def test_tls_transition_targets(run: dict[str, Any], failed_target: str | None) -> None:
    section = summarize_runs([tls_transition_run(), run], TLS_TRANSITION_SERIES)
    verdicts = verdicts_of({"tls_transition": section})
    assert len(verdicts) == 4
    assert [target for target, met in verdicts.items() if not met] == (
        [failed_target] if failed_target else []
    )
    text = summary({"tls_transition": section})
    assert "tls_only" in text and "transition" in text


def test_credential_gaps_are_held_to_one_switchover_of_the_engine() -> None:
    slow = {**credentials_run(), "rotation_new_password_longest_write_gap_seconds": 1.6}
    section = summarize_runs([credentials_run(), slow], CREDENTIAL_SERIES)
    on_redis = verdicts_of({"credentials": section, "engine": "redis-8.0"})
    on_valkey = verdicts_of({"credentials": section, "engine": "valkey-9.1"})
    rotation = "credentials: rotation gap on the new password <= one switchover"
    assert on_redis[f"{rotation} (2 s on redis)"] is True
    assert on_valkey[f"{rotation} (1 s on valkey)"] is False
    assert (
        on_valkey[
            "credentials: revocation gap on the new password <= one switchover (1 s on valkey)"
        ]
        is True
    )


# -- the writer analysis ----------------------------------------------------------------


def test_unavailability_is_the_longest_gap_around_the_event() -> None:
    # Writes every 0.1 s, none from 5.0 to 8.0 s; the event at 5.05 s.
    times = writes(0, 5.0) + writes(8.0, 30.0)
    run = run_of(times, ended=T0 + 30.0)
    assert unavailability(run, T0 + 5.05, window=20) == pytest.approx(3.0)


def test_unavailability_counts_writes_that_never_come_back() -> None:
    # A few writes still land after the event, then none until the writer ends at 25 s.
    times = writes(0, 6.0)
    run = run_of(times, ended=T0 + 25.0)
    assert unavailability(run, T0 + 5.05, window=30) == pytest.approx(19.0)
    # The window bounds it when the writer outlives the window.
    assert unavailability(run_of(times, ended=T0 + 60.0), T0 + 5.05, 10) == pytest.approx(
        T0 + 15.05 - (T0 + 6.0)
    )


def test_unavailability_without_any_write_after_the_event_is_the_window() -> None:
    run = run_of(writes(0, 5.0), ended=T0 + 40)
    assert unavailability(run, T0 + 5.05, window=30) == 30


def test_longest_gap_counts_up_to_the_end() -> None:
    times = writes(0, 2.0) + writes(3.5, 6.0)
    assert longest_gap(times, T0 + 1.0, T0 + 5.0) == pytest.approx(1.5)
    assert longest_gap(times, T0 + 1.0, T0 + 10.0) == pytest.approx(4.0)
    assert longest_gap([], T0, T0 + 7.0) == pytest.approx(7.0)


def test_settled_needs_two_seconds_without_a_gap() -> None:
    # After the event at 5 s: a short burst at 6 s, a 1 s gap, then steady writes from 8 s.
    times = writes(0, 5.0) + writes(6.0, 7.0) + writes(8.0, 20.0)
    run = run_of(times)
    assert settled_at(run, T0 + 5.0) == pytest.approx(T0 + 10.0)
    assert settled_at(run_of(writes(0, 5.0)), T0 + 5.0) is None


def test_readonly_errors_count_only_after_settling() -> None:
    times = writes(0, 5.0) + writes(8.0, 20.0)
    readonly = [T0 + 6.0, T0 + 7.5, T0 + 12.0]
    assert readonly_after_settle(run_of(times, readonly), T0 + 5.0) == 1
    # Never settled: every READONLY after the event counts.
    assert readonly_after_settle(run_of(writes(0, 5.0), readonly), T0 + 5.0) == 3


# -- throughput -------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 99) == 5.0
    values = [float(v) for v in range(101)]
    assert percentile(values, 0) == 0 and percentile(values, 100) == 100
    assert percentile(values, 99) == pytest.approx(99.0)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_percentile_matches_the_inclusive_quantiles() -> None:
    rng = random.Random(7)
    values = sorted(rng.expovariate(1.0) for _ in range(537))
    expected = statistics.quantiles(values, n=100, method="inclusive")
    for q in (1, 25, 50, 90, 99):
        assert percentile(values, q) == pytest.approx(expected[q - 1])


def test_latency_summary_is_in_milliseconds() -> None:
    latencies = [0.001] * 98 + [0.010, 0.050]
    result = latency_summary(latencies)
    assert result["p50_ms"] == pytest.approx(1.0)
    assert result["max_ms"] == pytest.approx(50.0)
    assert 1.0 < (result["p99_ms"] or 0) < 50.0
    assert latency_summary([]) == {"p50_ms": None, "p99_ms": None, "max_ms": None}


def test_loadgen_script_is_valid_python_with_its_percentile_code() -> None:
    script = loadgen_script()
    compile(script, "<loadgen>", "exec")
    assert "def percentile(" in script and "def latency_summary(" in script
    assert "sys.argv" not in script  # the config, URL included, comes on stdin


def test_replace_host_keeps_credentials_port_and_database() -> None:
    url = "redis://:p%40ss%3Aword@redis-service.ns.svc.cluster.local:6379/0"
    direct = replace_host(url, "redis-1.redis-headless.ns.svc.cluster.local")
    assert direct == "redis://:p%40ss%3Aword@redis-1.redis-headless.ns.svc.cluster.local:6379/0"
    assert replace_host("redis://host/0", "other") == "redis://other/0"


def test_master_host_from_the_sentinel_hosts() -> None:
    hosts = [f"redis-{i}.redis-headless.ns.svc.cluster.local:26379" for i in range(3)]
    assert master_host(hosts, "redis-2") == "redis-2.redis-headless.ns.svc.cluster.local"
    with pytest.raises(ValueError):
        master_host(hosts, "redis-3")


def test_compare_gives_per_case_and_mean_ratios() -> None:
    results = {
        "set": {"canonical": {"ops_per_second": 900.0}, "direct": {"ops_per_second": 1000.0}},
        "get": {"canonical": {"ops_per_second": 700.0}, "direct": {"ops_per_second": 1000.0}},
        "dead": {"canonical": {"ops_per_second": 0.0}, "direct": {"ops_per_second": 0.0}},
    }
    comparison = compare(results)
    assert comparison["throughput_ratio_per_case"] == {"set": 0.9, "get": 0.7, "dead": None}
    assert comparison["throughput_ratio"] == pytest.approx(0.8)


def test_cases_cover_get_and_set_with_and_without_pipelining() -> None:
    assert [c.name for c in cases(16)] == ["set", "get", "set_pipeline16", "get_pipeline16"]
    assert Case("GET", 1).latency_per == "request"
    assert Case("SET", 16).latency_per == "pipeline of 16"


# -- the shared wait --------------------------------------------------------------------


def test_wait_until_returns_the_first_truthy_result() -> None:
    results: list[object] = [None, AssertionError("kubectl failed"), 0, "master"]

    def condition() -> object:
        result = results.pop(0)
        if isinstance(result, AssertionError):
            raise result
        return result

    assert wait_until(condition, 5, "a master", interval=0.001) == "master"
    assert results == []


def test_wait_until_fails_with_what_it_waited_for_and_the_last_result() -> None:
    calls: list[int] = []

    def never() -> bool:
        calls.append(1)
        return False

    with pytest.raises(AssertionError, match=r"waiting for a quorum \(last: False\)"):
        wait_until(never, 0.05, "a quorum", interval=0.01)
    assert len(calls) >= 2, "called at least once and once more at the deadline"


def test_redis_benchmark_output_and_its_cpu() -> None:
    from bench.tls import parse_output

    text = (
        '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
        '"p99_latency_ms","max_latency_ms"\n'
        '"SET","85034.01","0.321","0.096","0.311","0.471","0.639","1.847"\n'
        "0m0.004s 0m0.000s\n0m1.250s 0m0.500s\n"
    )
    assert parse_output(text) == {
        "ops_per_second": 85034.01,
        "avg_ms": 0.321,
        "p50_ms": 0.311,
        "p99_ms": 0.639,
        "client_cpu_seconds": 1.75,
    }


def test_redis_benchmark_command_takes_the_password_from_the_environment() -> None:
    from bench.tls import CASES, benchmark_command

    command = benchmark_command("redis-service", 6380, CASES[2], tls=True)
    assert '-a "$BENCH_PASSWORD"' in command
    assert "--tls --cacert /tmp/bench-tls-ca.crt" in command
    assert "-P 16" in command and command.endswith("; times")
    assert "--tls" not in benchmark_command("redis-service", 6379, CASES[0], tls=False)


def test_tls_ratios() -> None:
    from bench.tls import ratios

    assert ratios({"set": {"ops_per_second": 50.0}}, {"set": {"ops_per_second": 100.0}}) == {
        "set": 0.5
    }


def test_the_host_watch_reports_a_stall_of_every_process_and_none_when_calm() -> None:
    """The bench process itself stopped for 1.2 s (SIGSTOP, then SIGCONT from outside), as a
    machine-wide stall stops every process: one stall of about that length; none when calm."""
    with watched_host() as calm:
        time.sleep(0.5)
    assert calm.stalls == [] and calm.longest_stall_seconds < STALL_SECONDS
    pid = os.getpid()
    with watched_host() as stalled:
        subprocess.Popen(["sh", "-c", f"sleep 0.3; kill -STOP {pid}; sleep 1.2; kill -CONT {pid}"])
        time.sleep(2.5)
    assert len(stalled.stalls) == 1, stalled.stalls
    (started, length), now = stalled.stalls[0], time.time()
    assert 1.0 <= length < 2.0 and now - 3.5 < started < now
    assert stalled.longest_stall_seconds == length
    assert set(stalled.as_dict(started)["stalls"][0]) <= {0.0, round(length, 3)}
