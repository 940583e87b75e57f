"""A Pulumi workspace on this repository with a local file backend and passphrase secrets.

The CLI and plugins come from the project's tool cache (``scripts/bootstrap-tools.sh``) unless
a ``pulumi`` is already on PATH; the state lives in ``.pulumi-state/`` of the checkout, and the
stack passphrase is generated once per machine into the cache, never committed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from pulumi import automation as auto

REPO = Path(__file__).resolve().parent.parent
PROJECT = "sophia-redis"


def cache_dir() -> Path:
    """The tool cache shared by every checkout on this machine."""
    return Path(os.environ.get("SOPHIA_CACHE", Path.home() / ".cache" / "sophia-redis"))


def kubeconfig() -> Path:
    """Kubeconfig of the cluster the local stack deploys to."""
    configured = os.environ.get("KUBECONFIG")
    return Path(configured) if configured else cache_dir() / "cluster" / "kubeconfig"


def drop_encryption_salt(stack_file: Path) -> None:
    """Removes the ``encryptionsalt`` a stack file carries from another backend or machine:
    a new stack takes the salt of this machine's passphrase, and a stale one fails its creation
    with "incorrect passphrase". The file's other lines and comments stay as they are."""
    if not stack_file.exists():
        return
    lines = stack_file.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("encryptionsalt:")]
    if kept != lines:
        stack_file.write_text("".join(kept))


def passphrase_file() -> Path:
    """The local stacks' passphrase, made on first use, readable by its owner only."""
    path = cache_dir() / "pulumi-passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ToolsMissing(RuntimeError):
    """The Pulumi CLI is neither in the tool cache nor on PATH."""


def pulumi_root() -> Path:
    """A directory whose ``bin/pulumi`` is the CLI to use."""
    cached = cache_dir() / "bin" / "pulumi"
    if cached.exists():
        return cache_dir()
    found = shutil.which("pulumi")
    if found:
        return Path(found).resolve().parent.parent
    raise ToolsMissing("the pulumi CLI is not built yet: run 'make tools'")


@dataclass(frozen=True)
class Workspace:
    """Where and how stacks of this project run."""

    state_dir: Path = REPO / ".pulumi-state"

    def env(self) -> dict[str, str]:
        """Environment for the CLI: local backend, passphrase file, no plugin downloads."""
        root = pulumi_root()
        env = {
            "PULUMI_BACKEND_URL": f"file://{self.state_dir}",
            "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file()),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "KUBECONFIG": str(kubeconfig()),
            "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        pulumi_home = cache_dir() / "pulumi-home"
        if pulumi_home.exists():
            env["PULUMI_HOME"] = str(pulumi_home)
        return env

    def stale_locks(self, stack: str) -> list[Path]:
        """The lock files of ``stack``, when every one of them was left by an update of this
        host whose process is gone (a killed run); otherwise (no lock, or one that may be live)
        an empty list."""
        # No documented API says who holds a lock of the file backend, so the owner (hostname
        # and pid in the lock file: the CLI's internal format) is read here, only to decide.
        locks = sorted((self.state_dir / ".pulumi" / "locks").glob(f"*/{PROJECT}/{stack}/*.json"))
        for lock in locks:
            try:
                owner = json.loads(lock.read_text())
            except (OSError, ValueError):
                return []
            if owner.get("hostname") != socket.gethostname() or pid_alive(owner.get("pid")):
                return []
        return locks

    def has_state(self, stack: str) -> bool:
        """Whether this backend holds stack ``stack`` of the project."""
        return any((self.state_dir / ".pulumi" / "stacks").glob(f"*/{stack}.json"))

    def stack(self, name: str) -> auto.Stack:
        """Creates or selects stack ``name`` of this project; clears the locks a killed update
        of this host left on it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        command = auto.PulumiCommand(root=str(pulumi_root()), skip_version_check=True)
        options = auto.LocalWorkspaceOptions(
            work_dir=str(REPO),
            env_vars=env,
            pulumi_home=env.get("PULUMI_HOME"),
            secrets_provider="passphrase",
            pulumi_command=command,
        )
        if not self.has_state(name):
            drop_encryption_salt(REPO / f"Pulumi.{name}.yaml")
        stack = auto.create_or_select_stack(stack_name=name, work_dir=str(REPO), opts=options)
        if self.stale_locks(name):
            # `pulumi cancel` removes every lock of the stack (on this backend it deletes the
            # lock files), hence only when all of them are stale.
            stack.cancel()
        return stack
