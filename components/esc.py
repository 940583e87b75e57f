"""The Pulumi ESC environment that publishes a Redis release to its consumers.

One environment per stack (``redis/dev``, ``redis/prod``, ...) carries the canonical
``redis_url`` and the AUTH password as secrets, the Sentinel endpoints and the namespace.
Application stacks import it (``imports: [redis/prod]`` in an environment, or
``environment: [redis/prod]`` in ``Pulumi.<stack>.yaml``) and receive:

* ``values.redis.*`` for other environments to reference (``${redis.url}``);
* ``environmentVariables`` (``REDIS_URL``, ``REDIS_PASSWORD``, ``REDIS_SENTINEL_HOSTS``,
  ``REDIS_SENTINEL_MASTER``, ...) for ``esc run`` and ``pulumi`` commands;
* ``pulumiConfig`` (``redis:url``, ``redis:sentinelHosts``, ...) as stack configuration.

Everything here is pure: the document is built from plain values (inside an ``apply`` when
they are Outputs) and rendered to YAML for ``pulumiservice.Environment``. Literal strings are
escaped for ESC interpolation, so a password containing ``$`` or ``${`` stays literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

import yaml

ENV_REDIS_URL: Final = "REDIS_URL"
ENV_REDIS_PASSWORD: Final = "REDIS_PASSWORD"
ENV_REDIS_HOST: Final = "REDIS_HOST"
ENV_REDIS_PORT: Final = "REDIS_PORT"
ENV_SENTINEL_HOSTS: Final = "REDIS_SENTINEL_HOSTS"
ENV_SENTINEL_MASTER: Final = "REDIS_SENTINEL_MASTER"
ENV_TLS_CA_CERTIFICATE: Final = "REDIS_TLS_CA_CERT"

CONFIG_NAMESPACE: Final = "redis"
"""Namespace of the ``pulumiConfig`` keys an importing stack receives (``redis:url``)."""

SECRET_VALUE_PATHS: Final = ("redis.url", "redis.password")
"""Dotted paths under ``values`` that hold secrets."""

SECRET_ENVIRONMENT_VARIABLES: Final = (ENV_REDIS_URL, ENV_REDIS_PASSWORD)
SECRET_CONFIG_KEYS: Final = (f"{CONFIG_NAMESPACE}:url", f"{CONFIG_NAMESPACE}:password")

URL_SCHEMES: Final = ("redis", "rediss")
SENTINEL_HOSTS_SEPARATOR: Final = ","

_ESC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOST_PORT = re.compile(r"^[^\s,:/]+:[0-9]{1,5}$")
_USERINFO_PART = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
"""RFC 3986 userinfo (without ``:``): unreserved, sub-delims and percent-encodings."""


def escape_literal(text: str) -> str:
    """Return ``text`` escaped so that ESC evaluates it to exactly ``text``.

    ESC interpolates ``${...}`` in every string and reads ``$$`` as a literal ``$``;
    doubling every ``$`` therefore makes any string literal.
    """
    return text.replace("$", "$$")


def format_redis_url(
    *,
    password: str,
    host: str,
    port: int,
    db: int = 0,
    username: str = "",
    tls: bool = False,
) -> str:
    """Return a ``redis://`` (or ``rediss://``) URL with the credentials percent-encoded.

    Every character of ``username`` and ``password`` outside the unreserved set is encoded,
    so ``@``, ``:``, ``/``, ``#``, ``?``, ``%`` and spaces survive any URL parser.
    """
    _check_host_port(host, port)
    if db < 0:
        raise ValueError(f"redis db must be >= 0, got {db}")
    scheme = "rediss" if tls else "redis"
    credentials = (
        f"{quote(username, safe='')}:{quote(password, safe='')}@" if password or username else ""
    )
    return f"{scheme}://{credentials}{host}:{port}/{db}"


def build_environment_document(
    *,
    redis_url: str,
    redis_password: str,
    redis_host: str,
    redis_port: int,
    sentinel_hosts: Sequence[str],
    sentinel_master_name: str,
    namespace: str,
    tls_ca_certificate: str = "",
) -> dict[str, Any]:
    """Build the ESC environment document that publishes one Redis release.

    ``redis_url`` is the canonical client URL; when it carries a password, that password
    must be ``redis_password`` percent-encoded (see :func:`format_redis_url`), otherwise a
    ``ValueError`` is raised, as it is for an empty password, an unsupported scheme, a bad
    port or ``host:port`` entry, or no Sentinel at all. ``sentinel_hosts`` are ``host:port``
    strings. The URL and password are wrapped in ``fn::secret``; environment variables and
    config reference them (``${redis.url}``) so they stay secret wherever they surface.
    With TLS (a ``rediss://`` URL) ``tls_ca_certificate``, the PEM CA bundle that verifies the
    servers, is required and published as ``redis.tls.caCertificate``, ``REDIS_TLS_CA_CERT``
    and ``redis:tlsCaCertificate``.
    """
    _check_url(redis_url, redis_password)
    if not redis_password:
        raise ValueError("redis_password must not be empty: AUTH is always on")
    _check_host_port(redis_host, redis_port)
    hosts = list(sentinel_hosts)
    if not hosts:
        raise ValueError("sentinel_hosts must name at least one Sentinel")
    for entry in hosts:
        if not _HOST_PORT.match(entry):
            raise ValueError(f"sentinel host {entry!r} is not host:port")
    if not sentinel_master_name:
        raise ValueError("sentinel_master_name must not be empty")
    if not namespace:
        raise ValueError("namespace must not be empty")

    tls = urlsplit(redis_url).scheme == "rediss"
    if tls and "-----BEGIN CERTIFICATE-----" not in tls_ca_certificate:
        raise ValueError("a rediss:// redis_url needs tls_ca_certificate, a PEM CA bundle")
    ns = CONFIG_NAMESPACE
    document: dict[str, Any] = {
        "values": {
            "redis": {
                "url": {"fn::secret": escape_literal(redis_url)},
                "password": {"fn::secret": escape_literal(redis_password)},
                "host": escape_literal(redis_host),
                "port": redis_port,
                "namespace": escape_literal(namespace),
                "sentinel": {
                    "hosts": [escape_literal(h) for h in hosts],
                    "masterName": escape_literal(sentinel_master_name),
                },
            },
            "environmentVariables": {
                ENV_REDIS_URL: "${redis.url}",
                ENV_REDIS_PASSWORD: "${redis.password}",
                ENV_REDIS_HOST: "${redis.host}",
                ENV_REDIS_PORT: "${redis.port}",
                ENV_SENTINEL_HOSTS: {
                    "fn::join": [SENTINEL_HOSTS_SEPARATOR, "${redis.sentinel.hosts}"]
                },
                ENV_SENTINEL_MASTER: "${redis.sentinel.masterName}",
            },
            "pulumiConfig": {
                f"{ns}:url": "${redis.url}",
                f"{ns}:password": "${redis.password}",
                f"{ns}:host": "${redis.host}",
                f"{ns}:port": "${redis.port}",
                f"{ns}:sentinelHosts": "${redis.sentinel.hosts}",
                f"{ns}:sentinelMasterName": "${redis.sentinel.masterName}",
                f"{ns}:namespace": "${redis.namespace}",
            },
        }
    }
    if tls:
        values = document["values"]
        values["redis"]["tls"] = {"caCertificate": escape_literal(tls_ca_certificate)}
        values["environmentVariables"][ENV_TLS_CA_CERTIFICATE] = "${redis.tls.caCertificate}"
        values["pulumiConfig"][f"{ns}:tlsCaCertificate"] = "${redis.tls.caCertificate}"
    return document


def render_environment_yaml(doc: Mapping[str, Any]) -> str:
    """Render an environment document as YAML with a canonical layout.

    Uses ``yaml.safe_dump`` with sorted keys, block style and no line folding, so equal
    documents always render to identical text (no spurious diffs on ``pulumi up``).
    """
    return yaml.safe_dump(
        _plain(doc),
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=2**31 - 1,
    )


def environment_name(project: str, stack: str) -> str:
    """Return the ESC environment name ``<project>/<stack>``, e.g. ``redis/prod``.

    ESC addresses environments as ``<org>/<project>/<env>``; within an organisation imports
    and ``Pulumi.<stack>.yaml`` use ``<project>/<env>``, which this returns.
    """
    for label, part in (("project", project), ("stack", stack)):
        if not _ESC_NAME.match(part):
            raise ValueError(f"ESC {label} name {part!r} must match {_ESC_NAME.pattern}")
    return f"{project}/{stack}"


def _check_host_port(host: str, port: int) -> None:
    if not host or any(c in host for c in " /,:@"):
        raise ValueError(f"invalid redis host {host!r}")
    if isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"invalid redis port {port!r}")


def _check_url(url: str, password: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES:
        raise ValueError(f"redis_url scheme must be one of {URL_SCHEMES}, got {parts.scheme!r}")
    try:
        port = parts.port
    except ValueError as err:
        raise ValueError(
            f"redis_url has an invalid port ({err}): is the password percent-encoded?"
        ) from None
    if not parts.hostname or port is None:
        raise ValueError("redis_url must name a host and a port (is the password percent-encoded?)")
    if parts.password is not None and (
        not _USERINFO_PART.match(parts.password) or unquote(parts.password) != password
    ):
        raise ValueError("the password in redis_url is not redis_password percent-encoded")


def _plain(node: Any) -> Any:
    """Copy a document into plain dicts and lists so ``safe_dump`` accepts any Mapping."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    return node
