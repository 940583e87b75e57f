"""A known data set survives every pod being deleted at once."""

from __future__ import annotations

from redistest.deployment import Deployed
from redistest.health import sentinel_masters, wait_healthy
from redistest.kube import Kube

WRITE = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
c = redis.Redis.from_url(cfg["url"], socket_timeout=5)
pipe = c.pipeline(transaction=False)
for i in range(cfg["count"]):
    pipe.set(f"persist:{i}", i)
pipe.execute()
print(json.dumps({"acked": c.execute_command("WAIT", 2, 5000)}))
"""

READ = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
c = redis.Redis.from_url(cfg["url"], socket_timeout=5)
values = c.mget([f"persist:{i}" for i in range(cfg["count"])])
print(json.dumps({"missing": [i for i, v in enumerate(values) if v is None or int(v) != i]}))
"""

COUNT = 20000


def run(client: Kube, script: str, url: str) -> dict[str, object]:
    result: dict[str, object] = client.client_python(script, {"url": url, "count": COUNT})
    return result


def test_data_survives_deleting_every_pod_at_once(deployed: Deployed, client: Kube) -> None:
    kube = deployed.kube
    wait_healthy(kube)
    assert run(client, WRITE, deployed.url) == {"acked": 2}
    kube.run("delete", "pod", "-l", "app.kubernetes.io/component=server", "--wait=false")
    master = wait_healthy(kube, timeout=300)
    views = sentinel_masters(kube, kube.redis_pods())
    assert set(views.values()) == {views[master]}, views
    assert run(client, READ, deployed.url) == {"missing": []}
