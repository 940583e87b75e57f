"""Detection of credentials written as literals into Kubernetes objects.

A *reference* (``$VAR``, ``${VAR}``, ``$(VAR)``, ``$(cmd)``, a ``printf`` placeholder such as
``%s``, a template marker such as ``@NAME@`` or ``{{ .x }}``) is how a value reaches Redis
from a Secret at run time; anything else in a password position is a literal and is
reported. Findings never contain the literal itself, only where it is.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CREDENTIAL_ENV_WORDS = ("PASSWORD", "PASS", "AUTH", "SECRET")
"""An environment variable whose name contains one of these must not carry a literal."""

HARMLESS_FLAG_VALUES = frozenset({"", "true", "false", "yes", "no"})
"""Literal values that switch a feature rather than carry a credential (``AUTH_ENABLED=true``)."""

_REFERENCE = re.compile(
    r"""^(?:
        \$.*                      # $VAR ${VAR} $(VAR) $(cmd)
      | `.*`                      # `cmd`
      | %[-+ #0-9.]*[sbdqv]       # printf / format placeholders
      | @[A-Za-z0-9_.-]+@         # @NAME@ template markers
      | \{\{.*\}\}                # {{ template }}
    )$""",
    re.VERBOSE,
)

_DIRECTIVES = (
    # (label, pattern whose group "value" is the password position)
    ("requirepass", re.compile(r"(?:^|[\s'\"])requirepass\s+[\"']?(?P<value>[^\s'\"]+)", re.I)),
    ("masterauth", re.compile(r"(?:^|[\s'\"])masterauth\s+[\"']?(?P<value>[^\s'\"]+)", re.I)),
    (
        "sentinel auth-pass",
        re.compile(r"\bauth-pass\s+[\"']?[^\s'\"]+[\"']?\s+[\"']?(?P<value>[^\s'\"]+)", re.I),
    ),
)
_ACL_USER = re.compile(r"(?:^|[\s'\"])user\s+\S+\s+(?P<rules>.*)$", re.I)

_URL_PASSWORD = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:(?P<value>[^\s/@]+)@")

_TOKEN_PATTERNS = (
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("a Pulumi access token", re.compile(r"\bpul-[0-9a-f]{40}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    (
        "a JSON web token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),
    ),
)

_CREDENTIAL_KEY = re.compile(
    r"(?:^|[-_.])(?:password|passwd|passphrase|token|api[-_]?key|credentials?|requirepass|masterauth)$",
    re.I,
)
"""Annotation keys (last path segment) and ConfigMap keys that name a credential. ``secret`` is
left out on purpose: ``...-secret`` keys conventionally hold the *name* of a Secret object."""

_CLI_VALUE_FLAGS = ("--requirepass", "--masterauth")
_REDIS_CLI_VALUE_FLAGS = ("-a", "--pass")


def is_reference(token: str) -> bool:
    """True if ``token`` stands for a value supplied at run time rather than a literal."""
    token = token.strip().strip("'\"").removesuffix("\\n").strip("'\";")
    return bool(_REFERENCE.match(token))


def _is_literal(token: str) -> bool:
    stripped = token.strip().strip("'\"")
    return stripped.lower() not in HARMLESS_FLAG_VALUES and not is_reference(stripped)


def directive_findings(text: str) -> list[str]:
    """Redis/Sentinel config directives with a literal password, one finding per line."""
    findings: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        for label, pattern in _DIRECTIVES:
            match = pattern.search(stripped)
            if match and _is_literal(match.group("value")):
                findings.append(f"line {number}: {label} with a literal password")
        acl = _ACL_USER.search(stripped)
        if acl and any(
            rule.startswith(">") and _is_literal(rule[1:]) for rule in acl.group("rules").split()
        ):
            findings.append(f"line {number}: ACL user with a plaintext >password (use #<sha256>)")
    return findings


def url_findings(text: str) -> list[str]:
    """URLs that carry a literal password in their user-info part."""
    return [
        "a URL with a literal password"
        for match in _URL_PASSWORD.finditer(text)
        if _is_literal(match.group("value"))
    ]


def token_findings(text: str) -> list[str]:
    """Well-known credential formats (private keys, cloud and API tokens)."""
    return [label for label, pattern in _TOKEN_PATTERNS if pattern.search(text)]


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def argv_findings(argv: Sequence[str]) -> list[str]:
    """Command-line flags that pass a literal password.

    ``--requirepass X`` / ``--masterauth X`` (and ``--flag=X``) anywhere; ``-a X`` and
    ``--pass X`` after a ``redis-cli``, where ``-a`` means the password.
    """
    findings: list[str] = []
    in_redis_cli = False
    for i, token in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else ""
        flag, eq, inline = token.partition("=")
        if token.rsplit("/", 1)[-1] == "redis-cli":
            in_redis_cli = True
        elif token in ("|", "&&", "||", ";"):
            in_redis_cli = False
        if flag in _CLI_VALUE_FLAGS:
            value = inline if eq else following
            if value and _is_literal(value):
                findings.append(f"{flag} with a literal password")
        elif (
            in_redis_cli
            and token in _REDIS_CLI_VALUE_FLAGS
            and following
            and _is_literal(following)
        ):
            findings.append(f"redis-cli {token} with a literal password")
    return findings


def text_findings(text: str) -> list[str]:
    """Every kind of literal credential in free text (config files, scripts, values)."""
    findings = directive_findings(text) + url_findings(text) + token_findings(text)
    for number, line in enumerate(text.splitlines(), start=1):
        findings.extend(f"line {number}: {f}" for f in argv_findings(_split(line)))
    return findings


def command_findings(argv: Iterable[Any]) -> list[str]:
    """Literal credentials in a container command/args list or an exec probe/hook."""
    tokens = [str(t) for t in argv]
    findings = argv_findings(tokens)
    for token in tokens:
        if any(c.isspace() for c in token):
            findings.extend(text_findings(token))
        else:
            findings.extend(url_findings(token) + token_findings(token))
    return findings


def env_findings(env: Iterable[Any]) -> list[str]:
    """Environment variables that carry a credential as a literal ``value``.

    A variable whose name contains PASSWORD, PASS, AUTH or SECRET must use ``valueFrom``;
    any variable whose value is a URL with a password or a known token format is reported
    too. Empty and on/off values (``true``, ``no``...) are not credentials.
    """
    findings: list[str] = []
    for var in env:
        if not isinstance(var, Mapping) or "value" not in var:
            continue
        name = str(var.get("name", ""))
        value = var.get("value")
        if not isinstance(value, str):
            continue
        if any(word in name.upper() for word in CREDENTIAL_ENV_WORDS) and _is_literal(value):
            findings.append(f"env {name} has a literal value; use valueFrom.secretKeyRef")
        else:
            findings.extend(f"env {name}: {f}" for f in url_findings(value) + token_findings(value))
    return findings


def annotation_findings(annotations: Mapping[str, Any]) -> list[str]:
    """Annotations whose key names a credential or whose value looks like one."""
    findings: list[str] = []
    for key, value in annotations.items():
        if not isinstance(value, str):
            continue
        last = str(key).rsplit("/", 1)[-1]
        if _CREDENTIAL_KEY.search(last) and _is_literal(value):
            findings.append(f"annotation {key} holds a literal credential")
            continue
        found = directive_findings(value) + url_findings(value) + token_findings(value)
        findings.extend(f"annotation {key}: {f}" for f in found)
    return findings


def configmap_findings(props: Mapping[str, Any]) -> list[str]:
    """Literal credentials in a ConfigMap's ``data`` and (decodable) ``binaryData``."""
    items: list[tuple[str, str]] = []
    data = props.get("data")
    if isinstance(data, Mapping):
        items.extend((str(k), v) for k, v in data.items() if isinstance(v, str))
    binary = props.get("binaryData")
    if isinstance(binary, Mapping):
        for key, encoded in binary.items():
            try:
                items.append((str(key), base64.b64decode(str(encoded), validate=True).decode()))
            except (binascii.Error, UnicodeDecodeError):
                continue
    findings: list[str] = []
    for key, text in items:
        if _CREDENTIAL_KEY.search(key) and _is_literal(text):
            findings.append(f"data key {key} holds a literal credential")
        findings.extend(f"data {key}: {f}" for f in text_findings(text))
    return findings
