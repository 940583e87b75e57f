"""Config validation: every bad value fails once, naming the key and what is allowed."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.settings import ConfigError, RedisSettings, load_settings
from tests.harness import run_program, stack_config


def problems_of(config: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    return error.value.problems


def only_problem(config: dict[str, str]) -> str:
    problems = problems_of(config)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_stack_files_are_valid(stack: str) -> None:
    settings = load_settings(stack_config(stack))
    assert settings.replicas == 3
    assert settings.sentinel_quorum == 2


def test_prod_values() -> None:
    settings = load_settings(stack_config("prod"))
    assert settings.namespace == "sophia-ai-prod"
    assert settings.create_namespace is False
    assert settings.storage_size == "10Gi"
    assert settings.resources["redis"].memory_limit == "8Gi"
    assert settings.resources["redis"].cpu_limit == "2"
    assert settings.maxmemory_bytes == 6 * 1024**3
    assert settings.maxmemory_policy == "volatile-lru"
    assert settings.anti_affinity == "required"
    assert settings.protect is True
    assert settings.pvc_retention_policy == "Retain"
    assert settings.down_after_milliseconds <= 2000


def test_defaults_without_config() -> None:
    settings = load_settings({})
    assert settings == RedisSettings(maxmemory_bytes=settings.maxmemory_bytes)
    assert settings.maxmemory_bytes == 384 * 1024 * 1024, "75% of the 512Mi default limit"


def test_other_namespaces_are_ignored() -> None:
    assert load_settings({"kubernetes:context": "x", "aws:region": "y"}).replicas == 3


@pytest.mark.parametrize("replicas", ["1", "2", "4", "0", "-3"])
def test_replicas_must_be_odd_and_at_least_three(replicas: str) -> None:
    problem = only_problem({"redis:replicas": replicas})
    assert problem.startswith("redis:replicas:")
    assert "odd integer of at least 3" in problem


def test_replicas_must_be_an_integer() -> None:
    assert "expected an odd integer" in only_problem({"redis:replicas": "three"})


@pytest.mark.parametrize("quorum", ["1", "4"])
def test_quorum_must_be_a_majority(quorum: str) -> None:
    problem = only_problem({"redis:sentinelQuorum": quorum})
    assert problem.startswith("redis:sentinelQuorum:")
    assert "majority" in problem and "2..3" in problem


def test_quorum_follows_replicas() -> None:
    assert load_settings({"redis:replicas": "5"}).sentinel_quorum == 3
    assert load_settings({"redis:replicas": "5", "redis:sentinelQuorum": "4"}).sentinel_quorum == 4


@pytest.mark.parametrize("size", ["10GB", "-1Gi", "abc", "0"])
def test_storage_size_must_be_a_positive_quantity(size: str) -> None:
    problem = only_problem({"redis:storageSize": size})
    assert problem.startswith("redis:storageSize:")
    assert "positive Kubernetes quantity" in problem


@pytest.mark.parametrize("amount", ["10GB", "-1Gi", "abc"])
def test_resource_quantities_are_checked(amount: str) -> None:
    config = {"redis:resources": json.dumps({"redis": {"limits": {"memory": amount}}})}
    problems = problems_of(config)
    assert any(p.startswith("redis:resources.redis.limits.memory:") for p in problems), problems


@pytest.mark.parametrize("amount", ["0", "-1", "-500m"])
def test_limits_must_be_positive(amount: str) -> None:
    config = {"redis:resources": json.dumps({"sentinel": {"limits": {"cpu": amount}}})}
    problem = only_problem(config)
    assert problem.startswith("redis:resources.sentinel.limits.cpu:")
    assert "greater than zero" in problem


def test_requests_must_not_exceed_limits() -> None:
    config = {
        "redis:resources": json.dumps({"proxy": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}})
    }
    problem = only_problem(config)
    assert problem.startswith("redis:resources.proxy.requests.cpu:")
    assert "above the limit" in problem


def test_unknown_resource_role_and_field() -> None:
    config = {
        "redis:resources": json.dumps(
            {"redsi": {"limits": {"cpu": "1"}}, "redis": {"limits": {"gpu": "1"}}}
        )
    }
    problems = problems_of(config)
    assert any(p.startswith("redis:resources.redsi: unknown role") for p in problems)
    assert any(p.startswith("redis:resources.redis.limits.gpu: unknown resource") for p in problems)


@pytest.mark.parametrize("maxmemory", ["512Mi", "1Gi"])
def test_maxmemory_must_stay_below_the_memory_limit(maxmemory: str) -> None:
    problem = only_problem({"redis:maxmemory": maxmemory})
    assert problem.startswith("redis:maxmemory:")
    assert "not below the Redis memory limit" in problem


def test_maxmemory_default_leaves_headroom() -> None:
    settings = load_settings(
        {"redis:resources": json.dumps({"redis": {"limits": {"memory": "8Gi"}}})}
    )
    assert settings.maxmemory_bytes == 6 * 1024**3


def test_unknown_anti_affinity_mode() -> None:
    problem = only_problem({"redis:antiAffinity": "soft"})
    assert problem == "redis:antiAffinity: 'soft' is not allowed; expected required or preferred"


def test_unknown_eviction_policy() -> None:
    assert only_problem({"redis:maxmemoryPolicy": "lru"}).startswith("redis:maxmemoryPolicy:")


def test_misspelt_key_suggests_the_right_one() -> None:
    problem = only_problem({"redis:replica": "3"})
    assert problem == "redis:replica: unknown key (did you mean 'redis:replicas'?)"


def test_down_after_range() -> None:
    assert only_problem({"redis:downAfterMilliseconds": "100"}).startswith(
        "redis:downAfterMilliseconds:"
    )


def test_esc_publish_needs_an_organization() -> None:
    assert only_problem({"redis:escPublish": "true"}).startswith("redis:escOrganization:")


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(
        {
            "redis:replicas": "4",
            "redis:storageSize": "10GB",
            "redis:antiAffinity": "sometimes",
            "redis:bogus": "1",
        }
    )
    assert len(problems) == 4
    message = str(ConfigError(problems))
    assert message.startswith("invalid configuration (4 problem(s)):")


def test_config_error_is_a_clean_pulumi_error() -> None:
    assert issubclass(ConfigError, pulumi.RunError)


def test_bad_config_registers_no_resource() -> None:
    config = {**stack_config("dev"), "redis:replicas": "2"}
    with pytest.raises(ConfigError):
        deployment = run_program(config)
        assert not deployment.resources


def test_revocation_needs_a_previous_password() -> None:
    message = only_problem({"redis:revokedPasswordGeneration": "1"})
    assert "redis:revokedPasswordGeneration" in message
    assert "no previous password to revoke" in message
    assert "redis:passwordGeneration" in message
    settings = load_settings(
        {"redis:passwordGeneration": "2", "redis:revokedPasswordGeneration": "1"}
    )
    assert settings.previous_password_revoked


@pytest.mark.parametrize("revoked", ["3", "4"])
def test_revoking_the_current_password_is_refused(revoked: str) -> None:
    message = only_problem(
        {"redis:passwordGeneration": "3", "redis:revokedPasswordGeneration": revoked}
    )
    assert "redis:revokedPasswordGeneration" in message
    assert "would revoke the current password" in message
    assert "expected at most 2" in message


def test_a_negative_revoked_generation_is_refused() -> None:
    message = only_problem({"redis:revokedPasswordGeneration": "-1"})
    assert "redis:revokedPasswordGeneration" in message


def test_a_revocation_names_one_generation_so_the_next_rotation_keeps_its_previous() -> None:
    rotated_again = load_settings(
        {"redis:passwordGeneration": "3", "redis:revokedPasswordGeneration": "1"}
    )
    assert not rotated_again.previous_password_revoked
    assert load_settings(
        {"redis:passwordGeneration": "3", "redis:revokedPasswordGeneration": "2"}
    ).previous_password_revoked


def test_internal_revocation_is_checked_like_the_application_one() -> None:
    nothing = only_problem({"redis:revokedInternalPasswordGeneration": "1"})
    assert "redis:revokedInternalPasswordGeneration" in nothing
    assert "redis:internalPasswordGeneration" in nothing
    assert "no previous password to revoke" in nothing
    current = only_problem(
        {
            "redis:internalPasswordGeneration": "2",
            "redis:revokedInternalPasswordGeneration": "2",
        }
    )
    assert "would revoke the current password" in current
    assert only_problem({"redis:internalPasswordGeneration": "0"}).startswith(
        "redis:internalPasswordGeneration"
    )
    settings = load_settings(
        {"redis:internalPasswordGeneration": "3", "redis:revokedInternalPasswordGeneration": "2"}
    )
    assert settings.previous_internal_passwords_revoked
    assert not settings.previous_password_revoked
