"""The deploy pipeline without Docker: a fake engine and a fake scheduler, real plugins.

What is pinned here is the pipeline's own logic: the order of phases and steps, the refusal
of a commit outside predeploy, ``deploy_finished`` on every outcome, a failure stopping the
deploy before scheduling with the tag unmoved, the once-only postdeploy marker, an early
refusal that builds nothing, host steps in the record, and plugin output reaching the sink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.errors import (
    ChecksFailedError,
    DeployRefusedError,
    DokkuTasksError,
    PluginError,
    TaskFailedError,
    UsageError,
)
from dokku_tasks.events import PhaseStarted
from dokku_tasks.hookspecs import hookimpl
from dokku_tasks.manager import get_plugin_manager
from dokku_tasks.models import AppFile, DeployContext, DeployResult, ImageInfo, Task
from dokku_tasks.pipeline import DeployRequest, deploy
from dokku_tasks.properties import GLOBAL, PropertyStore
from dokku_tasks.scheduling import (
    ProcessCheck,
    ProcessSpec,
    StartedProcess,
    TaskIO,
    TaskOwner,
    TaskRun,
    TaskSpec,
)
from dokku_tasks.specs import ExecOutcome, Interruption
from tests.conftest import Captured, write_app


class FakeEngine:
    """The engine calls the pipeline makes, recorded; images are names in a dict."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.tags: dict[str, str] = {}
        self.built = 0
        self.closed = False

    def image_id(self, ref: str) -> str | None:
        return self.tags.get(ref)

    def build(
        self,
        context: Path,
        labels: Mapping[str, str],
        on_line: Callable[[str], None],
        on_rebuild: Callable[[str], None] | None = None,
    ) -> str:
        self.built += 1
        self.calls.append("build")
        on_line("Step 1/1 : FROM scratch")
        return f"sha256:built{self.built}"

    def image(self, ref: str) -> ImageInfo:
        image_id = self.tags.get(ref, ref)
        return ImageInfo(
            ref=ref, id=image_id, entrypoint=None, cmd=["sleep"], workdir="/app", labels={}
        )

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.calls.append(f"tag {repository}:{tag}")
        self.tags[f"{repository}:{tag}"] = image

    def untag(self, ref: str) -> None:
        self.tags.pop(ref, None)

    def prune_images(self, app: str, keep: Sequence[str]) -> int:
        self.calls.append("prune")
        return 0

    def remove_image_if_untagged(self, image_id: str) -> bool:
        self.calls.append(f"remove if untagged {image_id}")
        return image_id not in self.tags.values()

    def later(self, step: Callable[[], None], lane: str = "containers") -> None:
        step()

    def close(self) -> None:
        self.closed = True


