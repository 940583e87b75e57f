"""Inside the pods (pytest-testinfra over kubectl): users, secrets, persistence, AUTH, policy."""

from __future__ import annotations

import os
from typing import Any

import pytest
import testinfra

from components.credentials import REPLICATION
from components.engines import ENGINES
from components.naming import REDIS_PORT, SENTINEL_PORT
from redistest.boundaries import cluster_script
from redistest.deployment import Deployed, client_pod_manifest
from redistest.health import wait_healthy
from redistest.kube import CLIENT_POD, Kube, kube_env
from tests.integration.deployment import boundary_payload

CONTAINERS = ("redis", "sentinel")
SECRET = "redis-auth"
NOAUTH = "NOAUTH Authentication required."
"""What Redis and Sentinel answer a client that has not authenticated (redis-cli, no TTY)."""
SERVER_PROCESSES = tuple(
    binary for engine in ENGINES.values() for binary in (engine.server, engine.sentinel)
)
"""The process names of every engine's server and Sentinel."""
TIMEOUT_EXIT = 124
"""The exit status of coreutils ``timeout`` when it had to end the command."""


@pytest.fixture(scope="module")
def hosts(deployed: Deployed) -> dict[tuple[str, str], Any]:
    os.environ.update({k: kube_env()[k] for k in ("KUBECONFIG", "PATH")})
    namespace = deployed.kube.namespace
    return {
        (pod, container): testinfra.get_host(
            f"kubectl://{pod}?container={container}&namespace={namespace}"
        )
        for pod in deployed.kube.redis_pods()
        for container in CONTAINERS
    }


def test_every_process_runs_as_non_root(hosts: dict[tuple[str, str], Any]) -> None:
    for (pod, container), host in hosts.items():
        uids = host.check_output("cat /proc/[0-9]*/status | sed -n 's/^Uid:\\s*//p' | cut -f1")
        assert uids and "0" not in uids.split(), (pod, container, uids)


