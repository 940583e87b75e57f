"""TLS on every link, issued by the local cluster's cert-manager, in a release of its own.

The release runs TLS-only with a CA that cert-manager creates (``selfSignedCa``): the URL is
``rediss://`` on 6380 and the plain ports refuse; replication and the Sentinels' links run over
TLS; each credential holds its boundary over TLS; a SIGKILL and a graceful failover lose no
confirmed write; and a certificate renewal under a writer ends with every server and Sentinel
serving the new certificate, no write lost and no pod replaced. The exporters, speaking TLS
to their server and Sentinel, are scraped by the local Prometheus after the renewal too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from components.tls import REDIS_TLS_PORT, SENTINEL_TLS_PORT
from redistest import scenarios
from redistest.boundaries import cluster_script
from redistest.deployment import Deployed, start_client_pod
from redistest.health import masters_by_role, pods_ready, wait_healthy
from redistest.monitoring import Prometheus, release_jobs, stack_settings
from redistest.rotation import server_pod_uids
from redistest.traffic import (
    finish_writer,
    missing_confirmed,
    start_writer,
    stop_writer,
    wait_for_writes,
)
from redistest.wait import wait_until
from tests.integration.deployment import (
    TLS,
    TLS_NAMESPACE,
    TLS_STACK,
    boundary_payload,
    own_stack,
)
from tests.integration.test_40_failover import check

STACK = TLS_STACK
NAMESPACE = TLS_NAMESPACE
RENEWING = {**TLS, "duration": "1h", "renewBefore": "58m"}
"""cert-manager's shortest duration, renewed two minutes after each issue."""
RENEWAL_TIMEOUT_SECONDS = 300

CLIENT = r"""
import json, socket, sys
import redis
cfg = json.loads(sys.stdin.read())
with open("/tmp/tls-ca.crt", "w") as handle:
    handle.write(cfg["ca"])
out = {}
verified = redis.Redis.from_url(cfg["url"], ssl_ca_certs="/tmp/tls-ca.crt", socket_timeout=3)
out["role"] = verified.execute_command("ROLE")[0].decode()
try:
    redis.Redis.from_url(cfg["url"], socket_timeout=3).ping()
    out["unverified"] = "connected"
except redis.exceptions.ConnectionError as error:
    out["unverified"] = str(error)[:120]
for host, port in cfg["plain"]:
    probe = socket.socket()
    probe.settimeout(3)
    try:
        probe.connect((host, port))
        out[f"{host}:{port}"] = "open"
    except OSError as error:
        out[f"{host}:{port}"] = type(error).__name__
    finally:
        probe.close()
print(json.dumps(out))
"""

SENTINEL_CLIENT = r"""
import json, sys
from redis.sentinel import Sentinel
cfg = json.loads(sys.stdin.read())
with open("/tmp/tls-ca.crt", "w") as handle:
    handle.write(cfg["ca"])
tls = {"ssl": True, "ssl_ca_certs": "/tmp/tls-ca.crt"}
hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1])) for h in cfg["sentinels"]]
sentinel = Sentinel(hosts, socket_timeout=3, sentinel_kwargs={"password": cfg["password"], **tls},
                    password=cfg["password"], **tls)
master = sentinel.master_for(cfg["name"], socket_timeout=3)
master.set("via-sentinel-tls", "yes")
print(json.dumps({"value": master.get("via-sentinel-tls").decode(),
                  "discovered": list(sentinel.discover_master(cfg["name"]))}))
"""

