"""With fast down-after settings, a release left alone fails over for nobody.

The window is the time since anything last touched the session's release: its last
``pulumi up``, the start of its newest server or Sentinel container, or the end of the last
fault a test injected into it (:func:`redistest.scenarios.last_fault_ended`). In the full suite the
other engines' and the TLS releases run in it (minutes, with the node busy); run alone, the test
waits until the window is a minute long.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from redistest.deployment import Deployed
from redistest.health import config_epoch, wait_healthy
from redistest.monitoring import Prometheus
from redistest.scenarios import last_fault_ended

MIN_IDLE_SECONDS = 60


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def last_touched(deployed: Deployed) -> float:
    """When the release last changed: its last update, its newest container start, or the
    end of the last fault injected into it."""
    last = deployed.stack.history(page_size=1)[0]
    ended = last.end_time or datetime.now(UTC)
    times = [(ended if ended.tzinfo else ended.replace(tzinfo=UTC)).timestamp()]
    times.append(last_fault_ended(deployed.kube.namespace))
    pods = deployed.kube.json("get", "pods", "-l", "app.kubernetes.io/component=server")
    for pod in pods["items"]:
        for status in pod["status"].get("containerStatuses", []):
            if status["name"] in ("redis", "sentinel"):
                times.append(timestamp(status["state"]["running"]["startedAt"]))
    return max(times)


def test_no_false_failover_when_idle(deployed: Deployed, prometheus: Prometheus) -> None:
    kube = deployed.kube
    master = wait_healthy(kube)
    epoch = config_epoch(kube, master)
    since = last_touched(deployed)
    idle = time.time() - since
    if idle < MIN_IDLE_SECONDS:
        time.sleep(MIN_IDLE_SECONDS - idle)  # the idle minute is what is tested
    window = int(time.time() - since)
    deployed.log(f"test_90: idle window {window} s")
    assert config_epoch(kube, master) == epoch
    since_text = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for pod in kube.redis_pods():
        log = kube.run("logs", pod, "-c", "sentinel", f"--since-time={since_text}").stdout
        assert "+sdown master" not in log and "+switch-master" not in log, (pod, log[-2000:])
    # Per pod: a failover would start a new series (the master's address is a label).
    epochs = prometheus.query(
        "changes((max by (pod) (redis_sentinel_master_config_epoch"
        f'{{namespace="{kube.namespace}"}}))[{window - 5}s:])'
    )
    assert len(epochs) == 3 and all(float(s["value"][1]) == 0 for s in epochs), epochs
