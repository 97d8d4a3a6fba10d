"""The swarm scheduler's checks on a one-node swarm of the real engine.

app.json ``startup`` healthchecks become the service's health check, ``default-wait`` the
update's monitor window; a deploy whose new tasks fail them fails with one line while the swarm
rolls the service back, and redeploys of a checked web process lose no request.

The module's fixture makes this engine a one-node swarm when it is not one, and leaves the
swarm again afterwards.  Services, containers and images are removed by the app's label, and
the test's overlay network after them, pass or fail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bench_zero_downtime import WEB_SH, dockerfile, measure
from dokku_tasks.errors import ChecksFailedError
from dokku_tasks.pipeline import DeployRequest, deploy
from dokku_tasks.properties import PropertyStore
from tests.conftest import APP_LABEL, Captured, remove_app_resources
from tests.deploys import dokku

pytestmark = [pytest.mark.engine, pytest.mark.swarm]

#: The web page's check: two attempts a second apart, as quick as a failure can be.
HOME_PAGE = {
    "type": "startup",
    "name": "home page",
    "path": "/",
    "wait": 1,
    "timeout": 2,
    "attempts": 2,
}


@pytest.fixture
def web_image(build_image: Any) -> Any:
    """An image of the busybox httpd web app serving ``version N``, with ``healthchecks``."""

    def make(
        version: str,
        healthchecks: list[dict[str, Any]] | None = None,
        web: str = "/app/web.sh",
        start_delay: float = 0,
    ) -> str:
        app_json = {"healthchecks": {"web": healthchecks}} if healthchecks else {}
        return str(
            build_image(
                dockerfile(version),
                {
                    "app.json": json.dumps(app_json),
                    "Procfile": f"web: {web}\n",
                    "web.sh": WEB_SH.replace("START_DELAY", f"{start_delay:g}"),
                },
            )
        )

    return make


@pytest.fixture
def network(docker_client: Any, swarm: None, engine_app: str) -> Iterator[str]:
    """An attachable overlay network, removed after the app's services and containers."""
    import docker.errors

    name = f"{engine_app}-net"
    docker_client.networks.create(
        name, driver="overlay", attachable=True, labels={APP_LABEL: engine_app}
    )
    yield name
    remove_app_resources(docker_client, engine_app)
    for _ in range(50):  # tasks leave the network a moment after their service goes
        try:
            docker_client.networks.get(name).remove()
        except docker.errors.NotFound:
            break
        except docker.errors.APIError:
            time.sleep(0.2)


def swarm_deploy(root: Path, app: str, image: str, network: str | None = None) -> None:
    deploy(
        DeployRequest(app=app, image=image, scheduler="swarm", network=network),
        root=root,
        output=Captured().output,
    )


def image_id(client: Any, image: str) -> str:
    return str(client.images.get(image).id)


def web_service(client: Any, app: str) -> dict[str, Any]:
    return dict(client.api.inspect_service(f"{app}-web"))


def serving(client: Any, app: str, image: str, timeout: float = 30) -> list[dict[str, Any]]:
    """The web service's running tasks of ``image``, waited for (the swarm rolls back)."""
    reference = f"dokku/{app}:{image_id(client, image).split(':')[-1][:12]}"
    deadline = time.monotonic() + timeout
    while True:
        running = [
            t
            for t in client.api.tasks(filters={"service": f"{app}-web"})
            if t["Status"]["State"] == "running"
            and t["DesiredState"] == "running"
            and t["Spec"]["ContainerSpec"]["Image"].startswith(reference)
        ]
        if running or time.monotonic() > deadline:
            return running
        time.sleep(0.2)