FINGERPRINTS = r"""
import hashlib, json, socket, ssl, sys
cfg = json.loads(sys.stdin.read())
with open("/tmp/tls-ca.crt", "w") as handle:
    handle.write(cfg["ca"])
context = ssl.create_default_context(cafile="/tmp/tls-ca.crt")
context.check_hostname = False
out = {}
for host, port in cfg["endpoints"]:
    try:
        with socket.create_connection((host, port), timeout=3) as raw:
            with context.wrap_socket(raw) as tls:
                out[f"{host}:{port}"] = hashlib.sha256(tls.getpeercert(True)).hexdigest()
    except OSError as error:
        out[f"{host}:{port}"] = "error: " + type(error).__name__
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def release(cluster: None) -> Iterator[Deployed]:
    with own_stack(STACK, NAMESPACE, tls=json.dumps(TLS)) as deployed:
        deployed.up()
        start_client_pod(deployed.kube)
        yield deployed


def pod_endpoints(deployed: Deployed, ports: tuple[int, ...]) -> list[tuple[str, int]]:
    return [(f"{pod}.redis-headless", port) for pod in deployed.kube.redis_pods() for port in ports]


def test_clients_get_a_verified_tls_endpoint_and_no_plain_port(release: Deployed) -> None:
    outputs = release.outputs
    assert release.url.startswith("rediss://"), "redis_url is not rediss://"
    assert release.url.endswith(f":{REDIS_TLS_PORT}/0"), "redis_url is not on the TLS port"
    assert outputs["redis_port"] == REDIS_TLS_PORT
    assert all(h.endswith(f":{SENTINEL_TLS_PORT}") for h in outputs["sentinel_hosts"])
    assert release.ca.startswith("-----BEGIN CERTIFICATE-----"), "no CA bundle in the outputs"
    plain = pod_endpoints(release, (6379, 26379))
    result = release.kube.client_python(
        CLIENT, {"url": release.url, "ca": release.ca, "plain": plain}
    )
    assert result.pop("role") == "master", result
    assert "CERTIFICATE_VERIFY_FAILED" in result.pop("unverified"), result
    assert set(result.values()) == {"ConnectionRefusedError"}, result


def test_replication_and_sentinels_run_over_tls(release: Deployed) -> None:
    kube = release.kube
    master = wait_healthy(kube)
    info = kube.redis(master, "INFO", "replication")
    assert info.count("state=online") == 2, info
    assert info.count(f"port={REDIS_TLS_PORT},") == 2, info
    for pod in kube.redis_pods():
        assert kube.sentinel(pod, "SENTINEL", "CKQUORUM", "mymaster").startswith("OK"), pod
        sentinels = kube.sentinel(pod, "SENTINEL", "SENTINELS", "mymaster")
        assert sentinels.count(str(SENTINEL_TLS_PORT)) == 2, sentinels
    payload = {
        "sentinels": release.outputs["sentinel_hosts"],
        "name": release.outputs["sentinel_master_name"],
        "password": release.outputs["redis_password"],
        "ca": release.ca,
    }
    result = kube.client_python(SENTINEL_CLIENT, payload)
    assert result["value"] == "yes", result
    assert result["discovered"][0].startswith(f"{master}."), result
    assert result["discovered"][1] == REDIS_TLS_PORT, result


def test_every_credential_holds_its_boundary_over_tls(release: Deployed) -> None:
    master = wait_healthy(release.kube)
    payload = boundary_payload(release, master, REDIS_TLS_PORT, SENTINEL_TLS_PORT)
    assert release.kube.client_python(cluster_script(), payload) == []


@pytest.mark.parametrize("scenario", ["kill_master_redis", "delete_master_pod"])
def test_failover_over_tls_loses_no_confirmed_write(release: Deployed, scenario: str) -> None:
    kube = release.kube
    inject = getattr(scenarios, scenario)(kube)
    measurement = scenarios.run_scenario(scenario, kube, release.url, inject, ca=release.ca)
    release.log(f"tls {scenario}: {measurement.as_dict()}")
    check(measurement)


def test_renewed_certificate_is_served_without_a_lost_write(release: Deployed) -> None:
    """The shortest certificate cert-manager issues, renewed under a writer: every server
    (reloaded in place) and Sentinel (restarted in turn) serves a new certificate, no pod is
    replaced and no confirmed write is lost."""
    kube = release.kube
    wait_healthy(kube)
    endpoints = pod_endpoints(release, (REDIS_TLS_PORT, SENTINEL_TLS_PORT))
    request = {"ca": release.ca, "endpoints": endpoints}
    before = kube.client_python(FINGERPRINTS, request)
    assert not any(v.startswith("error") for v in before.values()), before
    pods = server_pod_uids(kube)
    prefix = "tls-renewal"
    started = time.time()
    writer = start_writer(kube, release.url, prefix, RENEWAL_TIMEOUT_SECONDS + 60, release.ca)
    wait_for_writes(writer, since=started)
    release.up(tls=json.dumps(RENEWING))
    served: dict[str, str] = {}

    def all_renewed() -> bool:
        served.update(kube.client_python(FINGERPRINTS, request))
        return all(served[k] != before[k] and not served[k].startswith("error") for k in before)

    try:
        wait_until(all_renewed, RENEWAL_TIMEOUT_SECONDS, "every endpoint to renew", interval=5)
    finally:
        stop_writer(writer)
    run = finish_writer(writer, prefix, timeout=120)
    missing = missing_confirmed(kube, release.url, run, release.ca)
    release.log(f"tls renewal: {len(run.confirmed)} confirmed, errors {run.errors}")
    assert len(run.confirmed) > 100, run.errors
    assert missing == [], missing[:10]
    assert server_pod_uids(kube) == pods, "a server pod was replaced"
    assert len(masters_by_role(kube, pods_ready(kube))) == 1


def test_exporters_are_scraped_over_tls_after_the_renewal(
    release: Deployed, prometheus: Prometheus
) -> None:
    """Every exporter of the TLS release logs in to its server and Sentinel over TLS (the
    plain ports are closed), with the renewed certificate in place."""
    jobs = release_jobs(stack_settings(release.stack))
    targets = prometheus.wait_targets_up(jobs)
    per_process = {job: sum(t["labels"]["job"] == job for t in targets) for job in jobs}
    assert sorted(per_process.values()) == [2, 3, 3], per_process
    selector = f'namespace="{NAMESPACE}"'
    reached = prometheus.query(f"redis_up{{{selector}}} == 1")
    assert len(reached) == 6, reached  # three servers, three Sentinels
    masters = prometheus.query(f'redis_instance_info{{{selector}, role="master"}}')
    assert len(masters) == 1, masters
    quorum = prometheus.query(f"redis_sentinel_master_ckquorum_status{{{selector}}} == 1")
    assert len(quorum) == 3, quorum
