"""``make bench``: failover, persistence, rolling-update, idle and throughput measurements of
the local stack, written to ``bench/results.json`` and compared with the targets.

This module holds the pure part: aggregation of runs, the targets and the summary table.
``python -m bench`` (``bench/__main__.py``) runs the measurements.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FAILURE_SCENARIOS = (
    "delete_master_pod",
    "kill_master_redis",
    "kill_master_redis_and_sentinel",
    "partition_master",
)
MIGRATIONS = {
    "upgrade_redis_7_0_to_8_0": ("redis-7.0", "redis-8.0", False),
    "migrate_redis_7_0_to_valkey_9_1": ("redis-7.0", "valkey-9.1", False),
    "migrate_with_master_crash_midway": ("redis-7.0", "valkey-9.1", True),
}
"""Live engine changes by ``pulumi up``: from, to (local engine ids), crash the master while
the pods run two engines."""
SECTIONS = (
    "infra",
    *FAILURE_SCENARIOS,
    "persistence",
    "rolling_update",
    "soak",
    "throughput",
    "migration",
    "credentials",
    "tls",
    "tls_transition",
    "metrics",
)

# The goals the measurements are compared with (never asserted).
TARGET_MEDIAN_UNAVAILABILITY_SECONDS = 5.0
TARGET_WORST_UNAVAILABILITY_SECONDS = 10.0
TARGET_THROUGHPUT_COST = 0.10
"""At most this fraction of the direct path's ops/s lost through the proxy."""


def aggregate(values: Sequence[float]) -> dict[str, float | None]:
    """Median and maximum of a series (None for both when it is empty)."""
    if not values:
        return {"median": None, "max": None}
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def summarize_runs(runs: Sequence[Mapping[str, Any]], series: Iterable[str]) -> dict[str, Any]:
    """``{field: [value per successful run]}`` for each series, the median/max of the first
    one, the run records themselves and the errors of the runs that failed."""
    fields = list(series)
    ok = [run for run in runs if "error" not in run]
    summary: dict[str, Any] = {name: [run[name] for run in ok] for name in fields}
    summary.update(aggregate(summary[fields[0]]) if fields else {})
    summary["errors"] = [str(run["error"]) for run in runs if "error" in run]
    summary["runs"] = list(runs)
    return summary


SCENARIO_SERIES = (
    "unavailability_seconds",
    "confirmed_writes_lost",
    "readonly_errors",
    "readonly_errors_after_settle",
)
PERSISTENCE_SERIES = (
    "time_to_healthy_seconds",
    "write_unavailability_seconds",
    "keys_missing",
    "confirmed_writes_lost",
)
MIGRATION_SERIES = (
    "longest_write_gap_seconds",
    "confirmed_writes_lost",
    "readonly_errors",
    "readonly_errors_after_settle",
    "masters_after",
    "switchovers",
    "rollout_seconds",
)
CREDENTIAL_SERIES = (
    "revocation_longest_write_gap_seconds",
    "rotation_new_password_longest_write_gap_seconds",
    "rotation_longest_write_gap_seconds",
    "rotation_new_password_first_write_after_seconds",
    "rotation_confirmed_writes_lost",
    "rotation_new_password_confirmed_writes_lost",
    "revocation_confirmed_writes_lost",
    "rotation_pulumi_up_seconds",
    "revocation_pulumi_up_seconds",
    "old_password_refused_everywhere",
    "servers_rolled_by_revocation",
)
"""A rotation (writers on the old and on the new password) then a revocation (writer on the
new one)."""
TLS_TRANSITION_SERIES = (
    "tls_only_longest_write_gap_seconds",
    "transition_longest_write_gap_seconds",
    "transition_confirmed_writes_lost",
    "tls_only_confirmed_writes_lost",
    "transition_readonly_errors_after_settle",
    "tls_only_readonly_errors_after_settle",
    "transition_pulumi_up_seconds",
    "tls_only_pulumi_up_seconds",
    "masters_after",
)
"""Turning TLS on for a running release: the transition mode under a writer on the plain URL,
then TLS only under a writer on the ``rediss://`` URL; the first series is the one that
counts (the second step's hand-overs cross from plain to TLS)."""
ROLLING_SERIES = (
    "longest_write_gap_seconds",
    "switchovers",
    "confirmed_writes_lost",
    "readonly_errors_after_settle",
    "rollout_seconds",
)


