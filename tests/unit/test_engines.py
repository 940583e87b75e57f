"""Engines: the setting and its checks, the binaries the scripts run, and which engine changes
a ``pulumi up`` may roll (refused ones fail before any resource is registered)."""

from __future__ import annotations

import pytest

from components.conf import config_files
from components.engines import (
    ENGINES,
    Deployment,
    Version,
    engine_of_image,
    migration_problem,
    version_of_image,
)
from components.migration import (
    ENGINE_ANNOTATION,
    deployment_of_statefulset,
    parse_annotation,
)
from components.settings import ConfigError, load_settings
from redistest.engines import ENGINE_IMAGE_KEYS, default_engine, engine_config
from tests.harness import run_program, stack_config

ACK = "redis:acknowledgeOneWayMigration"


def problems_of(config: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    return error.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9.1", Version(9, 1)),
        ("9.1.2", Version(9, 1, 2)),
        ("8.0.6-alpine", Version(8, 0, 6)),
        ("7.2.4_bookworm", Version(7, 2, 4)),
        ("latest", None),
        ("9", None),
        ("v9.1", None),
    ],
)
def test_version_parse(text: str, expected: Version | None) -> None:
    assert Version.parse(text) == expected


@pytest.mark.parametrize(
    ("image", "engine", "version"),
    [
        ("valkey/valkey:9.1.2", "valkey", Version(9, 1, 2)),
        ("registry.example:5000/mirror/redis:8.0", "redis", Version(8, 0)),
        ("localhost/sophia/valkey:9.1", "valkey", Version(9, 1)),
        ("cache:9.1", None, Version(9, 1)),
        ("redis@sha256:abc", "redis", None),
        ("bitnami/redis", "redis", None),
    ],
)
def test_engine_and_version_of_image(image: str, engine: str | None, version: Version) -> None:
    assert engine_of_image(image) == engine
    assert version_of_image(image) == version


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_every_stack_runs_valkey_9(stack: str) -> None:
    settings = load_settings(stack_config(stack))
    assert (settings.engine, settings.version.major) == ("valkey", 9)
    assert settings.coordinated_failover


def test_local_stack_runs_the_prod_default_line() -> None:
    prod, local = (load_settings(stack_config(s)) for s in ("prod", "local"))
    assert (local.engine, local.version.line) == (prod.engine, prod.version.line)
    assert default_engine() == "valkey-9.1"


def test_unknown_engine_names_the_allowed_ones() -> None:
    (problem,) = problems_of({"redis:engine": "keydb", "redis:image": "keydb:6.3"})
    assert problem.startswith("redis:engine: 'keydb' is not allowed; expected one of redis, valkey")


def test_image_of_the_other_engine_is_refused() -> None:
    (problem,) = problems_of({"redis:engine": "redis", "redis:image": "valkey/valkey:9.1.2"})
    assert problem.startswith("redis:image: 'valkey/valkey:9.1.2' is a valkey image")


@pytest.mark.parametrize(
    ("engine", "image"),
    [("redis", "redis:6.2.14"), ("valkey", "valkey/valkey:7.2.5"), ("redis", "redis:9.0")],
)
def test_unsupported_major_is_refused(engine: str, image: str) -> None:
    (problem,) = problems_of({"redis:engine": engine, "redis:image": image})
    assert problem.startswith("redis:image: ") and "is not supported" in problem, problem


def test_valkey_9_1_0_is_refused_for_the_coordinated_failover_crash() -> None:
    (problem,) = problems_of({"redis:image": "valkey/valkey:9.1.0"})
    assert "valkey-io/valkey#4066" in problem and problem.startswith("redis:image:")


def test_untagged_image_needs_the_engine_version() -> None:
    (problem,) = problems_of({"redis:image": "mirror.example/cache@sha256:0123"})
    assert problem.startswith("redis:engineVersion: required")
    settings = load_settings(
        {"redis:image": "mirror.example/cache@sha256:0123", "redis:engineVersion": "9.1.2"}
    )
    assert settings.version == Version(9, 1, 2)


def test_engine_version_must_agree_with_the_tag() -> None:
    (problem,) = problems_of({"redis:image": "valkey/valkey:9.1.2", "redis:engineVersion": "8.1"})
    assert problem.startswith("redis:engineVersion: '8.1' contradicts")


