"""What the PR check runs: pulumi preview of the dev and prod configs with the policy pack.

Runs the real engine, provider and policy analyzer against the local cluster. ESC publishing
is switched off (a file backend has no ESC); everything else is the committed stack config.
"""

from __future__ import annotations

import json

import pytest
import yaml
from pulumi import automation as auto

from automation.workspace import REPO, Workspace
from redistest.deployment import Deployed

POLICY_PACK = str(REPO / "policy")
PROD_POLICY_CONFIG = str(REPO / "policy" / "config.prod.json")


def stack_like(name: str, **overrides: str) -> auto.Stack:
    """A throw-away stack ``policy-<name>`` carrying the committed config of ``name``."""
    stack = Workspace().stack(f"policy-{name}")
    document = yaml.safe_load((REPO / f"Pulumi.{name}.yaml").read_text())
    config = {
        key: auto.ConfigValue(value if isinstance(value, str) else json.dumps(value))
        for key, value in document["config"].items()
    }
    config["redis:escPublish"] = auto.ConfigValue("false")
    for key, value in overrides.items():
        config[f"redis:{key}"] = auto.ConfigValue(value)
    stack.set_all_config(config, path=False)
    return stack


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_preview_passes_the_policy_pack(name: str, deployed: Deployed) -> None:
    stack = stack_like(name)
    configs = [PROD_POLICY_CONFIG] if name == "prod" else []
    try:
        result = stack.preview(
            policy_packs=[POLICY_PACK], policy_pack_configs=configs, on_output=deployed.log
        )
        assert result.change_summary.get(auto.OpType.CREATE, 0) > 10
    finally:
        stack.workspace.remove_stack(stack.name)


PROD_TLS = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"]["redis:tls"]


@pytest.mark.parametrize(
    ("override", "policy"),
    [
        ({"antiAffinity": "preferred"}, "redis-hard-anti-affinity"),
        ({"tls": json.dumps({**PROD_TLS, "plaintext": True})}, "redis-tls-required"),
        ({"tls": json.dumps({"enabled": False})}, "redis-tls-required"),
    ],
    ids=["soft-anti-affinity", "tls-transition", "no-tls"],
)
def test_policy_pack_blocks_what_prod_forbids(
    deployed: Deployed, override: dict[str, str], policy: str
) -> None:
    stack = stack_like("prod", **override)
    try:
        with pytest.raises(auto.CommandError) as failure:
            stack.preview(
                policy_packs=[POLICY_PACK],
                policy_pack_configs=[PROD_POLICY_CONFIG],
                on_output=deployed.log,
            )
        assert policy in str(failure.value)
    finally:
        stack.workspace.remove_stack(stack.name)


def test_bad_config_fails_preview_clearly(deployed: Deployed) -> None:
    tls = json.dumps({"enabled": True, "clientCertificates": True})
    stack = stack_like("dev", replicas="4", storageSize="10GB", tls=tls)
    try:
        with pytest.raises(auto.CommandError) as failure:
            stack.preview(on_output=deployed.log)
        message = str(failure.value)
        assert "redis:replicas: 4 is not allowed" in message
        assert "redis:storageSize: '10GB' is not allowed" in message
        assert "redis:tls.issuer: required when redis:tls.enabled is true" in message
        assert "Traceback" not in message
    finally:
        stack.workspace.remove_stack(stack.name)
