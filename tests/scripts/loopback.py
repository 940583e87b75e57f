"""A loopback "StatefulSet": the real pod scripts against the real servers and Sentinels.

Each pod gets its own loopback address (``127.0.<subnet>.<ordinal + 1>``), data, run and tmp
directories, and each container its own mount namespace (``unshare --mount``) in which it
runs chrooted in the root filesystem of the image the settings name (built by
``scripts/cluster/images.sh``, so each engine runs its own binaries and the image's shell and
tools), with the volumes of the pod spec bind-mounted at the paths the spec gives (``/data``,
``/config``, ``/scripts``, ...) and a hosts file that maps the pod host names, and
``localhost``, to the addresses. The ConfigMap files, the volume mounts, the commands, the
probes, the hooks and the environment all come from the functions that build the StatefulSet
(``statefulset_spec``, ``config_files``), so the harness cannot drift from the pod spec. The
one difference: on Kubernetes each pod has its own network namespace, here every server listens
on the same ports, so ``redis.conf`` binds the pod's address instead of ``*`` and
``sentinel.conf`` gains a ``bind`` line.

Processes are grouped in a cgroup per set, so tear-down (and :func:`sweep`, after a killed
run) leaves none behind.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from components.conf import config_files
from components.credentials import ADMIN, APPLICATION, INTERNAL_CREDENTIALS, Credential
from components.naming import REDIS_PORT, SENTINEL_PORT, Names
from components.settings import RedisSettings
from components.workload import PASSWORD_KEY, PREVIOUS_PASSWORD_KEY, statefulset_spec

CGROUP_ROOT = Path("/sys/fs/cgroup/pids/sophia-loopback")
REQUIRED_BINARIES = ("unshare", "mount", "chroot", "iptables")
IMAGES_ROOTFS = (
    Path(os.environ.get("SOPHIA_CACHE", Path.home() / ".cache" / "sophia-redis"))
    / "images"
    / "rootfs"
)
SCRIPTED_CONTAINERS = ("redis", "sentinel")
"""The containers that run the pod scripts; the metrics exporter runs from an image of its own,
and the cluster tests cover it."""
NO_RETRY = Retry(NoBackoff(), 0)
"""A refused login or a dead server is an answer here: redis-py would retry both."""
PROBE_PERIOD_SECONDS = 2.0
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0)

Json = dict[str, Any]


def fake_password(credential: Credential) -> str:
    """The harness's password of an internal role: distinct per role, URL- and sh-hostile."""
    return f"Fake-{credential.role}-Pa55word!*+_for.tests~0123456789"


def credential_secret(password: str, previous_password: str | None = None) -> dict[str, str]:
    """The release's Secret: the application password(s) and every internal role's."""
    secret = {
        credential.secret_key: fake_password(credential) for credential in INTERNAL_CREDENTIALS
    }
    secret[PASSWORD_KEY] = password
    if previous_password:
        secret[PREVIOUS_PASSWORD_KEY] = previous_password
    return secret


def call(client: redis.Redis, *args: object) -> Any:
    """``execute_command``, which redis-py leaves untyped."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


class HarnessError(RuntimeError):
    """The harness cannot run here (missing binaries, not root)."""


def require_host() -> None:
    """Fails with what to install when the binaries or privileges the harness needs are missing."""
    missing = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
    if missing:
        raise HarnessError(
            f"{', '.join(missing)} not installed: run scripts/install-host-packages.sh "
            "(make test does)"
        )
    if os.geteuid() != 0:
        raise HarnessError("the loopback harness needs root (mount namespaces, cgroups, iptables)")


def image_rootfs(settings: RedisSettings) -> Path:
    """The root filesystem images.sh built for ``settings.image`` (``localhost/sophia/E:V``),
    checked to hold the engine's binaries."""
    repository, _, tag = settings.image.rpartition(":")
    root = IMAGES_ROOTFS / f"{repository.rsplit('/', 1)[-1]}-{tag}"
    engine = settings.server_engine
    missing = [
        binary
        for binary in (engine.server, engine.sentinel, engine.cli)
        if not (root / "usr" / "bin" / binary).exists()
    ]
    if not root.is_dir() or missing:
        raise HarnessError(
            f"no root filesystem of {settings.image} with {', '.join(missing) or 'binaries'} "
            f"under {root}: run scripts/cluster/images.sh build (make test does)"
        )
    (root / "etc" / "hosts").touch()
    return root


