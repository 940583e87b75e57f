"""pulumi destroy removes everything the stack created, and nothing keeps running after it.

The StatefulSet is deleted with propagation "orphan" when it is replaced (a volume size change
keeps its pods), so a destroy must not orphan them: in a namespace the stack does not own
(prod's ``createNamespace: false``) nothing else would remove them. Nothing is deleted by hand
before the destroy here. The release is deployed as a stack of its own into a namespace this
test creates, once per PVC retention policy; the session's stack is destroyed as well (its
namespace is its own). The three run at once: each waits mostly on the cluster.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from redistest.deployment import Deployed, log_line, own_stack
from redistest.health import wait_healthy

from .deployment import leftovers, release_claims

CLAIMS = ["data-redis-0", "data-redis-1", "data-redis-2"]
POLICIES = ("Delete", "Retain")


@dataclass(frozen=True)
class Destroyed:
    """What a release held before its destroy and what was left right as destroy returned."""

    claims_before: list[str]
    pods_before: list[str]
    left: list[str]
    claims_terminating: dict[str, bool]
    outputs: dict[str, Any]


def deploy_and_destroy(policy: str) -> Destroyed:
    name = f"destroy-{policy.lower()}"
    with own_stack(name, f"sophia-ai-{name}", pvcRetentionPolicy=policy) as release:
        kube = release.kube
        release.up()
        wait_healthy(kube, 3)
        claims_before = sorted(release_claims(kube))
        pods_before = [p for p in leftovers(kube) if p.startswith("Pod/")]
        release.stack.destroy(on_output=release.log, color="never")
        # Right as destroy returns, not eventually: it waited for the garbage collector.
        left = leftovers(kube)
        claims = {
            claim: bool(item["metadata"].get("deletionTimestamp"))
            for claim, item in release_claims(kube).items()
        }
        log_line(f"test_99 {policy}: after destroy left={left} claims(terminating)={claims}")
        return Destroyed(claims_before, pods_before, left, claims, dict(release.stack.outputs()))


def destroy_session_stack(deployed: Deployed) -> tuple[str, dict[str, Any]]:
    deployed.stack.destroy(on_output=deployed.log, color="never")
    result = deployed.kube.run("get", "namespace", deployed.kube.namespace, check=False)
    phase = result.stdout if result.returncode == 0 else "gone"
    return phase, dict(deployed.stack.outputs())


@pytest.fixture(scope="module")
def destroyed(deployed: Deployed) -> dict[str, Any]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        session = pool.submit(destroy_session_stack, deployed)
        releases = {policy: pool.submit(deploy_and_destroy, policy) for policy in POLICIES}
        return {
            "session": session.result(),
            **{policy: future.result() for policy, future in releases.items()},
        }


def test_destroy_removes_the_release(destroyed: dict[str, Any]) -> None:
    """The session's stack, whose namespace is its own: it goes, and the outputs with it."""
    phase, outputs = destroyed["session"]
    assert phase == "gone" or "Terminating" in phase, phase
    assert outputs == {}


@pytest.mark.parametrize("policy", POLICIES)
def test_destroy_leaves_nothing_in_a_namespace_it_does_not_own(
    destroyed: dict[str, Any], policy: str
) -> None:
    result: Destroyed = destroyed[policy]
    assert result.claims_before == CLAIMS
    # 3 Redis, 2 proxies and the rolling-update Job's finished pod.
    assert len(result.pods_before) == 6, result.pods_before
    assert sum("/redis-roll-" in pod for pod in result.pods_before) == 1, result.pods_before
    assert result.left == []
    if policy == "Delete":
        assert result.claims_terminating == {}
    else:
        expected = dict.fromkeys(CLAIMS, False)
        assert result.claims_terminating == expected, "Retain keeps every claim, unused"
    assert result.outputs == {}
