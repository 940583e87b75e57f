"""The engines of the local images (scripts/versions.env) as stack config overrides.

The local stack (``Pulumi.local.yaml``) runs the default one, the prod default's line; the
others are what the loopback harness and the integration subsets run besides it.
"""

from __future__ import annotations

import yaml

from automation.workspace import REPO

ENGINE_IMAGE_KEYS = {
    "redis-7.0": ("redis", "REDIS7_IMAGE"),
    "redis-8.0": ("redis", "REDIS8_IMAGE"),
    "valkey-9.1": ("valkey", "VALKEY9_IMAGE"),
}
"""Engine id: ``redis:engine`` and the versions.env variable holding its local image."""


def _versions_env() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in (REPO / "scripts" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            entries[key.strip()] = value.strip()
    return entries


def engine_config(engine_id: str) -> dict[str, str]:
    """``redis:engine`` and ``redis:image`` of a local engine id such as ``redis-8.0``."""
    engine, variable = ENGINE_IMAGE_KEYS[engine_id]
    return {"redis:engine": engine, "redis:image": _versions_env()[variable]}


def engine_overrides(engine_id: str) -> dict[str, str]:
    """:func:`engine_config` without the ``redis:`` prefix, as ``Deployed.up`` and
    ``own_stack`` take keys."""
    return {key.removeprefix("redis:"): value for key, value in engine_config(engine_id).items()}


def default_engine() -> str:
    """The id of the engine the local stack runs."""
    image = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]["redis:image"]
    for engine_id in ENGINE_IMAGE_KEYS:
        if engine_config(engine_id)["redis:image"] == image:
            return engine_id
    raise AssertionError(f"Pulumi.local.yaml runs {image}, no local image")


def other_engines() -> list[str]:
    """Every local engine but the default, oldest first."""
    default = default_engine()
    return [engine_id for engine_id in ENGINE_IMAGE_KEYS if engine_id != default]