def test_a_failing_http_healthcheck_fails_the_deploy_and_the_old_version_keeps_running(
    docker_client: Any, swarm: None, web_image: Any, engine_app: str, root: Path
) -> None:
    good = web_image("1", [{**HOME_PAGE, "content": "version 1"}])
    swarm_deploy(root, engine_app, good)

    spec = web_service(docker_client, engine_app)["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["Healthcheck"]["Test"][0] == "CMD-SHELL"
    assert "http://127.0.0.1:5000/" in container["Healthcheck"]["Test"][1]
    assert container["Healthcheck"]["Interval"] == 1_000_000_000
    assert container["Healthcheck"]["Retries"] == 2
    assert "DYNO=web.{{.Task.Slot}}" in container["Env"]
    assert "PORT=5000" in container["Env"]
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"
    assert spec["UpdateConfig"]["Order"] == "start-first"
    (task,) = serving(docker_client, engine_app, good)
    task_container = docker_client.api.inspect_container(
        task["Status"]["ContainerStatus"]["ContainerID"]
    )
    assert "DYNO=web.1" in task_container["Config"]["Env"]
    assert task_container["State"]["Health"]["Status"] == "healthy"

    bad = web_image("2", [{**HOME_PAGE, "content": "version 2 is missing"}])
    done = dokku(root, "deploy", engine_app, "--image", bad, "--scheduler", "swarm")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        " !     Pre-flight checks failed (web.1): healthcheck 'home page' failed after 2 "
        "attempts: exit status 1; output: unable to find expected content in response body: "
        f"version 2 is missing; service {engine_app}-web rolled back to its previous version"
    ]
    assert serving(docker_client, engine_app, good)
    assert serving(docker_client, engine_app, bad, timeout=0) == []
    current = web_service(docker_client, engine_app)["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert current["Image"].startswith(f"dokku/{engine_app}:")
    assert image_id(docker_client, good).split(":")[-1].startswith(current["Image"].split(":")[-1])
    assert image_id(docker_client, f"dokku/{engine_app}:latest") == image_id(docker_client, good)


def test_a_process_that_exits_at_once_fails_the_default_wait_and_rolls_back(
    docker_client: Any, swarm: None, web_image: Any, engine_app: str, root: Path
) -> None:
    PropertyStore(root).set("checks", engine_app, "default-wait", "1")
    good = web_image("1")
    swarm_deploy(root, engine_app, good)
    spec = web_service(docker_client, engine_app)["Spec"]
    assert "Healthcheck" not in spec["TaskTemplate"]["ContainerSpec"]
    assert spec["UpdateConfig"]["Monitor"] == 1_000_000_000

    crashing = web_image("2", web="sh -c 'exit 3'")
    with pytest.raises(ChecksFailedError) as failure:
        swarm_deploy(root, engine_app, crashing)
    assert failure.value.message == (
        "Pre-flight checks failed (web.1): healthcheck 'default' failed after 1 attempt: "
        f"task stopped within 1 seconds (exit status 3); service {engine_app}-web rolled back "
        "to its previous version"
    )
    assert (failure.value.process, failure.value.check) == ("web.1", "default")
    assert serving(docker_client, engine_app, good)


def test_a_new_service_that_fails_its_command_check_is_removed(
    docker_client: Any, swarm: None, web_image: Any, engine_app: str, root: Path
) -> None:
    check = {"type": "startup", "name": "ping", "command": ["false"], "wait": 1, "attempts": 1}
    image = web_image("1", [check])
    with pytest.raises(ChecksFailedError) as failure:
        swarm_deploy(root, engine_app, image)
    assert failure.value.message == (
        "Pre-flight checks failed (web.1): healthcheck 'ping' failed after 1 attempt: "
        f"exit status 1; service {engine_app}-web removed"
    )
    assert docker_client.services.list(filters={"label": f"{APP_LABEL}={engine_app}"}) == []


def test_redeploys_with_an_http_healthcheck_lose_no_request(
    docker_client: Any, swarm: None, web_image: Any, engine_app: str, root: Path, network: str
) -> None:
    # A web process that serves only 1 s after it starts: without the health check, the
    # swarm would send requests to it at once (see benchmarks/bench_zero_downtime.py).
    images = [
        web_image(str(n), [{**HOME_PAGE, "content": f"version {n}", "attempts": 10}], start_delay=1)
        for n in range(1, 7)
    ]
    result = measure(
        docker_client,
        lambda image: swarm_deploy(root, engine_app, image, network),
        images,
        network,
        f"{engine_app}-web",
        {APP_LABEL: engine_app},
        interval=0.1,
        settle=1.0,
    )
    assert result.failures == 0, result.failure_lines
    assert result.requests > 50
    assert result.versions_seen == [f"version {n}" for n in range(1, 7)]
