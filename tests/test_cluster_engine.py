"""The swarm scheduler on a real three-node swarm: the main engine as manager, two worker
engines in network namespaces, and a registry (scripts/cluster.sh, tests/cluster.py).

What only a cluster shows: the image reaches every node through the registry, processes spread
over the nodes, a task runs exactly once cluster-wide with its output streamed from the node
that ran it, and a node lost or drained mid-deploy leaves nothing half done.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks import history
from dokku_tasks.events import ProcessesScheduled
from tests.cluster import (
    Cluster,
    manager_name,
    nodes_by_name,
    set_availability,
)
from tests.conftest import APP_LABEL, BASE_IMAGE
from tests.deploys import dokku, dokku_cmd, error_lines

pytestmark = [pytest.mark.engine, pytest.mark.cluster]

TASK_LABEL = "dokku_phase_script"


@pytest.fixture
def app_image(build_image: Any) -> Any:
    """An image whose app.json sets the web formation and whose Procfile has a release."""

    def make(
        release: str = "echo release-out", web: int = 3, extra: dict[str, Any] | None = None
    ) -> str:
        app_json = {"formation": {"web": {"quantity": web}}, **(extra or {})}
        return str(
            build_image(
                f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n',
                {
                    "app.json": json.dumps(app_json),
                    "Procfile": f"release: {release}\nweb: sleep 3600\n",
                },
            )
        )

    return make


def swarm_app(root: Path, app: str, cluster: Cluster) -> None:
    """An app on the swarm scheduler that pushes to the cluster's registry."""
    assert dokku(root, "apps:create", app).returncode == 0
    assert dokku(root, "scheduler:set", app, "selected", "swarm").returncode == 0
    assert dokku(root, "registry:set", app, "server", cluster.registry).returncode == 0


def deploy(root: Path, app: str, image: str, *args: str) -> subprocess.CompletedProcess[str]:
    return dokku(root, "deploy", app, "--image", image, *args)


def running_nodes(client: Any, app: str, process_type: str = "web") -> list[str]:
    """The node names of the process service's running tasks (one entry per task)."""
    names = {n["ID"]: n["Description"]["Hostname"] for n in client.api.nodes()}
    tasks = client.api.tasks(filters={"service": f"{app}-{process_type}"})
    return sorted(
        names[t["NodeID"]]
        for t in tasks
        if t["Status"]["State"] == "running" and t["DesiredState"] == "running"
    )


def job_services(client: Any, app: str) -> list[Any]:
    found = client.services.list(filters={"label": f"{APP_LABEL}={app}"})
    return [s for s in found if s.attrs["Spec"]["Labels"].get(TASK_LABEL)]


@pytest.fixture
def manager_drained(healthy_cluster: Cluster, docker_client: Any) -> Iterator[Cluster]:
    """Nothing placed on the manager: every task and process runs on a worker."""
    manager = nodes_by_name(docker_client)[manager_name(docker_client)]
    set_availability(docker_client, manager["ID"], "drain")
    yield healthy_cluster  # healthy_cluster makes every node active again


