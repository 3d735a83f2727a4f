"""Every test under tests/cluster runs on a real 3-master Redis Cluster.

`redis_url` and `redis_cluster` are overridden here, so `make_settings` (and every service
built from it) uses a cluster client: the tests imported from the metrics, moderation,
delivery and fault suites run unchanged on the cluster. See docs/scaling.md, "Redis Cluster".
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.nodes import ClusterNodes, start_cluster
from tests.faults.conftest import start_run  # noqa: F401 - the fault run, for test_faults.py


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterNodes]:
    """Three masters on free ports, every slot assigned, for the session (one per worker)."""
    nodes = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield nodes
    nodes.stop()


@pytest.fixture(scope="session")
def redis_url(cluster: ClusterNodes) -> str:
    return cluster.url


@pytest.fixture(scope="session")
def redis_cluster() -> bool:
    return True