@pytest.mark.parametrize("engine_id", list(ENGINE_IMAGE_KEYS))
def test_scripts_run_the_engines_binaries(engine_id: str) -> None:
    settings = load_settings({**stack_config("local"), **engine_config(engine_id)})
    engine = ENGINES[settings.engine]
    constants = config_files(settings)["constants.sh"]
    assert f"SERVER_BIN={engine.server}\n" in constants
    assert f"SENTINEL_BIN={engine.sentinel}\n" in constants
    assert f"CLI_BIN={engine.cli}\n" in constants
    coordinated = engine_id.startswith("valkey")
    assert f"COORDINATED_FAILOVER={int(coordinated)}\n" in constants


def deployment(text: str) -> Deployment:
    engine, _, version = text.partition(" ")
    parsed = Version.parse(version)
    assert parsed is not None
    return Deployment(engine, parsed)


@pytest.mark.parametrize(
    ("current", "wanted", "acknowledged", "refused_because"),
    [
        ("redis 7.0", "redis 7.0", False, None),
        ("redis 7.0", "redis 8.0", False, None),
        ("redis 7.2", "redis 7.4", False, None),
        ("valkey 8.1", "valkey 9.1", False, None),
        ("redis 8.0", "redis 7.0", False, "downgrade"),
        ("valkey 9.1", "valkey 8.1", False, "downgrade"),
        ("redis 7.0", "redis 9.0", False, "skips a major"),
        ("redis 7.0", "valkey 9.1", False, "one-way"),
        ("redis 7.0", "valkey 9.1", True, None),
        ("redis 7.2", "valkey 8.1", False, None),
        ("redis 7.4", "valkey 9.1", True, "RDB format 12"),
        ("redis 8.0", "valkey 9.1", True, "RDB format 12"),
        ("valkey 9.1", "redis 8.0", True, "Valkey to Redis"),
    ],
)
def test_which_migrations_roll(
    current: str, wanted: str, acknowledged: bool, refused_because: str | None
) -> None:
    problem = migration_problem(deployment(current), deployment(wanted), acknowledged, ACK)
    if refused_because is None:
        assert problem is None
    else:
        assert problem is not None and refused_because in problem, problem


def test_one_way_refusal_names_the_acknowledgment_key() -> None:
    problem = migration_problem(deployment("redis 7.0"), deployment("valkey 9.1"), False, ACK)
    assert problem is not None and f"set {ACK} to true" in problem


def test_running_engine_from_the_annotation_or_an_older_releases_image() -> None:
    assert parse_annotation("valkey 9.1.2") == deployment("valkey 9.1.2")
    annotated = {ENGINE_ANNOTATION: "redis 8.0"}
    assert deployment_of_statefulset(annotated, "x:1.0") == deployment("redis 8.0")
    assert deployment_of_statefulset({}, "localhost/sophia/redis:7.0") == deployment("redis 7.0")
    assert deployment_of_statefulset({}, "mirror/cache:7.0.15") == deployment("redis 7.0.15")
    assert deployment_of_statefulset({}, "mirror/cache@sha256:00") is None


def test_statefulset_records_its_engine() -> None:
    program = run_program(stack_config("dev"))
    (statefulset,) = [r for r in program.resources if r.type.endswith("StatefulSet")]
    assert statefulset.inputs["metadata"]["annotations"][ENGINE_ANNOTATION] == "valkey 9.1.2"


def test_refused_migration_fails_before_any_resource() -> None:
    config = {**stack_config("dev"), "redis:engine": "redis", "redis:image": "redis:8.0.6"}
    registered: list[object] = []
    with pytest.raises(ConfigError) as error:
        registered = list(run_program(config, running=deployment("valkey 9.1.2")).resources)
    assert error.value.problems[0].startswith("redis:engine: valkey 9.1.2 -> redis 8.0.6")
    assert registered == []


def test_acknowledged_migration_deploys() -> None:
    config = {**stack_config("dev"), ACK: "true"}
    program = run_program(config, running=deployment("redis 7.0.15"))
    assert any(r.type.endswith("StatefulSet") for r in program.resources)
