"""Object names, host names and labels of one release, derived from its name alone."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import RedisSettings

REDIS_PORT = 6379
SENTINEL_PORT = 26379
PROXY_HEALTH_PORT = 8404


@dataclass(frozen=True)
class Names:
    """Kubernetes object names of a release named ``release`` in ``namespace``."""

    release: str
    """Release name, e.g. ``redis``."""
    namespace: str
    """Namespace of every object."""
    cluster_domain: str = "cluster.local"
    """Cluster DNS domain."""

    @classmethod
    def of(cls, settings: RedisSettings) -> Names:
        """The names of the release that ``settings`` describe."""
        return cls(settings.name, settings.namespace, settings.cluster_domain)

    @property
    def statefulset(self) -> str:
        return self.release

    @property
    def service(self) -> str:
        """The canonical client endpoint: always the current master."""
        return f"{self.release}-service"

    @property
    def headless_service(self) -> str:
        return f"{self.release}-headless"

    @property
    def sentinel_service(self) -> str:
        return f"{self.release}-sentinel"

    @property
    def proxy(self) -> str:
        return f"{self.release}-proxy"

    @property
    def config_map(self) -> str:
        return f"{self.release}-config"

    @property
    def proxy_config_map(self) -> str:
        return f"{self.release}-proxy-config"

    @property
    def secret(self) -> str:
        return f"{self.release}-auth"

    @property
    def service_account(self) -> str:
        return self.release

    @property
    def tls_secret(self) -> str:
        """Secret cert-manager writes the servers' certificate, key and CA into."""
        return f"{self.release}-tls"

    @property
    def client_tls_secret(self) -> str:
        """Secret of the client certificate for consumers, with ``clientCertificates``."""
        return f"{self.release}-client-tls"

    @property
    def ca_issuer(self) -> str:
        """The CA Issuer (and its Secret) the component creates when no issuer is given."""
        return f"{self.release}-ca"

    @property
    def self_signed_issuer(self) -> str:
        return f"{self.release}-selfsigned"

    def service_host(self) -> str:
        """Fully qualified host name of the canonical Service."""
        return f"{self.service}.{self.namespace}.svc.{self.cluster_domain}"

    def pod_host(self, ordinal: int) -> str:
        """Stable DNS name of one Redis pod through the headless Service."""
        return (
            f"{self.statefulset}-{ordinal}.{self.headless_service}."
            f"{self.namespace}.svc.{self.cluster_domain}"
        )

    def sentinel_hosts(self, replicas: int, port: int = SENTINEL_PORT) -> list[str]:
        """``host:port`` of every Sentinel, for Sentinel-aware clients."""
        return [f"{self.pod_host(i)}:{port}" for i in range(replicas)]


def image_version(image: str) -> str:
    """The tag of an image reference, for the ``app.kubernetes.io/version`` label."""
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return "latest"
    return tag[:63]


def selector_labels(names: Names, component: str) -> dict[str, str]:
    """Labels that select the pods of one component (``server`` or ``proxy``)."""
    return {
        "app.kubernetes.io/name": "redis",
        "app.kubernetes.io/instance": names.release,
        "app.kubernetes.io/component": component,
    }


def common_labels(names: Names, component: str, version: str) -> dict[str, str]:
    """The Kubernetes recommended labels every object of the release carries."""
    return {
        **selector_labels(names, component),
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/part-of": "sophia-ai",
        "app.kubernetes.io/managed-by": "pulumi",
    }