@dataclass(frozen=True)
class Verdict:
    """One target, checked against the results: met is None when it could not be checked."""

    target: str
    met: bool | None
    measured: str

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "met": self.met, "measured": self.measured}


def _at_most(target: str, value: float | None, limit: float, unit: str = "") -> Verdict:
    if value is None:
        return Verdict(target, None, "no successful run")
    return Verdict(target, value <= limit, f"{value:g}{unit}")


def _none_of(target: str, section: Mapping[str, Any], fields: Sequence[str]) -> Verdict:
    errors = section.get("errors") or []
    values = [v for name in fields for v in section.get(name, [])]
    if errors:
        return Verdict(target, False, f"{len(errors)} run(s) failed: {errors[0][:120]}")
    if not values:
        return Verdict(target, None, "no successful run")
    return Verdict(target, sum(values) == 0, " + ".join(f"{sum(section[n])} {n}" for n in fields))


def _switchovers_as_expected(rolling: Mapping[str, Any]) -> Verdict:
    target = "rolling_update: 1 switchover, whatever ordinal the master is on"
    runs = [run for run in rolling.get("runs", []) if "error" not in run]
    if not runs:
        return Verdict(target, None, "no successful run")
    pairs = [(run["switchovers"], run["expected_switchovers"]) for run in runs]
    return Verdict(
        target,
        all(seen == expected for seen, expected in pairs),
        ", ".join(f"{seen} (expected {expected})" for seen, expected in pairs),
    )


HANDOVER_MEDIAN_SECONDS = {"valkey": 1.0, "redis": 2.0}
"""Median write unavailability of a planned hand-over (the master pod deleted), by engine:
Valkey hands over with a coordinated failover."""
CRASH_SCENARIOS = ("kill_master_redis", "kill_master_redis_and_sentinel", "partition_master")
CRASH_MEDIAN_MARGIN_SECONDS = 1.5
CRASH_WORST_MARGIN_SECONDS = 3.0
"""A crash costs at most down-after plus these (median, worst)."""
OUTLIER_FACTOR = 2.0
"""No run may take longer than this times its scenario's median."""


def credential_gap_targets(section: Mapping[str, Any], results: Mapping[str, Any]) -> list[Verdict]:
    """A client that holds the new password sees no gap longer than one switchover (the
    engine's hand-over target) during a rotation or a revocation."""
    engine = str(results.get("engine", "")).split("-", 1)[0]
    if engine not in HANDOVER_MEDIAN_SECONDS:
        return []
    limit = HANDOVER_MEDIAN_SECONDS[engine]
    return [
        _at_most(
            f"credentials: {step} gap on the new password <= one switchover ({limit:g} s on"
            f" {engine})",
            max(section.get(series) or [], default=None),
            limit,
            " s",
        )
        for step, series in (
            ("rotation", "rotation_new_password_longest_write_gap_seconds"),
            ("revocation", "revocation_longest_write_gap_seconds"),
        )
    ]


def engine_targets(
    name: str, section: Mapping[str, Any], results: Mapping[str, Any]
) -> list[Verdict]:
    """The per-engine targets of a failure scenario; none for a results file that does not say
    which engine and down-after it measured."""
    engine = str(results.get("engine", "")).split("-", 1)[0]
    down_after = results.get("down_after_seconds")
    if engine not in HANDOVER_MEDIAN_SECONDS or down_after is None:
        return []
    median, worst = section.get("median"), section.get("max")
    verdicts: list[Verdict] = []
    if name == "delete_master_pod":
        limit = HANDOVER_MEDIAN_SECONDS[engine]
        verdicts += [
            _at_most(f"{name}: median hand-over <= {limit:g} s on {engine}", median, limit, " s"),
            _none_of(f"{name}: 0 READONLY during the hand-over", section, ["readonly_errors"]),
        ]
    if name in CRASH_SCENARIOS:
        verdicts += [
            _at_most(
                f"{name}: median <= down-after + {CRASH_MEDIAN_MARGIN_SECONDS:g} s",
                median,
                down_after + CRASH_MEDIAN_MARGIN_SECONDS,
                " s",
            ),
            _at_most(
                f"{name}: worst <= down-after + {CRASH_WORST_MARGIN_SECONDS:g} s",
                worst,
                down_after + CRASH_WORST_MARGIN_SECONDS,
                " s",
            ),
        ]
    verdicts.append(
        _at_most(
            f"{name}: worst <= {OUTLIER_FACTOR:g} x median (no outliers)",
            worst,
            OUTLIER_FACTOR * median if median is not None else 0.0,
            " s",
        )
    )
    return verdicts


