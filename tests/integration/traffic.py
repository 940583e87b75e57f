"""A sequenced writer that runs in the client pod, and the analysis of what it saw.

The writer knows only ``redis_url``: it writes ``<prefix>:<n> = n`` (no TTL) and counts a
write as confirmed only when ``WAIT 1 500`` reports a replica has it. Client retries are off
and the socket timeout is 0.5 s, so the measured gaps are the real unavailability.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from .kube import CLIENT_POD, Kube, kube_env, kubectl_path

WRITER = r"""
import json, select, sys, time
import redis
cfg = json.loads(sys.stdin.readline())
client = redis.Redis.from_url(cfg["url"], socket_timeout=0.5, socket_connect_timeout=0.5,
                              retry_on_timeout=False, health_check_interval=0)
confirmed, readonly, errors, unconfirmed = [], [], {}, 0
seq = 0
deadline = time.time() + cfg["duration"]
while time.time() < deadline:
    if seq % 200 == 0 and select.select([sys.stdin], [], [], 0)[0]:
        break  # "stop" or end of input from the test
    seq += 1
    try:
        client.set(f"{cfg['prefix']}:{seq}", seq)
        if client.execute_command("WAIT", 1, 500) >= 1:
            confirmed.append((seq, time.time()))
        else:
            unconfirmed += 1
    except redis.exceptions.ReadOnlyError:
        readonly.append(time.time())
    except Exception as error:
        name = type(error).__name__ + ":" + str(error).split(" ")[0][:40]
        errors[name] = errors.get(name, 0) + 1
        time.sleep(0.01)
print(json.dumps({"confirmed": confirmed, "readonly": readonly, "errors": errors,
                  "unconfirmed": unconfirmed, "attempts": seq, "ended": time.time()}))
"""

VERIFIER = r"""
import json, sys
import redis
cfg = json.loads(sys.stdin.read())
client = redis.Redis.from_url(cfg["url"], socket_timeout=5)
missing = []
seqs = cfg["seqs"]
for start in range(0, len(seqs), 1000):
    batch = seqs[start:start + 1000]
    values = client.mget([f"{cfg['prefix']}:{n}" for n in batch])
    missing += [n for n, v in zip(batch, values) if v is None or int(v) != n]
print(json.dumps({"missing": missing}))
"""


@dataclass
class WriterRun:
    """What the writer saw, in wall-clock seconds (pods share the host's clock)."""

    confirmed: list[tuple[int, float]]
    readonly: list[float]
    errors: dict[str, int]
    unconfirmed: int
    attempts: int
    prefix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    ended: float | None = None
    """When the writer stopped writing (None: unknown)."""


def start_writer(kube: Kube, url: str, prefix: str, duration: float) -> subprocess.Popen[str]:
    """Starts the writer in the client pod; the URL travels on stdin, never in argv."""
    process = subprocess.Popen(
        [
            kubectl_path(),
            "-n",
            kube.namespace,
            "exec",
            "-i",
            CLIENT_POD,
            "--",
            "python3",
            "-c",
            WRITER,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kube_env(),
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps({"url": url, "prefix": prefix, "duration": duration}) + "\n")
    process.stdin.flush()
    return process


def stop_writer(process: subprocess.Popen[str]) -> None:
    """Asks the writer to stop before its duration is up."""
    assert process.stdin is not None
    if not process.stdin.closed:
        process.stdin.write("stop\n")
        process.stdin.close()
    process.stdin = None  # communicate() must not flush it again


def finish_writer(process: subprocess.Popen[str], prefix: str, timeout: float) -> WriterRun:
    """Waits for the writer to end on its own (its duration), then reads what it saw."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    stop_writer(process)
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode != 0:
        raise AssertionError(f"writer failed: {stderr.strip()[-2000:]}")
    data = json.loads(stdout)
    return WriterRun(
        confirmed=[(int(s), float(t)) for s, t in data["confirmed"]],
        readonly=data["readonly"],
        errors=data["errors"],
        unconfirmed=data["unconfirmed"],
        attempts=data["attempts"],
        prefix=prefix,
        ended=data.get("ended"),
    )


def missing_confirmed(kube: Kube, url: str, run: WriterRun) -> list[int]:
    """Confirmed writes that cannot be read back through ``redis_url``."""
    payload = json.dumps({"url": url, "prefix": run.prefix, "seqs": [s for s, _ in run.confirmed]})
    output = kube.run("exec", "-i", CLIENT_POD, "--", "python3", "-c", VERIFIER, stdin=payload)
    missing: list[int] = json.loads(output.stdout)["missing"]
    return missing


def unavailability(run: WriterRun, event: float, window: float = 30.0) -> float:
    """The longest gap between consecutive confirmed writes from ``event`` to ``event+window``,
    counting from the last confirmed write before the event, and up to the end of the window
    (or the writer's end, if earlier): writes that stop for good inside the window count."""
    times = [t for _, t in run.confirmed]
    before = [t for t in times if t <= event]
    inside = [t for t in times if event < t <= event + window]
    if not inside:
        return window
    end = event + window if run.ended is None else min(event + window, run.ended)
    points = ([before[-1]] if before else [event]) + inside + [max(end, inside[-1])]
    return max(b - a for a, b in itertools.pairwise(points))


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch in ``[start, end)`` without a confirmed write, counting from
    ``start`` (``end - start`` when none landed inside)."""
    points = [start, *[t for t in times if start < t < end], end]
    return max(b - a for a, b in itertools.pairwise(points))


def settled_at(run: WriterRun, event: float, hold: float = 2.0) -> float | None:
    """When the new master had served confirmed writes without a gap above 0.5 s for
    ``hold`` seconds after the event; None if it never did."""
    times = [t for _, t in run.confirmed if t > event]
    streak_start: float | None = None
    previous: float | None = None
    for t in times:
        if previous is None or t - previous > 0.5:
            streak_start = t
        previous = t
        if streak_start is not None and t - streak_start >= hold:
            return t
    return None


def readonly_after_settle(run: WriterRun, event: float) -> int:
    settle = settled_at(run, event)
    if settle is None:
        return len([t for t in run.readonly if t > event])
    return len([t for t in run.readonly if t > settle])


def now() -> float:
    return time.time()
