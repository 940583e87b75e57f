"""Timelines of failovers: what the writer behind ``redis_url`` saw and what the Sentinels
logged, on one time axis that starts at the fault, as phase durations and as a PNG picture.

The phases say where the seconds of a failover go:

* ``detection``: from the fault to the first Sentinel's ``+sdown`` of the master
  (``down-after-milliseconds`` for a crash; a deleted pod's closed port is seen sooner);
* ``agreement``: to the first ``+odown`` (the quorum agrees it is down);
* ``election``: to ``+elected-leader`` (a Sentinel wins the vote to run the failover);
* ``promotion``: to ``+switch-master`` (a replica promoted, the new master announced);
* ``routing``: to the writer's first confirmed write on the new master (the proxy's master
  check, the client's reconnect and a replica acknowledging the ``WAIT``).

Sentinel times come from the kubelet's timestamp of each log line (``kubectl logs
--timestamps``), the writer's from the client pod's clock: both are this host's clock.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from components.proxy import CHECKED_BACKEND
from redistest.podlogs import FollowedLogs
from redistest.traffic import WriterRun, longest_gap_span

SENTINEL_EVENTS = (
    "+sdown",
    "+odown",
    "+try-failover",
    "+elected-leader",
    "+selected-slave",
    "+promoted-slave",
    "+failover-end",
    "+switch-master",
)
"""The Sentinel events of a failover of the master, in the order they happen."""
LANES = (*SENTINEL_EVENTS, "proxy UP", "proxy DOWN")
"""The rows of a timeline's lower panel, top to bottom."""
PHASES = (
    ("detection", "+sdown"),
    ("agreement", "+odown"),
    ("election", "+elected-leader"),
    ("promotion", "+switch-master"),
)
BIN_SECONDS = 0.1
BEFORE_SECONDS = 2.0
AFTER_SECONDS = 3.0
"""How much of the timeline the picture shows before the fault and after the last event."""

_LOG_LINE = re.compile(r"^(?P<stamp>\S+Z) .*?(?P<event>[+-][a-z-]+) (?P<rest>.*)$")


@dataclass(frozen=True)
class SentinelEvent:
    """One line of a Sentinel's log about the master."""

    at: float
    event: str
    pod: str
    detail: str


@dataclass(frozen=True)
class ProxyEvent:
    """A proxy's master backend marking one server up or down (its health checks)."""

    at: float
    pod: str
    server: str
    state: str
    """``UP`` or ``DOWN``."""


@dataclass
class Timeline:
    """One failover as the writer and the Sentinels saw it, in wall-clock seconds."""

    title: str
    fault_at: float
    trace: WriterRun
    events: list[SentinelEvent] = field(default_factory=list)
    proxy_events: list[ProxyEvent] = field(default_factory=list)

    def proxy_up_at(self) -> float | None:
        """When a proxy first marked a server of the master backend up after the fault."""
        times = [e.at for e in self.proxy_events if e.state == "UP" and e.at >= self.fault_at]
        return min(times) if times else None

    def first(self, event: str) -> float | None:
        """When the first Sentinel logged ``event`` after the fault (None: none did)."""
        times = [e.at for e in self.events if e.event == event and e.at >= self.fault_at]
        return min(times) if times else None

    @property
    def longest_gap(self) -> tuple[float, float] | None:
        """The longest stretch without a confirmed write from the last one before the fault
        on (None: no write was confirmed after the fault)."""
        times = [t for _, t in self.trace.confirmed]
        before = [t for t in times if t <= self.fault_at]
        after = [t for t in times if t > self.fault_at]
        if not after:
            return None
        return longest_gap_span(times, before[-1] if before else self.fault_at, after[-1])

    @property
    def recovered_at(self) -> float | None:
        """The first confirmed write after :attr:`longest_gap`."""
        gap = self.longest_gap
        return None if gap is None else gap[1]

    def phases(self) -> dict[str, float | None]:
        """Seconds of each phase (None when its end was not logged), ``routing`` last."""
        durations: dict[str, float | None] = {}
        start = self.fault_at
        for name, event in PHASES:
            end = self.first(event)
            durations[name] = None if end is None else round(end - start, 3)
            start = end if end is not None else start
        switched, recovered = self.first("+switch-master"), self.recovered_at
        durations["routing"] = (
            round(recovered - switched, 3)
            if switched is not None and recovered is not None and recovered >= switched
            else None
        )
        return durations


