"""The local cluster's Prometheus: deployed with the scrape jobs and alert rules of the
releases it watches, and queried over its HTTP API.

The scrape jobs and rules come from the same functions the program builds its PodMonitor and
PrometheusRule from (:func:`components.metrics.scrape_jobs`, :func:`components.alerts.rule_groups`):
this module plays the Prometheus Operator's part of turning them into a configuration file.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import yaml
from pulumi import automation as auto

from automation.workspace import REPO
from components.alerts import rule_groups
from components.metrics import scrape_jobs
from components.naming import Names
from components.settings import RedisSettings, load_settings
from components.workload import sentinel_scrape_target

from .deployment import log_line
from .kube import Kube

NAMESPACE = "monitoring"
MANIFEST = REPO / "scripts" / "cluster" / "prometheus.yaml"
IMAGE = "localhost/sophia/prometheus:3.5"
SCRAPE_INTERVAL_SECONDS = 5
"""Short on the local cluster, so that a failover shows in a few scrapes."""
RULES_FILE = "/etc/prometheus/rules.yaml"
_METRIC_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})")


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBELET_VOLUME_JOB: dict[str, Any] = {
    "job_name": "kubelet",
    "scheme": "https",
    "authorization": {"credentials_file": f"{SERVICE_ACCOUNT_DIR}/token"},
    "tls_config": {"ca_file": f"{SERVICE_ACCOUNT_DIR}/ca.crt"},
    "kubernetes_sd_configs": [{"role": "node"}],
    # The series carry the volume's own namespace and claim: keep them, as the Prometheus
    # Operator's kubelet ServiceMonitor does.
    "honor_labels": True,
    "metric_relabel_configs": [
        {"source_labels": ["__name__"], "regex": "kubelet_volume_stats_.+", "action": "keep"}
    ],
}
"""The kubelets' volume usage (what the volume-filling alert reads), as a cluster's own
monitoring scrapes it; only the ``kubelet_volume_stats_*`` series are kept."""


def stack_settings(stack: auto.Stack, overrides: dict[str, str] | None = None) -> RedisSettings:
    """The settings of a stack, from its config as the engine hands it to the program, with
    ``overrides`` (full keys) on top."""
    config = {key: value.value for key, value in stack.get_all_config().items()}
    return load_settings({**config, **(overrides or {})})


def prometheus_files(releases: Sequence[RedisSettings]) -> dict[str, str]:
    """``prometheus.yml`` and ``rules.yaml`` for the releases."""
    jobs: list[dict[str, Any]] = []
    groups: list[Any] = []
    for settings in releases:
        jobs += scrape_jobs(settings.namespace, settings.name, sentinel_scrape_target(settings))
        for group in rule_groups(settings, Names.of(settings))["groups"]:
            # Evaluated as often as scraped here, so a 20 s fault shows in several evaluations.
            groups.append({**group, "interval": f"{SCRAPE_INTERVAL_SECONDS}s"})
    jobs.append(KUBELET_VOLUME_JOB)
    interval = f"{SCRAPE_INTERVAL_SECONDS}s"
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": f"{SCRAPE_INTERVAL_SECONDS - 1}s",
            "evaluation_interval": interval,
        },
        "rule_files": [RULES_FILE],
        "scrape_configs": jobs,
    }
    return {
        "prometheus.yml": yaml.safe_dump(config, sort_keys=False),
        "rules.yaml": yaml.safe_dump({"groups": groups}, sort_keys=False),
    }


def deploy_prometheus(
    releases: Sequence[RedisSettings],
    timeout: float = 180,
    running: Sequence[RedisSettings] | None = None,
) -> Prometheus:
    """Deploys (or re-deploys, when the files changed) Prometheus for ``releases`` and waits
    until it has scraped every target of those ``running`` (default: all) once, and the
    kubelets'."""
    kube = Kube(NAMESPACE)
    files = prometheus_files(releases)
    checksum = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    manifest = MANIFEST.read_text()
    manifest = manifest.replace("${PROMETHEUS_IMAGE}", IMAGE).replace(
        "${CONFIG_CHECKSUM}", checksum
    )
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "prometheus-config", "namespace": NAMESPACE},
        "data": files,
    }
    kube.run("apply", "-f", "-", stdin=manifest.split("\n---\n", 1)[0])
    kube.run("apply", "-f", "-", stdin=json.dumps(config_map))
    kube.run("apply", "-f", "-", stdin=manifest)
    kube.run(
        "rollout",
        "status",
        "deployment/prometheus",
        f"--timeout={int(timeout)}s",
        timeout=timeout + 10,
    )
    log_line(f"prometheus deployed for {[s.namespace for s in releases]} (config {checksum[:12]})")
    prometheus = Prometheus(kube)
    prometheus.wait_targets_up(
        {KUBELET_VOLUME_JOB["job_name"]}
        | {job for settings in (running or releases) for job in release_jobs(settings)}
    )
    return prometheus