def program_at(commit: str, target: Path) -> ModuleType:
    """The ``components`` package as of ``commit``, importable beside this checkout's under
    another name (its imports are relative), for a set that starts on an earlier release."""
    root = Path(__file__).resolve().parents[2]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", commit, "components"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    name = f"components_{commit}"
    (target / "components").rename(target / name)
    sys.path.insert(0, str(target))
    try:
        package = importlib.import_module(name)
        for module in ("conf", "naming", "settings", "workload"):
            importlib.import_module(f"{name}.{module}")
    finally:
        sys.path.remove(str(target))
    return package


def sweep() -> None:
    """Kills every process a previous, interrupted run left in the harness cgroups."""
    if not CGROUP_ROOT.is_dir():
        return
    for group in CGROUP_ROOT.iterdir():
        if group.is_dir():
            _kill_cgroup(group)


def _kill_cgroup(group: Path) -> None:
    for _ in range(50):
        pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        group.rmdir()


@dataclass
class Container:
    """One container of a pod: its spec, and the running process (a new session each start)."""

    spec: Json
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Pod:
    """A pod of the loopback set: the kubelet's part (start, restart, probes, preStop, kill)."""

    def __init__(self, owner: LoopbackSet, ordinal: int) -> None:
        self.owner = owner
        self.ordinal = ordinal
        self.name = f"{owner.names.statefulset}-{ordinal}"
        self.address = owner.address(ordinal)
        self.host = owner.names.pod_host(ordinal)
        self.dir = owner.root / self.name
        self.revision = owner.revision
        self.secret = dict(owner.secret)
        self.containers: dict[str, Container] = {}
        self.incarnation = 0
        self.sources: dict[str, Path] = {}
        self.template = owner.template
        self.rootfs = owner.rootfs
        self.ready = False
        self.deleting = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for volume in ("data", "run", "tmp", "config"):
            (self.dir / volume).mkdir(parents=True, exist_ok=True)

    # ---- the pod's filesystem and environment, from the StatefulSet spec

    def _volume_sources(self) -> dict[str, Path]:
        """Host directory of every volume of the pod template; ConfigMap volumes are written
        anew for each pod (the running containers keep theirs, as on a node)."""
        self.incarnation += 1
        sources: dict[str, Path] = {}
        for volume in self.template["volumes"]:
            name = volume["name"]
            if "configMap" in volume:
                target = self.dir / f"cm-{name}-{self.incarnation}"
                target.mkdir()
                mode = volume["configMap"].get("defaultMode", 0o644)
                items = volume["configMap"].get("items") or [
                    {"key": key, "path": key} for key in self.owner.files
                ]
                for item in items:
                    path = target / item["path"]
                    path.write_text(self._configmap_file(item["key"]))
                    path.chmod(mode)
                sources[name] = target
            else:
                sources[name] = self.dir / name
        for claim in self.owner.spec["volumeClaimTemplates"]:
            sources[claim["metadata"]["name"]] = self.dir / "data"
        return sources

    def _configmap_file(self, key: str) -> str:
        text = self.owner.files[key]
        if key == "redis.conf":
            text = text.replace("bind * -::*", f"bind {self.address}")
        elif key == "sentinel.conf":
            text = f"bind {self.address}\n{text}"
        return text

    def _hosts_file(self) -> Path:
        lines = [f"{self.address} localhost"]
        lines += [
            f"{self.owner.address(i)} {self.owner.names.pod_host(i)}"
            for i in range(self.owner.max_pods)
        ]
        path = self.dir / "hosts"
        text = "\n".join(lines) + "\n"
        # Rewritten only when it changes: running containers read it through a bind mount, and
        # a rewrite in place would show them an empty file for a moment.
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        return path

    def env(self, container: Json) -> dict[str, str]:
        """The container's environment as the kubelet resolves it."""
        fields = {
            "metadata.name": self.name,
            "metadata.namespace": self.owner.names.namespace,
            "metadata.labels['controller-revision-hash']": self.revision,
        }
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "fieldRef" in item["valueFrom"]:
                env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                if ref["key"] in self.secret:
                    env[item["name"]] = self.secret[ref["key"]]
                elif not ref.get("optional"):
                    raise HarnessError(f"secret key {ref['key']} missing for {item['name']}")
        return env

    def _launcher(self, container: Json, command: list[str]) -> list[str]:
        """``unshare --mount`` running ``command`` chrooted in the image's root filesystem,
        with the container's volumes mounted."""
        sources = self.sources
        root = self.rootfs
        steps = [
            f"mount --bind {self._hosts_file()} {root}/etc/hosts",
            f"mount --bind /dev {root}/dev",
            f"mount --bind /proc {root}/proc",
        ]
        for mount in container["volumeMounts"]:
            target = root / mount["mountPath"].lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            steps.append(f"mount --bind {sources[mount['name']]} {target}")
        script = " && ".join(steps) + f' && exec chroot {root} sh -c \'cd / && exec "$@"\' sh "$@"'
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            *command,
        ]

    def run_in(
        self, container_name: str, command: list[str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """An exec into a container (probes, hooks): same namespace set-up, same environment."""
        spec = next(c for c in self.template["containers"] if c["name"] == container_name)
        return subprocess.run(
            self._launcher(spec, command),
            env=self.env(spec),
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=self.owner.join_cgroup,
        )

    # ---- lifecycle

    def start(self) -> None:
        """Creates the pod: both containers, their restart loops and the readiness probe."""
        self._stop.clear()
        self.deleting = False
        self.ready = False
        self.template = self.owner.template
        self.rootfs = self.owner.rootfs
        self.sources = self._volume_sources()
        for spec in self.template["containers"]:
            container = Container(spec)
            self.containers[container.name] = container
            self._launch(container)
            self._spawn(self._supervise, container)
        self._spawn(self._probe_loop)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _launch(self, container: Container) -> None:
        log = open(self.dir / f"{container.name}.log", "ab")  # noqa: SIM115 - owned by the child
        log.write(f"--- start {container.starts + 1} at {time.time():.3f}\n".encode())
        log.flush()
        container.process = subprocess.Popen(
            self._launcher(container.spec, container.spec["command"]),
            env=self.env(container.spec),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self.owner.join_cgroup,
        )
        log.close()
        container.starts += 1

    def _supervise(self, container: Container) -> None:
        """restartPolicy Always, with the kubelet's growing back-off."""
        failures = 0
        while not self._stop.is_set():
            process = container.process
            assert process is not None
            code = process.wait()
            if self._stop.is_set():
                return
            container.exits.append(code)
            if container.name == "redis":
                self.ready = False
            delay = RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)]
            failures += 1
            if self._stop.wait(delay):
                return
            with self._lock:
                if not self._stop.is_set():
                    self._launch(container)

    def _probe_loop(self) -> None:
        """The kubelet's readiness probe. A container that exits is not ready until a probe of
        its next run passes, so a probe that began before a restart does not count."""
        redis = self.containers["redis"]
        command = redis.spec["readinessProbe"]["exec"]["command"]
        while not self._stop.wait(PROBE_PERIOD_SECONDS):
            run = redis.starts
            try:
                passed = self.run_in("redis", command, timeout=10).returncode == 0
            except subprocess.TimeoutExpired:
                passed = False
            self.ready = passed and redis.starts == run and redis.running()

    def is_ready(self) -> bool:
        return self.ready

    def signal(self, container_name: str, signum: int) -> None:
        """Sends ``signum`` to the container's main process (after exec: the server itself)."""
        os.kill(self.containers[container_name].pid, signum)

    def crash(self, *container_names: str) -> None:
        """SIGKILL of the containers' processes; the restart loop brings them back."""
        for name in container_names or ("redis", "sentinel"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.containers[name].pid, signal.SIGKILL)

    def kill(self) -> None:
        """The pod is gone at once (node lost): every process killed, nothing restarted."""
        self._stop.set()
        for container in self.containers.values():
            if container.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(container.pid, signal.SIGCONT)
                    os.killpg(container.pid, signal.SIGKILL)
                container.process.wait()
        self.ready = False

    def delete(self, grace_seconds: int | None = None) -> dict[str, float]:
        """Graceful deletion as the kubelet does it: each container's preStop hook runs (all in
        parallel), the container gets SIGTERM once its own hook returns, and SIGKILL when the
        grace period ends. Returns how long each hook ran."""
        grace = grace_seconds or self.owner.settings.termination_grace_period_seconds
        self.deleting = True
        self._stop.set()
        deadline = time.monotonic() + grace
        durations: dict[str, float] = {}

        def stop(container: Container) -> None:
            hook = container.spec.get("lifecycle", {}).get("preStop")
            started = time.monotonic()
            if hook and container.running():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.run_in(
                        container.name,
                        hook["exec"]["command"],
                        timeout=max(0.1, deadline - time.monotonic()),
                    )
            durations[container.name] = time.monotonic() - started
            if container.running():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(container.pid, signal.SIGTERM)

        stoppers = [
            threading.Thread(target=stop, args=(container,))
            for container in self.containers.values()
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(max(0.0, deadline - time.monotonic()))
        for container in self.containers.values():
            if container.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    container.process.wait(max(0.1, deadline - time.monotonic()))
        self.kill()
        return durations

    def wipe_data(self) -> None:
        """An empty volume (a lost or replaced PVC)."""
        shutil.rmtree(self.dir / "data")
        (self.dir / "data").mkdir()

    def log(self, container_name: str = "redis") -> str:
        path = self.dir / f"{container_name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- clients

    def client(
        self, password: str | None = None, user: str | None = ADMIN.redis_user
    ) -> redis.Redis:
        """A user (the admin unless told) on this pod's Redis."""
        return redis.Redis(
            host=self.address,
            port=REDIS_PORT,
            username=user,
            password=password or self.owner.secret[ADMIN.secret_key],
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=NO_RETRY,
        )

    def local_client(self) -> redis.Redis:
        """The admin user on this pod's Redis through its Unix socket, which stays open while
        a hand-over has closed the TCP port."""
        return redis.Redis(
            unix_socket_path=str(self.dir / "run" / "redis.sock"),
            username=ADMIN.redis_user,
            password=self.owner.secret[ADMIN.secret_key],
            socket_timeout=2,
        )

    def app_client(self, password: str | None = None) -> redis.Redis:
        """The application user on this pod's Redis."""
        return self.client(password or self.owner.password, APPLICATION.redis_user)

    def sentinel(self, password: str | None = None, user: str | None = None) -> redis.Redis:
        """A user (the admin, or the set's ``sentinel_login``, unless told) on this pod's
        Sentinel."""
        if password is None:
            user, password = self.owner.sentinel_login or (
                ADMIN.sentinel_user,
                self.owner.secret[ADMIN.secret_key],
            )
        return redis.Redis(
            host=self.address,
            port=SENTINEL_PORT,
            username=user,
            password=password,
            socket_timeout=2,
            socket_connect_timeout=2,
            decode_responses=True,
            retry=NO_RETRY,
        )

    def app_sentinel(self, password: str | None = None) -> redis.Redis:
        """The application user on this pod's Sentinel."""
        return self.sentinel(password or self.owner.password, APPLICATION.sentinel_user)

    def role(self) -> str | None:
        try:
            info = self.client().info("replication")
            return str(info["role"])
        except redis.RedisError:
            return None

    def sentinel_knows(self, peers: int) -> bool:
        """This pod's Sentinel lists ``peers`` replicas and ``peers`` other Sentinels."""
        name = self.owner.settings.master_set_name
        try:
            client = self.sentinel()
            replicas = call(client, "SENTINEL", "REPLICAS", name)
            sentinels = call(client, "SENTINEL", "SENTINELS", name)
        except redis.RedisError:
            return False
        return len(replicas) >= peers and len(sentinels) >= peers

    def named_master(self) -> str | None:
        try:
            reply = call(
                self.sentinel(),
                "SENTINEL",
                "GET-MASTER-ADDR-BY-NAME",
                self.owner.settings.master_set_name,
            )
        except redis.RedisError:
            return None
        return str(reply[0]) if reply else None


class LoopbackSet:
    """A StatefulSet of ``settings.replicas`` pods on ``127.0.<subnet>.0/24``."""

    def __init__(
        self,
        root: Path,
        subnet: int,
        settings: RedisSettings,
        password: str,
        previous_password: str | None = None,
        revision: str = "rev-1",
        program: ModuleType | None = None,
    ) -> None:
        require_host()
        self.root = root
        self.subnet = subnet
        self.max_pods = 8
        self.password = password
        self.secret = credential_secret(password, previous_password)
        self.revision = revision
        self.roll_order: list[int] = []
        """The ordinals of the last rolling update, in the order it replaced them."""
        self.cgroup = CGROUP_ROOT / f"set-{subnet}"
        _kill_cgroup(self.cgroup) if self.cgroup.exists() else None
        self.cgroup.mkdir(parents=True, exist_ok=True)
        self.pods: dict[int, Pod] = {}
        self.cut_rules: list[list[str]] = []
        self.sentinel_login: tuple[str | None, str] | None = None
        """(user, password) of the harness's own Sentinel queries instead of the admin's."""
        self.configure(settings, program)

    def configure(self, settings: RedisSettings, program: ModuleType | None = None) -> None:
        """A new pod template (as after `pulumi up`); running pods keep theirs until restarted.
        ``program``: the ``components`` package of another commit (see
        :func:`program_at`), whose settings ``settings`` then are; this checkout's by default."""
        self.settings = settings
        self.rootfs = image_rootfs(settings)
        self.names = Names.of(settings)
        if program is None:
            self.files = config_files(settings)
            self.spec = statefulset_spec(settings, self.names, {})
        else:
            self.files = program.conf.config_files(settings)
            self.spec = program.workload.statefulset_spec(
                settings, program.naming.Names.of(settings), {}
            )
        template = self.spec["template"]["spec"]
        scripted = [c for c in template["containers"] if c["name"] in SCRIPTED_CONTAINERS]
        self.template = {**template, "containers": scripted}

    def container_spec(self, name: str) -> Json:
        return next(c for c in self.template["containers"] if c["name"] == name)

    def address(self, ordinal: int) -> str:
        return f"127.0.{self.subnet}.{ordinal + 1}"

    def join_cgroup(self) -> None:
        """``preexec_fn`` of every process: into the set's cgroup, for a complete tear-down."""
        (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))

    def pod(self, ordinal: int) -> Pod:
        if ordinal not in self.pods:
            self.pods[ordinal] = Pod(self, ordinal)
        return self.pods[ordinal]

    def start(self, ordinals: list[int] | None = None, pause: float = 0.0) -> None:
        for ordinal in ordinals if ordinals is not None else range(self.settings.replicas):
            self.pod(ordinal).start()
            if pause:
                time.sleep(pause)

    def running(self) -> list[Pod]:
        return [pod for pod in self.pods.values() if not pod._stop.is_set()]

    def host_ordinal(self, host: str) -> int:
        """The ordinal of the pod a host name (``redis-1.redis-headless...``) names."""
        return int(host.split(".", 1)[0].rsplit("-", 1)[1])

    def host_address(self, host: str) -> str:
        return self.address(self.host_ordinal(host))

    def masters(self) -> list[Pod]:
        return [pod for pod in self.running() if pod.role() == "master"]

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise AssertionError(f"not within {timeout:.0f} s: {what}\n{self.describe()}")

    def healthy(self, expected_pods: int | None = None) -> bool:
        """One master that every running Sentinel names, every pod ready."""
        pods = self.running()
        if expected_pods is not None and len(pods) != expected_pods:
            return False
        masters = self.masters()
        if len(masters) != 1 or not all(pod.ready for pod in pods):
            return False
        if not all(pod.named_master() == masters[0].host for pod in pods):
            return False
        # A Sentinel learns replicas from the master's INFO every 10 s; until it has, it cannot
        # fail over (seen: a master hung right after start, -failover-abort-no-good-slave).
        return all(pod.sentinel_knows(len(pods) - 1) for pod in pods)

    def wait_healthy(self, timeout: float = 60, expected_pods: int | None = None) -> Pod:
        self.wait(
            lambda: self.healthy(expected_pods),
            timeout,
            "one master named by every Sentinel, all pods ready",
        )
        return self.masters()[0]

    def describe(self) -> str:
        lines = []
        for pod in self.pods.values():
            alive = {name: c.running() for name, c in pod.containers.items()}
            lines.append(
                f"{pod.name}: stopped={pod._stop.is_set()} ready={pod.ready} role={pod.role()} "
                f"sentinel names {pod.named_master()} containers={alive}"
            )
            tail = pod.log("redis").splitlines()[-4:] + pod.log("sentinel").splitlines()[-3:]
            lines += [f"    {line}" for line in tail]
        return "\n".join(lines)

    def rolling_update(
        self,
        settings: RedisSettings | None = None,
        revision: str = "rev-2",
        secret: dict[str, str] | None = None,
        timeout: float = 90,
    ) -> None:
        """What the rolling-update Job does on a template change (components/rollout.py): one
        pod at a time, the replicas in ordinal order and the master last, delete it, start it
        on the new revision and wait until it is ready."""
        if settings is not None:
            self.configure(settings)
        self.revision = revision
        if secret is not None:
            kept = {
                k: v
                for k, v in self.secret.items()
                if k not in (PASSWORD_KEY, PREVIOUS_PASSWORD_KEY)
            }
            self.secret = {**kept, **secret}
            self.password = secret[PASSWORD_KEY]
        pending = [
            ordinal
            for ordinal in range(self.settings.replicas)
            if not (self.pod(ordinal)._stop.is_set() and not self.pod(ordinal).containers)
        ]
        self.roll_order.clear()
        while pending:
            masters = {pod.ordinal for pod in self.masters()}
            ordinal = next((o for o in pending if o not in masters), pending[0])
            pending.remove(ordinal)
            self.roll_order.append(ordinal)
            pod = self.pod(ordinal)
            pod.delete()
            pod.revision = revision
            pod.secret = dict(self.secret)
            pod.start()
            self.wait(pod.is_ready, timeout, f"{pod.name} ready after its update")

    def run_job(self, job_spec: Json, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """A Job's pod (its first container) run to completion on the set's last free address,
        with the set's current Secret and ConfigMap files."""
        pod = Pod(self, self.max_pods - 1)
        pod.name = f"{self.names.release}-job-{int(time.time())}"
        pod.template = job_spec["template"]["spec"]
        pod.sources = pod._volume_sources()
        container = pod.template["containers"][0]
        return pod.run_in(container["name"], container["command"], timeout)

    def cut_off(self, ordinal: int) -> contextlib.AbstractContextManager[None]:
        """Drops every packet to the pod's address (its servers unreachable), then heals."""
        return self._filtered(["INPUT", "-d", self.address(ordinal), "-j", "DROP"])

    def refuse_new_connections(
        self, ordinal: int, port: int
    ) -> contextlib.AbstractContextManager[None]:
        """Resets every new TCP connection to ``port`` of the pod's address (established ones
        carry on, as a Sentinel's links do), then heals."""
        address = self.address(ordinal)
        rule = [
            "INPUT", "-d", address, "-p", "tcp", "--dport", str(port), "--syn",
            "-j", "REJECT", "--reject-with", "tcp-reset",
        ]  # fmt: skip
        return self._filtered(rule)

    @contextlib.contextmanager
    def _filtered(self, rule: list[str]) -> Iterator[None]:
        """The iptables ``rule`` inserted while the block runs (and until :meth:`heal`)."""
        subprocess.run(["iptables", "-I", *rule], check=True)
        self.cut_rules.append(rule)
        try:
            yield
        finally:
            self.heal()

    def heal(self) -> None:
        while self.cut_rules:
            rule = self.cut_rules.pop()
            subprocess.run(["iptables", "-D", *rule], check=False)

    def close(self) -> None:
        self.heal()
        for pod in self.pods.values():
            pod._stop.set()
        _kill_cgroup(self.cgroup)
        for pod in self.pods.values():
            for container in pod.containers.values():
                if container.process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        container.process.wait(5)
