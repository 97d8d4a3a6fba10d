"""Stale-task clean-up on the real engine reaps only what no live deploy owns."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_app
from tests.deploys import (
    DOCKERFILE,
    WEB_ONLY,
    LiveDeploy,
    dokku,
    dokku_cmd,
    predeploy,
    task_containers,
)

pytestmark = pytest.mark.engine

OWNER_LABEL = "com.dokku-tasks.state-root"


def test_a_deploy_under_another_state_root_leaves_a_live_task_alone(
    docker_client: Any, engine_app: str, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    slow = write_app(
        tmp_path / "slow",
        {
            "Dockerfile": DOCKERFILE,
            "Procfile": WEB_ONLY,
            "app.json": predeploy("echo task-is-up; sleep 6; echo task-is-done"),
        },
    )
    first = LiveDeploy(dokku_cmd(root_a, "deploy", engine_app, "--source", str(slow)))
    live.append(first)
    first.wait_for("       task-is-up")
    [running] = task_containers(docker_client, engine_app)
    assert running.labels[OWNER_LABEL] == str(root_a.absolute())

    # The same app name under another root (a second CI job on the host): its stale-task
    # clean-up runs, then its own predeploy fails, so its processes never meet the first's.
    failing = write_app(
        tmp_path / "failing", {"Dockerfile": DOCKERFILE, "app.json": predeploy("exit 3")}
    )
    second = dokku(root_b, "deploy", engine_app, "--source", str(failing))
    assert second.returncode == 1
    assert "stale task" not in second.stdout

    assert first.finish() == 0, first.stderr
    assert "       task-is-done" in first.stdout.splitlines()


def test_a_killed_deploy_of_another_root_is_reaped(
    docker_client: Any, engine_app: str, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    slow = write_app(
        tmp_path / "slow",
        {
            "Dockerfile": DOCKERFILE,
            "Procfile": WEB_ONLY,
            "app.json": predeploy("echo task-is-up; sleep 60"),
        },
    )
    killed = LiveDeploy(dokku_cmd(root_a, "deploy", engine_app, "--source", str(slow)))
    live.append(killed)
    killed.wait_for("       task-is-up")
    killed.signal(signal.SIGKILL)
    killed.finish()
    assert len(task_containers(docker_client, engine_app)) == 1

    # Its lock went with the process: nothing owns the container any more.
    good = write_app(tmp_path / "good", {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY})
    began = time.monotonic()
    done = dokku(root_b, "deploy", engine_app, "--source", str(good))
    assert done.returncode == 0, done.stderr
    assert (
        f"-----> Removed 1 stale task container(s) left by an interrupted deploy of {engine_app}"
        in done.stdout.splitlines()
    )
    assert task_containers(docker_client, engine_app) == []
    assert time.monotonic() - began < 60