def release_jobs(settings: RedisSettings) -> set[str]:
    """The scrape job names of one release."""
    jobs = scrape_jobs(settings.namespace, settings.name, sentinel_scrape_target(settings))
    return {job["job_name"] for job in jobs}


class Prometheus:
    """The HTTP API of the local Prometheus, reached at its pod's address."""

    def __init__(self, kube: Kube) -> None:
        pods = kube.json("get", "pods", "-l", "app.kubernetes.io/name=prometheus")["items"]
        ready = [
            p
            for p in pods
            if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")
        ]
        if not ready:
            raise AssertionError("no Prometheus pod with an address in namespace monitoring")
        self.base = f"http://{ready[0]['status']['podIP']}:9090"

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's series."""
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets."""
        active: list[dict[str, Any]] = self.get("/api/v1/targets", state="active")["activeTargets"]
        return active

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts."""
        found: list[dict[str, Any]] = self.get("/api/v1/alerts")["alerts"]
        return found

    def rule_names(self) -> set[str]:
        """Names of the loaded alerting rules."""
        groups = self.get("/api/v1/rules", type="alert")["groups"]
        return {rule["name"] for group in groups for rule in group["rules"]}

    def wait_targets_up(self, jobs: set[str], timeout: float = 90) -> list[dict[str, Any]]:
        """Waits until every target of ``jobs`` was scraped successfully; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            targets = [t for t in self.targets() if t["labels"].get("job") in jobs]
            seen = {t["labels"]["job"] for t in targets}
            if seen == jobs and all(t["health"] == "up" for t in targets):
                return targets
            if time.monotonic() > deadline:
                states = [
                    (t["labels"].get("job"), t["scrapeUrl"], t["health"], t["lastError"])
                    for t in targets
                ]
                raise AssertionError(
                    f"targets of {sorted(jobs)} not all up in {timeout:.0f}s: {states}"
                )
            time.sleep(1)


def metric_selectors(expr: str) -> list[str]:
    """The ``metric{matchers}`` selectors of a PromQL expression."""
    return [name + matchers for name, matchers in _METRIC_SELECTOR.findall(expr)]


@contextmanager
def watched_alerts(prometheus: Prometheus, namespace: str) -> Iterator[dict[str, set[str]]]:
    """Polls the alerts of ``namespace`` every second while the block runs; yields, and fills,
    each alert name's states seen (``pending``, ``firing``)."""
    seen: dict[str, set[str]] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                for alert in prometheus.alerts():
                    if alert["labels"].get("namespace") == namespace:
                        seen.setdefault(alert["labels"]["alertname"], set()).add(alert["state"])
            except (OSError, AssertionError) as error:
                log_line(f"alert poll failed: {error}")
            done.wait(1)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(timeout=15)
        log_line(f"alerts seen in {namespace}: {seen}")
