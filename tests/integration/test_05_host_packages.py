"""scripts/install-host-packages.sh on a clean Debian root, the way a fresh machine sees it.

A ``debootstrap --variant=minbase`` root of the suite the images use (IMAGE_DEBIAN_SUITE,
scripts/versions.env), from the Debian mirror the host's apt uses (images.sh's own
``debian_mirror``, evaluated from the script) with images.sh's package cache, is kept as a tar
under ``$SOPHIA_CACHE/host-packages/``, keyed by the suite alone. Each run unpacks a fresh copy,
gives it the host's apt sources, apt network settings and resolv.conf, runs the install step with
``chroot``, then checks that every command the set-up scripts run (tests/hostpackages.py, the
unit test's extractor) is there, and that a second run is a no-op. One difference from a real
machine: a policy-rc.d keeps the packages' services (containerd, redis-server) from
starting inside the chroot.

Needs root (debootstrap, chroot, mount) and the Debian archive. Uses none of conftest's
fixtures: running this file alone starts no cluster. Cold (debootstrap + install): minutes; warm:
the install of the packages only.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.hostpackages import EXCEPTIONS, REPO, STANDARD_PATH, extract, manifest_packages

CLUSTER_SCRIPTS = REPO / "scripts" / "cluster"
INSTALL_SCRIPT = REPO / "scripts" / "install-host-packages.sh"
MANIFEST = REPO / "scripts" / "host-packages.txt"
DEBOOTSTRAP_TIMEOUT = 1500
INSTALL_TIMEOUT = 1500
LOCK_TIMEOUT = 1800
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")

# images.sh's own lines: how it finds the mirror and its package cache (it runs its main when
# sourced, so the definitions are taken out of it and evaluated after lib.sh).
SETTINGS_SCRIPT = r"""
set -euo pipefail
. "$1/lib.sh"
eval "$(sed -n -e '/^debian_mirror() {$/,/^}$/p' -e '/^IMAGE_DEBIAN_MIRROR=/p' \
    -e '/^DEB_CACHE=/p' "$1/images.sh")"
printf '%s\n' "$CACHE" "$IMAGE_DEBIAN_SUITE" "$IMAGE_DEBIAN_MIRROR" "$IMAGES_DIR" "$DEB_CACHE"
"""


@dataclass
class Settings:
    cache: Path
    suite: str
    mirror: str
    images_dir: Path
    deb_cache: Path


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float


@dataclass
class Chroot:
    root: Path
    first: Run
    timings: dict[str, float] = field(default_factory=dict)


def settings() -> Settings:
    result = subprocess.run(
        ["bash", "-c", SETTINGS_SCRIPT, "settings", str(CLUSTER_SCRIPTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != 5 or not all(lines):
        pytest.fail(
            "cannot take the Debian mirror and package cache from scripts/cluster/images.sh "
            f"(debian_mirror, IMAGE_DEBIAN_MIRROR=, DEB_CACHE=): {result.stderr.strip()} "
            f"{lines}; with no Debian archive in /etc/apt sources, set IMAGE_DEBIAN_MIRROR",
            pytrace=False,
        )
    cache, suite, mirror, images_dir, deb_cache = lines
    return Settings(Path(cache), suite, mirror, Path(images_dir), Path(deb_cache))


def environment(path: str = STANDARD_PATH) -> dict[str, str]:
    env = {"PATH": path, "HOME": "/root", "LANG": "C.UTF-8"}
    env.update({k: os.environ[k] for k in PROXY_VARIABLES if k in os.environ})
    return env


# ------------------------------------------------------------------ mounts and clean-up


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first."""
    top = os.path.realpath(path)
    found = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[1])
            if point == top or point.startswith(top + "/"):
                found.append(point)
    return sorted(found, reverse=True)


def unmount_under(path: Path) -> None:
    for point in mounts_under(path):
        if subprocess.run(["umount", point], capture_output=True, timeout=60).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=60)


def kill_processes_in(root: Path) -> None:
    """Kills what still runs inside the chroot (started by this test: its root is ours)."""
    top = os.path.realpath(root)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/root") == top:
                os.kill(int(entry), signal.SIGKILL)
        except OSError:
            continue


def remove_tree(path: Path) -> None:
    """``rm -rf`` that never descends into a mount (a bind of /dev, the host's /proc)."""
    if not path.exists():
        return
    unmount_under(path)
    left = mounts_under(path)
    assert not left, f"not removing {path}: still mounted: {left}"
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True, timeout=600)


