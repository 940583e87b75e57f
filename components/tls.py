"""TLS on every link, with certificates issued by cert-manager.

With ``redis:tls`` enabled every Redis server listens for TLS on :data:`REDIS_TLS_PORT` and
every Sentinel on :data:`SENTINEL_TLS_PORT`. The plain ports (6379, 26379) stay open only in
the transition mode (``plaintext: true``), in which the pods' own links (replication, Sentinel
to Redis and to Sentinel, scripts, probes) also stay plain, so that pods of the previous spec
and the new one keep talking while they roll. With ``plaintext: false`` every link is TLS.

The proxy passes TLS through: it never holds the servers' key and the client verifies the
server certificate end to end, which names ``<name>-service`` for that reason. The proxy's own
master checks speak TLS to the servers (``check-ssl``) with the CA the certificate Secret carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .blocks import as_bool, block_entries

TLS_MOUNT = "/tls"
"""Where the certificate Secret (``tls.crt``, ``tls.key``, ``ca.crt``) is mounted."""
REDIS_TLS_PORT = 6380
SENTINEL_TLS_PORT = 26380
ISSUER_KINDS = ("ClusterIssuer", "Issuer")
MINIMUM_DURATION_SECONDS = 3600
"""cert-manager refuses a certificate duration below one hour."""
MINIMUM_RENEW_BEFORE_SECONDS = 5 * 60
"""cert-manager refuses a ``renewBefore`` below five minutes."""
CA_DURATION = "87600h"
"""Lifetime of the self-signed CA the component creates when no issuer is given (10 years)."""
CERTIFICATE_RELOAD_POLL_SECONDS = 10
"""How often a pod looks for a renewed certificate in its Secret volume."""
SENTINEL_RESTART_STAGGER_SECONDS = 20
"""Sentinel cannot reload a certificate; each restarts after ``ordinal`` times this, so at most
one Sentinel of the quorum is away at a time."""

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True)
class TlsSettings:
    """The ``redis:tls`` block."""

    enabled: bool = False
    """Serve TLS on every Redis and Sentinel port, with certificates from cert-manager."""
    plaintext: bool = False
    """Transition mode: the plain ports stay open beside TLS for consumers that have not moved
    yet, and the pods' own links stay plain; turn off once every consumer uses ``rediss://``."""
    issuer_name: str | None = None
    """An existing cert-manager Issuer or ClusterIssuer that signs the server certificate."""
    issuer_kind: str = "ClusterIssuer"
    """``ClusterIssuer`` or ``Issuer`` (in the release namespace)."""
    self_signed_ca: bool = False
    """Without ``issuer_name``: let the component create a self-signed CA with cert-manager."""
    client_certificates: bool = False
    """Require client certificates (``tls-auth-clients yes``) signed by the same issuer."""
    duration: str = "2160h"
    """Lifetime of the server certificate, a Go duration such as ``2160h``."""
    renew_before: str = "720h"
    """How long before expiry cert-manager renews it; pods reload it without a restart."""

    @property
    def internal(self) -> bool:
        """Whether the pods' own links (replication, Sentinel, scripts, probes) use TLS."""
        return self.enabled and not self.plaintext

    @property
    def plain_ports_open(self) -> bool:
        """Whether the plain ports 6379 and 26379 listen."""
        return not self.enabled or self.plaintext


def duration_seconds(text: str) -> int | None:
    """Seconds of a Go duration made of hours, minutes and seconds (``1h30m``), else None."""
    match = _DURATION.fullmatch(text.strip()) if text.strip() else None
    if match is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


TLS_FIELDS = {
    "enabled": "true or false",
    "plaintext": "true or false",
    "issuer": "an object {name, kind} naming a cert-manager Issuer or ClusterIssuer",
    "selfSignedCa": "true or false",
    "clientCertificates": "true or false",
    "duration": "a Go duration of at least 1h, such as 2160h",
    "renewBefore": "a Go duration of at least 5m, below duration, such as 720h",
}


def parse_tls(raw: Any, key: str, problems: list[str]) -> TlsSettings:
    """The ``redis:tls`` object, every problem appended to ``problems`` with its full key."""
    entries = block_entries(raw, key, TLS_FIELDS, problems)
    if entries is None:
        return TlsSettings()
    values: dict[str, Any] = {}
    for field_name, value in entries.items():
        parsed = _parse_field(field_name, value, f"{key}.{field_name}", problems)
        if parsed is not None:
            values.update(parsed)
    tls = TlsSettings(**values)
    _check_tls(tls, key, problems)
    return tls


def _parse_field(name: str, value: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    booleans = {
        "enabled": "enabled",
        "plaintext": "plaintext",
        "selfSignedCa": "self_signed_ca",
        "clientCertificates": "client_certificates",
    }
    if name in booleans:
        flag = as_bool(value)
        if flag is None:
            problems.append(f"{where}: '{value}' is not allowed; expected true or false")
            return None
        return {booleans[name]: flag}
    if name in ("duration", "renewBefore"):
        if not isinstance(value, str) or duration_seconds(value) is None:
            problems.append(f"{where}: '{value}' is not allowed; expected {TLS_FIELDS[name]}")
            return None
        return {"duration" if name == "duration" else "renew_before": value.strip()}
    return _parse_issuer(value, where, problems)


def _parse_issuer(value: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(value, dict) or set(value) - {"name", "kind"}:
        problems.append(f"{where}: '{value}' is not allowed; expected {TLS_FIELDS['issuer']}")
        return None
    name, kind = value.get("name"), value.get("kind", "ClusterIssuer")
    parsed: dict[str, Any] = {}
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
        problems.append(f"{where}.name: '{name}' is not allowed; expected an issuer name")
    else:
        parsed["issuer_name"] = name
    if kind not in ISSUER_KINDS:
        problems.append(
            f"{where}.kind: '{kind}' is not allowed; expected {' or '.join(ISSUER_KINDS)}"
        )
    else:
        parsed["issuer_kind"] = kind
    return parsed


def _check_tls(tls: TlsSettings, key: str, problems: list[str]) -> None:
    if not tls.enabled:
        for field_name, on in (
            ("plaintext", tls.plaintext),
            ("clientCertificates", tls.client_certificates),
            ("selfSignedCa", tls.self_signed_ca),
        ):
            if on:
                problems.append(f"{key}.{field_name}: requires {key}.enabled: true")
        return
    if tls.issuer_name is None and not tls.self_signed_ca:
        problems.append(
            f"{key}.issuer: required when {key}.enabled is true, unless {key}.selfSignedCa is "
            "true (the component may then create a self-signed CA with cert-manager)"
        )
    if tls.issuer_name is not None and tls.self_signed_ca:
        problems.append(f"{key}.selfSignedCa: not allowed with {key}.issuer; choose one")
    duration = duration_seconds(tls.duration) or 0
    renew = duration_seconds(tls.renew_before) or 0
    if duration < MINIMUM_DURATION_SECONDS:
        problems.append(f"{key}.duration: '{tls.duration}' is below cert-manager's minimum of 1h")
    if renew < MINIMUM_RENEW_BEFORE_SECONDS:
        problems.append(
            f"{key}.renewBefore: '{tls.renew_before}' is below cert-manager's minimum of 5m"
        )
    elif renew >= duration >= MINIMUM_DURATION_SECONDS:
        problems.append(
            f"{key}.renewBefore: '{tls.renew_before}' must be below duration '{tls.duration}'"
        )
