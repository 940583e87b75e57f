"""Small helpers over kubectl and containerd for the integration tests and the benchmark (run
as root)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automation.workspace import cache_dir, kubeconfig

CLIENT_POD = "redis-client"
SENTINEL_EVENT = re.compile(r"[#*] [+-][a-z]|Z [\w-]+-\d+: ")
"""A Sentinel event line (``# +tilt``, ``* +slave``) or a line the Sentinel container's
scripts logged (``<time>Z redis-1: ...``), in ``kubectl logs --timestamps`` output."""
CLIENT_IMAGE = "localhost/sophia/redis-client:7.0"
CLI_IN_POD = """. /scripts/constants.sh || exit 1
command -v "$CLI_BIN" >/dev/null 2>&1 ||
    for CLI_BIN in $CLI_BINS; do command -v "$CLI_BIN" >/dev/null 2>&1 && break; done
port=$REDIS_PORT
[ "$1" = sentinel ] && port=$SENTINEL_PORT
shift
tls=""
[ "${INTERNAL_TLS:-0}" = 1 ] &&
    tls="--tls --cacert $TLS_DIR/ca.crt --cert $TLS_DIR/tls.crt --key $TLS_DIR/tls.key"
exec "$CLI_BIN" $tls -p "$port" "$@"
"""
"""Runs the CLI of the pod's engine with the arguments after ``sh -c CLI_IN_POD sh redis|sentinel``
on the port (and with the TLS options) the pod's own scripts use. During an engine migration a
pod still on the old image reads the new ``constants.sh`` (the ConfigMap keeps its name), whose
CLI it lacks: then the first of every engine's CLIs (``CLI_BINS``) that the image has."""


def kubectl_path() -> str:
    cached = cache_dir() / "bin" / "kubectl"
    if cached.exists():
        return str(cached)
    found = shutil.which("kubectl")
    if not found:
        raise AssertionError("kubectl is missing: run 'make cluster-build'")
    return found


def kube_env() -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig()),
        "PATH": f"{cache_dir() / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@dataclass(frozen=True)
class Kube:
    """kubectl bound to one namespace of the local cluster."""

    namespace: str

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [kubectl_path(), "-n", self.namespace, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=kube_env(),
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def exec(
        self, pod: str, container: str, *command: str, stdin: str | None = None, timeout: float = 60
    ) -> str:
        args = ["exec", "-i" if stdin is not None else "", pod, "-c", container, "--", *command]
        return self.run(*[a for a in args if a], stdin=stdin, timeout=timeout).stdout

    def client_python(self, script: str, payload: Any, timeout: float = 120) -> Any:
        """Runs ``script`` in the client pod with ``payload`` as JSON on stdin (so URLs and
        passwords stay out of argv) and returns the JSON it prints."""
        output = self.run(
            "exec",
            "-i",
            CLIENT_POD,
            "--",
            "python3",
            "-c",
            script,
            stdin=json.dumps(payload),
            timeout=timeout,
        ).stdout
        return json.loads(output)

    def redis_pods(self) -> list[str]:
        pods = self.json("get", "pods", "-l", "app.kubernetes.io/component=server")
        return sorted(p["metadata"]["name"] for p in pods["items"])

    def handover_log(self) -> str:
        """What explains a hand-over after the fact: each server pod's log of its last preStop
        hook (its next start prints it), its Sentinel's events (``+tilt``, ``+sdown``,
        ``+switch-master``, ...) and its Sentinel container's own lines (resets), and each
        proxy's server state changes, with the time each line was logged."""
        sections = []
        for pod in self.redis_pods():
            lines = self.run("logs", "--timestamps", pod, "-c", "redis", check=False).stdout
            kept = [line for line in lines.splitlines() if "previous shutdown:" in line]
            sections.append(f"--- {pod} (redis):\n" + "\n".join(kept))
            lines = self.run("logs", "--timestamps", pod, "-c", "sentinel", check=False).stdout
            kept = [line for line in lines.splitlines() if SENTINEL_EVENT.search(line)]
            sections.append(f"--- {pod} (sentinel):\n" + "\n".join(kept))
        proxies = self.json("get", "pods", "-l", "app.kubernetes.io/component=proxy")
        for pod in sorted(p["metadata"]["name"] for p in proxies["items"]):
            lines = self.run("logs", "--timestamps", pod, check=False).stdout
            kept = [
                line
                for line in lines.splitlines()
                if (" is UP" in line or " is DOWN" in line or "maintenance" in line)
                and "[WARNING]" not in line
            ]
            sections.append(f"--- {pod}:\n" + "\n".join(kept))
        return "\n".join(sections)

    def cli(self, pod: str, container: str, *args: str) -> str:
        """The engine's CLI (``redis-cli``, ``valkey-cli``: the pod's constants.sh names it)
        run inside the pod on the container's port, authenticated by the pod's
        REDISCLI_AUTH; over TLS when the pod's own links are."""
        return self.exec(pod, container, "sh", "-c", CLI_IN_POD, "sh", container, *args, timeout=20)

    def sentinel(self, pod: str, *command: str) -> str:
        """A Sentinel command as its admin user inside the pod (REDISCLI_AUTH from the Secret)."""
        return self.cli(pod, "sentinel", "--no-auth-warning", "--user", "admin", *command)

    def redis(self, pod: str, *command: str) -> str:
        """A Redis command as the admin user inside the pod (REDISCLI_AUTH from the Secret)."""
        return self.cli(pod, "redis", "--no-auth-warning", "--user", "admin", *command)

    def secret_values(self, name: str) -> dict[str, str]:
        """The decoded data of a Secret of the namespace, by key."""
        data = self.json("get", "secret", name)["data"]
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def container_pid(self, pod: str, container: str) -> int:
        """The host PID of a container's main process, via containerd."""
        status = self.json("get", "pod", pod)["status"]["containerStatuses"]
        (entry,) = [s for s in status if s["name"] == container]
        container_id = entry["containerID"].split("://", 1)[1]
        tasks = subprocess.run(
            ["ctr", "--address", containerd_socket(), "-n", "k8s.io", "tasks", "ls"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in tasks.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == container_id:
                return int(fields[1])
        raise AssertionError(f"no containerd task for {pod}/{container}")


def cpu_throttling(pid: int) -> dict[str, int]:
    """``nr_periods``, ``nr_throttled`` and ``throttled_time`` (ns) of the CPU cgroup of a
    host process (cgroup v1: ``cpu`` controller; v2: the unified ``cpu.stat``)."""
    stat: Path | None = None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            stat = Path("/sys/fs/cgroup/cpu") / path.lstrip("/") / "cpu.stat"
            break
        if controllers == "":
            stat = Path("/sys/fs/cgroup") / path.lstrip("/") / "cpu.stat"
    if stat is None or not stat.exists():
        raise AssertionError(f"no CPU cgroup statistics for process {pid}")
    values = dict(line.split() for line in stat.read_text().splitlines())
    keys = {"nr_periods": "nr_periods", "nr_throttled": "nr_throttled"}
    result = {name: int(values[key]) for name, key in keys.items() if key in values}
    if "throttled_time" in values:
        result["throttled_time_ns"] = int(values["throttled_time"])
    elif "throttled_usec" in values:
        result["throttled_time_ns"] = int(values["throttled_usec"]) * 1000
    return result


def containerd_socket() -> str:
    for candidate in (
        Path("/run/sophia-redis/containerd/containerd.sock"),
        Path("/run/containerd/containerd.sock"),
    ):
        if candidate.exists():
            return str(candidate)
    raise AssertionError("containerd socket not found: is the local cluster up?")
