"""/readyz on a Redis Cluster: a cluster that is not there yet, slots without a node, a dead
master. Each test has a private cluster (it breaks it), built from tests/cluster/nodes.py.
Ingest stands for every service: the check is the shared one (services/common)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.ingest.app import create_app
from tests.cluster.nodes import ClusterNodes, start_cluster
from tests.support import wait_until
from tools.localstack import free_port


def redis_problem(client: TestClient) -> str | None:
    r = client.get("/readyz")
    if r.status_code == 200:
        return None
    assert r.status_code == 503, r.text
    return r.json()["detail"].get("redis")


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[ClusterNodes]:
    nodes = start_cluster(tmp_path / "cluster")
    yield nodes
    nodes.stop()


def test_a_service_started_before_its_cluster_is_ready_once_the_cluster_is(
    make_settings, run_app, tmp_path
):
    nodes = ClusterNodes(tmp_path / "late", [free_port() for _ in range(3)])
    settings = make_settings(redis_url=nodes.url)
    try:
        with run_app(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
            assert "unreachable" in (redis_problem(client) or "")
            for port in nodes.ports:
                nodes.start_node(port)
            # Nodes that answer but form no cluster yet: not one slot has a node.
            assert redis_problem(client) == "cluster has 16384 of 16384 slots unassigned"
            nodes.create()
            assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=20)
    finally:
        nodes.stop()


def test_unassigned_slots_and_a_dead_master_are_named(make_settings, run_app, private_cluster):
    nodes = private_cluster
    owner = next(p for p in nodes.ports if 0 in owned_slots(nodes, p))
    settings = make_settings(redis_url=nodes.url)
    with run_app(create_app(settings)) as client:
        assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=20)
        # Slots 0-99 lose their node everywhere (as after a botched resharding).
        for port in nodes.ports:
            nodes.node(port).execute_command("CLUSTER DELSLOTSRANGE", 0, 99)
        assert (redis_problem(client) or "").startswith("cluster has 100 of 16384 slots unassigned")
        nodes.node(owner).execute_command("CLUSTER ADDSLOTSRANGE", 0, 99)
        nodes.wait_state("ok")  # every node learnt the slots are back
        assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=20)
        # A master dies: its slots have no node (no replicas here), the cluster says fail.
        nodes.kill_node(owner)
        problem = wait_until(lambda: redis_problem(client), timeout=20)
        assert problem is not None and ("cluster state fail" in problem or "unreachable" in problem)


def owned_slots(nodes: ClusterNodes, port: int) -> set[int]:
    """The slots a node serves, from its own CLUSTER SLOTS."""
    found: set[int] = set()
    for start, end, master, *_ in nodes.node(port).execute_command("CLUSTER SLOTS"):
        if int(master[1]) == port:
            found.update(range(int(start), int(end) + 1))
    return found
