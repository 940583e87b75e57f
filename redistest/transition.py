"""Turning TLS on for a running release, as the README's runbook does it, under writers.

Step one (``plaintext: true``) rolls every pod onto TLS beside the plain ports under a writer
that keeps the plain ``redis://`` URL, as a consumer that has not moved yet does; step two
(``plaintext: false``) rolls them onto TLS only under a writer on the ``rediss://`` URL the
outputs publish by then.
"""

from __future__ import annotations

import json
from typing import Any

from .deployment import Deployed
from .health import masters_by_role, pods_ready
from .rotation import change_under_writer


def turn_tls_on(
    release: Deployed,
    tls: dict[str, Any],
) -> dict[str, Any]:
    """Both steps on ``release`` (running without TLS); each step's writer figures, the URL
    schemes published after each, and the masters seen at the end."""
    assert not release.url.startswith("rediss://"), "the release already runs TLS"
    transition, _, _ = change_under_writer(
        release, "tls-transition", tls=json.dumps({**tls, "plaintext": True})
    )
    transition["published_scheme"] = release.url.split(":", 1)[0]
    release.log(f"tls transition step: {transition}\n{release.kube.handover_log()}")
    tls_only, _, _ = change_under_writer(release, "tls-only", tls=json.dumps(tls))
    tls_only["published_scheme"] = release.url.split(":", 1)[0]
    release.log(f"tls-only step: {tls_only}\n{release.kube.handover_log()}")
    return {
        "transition": transition,
        "tls_only": tls_only,
        "masters_after": len(masters_by_role(release.kube, pods_ready(release.kube))),
    }
