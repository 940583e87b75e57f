"""The GitHub workflows: actionlint finds nothing, and they point at files that exist.

actionlint comes from PATH or ``${SOPHIA_CACHE:-~/.cache/sophia-redis}/bin`` (``make tools``
builds it). When it is missing these tests fail rather than skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def find_actionlint() -> Path:
    """Return the actionlint binary, failing the test with the fix when it is absent."""
    on_path = shutil.which("actionlint")
    if on_path:
        return Path(on_path)
    cache = Path(os.environ.get("SOPHIA_CACHE") or Path.home() / ".cache" / "sophia-redis")
    candidate = cache / "bin" / "actionlint"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    pytest.fail(
        f"actionlint not found on PATH nor at {candidate}: run `make tools` to build it",
        pytrace=False,
    )


def run_actionlint(*files: Path) -> tuple[int, list[dict[str, Any]], str]:
    """Run actionlint on ``files``; return its exit status, findings and stderr."""
    proc = subprocess.run(
        [str(find_actionlint()), "-no-color", "-format", "{{json .}}", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    findings: list[dict[str, Any]] = json.loads(proc.stdout) if proc.stdout.strip() else []
    return proc.returncode, findings, proc.stderr


def workflow(name: str) -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return doc


def triggers(doc: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` block (YAML 1.1 reads the bare key ``on`` as ``True``)."""
    block: dict[str, Any] = doc["on"] if "on" in doc else doc[True]
    return block


def steps(doc: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = doc["jobs"][job]["steps"]
    return found


EXPECTED_JOBS = {"integration.yml": {"kind"}, "preview.yml": {"preview"}}
"""Every workflow of the repository and its jobs; adding one means adding it here."""


def test_workflows_exist() -> None:
    found = {p.name for p in WORKFLOWS.glob("*.y*ml")}
    expected = set(EXPECTED_JOBS)
    assert found == expected, f"missing {sorted(expected - found)}, new {sorted(found - expected)}"


@pytest.mark.parametrize("name", sorted(EXPECTED_JOBS))
def test_workflow_has_its_jobs(name: str) -> None:
    assert set(workflow(name)["jobs"]) == EXPECTED_JOBS[name]


def test_actionlint_finds_nothing() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    code, findings, stderr = run_actionlint(*files)
    report = "\n".join(
        f"{f['filepath']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings
    )
    assert findings == [], report
    assert code == 0, stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ secret.PULUMI_ACCESS_TOKEN }}\n"
    )
    code, findings, _ = run_actionlint(broken)
    assert code != 0 and findings, "actionlint accepted an undefined context"


def test_preview_runs_the_policy_pack_on_dev_and_prod() -> None:
    doc = workflow("preview.yml")
    assert "pull_request" in triggers(doc)
    job = doc["jobs"]["preview"]
    matrix = {
        entry["stack"]: entry["policy-config"] for entry in job["strategy"]["matrix"]["include"]
    }
    assert matrix == {"dev": "", "prod": "policy/config.prod.json"}
    assert (REPO / matrix["prod"]).is_file()

    (pulumi,) = [
        s for s in steps(doc, "preview") if str(s.get("uses", "")).startswith("pulumi/actions@")
    ]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert (REPO / "policy" / "PulumiPolicy.yaml").is_file()
    assert "matrix.policy-config" in pulumi["with"]["policyPackConfigs"]
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


def test_preview_pins_the_cli_the_toolchain_builds() -> None:
    versions = (REPO / "scripts" / "versions.env").read_text()
    match = re.search(r"^PULUMI_CLI_VERSION=v?(\S+)$", versions, re.M)
    assert match, "scripts/versions.env pins no PULUMI_CLI_VERSION"
    (pulumi,) = [
        s
        for s in steps(workflow("preview.yml"), "preview")
        if str(s.get("uses", "")).startswith("pulumi/actions@")
    ]
    assert str(pulumi["with"]["pulumi-version"]) == match.group(1)


def test_integration_runs_make_test_on_kind() -> None:
    doc = workflow("integration.yml")
    on = triggers(doc)
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    job = doc["jobs"]["kind"]
    assert job["env"]["SOPHIA_CLUSTER"] == "kind"
    kind = [s for s in job["steps"] if str(s.get("uses", "")).startswith("helm/kind-action@")]
    assert len(kind) == 1 and (REPO / kind[0]["with"]["config"]).is_file()
    runs = [str(s.get("run", "")).strip() for s in job["steps"]]
    assert any(r.endswith("make test") for r in runs)


def test_requirement_files_used_by_workflows_exist() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name in re.findall(r"-r\s+(\S+)", path.read_text()):
            assert (REPO / name).is_file(), f"{path.name} installs from missing {name}"
