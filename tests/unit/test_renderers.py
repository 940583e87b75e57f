"""Pure renderers: redis.conf, sentinel.conf, haproxy.cfg and the pod scripts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from components.conf import (
    DANGEROUS_COMMANDS,
    SCRIPT_NAMES,
    client_acl_rules,
    render_redis_conf,
    script,
)
from components.naming import Names, image_version
from components.proxy import master_expectation, render_haproxy_cfg
from components.settings import load_settings
from tests.harness import FAKE_PASSWORD, REPO, stack_config

SCRIPTS = REPO / "components" / "scripts"
ALLOWED_COMMANDS = {
    # POSIX sh built-ins and keywords the scripts use
    "set",
    "exec",
    "exit",
    "return",
    "printf",
    "echo",
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
}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run 'make tools'")
    return path


def test_scripts_pass_shellcheck_as_posix_sh() -> None:
    shellcheck = require("shellcheck")
    names = [name for name in SCRIPT_NAMES if name != "lib.sh"]
    result = subprocess.run(
        [shellcheck, "-s", "sh", "-x", *names], cwd=SCRIPTS, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_use_only_redis_tools_and_coreutils() -> None:
    for name in SCRIPT_NAMES:
        text = script(name)
        without_comments = "\n".join(
            "" if line.lstrip().startswith("#") else line for line in text.splitlines()
        )
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


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_haproxy_config_is_valid(stack: str, tmp_path: Path) -> None:
    haproxy = require("haproxy")
    settings = load_settings(stack_config(stack))
    config = tmp_path / "haproxy.cfg"
    config.write_text(render_haproxy_cfg(settings, Names.of(settings)))
    result = subprocess.run(
        [haproxy, "-c", "-f", str(config)],
        env={**os.environ, "REDIS_PASSWORD": FAKE_PASSWORD},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_routes_only_to_an_agreed_master() -> None:
    settings = load_settings({"redis:replicas": "5"})
    text = render_haproxy_cfg(settings, Names.of(settings))
    assert FAKE_PASSWORD not in text and "${REDIS_PASSWORD}" in text
    assert text.count("tcp-check expect rstring (?s)role:master") == 1
    assert "min_slaves_good_slaves:(1|2|3|4)[^0-9]" in text
    for i in range(5):
        assert (
            f"use-server redis-{i} if {{ srv_is_up(redis_master/redis-{i}) }} "
            f"{{ nbsrv(sentinels_agree_on_{i}) ge 3 }}"
        ) in text
        assert f"backend sentinels_agree_on_{i}" in text
    assert "tcp-request connection reject unless" in text
    assert "on-marked-down shutdown-sessions" in text


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
    rules = client_acl_rules()
    for command in ("flushall", "flushdb", "debug", "config"):
        assert command in DANGEROUS_COMMANDS
        assert f" -{command}" in rules
    assert rules.startswith("~* &* +@all")


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
