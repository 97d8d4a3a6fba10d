"""A multi-node swarm for the cluster tests: the main engine as manager, worker engines in
network namespaces and a registry, all made by ``scripts/cluster.sh``.

tests/conftest.py imports the fixtures ``cluster`` and ``healthy_cluster``, so a test module
only asks for them::

    pytestmark = [pytest.mark.engine, pytest.mark.cluster]

    def test_something(cluster: Cluster) -> None: ...

The ``cluster`` fixture is session-wide: it brings the cluster up (``cluster.sh up 2``) unless it is up
already, and takes it down at the end of the session only if it made it.  Tests marked
``cluster`` run in one pytest process with the swarm tests (scripts/test.sh runs them beside
the parallel run of the others), because the main engine is in one swarm at a time.  A test that drains nodes or kills an engine uses
``heal()`` (through the ``healthy_cluster`` fixture) so the next test finds every node
``ready`` and ``active``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SH = REPO / "scripts" / "cluster.sh"
WORKERS = 2
#: How long a node may take to be seen ready (or down) by the manager.
NODE_SECONDS = 90.0


@attrs.frozen
class Worker:
    """A worker engine: its swarm node name (hostname), socket URL and state directory."""

    name: str
    socket: str
    directory: Path

    def client(self) -> Any:
        """A Docker SDK client of this worker's engine (close it after use)."""
        import docker

        # A fixed API version: no request (and no socket to leak) while the engine is down.
        return docker.DockerClient(base_url=self.socket, version="1.41", timeout=30)

    def kill_engine(self) -> None:
        """SIGKILL the worker's dockerd: the node is lost as in a crash."""
        pid = int((self.directory / "docker.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)


@attrs.frozen
class Cluster:
    """What ``scripts/cluster.sh up`` made, as its ``env`` command reports it."""

    manager_addr: str
    registry: str
    workers: tuple[Worker, ...]

    def worker(self, name: str) -> Worker:
        return next(w for w in self.workers if w.name == name)

    def heal(self, client: Any) -> None:
        """Every node active again, and every worker engine running and ready."""
        for node in client.api.nodes():
            if node["Spec"].get("Availability") != "active":
                set_availability(client, node["ID"], "active")
        run_cluster("up", str(len(self.workers)))
        wait_for_nodes(client, {w.name for w in self.workers}, "ready")


def run_cluster(*args: str) -> str:
    done = subprocess.run(
        ["bash", str(CLUSTER_SH), *args], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def read_cluster() -> Cluster:
    facts = dict(line.split("=", 1) for line in run_cluster("env").splitlines() if "=" in line)
    state = Path(facts["CLUSTER_STATE_DIR"])
    names = facts["CLUSTER_WORKERS"].split()
    sockets = facts["CLUSTER_WORKER_SOCKETS"].split()
    return Cluster(
        manager_addr=facts["CLUSTER_MANAGER_ADDR"],
        registry=facts["CLUSTER_REGISTRY"],
        workers=tuple(
            Worker(name, socket, state / f"w{name.removeprefix('dtc-w')}")
            for name, socket in zip(names, sockets, strict=True)
        ),
    )


def nodes_by_name(client: Any) -> dict[str, dict[str, Any]]:
    return {n["Description"]["Hostname"]: n for n in client.api.nodes()}


def manager_name(client: Any) -> str:
    return str(client.info()["Name"])


def set_availability(client: Any, node_id: str, availability: str) -> None:
    node = client.api.inspect_node(node_id)
    spec = dict(node["Spec"])
    spec["Availability"] = availability
    client.api.update_node(node_id, node["Version"]["Index"], spec)


def wait_for_nodes(client: Any, names: set[str], state: str) -> None:
    deadline = time.monotonic() + NODE_SECONDS
    while True:
        nodes = nodes_by_name(client)
        found = {n: nodes[n]["Status"]["State"] for n in names if n in nodes}
        if all(found.get(n) == state for n in names):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes not {state} after {NODE_SECONDS:.0f} s: {found}")
        time.sleep(0.5)


def cluster_is_up(client: Any) -> bool:
    swarm = client.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        return False
    workers = [n for n in client.api.nodes() if n["Spec"].get("Role") == "worker"]
    return len(workers) >= WORKERS and all(n["Status"]["State"] == "ready" for n in workers)


@pytest.fixture(scope="session")
def cluster(docker_client: Any) -> Iterator[Cluster]:
    """One manager (the main engine) and two workers, with a registry every node trusts."""
    made = not cluster_is_up(docker_client)
    if made:
        run_cluster("up", str(WORKERS))
    try:
        found = read_cluster()
        wait_for_nodes(docker_client, {w.name for w in found.workers}, "ready")
        yield found
    finally:
        if made:
            run_cluster("down")


@pytest.fixture
def healthy_cluster(cluster: Cluster, docker_client: Any) -> Iterator[Cluster]:
    """The cluster, healed after the test (nodes active, engines running), pass or fail."""
    yield cluster
    cluster.heal(docker_client)