class FakeScheduler:
    """Runs tasks by looking their command up in ``exits`` (0 when absent)."""

    name = "fake"
    can_commit = True

    def __init__(self, log: list[str], exits: Mapping[str, int]) -> None:
        self.log = log
        self.exits = exits
        self.commits = 0
        self.probe = FakeProbe()
        self.argvs: dict[str, tuple[str, ...] | None] = {}

    def remove_stale_tasks(self, app: str, owner: TaskOwner) -> int:
        self.log.append("remove stale")
        return 0

    def run_task(self, spec: TaskSpec, io: TaskIO) -> TaskRun:
        self.log.append(f"{spec.task.phase}: {spec.task.command}")
        io.started(f"container-{len(self.log)}")
        io.stdout(f"ran {spec.task.command}")
        code = self.exits.get(spec.task.command, 0)
        committed = None
        if spec.task.commit and code == 0:
            self.commits += 1
            committed = f"sha256:committed{self.commits}"
        return TaskRun(f"container-{len(self.log)}", code, committed)

    def image_reference(self, image: ImageInfo) -> str:
        return ""

    def nodes_of(self, names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        return tuple(() for _ in names)

    def deploy_processes(
        self,
        app: str,
        image: ImageInfo,
        processes: Sequence[ProcessSpec],
        options: Any,
        check: ProcessCheck | None = None,
    ) -> tuple[str, ...]:
        self.log.append(f"processes on {image.id}")
        self.argvs = {p.process_type: p.argv for p in processes}
        started = [
            StartedProcess(p.process_type, 1, f"{app}.{p.process_type}.1", f"new-{p.process_type}")
            for p in processes
            if p.quantity
        ]
        if check is not None:
            check(started, self.probe)
        return tuple(p.name for p in started)


class FakeProbe:
    """Every container runs; commands succeed.  ``looked_at`` lists the containers probed."""

    def __init__(self) -> None:
        self.looked_at: list[str] = []

    def state(self, container_id: str) -> Mapping[str, Any]:
        self.looked_at.append(container_id)
        return {"Running": True, "Restarting": False, "ExitCode": 0}

    def exec(self, container_id: str, argv: Sequence[str], timeout: float) -> ExecOutcome:
        return ExecOutcome(0, "")


class Harness:
    """A plugin manager with the built-ins, the fake scheduler selected, and recorders."""

    def __init__(self, root: Path, exits: Mapping[str, int] | None = None) -> None:
        self.root = root
        self.log: list[str] = []
        self.finished: list[DeployResult] = []
        self.engine = FakeEngine()
        self.scheduler = FakeScheduler(self.log, exits or {})
        self.pm = get_plugin_manager(entrypoints=False, blocked=())
        harness = self

        class Recorder:
            @hookimpl
            def register_schedulers(self, register: Any) -> None:
                register("fake", lambda **_: harness.scheduler)

            @hookimpl
            def deploy_finished(self, result: DeployResult) -> None:
                harness.finished.append(result)

        self.pm.register(Recorder(), "recorder")
        # The checks plugin's default wait is 10 s; these tests are about the pipeline.
        PropertyStore(root).set("checks", GLOBAL, "default-wait", "0")

    def engine_factory(self, interruption: Interruption) -> FakeEngine:
        return self.engine

    def deploy(self, source: Path, captured: Captured) -> DeployResult:
        return deploy(
            DeployRequest(app="web", source=source, scheduler="fake"),
            root=self.root,
            output=captured.output,
            pm=self.pm,
            engine=self.engine_factory,  # type: ignore[arg-type]
        )


PROCFILE = "release: ./migrate\nweb: ./serve\n"
APP_JSON = {
    "scripts": {
        "dokku": {"predeploy": "./compile", "postdeploy": "./warm"},
        "postdeploy": "./seed",
    }
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_app(
        tmp_path / "src",
        {"Dockerfile": "FROM scratch\n", "Procfile": PROCFILE, "app.json": APP_JSON},
    )


def test_phases_run_in_order_around_the_switch(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)
    result = harness.deploy(source, captured)
    assert result.ok
    assert harness.log == [
        "remove stale",
        "predeploy: ./compile",
        "release: ./migrate",
        "processes on sha256:committed1",
        "postdeploy: ./warm",
        "heroku.postdeploy: ./seed",
    ]
    assert harness.engine.tags["dokku/web:latest"] == "sha256:committed1"
    assert result.image == "sha256:committed1"
    assert result.containers == ("web.web.1",)
    assert [t.phase for t in result.tasks] == [
        "predeploy",
        "release",
        "postdeploy",
        "heroku.postdeploy",
    ]
    assert [t.plugin for t in result.tasks] == ["app-json", "procfile", "app-json", "app-json"]
    assert harness.finished == [result]
    assert harness.engine.closed
    # The once-only postdeploy is marked, and does not run again.
    harness.log.clear()
    harness.deploy(source, captured)
    assert "heroku.postdeploy: ./seed" not in harness.log
    assert "postdeploy: ./warm" in harness.log


def test_a_failed_release_stops_before_scheduling(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root, exits={"./migrate": 3})
    with pytest.raises(TaskFailedError) as failure:
        harness.deploy(source, captured)
    assert failure.value.message == "Execution of release task failed: ./migrate (exit status 3)"
    assert not any(entry.startswith("processes") for entry in harness.log)
    assert "dokku/web:latest" not in harness.engine.tags
    # What a retry needs is kept under the failed tag; the failure is in the record.
    assert harness.engine.tags["dokku/web:failed"] == "sha256:committed1"
    [result] = harness.finished
    assert not result.ok and result.error == failure.value.message
    assert failure.value.result == result


def test_a_failed_postdeploy_keeps_the_once_only_run(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root, exits={"./warm": 1})
    with pytest.raises(TaskFailedError):
        harness.deploy(source, captured)
    assert "heroku.postdeploy: ./seed" not in harness.log  # never reached
    harness.scheduler.exits = {}
    harness.log.clear()
    harness.deploy(source, captured)
    assert "heroku.postdeploy: ./seed" in harness.log


def after_a_failed_release(
    root: Path, source: Path, captured: Captured, exits: Mapping[str, int]
) -> Harness:
    """A harness whose first deploy failed in release (``dokku/web:failed`` is
    ``sha256:committed1``), set to run ``exits`` next, with one log of tasks and engine calls."""
    harness = Harness(root, exits={"./migrate": 3})
    with pytest.raises(TaskFailedError):
        harness.deploy(source, captured)
    assert harness.engine.tags["dokku/web:failed"] == "sha256:committed1"
    harness.scheduler.exits = exits
    harness.log.clear()
    harness.engine.calls = harness.log
    return harness


def test_images_are_pruned_beside_postdeploy_and_a_freed_failed_image_after(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = after_a_failed_release(root, source, captured, exits={})
    harness.deploy(source, captured)
    switch = harness.log.index("tag dokku/web:latest")
    assert harness.log[switch + 1 :] == [
        "prune",
        "postdeploy: ./warm",
        "heroku.postdeploy: ./seed",
        "remove if untagged sha256:committed1",
    ]
    assert "dokku/web:failed" not in harness.engine.tags


def test_a_deploy_that_fails_before_the_switch_prunes_at_its_end(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root, exits={"./migrate": 3})
    harness.engine.calls = harness.log
    with pytest.raises(TaskFailedError):
        harness.deploy(source, captured)
    assert harness.log[-3:] == ["release: ./migrate", "tag dokku/web:failed", "prune"]
    assert harness.log.count("prune") == 1


def test_a_failed_postdeploy_was_pruned_beside_and_frees_nothing(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = after_a_failed_release(root, source, captured, exits={"./warm": 1})
    with pytest.raises(TaskFailedError):
        harness.deploy(source, captured)
    switch = harness.log.index("tag dokku/web:latest")
    assert harness.log[switch + 1 :] == ["prune", "postdeploy: ./warm"]
    # What an earlier failed deploy left for a retry stays: this one made no newer image
    # than the one it deployed.
    assert harness.engine.tags["dokku/web:failed"] == "sha256:committed1"


def test_a_committing_task_outside_predeploy_is_refused(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)

    class Sneaky:
        @hookimpl
        def release(self) -> Task:
            return Task(phase="release", command="./sneak", source="sneaky", commit=True)

    harness.pm.register(Sneaky(), "sneaky")
    with pytest.raises(PluginError) as failure:
        harness.deploy(source, captured)
    assert failure.value.message == (
        "Plugin 'sneaky' failed in hook release: returned a committing release task"
    )
    assert "release: ./sneak" not in harness.log


def test_a_plugin_refuses_before_anything_is_built(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)

    class Freeze:
        @hookimpl
        def deploy_started(self, app: str, output: Any) -> None:
            output.step(f"Checking whether {app} is frozen")
            raise DeployRefusedError(f"{app} is frozen")

    harness.pm.register(Freeze(), "freeze")
    with pytest.raises(DeployRefusedError) as refusal:
        harness.deploy(source, captured)
    assert refusal.value.message == "Deploy refused by plugin 'freeze': web is frozen"
    assert harness.engine.built == 0 and harness.log == []
    assert captured.stdout == "-----> Checking whether web is frozen\n"
    assert not (root / "apps" / "web").exists()


def test_host_steps_are_recorded_and_print_through_the_deploy_output(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)

    class Snapshot:
        @hookimpl
        def release(self, app: str, context: DeployContext) -> None:
            context.output.step(f"Snapshotting the database of {app}")
            context.output.info("snapshot written")

    harness.pm.register(Snapshot(), "snapshot")
    result = harness.deploy(source, captured)
    lines = captured.stdout.splitlines()
    assert "-----> Snapshotting the database of web" in lines
    assert (
        lines[lines.index("-----> Snapshotting the database of web") + 1]
        == "       snapshot written"
    )
    steps = [(s.plugin, s.hook, s.ok) for s in result.steps]
    assert ("snapshot", "release", True) in steps
    assert steps.index(("snapshot", "release", True)) < steps.index(
        ("app-json", "post_deploy", True)
    )
    assert all(s.duration >= 0 for s in result.steps)


def test_the_build_output_and_task_output_reach_the_sink(
    root: Path, source: Path, captured: Captured
) -> None:
    Harness(root).deploy(source, captured)
    lines = captured.stdout.splitlines()
    assert "       Step 1/1 : FROM scratch" in lines
    assert "       ran ./migrate" in lines
    assert lines[-1] == "=====> Application deployed: web"


class Reader:
    """A third-party plugin that reads a file of its own and runs a release task from it."""

    def __init__(self, name: str = "deploy.toml", path: str = "config/deploy.toml") -> None:
        self.name = name
        self.path = path
        self.seen: list[object] = []

    @hookimpl
    def app_files(self, app: str, properties: Any) -> list[AppFile]:
        return [
            AppFile(
                name=self.name,
                path=self.path,
                parse=lambda data: data.decode().strip().upper(),
                setting="deploy.toml path",
                max_bytes=16,
            )
        ]

    @hookimpl
    def release(self, context: DeployContext) -> Task | None:
        self.seen.append(context.files.get(self.name))
        return None


def test_a_plugin_reads_a_file_of_its_own(root: Path, source: Path, captured: Captured) -> None:
    (source / "config").mkdir()
    (source / "config" / "deploy.toml").write_text("hello\n")
    harness = Harness(root)
    reader = Reader()
    harness.pm.register(reader, "reader")
    assert harness.deploy(source, captured).ok
    assert reader.seen == ["HELLO"]


def test_a_missing_file_is_left_out(root: Path, source: Path, captured: Captured) -> None:
    harness = Harness(root)
    reader = Reader()
    harness.pm.register(reader, "reader")
    assert harness.deploy(source, captured).ok
    assert reader.seen == [None]


def test_a_plugins_file_limit_is_its_own(root: Path, source: Path, captured: Captured) -> None:
    (source / "config").mkdir()
    (source / "config" / "deploy.toml").write_text("x" * 17)
    harness = Harness(root)
    harness.pm.register(Reader(), "reader")
    with pytest.raises(
        DokkuTasksError, match=r"^Invalid deploy\.toml: .* is 17 bytes, over the limit"
    ):
        harness.deploy(source, captured)
    assert harness.engine.built == 0


def test_a_file_two_plugins_name_fails_naming_the_second(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)
    harness.pm.register(Reader(name="Procfile", path="Procfile"), "reader")
    with pytest.raises(PluginError) as failure:
        harness.deploy(source, captured)
    assert failure.value.plugin_name in {"reader", "procfile"}
    assert "names file 'Procfile', which another plugin reads" in failure.value.message
    assert harness.engine.built == 0


def test_a_plugin_returning_no_app_files_is_named(
    root: Path, source: Path, captured: Captured
) -> None:
    class Wrong:
        @hookimpl
        def app_files(self) -> list[str]:
            return ["app.json"]

    harness = Harness(root)
    harness.pm.register(Wrong(), "wrong")
    with pytest.raises(PluginError) as failure:
        harness.deploy(source, captured)
    assert failure.value.plugin_name == "wrong"
    assert "expected a list of AppFiles or None" in failure.value.message


def test_without_the_file_plugins_nothing_is_read(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    # A Procfile that would not parse and an app.json that would not either: neither is read.
    source = write_app(
        tmp_path / "bare",
        {"Dockerfile": "FROM scratch\n", "Procfile": "\x00", "app.json": "{"},
    )
    harness = Harness(root)
    harness.pm.unregister(name="app-json")
    harness.pm.unregister(name="procfile")
    assert harness.deploy(source, captured).ok
    assert harness.log == ["remove stale", "processes on sha256:built1"]
    assert not [step for step in harness.pm.hook.app_files.get_hookimpls()]


# -- processes -------------------------------------------------------------------------------


def test_a_process_runs_the_procfile_commands_words(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": "FROM scratch\n",
            "Procfile": "web: python3 -u web.py --port $PORT 'two words'\nworker: ./work $GREETING\n",
            "app.json": {"formation": {"worker": {"quantity": 1}}},
        },
    )
    harness = Harness(root)
    deploy(
        DeployRequest(app="web", source=source, scheduler="fake", env={"GREETING": "hi there"}),
        root=root,
        output=captured.output,
        pm=harness.pm,
        engine=harness.engine_factory,  # type: ignore[arg-type]
    )
    assert harness.scheduler.argvs == {
        "web": ("python3", "-u", "web.py", "--port", "5000", "two words"),
        # A config value expanded into a command is not split again by a shell: it is the
        # words of the expanded command, as Dokku's shellquote.Split makes them.
        "worker": ("./work", "hi", "there"),
    }


def test_a_command_that_does_not_split_fails_before_anything_starts(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    source = write_app(
        tmp_path / "src", {"Dockerfile": "FROM scratch\n", "Procfile": "web: echo 'open\n"}
    )
    harness = Harness(root)
    with pytest.raises(DokkuTasksError) as failure:
        harness.deploy(source, captured)
    assert failure.value.message == (
        "Cannot split command for the web process: No closing quotation: echo 'open"
    )
    assert not any(entry.startswith("processes") for entry in harness.log)


def test_process_types_missing_from_the_procfile_are_skipped_with_a_warning(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    source = write_app(
        tmp_path / "src",
        {"Dockerfile": "FROM scratch\n", "Procfile": "web: ./serve\nclock: ./tick\n"},
    )
    harness = Harness(root)
    harness.deploy(source, captured)
    assert "Skipping" not in captured.stderr
    (source / "Procfile").write_text("worker: ./work\n")
    harness.deploy(source, captured)
    assert captured.stderr.splitlines() == [
        " !     Skipping clock as it is missing from the current Procfile",
        " !     Skipping web as it is missing from the current Procfile",
    ]
    assert PropertyStore(root).get("common", "web", "process-types") == "worker"


class CheckRecorder:
    """A checks plugin that records what it was asked to check, and may fail."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def check_processes(self, app: str, processes: Sequence[StartedProcess], probe: Any) -> None:
        for process in processes:
            self.seen.append((app, process.dyno, process.container_id))
            probe.state(process.container_id)
        if self.fail:
            raise ChecksFailedError("web.1 failed its checks", process="web.1")


def test_new_processes_are_checked_before_the_switch(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)
    recorder = CheckRecorder()
    harness.pm.register(recorder, "recorder-checks")
    harness.deploy(source, captured)
    assert recorder.seen == [("web", "web.1", "new-web")]
    assert "new-web" in harness.scheduler.probe.looked_at


def test_a_failed_check_fails_the_deploy_before_the_tag_moves_and_postdeploy(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)
    harness.pm.register(CheckRecorder(fail=True), "recorder-checks")
    with pytest.raises(ChecksFailedError) as failure:
        harness.deploy(source, captured)
    assert failure.value.message == "web.1 failed its checks"
    assert "dokku/web:latest" not in harness.engine.tags
    assert "postdeploy: ./warm" not in harness.log
    assert PropertyStore(root).get("common", "web", "deployed") != "true"


def test_a_check_that_crashes_is_named(root: Path, source: Path, captured: Captured) -> None:
    class Broken:
        @hookimpl
        def check_processes(self) -> None:
            raise RuntimeError("boom")

    harness = Harness(root)
    harness.pm.register(Broken(), "broken-checks")
    with pytest.raises(PluginError) as failure:
        harness.deploy(source, captured)
    assert failure.value.plugin_name == "broken-checks"
    assert "boom" in failure.value.message


# -- --skip ----------------------------------------------------------------------------------


def skip_deploy(harness: Harness, source: Path, captured: Captured, *skip: str) -> DeployResult:
    return deploy(
        DeployRequest(app="web", source=source, scheduler="fake", skip=skip),
        root=harness.root,
        output=captured.output,
        pm=harness.pm,
        engine=harness.engine_factory,  # type: ignore[arg-type]
    )


def test_a_skipped_phase_runs_no_hook_and_no_task(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)
    result = skip_deploy(harness, source, captured, "release")
    assert harness.log == [
        "remove stale",
        "predeploy: ./compile",
        "processes on sha256:committed1",
        "postdeploy: ./warm",
        "heroku.postdeploy: ./seed",
    ]
    assert "-----> Skipping release phase (--skip release)\n" in captured.stdout
    assert "Checking for release task" not in captured.stdout
    assert [(s.plugin, s.hook) for s in result.steps if s.hook == "release"] == []
    from dokku_tasks import history

    [record], _ = history.list_deploys(root, "web")
    assert record.request["skip"] == ["release"]
    assert PhaseStarted("release", skipped="--skip") in history.read_events(root, "web", 1)


def test_skipping_the_once_only_postdeploy_keeps_it_for_later(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)
    skip_deploy(harness, source, captured, "heroku.postdeploy")
    assert "heroku.postdeploy: ./seed" not in harness.log
    assert "postdeploy: ./warm" in harness.log
    assert "-----> Skipping heroku.postdeploy phase (--skip heroku.postdeploy)\n" in (
        captured.stdout
    )
    harness.log.clear()
    harness.deploy(source, captured)
    assert "heroku.postdeploy: ./seed" in harness.log


def test_skipping_predeploy_commits_nothing(root: Path, source: Path, captured: Captured) -> None:
    harness = Harness(root)
    result = skip_deploy(harness, source, captured, "predeploy", "postdeploy")
    assert harness.log == ["remove stale", "release: ./migrate", "processes on sha256:built1"]
    assert result.image == "sha256:built1"
    assert harness.scheduler.commits == 0


def test_an_unknown_phase_to_skip_is_refused_before_anything(
    root: Path, source: Path, captured: Captured
) -> None:
    harness = Harness(root)
    with pytest.raises(UsageError) as refused:
        skip_deploy(harness, source, captured, "relase")
    assert refused.value.message == (
        "Unknown phase 'relase' to skip: expected one of predeploy, release, postdeploy, "
        "heroku.postdeploy"
    )
    assert harness.log == [] and harness.engine.built == 0
