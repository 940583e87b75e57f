"""With fast down-after settings, an idle minute causes no failover nobody asked for."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from redistest.deployment import Deployed
from redistest.health import config_epoch, wait_healthy

IDLE_SECONDS = 60


def test_no_false_failover_when_idle(deployed: Deployed) -> None:
    kube = deployed.kube
    master = wait_healthy(kube)
    epoch = config_epoch(kube, master)
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(IDLE_SECONDS)  # the idle minute is what is tested, not a wait for a state
    assert config_epoch(kube, master) == epoch
    for pod in kube.redis_pods():
        log = kube.run("logs", pod, "-c", "sentinel", f"--since-time={since}").stdout
        assert "+sdown master" not in log and "+switch-master" not in log, (pod, log[-2000:])