def parse_proxy_log(pod: str, text: str, backend: str = CHECKED_BACKEND) -> list[ProxyEvent]:
    """The master backend's server state changes in one proxy's ``kubectl logs --timestamps``
    output (HAProxy logs each, on its log and on stderr: kept once)."""
    pattern = re.compile(rf"Server {re.escape(backend)}/(\S+) is (UP|DOWN)")
    events: dict[tuple[str, str, float], ProxyEvent] = {}
    for line in text.splitlines():
        stamp, _, message = line.partition(" ")
        match = pattern.search(message)
        if not match or not stamp.endswith("Z"):
            continue
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        key = (match[1], match[2], round(at, 1))
        events.setdefault(key, ProxyEvent(at, pod, match[1], match[2]))
    return sorted(events.values(), key=lambda e: e.at)


def parse_sentinel_log(pod: str, text: str) -> list[SentinelEvent]:
    """The failover events of one Sentinel's ``kubectl logs --timestamps`` output."""
    events = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if not match or match["event"] not in SENTINEL_EVENTS:
            continue
        if match["event"] in ("+sdown", "+odown") and not match["rest"].startswith("master "):
            continue
        stamp = datetime.fromisoformat(match["stamp"].replace("Z", "+00:00"))
        events.append(SentinelEvent(stamp.timestamp(), match["event"], pod, match["rest"]))
    return events


def sentinel_events(logs: FollowedLogs) -> list[SentinelEvent]:
    """The failover events of every Sentinel log in ``logs``."""
    return [e for pod, text in logs.sentinels.items() for e in parse_sentinel_log(pod, text)]


def proxy_events(logs: FollowedLogs) -> list[ProxyEvent]:
    """The master backend's server state changes of every proxy log in ``logs``."""
    return [e for pod, text in logs.proxies.items() for e in parse_proxy_log(pod, text)]


