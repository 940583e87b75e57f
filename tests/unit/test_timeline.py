"""Failover timelines of the benchmark: the Sentinel log parsed into events, the phases
between them, and the picture drawn from them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.timeline import (
    SENTINEL_EVENTS,
    Timeline,
    median_phases,
    parse_proxy_log,
    parse_sentinel_log,
    render,
    render_summary,
    summary,
)
from redistest.podlogs import FollowedLogs
from redistest.traffic import WriterRun

FAULT = datetime(2026, 12, 3, 18, 30, 0, tzinfo=UTC).timestamp()


def line(seconds: float, message: str) -> str:
    """A Sentinel log line as ``kubectl logs --timestamps`` prints it, ``seconds`` from the
    fault."""
    stamp = datetime.fromtimestamp(FAULT + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{stamp}000Z 1:X 03 Dec 2026 18:30:00.000 # {message}"


LOG = "\n".join(
    [
        "2026-12-03T18:29:58.000000001Z 2026-12-03T18:29:58Z redis-1: starting Sentinel",
        line(-0.5, "+monitor master m a 6379 quorum 2"),
        line(2.01, "+sdown master m a 6379"),
        line(2.012, "+sdown slave b:6379 b 6379 @ m a 6379"),
        line(2.1, "+odown master m a 6379 #quorum 2/2"),
        line(2.101, "+try-failover master m a 6379"),
        line(2.3, "+elected-leader master m a 6379"),
        line(2.4, "+selected-slave slave b:6379 b 6379 @ m a 6379"),
        line(2.9, "+promoted-slave slave b:6379 b 6379 @ m a 6379"),
        line(3.0, "+switch-master m a 6379 b 6379"),
    ]
)


def writer_run() -> WriterRun:
    """Writes every 10 ms until the fault, none for 3.6 s, then again on a new master."""
    before = [FAULT - 2 + i * 0.01 for i in range(200)]
    after = [FAULT + 3.6 + i * 0.01 for i in range(300)]
    return WriterRun(
        confirmed=list(enumerate(before + after)),
        readonly=[FAULT + 3.2, FAULT + 3.3],
        errors={"ConnectionError:Error": 40},
        unconfirmed=0,
        attempts=540,
        masters=[(FAULT - 2, "old"), (FAULT + 3.6, "new")],
        failed=[FAULT + 0.5 + i * 0.05 for i in range(40)],
    )


def stamped(seconds: float, message: str) -> str:
    stamp = datetime.fromtimestamp(FAULT + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{stamp}000Z {message}"


PROXY_LOG = "\n".join(
    [
        stamped(2.2, "Server redis_master/a is DOWN, reason: Layer4 connection problem"),
        stamped(2.2, "[ALERT]    (1) : Server redis_master/a is DOWN, reason: Layer4 timeout"),
        stamped(3.2, "Server redis_master/b is UP, reason: Layer7 check passed, code: 0"),
        stamped(3.2, "[WARNING]  (1) : Server redis_master/b is UP, reason: Layer7 check passed"),
        stamped(3.3, "Server redis_sentinels/b is UP, reason: Layer7 check passed, code: 0"),
        stamped(3.4, "Connect from 10.244.0.9:51234 to 10.244.0.4:6379 (redis/TCP)"),
    ]
)


def timeline() -> Timeline:
    return Timeline(
        "kill_master_redis",
        FAULT,
        writer_run(),
        parse_sentinel_log("redis-1", LOG),
        parse_proxy_log("redis-proxy-1", PROXY_LOG),
    )


def test_only_the_failover_events_of_the_master_are_read() -> None:
    events = parse_sentinel_log("redis-1", LOG)
    # Not the +monitor line, not the replica's +sdown; the log has no +failover-end.
    assert [e.event for e in events] == [e for e in SENTINEL_EVENTS if e != "+failover-end"]
    assert len(events) == 7
    assert round(events[0].at - FAULT, 3) == 2.01
    assert events[0].pod == "redis-1"


def test_phases_say_where_the_seconds_go() -> None:
    assert timeline().phases() == {
        "detection": 2.01,
        "agreement": 0.09,
        "election": 0.2,
        "promotion": 0.7,
        "routing": 0.6,
    }


def test_a_phase_without_its_event_is_unknown_not_zero() -> None:
    events = [e for e in parse_sentinel_log("redis-1", LOG) if e.event != "+odown"]
    phases = Timeline("x", FAULT, writer_run(), events).phases()
    assert phases["agreement"] is None
    assert phases["election"] == 0.29  # from +sdown, the last event seen


def test_the_summary_counts_from_the_fault() -> None:
    described = summary(timeline())
    assert described["sentinel_events"][0] == {"at": 2.01, "event": "+sdown", "pod": "redis-1"}
    assert described["phases_seconds"]["routing"] == 0.6


def test_the_picture_is_a_png(tmp_path: Path) -> None:
    path = render(timeline(), tmp_path / "pictures" / "kill.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_median_phases_leave_out_what_was_not_logged() -> None:
    runs: list[dict[str, Any]] = [
        {"phases_seconds": {"detection": 2.0, "agreement": None}},
        {"phases_seconds": {"detection": 3.0, "agreement": 0.1}},
        {"phases_seconds": {"detection": 2.5, "agreement": 0.3}},
        {"error": "the run failed"},
    ]
    assert median_phases(runs) == {"detection": 2.5, "agreement": 0.2}


def test_the_proxy_log_gives_the_master_backend_changes_once_each() -> None:
    events = parse_proxy_log("redis-proxy-1", PROXY_LOG)
    assert [(e.server, e.state, round(e.at - FAULT, 1)) for e in events] == [
        ("a", "DOWN", 2.2),
        ("b", "UP", 3.2),
    ]
    assert timeline().proxy_up_at() == events[1].at
    assert summary(timeline())["proxy_up_seconds"] == 3.2


def test_the_summary_picture_is_a_png(tmp_path: Path) -> None:
    gaps = {"kill_master_redis": [3.5, 3.4, 3.3], "partition_master": [3.3, 4.3], "none": []}
    path = render_summary(gaps, "Write gap per failover", tmp_path / "summary.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_digest_orders_hook_lines_by_their_own_time_and_keeps_only_what_moved_the_master() -> (
    None
):
    host = "redis-1.redis-headless.sophia-ai-test.svc.cluster.local"
    logs = FollowedLogs(
        servers={
            "redis-0": "\n".join(
                [
                    "2026-12-03T18:31:00.000000000Z previous shutdown: 2026-12-03T18:30:02Z"
                    f" redis-0: preStop: handing the master role to one of: {host}",
                    "2026-12-03T18:31:00.100000000Z 1:M 03 Dec 2026 18:31:00.100 * Ready",
                ]
            )
        },
        sentinels={
            "redis-2": "\n".join(
                [
                    line(1, "+tilt #tilt mode entered"),
                    line(3, f"+switch-master mymaster redis-0 6379 {host} 6379"),
                    line(4, "+sentinel sentinel 0123 redis-1 26379 @ mymaster redis-1 6379"),
                ]
            )
        },
    )
    assert logs.digest().splitlines() == [
        line(1, "+tilt #tilt mode entered [redis-2]"),
        "2026-12-03T18:30:02Z redis-0: preStop: handing the master role to one of: redis-1"
        " [redis-0]",
        line(3, "+switch-master mymaster redis-0 6379 redis-1 6379 [redis-2]"),
    ]
