"""Credentials by role: each holds its boundary on every engine; a revocation refuses the
previous application password everywhere while replication and Sentinel carry on; the internal
roles' passwords rotate and are revoked without losing a write."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from components.credentials import ADMIN, APPLICATION, CREDENTIALS, INTERNAL_CREDENTIALS
from components.naming import REDIS_PORT, SENTINEL_PORT
from components.revocation import RevokedPasswords, revocation_job_spec
from components.workload import PASSWORD_KEY, PREVIOUS_PASSWORD_KEY
from redistest.boundaries import probe
from redistest.engines import default_engine, engine_config
from tests.harness import FAKE_PASSWORD, stack_config

from .conftest import LoopbackFactory, local_settings
from .loopback import LoopbackSet, Pod, credential_secret, program_at
from .writer import Writer, lost_writes

NEW_PASSWORD = "Rotated-Pa55word!*+_for.tests~9876543210zy"


def role_passwords(cluster: LoopbackSet) -> dict[str, str]:
    return {credential.role: cluster.secret[credential.secret_key] for credential in CREDENTIALS}


def probe_set(cluster: LoopbackSet, passwords: dict[str, str] | None = None) -> list[str]:
    """The boundary probe against the master's Redis and another pod's Sentinel, with the
    Secret's passwords unless told (by role)."""
    master = cluster.wait_healthy(60)
    sentinel = cluster.pods[(master.ordinal + 1) % len(cluster.pods)]
    return probe(
        {"redis": (master.address, REDIS_PORT), "sentinel": (sentinel.address, SENTINEL_PORT)},
        passwords or role_passwords(cluster),
        cluster.settings.master_set_name,
    )


@pytest.mark.every_engine
def test_every_credential_holds_its_boundary(loopback: LoopbackFactory) -> None:
    cluster = loopback()
    cluster.start()
    assert probe_set(cluster) == []
    master = cluster.wait_healthy(30)
    info = master.client().info("replication")
    assert info["connected_slaves"] == len(cluster.pods) - 1, "replication user syncs"


def accepts(pod: Pod, password: str, admin: bool = False) -> dict[str, bool]:
    """Whether the application user (the admin, with ``admin``) with ``password`` gets in on the
    pod's Redis and Sentinel."""
    clients = (
        (pod.client(password), pod.sentinel(password, ADMIN.sentinel_user))
        if admin
        else (pod.app_client(password), pod.app_sentinel(password))
    )
    result = {}
    for port, client in zip(("redis", "sentinel"), clients, strict=True):
        try:
            result[port] = bool(client.ping())
        except redis.AuthenticationError:
            result[port] = False
    return result


def run_revocation(
    cluster: LoopbackSet, revoked: RevokedPasswords
) -> subprocess.CompletedProcess[str]:
    """A revocation Job of the program, run against the set."""
    return cluster.run_job(revocation_job_spec(cluster.settings, cluster.names, revoked))


def test_rotation_then_revocation_refuses_the_previous_password_everywhere(
    loopback: LoopbackFactory,
) -> None:
    cluster = loopback()
    cluster.start()
    cluster.wait_healthy(60)
    cluster.rolling_update(
        revision="rev-2",
        secret={PASSWORD_KEY: NEW_PASSWORD, PREVIOUS_PASSWORD_KEY: FAKE_PASSWORD},
    )
    cluster.wait_healthy(60)
    for pod in cluster.running():
        assert accepts(pod, FAKE_PASSWORD) == {"redis": True, "sentinel": True}
    # A client that moved to the new password writes through the revocation without a gap.
    with Writer(cluster, password=NEW_PASSWORD) as writer:
        writer.wait_confirmed(100)
        cluster.secret = {k: v for k, v in cluster.secret.items() if k != PREVIOUS_PASSWORD_KEY}
        revocation = run_revocation(cluster, RevokedPasswords("application", (APPLICATION,), 1))
        assert revocation.returncode == 0, revocation.stderr
        writer.wait_confirmed(100)
    assert writer.result.other_errors == 0
    for pod in cluster.running():
        assert accepts(pod, FAKE_PASSWORD) == {"redis": False, "sentinel": False}, pod.name
        assert accepts(pod, NEW_PASSWORD) == {"redis": True, "sentinel": True}, pod.name
    assert lost_writes(cluster, "w", writer.result.confirmed) == []
    cluster.wait_healthy(30)


