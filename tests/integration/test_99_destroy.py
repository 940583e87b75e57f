"""pulumi destroy removes everything the stack created."""

from __future__ import annotations

from .deployment import Deployed


def test_destroy_removes_the_release(deployed: Deployed) -> None:
    deployed.kube.run("delete", "pod", "--all", "--ignore-not-found", "--wait=false")
    deployed.stack.destroy(on_output=deployed.log, color="never")
    namespace = deployed.kube.namespace
    result = deployed.kube.run("get", "namespace", namespace, check=False)
    phase = result.stdout if result.returncode == 0 else "gone"
    assert result.returncode != 0 or "Terminating" in phase, phase
    assert deployed.stack.outputs() == {}
