"""A sequenced, WAIT-confirmed writer against a loopback set, and the check of what it kept.

It follows the master as a Sentinel-aware client does (``GET-MASTER-ADDR-BY-NAME`` on any
Sentinel that answers), writes ``<prefix>:<n> = n`` as the application user, and counts a write
as confirmed only when ``WAIT <acks>`` reports that many replicas have it (1 by default, as the
integration suite's writer). Bounded by count and time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis

from components.naming import REDIS_PORT

from .loopback import LoopbackSet, call

MAX_WRITES = 200_000
MAX_SECONDS = 240.0


@dataclass
class WriterResult:
    confirmed: list[int] = field(default_factory=list)
    readonly_errors: int = 0
    other_errors: int = 0
    attempts: int = 0
    masters_seen: list[str] = field(default_factory=list)


class Writer:
    def __init__(
        self,
        cluster: LoopbackSet,
        prefix: str = "w",
        password: str | None = None,
        acks: int = 1,
    ) -> None:
        self.cluster = cluster
        self.acks = acks
        self.prefix = prefix
        self.password = password
        self.result = WriterResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> WriterResult:
        self._stop.set()
        self._thread.join(10)
        return self.result

    def wait_confirmed(self, count: int, timeout: float = 30) -> None:
        """Blocks until ``count`` more writes are confirmed than when called."""
        target = len(self.result.confirmed) + count
        deadline = time.monotonic() + timeout
        while len(self.result.confirmed) < target:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"writer: only {len(self.result.confirmed)} of {target} writes confirmed "
                    f"in {timeout:.0f} s\n{self.cluster.describe()}"
                )
            time.sleep(0.1)

    def _master(self) -> str | None:
        for pod in self.cluster.running():
            host = pod.named_master()
            if host:
                return host
        return None

    def _run(self) -> None:
        password = self.password or self.cluster.password
        client: redis.Redis | None = None
        serving = ""
        seq = 0
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and seq < MAX_WRITES and time.monotonic() < deadline:
            if client is None:
                host = self._master()
                if host is None:
                    time.sleep(0.05)
                    continue
                client = redis.Redis(
                    host=self.cluster.host_address(host),
                    port=REDIS_PORT,
                    password=password,
                    socket_timeout=0.5,
                    socket_connect_timeout=0.5,
                )
                serving = host
                if not self.result.masters_seen or self.result.masters_seen[-1] != host:
                    self.result.masters_seen.append(host)
            seq += 1
            self.result.attempts = seq
            try:
                client.set(f"{self.prefix}:{seq}", seq)
                if call(client, "WAIT", self.acks, 500) >= self.acks:
                    self.result.confirmed.append(seq)
                elif self._master() != serving:
                    client = None
            except redis.exceptions.ReadOnlyError:
                self.result.readonly_errors += 1
                client = None
            except redis.RedisError:
                self.result.other_errors += 1
                client = None
                time.sleep(0.02)


def lost_writes(cluster: LoopbackSet, prefix: str, confirmed: list[int]) -> list[int]:
    """The confirmed writes the current master does not hold."""
    masters = cluster.masters()
    assert len(masters) == 1, f"expected one master, found {[p.name for p in masters]}"
    client = masters[0].client()
    missing: list[int] = []
    for start in range(0, len(confirmed), 1000):
        batch = confirmed[start : start + 1000]
        values = client.mget([f"{prefix}:{n}" for n in batch])
        missing += [
            n for n, value in zip(batch, values, strict=False) if value is None or int(value) != n
        ]
    return missing
