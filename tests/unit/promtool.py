"""promtool of the Prometheus image's root filesystem (``scripts/cluster/images.sh``): the
same build as the Prometheus the integration suite scrapes with, chrooted like the loopback
harness runs the engines."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

PROMETHEUS_ROOTFS = (
    Path(os.environ.get("SOPHIA_CACHE", Path.home() / ".cache" / "sophia-redis"))
    / "images"
    / "rootfs"
    / "prometheus"
)


def run_promtool(workdir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """promtool of the Prometheus image, chrooted in a mount namespace of its own, with
    ``workdir`` at the image's ``/tmp``."""
    if not (PROMETHEUS_ROOTFS / "usr/bin/promtool").exists():
        pytest.fail(
            f"promtool is not in {PROMETHEUS_ROOTFS}: build the images with "
            "'sudo scripts/cluster/images.sh build' (make test does)",
            pytrace=False,
        )
    mountpoint = PROMETHEUS_ROOTFS / "tmp"
    script = (
        f'mount --bind "$1" {mountpoint} && shift && '
        f'exec chroot {PROMETHEUS_ROOTFS} /usr/bin/promtool "$@"'
    )
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(workdir), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )


def series(metric: str, pod: str, process: str, values: str, **labels: str) -> dict[str, str]:
    """One input series of a scrape target of the test release (namespace ``shop``)."""
    all_labels = {"namespace": "shop", "pod": pod, "process": process, **labels}
    text = ",".join(f'{key}="{value}"' for key, value in all_labels.items())
    return {"series": f"{metric}{{{text}}}", "values": values}
