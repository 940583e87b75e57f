"""The contract app stacks rely on: Sentinel quorum, replicas, Sentinel-aware clients."""

from __future__ import annotations

from redistest.deployment import Deployed
from redistest.health import wait_healthy
from redistest.kube import Kube

SENTINEL_CLIENT = r"""
import json, sys
from redis.sentinel import Sentinel
cfg = json.loads(sys.stdin.read())
hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1])) for h in cfg["sentinels"]]
sentinel = Sentinel(hosts, socket_timeout=2, sentinel_kwargs={"password": cfg["password"]},
                    password=cfg["password"])
master = sentinel.master_for(cfg["name"], socket_timeout=2)
master.set("via-sentinel", "yes")
replica = sentinel.slave_for(cfg["name"], socket_timeout=2)
print(json.dumps({"master": master.get("via-sentinel").decode(),
                  "discovered": sentinel.discover_master(cfg["name"])[0],
                  "replicas": len(sentinel.discover_slaves(cfg["name"])),
                  "replica_role": replica.execute_command("ROLE")[0].decode()}))
"""


def test_every_sentinel_has_quorum(deployed: Deployed) -> None:
    wait_healthy(deployed.kube)
    for pod in deployed.kube.redis_pods():
        assert deployed.kube.sentinel(pod, "SENTINEL", "CKQUORUM", "mymaster").startswith("OK")


def test_master_has_every_replica(deployed: Deployed) -> None:
    master = wait_healthy(deployed.kube)
    info = deployed.kube.redis(master, "INFO", "replication")
    assert "connected_slaves:2" in info
    assert info.count("state=online") == 2


def test_sentinel_aware_client_uses_the_published_endpoints(
    deployed: Deployed, client: Kube
) -> None:
    master = wait_healthy(deployed.kube)
    payload = {
        "sentinels": deployed.outputs["sentinel_hosts"],
        "name": deployed.outputs["sentinel_master_name"],
        "password": deployed.outputs["redis_password"],
    }
    result = client.client_python(SENTINEL_CLIENT, payload)
    assert result["master"] == "yes"
    assert result["discovered"].startswith(f"{master}.")
    assert result["replicas"] == 2
    assert result["replica_role"] == "slave"
