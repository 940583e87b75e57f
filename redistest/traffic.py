"""A sequenced writer that runs in the client pod, and the analysis of what it saw.

The writer knows only ``redis_url``: it writes ``<prefix>:<n> = n`` (no TTL) and counts a
write as confirmed only when ``WAIT 1 500`` reports a replica has it. Every 100 writes it notes
the serving master's replication ID, which a promotion changes, to count the switchovers its
clients went through, and rewrites a small progress file (``/tmp/<prefix>.progress``) that
callers poll to know it is writing. Client retries are off and the socket timeout is 0.5 s, so
the measured gaps are the real unavailability.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from .kube import CLIENT_POD, Kube
from .wait import wait_until

WRITER = r"""
import json, os, sys, time
import redis
base = sys.argv[1]
with open(base + ".cfg") as handle:
    cfg = json.load(handle)
os.unlink(base + ".cfg")
tls = {}
if cfg.get("ca"):
    with open(base + ".ca", "w") as handle:
        handle.write(cfg["ca"])
    tls = {"ssl_ca_certs": base + ".ca"}
client = redis.Redis.from_url(cfg["url"], socket_timeout=0.5, socket_connect_timeout=0.5,
                              retry_on_timeout=False, health_check_interval=0, **tls)
confirmed, readonly, errors, unconfirmed, masters, failed = [], [], {}, 0, [], []
seq = 0
deadline = time.time() + cfg["duration"]
while time.time() < deadline:
    if seq % 200 == 0 and os.path.exists(base + ".stop"):
        break
    seq += 1
    try:
        if seq % 100 == 1:
            replid = client.info("replication")["master_replid"]
            if not masters or masters[-1][1] != replid:
                masters.append((time.time(), replid))
            with open(base + ".progress.tmp", "w") as handle:
                json.dump({"at": time.time(), "confirmed": len(confirmed),
                           "last_confirmed": confirmed[-1][1] if confirmed else None,
                           "masters": len(masters)}, handle)
            os.replace(base + ".progress.tmp", base + ".progress")
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
        if len(failed) < 20000:
            failed.append(time.time())
        time.sleep(0.01)
with open(base + ".tmp", "w") as handle:
    json.dump({"confirmed": confirmed, "readonly": readonly, "errors": errors,
               "unconfirmed": unconfirmed, "attempts": seq, "ended": time.time(),
               "masters": masters, "failed": failed}, handle)
os.rename(base + ".tmp", base + ".out")
"""

VERIFIER = r"""
import json, sys, time
import redis
cfg = json.loads(sys.stdin.read())
tls = {}
if cfg.get("ca"):
    with open("/tmp/verifier.ca", "w") as handle:
        handle.write(cfg["ca"])
    tls = {"ssl_ca_certs": "/tmp/verifier.ca"}
client = redis.Redis.from_url(cfg["url"], socket_timeout=5, **tls)
missing = []
seqs = cfg["seqs"]

def read(keys, attempts=10):
    # The cluster's DNS or the proxy can fail a connection now and then (seen once in CI: a
    # name resolution failure); a read that keeps failing still fails after 10 s.
    for attempt in range(attempts):
        try:
            return client.mget(keys)
        except redis.exceptions.ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(1)

for start in range(0, len(seqs), 1000):
    batch = seqs[start:start + 1000]
    values = read([f"{cfg['prefix']}:{n}" for n in batch])
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
    masters: list[tuple[float, str]] = field(default_factory=list)
    """(when, replication ID) each time the master behind ``redis_url`` was a new one."""
    failed: list[float] = field(default_factory=list)
    """When each write failed with an error other than READONLY (the first 20,000)."""

    @property
    def switchovers(self) -> int:
        """How many times the writer found a newly promoted master behind ``redis_url``."""
        return max(len(self.masters) - 1, 0)


@dataclass(frozen=True)
class Writer:
    """A writer running detached in the client pod; its files live under ``/tmp/<prefix>``.

    Detached, because a kubectl exec stream held open for minutes can be cut by the API
    server, which would lose the writer's results along with it.
    """

    kube: Kube
    prefix: str

    @property
    def base(self) -> str:
        return f"/tmp/{self.prefix}"


def start_writer(kube: Kube, url: str, prefix: str, duration: float, ca: str = "") -> Writer:
    """Starts the writer in the client pod; the URL travels on stdin into a file, never argv.
    ``ca``: the PEM CA bundle that verifies the servers of a ``rediss://`` URL."""
    writer = Writer(kube, prefix)
    config = json.dumps({"url": url, "prefix": prefix, "duration": duration, "ca": ca})
    kube.run(
        "exec",
        "-i",
        CLIENT_POD,
        "--",
        "sh",
        "-c",
        'umask 077; cat > "$0.cfg"',
        writer.base,
        stdin=config,
    )
    kube.run(
        "exec",
        CLIENT_POD,
        "--",
        "sh",
        "-c",
        'nohup python3 -c "$1" "$0" > "$0.log" 2>&1 &',
        writer.base,
        WRITER,
    )
    return writer


