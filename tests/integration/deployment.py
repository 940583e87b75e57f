"""The local stack, deployed with the real engine: shared by the tests and the benchmark."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

from pulumi import automation as auto

from automation.workspace import REPO, Workspace, kubeconfig

from .kube import CLIENT_IMAGE, CLIENT_POD, Kube

STACK = "local"
LOG = REPO / ".pulumi-state" / "integration.log"


class ClusterDown(RuntimeError):
    """The local cluster did not start."""


def start_cluster() -> None:
    """Starts the local cluster, or reuses a healthy one."""
    result = subprocess.run(
        [str(REPO / "scripts" / "cluster" / "up.sh")], capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0 or not kubeconfig().exists():
        raise ClusterDown(f"the local cluster did not start:\n{result.stderr[-4000:]}")


@dataclass
class Deployed:
    """The local stack as deployed, with its outputs and a kubectl in its namespace."""

    stack: auto.Stack
    outputs: dict[str, Any]
    kube: Kube

    @property
    def url(self) -> str:
        return str(self.outputs["redis_url"])

    def log(self, line: str) -> None:
        with LOG.open("a") as handle:
            handle.write(line + "\n")

    def up(self, **config: str) -> auto.UpResult:
        """Sets ``redis:<key>`` config values and runs ``pulumi up``; refreshes the outputs."""
        for key, value in config.items():
            self.stack.set_config(f"redis:{key}", auto.ConfigValue(value))
        result = self.stack.up(on_output=self.log, color="never")
        self.outputs = {k: v.value for k, v in result.outputs.items()}
        return result

    def preview_changes(self) -> dict[str, int]:
        """The change summary of a preview, without the unchanged count."""
        summary = self.stack.preview(on_output=self.log, color="never").change_summary
        return {op: n for op, n in summary.items() if op != "same" and n}


def deploy_local() -> Deployed:
    """Deploys the local stack from its committed config and returns it."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    stack = Workspace().stack(STACK)
    deployment = Deployed(stack=stack, outputs={}, kube=Kube("sophia-ai-local"))
    # Start from the committed local config; earlier runs may have left other values.
    for key in ("passwordGeneration", "replicas", "maxmemoryPolicy"):
        stack.remove_config(f"redis:{key}")
    deployment.up()
    deployment.kube = Kube(str(deployment.outputs["namespace"]))
    return deployment


def start_client_pod(kube: Kube) -> None:
    """A pod labelled as a Redis client, with redis-py and redis-cli, in the namespace."""
    kube.run("delete", "pod", CLIENT_POD, "--ignore-not-found", "--wait=true", timeout=120)
    kube.run("apply", "-f", "-", stdin=client_pod_manifest(CLIENT_POD, labelled=True))
    kube.run("wait", "--for=condition=Ready", f"pod/{CLIENT_POD}", "--timeout=120s", timeout=150)


def client_pod_manifest(name: str, labelled: bool) -> str:
    labels = '{"redis-client": "true"}' if labelled else "{}"
    return f"""{{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {{"name": "{name}", "labels": {labels}}},
  "spec": {{
    "automountServiceAccountToken": false,
    "terminationGracePeriodSeconds": 1,
    "securityContext": {{"runAsNonRoot": true, "runAsUser": 1000,
                         "seccompProfile": {{"type": "RuntimeDefault"}}}},
    "containers": [{{
      "name": "client", "image": "{CLIENT_IMAGE}", "imagePullPolicy": "Never",
      "command": ["sleep", "infinity"],
      "resources": {{"requests": {{"cpu": "50m", "memory": "64Mi"}},
                     "limits": {{"cpu": "1", "memory": "256Mi"}}}},
      "securityContext": {{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                           "capabilities": {{"drop": ["ALL"]}}}}
    }}]
  }}
}}"""
