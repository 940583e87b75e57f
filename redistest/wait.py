"""The one way the tests and the benchmark wait for a state: poll a condition until a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], timeout: float, message: str, interval: float = 1.0
) -> T:
    """Calls ``condition`` every ``interval`` seconds until it returns something truthy, and
    returns that. An ``AssertionError`` raised by the condition (a failed kubectl, say) counts
    as "not yet". After ``timeout`` seconds raises ``AssertionError`` naming ``message`` (what
    was awaited) and the condition's last result or error. The condition is always called at
    least once, and once more at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = condition()
        except AssertionError as error:
            last = error
        else:
            if result:
                return result
            last = result
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {message} (last: {last!r})"
            )
        time.sleep(min(interval, left))
