"""The logs of a release's pods over a block of work, those of the pods the block deleted
included: what explains a failover or a roll after the fact."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .deployment import Deployed
from .kube import Kube, kube_env, kubectl_path

DIGEST_EVENTS = re.compile(
    r"preStop|[+-]tilt|[+-]switch-master|[+-]failover|[+-]elected-leader|[+-]odown|"
    r"[+-]sdown master|[+-]promoted-slave|[+-]convert-to-slave|[+-]reset-master|"
    r"user requested FAILOVER|SENTINEL RESET"
)
"""The lines that tell how the master role moved: hand-over hooks and failover events."""
DIGEST_MAX_LINES = 120
HOOK_LOG_PREFIX = "previous shutdown: "
"""What the Redis container prints before each line of its last preStop hook's log."""


@dataclass
class FollowedLogs:
    """What :func:`followed_logs` collected: each pod's log of the containers that matter."""

    servers: dict[str, str] = field(default_factory=dict)
    """Server pod name to its Redis container's log (a preStop hook's log is printed by the
    next start of its pod)."""
    sentinels: dict[str, str] = field(default_factory=dict)
    """Server pod name to its Sentinel container's log."""
    proxies: dict[str, str] = field(default_factory=dict)
    """Proxy pod name to its HAProxy container's log."""

    def text(self) -> str:
        """Every log, one section per pod and container."""
        sections = [
            f"--- {pod} ({kind}):\n{text}"
            for kind in ("servers", "sentinels", "proxies")
            for pod, text in getattr(self, kind).items()
        ]
        return "\n".join(sections)

    def digest(self) -> str:
        """How the master role moved, in time order: every hand-over hook's line (at the time
        the hook logged it; the next start of its pod prints it) and every Sentinel's failover
        events, the first ``DIGEST_MAX_LINES``, each with its pod and the hosts' cluster domain
        cut."""
        lines = sorted(
            f"{line.split(HOOK_LOG_PREFIX, 1)[-1]} [{pod}]"
            for logs in (self.servers, self.sentinels)
            for pod, text in logs.items()
            for line in text.splitlines()
            if DIGEST_EVENTS.search(line)
        )
        shortened = (re.sub(r"\.redis-headless\.[\w.-]+", "", line) for line in lines)
        return "\n".join(list(shortened)[:DIGEST_MAX_LINES])


def log_sources(kube: Kube) -> list[tuple[str, str, str]]:
    """``(kind, pod, container)`` of every server, Sentinel and proxy of the release."""
    proxies = kube.json("get", "pods", "-l", "app.kubernetes.io/component=proxy")["items"]
    servers = kube.redis_pods()
    return (
        [("servers", pod, "redis") for pod in servers]
        + [("sentinels", pod, "sentinel") for pod in servers]
        + [("proxies", item["metadata"]["name"], "haproxy") for item in proxies]
    )


@contextmanager
def followed_logs(kube: Kube) -> Iterator[FollowedLogs]:
    """Follows the log of every server, Sentinel and proxy while the block runs, then adds the
    logs of the pods running at its end; yields what it fills, each line once.

    Following keeps what a pod deleted by the block logged before it went: a failover's
    leader may be the Sentinel of the very pod that was deleted.
    """
    collected = FollowedLogs()
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory() as folder:
        followers = []
        for kind, pod, container in log_sources(kube):
            output = (Path(folder) / f"{kind}-{pod}").open("w")
            command = [kubectl_path(), "-n", kube.namespace, "logs", "-f", "--timestamps"]
            command += ["--since=1s", pod, "-c", container]
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.DEVNULL, env=kube_env()
            )
            followers.append((kind, pod, process, output))
        try:
            yield collected
        finally:
            for _, _, process, _ in followers:
                process.terminate()
            for kind, pod, process, output in followers:
                process.wait(timeout=10)
                output.close()
                getattr(collected, kind)[pod] = (Path(folder) / f"{kind}-{pod}").read_text()
            for kind, pod, container in log_sources(kube):
                current = kube.run(
                    "logs",
                    pod,
                    "-c",
                    container,
                    "--timestamps",
                    f"--since-time={started}",
                    check=False,
                ).stdout
                logs: dict[str, str] = getattr(collected, kind)
                seen = set(logs.get(pod, "").splitlines())
                added = [line for line in current.splitlines() if line not in seen]
                logs[pod] = "\n".join([logs.get(pod, ""), *added]).strip("\n")


@contextmanager
def logs_kept(release: Deployed, step: str) -> Iterator[FollowedLogs]:
    """Writes every pod's log of the block to the release's log (the integration log), those
    of the pods the block deleted included, also when the block fails; yields what it fills
    at the block's end."""
    kept = FollowedLogs()
    try:
        with followed_logs(release.kube) as kept:
            yield kept
    finally:
        release.log(f"every pod's log while {step} ran:\n{kept.text()}")
