"""The code base stays ruff- and mypy-clean."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import REPO


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff() -> None:
    result = run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run(sys.executable, "-m", "ruff", "format", "--check", "components", "automation")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = run(sys.executable, "-m", "mypy", ".")
    assert result.returncode == 0, result.stdout + result.stderr
    # The policy pack's entry point shares the name __main__ with the program's.
    result = run(sys.executable, "-m", "mypy", "policy/__main__.py")
    assert result.returncode == 0, result.stdout + result.stderr
