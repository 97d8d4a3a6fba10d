"""Replacing an app's processes on the real engine: a failed switch leaves exactly what ran
before, and the next deploy recovers from whatever a failed or killed one left."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.engine import Engine
from dokku_tasks.errors import EngineError, cleanup_line
from dokku_tasks.pipeline import DeployRequest, deploy
from tests.conftest import BASE_IMAGE, Captured, write_app
from tests.deploys import APP_LABEL, DOCKERFILE, WEB_ONLY, dokku, error_lines, retire_now

pytestmark = pytest.mark.engine

PROCESS_LABEL = "com.dokku.process-type"
FOREIGN_LABEL = "com.dokku-tasks.test-foreign"


def process_containers(client: Any, app: str) -> dict[str, tuple[str, str]]:
    """name -> (id, status) of every process container of ``app``."""
    found = client.containers.list(all=True, filters={"label": f"{APP_LABEL}={app}"})
    return {c.name: (c.id, c.status) for c in found if c.labels.get(PROCESS_LABEL)}


@pytest.fixture
def foreign(docker_client: Any) -> Iterator[list[Any]]:
    """Containers a test starts that are not the app's; removed at the end."""
    started: list[Any] = []
    yield started
    for container in started:
        container.remove(force=True)


def test_a_name_taken_by_another_container_is_refused_before_anything_starts(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, foreign: list[Any]
) -> None:
    squatter = docker_client.containers.run(
        BASE_IMAGE,
        ["sleep", "600"],
        name=f"{engine_app}.web.1",
        labels={FOREIGN_LABEL: "1"},
        detach=True,
    )
    foreign.append(squatter)
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY})
    for _ in range(3):
        done = dokku(root, "deploy", engine_app, "--source", str(source))
        assert done.returncode == 1
        assert error_lines(done.stderr) == [
            f" !     Container name {engine_app}.web.1 is taken by container "
            f"{squatter.id[:12]}, which is not a process of {engine_app}: remove or rename "
            "it, then deploy again"
        ]
        # Nothing of the app runs, however often it is retried.
        assert process_containers(docker_client, engine_app) == {}
    squatter.remove(force=True)
    foreign.clear()
    done = dokku(root, "deploy", engine_app, "--source", str(source))
    assert done.returncode == 0, done.stderr
    assert list(process_containers(docker_client, engine_app)) == [f"{engine_app}.web.1"]


def test_a_failure_during_the_switch_leaves_exactly_what_ran_before(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    captured: Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY + "worker: sleep 3600\n"}
    files["app.json"] = '{"formation": {"web": {"quantity": 2}, "worker": {"quantity": 1}}}'
    source = write_app(tmp_path / "src", files)
    deploy(DeployRequest(app=engine_app, source=source), root=root, output=captured.output)
    before = process_containers(docker_client, engine_app)
    assert sorted(before) == [
        f"{engine_app}.web.1",
        f"{engine_app}.web.2",
        f"{engine_app}.worker.1",
    ]

    # The engine refuses the last rename of the switch, after the old containers stepped
    # aside and two new ones took their names.
    real_rename = Engine.rename

    def failing_rename(self: Engine, container_id: str, name: str) -> None:
        if name == f"{engine_app}.worker.1" and container_id != before[name][0]:
            raise EngineError(f"Cannot rename container {container_id[:12]} to {name}: refused")
        real_rename(self, container_id, name)

    monkeypatch.setattr(Engine, "rename", failing_rename)
    changed = write_app(tmp_path / "changed", {**files, "Dockerfile": DOCKERFILE + "ENV V=2\n"})
    with pytest.raises(EngineError, match="refused") as failure:
        deploy(DeployRequest(app=engine_app, source=changed), root=root, output=captured.output)
    assert cleanup_line(failure.value) is None
    assert process_containers(docker_client, engine_app) == before
    assert all(status == "running" for _, status in before.values())

    monkeypatch.setattr(Engine, "rename", real_rename)
    deploy(DeployRequest(app=engine_app, source=changed), root=root, output=captured.output)
    retire_now(root)
    after = process_containers(docker_client, engine_app)
    assert sorted(after) == sorted(before)
    assert not set(c for c, _ in after.values()) & set(c for c, _ in before.values())


def test_the_next_deploy_replaces_what_failed_and_killed_deploys_left(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY})
    assert dokku(root, "deploy", engine_app, "--source", str(source)).returncode == 0
    image = docker_client.images.get(f"dokku/{engine_app}:latest").id
    labels = {APP_LABEL: engine_app, PROCESS_LABEL: "web", "dokku_phase_script": ""}
    # What earlier versions left after a failed switch: a new container under its temporary
    # name and an old one under its retired name, both running.
    for name in (f"{engine_app}.web.1.{uuid.uuid4().hex[:8]}", f"{engine_app}.web.1.retired-x"):
        docker_client.containers.run(
            image, ["sleep", "3600"], name=name, labels=labels, detach=True
        )
    assert len(process_containers(docker_client, engine_app)) == 3
    done = dokku(root, "deploy", engine_app, "--source", str(source))
    assert done.returncode == 0, done.stderr
    # Every one of them was handed to the retirement, which the test does not wait for.
    assert retire_now(root) == 3
    assert list(process_containers(docker_client, engine_app)) == [f"{engine_app}.web.1"]


def test_a_stopped_old_container_that_cannot_be_renamed_is_removed(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    captured: Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY})
    deploy(DeployRequest(app=engine_app, source=source), root=root, output=captured.output)
    old = docker_client.containers.get(f"{engine_app}.web.1")
    old.stop(timeout=1)
    real_rename = Engine.rename

    def broken_rename(self: Engine, container_id: str, name: str) -> None:
        # What an engine that restarted says of a container whose sandbox it lost.
        if container_id == old.id:
            raise EngineError(
                f"Cannot rename container {container_id[:12]} to {name}: sandbox not found"
            )
        real_rename(self, container_id, name)

    monkeypatch.setattr(Engine, "rename", broken_rename)
    result = deploy(DeployRequest(app=engine_app, source=source), root=root, output=captured.output)
    assert result.ok
    containers = process_containers(docker_client, engine_app)
    assert list(containers) == [f"{engine_app}.web.1"]
    assert containers[f"{engine_app}.web.1"][0] != old.id


def test_a_running_old_container_that_cannot_be_renamed_fails_the_switch(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    captured: Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY})
    deploy(DeployRequest(app=engine_app, source=source), root=root, output=captured.output)
    before = process_containers(docker_client, engine_app)

    def broken_rename(self: Engine, container_id: str, name: str) -> None:
        raise EngineError(f"Cannot rename container {container_id[:12]} to {name}: refused")

    monkeypatch.setattr(Engine, "rename", broken_rename)
    with pytest.raises(EngineError, match="refused"):
        deploy(DeployRequest(app=engine_app, source=source), root=root, output=captured.output)
    assert process_containers(docker_client, engine_app) == before
