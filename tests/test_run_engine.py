"""``run`` on the real engine: a one-off command in the deployed image, end to end through the
CLI in a child process.

Pinned here: the command's exit status and raw output, nothing left behind (after success, a
timeout or a Ctrl-C), config values visible to the command but in no container or image
configuration, the ENTRYPOINT rule, the history record, an app never deployed, and a deploy
that leaves a live run alone.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APP_LABEL, write_app
from tests.deploys import (
    DOCKERFILE,
    ENTRYPOINT_DOCKERFILE,
    PASSTHROUGH,
    WEB_ONLY,
    LiveDeploy,
    dokku,
    dokku_cmd,
    task_containers,
)

pytestmark = pytest.mark.engine


@pytest.fixture
def engine_app(docker_client: Any, app_name: str) -> Iterator[str]:
    """The shared fixture's app name, cleaned up without asking the swarm: a run makes no
    service, so these tests need no swarm (nor a healthy one) on the engine."""
    import docker

    yield app_name
    for container in docker_client.containers.list(
        all=True, filters={"label": f"{APP_LABEL}={app_name}"}
    ):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for _ in range(3):  # a committed image depends on the built one: children first
        images = docker_client.images.list(filters={"label": f"{APP_LABEL}={app_name}"})
        images += docker_client.images.list(name=f"dokku/{app_name}")
        if not images:
            break
        for image in images:
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(image.id, force=True)


def deployed(root: Path, app: str, directory: Path, dockerfile: str = DOCKERFILE) -> Path:
    files: dict[str, str | dict[str, Any]] = {"Dockerfile": dockerfile, "Procfile": WEB_ONLY}
    if dockerfile == ENTRYPOINT_DOCKERFILE:
        files["entrypoint"] = PASSTHROUGH
    source = write_app(directory, files)
    done = dokku(root, "deploy", app, "--source", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    return source


def app_containers(client: Any, app: str) -> list[str]:
    found = client.containers.list(all=True, filters={"label": f"{APP_LABEL}={app}"})
    return sorted(c.name for c in found)


def test_a_run_passes_its_status_and_output_and_leaves_nothing(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    deployed(root, engine_app, tmp_path / "src")
    done = dokku(root, "run", engine_app, "--", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert done.returncode == 5, done.stderr
    assert done.stdout == "out\n"
    assert done.stderr == "err\n"
    assert task_containers(docker_client, engine_app) == []
    assert app_containers(docker_client, engine_app) == [f"{engine_app}.web.1"]

    # Recorded like a deploy: listed, shown and replayed.
    listed = dokku(root, "deploys:list", engine_app, "--format", "json")
    records = json.loads(listed.stdout)
    assert [r["id"] for r in records] == [2, 1]
    run = records[0]
    assert run["status"] == "failed"
    assert run["error"] == "Command exited with status 5"
    assert run["request"]["kind"] == "run"
    assert run["request"]["command"] == "sh -c 'echo out; echo err >&2; exit 5'"
    logs = dokku(root, "deploys:logs", engine_app, "2")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "       out\n"
    assert logs.stderr == " !     err\n"


def test_a_config_value_reaches_the_command_and_no_configuration(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    deployed(root, engine_app, tmp_path / "src")
    secret = f"s3cret-{uuid.uuid4().hex}"
    env_file = tmp_path / "app.env"
    env_file.write_text("FROM_FILE='a  b'\n")
    child = LiveDeploy(
        dokku_cmd(
            root,
            "run",
            engine_app,
            "-e",
            f"SECRET={secret}",
            "--env-file",
            str(env_file),
            "--",
            "sh",
            "-c",
            'echo "secret=$SECRET file=$FROM_FILE"; sleep 3',
        )
    )
    live.append(child)
    child.wait_for("secret=")
    # While it runs: its container's configuration (what a commit or `docker inspect` shows)
    # does not hold the value.
    [container] = task_containers(docker_client, engine_app)
    assert container.labels["dokku_phase_script"] == "run"
    assert secret not in json.dumps(docker_client.api.inspect_container(container.id))
    assert child.finish() == 0, child.stderr
    assert child.out == [f"secret={secret} file=a  b"]
    for image in docker_client.images.list(name=f"dokku/{engine_app}"):
        assert secret not in json.dumps(docker_client.api.inspect_image(image.id))
    # The history keeps the names of the values, and the command's own output; nothing else.
    record = json.loads((root / "history" / engine_app / "2.json").read_text())
    assert record["request"]["env_keys"] == ["FROM_FILE", "SECRET"]
    assert secret not in json.dumps(record)
    events = (root / "history" / engine_app / "2.events.jsonl").read_text().splitlines()
    assert [json.loads(e)["event"] for e in events if secret in e] == ["task_output"]
    assert task_containers(docker_client, engine_app) == []


def test_an_entrypoint_gets_the_words_and_the_config(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    deployed(root, engine_app, tmp_path / "src", ENTRYPOINT_DOCKERFILE)
    done = dokku(root, "run", engine_app, "echo", "a  b", "$HOME")
    assert (done.returncode, done.stdout) == (0, "a  b $HOME\n"), done.stderr
    done = dokku(root, "run", engine_app, "-e", "X=1", "sh", "-c", "echo x=$X")
    assert (done.returncode, done.stdout) == (0, "x=1\n"), done.stderr
    assert task_containers(docker_client, engine_app) == []


def test_an_app_never_deployed_is_one_line(docker_client: Any, engine_app: str, root: Path) -> None:
    created = dokku(root, "apps:create", engine_app)
    assert created.returncode == 0, created.stderr
    done = dokku(root, "run", engine_app, "--", "true")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f" !     App {engine_app} has not been deployed\n"
    assert app_containers(docker_client, engine_app) == []


def test_a_timeout_exits_124_within_seconds_and_leaves_nothing(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    deployed(root, engine_app, tmp_path / "src")
    began = time.monotonic()
    done = dokku(root, "run", engine_app, "--task-timeout", "1", "--", "sleep", "30")
    assert done.returncode == 124, done.stderr
    assert time.monotonic() - began < 10
    assert done.stderr == f" !     Run of {engine_app} timed out after 1 seconds: sleep 30\n"
    assert task_containers(docker_client, engine_app) == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_and_removes_its_container(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    live: list[LiveDeploy],
    signum: int,
    code: int,
) -> None:
    deployed(root, engine_app, tmp_path / "src")
    child = LiveDeploy(
        dokku_cmd(root, "run", engine_app, "--", "sh", "-c", "echo started; sleep 30")
    )
    live.append(child)
    child.wait_for("started")
    signalled = time.monotonic()
    child.signal(signum)
    assert child.finish() == code
    assert time.monotonic() - signalled < 8
    name = signal.Signals(signum).name
    assert child.err == [
        f" !     Run of {engine_app} interrupted by {name}; its container was removed"
    ]
    assert task_containers(docker_client, engine_app) == []
    listed = dokku(root, "deploys:list", engine_app, "--format", "json")
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"


def test_a_deploy_leaves_a_live_run_alone(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    source = deployed(root, engine_app, tmp_path / "src")
    child = LiveDeploy(
        dokku_cmd(
            root, "run", engine_app, "--", "sh", "-c", "echo started; sleep 4; echo done; exit 3"
        )
    )
    live.append(child)
    child.wait_for("started")
    again = dokku(root, "deploy", engine_app, "--source", str(source))
    assert again.returncode == 0, again.stderr
    assert "stale task container" not in again.stdout
    assert child.finish() == 3, child.stderr
    assert child.out == ["started", "done"]
    assert task_containers(docker_client, engine_app) == []
