"""Session fixtures: the local cluster, the deployed local stack and a client pod.

The cluster is started here (``scripts/cluster/up.sh`` reuses a healthy one); the stack is
deployed with the real Pulumi engine through the Automation API (:mod:`redistest.deployment`,
shared with the benchmark). Nothing is skipped: a missing piece fails the session with what to
do.
"""

from __future__ import annotations

import pytest

from redistest.deployment import (
    ClusterDown,
    Deployed,
    deploy_local,
    start_client_pod,
    start_cluster,
)
from redistest.kube import Kube


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
def client(deployed: Deployed) -> Kube:
    start_client_pod(deployed.kube)
    return deployed.kube