@contextmanager
def locked(path: Path, what: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{what} ({path}) stayed locked for {timeout:.0f}s", pytrace=False)
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------ the cached clean root


def cached_root(config: Settings) -> Path:
    """The minbase root of the suite as a tar, built once (keyed by nothing but the suite)."""
    directory = config.cache / "host-packages"
    key = hashlib.sha256(config.suite.encode()).hexdigest()[:16]
    archive = directory / f"minbase-{config.suite}-{key}.tar"
    if archive.is_file():
        return archive
    with locked(directory / ".lock", "the clean-root cache"):
        if archive.is_file():
            return archive
        build = directory / f"build-{os.getpid()}"
        remove_tree(build)
        partial = archive.with_suffix(".tar.partial")
        log = directory / "debootstrap.log"
        try:
            build.mkdir(parents=True)
            config.deb_cache.mkdir(parents=True, exist_ok=True)
            # images.sh's lock: one debootstrap at a time in its package cache.
            with (
                locked(config.images_dir / ".build.lock", "images.sh's build lock"),
                open(log, "w") as output,
            ):
                command = [
                    "debootstrap",
                    "--variant=minbase",
                    f"--cache-dir={config.deb_cache}",
                    config.suite,
                    str(build / "root"),
                    config.mirror,
                ]
                try:
                    result = subprocess.run(
                        command,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        env=environment(),
                        timeout=DEBOOTSTRAP_TIMEOUT,
                    )
                    failure = f"exit status {result.returncode}" if result.returncode else ""
                except subprocess.TimeoutExpired:
                    failure = f"no end after {DEBOOTSTRAP_TIMEOUT}s"
            unmount_under(build)
            if failure:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                pytest.fail(
                    f"debootstrap --variant=minbase {config.suite} from {config.mirror} failed "
                    f"({failure}); log {log}:\n{tail}",
                    pytrace=False,
                )
            # As a fresh machine has them: no downloaded packages, no package lists (the
            # install step runs apt-get update itself); half the size of the tar.
            for leftover in [
                *(build / "root/var/cache/apt/archives").glob("*.deb"),
                *(build / "root/var/lib/apt/lists").glob("*_*"),
            ]:
                leftover.unlink()
            subprocess.run(
                [
                    *("tar", "--numeric-owner", "--one-file-system"),
                    *("-C", str(build / "root"), "-cf", str(partial), "."),
                ],
                check=True,
                timeout=600,
            )
            os.replace(partial, archive)
        finally:
            remove_tree(build)
            partial.unlink(missing_ok=True)
    return archive


def write(root: Path, inside: str, data: bytes, mode: int = 0o644) -> None:
    """Writes a file of the chroot; never through a symlink that could point at the host."""
    target = root / inside.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    target.write_bytes(data)
    target.chmod(mode)


def give_host_apt_settings(root: Path) -> None:
    """The host's apt sources, keyrings they name, and Acquire settings (proxy, validity)."""
    apt = Path("/etc/apt")
    for old in [root / "etc/apt/sources.list", *(root / "etc/apt/sources.list.d").glob("*")]:
        if old.name == "sources.list" or old.suffix in (".list", ".sources"):
            old.unlink()
    files = [apt / "sources.list", apt / "apt.conf"]
    files += sorted((apt / "sources.list.d").glob("*.list"))
    files += sorted((apt / "sources.list.d").glob("*.sources"))
    files += [f for f in sorted((apt / "apt.conf.d").glob("*")) if "Acquire::" in _text(f)]
    files += sorted((apt / "trusted.gpg.d").glob("*"))
    sources = "".join(_text(f) for f in files if "sources.list" in str(f))
    for keyring in re.findall(r"(?i)signed-by[:=]\s*(/[^\s\]]+)", sources):
        if not (root / keyring.lstrip("/")).exists():
            files.append(Path(keyring))
    for f in files:
        if f.is_file():
            write(root, str(f), f.read_bytes())


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def chroot_run(root: Path, *command: str, path: str = STANDARD_PATH, timeout: float = 120) -> Run:
    start = time.monotonic()
    try:
        result = subprocess.run(
            ["chroot", str(root), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment(path),
            timeout=timeout,
        )
        return Run(result.returncode, result.stdout, time.monotonic() - start)
    except subprocess.TimeoutExpired as error:
        output = error.output if isinstance(error.output, str) else ""
        return Run(-1, f"{output}\n(no end after {timeout:.0f}s)", time.monotonic() - start)


@pytest.fixture(scope="module")
def chroot() -> Iterator[Chroot]:
    if os.geteuid() != 0:
        pytest.fail("needs root (debootstrap, chroot, mount): run the tests as root", pytrace=False)
    if shutil.which("debootstrap", path=STANDARD_PATH) is None:
        pytest.fail("debootstrap is not installed: run scripts/install-host-packages.sh")
    config = settings()
    start = time.monotonic()
    archive = cached_root(config)
    timings = {"clean root (cached tar, debootstrap when cold)": time.monotonic() - start}
    temp = Path(tempfile.mkdtemp(prefix="sophia-host-packages-"))
    root = temp / "root"
    try:
        start = time.monotonic()
        root.mkdir()
        subprocess.run(
            ["tar", "--numeric-owner", "-xpf", str(archive), "-C", str(root)],
            check=True,
            timeout=600,
        )
        write(root, "/install-host-packages.sh", INSTALL_SCRIPT.read_bytes(), 0o755)
        write(root, "/host-packages.txt", MANIFEST.read_bytes())
        write(root, "/etc/resolv.conf", Path("/etc/resolv.conf").read_bytes())
        write(root, "/usr/sbin/policy-rc.d", b"#!/bin/sh\nexit 101\n", 0o755)
        give_host_apt_settings(root)
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True, timeout=60)
        null = root / "dev" / "null"
        if not (null.exists() and stat.S_ISCHR(null.stat().st_mode)):
            subprocess.run(["mount", "--bind", "/dev", str(root / "dev")], check=True, timeout=60)
        timings["fresh copy"] = time.monotonic() - start
        first = chroot_run(root, "bash", "/install-host-packages.sh", timeout=INSTALL_TIMEOUT)
        timings["first install run"] = first.seconds
        yield Chroot(root, first, timings)
    finally:
        kill_processes_in(root)
        unmount_under(temp)
        remove_tree(temp)
        print(" ".join(f"{what}: {seconds:.1f}s;" for what, seconds in timings.items()))


def test_the_install_step_succeeds_on_a_clean_root(chroot: Chroot) -> None:
    first = chroot.first
    assert first.returncode == 0, (
        f"chroot ROOT bash /install-host-packages.sh exited {first.returncode} on a clean "
        f"minbase root:\n{first.output[-4000:]}"
    )
    assert "installing host packages:" in first.output, "a clean root had nothing to install?"
    packages = manifest_packages()
    status = chroot_run(chroot.root, "dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages)
    installed = {
        line.split()[0] for line in status.output.splitlines() if "install ok installed" in line
    }
    assert set(packages) <= installed, f"not installed: {sorted(set(packages) - installed)}"


def test_every_command_the_scripts_run_is_there(chroot: Chroot) -> None:
    if chroot.first.returncode != 0:
        pytest.fail("the install step failed (see the test before)", pytrace=False)
    extraction = extract()
    assert extraction.problems == [], "\n".join(extraction.problems)
    wanted = sorted(extraction.names() - set(EXCEPTIONS))
    probe = 'for c; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done'
    result = chroot_run(chroot.root, "sh", "-c", probe, "probe", *wanted)
    assert result.returncode == 0, result.output
    missing = result.output.split()
    calls = extraction.by_name()
    assert not missing, "after install-host-packages.sh on a clean root:\n" + "\n".join(
        f"`{name}` (run at {', '.join(c.where() for c in calls[name][:3])}) is missing: add the "
        "Debian package that provides it to scripts/host-packages.txt"
        for name in missing
    )


def test_a_second_run_is_a_no_op(chroot: Chroot) -> None:
    if chroot.first.returncode != 0:
        pytest.fail("the install step failed (see the first test)", pytrace=False)
    # apt-get and apt that only leave a mark: the second run must not call them.
    trap = b'#!/bin/sh\necho "$0 $*" >>/tmp/no-apt/called\nexit 1\n'
    for name in ("apt-get", "apt"):
        write(chroot.root, f"/tmp/no-apt/{name}", trap, 0o755)
    second = chroot_run(
        chroot.root, "bash", "/install-host-packages.sh", path="/tmp/no-apt:" + STANDARD_PATH
    )
    chroot.timings["second install run"] = second.seconds
    called = chroot.root / "tmp/no-apt/called"
    assert not called.exists(), f"the second run called apt: {_text(called)}"
    assert second.returncode == 0, f"the second run exited {second.returncode}: {second.output}"
    assert second.output == "", f"the second run said something: {second.output}"
