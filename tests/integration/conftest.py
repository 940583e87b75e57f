"""Session fixtures: the local cluster, the deployed local stack and a client pod.

The cluster is started here (``scripts/cluster/up.sh`` reuses a healthy one); the stack is
deployed with the real Pulumi engine through the Automation API (:mod:`redistest.deployment`,
shared with the benchmark). Nothing is skipped: a missing piece fails the session with what to
do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from redistest.deployment import (
    ClusterDown,
    Deployed,
    deploy_local,
    log_line,
    start_client_pod,
    start_cluster,
)
from redistest.kube import Kube
from redistest.monitoring import Prometheus, deploy_prometheus, stack_settings
from tests.integration.deployment import tls_release_settings


@pytest.fixture(scope="session")
def cluster() -> None:
    try:
        start_cluster()
    except ClusterDown as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def deployed(cluster: None) -> Deployed:
    return deploy_local()


@pytest.fixture(scope="session")
def prometheus(deployed: Deployed) -> Prometheus:
    """The local Prometheus, scraping the session's release with its alert rules loaded, and
    the TLS release of ``test_88_tls`` once it runs (one Prometheus for the session: a
    re-deployment would restart it with an empty database)."""
    session = stack_settings(deployed.stack)
    return deploy_prometheus([session, tls_release_settings(deployed.stack)], running=[session])


@pytest.fixture(scope="session")
def client(deployed: Deployed) -> Kube:
    start_client_pod(deployed.kube)
    return deployed.kube


@pytest.fixture(autouse=True)
def _logged_duration(request: pytest.FixtureRequest) -> Iterator[None]:
    """Marks each test's start and duration in the integration log, beside the engine output."""
    started = time.monotonic()
    log_line(f"=== {request.node.nodeid} started {datetime.now(UTC):%H:%M:%S}")
    yield
    log_line(f"=== {request.node.nodeid} took {time.monotonic() - started:.1f} s")
