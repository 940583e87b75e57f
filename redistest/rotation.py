"""Password rotation and revocation under writers, for the benchmark and the integration test.

A rotation (``passwordGeneration`` and ``internalPasswordGeneration`` bumped together, the
hardest case: every role's password changes in one roll) rolls every pod. One writer keeps the
previous password throughout, as an application that has not moved yet; a second one takes the
new password from the Secret the moment ``pulumi up`` writes it, as an application that reloads
its credentials would, and its gap counts from its first confirmed write (before that, no pod
knows the new password: the first pod of the roll teaches it to the others). A revocation
(``revokedPasswordGeneration`` and ``revokedInternalPasswordGeneration`` set to the previous
generation) rolls only the proxy; its writer holds the current password, as an application
that has moved would.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

from components.auth import redis_url
from components.credentials import ADMIN

from .deployment import Deployed
from .health import wait_healthy
from .kube import Kube
from .podlogs import logs_kept
from .traffic import (
    finish_writer,
    longest_gap,
    missing_confirmed,
    readonly_after_settle,
    start_writer,
    stop_writer,
    wait_for_writes,
)

SECRET = "redis-auth"
"""The release's Secret (release name ``redis``)."""
WRITER_SECONDS = 600.0
"""Upper bound of the writer; it is stopped once ``pulumi up`` has returned."""

ACCEPTED = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
out = {}
for host in cfg["hosts"]:
    for port in (6379, 26379):
        try:
            out[f"{host}:{port}"] = redis.Redis(host=host, port=port, password=cfg["password"],
                                               username=cfg.get("user"), socket_timeout=5).ping()
        except redis.exceptions.AuthenticationError:
            out[f"{host}:{port}"] = False
        except redis.exceptions.ResponseError as error:
            if "WRONGPASS" not in str(error):
                raise
            out[f"{host}:{port}"] = False
