"""Upgrading a stack deployed before RedisSentinel was split by role changes no object.

The program as of the last commit before the split is deployed as its own stack, in its own
namespace, with the real engine; then the current program is previewed against that state.
Every Kubernetes and random resource must be matched to its old URN (through its alias), so
the preview creates only the new ``sophia:redis:*`` role components and deletes nothing. The
one replacement allowed is of a ConfigMap whose content changed (the Kubernetes provider
replaces ConfigMaps on a data change, by design, so pods roll onto a new one); the Secret, which
gains the internal roles' keys, is updated in place (``kubernetes:enableSecretMutable``); the
only resources created besides role components are the internal roles' passwords and the
servers' NetworkPolicy that changes once the pods have rolled; the
StatefulSet and the application password must be kept or updated in place. The release is destroyed
afterwards, whatever happened.

Time is bounded by the Kubernetes provider's await timeouts (10 minutes for the workloads);
a healthy run takes about two minutes (deploy, preview, destroy).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml
from pulumi import automation as auto

from automation.workspace import REPO, Workspace, pulumi_root
from components.credentials import INTERNAL_CREDENTIALS
from redistest.deployment import log_line
from redistest.kube import Kube
from tests.harness import stack_config

BEFORE_SPLIT = "e565874"
"""The last commit whose RedisSentinel registered every resource itself."""
PROGRAM = ("Pulumi.yaml", "Pulumi.local.yaml", "__main__.py", "components", "requirements.txt")
"""What of that commit makes up the program and the local stack's config."""
STACK = "upgrade"
NAMESPACE = "sophia-ai-upgrade"

KEPT_OBJECT = {auto.OpType.SAME, auto.OpType.UPDATE}
"""What may happen to a Kubernetes or random resource: nothing, or an in-place update."""
REPLACED_CONTENT = {
    auto.OpType.REPLACE,
    auto.OpType.CREATE_REPLACEMENT,
    auto.OpType.DELETE_REPLACED,
}
"""The steps of replacing a ConfigMap under the same URN because its data changed."""
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
MOVED_TYPES = ("kubernetes:", "random:")
ROLE_TYPES = "sophia:redis:"
INTERNAL_PASSWORDS = {f"redis-{credential.role}-password" for credential in INTERNAL_CREDENTIALS}
"""The passwords of the internal roles, new since credentials by role."""
NEW_SINCE_SPLIT = INTERNAL_PASSWORDS | {"redis-server-rolled-netpol", "redis-roller", "redis-roll"}
"""Resources new since the split: the internal roles' passwords, the servers' NetworkPolicy
that changes only once the pods have rolled, and the rolling-update Job with its
ServiceAccount, Role and RoleBinding. Created, nothing else."""


def export_program(commit: str, target: Path) -> None:
    """The program of ``commit`` in ``target``, running in the checkout's virtualenv."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, *PROGRAM],
        capture_output=True,
        check=True,
        timeout=60,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=60)
    (target / ".venv").symlink_to(REPO / ".venv")


def configure(stack: auto.Stack, stack_file: Path) -> None:
    """The committed local config of the old program, in this test's own namespace."""
    config = yaml.safe_load(stack_file.read_text())["config"]
    config["redis:namespace"] = NAMESPACE
    # The proxy image of that commit (HAProxy 2.6) is no longer built; the current one is.
    config["redis:proxyImage"] = stack_config("local")["redis:proxyImage"]
    stack.set_all_config(
        {
            key: auto.ConfigValue(value if isinstance(value, str) else json.dumps(value))
            for key, value in config.items()
        },
        path=False,
    )


def stack_of_program(work_dir: Path, name: str) -> auto.Stack:
    """Stack ``name`` of the program in ``work_dir``, on the backend, passphrase, CLI and
    plugins of :class:`Workspace` (which runs the checkout's own program)."""
    env = Workspace().env()
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        env_vars=env,
        pulumi_home=env.get("PULUMI_HOME"),
        secrets_provider="passphrase",
        pulumi_command=auto.PulumiCommand(root=str(pulumi_root()), skip_version_check=True),
    )
    return auto.select_stack(stack_name=name, work_dir=str(work_dir), opts=options)


def has_resources(stack: auto.Stack) -> bool:
    return bool((stack.export_stack().deployment or {}).get("resources"))


def tear_down(stack: auto.Stack) -> None:
    """Destroys the release and removes the stack with its config file."""
    Kube(NAMESPACE).run("delete", "pod", "--all", "--ignore-not-found", "--wait=false", check=False)
    stack.destroy(on_output=log_line, color="never")
    stack.workspace.remove_stack(stack.name)
    (REPO / f"Pulumi.{STACK}.yaml").unlink(missing_ok=True)


def test_upgrade_from_before_the_split_keeps_every_object(cluster: None) -> None:
    steps: list[tuple[auto.OpType, str, str]] = []

    def record_step(event: auto.EngineEvent) -> None:
        if event.resource_pre_event is not None:
            step = event.resource_pre_event.metadata
            steps.append((step.op, step.type, step.urn))

    current = Workspace().stack(STACK)
    try:
        if has_resources(current):
            current.destroy(on_output=log_line, color="never")
        with tempfile.TemporaryDirectory(prefix="sophia-redis-before-split-") as directory:
            before = Path(directory)
            export_program(BEFORE_SPLIT, before)
            configure(current, before / "Pulumi.local.yaml")
            shutil.copy(REPO / f"Pulumi.{STACK}.yaml", before)
            stack_of_program(before, STACK).up(on_output=log_line, color="never")
        # That program knew one engine; this one must be told the image is Redis, not Valkey.
        current.set_config("redis:engine", auto.ConfigValue("redis"))
        preview = current.preview(on_output=log_line, on_event=record_step, color="never")
    finally:
        tear_down(current)

    moved = [(op, type_, urn) for op, type_, urn in steps if type_.startswith(MOVED_TYPES)]
    assert moved, "the preview reported no Kubernetes or random resource"
    changed = [
        (op, urn)
        for op, type_, urn in moved
        if op not in KEPT_OBJECT
        and not (type_ == CONFIG_MAP and op in REPLACED_CONTENT)
        and not (op == auto.OpType.CREATE and urn.rsplit("::", 1)[-1] in NEW_SINCE_SPLIT)
    ]
    assert changed == []
    created = [(type_, urn) for op, type_, urn in steps if op == auto.OpType.CREATE]
    assert created, "the preview created no role component: is the program split at all?"
    assert {urn.rsplit("::", 1)[-1] for _, urn in created} >= NEW_SINCE_SPLIT
    assert [
        urn
        for type_, urn in created
        if not type_.startswith(ROLE_TYPES) and urn.rsplit("::", 1)[-1] not in NEW_SINCE_SPLIT
    ] == []
    summary = preview.change_summary
    # The delete of a replaced object reports its old URN, the create its new one: count names.
    replaced = {
        (type_, urn.rsplit("::", 1)[-1]) for op, type_, urn in moved if op in REPLACED_CONTENT
    }
    assert summary.get(auto.OpType.REPLACE, 0) == len(replaced), summary
    assert summary.get(auto.OpType.DELETE, 0) == 0, summary
    assert summary.get(auto.OpType.CREATE, 0) == len(created), summary