def registry_digest(registry: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


def test_the_image_is_pushed_and_processes_spread_over_every_node(
    cluster: Cluster, docker_client: Any, app_image: Any, engine_app: str, root: Path
) -> None:
    swarm_app(root, engine_app, cluster)
    image = app_image(web=3)
    done = deploy(root, engine_app, image)
    assert done.returncode == 0, done.stderr

    # The push, for real: the registry holds the tag, and the digest the deploy printed and
    # recorded is the registry's.
    short = docker_client.images.get(image).id.split(":")[1][:12]
    repository = f"dokku/{engine_app}"
    digest = registry_digest(cluster.registry, repository, short)
    reference = f"{cluster.registry}/{repository}:{short}@{digest}"
    assert f"       Image pushed as {reference}" in done.stdout.splitlines()
    (scheduled,) = [
        e for e in history.read_events(root, engine_app, 1) if isinstance(e, ProcessesScheduled)
    ]
    assert scheduled.reference == reference
    service = docker_client.api.inspect_service(f"{engine_app}-web")
    assert service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == reference

    # Three replicas on three nodes: the swarm spreads them, each node pulled the image.
    every_node = sorted([manager_name(docker_client), *(w.name for w in cluster.workers)])
    assert running_nodes(docker_client, engine_app) == every_node
    assert f"       Running {engine_app}-web on {', '.join(every_node)}" in done.stdout


def test_a_release_and_a_postdeploy_run_once_cluster_wide_with_their_output(
    manager_drained: Cluster,
    docker_client: Any,
    app_image: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
) -> None:
    # Every node shares this machine's file system: a bind mount counts runs cluster-wide.
    runs = tmp_path / "runs"
    runs.mkdir()
    swarm_app(root, engine_app, manager_drained)
    image = app_image(
        release="echo release-out; echo release >> /runs/log",
        web=2,
        extra={"scripts": {"dokku": {"postdeploy": "echo postdeploy-out; echo post >> /runs/log"}}},
    )
    done = deploy(root, engine_app, image, "--volume", f"{runs}:/runs")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("       release-out") == 1
    assert lines.count("       postdeploy-out") == 1
    assert (runs / "log").read_text().splitlines() == ["release", "post"]
    assert job_services(docker_client, engine_app) == []
    # The manager is drained: both jobs ran on a worker, their output came from there.
    workers = sorted(w.name for w in manager_drained.workers)
    assert set(running_nodes(docker_client, engine_app)) <= set(workers)


def test_a_worker_lost_during_a_release_fails_the_deploy_and_leaves_the_app_as_it_was(
    manager_drained: Cluster, docker_client: Any, app_image: Any, engine_app: str, root: Path
) -> None:
    swarm_app(root, engine_app, manager_drained)
    assert deploy(root, engine_app, app_image(web=2)).returncode == 0
    before = docker_client.api.inspect_service(f"{engine_app}-web")

    image = app_image(release="echo started; sleep 300", web=2)
    process = subprocess.Popen(
        dokku_cmd(root, "deploy", engine_app, "--image", image),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "started":
                break
        (job,) = job_services(docker_client, engine_app)
        (task,) = docker_client.api.tasks(filters={"service": job.id})
        node = next(
            n["Description"]["Hostname"]
            for n in docker_client.api.nodes()
            if n["ID"] == task["NodeID"]
        )
        manager_drained.worker(node).kill_engine()
        began = time.monotonic()
        _, stderr = process.communicate(timeout=120)
        lost_after = time.monotonic() - began
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1
    assert error_lines(stderr) == [
        f" !     The release job was lost: its node {node} went down while it ran "
        "(it was not run again elsewhere)"
    ]
    assert lost_after < 60
    assert job_services(docker_client, engine_app) == []
    after = docker_client.api.inspect_service(f"{engine_app}-web")
    assert after["Version"] == before["Version"]
    assert after["Spec"] == before["Spec"]


def test_a_worker_drained_during_a_deploy_leaves_the_processes_on_the_others(
    manager_drained: Cluster, docker_client: Any, app_image: Any, engine_app: str, root: Path
) -> None:
    swarm_app(root, engine_app, manager_drained)
    workers = sorted(w.name for w in manager_drained.workers)
    assert deploy(root, engine_app, app_image(web=2)).returncode == 0
    assert running_nodes(docker_client, engine_app) == workers

    drained, remaining = workers
    nodes = nodes_by_name(docker_client)
    # Drain the first worker while the release runs (before the processes are updated).
    timer = threading.Timer(1.0, set_availability, (docker_client, nodes[drained]["ID"], "drain"))
    timer.start()
    try:
        done = deploy(root, engine_app, app_image(release="sleep 4", web=2))
    finally:
        timer.join()
    assert done.returncode == 0, done.stderr
    assert running_nodes(docker_client, engine_app) == [remaining, remaining]
    assert f"       Running {engine_app}-web on {remaining}" in done.stdout.splitlines()


def test_apps_destroy_removes_services_and_containers_on_every_node(
    cluster: Cluster, docker_client: Any, app_image: Any, engine_app: str, root: Path
) -> None:
    swarm_app(root, engine_app, cluster)
    assert deploy(root, engine_app, app_image(web=3)).returncode == 0
    assert len(set(running_nodes(docker_client, engine_app))) == 3

    assert dokku(root, "apps:destroy", engine_app, "--force").returncode == 0
    assert docker_client.services.list(filters={"label": f"{APP_LABEL}={engine_app}"}) == []
    label = {"label": f"{APP_LABEL}={engine_app}"}
    deadline = time.monotonic() + 60
    clients = [w.client() for w in cluster.workers]
    try:
        while True:
            left = {
                w.name: len(c.containers.list(all=True, sparse=True, filters=label))
                for w, c in zip(cluster.workers, clients, strict=True)
            }
            left["manager"] = len(
                docker_client.containers.list(all=True, sparse=True, filters=label)
            )
            if not any(left.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        for client in clients:
            client.close()
    assert left == {**{w.name: 0 for w in cluster.workers}, "manager": 0}


HTTP_WEB = "busybox httpd -f -p 5000 -h /app/www"


def test_checks_run_against_replicas_on_both_workers_and_a_failing_one_rolls_back(
    manager_drained: Cluster, docker_client: Any, build_image: Any, engine_app: str, root: Path
) -> None:
    def image(version: str, check_path: str) -> str:
        app_json = {
            "formation": {"web": {"quantity": 2}},
            "healthchecks": {
                "web": [{"type": "startup", "path": check_path, "content": version, "attempts": 3}]
            },
        }
        return str(
            build_image(
                f"FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\n",
                {
                    "app.json": json.dumps(app_json),
                    "Procfile": f"web: {HTTP_WEB}\n",
                    "www/index.html": f"{version}\n",
                },
            )
        )

    swarm_app(root, engine_app, manager_drained)
    workers = sorted(w.name for w in manager_drained.workers)
    good = image("version-1", "/")
    done = deploy(root, engine_app, good)
    assert done.returncode == 0, done.stderr
    assert running_nodes(docker_client, engine_app) == workers
    serving = docker_client.api.inspect_service(f"{engine_app}-web")["Spec"]

    bad = image("version-2", "/missing")
    failed = deploy(root, engine_app, bad)
    assert failed.returncode == 1
    assert "web" in failed.stderr and "rolled back" in failed.stderr, failed.stderr
    # The old version runs again on both workers.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        spec = docker_client.api.inspect_service(f"{engine_app}-web")["Spec"]
        if (
            spec["TaskTemplate"]["ContainerSpec"]["Image"]
            == serving["TaskTemplate"]["ContainerSpec"]["Image"]
            and running_nodes(docker_client, engine_app) == workers
        ):
            break
        time.sleep(0.5)
    assert (
        spec["TaskTemplate"]["ContainerSpec"]["Image"]
        == serving["TaskTemplate"]["ContainerSpec"]["Image"]
    )
    assert running_nodes(docker_client, engine_app) == workers
