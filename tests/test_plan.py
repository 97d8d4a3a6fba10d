"""deploy --plan without Docker: what it resolves, and that it changes nothing and calls no
phase hook."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.errors import LayersUnreadableError
from dokku_tasks.hookspecs import hookimpl
from dokku_tasks.models import Task
from dokku_tasks.pipeline import DeployRequest
from dokku_tasks.plan import Plan, plan
from dokku_tasks.specs import ImageFile
from tests.conftest import Captured, write_app
from tests.test_pipeline import APP_JSON, PROCFILE, FakeEngine, Harness


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


class LayerlessEngine(FakeEngine):
    """An engine whose image layers are not readable here (remote, another driver)."""

    def read_image_files_in_place(
        self, image: str, base: str, paths: Sequence[str], limit: int | None = None
    ) -> dict[str, ImageFile]:
        raise LayersUnreadableError("the engine stores images with the vfs driver")


class LayeredEngine(FakeEngine):
    """An engine whose image holds ``files`` (relative to its WORKDIR, /app)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files = files
        self.reads: list[tuple[str, str, list[str], int | None]] = []

    def read_image_files_in_place(
        self, image: str, base: str, paths: Sequence[str], limit: int | None = None
    ) -> dict[str, ImageFile]:
        self.reads.append((image, base, list(paths), limit))
        return {
            path: ImageFile("file", data=self.files[path], resolved=f"{base}/{path}")
            if path in self.files
            else ImageFile("missing", resolved=f"{base}/{path}")
            for path in paths
        }


def test_an_image_deploy_plans_the_tasks_of_the_files_in_the_image(root: Path) -> None:
    harness = Harness(root)
    engine = LayeredEngine(
        {"app.json": json.dumps(APP_JSON).encode(), "Procfile": b"web: ./serve\n"}
    )
    harness.engine = engine
    result = planned(harness, None, image="sha256:img")
    assert result.files_read and result.unresolved == ()
    assert result.files == {
        "app.json": "/app/app.json in the image",
        "Procfile": "/app/Procfile in the image",
    }
    assert [(p.phase, [t.command for t in p.tasks]) for p in result.phases] == [
        ("predeploy", ["./compile"]),
        ("release", []),
        ("postdeploy", ["./warm", "./seed"]),
    ]
    assert all(t.rule == "shell: no ENTRYPOINT" for p in result.phases for t in p.tasks)
    assert [(p.process_type, p.argv) for p in result.processes] == [("web", ("./serve",))]
    # One read of both files, with the deploy's limit (the larger of the two files').
    [(image, base, paths, limit)] = engine.reads
    assert (image, base, paths) == ("sha256:img", "/app", ["Procfile", "app.json"])
    assert limit == 1024 * 1024
    assert ("info", "No release task") in result.lines()


def test_a_file_missing_from_the_image_is_named_with_where_it_was_looked_for(root: Path) -> None:
    harness = Harness(root)
    harness.engine = LayeredEngine({"Procfile": b"release: ./migrate\nweb: ./serve\n"})
    result = planned(harness, None, image="sha256:img")
    assert result.files["app.json"] == "none at /app/app.json in the image"
    assert [t.command for p in result.phases for t in p.tasks] == ["./migrate"]


def test_an_image_deploy_whose_layers_cannot_be_read_says_what_is_not_resolved(
    root: Path,
) -> None:
    harness = Harness(root)
    harness.engine = LayerlessEngine()
    result = planned(harness, None, image="sha256:img")
    assert not result.files_read
    assert all(not p.tasks for p in result.phases)
    assert result.processes == ()
    lines = result.lines()
    assert ("info", "its tasks come from the files read at deploy time") in lines
    assert ("info", "known only at deploy time, from the files read then") in lines
    assert result.files["app.json"].startswith("not read: read from app.json under the image")
    assert result.unresolved == (
        "Procfile, app.json (the image's layers cannot be read on this host: the engine stores "
        "images with the vfs driver): the tasks they declare, the process types and their "
        "checks are known only at deploy time (give --source too to plan them)",
    )
    assert ("step", f"Not resolved: {result.unresolved[0]}") in lines
