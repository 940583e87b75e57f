"""Throughput through ``redis-service`` (HAProxy) against the master pod directly.

A load generator written in Python runs inside the client pod (``python3 -c``), with its
config, URL included, on standard input: the password is never on a command line. It forks
several processes, each with its own connection, that issue GET or SET for a bounded time,
one command per round trip or pipelined, and reports ops/s and latency percentiles (per
request, or per pipeline when pipelined).
"""

from __future__ import annotations

import inspect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redistest.kube import Kube


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ascending values, linearly interpolated between
    the closest ranks (numpy's default method)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    rank = (len(sorted_values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def latency_summary(latencies: Sequence[float]) -> dict[str, float | None]:
    """p50/p99/max of latencies in seconds, reported in milliseconds (None when empty)."""
    ordered = sorted(latencies)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(percentile(ordered, 50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


LOADGEN_BODY = r"""
import json, multiprocessing, sys, time
import redis

cfg = json.loads(sys.stdin.read())


def connect():
    return redis.Redis.from_url(cfg["url"], socket_timeout=cfg["timeout"],
                                socket_connect_timeout=cfg["timeout"])


def worker(index, conn):
    keys = [f"{cfg['prefix']}:{i}" for i in range(cfg["keys"])]
    value = b"v" * cfg["value_bytes"]
    depth, op = cfg["depth"], cfg["op"]
    latencies, errors, ops, n = [], {}, 0, index
    try:
        client = connect()
        client.ping()
    except Exception as error:
        conn.send({"ops": 0, "elapsed": 0.0, "latencies": [],
                   "errors": {type(error).__name__: 1}})
        return
    while time.time() < cfg["start_at"]:
        time.sleep(0.001)
    started = time.perf_counter()
    deadline = started + cfg["seconds"]
    while True:
        t0 = time.perf_counter()
        if t0 >= deadline:
            break
        try:
            if depth == 1:
                key = keys[n % len(keys)]
                n += 1
                client.set(key, value) if op == "SET" else client.get(key)
            else:
                pipe = client.pipeline(transaction=False)
                for _ in range(depth):
                    key = keys[n % len(keys)]
                    n += 1
                    pipe.set(key, value) if op == "SET" else pipe.get(key)
                pipe.execute()
        except Exception as error:
            name = type(error).__name__ + ":" + str(error).split(" ")[0][:40]
            errors[name] = errors.get(name, 0) + 1
            time.sleep(0.01)
            continue
        latencies.append(time.perf_counter() - t0)
        ops += depth
    conn.send({"ops": ops, "elapsed": time.perf_counter() - started,
               "latencies": latencies, "errors": errors})


def main():
    if cfg["op"] == "GET":
        client = connect()
        pipe = client.pipeline(transaction=False)
        for i in range(cfg["keys"]):
            pipe.set(f"{cfg['prefix']}:{i}", b"v" * cfg["value_bytes"])
        pipe.execute()
    context = multiprocessing.get_context("fork")
    cfg["start_at"] = time.time() + cfg["warmup"]
    workers = []
    for index in range(cfg["processes"]):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=worker, args=(index, sender), daemon=True)
        process.start()
        sender.close()
        workers.append((process, receiver))
    results = []
    for process, receiver in workers:
        try:
            results.append(receiver.recv())
        except EOFError:
            results.append({"ops": 0, "elapsed": 0.0, "latencies": [],
                            "errors": {"worker-died": 1}})
        process.join(cfg["timeout"] + 5)
    errors = {}
    for result in results:
        for name, count in result["errors"].items():
            errors[name] = errors.get(name, 0) + count
    latencies = sorted(t for result in results for t in result["latencies"])
    summary = latency_summary(latencies)
    print(json.dumps({
        "ops": sum(r["ops"] for r in results),
        "ops_per_second": round(sum(r["ops"] / r["elapsed"] for r in results if r["elapsed"]), 1),
        "samples": len(latencies),
        "errors": errors,
        "per_process_ops": [r["ops"] for r in results],
        **summary,
    }))


main()
"""


def loadgen_script() -> str:
    """The pod-side program: the percentile code above, then the generator."""
    return "\n".join(
        [
            "from __future__ import annotations",
            inspect.getsource(percentile),
            inspect.getsource(latency_summary),
            LOADGEN_BODY,
        ]
    )


def replace_host(url: str, host: str) -> str:
    """``url`` with its host replaced; the credentials, port, path and query are kept."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}{port}"))


def master_host(sentinel_hosts: Sequence[str], master_pod: str) -> str:
    """The stable DNS name of ``master_pod`` among the ``sentinel_hosts`` output
    (``<pod>.<headless service>.<namespace>.svc.<domain>:26379``)."""
    for entry in sentinel_hosts:
        host = entry.rsplit(":", 1)[0]
        if host.split(".", 1)[0] == master_pod:
            return host
    raise ValueError(f"{master_pod} is not among the Sentinel hosts {list(sentinel_hosts)}")


@dataclass(frozen=True)
class Case:
    op: str
    depth: int

    @property
    def name(self) -> str:
        return self.op.lower() + (f"_pipeline{self.depth}" if self.depth > 1 else "")

    @property
    def latency_per(self) -> str:
        return "request" if self.depth == 1 else f"pipeline of {self.depth}"


def cases(depth: int) -> list[Case]:
    return [Case(op, d) for d in (1, depth) for op in ("SET", "GET")]


@dataclass(frozen=True)
class LoadConfig:
    seconds: float
    processes: int
    pipeline_depth: int
    keys: int = 1000
    value_bytes: int = 64
    warmup_seconds: float = 1.0
    timeout_seconds: float = 5.0
    prefix: str = "bench-throughput"


def run_case(kube: Kube, url: str, case: Case, config: LoadConfig) -> dict[str, Any]:
    """One bounded load run from the client pod; the URL goes in on stdin."""
    payload = {
        "url": url,
        "op": case.op,
        "depth": case.depth,
        "seconds": config.seconds,
        "processes": config.processes,
        "keys": config.keys,
        "value_bytes": config.value_bytes,
        "warmup": config.warmup_seconds,
        "timeout": config.timeout_seconds,
        "prefix": config.prefix,
    }
    timeout = config.seconds + config.warmup_seconds + 120
    result: dict[str, Any] = kube.client_python(loadgen_script(), payload, timeout=timeout)
    result["latency_per"] = case.latency_per
    return result


def ratio(canonical: float, direct: float) -> float | None:
    return round(canonical / direct, 4) if direct > 0 else None


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-case and overall (mean over cases) canonical/direct ops/s ratios."""
    per_case: dict[str, float | None] = {}
    for name, pair in results.items():
        canonical, direct = pair["canonical"], pair["direct"]
        per_case[name] = ratio(canonical["ops_per_second"], direct["ops_per_second"])
    known = [r for r in per_case.values() if r is not None]
    return {
        "throughput_ratio": round(statistics.mean(known), 4) if known else None,
        "throughput_ratio_per_case": per_case,
    }


def run_throughput(
    kube: Kube, canonical_url: str, direct_url: str, config: LoadConfig
) -> dict[str, Any]:
    """Every case through both paths, alternating which goes first to spread drift."""
    results: dict[str, dict[str, Any]] = {}
    for index, case in enumerate(cases(config.pipeline_depth)):
        paths = [("canonical", canonical_url), ("direct", direct_url)]
        if index % 2:
            paths.reverse()
        results[case.name] = {path: run_case(kube, url, case, config) for path, url in paths}
    comparison = compare(results)
    for name, pair in results.items():
        pair["throughput_ratio"] = comparison["throughput_ratio_per_case"][name]
    return {"cases": results, **comparison}
