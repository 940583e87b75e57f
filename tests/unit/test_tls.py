"""TLS: the ``redis:tls`` block, what it renders (configs, constants, proxy, specs) and the
cert-manager objects, without a cluster."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from components.certificates import (
    ca_certificate_spec,
    client_certificate_spec,
    issuer_ref,
    server_certificate_spec,
    server_dns_names,
)
from components.conf import render_redis_conf, render_sentinel_conf
from components.esc import build_environment_document
from components.guards import proxy_network_policy_spec, server_network_policy_spec
from components.naming import Names
from components.pod_constants import pod_constants
from components.proxy import deployment_spec, render_haproxy_cfg
from components.services import headless_service_spec, master_service_spec
from components.settings import ConfigError, RedisSettings, load_settings
from components.tls import duration_seconds
from components.workload import statefulset_spec

TLS_ONLY: dict[str, Any] = {"enabled": True, "selfSignedCa": True}
TRANSITION: dict[str, Any] = {**TLS_ONLY, "plaintext": True}
CA = "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n"


def with_tls(tls: dict[str, Any] | None) -> RedisSettings:
    return load_settings({} if tls is None else {"redis:tls": json.dumps(tls)})


def only_problem(tls: object) -> str:
    with pytest.raises(ConfigError) as error:
        load_settings({"redis:tls": json.dumps(tls) if not isinstance(tls, str) else tls})
    problems = error.value.problems
    assert len(problems) == 1, problems
    return problems[0]


def test_tls_is_off_by_default() -> None:
    assert not load_settings({}).tls.enabled


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"enabled": True}, "redis:tls.issuer: required when redis:tls.enabled is true"),
        (
            {"enabled": True, "issuer": {"name": "ca", "kind": "Certificate"}},
            "redis:tls.issuer.kind: 'Certificate' is not allowed; expected ClusterIssuer or Issuer",
        ),
        ({"clientCertificates": True}, "redis:tls.clientCertificates: requires redis:tls.enabled"),
        ({"plaintext": True}, "redis:tls.plaintext: requires redis:tls.enabled: true"),
        (
            {**TLS_ONLY, "issuer": {"name": "ca"}},
            "redis:tls.selfSignedCa: not allowed with redis:tls.issuer",
        ),
        ({**TLS_ONLY, "duration": "30m"}, "redis:tls.duration: '30m' is below"),
        ({**TLS_ONLY, "renewBefore": "1m"}, "redis:tls.renewBefore: '1m' is below"),
        (
            {**TLS_ONLY, "duration": "2h", "renewBefore": "2h"},
            "redis:tls.renewBefore: '2h' must be below duration '2h'",
        ),
        ({**TLS_ONLY, "duration": "90 days"}, "redis:tls.duration: '90 days' is not allowed"),
        ({**TLS_ONLY, "port": 6380}, "redis:tls.port: unknown key"),
        ("on", "redis:tls: 'on' is not allowed"),
    ],
)
def test_bad_tls_config_fails_with_one_message_naming_the_key(tls: object, message: str) -> None:
    assert only_problem(tls).startswith(message)


def test_go_durations() -> None:
    assert duration_seconds("1h30m") == 5400
    assert duration_seconds("2160h") == 2160 * 3600
    assert duration_seconds("") is None
    assert duration_seconds("1d") is None


def test_redis_conf_per_mode() -> None:
    plain = render_redis_conf(with_tls(None)).splitlines()
    assert "port 6379" in plain and not any(line.startswith("tls-") for line in plain)
    assert "replica-announce-port 6379" in plain
    only = render_redis_conf(with_tls(TLS_ONLY)).splitlines()
    for line in ("port 0", "tls-port 6380", "tls-replication yes", "tls-auth-clients no"):
        assert line in only, line
    assert "replica-announce-port 6380" in only
    assert "tls-cert-file /tls/tls.crt" in only and "tls-ca-cert-file /tls/ca.crt" in only
    transition = render_redis_conf(with_tls(TRANSITION)).splitlines()
    for line in ("port 6379", "tls-port 6380", "tls-replication no", "replica-announce-port 6379"):
        assert line in transition, line


def test_client_certificates_require_them_of_every_client() -> None:
    settings = with_tls({**TLS_ONLY, "clientCertificates": True})
    assert "tls-auth-clients yes" in render_redis_conf(settings).splitlines()
    assert "tls-auth-clients yes" in render_sentinel_conf(settings).splitlines()


def test_sentinel_conf_per_mode() -> None:
    assert "tls-port" not in render_sentinel_conf(with_tls(None))
    only = render_sentinel_conf(with_tls(TLS_ONLY)).splitlines()
    assert "tls-port 26380" in only and "tls-replication yes" in only
    assert "tls-replication no" in render_sentinel_conf(with_tls(TRANSITION)).splitlines()


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        (None, ("6379", "26379", "6379", "0", "26379", "0")),
        (TLS_ONLY, ("6380", "26380", "0", "6380", "0", "1")),
        (TRANSITION, ("6379", "26379", "6379", "6380", "26379", "0")),
    ],
    ids=["plain", "tls-only", "transition"],
)
def test_scripts_reach_peers_on_the_ports_of_the_mode(
    tls: dict[str, Any] | None, expected: tuple[str, ...]
) -> None:
    constants = pod_constants(with_tls(tls))
    keys = (
        "REDIS_PORT",
        "SENTINEL_PORT",
        "REDIS_LISTEN_PORT",
        "REDIS_LISTEN_TLS_PORT",
        "SENTINEL_LISTEN_PORT",
        "INTERNAL_TLS",
    )
    assert tuple(constants[key] for key in keys) == expected


def test_server_certificate_names_every_way_to_a_server() -> None:
    settings = with_tls(TLS_ONLY)
    names = Names.of(settings)
    dns = server_dns_names(settings, names)
    for name in (
        "redis-service",
        "redis-service.redis.svc",
        "redis-service.redis.svc.cluster.local",
        "redis-sentinel.redis",
        "redis-headless",
        "*.redis-headless.redis.svc.cluster.local",
        "*.redis-headless",
        "redis-0",
        "redis-2",
        "localhost",
    ):
        assert name in dns, name
    spec = server_certificate_spec(settings, names)
    assert spec["secretName"] == "redis-tls"
    assert "server auth" in spec["usages"] and "client auth" in spec["usages"]
    assert spec["privateKey"]["rotationPolicy"] == "Always"
    assert spec["duration"] == "2160h" and spec["renewBefore"] == "720h"


def test_issuer_is_the_configured_one_or_the_ca_the_component_creates() -> None:
    external = with_tls({"enabled": True, "issuer": {"name": "corp-ca", "kind": "ClusterIssuer"}})
    names = Names.of(external)
    assert issuer_ref(external, names) == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    own = with_tls(TLS_ONLY)
    assert issuer_ref(own, names)["name"] == "redis-ca"
    ca = ca_certificate_spec(names)
    assert ca["isCA"] is True and ca["secretName"] == "redis-ca"
    assert ca["issuerRef"]["name"] == "redis-selfsigned"
    client = client_certificate_spec(own, names)
    assert client["usages"] == ["client auth", "digital signature", "key encipherment"]


def test_pods_mount_the_certificate_and_expose_the_ports_of_the_mode() -> None:
    settings = with_tls(TLS_ONLY)
    names = Names.of(settings)
    spec = statefulset_spec(settings, names, {})["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tls"]["secret"] == {"secretName": "redis-tls", "defaultMode": 0o440}
    for container in spec["containers"]:
        assert {"name": "tls", "mountPath": "/tls", "readOnly": True} in container["volumeMounts"]
    assert [p["containerPort"] for p in spec["containers"][0]["ports"]] == [6380]
    assert [p["containerPort"] for p in spec["containers"][1]["ports"]] == [26380]
    transition = with_tls(TRANSITION)
    ports = statefulset_spec(transition, names, {})["template"]["spec"]["containers"][0]["ports"]
    assert [p["containerPort"] for p in ports] == [6379, 6380]
    plain = statefulset_spec(with_tls(None), names, {})["template"]["spec"]
    assert "tls" not in {v["name"] for v in plain["volumes"]}


def test_services_and_network_policies_follow_the_mode() -> None:
    settings = with_tls(TLS_ONLY)
    names = Names.of(settings)
    assert [p["port"] for p in master_service_spec(settings, names)["ports"]] == [6380]
    assert [p["port"] for p in headless_service_spec(settings, names)["ports"]] == [6380, 26380]
    rule = server_network_policy_spec(settings, names)["ingress"][0]
    assert [p["port"] for p in rule["ports"]] == [6380, 26380]
    proxy_rule = proxy_network_policy_spec(with_tls(TRANSITION), names)["ingress"][0]
    assert [p["port"] for p in proxy_rule["ports"]] == [6379, 6380]


def test_proxy_passes_tls_through_and_checks_over_tls() -> None:
    settings = with_tls(TLS_ONLY)
    names = Names.of(settings)
    config = render_haproxy_cfg(settings, names)
    assert "bind :6380" in config and "bind :6379" not in config
    assert " ssl " not in config, "the proxy must not terminate TLS"
    assert "check-ssl verify required ca-file /tls-ca/ca.crt" in config
    assert "tcp-check connect default" in config
    assert f"{names.pod_host(0)}:26380" in config
    proxy = deployment_spec(settings, names, {})["template"]["spec"]
    volume = next(v for v in proxy["volumes"] if v["name"] == "tls-ca")
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], "no key in proxy"


def test_proxy_in_transition_serves_both_and_checks_plain() -> None:
    settings = with_tls(TRANSITION)
    config = render_haproxy_cfg(settings, Names.of(settings))
    assert "bind :6379" in config and "bind :6380" in config
    assert "check-ssl" not in config
    tracking = config.split("\nbackend redis_master_tls\n", 1)[1].split("\nbackend ", 1)[0]
    assert "track redis_master/redis-0" in tracking
    assert "resolvers cluster init-addr none" in tracking, "rolled pods get new addresses"
    assert ":26379" in config and ":26380" not in config


def test_proxy_with_client_certificates_presents_one() -> None:
    settings = with_tls({**TLS_ONLY, "clientCertificates": True})
    assert "crt /tls-client/client.crt" in render_haproxy_cfg(settings, Names.of(settings))


def test_esc_publishes_the_ca_with_a_rediss_url() -> None:
    common: dict[str, Any] = {
        "redis_password": "pw",
        "redis_host": "redis-service.ns.svc.cluster.local",
        "redis_port": 6380,
        "sentinel_hosts": ["redis-0.redis-headless.ns.svc.cluster.local:26380"],
        "sentinel_master_name": "mymaster",
        "namespace": "ns",
    }
    url = "rediss://:pw@redis-service.ns.svc.cluster.local:6380/0"
    document = build_environment_document(redis_url=url, tls_ca_certificate=CA, **common)
    values = document["values"]
    assert values["redis"]["tls"]["caCertificate"] == CA
    assert values["environmentVariables"]["REDIS_TLS_CA_CERT"] == "${redis.tls.caCertificate}"
    assert values["pulumiConfig"]["redis:tlsCaCertificate"] == "${redis.tls.caCertificate}"
    with pytest.raises(ValueError, match="needs tls_ca_certificate"):
        build_environment_document(redis_url=url, **common)
    plain = build_environment_document(redis_url=url.replace("rediss", "redis"), **common)
    assert "tls" not in plain["values"]["redis"]


def not_found() -> Exception:
    import httpx2 as httpx
    from lightkube import ApiError

    status = {"kind": "Status", "apiVersion": "v1", "code": 404, "status": "Failure"}
    request = httpx.Request("GET", "http://cluster")
    return ApiError(response=httpx.Response(404, json=status, request=request))


class FakeCluster:
    """A lightkube Client whose ``get`` finds only the names in ``present``."""

    present: ClassVar[set[str]] = set()

    def __init__(self, **_: object) -> None:
        pass

    def get(self, _kind: object, name: str, **_: object) -> object:
        if name not in self.present:
            raise not_found()
        return object()


def test_tls_without_cert_manager_fails_before_anything_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lightkube

    from components.certificates import CERT_MANAGER_MISSING, check_cert_manager

    monkeypatch.setattr(lightkube, "Client", FakeCluster)
    FakeCluster.present = set()
    with pytest.raises(ConfigError) as error:
        check_cert_manager(with_tls(TLS_ONLY))
    assert error.value.problems == [CERT_MANAGER_MISSING]
    check_cert_manager(with_tls(None))  # TLS off: cert-manager is not needed


def test_a_missing_issuer_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import lightkube
    import pulumi

    from components.certificates import CERTIFICATE_CRD, check_cert_manager

    warnings: list[str] = []
    monkeypatch.setattr(lightkube, "Client", FakeCluster)
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_, **__: warnings.append(message))
    FakeCluster.present = {CERTIFICATE_CRD}
    check_cert_manager(with_tls({"enabled": True, "issuer": {"name": "corp-ca"}}))
    assert warnings == [
        "redis:tls.issuer: ClusterIssuer 'corp-ca' does not exist on the cluster; "
        "the certificate is issued once it does"
    ]
    FakeCluster.present = {CERTIFICATE_CRD, "corp-ca"}
    warnings.clear()
    check_cert_manager(with_tls({"enabled": True, "issuer": {"name": "corp-ca"}}))
    assert warnings == []
