"""``python -m bench``: starts the local cluster, deploys the local stack, runs every
measurement (or those named by ``--only``) and writes ``bench/results.json``. The ``infra``
measurement stops and restarts the local cluster, which removes whatever else runs on it.

Every loop here is bounded by a count and a deadline; all traffic stays on this machine's
local cluster. Targets are reported as met or not, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from automation.workspace import REPO
from redistest import scenarios
from redistest.deployment import (
    Deployed,
    deploy_local,
    local_stack,
    own_stack,
    start_client_pod,
    start_cluster,
)
from redistest.engines import ENGINE_IMAGE_KEYS, default_engine, engine_config, engine_overrides
from redistest.health import config_epoch, move_master_to, restarted_pods, wait_healthy
from redistest.kube import CLIENT_POD, Kube, cpu_throttling
from redistest.migration import migrate_under_load
from redistest.monitoring import deploy_prometheus, stack_settings
from redistest.podlogs import FollowedLogs, followed_logs
from redistest.rotation import rotate_and_revoke
from redistest.traffic import (
    WriterRun,
    finish_writer,
    longest_gap_span,
    missing_confirmed,
    readonly_after_settle,
    start_writer,
    stop_writer,
    unavailability,
)
from redistest.transition import turn_tls_on

from . import (
    CREDENTIAL_SERIES,
    FAILURE_SCENARIOS,
    MIGRATION_SERIES,
    MIGRATIONS,
    PERSISTENCE_SERIES,
    ROLLING_SERIES,
    SCENARIO_SERIES,
    SECTIONS,
    TLS_TRANSITION_SERIES,
    evaluate,
    summarize_runs,
    summary,
)
from . import tls as tls_bench
from .host import watched_host
from .throughput import LoadConfig, master_host, replace_host, run_throughput
from .timeline import (
    Timeline,
    median_phases,
    proxy_events,
    render,
    render_summary,
    sentinel_events,
)
from .timeline import summary as timeline_summary

PERSISTENCE_KEYS = 20000
PERSISTENCE_LEAD_SECONDS = 3.0
PERSISTENCE_WRITER_SECONDS = 400.0
"""Upper bound of the writer during a full restart; it is stopped once the set is healthy."""
FULL_RESTART_TIMEOUT_SECONDS = 300.0
ROLLING_WRITER_SECONDS = 900.0
"""Upper bound of the writer during a rollout; it is stopped once the rollout is done."""
ROLLING_LEAD_SECONDS = 3.0
ROLLING_TAIL_SECONDS = 5.0
POLICIES = ("volatile-lru", "allkeys-lru")
SOAK_CHECK_SECONDS = 30.0
MIGRATION_STACK = "bench-migration"
MIGRATION_NAMESPACE = "sophia-ai-bench-migration"
CREDENTIALS_STACK = "bench-credentials"
CREDENTIALS_NAMESPACE = "sophia-ai-bench-credentials"
TLS_STACK = "bench-tls"
TLS_NAMESPACE = "sophia-ai-bench-tls"
TLS_CONFIG = {"enabled": True, "selfSignedCa": True}
TLS_FAILOVERS = ("kill_master_redis", "delete_master_pod")
SENTINEL_EVENTS = {
    "sdown_master_lines": "+sdown master",
    "odown_master_lines": "+odown master",
    "switch_master_lines": "+switch-master",
    "sdown_replica_lines": "+sdown slave",
}

WRITE_DATASET = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
c = redis.Redis.from_url(cfg["url"], socket_timeout=10)
for start in range(0, cfg["count"], 1000):
    pipe = c.pipeline(transaction=False)
    for i in range(start, min(start + 1000, cfg["count"])):
        pipe.set(f"{cfg['prefix']}:{i}", f"value-{i}")
    pipe.execute()
print(json.dumps({"acked": c.execute_command("WAIT", cfg["replicas"], 5000)}))
"""

READ_DATASET = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
c = redis.Redis.from_url(cfg["url"], socket_timeout=10)
missing = 0
for start in range(0, cfg["count"], 1000):
    ids = range(start, min(start + 1000, cfg["count"]))
    values = c.mget([f"{cfg['prefix']}:{i}" for i in ids])
    missing += sum(1 for i, v in zip(ids, values) if v != f"value-{i}".encode())
print(json.dumps({"missing": missing}))
"""

CLEAN = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
c = redis.Redis.from_url(cfg["url"], socket_timeout=10)
deleted = 0
for pattern in cfg["patterns"]:
    batch = []
    for key in c.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += c.unlink(*batch)
            batch = []
    if batch:
        deleted += c.unlink(*batch)
print(json.dumps({"deleted": deleted}))
"""


