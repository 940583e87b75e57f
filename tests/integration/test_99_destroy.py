"""pulumi destroy removes everything the stack created, and nothing keeps running after it.

The StatefulSet is deleted with propagation "orphan" when it is replaced (a volume size change
keeps its pods), so a destroy must not orphan them: in a namespace the stack does not own
(prod's ``createNamespace: false``) nothing else would remove them. Nothing is deleted by hand
before the destroy here. The release is deployed as a stack of its own into a namespace this
test creates, once per PVC retention policy; the session's stack is destroyed as well (its
namespace is its own).
"""

from __future__ import annotations

import pytest

from redistest.deployment import Deployed, log_line
from redistest.health import wait_healthy

from .deployment import leftovers, own_stack, release_claims

CLAIMS = ["data-redis-0", "data-redis-1", "data-redis-2"]


def test_destroy_removes_the_release(deployed: Deployed) -> None:
    """The session's stack, whose namespace is its own: it goes, and the outputs with it."""
    deployed.stack.destroy(on_output=deployed.log, color="never")
    namespace = deployed.kube.namespace
    result = deployed.kube.run("get", "namespace", namespace, check=False)
    phase = result.stdout if result.returncode == 0 else "gone"
    assert result.returncode != 0 or "Terminating" in phase, phase
    assert deployed.stack.outputs() == {}


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_destroy_leaves_nothing_in_a_namespace_it_does_not_own(cluster: None, policy: str) -> None:
    name = f"destroy-{policy.lower()}"
    with own_stack(name, f"sophia-ai-{name}", pvcRetentionPolicy=policy) as release:
        kube = release.kube
        release.up()
        wait_healthy(kube, 3)
        assert sorted(release_claims(kube)) == CLAIMS
        pods = [p for p in leftovers(kube) if p.startswith("Pod/")]
        assert len(pods) == 5, pods  # 3 Redis, 2 proxies

        release.stack.destroy(on_output=release.log, color="never")

        # Right as destroy returns, not eventually: it waited for the garbage collector.
        left = leftovers(kube)
        claims = {
            claim: bool(item["metadata"].get("deletionTimestamp"))
            for claim, item in release_claims(kube).items()
        }
        log_line(f"test_99 {policy}: after destroy left={left} claims(terminating)={claims}")
        assert left == []
        if policy == "Delete":
            assert claims == {}
        else:
            assert claims == dict.fromkeys(CLAIMS, False), "Retain keeps every claim, unused"
        assert release.stack.outputs() == {}