def counts_per_bin(times: Iterable[float], start: float, bins: int) -> list[int]:
    """How many of ``times`` fall in each ``BIN_SECONDS`` bin from ``start``."""
    counts = [0] * bins
    for at in times:
        index = int((at - start) // BIN_SECONDS)
        if 0 <= index < bins:
            counts[index] += 1
    return counts


def annotate(axes: Any, text: str, x: float, y: float) -> None:
    """A small label just right of a marker."""
    axes.annotate(
        f" {text}", (x, y), fontsize="small", va="center", xytext=(6, 0), textcoords="offset points"
    )


def render(timeline: Timeline, path: Path) -> Path:
    """Draws ``timeline`` into the PNG ``path``: writes per second (confirmed, READONLY,
    failed) above; below, each Sentinel event, each proxy marking a server of the master
    backend up or down, and the writer meeting a new master; the fault at 0 s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fault = timeline.fault_at
    marks = [e.at for e in timeline.events if e.at >= fault]
    marks += [e.at for e in timeline.proxy_events if e.at >= fault]
    recovered = timeline.recovered_at
    end = max([fault + 5.0, *marks, *([recovered] if recovered else [])]) + AFTER_SECONDS
    start = fault - BEFORE_SECONDS
    bins = int((end - start) / BIN_SECONDS) + 1
    axis = [start - fault + (i + 0.5) * BIN_SECONDS for i in range(bins)]

    def rate(times: Iterable[float]) -> list[float]:
        return [n / BIN_SECONDS for n in counts_per_bin(times, start, bins)]

    figure, (writes, events) = plt.subplots(
        2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 2.4]}
    )
    writes.fill_between(
        axis,
        rate(t for _, t in timeline.trace.confirmed),
        step="mid",
        color="tab:green",
        alpha=0.6,
        label="confirmed writes/s",
    )
    writes.step(
        axis, rate(timeline.trace.readonly), where="mid", color="tab:orange", label="READONLY/s"
    )
    writes.step(axis, rate(timeline.trace.failed), where="mid", color="tab:red", label="failed/s")
    gap = timeline.longest_gap
    if gap is not None:
        writes.axvspan(
            gap[0] - fault, gap[1] - fault, color="tab:red", alpha=0.12, label="longest gap"
        )
    writes.set_ylabel("per second")
    writes.legend(loc="upper right", fontsize="small")
    writes.set_title(timeline.title)

    lanes = {name: index for index, name in enumerate(reversed(LANES))}
    for event in timeline.events:
        if event.at >= start:
            events.plot(event.at - fault, lanes[event.event], "o", color="tab:blue", markersize=5)
    for name in SENTINEL_EVENTS:
        first = timeline.first(name)
        if first is not None:
            annotate(events, f"{first - fault:.2f} s", first - fault, lanes[name])
    labelled: set[tuple[str, str]] = set()
    for proxy_event in sorted(timeline.proxy_events, key=lambda e: e.at):
        if proxy_event.at < start:
            continue
        lane = lanes[f"proxy {proxy_event.state}"]
        events.plot(proxy_event.at - fault, lane, "o", color="tab:orange", markersize=5)
        if (proxy_event.server, proxy_event.state) not in labelled and proxy_event.at >= fault:
            labelled.add((proxy_event.server, proxy_event.state))
            text = f"{proxy_event.server} {proxy_event.at - fault:.2f} s"
            annotate(events, text, proxy_event.at - fault, lane)
    for at, _ in timeline.trace.masters[1:]:
        events.axvline(at - fault, color="tab:purple", linestyle="--", linewidth=1)
    events.set_yticks(list(lanes.values()), list(lanes))
    events.set_xlabel("seconds from the fault (dashed: the writer meets a new master)")
    for axes in (writes, events):
        axes.axvline(0, color="black", linewidth=1)
        axes.grid(axis="x", alpha=0.3)
    events.set_xlim(start - fault, end - fault)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def median_phases(runs: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Each phase's median over the runs' ``phases_seconds`` (runs without it, or a phase
    whose end was not logged, left out)."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for phase, seconds in run.get("phases_seconds", {}).items():
            if seconds is not None:
                values.setdefault(phase, []).append(seconds)
    return {phase: round(statistics.median(found), 3) for phase, found in values.items()}


def summary(timeline: Timeline) -> dict[str, Any]:
    """The phases, when a proxy first marked a server up, and the Sentinel events (seconds
    from the fault) for the results file."""
    proxy_up = timeline.proxy_up_at()
    return {
        "phases_seconds": timeline.phases(),
        "proxy_up_seconds": None if proxy_up is None else round(proxy_up - timeline.fault_at, 3),
        "sentinel_events": [
            {"at": round(e.at - timeline.fault_at, 3), "event": e.event, "pod": e.pod}
            for e in sorted(timeline.events, key=lambda e: e.at)
            if e.at >= timeline.fault_at
        ],
    }


def render_summary(gaps: dict[str, list[float]], title: str, path: Path) -> Path:
    """Draws each scenario's write gaps across runs (a dot per run, a bar at the median)
    into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, values in gaps.items() if values]
    figure, axes = plt.subplots(figsize=(10, 0.6 * len(names) + 1.6))
    for row, name in enumerate(names):
        values = gaps[name]
        axes.plot(values, [row] * len(values), "o", color="tab:blue", alpha=0.7)
        median = statistics.median(values)
        axes.plot([median, median], [row - 0.3, row + 0.3], color="tab:red", linewidth=2)
        annotate(axes, f"median {median:.2f} s", max(values), row)
    axes.set_yticks(range(len(names)), [name.replace("_", " ") for name in names])
    axes.set_ylim(-0.6, len(names) - 0.4)
    axes.invert_yaxis()
    axes.set_xlim(0, max(max(v) for v in gaps.values() if v) * 1.35)
    axes.set_xlabel("seconds without a confirmed write, per run (red: median)")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
