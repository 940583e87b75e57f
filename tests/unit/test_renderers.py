"""Pure renderers: redis.conf, sentinel.conf, haproxy.cfg and the pod scripts."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from components.conf import SCRIPT_NAMES, config_files, render_redis_conf, script
from components.credentials import (
    APPLICATION_DENIED_COMMANDS,
    APPLICATION_RULES,
    CREDENTIALS,
    PREVIOUS_APPLICATION_ENV,
)
from components.naming import Names, image_version
from components.pod_constants import pod_constants
from components.proxy import (
    PROXY_CA_MOUNT,
    follower_expectation,
    master_expectation,
    render_haproxy_cfg,
)
from components.revocation import REVOKE_ROLES_ENV
from components.rollout import NAMESPACE_ENV
from components.settings import load_settings
from tests.harness import FAKE_PASSWORD, REPO, stack_config

SCRIPTS = REPO / "components" / "scripts"
ALLOWED_COMMANDS = {
    # POSIX sh built-ins and keywords the scripts use
    "set",
    "trap",
    "exec",
    "exit",
    "return",
    "printf",
    "echo",
    "eval",
    "kill",
    "case",
    "esac",
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "while",
    "do",
    "done",
    "for",
    "in",
    "shift",
    "local",
    "break",
    "continue",
    # the Redis tools
    "redis-server",
    "redis-sentinel",
    "redis-cli",
    # the rolling-update Job's API client
    "kubectl",
    # coreutils and the POSIX utilities every Redis image has
    "date",
    "sleep",
    "mkdir",
    "cat",
    "touch",
    "mv",
    "tr",
    "sed",
    "awk",
    "head",
    "cut",
    "sort",
    "grep",
    "sha256sum",
    "timeout",
    "umask",
    "read",
}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run 'make tools'")
    return path


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_scripts_pass_shellcheck_as_posix_sh(stack: str, tmp_path: Path) -> None:
    """Checked as shipped: the ConfigMap's scripts beside the constants.sh they source."""
    shellcheck = require("shellcheck")
    for name, text in config_files(load_settings(stack_config(stack))).items():
        (tmp_path / name).write_text(text)
    names = [name for name in SCRIPT_NAMES if name != "lib.sh"]
    result = subprocess.run(
        [shellcheck, "-s", "sh", "-x", *names], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _code(text: str) -> str:
    """Script text without comments, with continued lines joined."""
    lines = ["" if line.lstrip().startswith("#") else line for line in text.splitlines()]
    return "\n".join(lines).replace("\\\n", " ")


def test_scripts_hold_no_value_that_python_knows() -> None:
    """Ports, budgets, priorities, quorums, DNS suffixes and the master-set name come only from
    the generated constants.sh: no number but 0 and 1, and no name from the settings."""
    settings = load_settings(stack_config("local"))
    names = Names.of(settings)
    forbidden_words = {
        settings.master_set_name,
        names.headless_service,
        names.namespace,
        settings.cluster_domain,
        "svc",
        "cluster.local",
    }
    for name in SCRIPT_NAMES:
        code = _code(script(name))
        # Not values: fd redirections (2>, >&2), positional parameters, field positions (awk,
        # cut), the umask, exit statuses and the key/value pairing of Sentinel replies.
        scrubbed = re.sub(
            r"\d+>|>&\d+|\$\d+|\$\(NF - \d+\)|NR % 2|-f [\d,]+|umask \d+|exit \d+", "", code
        )
        numbers = set(re.findall(r"(?<![\w.%-])\d+(?:\.\d+)?(?![\w.])", scrubbed))
        assert numbers <= {"0", "1"}, f"{name} holds literal values {sorted(numbers - {'0', '1'})}"
        words = set(re.findall(r"[\w.-]+", code))
        assert not words & forbidden_words, f"{name} holds {sorted(words & forbidden_words)}"


def test_constants_file_defines_every_constant_the_scripts_read() -> None:
    constants = pod_constants(load_settings(stack_config("local")))
    environment = {
        "POD_NAME",
        "REVISION",
        PREVIOUS_APPLICATION_ENV,
        REVOKE_ROLES_ENV,
        NAMESPACE_ENV,
        *(credential.env for credential in CREDENTIALS),
    }
    for name in SCRIPT_NAMES:
        code = _code(script(name))
        assigned = set(re.findall(r"(?:^|[\s;])([A-Z][A-Z0-9_]*)=", code, re.MULTILINE))
        for variable in set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", code)):
            assert (
                variable in constants
                or variable in environment
                or variable in assigned
                or (variable in re.findall(r"^([A-Z][A-Z0-9_]*)=", script("lib.sh"), re.MULTILINE))
            ), f"{name} reads ${variable}, which neither constants.sh nor the pod spec sets"


def test_sentinel_replies_are_read_in_one_place() -> None:
    """Only lib.sh's entry_fields walks SENTINEL MASTER/REPLICAS/SENTINELS replies."""
    for name in SCRIPT_NAMES:
        code = _code(script(name))
        if name != "lib.sh":
            assert "NR % 2" not in code, f"{name} parses a Sentinel reply itself"
            for line in code.splitlines():
                if re.search(r"SENTINEL (MASTER|REPLICAS|SENTINELS) ", line) and "|" in line:
                    assert "entry_fields" in line or line.rstrip().endswith("|"), (
                        f"{name}: a Sentinel reply read without entry_fields: {line.strip()}"
                    )
    assert script("lib.sh").count("NR % 2") == 1


def test_scripts_use_only_redis_tools_and_coreutils() -> None:
    for name in SCRIPT_NAMES:
        text = script(name)
        without_comments = _code(text)
        # Quoted program text (awk, sed) is data, not commands.
        unquoted = re.sub(r"'[^']*'", "''", without_comments)
        for line in unquoted.splitlines():
            code = line.strip()
            if not code or "=" in code.split(" ", 1)[0]:
                continue
            code = re.sub(r"^[^()$]*\)\s*", "", code)  # case patterns such as "a | b)"
            if not code or code.startswith(";;"):
                continue
            first = re.split(r"[\s;|&()]", code, maxsplit=1)[0]
            if first.endswith(")") or first in ("{", "}", "[", ".", ":", "*)") or "$" in first:
                continue
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\(\)", first + "()") and first.islower():
                defined = re.search(rf"^{re.escape(first)}\(\)", text, re.MULTILINE) or re.search(
                    rf"^{re.escape(first)}\(\)", script("lib.sh"), re.MULTILINE
                )
                if defined:
                    continue
            assert first in ALLOWED_COMMANDS, f"{name}: '{first}' in: {line.strip()}"


def test_scripts_never_pass_a_password_as_an_argument() -> None:
    for name in SCRIPT_NAMES:
        text = script(name)
        assert not re.search(r"redis-cli[^\n]*\s-a\s", text), name
        assert "--pass" not in text, name


IMAGES_ROOTFS = (
    Path(os.environ.get("SOPHIA_CACHE", Path.home() / ".cache" / "sophia-redis"))
    / "images"
    / "rootfs"
)


def image_haproxy() -> list[str]:
    """The HAProxy the proxy image ships (the host's Debian release has an older one), run with
    the image's own loader and libraries."""
    root = IMAGES_ROOTFS / "haproxy"
    loader = root / "lib64" / "ld-linux-x86-64.so.2"
    binary = root / "usr" / "sbin" / "haproxy"
    if not (loader.exists() and binary.exists()):
        pytest.fail(
            f"no root filesystem of the HAProxy image under {root}: "
            "run scripts/cluster/images.sh build (make test does)"
        )
    libraries = ":".join(
        str(root / d) for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")
    )
    return [str(loader), "--library-path", libraries, str(binary)]


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_haproxy_config_is_valid(stack: str, tmp_path: Path) -> None:
    haproxy = image_haproxy()
    settings = load_settings(stack_config(stack))
    config = tmp_path / "haproxy.cfg"
    text = render_haproxy_cfg(settings, Names.of(settings))
    if PROXY_CA_MOUNT in text:
        # The CA that the pod mounts from the certificate Secret: any CA certificate here.
        ca = tmp_path / "ca.crt"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                str(tmp_path / "ca.key"),
                "-out",
                str(ca),
                "-subj",
                "/CN=test",
                "-days",
                "1",
            ],
            check=True,
            capture_output=True,
        )
        text = text.replace(f"{PROXY_CA_MOUNT}/ca.crt", str(ca))
    config.write_text(text)
    result = subprocess.run(
        [*haproxy, "-c", "-f", str(config)],
        env={**os.environ, "REDIS_PASSWORD": FAKE_PASSWORD},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _unused_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_haproxy_closes_a_client_whose_server_refuses_it_at_once(tmp_path: Path) -> None:
    """A client the proxy sends to a server that refuses connections (an old master whose
    hand-over closed its port, before the proxy's next check marks it down) is closed at once
    and reconnects, instead of waiting out retries to that server (HAProxy's default: 3, 1 s
    apart). Run with the proxy's own ``defaults`` section on the image's HAProxy."""
    haproxy = image_haproxy()
    settings = load_settings({})
    rendered = render_haproxy_cfg(settings, Names.of(settings))
    defaults = rendered[rendered.index("defaults\n") :].split("\n\n", 1)[0]
    listen, refusing = _unused_loopback_port(), _unused_loopback_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"{defaults}\n\nfrontend redis\n    bind 127.0.0.1:{listen}\n    default_backend master\n"
        f"\nbackend master\n    server old-master 127.0.0.1:{refusing}\n"
    )
    proxy = subprocess.Popen([*haproxy, "-db", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = socket.create_connection(("127.0.0.1", listen), timeout=1)
                break
            except ConnectionRefusedError:
                assert proxy.poll() is None, proxy.stderr.read() if proxy.stderr else ""
                assert time.monotonic() < deadline, "HAProxy did not listen within 10 s"
                time.sleep(0.05)
        with client:
            started = time.monotonic()
            client.sendall(b"PING\r\n")
            client.settimeout(10)
            try:
                reply = client.recv(64)
            except ConnectionResetError:
                reply = b""
            held = time.monotonic() - started
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
    assert reply == b""
    assert held < 0.5, f"the client was held {held:.2f} s before its connection closed"


def test_haproxy_routes_only_to_an_agreed_master() -> None:
    settings = load_settings({"redis:replicas": "5"})
    text = render_haproxy_cfg(settings, Names.of(settings))
    assert FAKE_PASSWORD not in text and "${REDIS_PASSWORD}" in text
    assert text.count("tcp-check expect rstring (?s)role:master[^a-z]+connected") == 1
    assert "min_slaves_good_slaves:(1|2|3|4)[^0-9]" in text
    routes = [
        line for line in text.splitlines() if " if { srv_is_up" in line or "use-server" in line
    ]
    for i in range(5):
        agreed = f"{{ srv_is_up(redis_master/redis-{i}) }} {{ nbsrv(sentinels_agree_on_{i}) ge 3 }}"
        assert f"    use-server redis-{i} if {agreed}" in routes
        assert f"    tcp-request connection accept if {agreed}" in routes
        assert f"backend sentinels_agree_on_{i}" in text
    # Every route needs its server up in the master check, and a quorum naming someone.
    for route in routes:
        assert re.search(r" if \{ srv_is_up\(redis_master/redis-\d\) \} \{ nbsrv\(sentinels", route)
    assert "    tcp-request connection reject\n" in text
    assert "on-marked-down shutdown-sessions" in text


def test_haproxy_counts_a_server_down_until_its_check_passes() -> None:
    """A replica whose pod name resolves again, or any server when the proxy starts, must not
    count as master, follower or agreeing Sentinel before a check says so."""
    transition = {"enabled": True, "selfSignedCa": True, "plaintext": True}
    settings = load_settings({"redis:tls": json.dumps(transition)})
    text = render_haproxy_cfg(settings, Names.of(settings))
    checked = [line for line in text.splitlines() if line.startswith("    default-server check ")]
    assert len(checked) == 1 + 2 * settings.replicas
    assert all(" init-state down" in line for line in checked), checked
    tracking = [line for line in text.splitlines() if " track " in line]
    assert tracking and all("init-state" not in line for line in tracking)


def test_haproxy_routes_to_the_server_the_named_master_handed_over_to() -> None:
    settings = load_settings({"redis:replicas": "5"})
    text = render_haproxy_cfg(settings, Names.of(settings))
    use_server = [line for line in text.splitlines() if line.startswith("    use-server")]
    for i in range(5):
        cases = [line for line in use_server if line.startswith(f"    use-server redis-{i} if")]
        assert len(cases) == 5
        for named in set(range(5)) - {i}:
            assert (
                f"    use-server redis-{i} if {{ srv_is_up(redis_master/redis-{i}) }} "
                f"{{ nbsrv(sentinels_agree_on_{named}) ge 3 }} "
                f"{{ srv_is_up(replica_{named}_online/redis-{i}) }}"
            ) in cases
        assert f"backend replica_{i}_online" in text
    # The old master may pass the agreed rule on its last check: hand-over rules win.
    hand_over_rules = ["_online/" in line for line in use_server]
    assert hand_over_rules == [True] * 20 + [False] * 5
    # The follower checks only route; they never shut sessions down themselves.
    followers = text.split("backend replica_0_online", 1)[1].split("backend sentinels", 1)[0]
    assert "shutdown-sessions" not in followers


HOST = "redis-{}.redis-headless.redis.svc.cluster.local"


def replica_lines(*entries: tuple[int, str]) -> str:
    return "".join(
        f"slave{n}:ip={HOST.format(ordinal)},port=6379,state={state},offset=9,lag=0\r\n"
        for n, (ordinal, state) in enumerate(entries)
    )


@pytest.mark.parametrize(
    ("info", "follows"),
    [
        (
            "role:master\r\nconnected_slaves:2\r\n" + replica_lines((2, "online"), (1, "online")),
            True,
        ),
        ("role:master\r\nconnected_slaves:1\r\n" + replica_lines((1, "online")), True),
        ("role:master\r\nconnected_slaves:1\r\n" + replica_lines((1, "wait_bgsave")), False),
        ("role:master\r\nconnected_slaves:1\r\n" + replica_lines((10, "online")), False),
        ("role:master\r\nconnected_slaves:1\r\n" + replica_lines((2, "online")), False),
        ("role:slave\r\nmaster_host:" + HOST.format(1) + "\r\n", False),
        ("role:master\r\nconnected_slaves:0\r\n", False),
    ],
)
def test_proxy_follower_check_needs_that_replica_online(info: str, follows: bool) -> None:
    kind, pattern = follower_expectation(HOST.format(1)).split(" ", 1)
    assert kind == "rstring"
    assert bool(re.search(pattern, "# Replication\r\n" + info)) is follows


def info_replication(role: str, good: int, lags: list[int]) -> str:
    lines = [f"role:{role}", f"connected_slaves:{len(lags)}", f"min_slaves_good_slaves:{good}"]
    lines += [
        f"slave{i}:ip=redis-{i + 1}.redis-headless,port=6379,state=online,offset=9,lag={lag}"
        for i, lag in enumerate(lags)
    ]
    lines += ["master_failover_state:no-failover", "master_replid:abc", "master_repl_offset:9"]
    return "# Replication\r\n" + "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("info", "routable"),
    [
        (info_replication("master", 2, [0, 1]), True),
        (info_replication("master", 2, [4, 1]), True),
        # Both replicas silent for 3 s: the master is cut off, though it still takes writes.
        (info_replication("master", 2, [3, 3]), False),
        (info_replication("master", 0, [7, 9]), False),
        (info_replication("master", 0, []), False),
        (info_replication("slave", 0, []), False),
    ],
)
def test_proxy_master_check_needs_a_replica_in_sync(info: str, routable: bool) -> None:
    expectation = master_expectation(load_settings(stack_config("dev")))
    kind, pattern = expectation.split(" ", 1)
    assert kind == "rstring"
    assert bool(re.search(pattern, info)) is routable


def test_redis_conf_bounds_write_loss_and_failover_delay() -> None:
    settings = load_settings(stack_config("dev"))
    conf = render_redis_conf(settings)
    assert "min-replicas-to-write 1" in conf
    assert "min-replicas-max-lag 5" in conf
    assert "repl-diskless-sync-delay 0" in conf
    assert f"maxmemory {384 * 1024 * 1024}" in conf
    assert "requirepass" not in conf and "masterauth" not in conf


def test_application_user_cannot_run_dangerous_commands() -> None:
    for command in ("flushall", "flushdb", "debug", "config", "keys", "acl"):
        assert command in APPLICATION_DENIED_COMMANDS
        assert f" -{command}" in APPLICATION_RULES
    assert APPLICATION_RULES.startswith("~* &* +@all -@admin -@dangerous")
    assert APPLICATION_RULES.endswith("+acl|whoami")


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("redis:7.4.2", "7.4.2"),
        ("localhost/sophia/redis:7.0", "7.0"),
        ("localhost:5000/redis", "latest"),
        ("redis@sha256:abc", "latest"),
    ],
)
def test_image_version_label(image: str, version: str) -> None:
    assert image_version(image) == version