print(json.dumps(out))
"""
"""Whether a user (the application's, unless named) with a password gets in on each pod's Redis
and Sentinel (the client image's redis-py reports WRONGPASS as a plain ResponseError)."""


def accepted(kube: Kube, password: str, user: str | None = None) -> dict[str, bool]:
    """``host:port`` of every server and Sentinel of ``kube``'s release: whether ``password``
    logs ``user`` (the application's by default) in there (probed from the namespace's client
    pod)."""
    hosts = [f"{pod}.redis-headless" for pod in kube.redis_pods()]
    result: dict[str, bool] = kube.client_python(
        ACCEPTED, {"hosts": hosts, "password": password, "user": user}
    )
    return result


def server_pod_uids(kube: Kube) -> dict[str, str]:
    """UID of each server pod, by name: a pod that was replaced has a new one."""
    pods = kube.json("get", "pods", "-l", "app.kubernetes.io/component=server")["items"]
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}


def change_under_writer(
    release: Deployed, prefix: str, **config: str
) -> tuple[dict[str, Any], float, float]:
    """``pulumi up`` with ``config`` while a writer writes through the current ``redis_url``
    (verifying the servers with the current CA output when it is ``rediss://``);
    the writer's figures (longest gap over the ``up``, writes, losses, READONLY errors after
    settle, and how the master moved when a write was lost or met READONLY) and when the
    ``up`` began and ended."""
    kube, url, ca = release.kube, release.url, release.ca
    begun = time.time()
    writer = start_writer(kube, url, prefix, WRITER_SECONDS, ca)
    try:
        wait_for_writes(writer, since=begun)
        started = time.time()
        with logs_kept(release, f"pulumi up ({prefix})") as logs:
            release.up(**config)
        finished = time.time()
        wait_healthy(kube)
        # Stop only once the writer has written through the final master.
        wait_for_writes(writer, since=time.time())
    finally:
        stop_writer(writer)
    run = finish_writer(writer, prefix, timeout=60)
    figures = {
        "pulumi_up_seconds": round(finished - started, 3),
        "longest_write_gap_seconds": round(
            longest_gap([t for _, t in run.confirmed], started, finished), 3
        ),
        "confirmed_writes": len(run.confirmed),
        "confirmed_writes_lost": len(missing_confirmed(kube, url, run, ca)),
        "readonly_errors_after_settle": readonly_after_settle(run, started),
        "writer_errors": run.errors,
    }
    if figures["confirmed_writes_lost"] or figures["readonly_errors_after_settle"]:
        figures["how_the_master_moved"] = logs.digest()
    return figures, started, finished


def url_with_password(url: str, password: str) -> str:
    """``url`` with its password replaced (percent-encoded as the program encodes it)."""
    parts = urlsplit(url)
    database = int(parts.path.lstrip("/") or 0)
    return redis_url(password, str(parts.hostname), int(parts.port or 6379), database)


def rotate_with_a_new_password_writer(
    release: Deployed, prefix: str, generation: int
) -> dict[str, Any]:
    """``pulumi up`` to ``generation`` under a writer on the old password, and the figures of a
    second writer started on the new password as soon as the Secret holds it."""
    kube, old_url = release.kube, release.url
    old_password = kube.secret_values(SECRET)["password"]
    outcome: dict[str, Any] = {}

    def new_password_writer() -> None:
        deadline = time.time() + WRITER_SECONDS
        while time.time() < deadline and not outcome.get("done"):
            try:
                password = kube.secret_values(SECRET).get("password", old_password)
            except AssertionError:  # replaced: deleted, then created (it has a fixed name)
                password = old_password
            if password != old_password:
                break
            time.sleep(0.2)
        else:
            return
        outcome["secret_changed_at"] = time.time()
        outcome["writer"] = start_writer(
            kube, url_with_password(old_url, password), f"{prefix}-new", WRITER_SECONDS
        )

    watcher = threading.Thread(target=new_password_writer, daemon=True)
    watcher.start()
    try:
        figures, started, finished = change_under_writer(
            release,
            prefix,
            passwordGeneration=str(generation),
            internalPasswordGeneration=str(generation),
        )
    finally:
        outcome["done"] = True
        watcher.join(timeout=60)
        if "writer" in outcome:
            stop_writer(outcome["writer"])
    if "writer" not in outcome:
        raise AssertionError("the Secret never held a new password during the rotation")
    run = finish_writer(outcome["writer"], f"{prefix}-new", timeout=60)
    first = min((t for _, t in run.confirmed), default=None)
    if first is None:
        raise AssertionError(f"no write confirmed on the new password: {run.errors}")
    figures.update(
        {
            "new_password_first_write_after_seconds": round(first - started, 3),
            "new_password_longest_write_gap_seconds": round(
                longest_gap([t for _, t in run.confirmed], first, finished), 3
            ),
            "new_password_confirmed_writes": len(run.confirmed),
            "new_password_confirmed_writes_lost": len(missing_confirmed(kube, release.url, run)),
        }
    )
    return figures


def rotate_and_revoke(release: Deployed, generation: int) -> dict[str, Any]:
    """Rotates from ``generation`` to the next under a writer on the old password, then revokes
    ``generation`` under a writer on the new one; the figures of both steps and whether the old
    password ended refused everywhere while the new one is accepted everywhere."""
    kube = release.kube
    old_password = str(release.outputs["redis_password"])
    stamp = int(time.time())
    rotation = rotate_with_a_new_password_writer(release, f"bench-rotate-{stamp}", generation + 1)
    new_password = str(release.outputs["redis_password"])
    old_admin = kube.secret_values(SECRET)[ADMIN.previous_secret_key]
    rotation["old_password_still_accepted"] = all(accepted(kube, old_password).values())
    rotation["old_admin_password_still_accepted"] = all(
        accepted(kube, old_admin, ADMIN.redis_user).values()
    )
    uids_before = server_pod_uids(kube)
    revocation, _, _ = change_under_writer(
        release,
        f"bench-revoke-{stamp}",
        passwordGeneration=str(generation + 1),
        revokedPasswordGeneration=str(generation),
        internalPasswordGeneration=str(generation + 1),
        revokedInternalPasswordGeneration=str(generation),
    )
    revocation["servers_rolled"] = server_pod_uids(kube) != uids_before
    revocation["old_password_refused_everywhere"] = not any(accepted(kube, old_password).values())
    revocation["new_password_accepted_everywhere"] = all(accepted(kube, new_password).values())
    revocation["old_admin_password_refused_everywhere"] = not any(
        accepted(kube, old_admin, ADMIN.redis_user).values()
    )
    revocation["previous_passwords_in_secret"] = [
        key for key in kube.secret_values(SECRET) if key.startswith("previous-")
    ]
    return {"generation": generation + 1, "rotation": rotation, "revocation": revocation}
