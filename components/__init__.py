"""Redis with Sentinel high availability on Kubernetes, as a Pulumi component."""

from .access import Access, AccessArgs
from .publishing import Publishing, PublishingArgs
from .redis_sentinel import RedisSentinel, RedisSentinelArgs
from .routing import MasterRouting, MasterRoutingArgs
from .servers import RedisServers, RedisServersArgs
from .settings import ConfigError, RedisSettings, load_settings, read_pulumi_config

__all__ = [
    "Access",
    "AccessArgs",
    "ConfigError",
    "MasterRouting",
    "MasterRoutingArgs",
    "Publishing",
    "PublishingArgs",
    "RedisSentinel",
    "RedisSentinelArgs",
    "RedisServers",
    "RedisServersArgs",
    "RedisSettings",
    "load_settings",
    "read_pulumi_config",
]