def process_usage(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) and resident MiB of a host process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "cpu_seconds": (int(fields[11]) + int(fields[12])) / ticks,
        "rss_mib": round(rss_kib / 1024, 1),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs of each scenario (default 5)")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="NAME",
        help=f"run only this measurement (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--engine",
        choices=list(ENGINE_IMAGE_KEYS),
        help="the engine to measure, in a stack and namespace of its own "
        "(default: the local stack's engine)",
    )
    parser.add_argument("--soak-seconds", type=float, default=600, help="idle soak (0: skip)")
    parser.add_argument(
        "--results",
        type=Path,
        default=REPO / "bench" / "results-engines.json",
        help="results file; the run replaces its engine's entry and keeps the others",
    )
    parser.add_argument("--throughput-seconds", type=float, default=10, help="per case and path")
    parser.add_argument("--throughput-processes", type=int, default=4)
    parser.add_argument("--pipeline-depth", type=int, default=16)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.soak_seconds < 0 or args.throughput_seconds <= 0 or args.throughput_processes < 1:
        parser.error("durations must be positive and --throughput-processes at least 1")
    return args


def machine() -> dict[str, Any]:
    """What the figures were measured on, read from the host."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_bytes": total_kib * 1024,
        "memory": f"{total_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "cpu_model": model,
    }


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def config_value(kube: Kube, pod: str, name: str) -> str:
    """One ``CONFIG GET`` value of the Redis server in ``pod``."""
    lines = kube.redis(pod, "CONFIG", "GET", name).split()
    return lines[1] if len(lines) > 1 else ""


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def failure_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


class Bench:
    """One benchmark session on the deployed local stack."""

    def __init__(self, deployed: Deployed, args: argparse.Namespace, results: dict[str, Any]):
        self.deployed = deployed
        self.kube = deployed.kube
        self.args = args
        self.results = results

    @property
    def url(self) -> str:
        return self.deployed.url

    def save(self) -> None:
        """Writes this run under ``engines.<engine>`` of the results file, beside the last run
        of every other engine, so one file holds the engines side by side."""
        self.results["targets"] = [v.as_dict() for v in evaluate(self.results)]
        path: Path = self.args.results
        path.parent.mkdir(parents=True, exist_ok=True)
        document: dict[str, Any] = {}
        if path.exists():
            document = json.loads(path.read_text())
        kept = document.get("engines")
        engines: dict[str, Any] = dict(kept) if isinstance(kept, dict) else {}
        engines[self.results["engine"]] = self.results
        path.write_text(json.dumps({"engines": engines}, indent=2) + "\n")

    def clean(self, *patterns: str) -> None:
        """Deletes the keys a measurement wrote, so later ones start from the same data."""
        try:
            deleted = self.kube.client_python(
                CLEAN, {"url": self.url, "patterns": patterns}, timeout=600
            )
            log(f"  cleaned {deleted['deleted']} keys ({', '.join(patterns)})")
        except Exception as error:  # a leftover key set is no reason to stop the benchmark
            log(f"  cleaning {patterns} failed: {failure_text(error)}")

    def repeat(self, name: str, once: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
        """``once(i)`` for each run; a failed run is recorded with its error, not raised."""
        runs: list[dict[str, Any]] = []
        for index in range(self.args.runs):
            log(f"{name}: run {index + 1}/{self.args.runs}")
            try:
                run = once(index)
            except Exception as error:
                run = {"error": failure_text(error)}
                log(f"  failed: {run['error']}")
                traceback.print_exc(file=sys.stderr)
            else:
                log("  " + ", ".join(f"{k}={v}" for k, v in run.items() if not isinstance(v, dict)))
            runs.append(run)
        return runs

    # -- failure scenarios ---------------------------------------------------------------

    def failure_scenario(self, name: str) -> None:
        replicas = len(self.kube.redis_pods())

        def once(index: int) -> dict[str, Any]:
            replaced = self.replace_restarted_pods()
            if name == "partition_master":
                master = wait_healthy(self.kube, replicas)
                max_lag = int(config_value(self.kube, master, "min-replicas-max-lag"))
                inject = scenarios.partition_master(self.kube, max_lag=max_lag)
            else:
                inject = getattr(scenarios, name)(self.kube)
            since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            throttling_before = self.sentinel_throttling()
            with followed_logs(self.kube) as logs, watched_host() as host:
                measurement = scenarios.run_scenario(name, self.kube, self.url, inject, replicas)
            assert measurement.trace is not None
            lost = measurement.confirmed_writes_lost
            outcome = (
                f"{measurement.unavailability_seconds:.2f} s without a confirmed write, "
                f"{lost} confirmed write{'' if lost == 1 else 's'} lost"
            )
            timeline = self.timeline(
                name, index, outcome, measurement.fault_at, measurement.trace, logs
            )
            return {
                **measurement.as_dict(),
                **timeline,
                "pods_replaced_before": replaced,
                "host": host.as_dict(measurement.fault_at),
                "sentinel_tilts": self.sentinel_lines("+tilt", since),
                "sentinel_throttling": throttling_delta(
                    throttling_before, self.sentinel_throttling()
                ),
            }

        runs = self.repeat(name, once)
        self.clean(f"{name}-*")
        self.results["scenarios"][name] = {
            **summarize_runs(runs, SCENARIO_SERIES),
            **self.pictures(name, runs, "unavailability_seconds"),
        }
        self.summary_picture()

    def replace_restarted_pods(self) -> list[str]:
        """Deletes the server pods with a container an earlier run killed, so that each run's
        kill meets a container the kubelet restarts after its first back-off (10 s), not after
        one doubled by every earlier run (up to 5 minutes, past the run's wait)."""
        pods = restarted_pods(self.kube)
        if pods:
            log(f"  replacing {', '.join(pods)}: a container of theirs has restarted")
            self.kube.run("delete", "pod", *pods, "--wait=false")
        return pods

    def timeline(
        self,
        name: str,
        index: int,
        outcome: str,
        fault_at: float,
        trace: WriterRun,
        logs: FollowedLogs,
    ) -> dict[str, Any]:
        """The run's phases, proxy and Sentinel events, its picture under
        ``timelines/<engine>/runs`` and, beside it, every pod's log of the run (how the master
        moved first, then each log in full)."""
        timeline = Timeline(
            title=f"{name} on {self.results['engine']}, run {index + 1}\n{outcome}",
            fault_at=fault_at,
            trace=trace,
            events=sentinel_events(logs),
            proxy_events=proxy_events(logs),
        )
        picture = render(timeline, self.timelines / "runs" / f"{name}-{index + 1}.png")
        kept_logs = picture.with_suffix(".log")
        kept_logs.write_text(f"{logs.digest()}\n\n{logs.text()}\n")
        return {
            **timeline_summary(timeline),
            "picture": str(picture.relative_to(REPO)),
            "logs": str(kept_logs.relative_to(REPO)),
        }

    @property
    def timelines(self) -> Path:
        """Where this engine's failover pictures go."""
        return REPO / "bench" / "timelines" / str(self.results["engine"])

    def pictures(self, name: str, runs: list[dict[str, Any]], gap_key: str) -> dict[str, Any]:
        """Each phase's median over the runs, and the picture of the run with the median
        ``gap_key``, copied to ``<name>.png`` (the one the README shows)."""
        pictured = sorted((run for run in runs if "picture" in run), key=lambda r: r[gap_key])
        kept: dict[str, Any] = {"phases_median_seconds": median_phases(pictured)}
        if pictured:
            median = pictured[(len(pictured) - 1) // 2]
            shutil.copyfile(REPO / median["picture"], self.timelines / f"{name}.png")
            kept["picture"] = str((self.timelines / f"{name}.png").relative_to(REPO))
        return kept

    def summary_picture(self) -> None:
        """Every failure scenario's write gaps across its runs, in ``summary.png``."""
        gaps = {
            name: list(section.get("unavailability_seconds", []))
            for name, section in self.results["scenarios"].items()
        }
        if any(gaps.values()):
            runs = max(len(values) for values in gaps.values())
            title = f"Write gap per failover on {self.results['engine']}, {runs} run(s) each"
            render_summary(gaps, title, self.timelines / "summary.png")

    def sentinel_lines(self, needle: str, since: str) -> list[str]:
        """Sentinel log lines containing ``needle`` since ``since`` (RFC 3339), every pod."""
        lines: list[str] = []
        for pod in self.kube.redis_pods():
            text = self.kube.run(
                "logs", pod, "-c", "sentinel", f"--since-time={since}", check=False
            ).stdout
            lines += [f"{pod}: {line}" for line in text.splitlines() if needle in line]
        return lines

    def sentinel_throttling(self) -> dict[str, dict[str, int]]:
        """CPU throttling counters of each Sentinel container, by pod (missing: not running)."""
        counters: dict[str, dict[str, int]] = {}
        for pod in self.kube.redis_pods():
            try:
                counters[pod] = cpu_throttling(self.kube.container_pid(pod, "sentinel"))
            except (AssertionError, OSError, subprocess.CalledProcessError):
                continue
        return counters

    # -- persistence ---------------------------------------------------------------------

    def persistence(self) -> None:
        replicas = len(self.kube.redis_pods())

        def once(index: int) -> dict[str, Any]:
            wait_healthy(self.kube, replicas)
            prefix = f"bench-persist-{index}-{int(time.time())}"
            dataset = {"url": self.url, "prefix": prefix, "count": PERSISTENCE_KEYS}
            acked = self.kube.client_python(
                WRITE_DATASET, {**dataset, "replicas": replicas - 1}, timeout=300
            )
            writer_prefix = f"{prefix}-writer"
            writer = start_writer(self.kube, self.url, writer_prefix, PERSISTENCE_WRITER_SECONDS)
            try:
                time.sleep(PERSISTENCE_LEAD_SECONDS)
                event = time.time()
                self.kube.run(
                    "delete", "pod", "-l", "app.kubernetes.io/component=server", "--wait=false"
                )
                master = wait_healthy(self.kube, replicas, timeout=FULL_RESTART_TIMEOUT_SECONDS)
                healthy_after = time.time() - event
                time.sleep(PERSISTENCE_LEAD_SECONDS)
            finally:
                stop_writer(writer)
            run = finish_writer(writer, writer_prefix, timeout=60)
            window = (run.ended or time.time()) - event
            missing = self.kube.client_python(READ_DATASET, dataset, timeout=300)["missing"]
            return {
                "keys_written": PERSISTENCE_KEYS,
                "replicas_acked_before": acked["acked"],
                "time_to_healthy_seconds": round(healthy_after, 3),
                "write_unavailability_seconds": round(unavailability(run, event, window), 3),
                "keys_missing": missing,
                "confirmed_writes": len(run.confirmed),
                "confirmed_writes_lost": len(missing_confirmed(self.kube, self.url, run)),
                "master_after": master,
                "writer_errors": run.errors,
            }

        runs = self.repeat("persistence", once)
        self.clean("bench-persist-*")
        self.results["persistence"] = {
            **summarize_runs(runs, PERSISTENCE_SERIES),
            "note": "time_to_healthy_seconds: from the deletion of every server pod to the"
            " first passing health check (one check execs into every pod, so it is polled"
            " every few seconds); write_unavailability_seconds: longest gap of confirmed"
            " writes through redis_url meanwhile",
        }

    # -- rolling update ------------------------------------------------------------------

    def rolling_update(self) -> None:
        kube = self.kube
        original = config_value(kube, wait_healthy(kube), "maxmemory-policy")

        def once(index: int) -> dict[str, Any]:
            highest = max(kube.redis_pods(), key=lambda pod: int(pod.rsplit("-", 1)[1]))
            if index % 2 == 1 and wait_healthy(kube) != highest:
                # Every other run starts from the master on the highest ordinal, the one the
                # StatefulSet controller's own order updated first (two switchovers).
                move_master_to(kube, highest)
            master_before = wait_healthy(kube)
            current = config_value(kube, master_before, "maxmemory-policy")
            target = POLICIES[1] if current == POLICIES[0] else POLICIES[0]
            epoch_before = config_epoch(kube, master_before)
            prefix = f"bench-rolling-{index}-{int(time.time())}"
            writer = start_writer(kube, self.url, prefix, ROLLING_WRITER_SECONDS)
            try:
                with followed_logs(kube) as logs, watched_host() as host:
                    time.sleep(ROLLING_LEAD_SECONDS)
                    started = time.time()
                    self.deployed.up(maxmemoryPolicy=target)
                    finished = time.time()
                    time.sleep(ROLLING_TAIL_SECONDS)
            finally:
                stop_writer(writer)
            run = finish_writer(writer, prefix, timeout=60)
            master_after = wait_healthy(kube)
            end = min(finished, run.ended or finished)
            gap_start, gap_end = longest_gap_span([t for _, t in run.confirmed], started, end)
            outcome = (
                f"pulumi up at 0 s, {run.switchovers} switchover(s), "
                f"longest write gap {gap_end - gap_start:.2f} s"
            )
            timeline = self.timeline("rolling_update", index, outcome, started, run, logs)
            return {
                **{k: v for k, v in timeline.items() if k != "phases_seconds"},
                "policy": f"{current} -> {target}",
                "applied": config_value(kube, master_after, "maxmemory-policy") == target,
                "started_at": datetime.fromtimestamp(started, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "rollout_seconds": round(finished - started, 3),
                "longest_write_gap_seconds": round(gap_end - gap_start, 3),
                "longest_write_gap_from_seconds": round(gap_start - started, 3),
                "new_master_at_seconds": [round(t - started, 3) for t, _ in run.masters[1:]],
                "switchovers": run.switchovers,
                "config_epoch_delta": config_epoch(kube, master_after) - epoch_before,
                # The rolling-update Job deletes the master last, whatever its ordinal.
                "expected_switchovers": 1,
                "master_on_highest_ordinal": master_before == highest,
                "confirmed_writes": len(run.confirmed),
                "confirmed_writes_lost": len(missing_confirmed(kube, self.url, run)),
                "readonly_errors_after_settle": readonly_after_settle(run, started),
                "master_before": master_before,
                "master_after": master_after,
                "writer_errors": run.errors,
                "host": host.as_dict(started),
            }

        runs = self.repeat("rolling_update", once)
        self.clean("bench-rolling-*")
        pictures = self.pictures("rolling_update", runs, "longest_write_gap_seconds")
        self.results["rolling_update"] = {
            **summarize_runs(runs, ROLLING_SERIES),
            "picture": pictures.get("picture"),
        }
        try:
            if config_value(kube, wait_healthy(kube), "maxmemory-policy") != original:
                log(f"rolling_update: restoring maxmemory-policy {original} (not measured)")
                self.deployed.up(maxmemoryPolicy=original)
                wait_healthy(kube)
        except Exception as error:
            log(f"rolling_update: restoring {original} failed: {failure_text(error)}")

    # -- live engine changes -------------------------------------------------------------

    def migration(self) -> None:
        """Each of MIGRATIONS, ``--runs`` times, each run in a fresh release of its own."""
        sections = self.results.setdefault("migrations", {})
        for name, (source, target, crash) in MIGRATIONS.items():

            def once(
                _: int, source: str = source, target: str = target, crash: bool = crash
            ) -> dict[str, Any]:
                start = engine_overrides(source)
                change = engine_overrides(target)
                if start["engine"] != change["engine"]:
                    change["acknowledgeOneWayMigration"] = "true"
                with own_stack(MIGRATION_STACK, MIGRATION_NAMESPACE, **start) as release:
                    release.up()
                    start_client_pod(release.kube)
                    return migrate_under_load(release, change, crash_master_midway=crash)

            sections[name] = summarize_runs(self.repeat(name, once), MIGRATION_SERIES)
            self.save()

    # -- credentials ---------------------------------------------------------------------

    def credentials(self) -> None:
        """Rotation then revocation, ``--runs`` times in one release of its own (generation
        1 -> 2, revoke 1; 2 -> 3, revoke 2; ...), so the local stack keeps its password."""
        engine = engine_overrides(self.results["engine"])
        with own_stack(CREDENTIALS_STACK, CREDENTIALS_NAMESPACE, **engine) as release:
            release.up()
            start_client_pod(release.kube)

            def once(index: int) -> dict[str, Any]:
                measured = rotate_and_revoke(release, generation=index + 1)
                rotation, revocation = measured["rotation"], measured["revocation"]
                return {
                    "generation": measured["generation"],
                    **{f"rotation_{k}": v for k, v in rotation.items()},
                    **{f"revocation_{k}": v for k, v in revocation.items()},
                    "old_password_refused_everywhere": revocation["old_password_refused_everywhere"]
                    and revocation["old_admin_password_refused_everywhere"],
                    "servers_rolled_by_revocation": revocation["servers_rolled"],
                }

            runs = self.repeat("credentials", once)
        self.results["credentials"] = {
            **summarize_runs(runs, CREDENTIAL_SERIES),
            "note": "rotation: pulumi up bumping passwordGeneration and"
            " internalPasswordGeneration under a writer on the old password through redis_url"
            " (every pod rolls) and a second one started on the new password once the Secret"
            " holds it (its gap counts from its first confirmed write); revocation: pulumi up"
            " setting revokedPasswordGeneration and revokedInternalPasswordGeneration to the"
            " old generation under a writer on the new password (only the proxy rolls, then"
            " the Jobs); gaps are the longest stretch without a confirmed write during pulumi"
            " up",
        }

    # -- TLS on beside TLS off -----------------------------------------------------------

    def tls(self) -> None:
        """redis-benchmark through ``redis-service`` and the SIGKILL and graceful failovers
        (``--runs`` each), in the local stack (TLS off) and in a release of its own with TLS
        on (a CA cert-manager creates), same engine, one after the other."""
        off = self.measure_tls_mode(self.deployed, "off")
        engine = engine_overrides(self.results["engine"])
        with own_stack(TLS_STACK, TLS_NAMESPACE, tls=json.dumps(TLS_CONFIG), **engine) as release:
            release.up()
            start_client_pod(release.kube)
            on = self.measure_tls_mode(release, "on")
        errors = off.pop("errors") + on.pop("errors")
        self.results["tls"] = {
            "off": off,
            "on": on,
            "throughput_ratio_on_over_off": tls_bench.ratios(on["throughput"], off["throughput"]),
            "errors": errors,
            "note": "redis-benchmark (C, client pod, throwaway ACL user) through redis-service:"
            " 32 connections, 64-byte values, 10,000 keys; TLS passes through the proxy to the"
            " master. Failovers: the writer through redis_url (rediss:// with the CA output"
            " when on).",
        }

    def tls_transition(self) -> None:
        """TLS turned on for a running release as the README's runbook does it (the
        transition mode, then TLS only) under writers, ``--runs`` times, each in a fresh
        release of its own on the measured engine."""
        engine = engine_overrides(self.results["engine"])

        def once(_: int) -> dict[str, Any]:
            with own_stack(TLS_STACK, TLS_NAMESPACE, **engine) as release:
                release.up()
                start_client_pod(release.kube)
                measured = turn_tls_on(release, TLS_CONFIG)
            return {
                **{f"transition_{k}": v for k, v in measured["transition"].items()},
                **{f"tls_only_{k}": v for k, v in measured["tls_only"].items()},
                "masters_after": measured["masters_after"],
            }

        runs = self.repeat("tls_transition", once)
        self.results["tls_transition"] = {
            **summarize_runs(runs, TLS_TRANSITION_SERIES),
            "note": "pulumi up with tls.plaintext true under a writer on the plain redis_url,"
            " then with plaintext false under a writer on the rediss:// redis_url published by"
            " then (CA from the outputs); gaps are the longest stretch without a confirmed"
            " write during each pulumi up",
        }

    def measure_tls_mode(self, release: Deployed, mode: str) -> dict[str, Any]:
        kube = release.kube
        wait_healthy(kube)
        log(f"tls {mode}: redis-benchmark through redis-service")
        throughput = tls_bench.run_benchmarks(kube, release.url, release.ca)
        log("  " + ", ".join(f"{k}={v['ops_per_second']:.0f}/s" for k, v in throughput.items()))
        figures: dict[str, Any] = {"throughput": throughput, "errors": []}
        for name in TLS_FAILOVERS:

            def once(_: int, name: str = name) -> dict[str, Any]:
                inject = getattr(scenarios, name)(kube)
                measured = scenarios.run_scenario(name, kube, release.url, inject, ca=release.ca)
                return measured.as_dict()

            runs = self.repeat(f"tls {mode} {name}", once)
            summarized = summarize_runs(runs, SCENARIO_SERIES)
            figures["errors"] += summarized["errors"]
            figures[name] = summarized
        return figures

    # -- metrics on beside metrics off ---------------------------------------------------

    def metrics(self) -> None:
        """redis-benchmark through ``redis-service`` in the bench's own release with its
        metrics switched on and off by ``pulumi up``, alternately (on, off, on, off ...:
        ``--runs`` phases of each), so both sides see the same release, data and drift of
        the machine; per case the median over the phases. The exporters are scraped every
        5 s by the local Prometheus while on, and their CPU and memory read meanwhile."""
        kube = self.deployed.kube
        metrics_on = self.deployed.stack.get_config("redis:metrics").value
        metrics_off = json.dumps({"enabled": False})
        deploy_prometheus([stack_settings(self.deployed.stack)])
        samples: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        exporters: dict[str, dict[str, float]] = {}
        elapsed = 0.0
        try:
            for index in range(self.args.runs):
                for mode in ("on", "off"):
                    log(f"metrics {mode}, phase {index + 1}/{self.args.runs}: pulumi up")
                    self.deployed.up(metrics=metrics_on if mode == "on" else metrics_off)
                    wait_healthy(kube)
                    pods = kube.redis_pods()
                    pids = (
                        {p: kube.container_pid(p, "exporter") for p in pods} if mode == "on" else {}
                    )
                    before = {pod: process_usage(pid) for pod, pid in pids.items()}
                    started = time.monotonic()
                    samples[mode].append(
                        tls_bench.run_benchmarks(kube, self.deployed.url, self.deployed.ca)
                    )
                    if mode == "on":
                        elapsed = time.monotonic() - started
                        exporters = exporter_usage(
                            before, {p: process_usage(pid) for p, pid in pids.items()}, elapsed
                        )
                    log(
                        "  "
                        + ", ".join(
                            f"{k}={v['ops_per_second']:.0f}/s" for k, v in samples[mode][-1].items()
                        )
                    )
        finally:
            log("metrics: back on")
            self.deployed.up(metrics=metrics_on)
            wait_healthy(kube)
        on, off = (tls_bench.median_samples(samples[mode]) for mode in ("on", "off"))
        log(f"  exporters over {elapsed:.0f} s: {exporters}")
        self.results["metrics"] = {
            "on": {"throughput": on, "exporters": exporters, "seconds": round(elapsed, 1)},
            "off": {"throughput": off},
            "throughput_ratio_on_over_off": tls_bench.ratios(on, off),
            "errors": [],
            "note": "redis-benchmark (C, client pod, throwaway ACL user) through redis-service"
            " as in the tls section, in one release whose redis:metrics was switched on and"
            " off by pulumi up, alternately, --runs phases each; per case the median over"
            " the phases. On: the exporters scraped every 5 s (the server on /metrics, the"
            " Sentinel on /scrape) by the local Prometheus. Exporter CPU from /proc over the"
            " last on phase's benchmarks, RSS at their end.",
        }

    # -- idle soak -----------------------------------------------------------------------

    def soak(self) -> None:
        kube = self.kube
        seconds = float(self.args.soak_seconds)
        master = wait_healthy(kube)
        epoch_before = config_epoch(kube, master)
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        started = time.monotonic()
        epochs = [epoch_before]
        log(f"soak: idle for {seconds:g} s")
        while (left := seconds - (time.monotonic() - started)) > 0:
            time.sleep(min(SOAK_CHECK_SECONDS, left))
            epochs.append(max(config_epoch(kube, pod) for pod in kube.redis_pods()))
        counts = dict.fromkeys(SENTINEL_EVENTS, 0)
        lines: list[str] = []
        for pod in kube.redis_pods():
            text = kube.run("logs", pod, "-c", "sentinel", f"--since-time={since}").stdout
            for key, needle in SENTINEL_EVENTS.items():
                found = [f"{pod}: {line}" for line in text.splitlines() if needle in line]
                counts[key] += len(found)
                lines += found
        self.results["soak"] = {
            "seconds": seconds,
            "master_before": master,
            "master_after": wait_healthy(kube),
            "config_epoch_before": epoch_before,
            "config_epoch_after": epochs[-1],
            "false_failovers": epochs[-1] - epoch_before,
            **counts,
            "event_lines": lines[:50],
        }

    # -- throughput ----------------------------------------------------------------------

    def throughput(self) -> None:
        master = wait_healthy(self.kube)
        host = master_host(self.deployed.outputs["sentinel_hosts"], master)
        direct = replace_host(self.url, host)
        config = LoadConfig(
            seconds=self.args.throughput_seconds,
            processes=self.args.throughput_processes,
            pipeline_depth=self.args.pipeline_depth,
        )
        log(f"throughput: redis-service vs {host} directly, {config}")
        try:
            measured = run_throughput(self.kube, self.url, direct, config)
        finally:
            self.clean(f"{config.prefix}:*")
        master_after = wait_healthy(self.kube)
        self.results["throughput"] = {
            "master": master,
            "master_after": master_after,
            "seconds_per_case": config.seconds,
            "processes": config.processes,
            "keys": config.keys,
            "value_bytes": config.value_bytes,
            "pipeline_depth": config.pipeline_depth,
            "client_cpu_limit": self.client_cpu_limit(),
            **measured,
        }

    def client_cpu_limit(self) -> str | None:
        spec = self.kube.json("get", "pod", CLIENT_POD)["spec"]["containers"][0]
        limit: str | None = spec.get("resources", {}).get("limits", {}).get("cpu")
        return limit

    # ------------------------------------------------------------------------------------

    def run(self, selected: list[str]) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [("throughput", self.throughput)]
        steps += [(n, functools.partial(self.failure_scenario, n)) for n in FAILURE_SCENARIOS]
        steps += [
            ("persistence", self.persistence),
            ("rolling_update", self.rolling_update),
            ("soak", self.soak),
            ("migration", self.migration),
            ("credentials", self.credentials),
            ("tls", self.tls),
            ("tls_transition", self.tls_transition),
            ("metrics", self.metrics),
        ]
        for name, step in steps:
            if name not in selected:
                continue
            if name == "soak" and not self.args.soak_seconds:
                log("soak: skipped (--soak-seconds 0)")
                continue
            try:
                step()
            except Exception as error:
                log(f"{name} failed: {failure_text(error)}")
                traceback.print_exc(file=sys.stderr)
                self.results.setdefault("failed", {})[name] = failure_text(error)
            self.save()


def exporter_usage(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], elapsed: float
) -> dict[str, dict[str, float]]:
    """Per pod: the exporter's CPU seconds and share of a core over ``elapsed``, its RSS."""
    return {
        pod: {
            "cpu_seconds": round(after[pod]["cpu_seconds"] - before[pod]["cpu_seconds"], 3),
            "cpu_share": round(
                (after[pod]["cpu_seconds"] - before[pod]["cpu_seconds"]) / elapsed, 5
            ),
            "rss_mib": after[pod]["rss_mib"],
        }
        for pod in after
    }


def throttling_delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Counter increases per pod whose Sentinel ran throughout (same container before and
    after: counters that went down belong to a restarted one, and are left out)."""
    delta: dict[str, dict[str, int]] = {}
    for pod, counters in after.items():
        old = before.get(pod)
        if old is None or any(counters[k] < old.get(k, 0) for k in counters):
            continue
        delta[pod] = {k: counters[k] - old.get(k, 0) for k in counters}
    return delta


def timed(action: Callable[[], object]) -> float:
    """Seconds ``action`` took."""
    started = time.monotonic()
    action()
    return round(time.monotonic() - started, 3)


def run_script(*path: str) -> None:
    """One of the repository's set-up scripts; its output goes to the log only on failure."""
    result = subprocess.run([str(REPO.joinpath(*path))], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{'/'.join(path)} failed:\n{result.stderr[-3000:]}")


def measure_infra(results: dict[str, Any]) -> Deployed:
    """Times the set-up path with warm caches: tool and image checks, a cluster stopped and
    started again, the test stack created, previewed, updated with no change, destroyed and
    created again. Cold builds take tens of minutes and are not repeated here."""
    figures: dict[str, Any] = {}
    results["infra"] = figures
    log("infra: tools and images (warm caches)")
    figures["bootstrap_tools_warm_seconds"] = timed(
        lambda: run_script("scripts", "bootstrap-tools.sh")
    )

    def build_cluster() -> None:
        run_script("scripts", "cluster", "build.sh")
        run_script("scripts", "cluster", "images.sh")

    figures["cluster_build_warm_seconds"] = timed(build_cluster)
    log("infra: stopping and starting the local cluster")
    figures["cluster_down_seconds"] = timed(lambda: run_script("scripts", "cluster", "down.sh"))
    figures["cluster_up_seconds"] = timed(start_cluster)
    deployed = local_stack()
    log("infra: pulumi up (create), preview, up (no change), destroy, up (create)")
    figures["up_create_seconds"] = timed(deployed.up)
    figures["preview_seconds"] = timed(
        lambda: figures.__setitem__("preview_changes", deployed.preview_changes())
    )
    figures["up_no_change_seconds"] = timed(deployed.up)
    figures["destroy_seconds"] = timed(lambda: deployed.stack.destroy(color="never"))
    figures["up_create_again_seconds"] = timed(deployed.up)
    log("  " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    return deployed


def local_down_after_seconds() -> float:
    """``redis:downAfterMilliseconds`` of the local stack, in seconds: the crash targets'
    base."""
    config = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]
    return int(config.get("redis:downAfterMilliseconds", 2000)) / 1000


def engine_stack(engine_id: str) -> tuple[dict[str, str] | None, str]:
    """``deploy_local`` arguments: the local stack itself for its own engine, else a stack of
    the engine's own (``test-redis-8-0`` in ``sophia-ai-test-redis-8-0``)."""
    if engine_id == default_engine():
        return None, ""
    return engine_config(engine_id), "-" + engine_id.replace(".", "-")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = list(dict.fromkeys(args.only or SECTIONS))
    engine = args.engine or default_engine()
    stack = engine_stack(engine)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": engine,
        "down_after_seconds": local_down_after_seconds(),
        "machine": machine(),
        "git_commit": git_commit(),
        "runs": args.runs,
        "selected": selected,
        "scenarios": {},
    }
    try:
        if "infra" in selected:
            deployed = measure_infra(results)
        else:
            log("starting the local cluster")
            start_cluster()
            log(f"deploying the local stack on {engine}")
            deployed = deploy_local(*stack)
        log("starting the client pod")
        start_client_pod(deployed.kube)
    except Exception as error:
        print(f"error: the benchmark could not start: {failure_text(error)}", file=sys.stderr)
        return 2
    bench = Bench(deployed, args, results)
    try:
        bench.run(selected)
    finally:
        bench.save()
        if stack[0] is not None:
            # Its pods' CPU requests would leave later deploys unschedulable on a small node.
            log(f"destroying the {engine} stack")
            deployed.stack.destroy(color="never")
    print()
    print(summary(results))
    print(f"\nresults: {args.results}")
    incomplete = list(results.get("failed", {}))
    sections = {
        **results["scenarios"],
        **{k: results[k] for k in SECTIONS if k in results and k != "infra"},
    }
    incomplete += [name for name, section in sections.items() if section.get("errors")]
    if incomplete:
        print(f"incomplete: runs of {', '.join(incomplete)} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
