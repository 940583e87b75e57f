"""The rolling update: its Job, its Role, and ``roll-pods.sh`` against a simulated API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.conf import config_files
from components.naming import Names
from components.rollout import API_TOKEN_MOUNT, roller_rules, rollout_job_spec
from components.settings import load_settings
from components.workload import statefulset_spec, tls_mounts
from tests.harness import FAKE_PASSWORD, stack_config

FAKE_KUBECTL = """#!{python}
'''kubectl as roll-pods.sh uses it, over a StatefulSet kept in $FAKE_STATE: a deleted pod
comes back at once on the update revision, Ready.'''
import json, os, sys
path = os.environ["FAKE_STATE"]
state = json.load(open(path))
args = [a for a in sys.argv[1:] if not a.startswith("--namespace")][1:]
if args[:2] == ["get", "statefulset"]:
    print("2 2", state["revision"], end="")
elif args[:2] == ["get", "pods"]:
    for name in sorted(state["pods"]):
        print(f"{{name}}|{{state['pods'][name]}}|True|")
elif args[:2] == ["delete", "pod"]:
    state["deleted"].append(args[2])
    state["pods"][args[2]] = state["revision"]
    json.dump(state, open(path, "w"))
elif args[:2] == ["get", "pod"]:
    pass
else:
    sys.exit(f"unexpected kubectl {{args}}")
"""


def local_settings(**overrides: str):  # type: ignore[no-untyped-def]
    return load_settings({**stack_config("local"), **overrides})


def run_roll(
    tmp_path: Path, master: str | None, extra_constants: str = "", master_age: int = 0
) -> list[str]:
    """Runs roll-pods.sh over three pods of the previous revision, with ``master`` read from
    the Sentinels ``master_age`` seconds ago; the deleted pods, in order."""
    settings = local_settings()
    scripts = tmp_path / "scripts"
    bin_dir = tmp_path / "bin"
    roll_dir = tmp_path / "roll"
    for directory in (scripts, bin_dir, roll_dir):
        directory.mkdir()
    files = config_files(settings)
    constants = files["constants.sh"] + f"ROLL_DIR={roll_dir}\n{extra_constants}"
    (scripts / "constants.sh").write_text(constants)
    (scripts / "roll-pods.sh").write_text(files["roll-pods.sh"])
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable))
    kubectl.chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "revision": "redis-new",
                "pods": {f"redis-{i}": "redis-old" for i in range(3)},
                "deleted": [],
            }
        )
    )
    if master is not None:
        (roll_dir / "master").write_text(f"{int(time.time()) - master_age} {master}\n")
    result = subprocess.run(
        ["sh", str(scripts / "roll-pods.sh")],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "NAMESPACE": "sophia-ai-local",
            "FAKE_STATE": str(state),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "every pod Ready on revision redis-new" in result.stderr
    assert (roll_dir / "finished").exists(), "the master's reader must be told to stop"
    deleted: list[str] = json.loads(state.read_text())["deleted"]
    return deleted


@pytest.mark.parametrize("master", ["redis-0", "redis-1", "redis-2"])
def test_roll_deletes_the_replicas_first_and_the_master_last(tmp_path: Path, master: str) -> None:
    deleted = run_roll(tmp_path, master)
    assert sorted(deleted) == ["redis-0", "redis-1", "redis-2"]
    assert deleted[-1] == master


def test_roll_without_a_master_goes_on_in_the_controllers_order(tmp_path: Path) -> None:
    deleted = run_roll(tmp_path, None, "ROLL_MASTER_WAIT_SECONDS=1\n")
    assert deleted == ["redis-2", "redis-1", "redis-0"]


def test_roll_ignores_a_stale_master_reading(tmp_path: Path) -> None:
    """A reading older than ROLL_MASTER_MAX_AGE_SECONDS counts as none: the roll waits for a
    fresh one, then goes on in the controller's order."""
    started = time.monotonic()
    deleted = run_roll(tmp_path, "redis-2", "ROLL_MASTER_WAIT_SECONDS=2\n", master_age=60)
    assert time.monotonic() - started >= 2
    assert deleted == ["redis-2", "redis-1", "redis-0"]


def test_statefulset_leaves_the_pods_to_the_rolling_update_job() -> None:
    settings = local_settings()
    spec = statefulset_spec(settings, Names.of(settings), {})
    assert spec["updateStrategy"] == {"type": "OnDelete"}


def test_roller_may_delete_only_the_releases_pods() -> None:
    settings = local_settings()
    rules = roller_rules(settings, Names.of(settings))
    deleting = [rule for rule in rules if "delete" in rule["verbs"]]
    assert deleting == [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "resourceNames": ["redis-0", "redis-1", "redis-2"],
            "verbs": ["delete"],
        }
    ]
    for rule in rules:
        assert set(rule["verbs"]) <= {"get", "list", "watch", "delete"}
        assert rule["resources"] in (["pods"], ["statefulsets"])


def test_only_the_kubectl_container_has_the_api_token_and_only_the_other_a_password() -> None:
    settings = local_settings(**{"redis:tls": json.dumps({"enabled": True, "selfSignedCa": True})})
    spec = rollout_job_spec(settings, Names.of(settings))
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    roll, master = pod["containers"]
    assert roll["image"] == settings.roller_image
    assert master["image"] == settings.image
    assert API_TOKEN_MOUNT in {m["mountPath"] for m in roll["volumeMounts"]}
    assert API_TOKEN_MOUNT not in {m["mountPath"] for m in master["volumeMounts"]}
    assert not any("valueFrom" in e and "secretKeyRef" in e["valueFrom"] for e in roll["env"])
    assert any("secretKeyRef" in e.get("valueFrom", {}) for e in master["env"])
    assert tls_mounts(settings) and all(m in master["volumeMounts"] for m in tls_mounts(settings))
    assert FAKE_PASSWORD not in json.dumps(spec)
    assert spec["activeDeadlineSeconds"] > 0