def test_no_password_is_on_a_command_line(
    deployed: Deployed, hosts: dict[tuple[str, str], Any]
) -> None:
    passwords = deployed.kube.secret_values(SECRET).values()
    assert str(deployed.outputs["redis_password"]) in passwords
    for (pod, container), host in hosts.items():
        command_lines = host.check_output("cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
        assert any(server in command_lines for server in SERVER_PROCESSES), (pod, container)
        assert not [p for p in passwords if p in command_lines], (pod, container)


def test_auth_is_required_and_replication_authenticates(deployed: Deployed) -> None:
    kube = deployed.kube
    replication = kube.secret_values(SECRET)[REPLICATION.secret_key]
    for pod in kube.redis_pods():
        assert kube.redis(pod, "CONFIG", "GET", "masterauth").split()[-1] == replication, pod
        assert kube.redis(pod, "CONFIG", "GET", "masteruser").split()[-1] == "replication"
        sentinel = kube.sentinel(pod, "SENTINEL", "CONFIG", "GET", "announce-hostnames")
        assert "yes" in sentinel


def unauthenticated_ping(kube: Kube, host: str, port: str) -> str:
    """``PING`` without a password from the labelled client pod; a failed exec, DNS lookup or
    connection fails the test here (redis-cli exits non-zero), so only a reply comes back."""
    return kube.exec(
        CLIENT_POD, "client", "timeout", "5", "redis-cli", "-h", host, "-p", port, "PING"
    ).strip()


def test_connections_without_the_password_are_refused(client: Kube) -> None:
    for host, port in (("redis-service", "6379"), ("redis-headless", "26379")):
        reply = unauthenticated_ping(client, host, port)
        assert reply == NOAUTH, (host, port, reply)


def test_data_lives_on_the_claim_with_aof(
    deployed: Deployed, hosts: dict[tuple[str, str], Any]
) -> None:
    kube = deployed.kube
    claims = kube.json("get", "pvc")["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == [f"data-redis-{i}" for i in range(3)]
    assert all(c["status"]["phase"] == "Bound" for c in claims)
    for pod in kube.redis_pods():
        assert kube.redis(pod, "CONFIG", "GET", "dir").split()[-1] == "/data/redis"
        assert kube.redis(pod, "CONFIG", "GET", "appendonly").split()[-1] == "yes"
        assert kube.redis(pod, "CONFIG", "GET", "appendfsync").split()[-1] == "everysec"
        host = hosts[(pod, "redis")]
        assert host.file("/data/redis/appendonlydir").is_directory
        mounts = host.file("/proc/mounts").content_string
        assert any(line.split()[1] == "/data" for line in mounts.splitlines()), pod


def test_dangerous_commands_are_denied_to_applications(deployed: Deployed, client: Kube) -> None:
    script = (
        "import json,sys,redis\n"
        "c=redis.Redis.from_url(json.loads(sys.stdin.read())['url'])\n"
        "out={}\n"
        "cmds=(['FLUSHALL'],['FLUSHDB'],['CONFIG','GET','maxmemory'],['DEBUG','SLEEP','0'])\n"
        "for cmd in cmds:\n"
        "    try: c.execute_command(*cmd); out[cmd[0]]='allowed'\n"
        "    except redis.exceptions.ResponseError as e: out[cmd[0]]=type(e).__name__+': '+str(e)\n"
        "print(json.dumps(out))\n"
    )
    result = client.client_python(script, {"url": deployed.url})
    replies = result
    for command in ("FLUSHALL", "FLUSHDB", "CONFIG"):
        assert replies[command].startswith("NoPermissionError"), replies
    # DEBUG is off for everyone (enable-debug-command no) before ACLs are even consulted.
    assert "not allowed" in replies["DEBUG"] or replies["DEBUG"].startswith("NoPermission"), replies


def test_every_credential_holds_its_boundary(deployed: Deployed, client: Kube) -> None:
    """Each role on the master and on a Sentinel, from a labelled client pod: what it needs
    works, what it must not do is refused, and no password logs in as another role's user."""
    master = wait_healthy(deployed.kube)
    payload = boundary_payload(deployed, master, REDIS_PORT, SENTINEL_PORT)
    assert client.client_python(cluster_script(), payload) == []


def resolve(kube: Kube, pod: str, host: str) -> str:
    """``host``'s first address as resolved inside ``pod``; a failed exec or lookup fails the
    test (getent exits 2 for an unknown name)."""
    entries = kube.run("exec", pod, "--", "getent", "hosts", host).stdout.split()
    assert entries, f"{host} did not resolve in {pod}"
    return entries[0]


def test_network_policy_refuses_unlabelled_pods(deployed: Deployed, client: Kube) -> None:
    kube = deployed.kube
    stranger = "redis-stranger"
    kube.run("apply", "-f", "-", stdin=client_pod_manifest(stranger, labelled=False))
    try:
        kube.run("wait", "--for=condition=Ready", f"pod/{stranger}", "--timeout=120s", timeout=150)
        for host, port in (
            ("redis-service", "6379"),
            ("redis-headless", "6379"),
            ("redis-headless", "26379"),
        ):
            # Resolved first and connected to by address, so that only the connection itself
            # can fail below: a DNS failure fails resolve(), not this check.
            address = resolve(kube, stranger, host)
            attempt = kube.run(
                "exec",
                stranger,
                "--",
                "timeout",
                "4",
                "redis-cli",
                "-h",
                address,
                "-p",
                port,
                "PING",
                check=False,
            )
            # kube-router (the local cluster) REJECTs: redis-cli exits 1, connection refused.
            # A CNI that drops instead leaves the connect hanging until `timeout` ends it.
            refused = attempt.returncode == 1 and (
                f"Could not connect to Redis at {address}:{port}: Connection refused"
                in attempt.stderr
            )
            dropped = attempt.returncode == TIMEOUT_EXIT and not attempt.stdout.strip()
            assert refused or dropped, (host, port, attempt)
            admitted = unauthenticated_ping(client, host, port)
            assert admitted == NOAUTH, (host, port, admitted)
    finally:
        kube.run("delete", "pod", stranger, "--wait=false", check=False)