def stop_writer(writer: Writer) -> None:
    """Asks the writer to stop before its duration is up."""
    writer.kube.run("exec", CLIENT_POD, "--", "touch", f"{writer.base}.stop")


@dataclass(frozen=True)
class Progress:
    """The writer's progress file: written each time it checks which master serves it."""

    at: float
    """When it last checked the master's replication ID (wall clock)."""
    confirmed: int
    last_confirmed: float | None
    """When its latest confirmed write (before that check) was confirmed."""
    masters: int


def writer_progress(writer: Writer) -> Progress | None:
    """The writer's latest progress, or None before its first check."""
    result = writer.kube.run(
        "exec", CLIENT_POD, "--", "cat", f"{writer.base}.progress", check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        return None
    data = json.loads(result.stdout)
    return Progress(
        at=float(data["at"]),
        confirmed=int(data["confirmed"]),
        last_confirmed=None if data["last_confirmed"] is None else float(data["last_confirmed"]),
        masters=int(data["masters"]),
    )


def wait_for_writes(writer: Writer, since: float, timeout: float = 60) -> Progress:
    """Waits until the writer has confirmed a write after ``since`` (wall clock, which the pods
    share with this host) and has checked, after ``since`` too, which master serves it: from
    then on its results cover the state at ``since``. Fails with the writer's log if not."""

    def written() -> Progress | None:
        progress = writer_progress(writer)
        if progress is None or progress.last_confirmed is None:
            return None
        return progress if progress.last_confirmed > since and progress.at > since else None

    try:
        return wait_until(
            written, timeout, f"the writer {writer.prefix} to confirm writes", interval=0.5
        )
    except AssertionError as error:
        log = writer.kube.run("exec", CLIENT_POD, "--", "cat", f"{writer.base}.log", check=False)
        raise AssertionError(f"{error}; writer log: {log.stdout[-2000:]!r}") from None


def remove_writer_files(writer: Writer) -> None:
    """Removes the writer's files, its configuration with the URL's password among them: the
    client pod's ``/tmp`` is a small emptyDir, and a benchmark's writers fill it (each keeps
    every confirmed write, megabytes a run; the kubelet evicted the pod after 19 runs)."""
    writer.kube.run("exec", CLIENT_POD, "--", "sh", "-c", 'rm -f "$0".*', writer.base, check=False)


def finish_writer(writer: Writer, prefix: str, timeout: float) -> WriterRun:
    """Waits for the writer to end (its duration, or a stop), then reads what it saw."""

    def output() -> str | None:
        result = writer.kube.run("exec", CLIENT_POD, "--", "cat", f"{writer.base}.out", check=False)
        return result.stdout if result.returncode == 0 else None

    try:
        text = wait_until(output, timeout, f"the writer {prefix} to end")
    except AssertionError:
        stop_writer(writer)
        try:
            text = wait_until(output, 30, f"the writer {prefix} to end once asked to stop")
        except AssertionError:
            log = writer.kube.run(
                "exec", CLIENT_POD, "--", "cat", f"{writer.base}.log", check=False
            )
            raise AssertionError(f"writer produced no result: {log.stdout[-2000:]}") from None
    data = json.loads(text)
    remove_writer_files(writer)
    return WriterRun(
        confirmed=[(int(s), float(t)) for s, t in data["confirmed"]],
        readonly=data["readonly"],
        errors=data["errors"],
        unconfirmed=data["unconfirmed"],
        attempts=data["attempts"],
        prefix=prefix,
        ended=data.get("ended"),
        masters=[(float(t), str(replid)) for t, replid in data.get("masters", [])],
        failed=[float(t) for t in data.get("failed", [])],
    )


def missing_confirmed(kube: Kube, url: str, run: WriterRun, ca: str = "") -> list[int]:
    """Confirmed writes that cannot be read back through ``redis_url``."""
    payload = {"url": url, "prefix": run.prefix, "seqs": [s for s, _ in run.confirmed], "ca": ca}
    missing: list[int] = kube.client_python(VERIFIER, payload)["missing"]
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
    gap_start, gap_end = longest_gap_span(times, start, end)
    return gap_end - gap_start


def longest_gap_span(times: list[float], start: float, end: float) -> tuple[float, float]:
    """Where the longest gap of :func:`longest_gap` begins and ends."""
    points = [start, *[t for t in times if start < t < end], end]
    return max(itertools.pairwise(points), key=lambda pair: pair[1] - pair[0])


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