def evaluate(results: Mapping[str, Any]) -> list[Verdict]:
    """Every target that applies to what was measured."""
    verdicts: list[Verdict] = []
    for name, section in results.get("scenarios", {}).items():
        verdicts += engine_targets(name, section, results)
        verdicts += [
            _at_most(
                f"{name}: median unavailability <= {TARGET_MEDIAN_UNAVAILABILITY_SECONDS:g} s",
                section.get("median"),
                TARGET_MEDIAN_UNAVAILABILITY_SECONDS,
                " s",
            ),
            _at_most(
                f"{name}: worst unavailability <= {TARGET_WORST_UNAVAILABILITY_SECONDS:g} s",
                section.get("max"),
                TARGET_WORST_UNAVAILABILITY_SECONDS,
                " s",
            ),
            _none_of(f"{name}: 0 confirmed writes lost", section, ["confirmed_writes_lost"]),
            _none_of(f"{name}: 0 READONLY after settle", section, ["readonly_errors_after_settle"]),
        ]
    persistence = results.get("persistence")
    if persistence:
        verdicts.append(
            _none_of(
                "persistence: 0 keys lost after a full restart",
                persistence,
                ["keys_missing", "confirmed_writes_lost"],
            )
        )
    rolling = results.get("rolling_update")
    if rolling:
        verdicts += [
            _at_most(
                f"rolling_update: worst write gap <= {TARGET_WORST_UNAVAILABILITY_SECONDS:g} s",
                rolling.get("max"),
                TARGET_WORST_UNAVAILABILITY_SECONDS,
                " s",
            ),
            _none_of("rolling_update: 0 confirmed writes lost", rolling, ["confirmed_writes_lost"]),
            _switchovers_as_expected(rolling),
            _none_of(
                "rolling_update: 0 READONLY after settle", rolling, ["readonly_errors_after_settle"]
            ),
        ]
    for name, section in results.get("migrations", {}).items():
        verdicts += [
            _none_of(f"{name}: 0 confirmed writes lost", section, ["confirmed_writes_lost"]),
            _none_of(f"{name}: 0 READONLY after settle", section, ["readonly_errors_after_settle"]),
            Verdict(
                f"{name}: one master after the roll",
                all(n == 1 for n in section.get("masters_after", []))
                if section.get("masters_after")
                else None,
                f"masters {section.get('masters_after')}",
            ),
        ]
    transition = results.get("tls_transition")
    if transition:
        verdicts += [
            _at_most(
                f"tls_transition: worst write gap <= {TARGET_WORST_UNAVAILABILITY_SECONDS:g} s",
                max(
                    [
                        *transition.get("transition_longest_write_gap_seconds", []),
                        *transition.get("tls_only_longest_write_gap_seconds", []),
                    ],
                    default=None,
                ),
                TARGET_WORST_UNAVAILABILITY_SECONDS,
                " s",
            ),
            _none_of(
                "tls_transition: 0 confirmed writes lost",
                transition,
                ["transition_confirmed_writes_lost", "tls_only_confirmed_writes_lost"],
            ),
            _none_of(
                "tls_transition: 0 READONLY after settle",
                transition,
                [
                    "transition_readonly_errors_after_settle",
                    "tls_only_readonly_errors_after_settle",
                ],
            ),
            Verdict(
                "tls_transition: one master after the roll",
                all(n == 1 for n in transition["masters_after"])
                if transition.get("masters_after")
                else None,
                f"masters {transition.get('masters_after')}",
            ),
        ]
    credentials = results.get("credentials")
    if credentials:
        verdicts += [
            _none_of(
                "credentials: 0 confirmed writes lost",
                credentials,
                [
                    "rotation_confirmed_writes_lost",
                    "rotation_new_password_confirmed_writes_lost",
                    "revocation_confirmed_writes_lost",
                ],
            ),
            Verdict(
                "credentials: the old password refused everywhere after the revocation",
                all(credentials["old_password_refused_everywhere"])
                if credentials.get("old_password_refused_everywhere")
                else None,
                f"{credentials.get('old_password_refused_everywhere')}",
            ),
            *credential_gap_targets(credentials, results),
            Verdict(
                "credentials: a revocation rolls no server",
                not any(credentials["servers_rolled_by_revocation"])
                if credentials.get("servers_rolled_by_revocation")
                else None,
                f"rolled {credentials.get('servers_rolled_by_revocation')}",
            ),
        ]
    soak = results.get("soak")
    if soak and "false_failovers" in soak:
        verdicts.append(
            Verdict(
                "soak: 0 false failovers or +sdown master when idle",
                soak["false_failovers"] == 0 and soak["sdown_master_lines"] == 0,
                f"{soak['false_failovers']} failovers, {soak['sdown_master_lines']} +sdown master"
                f" in {soak['seconds']:g} s",
            )
        )
    throughput = results.get("throughput")
    if throughput and "throughput_ratio" in throughput:
        measured = throughput["throughput_ratio"]
        verdicts.append(
            Verdict(
                f"throughput: proxy costs <= {TARGET_THROUGHPUT_COST:.0%} of direct ops/s",
                None if measured is None else measured >= 1 - TARGET_THROUGHPUT_COST,
                "no ratio" if measured is None else f"ratio {measured:.3f}",
            )
        )
    return verdicts


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, list):
        return ",".join(_fmt(v) for v in value) if value else "-"
    return str(value)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [list(header), *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def summary(results: Mapping[str, Any]) -> str:
    """The readable report printed at the end of a run."""
    parts: list[str] = []
    infra = results.get("infra")
    if infra:
        parts.append(
            "set-up, warm caches: " + ", ".join(f"{k} {_fmt(v)}" for k, v in infra.items())
        )
    scenarios = results.get("scenarios", {})
    if scenarios:
        rows = [
            [
                name,
                s["median"],
                s["max"],
                s["unavailability_seconds"],
                sum(s["confirmed_writes_lost"]),
                sum(s["readonly_errors_after_settle"]),
                len(s["errors"]),
            ]
            for name, s in scenarios.items()
        ]
        header = ["scenario", "median s", "max s", "runs s", "lost", "READONLY", "failed"]
        parts.append(table(rows, header))
    persistence = results.get("persistence")
    if persistence:
        parts.append(
            table(
                [
                    [
                        "persistence",
                        persistence["median"],
                        persistence["max"],
                        persistence["write_unavailability_seconds"],
                        sum(persistence["keys_missing"]),
                        sum(persistence["confirmed_writes_lost"]),
                        len(persistence["errors"]),
                    ]
                ],
                [
                    "full restart",
                    "healthy med s",
                    "max s",
                    "write gap s",
                    "keys lost",
                    "writes lost",
                    "failed",
                ],
            )
        )
    rolling = results.get("rolling_update")
    if rolling:
        parts.append(
            table(
                [
                    [
                        "rolling_update",
                        rolling["median"],
                        rolling["max"],
                        rolling["switchovers"],
                        sum(rolling["confirmed_writes_lost"]),
                        sum(rolling["readonly_errors_after_settle"]),
                        len(rolling["errors"]),
                    ]
                ],
                ["rollout", "gap med s", "max s", "switchovers", "lost", "READONLY", "failed"],
            )
        )
    migrations = results.get("migrations", {})
    if migrations:
        rows = [
            [
                name,
                m["median"],
                m["max"],
                sum(m["confirmed_writes_lost"]),
                sum(m["readonly_errors"]),
                m["masters_after"],
                len(m["errors"]),
            ]
            for name, m in migrations.items()
        ]
        header = ["migration", "gap med s", "max s", "lost", "READONLY", "masters", "failed"]
        parts.append(table(rows, header))
    credentials = results.get("credentials")
    if credentials:
        parts.append(
            table(
                [
                    [
                        "rotate+revoke",
                        credentials["median"],
                        credentials["max"],
                        credentials["rotation_new_password_longest_write_gap_seconds"],
                        credentials["rotation_longest_write_gap_seconds"],
                        sum(credentials["rotation_confirmed_writes_lost"])
                        + sum(credentials["rotation_new_password_confirmed_writes_lost"])
                        + sum(credentials["revocation_confirmed_writes_lost"]),
                        credentials["old_password_refused_everywhere"],
                        len(credentials["errors"]),
                    ]
                ],
                [
                    "credentials",
                    "revoke gap med s",
                    "max s",
                    "rotation gaps new pw s",
                    "old pw s",
                    "lost",
                    "old refused",
                    "failed",
                ],
            )
        )
    soak = results.get("soak")
    if soak and "false_failovers" in soak:
        parts.append(
            f"soak: {soak['seconds']:g} s idle, {soak['false_failovers']} config-epoch changes, "
            f"{soak['sdown_master_lines']} '+sdown master', "
            f"{soak['switch_master_lines']} '+switch-master' lines"
        )
    throughput = results.get("throughput")
    if throughput and "cases" in throughput:
        rows = []
        for name, pair in throughput["cases"].items():
            for path in ("canonical", "direct"):
                r = pair[path]
                rows.append(
                    [
                        name,
                        path,
                        r["ops_per_second"],
                        r["p50_ms"],
                        r["p99_ms"],
                        r["latency_per"],
                        sum(r["errors"].values()),
                        pair["throughput_ratio"] if path == "canonical" else None,
                    ]
                )
        header = ["case", "path", "ops/s", "p50 ms", "p99 ms", "latency per", "errors", "ratio"]
        parts.append(table(rows, header))
        parts.append(
            f"throughput_ratio (canonical/direct, mean of cases): "
            f"{_fmt(throughput['throughput_ratio'])}"
        )
    tls = results.get("tls")
    if tls:
        parts.append(tls_summary(tls))
    transition = results.get("tls_transition")
    if transition:
        parts.append(
            table(
                [
                    [
                        step,
                        transition[f"{step}_longest_write_gap_seconds"],
                        transition[f"{step}_pulumi_up_seconds"],
                        sum(transition[f"{step}_confirmed_writes_lost"]),
                        sum(transition[f"{step}_readonly_errors_after_settle"]),
                        len(transition["errors"]),
                    ]
                    for step in ("transition", "tls_only")
                ],
                ["TLS on, step", "gaps s", "pulumi up s", "lost", "READONLY", "failed"],
            )
        )
    metrics = results.get("metrics")
    if metrics:
        parts.append(metrics_summary(metrics))
    verdicts = [Verdict(**v) for v in results.get("targets", [])]
    if verdicts:
        marks = {True: "met", False: "NOT MET", None: "n/a"}
        parts.append("\n".join(f"[{marks[v.met]:>7}] {v.target}: {v.measured}" for v in verdicts))
    return "\n\n".join(parts)


def metrics_summary(metrics: Mapping[str, Any]) -> str:
    """Metrics on beside off: redis-benchmark ops/s per case, then each exporter's cost."""
    rows = [
        [
            name,
            metrics["off"]["throughput"].get(name, {}).get("ops_per_second"),
            on["ops_per_second"],
            metrics["throughput_ratio_on_over_off"].get(name),
            on.get("client_cpu_seconds"),
        ]
        for name, on in metrics["on"]["throughput"].items()
    ]
    header = ["case", "metrics off ops/s", "metrics on ops/s", "on/off", "client CPU s"]
    exporters = [
        [pod, cost["cpu_seconds"], cost["cpu_share"], cost["rss_mib"]]
        for pod, cost in metrics["on"]["exporters"].items()
    ]
    exporter_header = ["exporter", "CPU s", "CPU share", "RSS MiB"]
    return table(rows, header) + "\n\n" + table(exporters, exporter_header)


def tls_summary(tls: Mapping[str, Any]) -> str:
    """TLS off beside TLS on: redis-benchmark ops/s per case, then the failovers."""
    rows: list[list[Any]] = []
    for name, on in tls["on"]["throughput"].items():
        off = tls["off"]["throughput"].get(name, {})
        rows.append(
            [
                name,
                off.get("ops_per_second"),
                on["ops_per_second"],
                tls["throughput_ratio_on_over_off"].get(name),
                off.get("p50_ms"),
                on.get("p50_ms"),
                off.get("client_cpu_seconds"),
                on.get("client_cpu_seconds"),
            ]
        )
    header = ["case", "off ops/s", "on ops/s", "on/off", "off p50 ms", "on p50 ms"]
    header += ["off client CPU s", "on client CPU s"]
    failovers = []
    for mode in ("off", "on"):
        for name, runs in tls[mode].items():
            if name == "throughput":
                continue
            failovers.append(
                [
                    f"{name} (TLS {mode})",
                    runs["median"],
                    runs["max"],
                    runs["unavailability_seconds"],
                    sum(runs["confirmed_writes_lost"]),
                    sum(runs["readonly_errors"]),
                    len(runs["errors"]),
                ]
            )
    failover_header = ["failover", "median s", "max s", "runs s", "lost", "READONLY", "failed"]
    return table(rows, header) + "\n\n" + table(failovers, failover_header)
