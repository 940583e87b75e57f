"""Redis with Sentinel HA for one environment: validate config, the engine change,
cert-manager (with TLS) and the Prometheus Operator's CRDs (with its objects), build the
release, export."""

import pulumi

from components import RedisSentinel, load_settings, read_pulumi_config
from components.certificates import check_cert_manager
from components.migration import check_migration, read_running_deployment
from components.monitoring import check_prometheus_operator

settings = load_settings(read_pulumi_config())
check_migration(settings, read_running_deployment(settings))
check_cert_manager(settings)
check_prometheus_operator(settings)
redis = RedisSentinel(settings.name, settings)

pulumi.export("redis_url", redis.redis_url)
pulumi.export("redis_password", redis.redis_password)
pulumi.export("redis_host", redis.redis_host)
pulumi.export("redis_port", redis.redis_port)
pulumi.export("sentinel_hosts", redis.sentinel_hosts)
pulumi.export("sentinel_master_name", redis.sentinel_master_name)
pulumi.export("tls_ca_certificate", redis.tls_ca_certificate)
pulumi.export("namespace", redis.namespace)
