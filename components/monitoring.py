"""The monitoring objects of a release, each when ``redis:metrics`` asks for it: a PodMonitor
for its metrics endpoints and a PrometheusRule with its alert rules (Prometheus Operator), and
a ConfigMap with the Grafana dashboard (Grafana's dashboard sidecar)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .alerts import rule_groups
from .cluster import exists
from .dashboard import DASHBOARD_KEY, dashboard_json
from .metrics import pod_monitor_spec
from .naming import Names, selector_labels
from .role import RoleComponent, object_metadata
from .settings import RedisSettings
from .workload import sentinel_scrape_target

API_VERSION = "monitoring.coreos.com/v1"
POD_MONITOR_CRD = "podmonitors.monitoring.coreos.com"
PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"


def monitor_metadata(settings: RedisSettings, object_name: str) -> dict[str, Any]:
    """The objects' metadata: the release's labels and ``monitorLabels``."""
    metadata = object_metadata(settings, object_name)
    metadata["labels"] = {**metadata["labels"], **settings.metrics.monitor_labels}
    return metadata


def pod_monitor(settings: RedisSettings, names: Names) -> dict[str, Any]:
    """The PodMonitor's spec for the release's server and proxy pods."""
    release_pods = {
        key: value
        for key, value in selector_labels(names, "server").items()
        if key != "app.kubernetes.io/component"
    }
    return pod_monitor_spec(release_pods, sentinel_scrape_target(settings))


def dashboard_metadata(settings: RedisSettings, names: Names) -> dict[str, Any]:
    """The dashboard ConfigMap's metadata: the release's labels and ``dashboardLabels``."""
    metadata = object_metadata(settings, f"{names.release}-dashboard")
    metadata["labels"] = {**metadata["labels"], **settings.metrics.dashboard_labels}
    return metadata


@dataclass(frozen=True)
class MonitoringArgs:
    """Arguments of :class:`Monitoring`."""

    settings: RedisSettings
    """Validated settings of the release, with ``metrics.pod_monitor``,
    ``metrics.prometheus_rule`` or ``metrics.grafana_dashboard``."""
    prerequisites: list[pulumi.Resource]
    """What every object waits for: the namespace when the release creates it."""


class Monitoring(RoleComponent):
    """PodMonitor ``<name>``, PrometheusRule ``<name>`` and ConfigMap ``<name>-dashboard``, as
    configured."""

    object_names: pulumi.Output[list[str]]
    """``Kind/name`` of every object created."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sophia:redis:Monitoring", name, opts)
        settings = args.settings
        names = Names.of(settings)
        options = pulumi.ResourceOptions(parent=self, depends_on=args.prerequisites)
        wanted = [
            ("pod-monitor", "PodMonitor", settings.metrics.pod_monitor, pod_monitor),
            ("prometheus-rule", "PrometheusRule", settings.metrics.prometheus_rule, rule_groups),
        ]
        created: list[str] = []
        for suffix, kind, on, spec in wanted:
            if not on:
                continue
            k8s.apiextensions.CustomResource(
                f"{name}-{suffix}",
                api_version=API_VERSION,
                kind=kind,
                metadata=monitor_metadata(settings, names.release),
                spec=spec(settings, names),
                opts=options,
            )
            created.append(f"{kind}/{names.release}")
        if settings.metrics.grafana_dashboard:
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard",
                metadata=dashboard_metadata(settings, names),
                data={DASHBOARD_KEY: dashboard_json()},
                opts=options,
            )
            created.append(f"ConfigMap/{names.release}-dashboard")
        self.object_names = pulumi.Output.from_input(created)
        self.register_outputs({"object_names": self.object_names})


def check_prometheus_operator(settings: RedisSettings) -> None:
    """Fails the preview when a PodMonitor or PrometheusRule is requested and the cluster lacks
    its CustomResourceDefinition; skipped, with a warning, when the cluster cannot be read."""
    metrics = settings.metrics
    wanted = {
        POD_MONITOR_CRD: ("podMonitor", metrics.enabled and metrics.pod_monitor),
        PROMETHEUS_RULE_CRD: ("prometheusRule", metrics.enabled and metrics.prometheus_rule),
    }
    if not any(on for _, on in wanted.values()):
        return
    import httpx2 as httpx
    from lightkube import ApiError, Client
    from lightkube import ConfigError as KubeConfigError
    from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

    from .settings import ConfigError

    try:
        client = Client(timeout=httpx.Timeout(10.0))

        def read(crd: str) -> bool:
            return exists(lambda: client.get(CustomResourceDefinition, crd))

        problems = [
            f"redis:metrics.{key}: the Prometheus Operator's CustomResourceDefinition {crd} is "
            f"not installed on the cluster; install the operator's CRDs or set "
            f"redis:metrics.{key} to false"
            for crd, (key, on) in wanted.items()
            if on and not read(crd)
        ]
    except (ApiError, KubeConfigError, httpx.HTTPError, OSError, ValueError) as error:
        pulumi.log.warn(f"Prometheus Operator CRDs not checked: cannot read the cluster: {error}")
        return
    if problems:
        raise ConfigError(problems)
