"""The real engine on the real cluster: up to Ready, Redis answers with AUTH, no drift."""

from __future__ import annotations

from redistest.deployment import Deployed
from redistest.health import wait_healthy
from redistest.kube import Kube

PING = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
client = redis.Redis.from_url(cfg["url"], socket_timeout=5)
client.set("smoke", "ok")
print(json.dumps({"ping": client.ping(), "get": client.get("smoke").decode(),
                  "role": client.execute_command("ROLE")[0].decode()}))
"""


def test_up_reaches_ready_with_one_agreed_master(deployed: Deployed) -> None:
    statefulset = deployed.kube.json("get", "statefulset", "redis")
    assert statefulset["status"]["readyReplicas"] == 3
    wait_healthy(deployed.kube, 3, timeout=120)


def test_redis_url_answers_with_the_generated_password(deployed: Deployed, client: Kube) -> None:
    result = client.client_python(PING, {"url": deployed.url})
    assert result == {"ping": True, "get": "ok", "role": "master"}


def test_preview_after_up_shows_no_changes(deployed: Deployed) -> None:
    assert deployed.preview_changes() == {}
