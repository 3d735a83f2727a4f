"""A real Redis Cluster for tests: three masters on free ports, joined by `redis-cli --cluster`.

Each node is `redis-server --cluster-enabled yes` with its own nodes file and folder, no
persistence, a short node timeout (a dead master is noticed within about a second) and
its cluster bus on a free port of its own (`cluster-port`): the default, port + 10000,
does not exist above 55535.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tools.localstack import (
    free_port,
    install_redis_server,
    redis_server_binary,
    stop,
    wait_for_port,
)

NODE_TIMEOUT_MS = 1000


def redis_cli() -> str:
    """The redis-cli path (Debian's redis-server package brings it, through redis-tools)."""
    found = shutil.which("redis-cli") or (
        "/usr/bin/redis-cli" if Path("/usr/bin/redis-cli").exists() else None
    )
    if found is None:
        raise RuntimeError(
            "redis-cli is missing: install redis-tools (apt-get install redis-tools)"
        )
    return found


@dataclass
class ClusterNodes:
    """The redis-server processes of one test cluster and how to start, stop and join them."""

    directory: Path
    ports: list[int]
    bus_ports: dict[int, int] = field(default_factory=dict)
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """REDIS_URL of the cluster: one of its nodes (with REDIS_CLUSTER=true)."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def node(self, port: int) -> redis.Redis:
        """A plain client of one node, for CLUSTER commands."""
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def start_node(self, port: int) -> None:
        folder = self.directory / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        binary = redis_server_binary() or install_redis_server()
        log = open(folder / "redis.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.processes[port] = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(folder.resolve()),
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                 "--cluster-port", str(self.bus_ports.setdefault(port, free_port()))],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            log.close()
        wait_for_port(port)

    def kill_node(self, port: int) -> None:
        """SIGKILL one node (a master dies: its slots have no node until it is back)."""
        proc = self.processes.pop(port)
        proc.kill()
        proc.wait()

    def create(self) -> None:
        """Join the running nodes into one cluster, every slot assigned, no replicas."""
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [redis_cli(), "--cluster", "create", *nodes, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        self.wait_state("ok")

    def wait_state(self, state: str, *, timeout: float = 20.0) -> None:
        """Wait until every running node reports `cluster_state:<state>`."""
        deadline = time.monotonic() + timeout
        while True:
            states = {port: self.node(port).cluster("INFO") for port in self.processes}
            if all(info.get("cluster_state") == state for info in states.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not {state} after {timeout}s: {states}")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.processes.values():
            stop(proc)
        self.processes.clear()


def start_cluster(directory: Path, *, masters: int = 3, create: bool = True) -> ClusterNodes:
    """Start `masters` cluster-enabled redis-servers on free ports and (by default) join them."""
    nodes = ClusterNodes(directory, [free_port() for _ in range(masters)])
    try:
        for port in nodes.ports:
            nodes.start_node(port)
        if create:
            nodes.create()
    except BaseException:
        nodes.stop()
        raise
    return nodes
