"""What TLS costs: ``redis-benchmark`` through ``redis-service`` with TLS off and on.

``redis-benchmark`` (C, from the client image) runs in the client pod against the canonical
Service, as a throwaway ACL user created on every server for the run and deleted after it, so
no real credential is on a command line. The shell's ``times`` after it gives the benchmark's
own CPU, to show the load generator is not what limits the figures.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redistest.kube import CLIENT_POD, Kube

BENCH_USER = "bench-throwaway"
BENCH_KEYS = "~key:*"
"""redis-benchmark's keys (``key:__rand_int__``)."""
CA_FILE = "/tmp/bench-tls-ca.crt"


@dataclass(frozen=True)
class BenchmarkCase:
    """One redis-benchmark run: a command, its pipeline depth, requests and connections."""

    command: str
    pipeline: int
    requests: int
    clients: int = 32

    @property
    def name(self) -> str:
        return self.command.lower() + (f"_pipeline{self.pipeline}" if self.pipeline > 1 else "")


CASES = (
    BenchmarkCase("SET", 1, 100_000),
    BenchmarkCase("GET", 1, 100_000),
    BenchmarkCase("SET", 16, 400_000),
    BenchmarkCase("GET", 16, 400_000),
)


def benchmark_command(host: str, port: int, case: BenchmarkCase, tls: bool) -> str:
    """The shell command the client pod runs: redis-benchmark in CSV, then ``times``; the
    password comes from the environment variable ``BENCH_PASSWORD`` set on stdin's line."""
    parts = [
        "redis-benchmark",
        f"-h {host}",
        f"-p {port}",
        f"--user {BENCH_USER}",
        '-a "$BENCH_PASSWORD"',
        f"-t {case.command.lower()}",
        f"-n {case.requests}",
        f"-c {case.clients}",
        f"-P {case.pipeline}",
        "-r 10000",
        "-d 64",
        "--csv",
    ]
    if tls:
        parts += ["--tls", f"--cacert {CA_FILE}"]
    return " ".join(parts) + "; times"


def parse_output(text: str) -> dict[str, Any]:
    """ops/s and latency from redis-benchmark's CSV, and its CPU seconds from ``times``."""
    rows = [row for row in csv.reader(io.StringIO(text)) if row and row[0] != "test"]
    row = next((r for r in rows if len(r) >= 2 and re.fullmatch(r"[0-9.]+", r[1])), None)
    if row is None:
        raise ValueError(f"no redis-benchmark result in: {text[-500:]}")
    figures: dict[str, Any] = {"ops_per_second": float(row[1])}
    if len(row) >= 8:
        figures.update({"avg_ms": float(row[2]), "p50_ms": float(row[4]), "p99_ms": float(row[6])})
    clock = re.findall(r"(\d+)m([0-9.]+)s\s+(\d+)m([0-9.]+)s", text)
    if clock:
        user_min, user_s, sys_min, sys_s = clock[-1]
        figures["client_cpu_seconds"] = round(
            int(user_min) * 60 + float(user_s) + int(sys_min) * 60 + float(sys_s), 3
        )
    return figures


def run_benchmarks(kube: Kube, url: str, ca: str) -> dict[str, Any]:
    """Every case through the host and port of ``url`` (TLS when it is ``rediss://``)."""
    parts = urlsplit(url)
    tls = parts.scheme == "rediss"
    password = secrets.token_urlsafe(24)
    pods = kube.redis_pods()
    for pod in pods:
        kube.redis(
            pod,
            "ACL",
            "SETUSER",
            BENCH_USER,
            "reset",
            "on",
            f">{password}",
            BENCH_KEYS,
            "+set",
            "+get",
            "+ping",
            "+config|get",
            "+info",
        )
    if tls:
        kube.run("exec", "-i", CLIENT_POD, "--", "sh", "-c", f"cat > {CA_FILE}", stdin=ca)
    results: dict[str, Any] = {}
    try:
        for case in CASES:
            command = benchmark_command(str(parts.hostname), int(parts.port or 6379), case, tls)
            output = kube.run(
                "exec",
                "-i",
                CLIENT_POD,
                "--",
                "sh",
                "-c",
                "read -r BENCH_PASSWORD; export BENCH_PASSWORD; " + command,
                stdin=password + "\n",
                timeout=600,
            ).stdout
            measured = parse_output(output)
            measured["requests"] = case.requests
            measured["clients"] = case.clients
            results[case.name] = measured
    finally:
        for pod in pods:
            kube.redis(pod, "ACL", "DELUSER", BENCH_USER)
    return results


def median_benchmarks(kube: Kube, url: str, ca: str, runs: int) -> dict[str, Any]:
    """:func:`run_benchmarks` ``runs`` times; per case the run of median ops/s, with every
    run's ops/s beside it (a single short run of a 2-core VM is noisy)."""
    return median_samples([run_benchmarks(kube, url, ca) for _ in range(runs)])


def median_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per case of :func:`run_benchmarks` results, the sample of median ops/s, with every
    sample's ops/s beside it."""
    result: dict[str, Any] = {}
    for name in samples[0]:
        ordered = sorted((s[name] for s in samples), key=lambda f: f["ops_per_second"])
        result[name] = {
            **ordered[len(ordered) // 2],
            "runs_ops_per_second": [s[name]["ops_per_second"] for s in samples],
        }
    return result


def ratios(on: dict[str, Any], off: dict[str, Any]) -> dict[str, float | None]:
    """ops/s with TLS on over TLS off, per case."""
    out: dict[str, float | None] = {}
    for name, figures in on.items():
        base = off.get(name, {}).get("ops_per_second")
        out[name] = round(figures["ops_per_second"] / base, 4) if base else None
    return out