SINGLE_PASSWORD_COMMIT = "39e0b7a"
"""The last release whose application and admin users share one password."""


def test_upgrade_from_the_single_password_layout_loses_no_write_and_ends_least_privileged(
    loopback: LoopbackFactory, tmp_path: Path
) -> None:
    legacy = program_at(SINGLE_PASSWORD_COMMIT, tmp_path / "legacy")
    # The local config as that release had it: it refuses keys added since (redis:metrics).
    config = {**stack_config("local", SINGLE_PASSWORD_COMMIT), **engine_config(default_engine())}
    cluster = loopback(settings=legacy.settings.load_settings(config), program=legacy)
    # That layout: the admin user takes the application password, Sentinel only `default`.
    cluster.secret = {PASSWORD_KEY: FAKE_PASSWORD, ADMIN.secret_key: FAKE_PASSWORD}
    cluster.sentinel_login = (None, FAKE_PASSWORD)
    cluster.start()
    cluster.wait_healthy(60)
    with Writer(cluster, password=FAKE_PASSWORD) as writer:
        writer.wait_confirmed(200)
        cluster.rolling_update(
            local_settings(), revision="rev-2", secret=credential_secret(FAKE_PASSWORD)
        )
        writer.wait_confirmed(200)
    assert lost_writes(cluster, "w", writer.result.confirmed) == []
    first_updated = cluster.pod(cluster.roll_order[0]).log("redis")
    assert "taught them every role's user" in first_updated, first_updated[-2000:]
    cluster.sentinel_login = None
    assert probe_set(cluster) == [], "after the roll no admin user takes the application password"


def rotated_password(credential_role: str) -> str:
    return f"Rotated-{credential_role}-Pa55word!*+_for.tests~0123456789"


def test_internal_passwords_rotate_then_are_revoked_without_losing_a_write(
    loopback: LoopbackFactory,
) -> None:
    cluster = loopback()
    cluster.start()
    cluster.wait_healthy(60)
    old = {c.secret_key: cluster.secret[c.secret_key] for c in INTERNAL_CREDENTIALS}
    old_admin = old[ADMIN.secret_key]
    rotated = {c.secret_key: rotated_password(c.role) for c in INTERNAL_CREDENTIALS}
    with Writer(cluster, password=FAKE_PASSWORD) as writer:
        writer.wait_confirmed(200)
        cluster.rolling_update(
            replace(cluster.settings, internal_password_generation=2),
            revision="rev-2",
            secret={
                PASSWORD_KEY: FAKE_PASSWORD,
                **rotated,
                **{c.previous_secret_key: old[c.secret_key] for c in INTERNAL_CREDENTIALS},
            },
        )
        writer.wait_confirmed(200)
        first_updated = cluster.pod(cluster.roll_order[0]).log("redis")
        assert "the rotated internal passwords" in first_updated, first_updated[-2000:]
        cluster.wait_healthy(60)
        for pod in cluster.running():
            assert all(accepts(pod, old_admin, admin=True).values())
        cluster.secret = {k: v for k, v in cluster.secret.items() if not k.startswith("previous-")}
        revocation = run_revocation(cluster, RevokedPasswords("internal", INTERNAL_CREDENTIALS, 1))
        assert revocation.returncode == 0, revocation.stderr
        writer.wait_confirmed(200)
    assert lost_writes(cluster, "w", writer.result.confirmed) == []
    for pod in cluster.running():
        assert not any(accepts(pod, old_admin, admin=True).values())
    assert probe_set(cluster) == [], "every role works on its new password only"
    old_passwords = {c.role: old[c.secret_key] for c in INTERNAL_CREDENTIALS}
    refused = " ".join(probe_set(cluster, {**role_passwords(cluster), **old_passwords}))
    for credential in INTERNAL_CREDENTIALS:
        assert f"{credential.role} on " in refused, f"{credential.role}'s old password works"
    master = cluster.wait_healthy(60)
    info = master.client().info("replication")
    assert info["connected_slaves"] == len(cluster.pods) - 1, "replicas on the new password"
