"""Password rotation (the application's and the internal roles' in one roll): the rollout
completes, old clients keep working, outputs and pods agree; then the revocation of both: the
previous passwords are refused everywhere, the servers do not roll."""

from __future__ import annotations

import time

from components.credentials import ADMIN
from redistest.deployment import Deployed
from redistest.health import wait_healthy
from redistest.kube import Kube
from redistest.rotation import SECRET, accepted, change_under_writer, server_pod_uids

PING = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
print(json.dumps([redis.Redis.from_url(u, socket_timeout=5).ping() for u in cfg["urls"]]))
"""
# 40 s: a rotation rolls the pods like any rollout, whose longest write gap make bench measured
# at 7.0-7.6 s (bench/results-followup.json). One run here (2026-12-02) saw 30.8 s: a hand-over
# that met a Sentinel in TILT (open defect, README.md) keeps writes paused for the grace period
# (30 s) before the crash failover; 40 s bounds one such stall.
MAX_WRITE_GAP_SECONDS = 40
ADMIN_USER = ADMIN.redis_user
REVOCATION_MAX_GAP_SECONDS = 10
"""A revocation rolls only the proxy: a writer on the new password reconnects once at most."""


def test_rotation_completes_without_stalling(deployed: Deployed, client: Kube) -> None:
    kube = deployed.kube
    wait_healthy(kube)
    old_url, old_password = deployed.url, str(deployed.outputs["redis_password"])
    figures, started, finished = change_under_writer(
        deployed,
        f"rotate-{int(time.time())}",
        passwordGeneration="2",
        internalPasswordGeneration="2",
    )

    new_url, new_password = deployed.url, str(deployed.outputs["redis_password"])
    assert new_password != old_password and new_url != old_url
    secret = kube.secret_values(SECRET)
    assert secret["previous-password"] == old_password
    assert secret["previous-admin-password"] != secret["admin-password"]
    assert all(accepted(client, secret["previous-admin-password"], ADMIN_USER).values())
    result = client.client_python(PING, {"urls": [new_url, old_url]})
    assert result == [True, True], "the previous password stays valid until the next rotation"
    assert figures["confirmed_writes_lost"] == 0, figures
    deployed.log(f"rotation: rollout {finished - started:.1f} s, {figures}")
    assert figures["longest_write_gap_seconds"] < MAX_WRITE_GAP_SECONDS, figures
    assert deployed.preview_changes() == {}


def test_revocation_refuses_the_previous_password_everywhere_without_rolling_the_servers(
    deployed: Deployed, client: Kube
) -> None:
    kube = deployed.kube
    wait_healthy(kube)
    password = str(deployed.outputs["redis_password"])
    secret = kube.secret_values(SECRET)
    previous, previous_admin = secret["previous-password"], secret["previous-admin-password"]
    assert all(accepted(client, previous).values())
    pods_before = server_pod_uids(kube)

    figures, started, finished = change_under_writer(
        deployed,
        f"revoke-{int(time.time())}",
        passwordGeneration="2",
        revokedPasswordGeneration="1",
        internalPasswordGeneration="2",
        revokedInternalPasswordGeneration="1",
    )

    assert str(deployed.outputs["redis_password"]) == password
    assert not [key for key in kube.secret_values(SECRET) if key.startswith("previous-")]
    assert not any(accepted(client, previous_admin, ADMIN_USER).values())
    after = accepted(client, previous)
    assert not any(after.values()), after
    current = accepted(client, password)
    assert all(current.values()), current
    assert server_pod_uids(kube) == pods_before, "a revocation must not roll the servers"
    assert figures["confirmed_writes_lost"] == 0, figures
    deployed.log(f"revocation: pulumi up {finished - started:.1f} s, {figures}")
    assert figures["longest_write_gap_seconds"] < REVOCATION_MAX_GAP_SECONDS, figures
    assert deployed.preview_changes() == {}
