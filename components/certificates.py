"""Certificates: the cert-manager objects that give every pod its TLS certificate.

The server certificate (Secret ``<name>-tls``) names every way a client or a peer reaches a
server: the canonical Service (the proxy passes TLS through), the Sentinel Service, the
headless Service and each pod under it, in their short and qualified forms, and localhost for
the probes. It comes from the configured Issuer or ClusterIssuer, or, with ``selfSignedCa``,
from a CA the component has cert-manager create: a self-signed Issuer signs the CA
Certificate ``<name>-ca``, which the CA Issuer ``<name>-ca`` then signs with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .cluster import exists
from .naming import Names
from .role import RoleComponent, object_metadata
from .settings import RedisSettings
from .tls import CA_DURATION

API_VERSION = "cert-manager.io/v1"
SERVER_USAGES = ["server auth", "client auth", "digital signature", "key encipherment"]
"""The pods present their certificate as servers and, to peers, as clients."""
CLIENT_USAGES = ["client auth", "digital signature", "key encipherment"]
PRIVATE_KEY = {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
"""A new key with every renewal, so a renewal also retires a key that may have leaked."""


def _qualified(name: str, names: Names) -> list[str]:
    return [
        name,
        f"{name}.{names.namespace}",
        f"{name}.{names.namespace}.svc",
        f"{name}.{names.namespace}.svc.{names.cluster_domain}",
    ]


def server_dns_names(settings: RedisSettings, names: Names) -> list[str]:
    """Every DNS name clients and peers use to reach a server or a Sentinel."""
    dns = [*_qualified(names.service, names), *_qualified(names.sentinel_service, names)]
    dns += _qualified(names.headless_service, names)
    dns += [f"*.{host}" for host in _qualified(names.headless_service, names)]
    dns += [f"{names.statefulset}-{i}" for i in range(settings.replicas)]
    dns.append("localhost")
    return dns


def issuer_ref(settings: RedisSettings, names: Names) -> dict[str, str]:
    """The issuer that signs the server and client certificates."""
    tls = settings.tls
    if tls.issuer_name is not None:
        return {"name": tls.issuer_name, "kind": tls.issuer_kind, "group": "cert-manager.io"}
    return {"name": names.ca_issuer, "kind": "Issuer", "group": "cert-manager.io"}


def server_certificate_spec(settings: RedisSettings, names: Names) -> dict[str, Any]:
    """The ``Certificate`` spec of the servers and Sentinels."""
    return {
        "secretName": names.tls_secret,
        "commonName": f"{names.service}.{names.namespace}.svc",
        "dnsNames": server_dns_names(settings, names),
        "ipAddresses": ["127.0.0.1"],
        "duration": settings.tls.duration,
        "renewBefore": settings.tls.renew_before,
        "privateKey": PRIVATE_KEY,
        "usages": SERVER_USAGES,
        "issuerRef": issuer_ref(settings, names),
    }


def client_certificate_spec(settings: RedisSettings, names: Names) -> dict[str, Any]:
    """The ``Certificate`` spec of the client certificate consumers mount with
    ``clientCertificates`` (the proxy's checks use it too)."""
    return {
        "secretName": names.client_tls_secret,
        "commonName": f"{names.release}-client",
        "duration": settings.tls.duration,
        "renewBefore": settings.tls.renew_before,
        "privateKey": PRIVATE_KEY,
        "usages": CLIENT_USAGES,
        "issuerRef": issuer_ref(settings, names),
    }


def ca_certificate_spec(names: Names) -> dict[str, Any]:
    """The self-signed CA of a release without a configured issuer."""
    return {
        "isCA": True,
        "commonName": f"{names.release} CA ({names.namespace})",
        "secretName": names.ca_issuer,
        "duration": CA_DURATION,
        "privateKey": {"algorithm": "ECDSA", "size": 256},
        "issuerRef": {
            "name": names.self_signed_issuer,
            "kind": "Issuer",
            "group": "cert-manager.io",
        },
    }


@dataclass(frozen=True)
class CertificatesArgs:
    """Arguments of :class:`Certificates`."""

    settings: RedisSettings
    """Validated settings of the release, with ``tls.enabled``."""
    prerequisites: list[pulumi.Resource]
    """What every object waits for: the namespace when the release creates it."""


class Certificates(RoleComponent):
    """The server Certificate ``<name>-tls``, with ``clientCertificates`` the client
    Certificate ``<name>-client``, and with ``selfSignedCa`` the Issuers and CA that sign them."""

    server_secret_name: pulumi.Output[str]
    """Name of the Secret holding ``tls.crt``, ``tls.key`` and ``ca.crt`` of the servers."""
    resources: list[pulumi.Resource]
    """Every cert-manager object, for the workloads to wait for."""

    def __init__(
        self, name: str, args: CertificatesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:Certificates", name, opts)
        settings = args.settings
        names = Names.of(settings)
        options = pulumi.ResourceOptions(parent=self, depends_on=args.prerequisites)
        self.resources = []

        def custom(suffix: str, kind: str, object_name: str, spec: dict[str, Any]) -> None:
            resource = k8s.apiextensions.CustomResource(
                f"{name}-{suffix}",
                api_version=API_VERSION,
                kind=kind,
                metadata=object_metadata(settings, object_name),
                spec=spec,
                opts=pulumi.ResourceOptions.merge(
                    options, pulumi.ResourceOptions(depends_on=list(self.resources))
                ),
            )
            self.resources.append(resource)

        if settings.tls.issuer_name is None:
            custom("selfsigned-issuer", "Issuer", names.self_signed_issuer, {"selfSigned": {}})
            custom("ca-certificate", "Certificate", names.ca_issuer, ca_certificate_spec(names))
            custom("ca-issuer", "Issuer", names.ca_issuer, {"ca": {"secretName": names.ca_issuer}})
        custom(
            "server-certificate",
            "Certificate",
            names.tls_secret,
            server_certificate_spec(settings, names),
        )
        if settings.tls.client_certificates:
            custom(
                "client-certificate",
                "Certificate",
                f"{names.release}-client",
                client_certificate_spec(settings, names),
            )
        self.server_secret_name = pulumi.Output.from_input(names.tls_secret)
        self.register_outputs({"server_secret_name": self.server_secret_name})


CERTIFICATE_CRD = "certificates.cert-manager.io"
CERT_MANAGER_MISSING = (
    f"redis:tls: cert-manager is not installed on the cluster (no CustomResourceDefinition "
    f"{CERTIFICATE_CRD}); install it or set redis:tls.enabled to false"
)


def check_cert_manager(settings: RedisSettings) -> None:
    """With TLS on, fails the preview when the cluster has no cert-manager (nothing could
    issue the certificate and every pod would wait for its Secret) and warns when the
    configured issuer does not exist (yet: another stack may create it). Skipped, with a
    warning, when the cluster cannot be read."""
    tls = settings.tls
    if not tls.enabled:
        return
    import httpx2 as httpx
    from lightkube import ApiError, Client
    from lightkube import ConfigError as KubeConfigError
    from lightkube.generic_resource import create_global_resource, create_namespaced_resource
    from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

    from .settings import ConfigError

    try:
        client = Client(timeout=httpx.Timeout(10.0))
        installed = exists(lambda: client.get(CustomResourceDefinition, CERTIFICATE_CRD))
        if not installed:
            raise ConfigError([CERT_MANAGER_MISSING])
        name = tls.issuer_name
        if name is None:
            return
        if tls.issuer_kind == "ClusterIssuer":
            cluster_issuer = create_global_resource(
                "cert-manager.io", "v1", "ClusterIssuer", "clusterissuers"
            )
            found = exists(lambda: client.get(cluster_issuer, name))
        else:
            issuer = create_namespaced_resource("cert-manager.io", "v1", "Issuer", "issuers")
            found = exists(lambda: client.get(issuer, name, namespace=settings.namespace))
        if not found:
            pulumi.log.warn(
                f"redis:tls.issuer: {tls.issuer_kind} '{name}' does not exist on the cluster; "
                "the certificate is issued once it does"
            )
    except (ApiError, KubeConfigError, httpx.HTTPError, OSError, ValueError) as error:
        pulumi.log.warn(f"cert-manager not checked: the cluster cannot be read: {error}")
