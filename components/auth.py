"""The AUTH password: generation, rotation and the connection URL built from it."""

from __future__ import annotations

from urllib.parse import quote

PASSWORD_LENGTH = 40
PASSWORD_SPECIALS = "!*+-._~"
"""Specials that need no quoting in redis.conf, HAProxy or sh, yet exercise URL encoding."""


def redis_url(password: str, host: str, port: int, database: int = 0, tls: bool = False) -> str:
    """``redis://:<password>@host:port/db`` (``rediss://`` with ``tls``), the password
    percent-encoded."""
    scheme = "rediss" if tls else "redis"
    return f"{scheme}://:{quote(password, safe='')}@{host}:{port}/{database}"


def password_resource_suffix(generation: int) -> str:
    """Suffix of the RandomPassword of one generation; bumping the generation rotates."""
    return f"password-v{generation}"
