"""Password rotation: the rollout completes, old clients keep working, outputs and pods agree."""

from __future__ import annotations

import time

from .deployment import Deployed
from .health import wait_healthy
from .kube import Kube
from .traffic import finish_writer, longest_gap, missing_confirmed, start_writer, stop_writer

PING = r"""
import json, sys, redis
cfg = json.loads(sys.stdin.read())
print(json.dumps([redis.Redis.from_url(u, socket_timeout=5).ping() for u in cfg["urls"]]))
"""


def test_rotation_completes_without_stalling(deployed: Deployed, client: Kube) -> None:
    kube = deployed.kube
    wait_healthy(kube)
    old_url, old_password = deployed.url, str(deployed.outputs["redis_password"])
    prefix = f"rotate-{int(time.time())}"
    writer = start_writer(kube, old_url, prefix, 600)
    time.sleep(3)
    started = time.time()
    deployed.up(passwordGeneration="2")
    finished = time.time()
    time.sleep(5)
    stop_writer(writer)
    run = finish_writer(writer, prefix, timeout=60)
    master = wait_healthy(kube)

    new_url, new_password = deployed.url, str(deployed.outputs["redis_password"])
    assert new_password != old_password and new_url != old_url
    for pod in kube.redis_pods():
        assert kube.redis(pod, "CONFIG", "GET", "masterauth").split()[-1] == new_password
    result = client.client_python(PING, {"urls": [new_url, old_url]})
    assert result == [True, True], "the previous password stays valid until the next rotation"
    assert missing_confirmed(kube, new_url, run) == []
    gap = longest_gap([t for _, t in run.confirmed], started, finished)
    deployed.log(
        f"rotation: rollout {finished - started:.1f} s, longest write gap {gap:.2f} s, "
        f"master {master}"
    )
    assert gap < 30
    assert deployed.preview_changes() == {}
