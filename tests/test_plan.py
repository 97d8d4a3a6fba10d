"""deploy --plan without Docker: what it resolves, and that it changes nothing and calls no
phase hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.hookspecs import hookimpl
from dokku_tasks.models import Task
from dokku_tasks.pipeline import DeployRequest
from dokku_tasks.plan import Plan, plan
from tests.conftest import Captured, write_app
from tests.test_pipeline import APP_JSON, PROCFILE, Harness


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_app(
        tmp_path / "src",
        {"Dockerfile": "FROM scratch\n", "Procfile": PROCFILE, "app.json": APP_JSON},
    )


def planned(harness: Harness, source: Path | None, **request: Any) -> Plan:
    return plan(
        DeployRequest(app="web", source=source, scheduler="fake", **request),
        root=harness.root,
        pm=harness.pm,
        engine=harness.engine_factory,
    )


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_plan_of_a_fresh_app_lists_every_task_and_changes_nothing(
    root: Path, source: Path
) -> None:
    harness = Harness(root)
    before = tree(root)
    result = planned(harness, source)
    assert tree(root) == before
    assert harness.log == [] and harness.engine.calls == [] and harness.engine.built == 0
    assert result.image == f"built from {source}/Dockerfile at deploy time"
    assert result.first_deploy
    assert [(p.phase, [t.command for t in p.tasks]) for p in result.phases] == [
        ("predeploy", ["./compile"]),
        ("release", ["./migrate"]),
        ("postdeploy", ["./warm", "./seed"]),
    ]
    [compile_task] = result.phases[0].tasks
    assert (compile_task.commit, compile_task.argv) == (True, None)
    assert compile_task.rule == "decided by the ENTRYPOINT of the image built at deploy time"
    assert [(p.process_type, p.quantity, p.argv) for p in result.processes] == [
        ("web", 1, ("./serve",)),
    ]
    assert result.processes[0].checks == "must stay up 0 s (default-wait)"
    assert result.files == {"app.json": f"{source}/app.json", "Procfile": f"{source}/Procfile"}


def test_an_image_gives_argv_and_its_rule(root: Path, source: Path) -> None:
    harness = Harness(root)
    result = planned(harness, source, image="sha256:img")
    [task] = result.phases[1].tasks
    assert task.rule == "shell: no ENTRYPOINT"
    assert task.argv is not None and task.argv[-1] == "set -e; set -o pipefail || true; ./migrate"


def test_once_only_postdeploy_and_skips_are_explained(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)
    harness.deploy(source, captured)
    result = planned(harness, source, skip=("release",))
    assert not result.first_deploy
    assert [t.command for t in result.phases[2].tasks] == ["./warm"]
    assert result.notes == (
        "heroku.postdeploy: skipped: it runs once, and the app's first deploy is done",
    )
    assert result.phases[1].skipped == "--skip release"
    lines = result.lines()
    assert ("info", "skipped: --skip release") in lines
    assert ("step", "Image: built from " + f"{source}/Dockerfile at deploy time") in lines


def test_a_plugin_whose_phase_hook_cannot_be_planned_is_named_and_never_called(
    root: Path, source: Path
) -> None:
    called: list[str] = []

    class Snapshot:
        @hookimpl
        def release(self) -> Task | None:
            called.append("release")
            return None

    class Notifier:
        @hookimpl
        def post_deploy(self) -> None:
            called.append("post_deploy")

        @hookimpl
        def plan_tasks(self, hook: str) -> Task | None:
            if hook == "post_deploy":
                return Task(phase="postdeploy", command="./notify", source="notifier")
            return None

    harness = Harness(root)
    harness.pm.register(Snapshot(), "snapshot")
    harness.pm.register(Notifier(), "notifier")
    result = planned(harness, source)
    assert called == []
    assert result.phases[1].unplanned == ("snapshot",)
    assert "./notify" in [t.command for t in result.phases[2].tasks]
    assert ("info", "plugin snapshot: its tasks are known only when it runs") in result.lines()


def test_an_image_deploy_says_its_files_are_read_at_deploy_time(root: Path) -> None:
    harness = Harness(root)
    result = planned(harness, None, image="sha256:img")
    assert not result.files_read
    assert all(not p.tasks for p in result.phases)
    assert ("info", "its tasks come from the files read at deploy time") in result.lines()
    assert result.files["app.json"].startswith("read from app.json under the image's WORKDIR")
