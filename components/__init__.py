"""Redis with Sentinel high availability on Kubernetes, as a Pulumi component."""

from .redis_sentinel import RedisSentinel, RedisSentinelArgs
from .settings import ConfigError, RedisSettings, load_settings, read_pulumi_config

__all__ = [
    "ConfigError",
    "RedisSentinel",
    "RedisSentinelArgs",
    "RedisSettings",
    "load_settings",
    "read_pulumi_config",
]
