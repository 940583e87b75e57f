"""Reads of the live cluster that the preview checks make."""

from __future__ import annotations

from collections.abc import Callable


def exists(read: Callable[[], object]) -> bool:
    """Whether ``read`` finds its object: False on 404, other API errors raised."""
    from lightkube import ApiError

    try:
        read()
    except ApiError as error:
        if error.status.code == 404:
            return False
        raise
    return True
