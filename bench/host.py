"""What the machine itself did during a run: stalls of every process at once (a run's writer
frozen without an error, Sentinels entering TILT together) are the host's, not the release's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRESSURE = Path("/proc/pressure")
PRESSURE_RESOURCES = ("cpu", "io", "memory")
SAMPLE_SECONDS = 0.05
STALL_SECONDS = 1.0
"""A sample this much later than asked for is a stall of the machine: the sampler sleeps and
needs no CPU to speak of, so it is late only when nothing runs."""


def pressure_totals() -> dict[str, dict[str, int]]:
    """Pressure stall totals (microseconds) of ``/proc/pressure``: per resource, ``some`` (at
    least one task stalled) and ``full`` (every non-idle task stalled); empty without PSI."""
    totals: dict[str, dict[str, int]] = {}
    for resource in PRESSURE_RESOURCES:
        path = PRESSURE / resource
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            kind, *fields = line.split()
            values = dict(item.split("=", 1) for item in fields)
            totals.setdefault(resource, {})[kind] = int(values["total"])
    return totals


@dataclass
class HostActivity:
    """What :func:`watched_host` saw."""

    longest_stall_seconds: float = 0.0
    """The latest a 50 ms sleep of the bench's sampler woke, beyond the 50 ms."""
    stalls: list[tuple[float, float]] = field(default_factory=list)
    """``(wall clock at its start, seconds)`` of every stall over ``STALL_SECONDS``."""
    pressure_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    """Pressure stall time over the block, in milliseconds, per resource and kind."""

    def as_dict(self, since: float) -> dict[str, Any]:
        """For a results file, stall starts in seconds from ``since`` (a run's fault)."""
        return {
            "longest_stall_seconds": round(self.longest_stall_seconds, 3),
            "stalls": [[round(at - since, 3), round(length, 3)] for at, length in self.stalls],
            "pressure_ms": self.pressure_ms,
        }


@contextmanager
def watched_host() -> Iterator[HostActivity]:
    """Samples the machine's responsiveness while the block runs, and its pressure stall
    totals before and after; yields what it fills once the block ends."""
    activity = HostActivity()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            asked = time.monotonic()
            time.sleep(SAMPLE_SECONDS)
            late = time.monotonic() - asked - SAMPLE_SECONDS
            activity.longest_stall_seconds = max(activity.longest_stall_seconds, late)
            if late >= STALL_SECONDS:
                activity.stalls.append((time.time() - late - SAMPLE_SECONDS, late))

    before = pressure_totals()
    sampler = threading.Thread(target=sample, name="host-stalls", daemon=True)
    sampler.start()
    try:
        yield activity
    finally:
        stop.set()
        sampler.join(timeout=5)
        after = pressure_totals()
        activity.pressure_ms = {
            resource: {
                kind: round((total - before[resource][kind]) / 1000, 1)
                for kind, total in kinds.items()
                if kind in before.get(resource, {})
            }
            for resource, kinds in after.items()
        }
