"""The checks plugin against the real engine: exec'd command and HTTP checks, the socket
table, the default wait, and ``checks:run`` on running process containers.

Every container carries the test's unique app label, so the ``engine_app`` fixture removes it
whether the test passed or not.  Waits are 1 s.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dokku_tasks import manager
from dokku_tasks.apps import AppRegistry
from dokku_tasks.cli import cli
from dokku_tasks.engine import Engine
from dokku_tasks.errors import ChecksFailedError
from dokku_tasks.models import AppJson, Healthcheck
from dokku_tasks.plugins import checks
from dokku_tasks.properties import PropertyStore
from dokku_tasks.scheduling import StartedProcess
from dokku_tasks.specs import APP_LABEL, PROCESS_LABEL, ContainerSpec
from tests.conftest import BASE_IMAGE, Captured

pytestmark = pytest.mark.engine

#: A web process: busybox httpd serving one page on port 5000.
HTTPD = (
    "sh",
    "-c",
    "mkdir -p /www && echo 'hello from web' > /www/index.html && exec httpd -f -p 5000 -h /www",
)
SLEEPER = ("sleep", "600")


@pytest.fixture
def engine(docker_client: Any) -> Iterator[Engine]:
    connected = Engine.connect()
    yield connected
    connected.close()


@pytest.fixture
def store(root: Path, engine_app: str) -> PropertyStore:
    AppRegistry(root).create(engine_app)
    properties = PropertyStore(root)
    properties.set("checks", engine_app, "default-wait", "1")
    properties.set("checks", engine_app, "wait", "1")
    return properties


def start(
    engine: Engine,
    app: str,
    command: Sequence[str],
    process_type: str = "web",
    index: int = 1,
    image: str = BASE_IMAGE,
) -> StartedProcess:
    """Create and start a process container of ``app`` named as the switch names it."""
    name = f"{app}.{process_type}.{index}"
    env = {"PORT": "5000"} if process_type == "web" else {}
    container_id = engine.create(
        ContainerSpec(
            image=image,
            command=command,
            env=env,
            labels={APP_LABEL: app, PROCESS_LABEL: process_type},
            name=name,
        )
    )
    engine.start(container_id)
    return StartedProcess(
        process_type, index, name, container_id, 5000 if process_type == "web" else None
    )


def run(
    engine: Engine,
    store: PropertyStore,
    app: str,
    captured: Captured,
    processes: Sequence[StartedProcess],
    *healthchecks: Healthcheck,
) -> None:
    app_json = AppJson(healthchecks={"web": healthchecks}) if healthchecks else None
    checks.run_checks(app, processes, engine, store, app_json, captured.output)


def test_a_command_check_passes_and_fails_through_a_real_exec(
    engine: Engine, store: PropertyStore, engine_app: str, captured: Captured
) -> None:
    web = start(engine, engine_app, ("sh", "-c", "touch /tmp/ready && exec sleep 600"))
    ready = Healthcheck(type="startup", name="ready", command=("test", "-f", "/tmp/ready"))
    run(engine, store, engine_app, captured, [web], ready)
    assert "       Healthcheck succeeded name='ready'" in captured.stdout.splitlines()

    broken = Healthcheck(
        type="startup", name="broken", command=("sh", "-c", "echo broken >&2; exit 3"), attempts=2
    )
    with pytest.raises(ChecksFailedError) as info:
        run(engine, store, engine_app, captured, [web], broken)
    assert info.value.message == (
        "Pre-flight checks failed (web.1): healthcheck 'broken' failed after 2 attempts: "
        "exit status 3; output: broken"
    )


def test_an_http_check_requests_the_page_inside_the_container(
    engine: Engine, store: PropertyStore, engine_app: str, captured: Captured
) -> None:
    web = start(engine, engine_app, HTTPD)
    page = Healthcheck(type="startup", name="home", path="/", content="hello from web")
    run(engine, store, engine_app, captured, [web], page)
    assert "       Healthcheck succeeded name='home'" in captured.stdout.splitlines()

    missing = Healthcheck(type="startup", name="missing", path="/missing", attempts=1)
    with pytest.raises(ChecksFailedError) as info:
        run(engine, store, engine_app, captured, [web], missing)
    assert info.value.message.startswith(
        "Pre-flight checks failed (web.1): healthcheck 'missing' failed after 1 attempt: "
        "wget exit status 1 for http://127.0.0.1:5000/missing; output: "
    )
    assert "404" in info.value.message


def test_a_listening_check_reads_the_containers_own_socket_table(
    engine: Engine, store: PropertyStore, engine_app: str, captured: Captured
) -> None:
    web = start(engine, engine_app, HTTPD)
    run(engine, store, engine_app, captured, [web], Healthcheck(type="startup", listening=True))
    other = Healthcheck(type="startup", listening=True, port=6000, attempts=1)
    with pytest.raises(ChecksFailedError, match="nothing listens on port 6000"):
        run(engine, store, engine_app, captured, [web], other)


def test_a_process_that_exits_at_once_fails_the_default_wait(
    engine: Engine, store: PropertyStore, engine_app: str, captured: Captured
) -> None:
    web = start(engine, engine_app, SLEEPER)
    worker = start(engine, engine_app, ("sh", "-c", "exit 7"), "worker")
    with pytest.raises(ChecksFailedError) as info:
        run(engine, store, engine_app, captured, [web, worker])
    assert info.value.message == (
        "Pre-flight checks failed (worker.1): healthcheck 'default' failed after 1 attempt: "
        "container not running after 1 seconds (exit status 7)"
    )
    assert "       Waiting for 1 seconds (web.1, worker.1)" in captured.stdout.splitlines()


def test_checks_run_reads_the_healthchecks_from_the_deployed_image(
    engine: Engine,
    store: PropertyStore,
    engine_app: str,
    build_image: Any,
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app_json = {
        "healthchecks": {
            "web": [{"type": "startup", "name": "page", "path": "/", "content": "hello"}]
        }
    }
    image = build_image(
        f"FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY app.json /app/app.json\n",
        {"app.json": json.dumps(app_json)},
    )
    docker_client.images.get(image).tag(f"dokku/{engine_app}", "latest")
    start(engine, engine_app, HTTPD, image=image)
    start(engine, engine_app, SLEEPER, "worker", image=image)
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(()))
    monkeypatch.delenv(manager.DISABLE_ENV, raising=False)
    root = str(store.root)

    result = CliRunner().invoke(cli, ["--root", root, "checks:run", engine_app])
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "-----> Running pre-flight checks"
    assert "       Healthcheck succeeded name='page'" in lines
    assert "       Waiting for 1 seconds (worker.1)" in lines

    result = CliRunner().invoke(cli, ["--root", root, "checks:run", engine_app, "web.2"])
    assert result.exit_code == 1
    assert result.stderr == f" !     Invalid container index specified ({engine_app}.web.2)\n"
