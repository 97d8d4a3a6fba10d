"""``run``: one-off commands in the deployed image, without Docker.

The real docker-local scheduler and the real plugins run against a fake engine, so what is
pinned here is what reaches the engine (argv under each ENTRYPOINT rule, config values only
through the env file, labels, owner, timeout), the exit status passed through, the raw output,
the history record, the ownership that keeps a live run safe from a deploy's clean-up, the
signal path, and the CLI's argument splitting.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

from dokku_tasks import history, oneoff
from dokku_tasks.apps import AppRegistry
from dokku_tasks.cli import cli
from dokku_tasks.errors import AppNotFoundError, PropertyError, UsageError
from dokku_tasks.events import (
    DeployFinished,
    DeployStarted,
    Event,
    TaskFinished,
    TaskOutput,
    TaskStarted,
)
from dokku_tasks.hookspecs import hookimpl
from dokku_tasks.locks import lock_path
from dokku_tasks.manager import get_plugin_manager
from dokku_tasks.models import ContainerOptions, DeployContext, ImageInfo, Mount
from dokku_tasks.oneoff import (
    InterruptedRunError,
    NotDeployedError,
    RunResult,
    RunTimeoutError,
    command_words,
)
from dokku_tasks.output import Output
from dokku_tasks.plugins.entrypoint import TASK_PREFIX
from dokku_tasks.properties import GLOBAL, PropertyStore
from dokku_tasks.scheduling import ENV_FILE_TARGET, TaskOwner
from dokku_tasks.specs import (
    APP_LABEL,
    OWNER_LABEL,
    TASK_LABEL,
    ContainerInfo,
    ContainerSpec,
    Interruption,
    RunOutcome,
)
from tests.conftest import Captured

APP = "web"
IMAGE_ID = "sha256:deployed"
AUTO_SHELL = 'if [ -x /bin/bash ]; then exec /bin/bash -c "$1"; fi; exec /bin/sh -c "$1"'


class RunEngine:
    """What the docker-local scheduler asks of the engine for one task, recorded.

    ``lines`` are (stream, line) pairs the container writes; ``during`` runs while it runs.
    """

    def __init__(
        self,
        *,
        deployed: bool = True,
        entrypoint: Sequence[str] | None = None,
        exit_code: int = 0,
        lines: Sequence[tuple[str, str]] = (),
        timed_out: bool = False,
        during: Callable[[RunEngine], None] | None = None,
        listed: Sequence[ContainerInfo] = (),
    ) -> None:
        self.tags = {f"dokku/{APP}:latest": IMAGE_ID} if deployed else {}
        self.entrypoint = entrypoint
        self.exit_code = exit_code
        self.lines = lines
        self.timed_out = timed_out
        self.during = during
        self.listed = list(listed)
        self.created: list[ContainerSpec] = []
        #: The env file's text, read when the container is created (it is gone afterwards).
        self.env_files: list[str] = []
        self.timeouts: list[float | None] = []
        self.removed: list[str] = []
        self.closed = False

    def image_id(self, ref: str) -> str | None:
        return self.tags.get(ref)

    def image(self, ref: str) -> ImageInfo:
        return ImageInfo(
            ref=ref, id=self.tags[ref], entrypoint=self.entrypoint, cmd=["sleep"], workdir="/app"
        )

    def containers(
        self, labels: Mapping[str, str] | None = None, name: str | None = None
    ) -> list[ContainerInfo]:
        return [
            c for c in self.listed if all(c.labels.get(k) == v for k, v in (labels or {}).items())
        ]

    def create(self, spec: ContainerSpec) -> str:
        self.created.append(spec)
        for mount in spec.mounts:
            if mount.target == ENV_FILE_TARGET:
                self.env_files.append(Path(mount.source).read_text())
        return f"container-{len(self.created)}"

    def run(
        self,
        container_id: str,
        on_stdout: Callable[[str], None],
        on_stderr: Callable[[str], None],
        timeout: float | None,
    ) -> RunOutcome:
        self.timeouts.append(timeout)
        for stream, line in self.lines:
            (on_stdout if stream == "stdout" else on_stderr)(line)
        if self.during is not None:
            self.during(self)
        if self.timed_out:
            return RunOutcome(-1, timed_out=True)
        return RunOutcome(self.exit_code)

    def remove(self, container_id: str) -> None:
        self.removed.append(container_id)

    def remove_later(self, container_id: str, stop_first: bool = False) -> None:
        self.removed.append(container_id)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def app_root(root: Path) -> Path:
    AppRegistry(root).create(APP)
    return root


def do_run(
    root: Path,
    engine: RunEngine,
    command: Sequence[str] = ("sh", "-c", "echo out; exit 5"),
    captured: Captured | None = None,
    pm: Any = None,
    sinks: Sequence[Callable[[Event], None]] = (),
    **kwargs: Any,
) -> RunResult:
    output = captured.output if captured is not None else Output(text=False)
    output = attrs.evolve(output, sinks=list(sinks))
    return oneoff.run(
        APP,
        command,
        root=root,
        output=output,
        pm=pm or get_plugin_manager(entrypoints=False, blocked=()),
        engine=lambda interruption: engine,  # type: ignore[arg-type,return-value]
        **kwargs,
    )


def recorded_events(root: Path, deploy_id: int) -> list[Event]:
    return list(history.read_events(root, APP, deploy_id))


# -- the command ------------------------------------------------------------------------------


def test_without_an_entrypoint_the_words_run_through_the_shell(app_root: Path) -> None:
    engine = RunEngine()
    do_run(app_root, engine, ["sh", "-c", "echo $HOME; exit 5"])
    [spec] = engine.created
    script = f"{TASK_PREFIX}sh -c 'echo $HOME; exit 5'"
    assert spec.command == ("/bin/sh", "-c", AUTO_SHELL, "dokku-task", script)
    assert spec.entrypoint is None
    assert spec.image == IMAGE_ID


def test_the_apps_shell_property_is_the_shell(app_root: Path) -> None:
    PropertyStore(app_root).set("scheduler", APP, "shell", "/bin/ash")
    engine = RunEngine()
    do_run(app_root, engine, ["echo", "a  b", "$HOME"])
    assert engine.created[0].command == ("/bin/ash", "-c", f"{TASK_PREFIX}echo 'a  b' '$HOME'")


def test_a_tini_entrypoint_still_gets_the_shell(app_root: Path) -> None:
    engine = RunEngine(entrypoint=["/usr/bin/tini", "--"])
    do_run(app_root, engine, ["ls", "-la"])
    assert engine.created[0].command == (
        "/bin/sh",
        "-c",
        AUTO_SHELL,
        "dokku-task",
        f"{TASK_PREFIX}ls -la",
    )


def test_an_entrypoint_gets_the_exact_words(app_root: Path) -> None:
    engine = RunEngine(entrypoint=["/docker-entrypoint.sh"])
    words = ["sh", "-c", "echo 'it''s'; exit 5", "$HOME", ""]
    do_run(app_root, engine, words)
    [spec] = engine.created
    # No config values: the image's ENTRYPOINT stays, and gets the words unwrapped.
    assert spec.entrypoint is None
    assert spec.command == tuple(words)


def test_config_values_reach_the_container_only_through_the_env_file(app_root: Path) -> None:
    engine = RunEngine(entrypoint=["/docker-entrypoint.sh"])
    do_run(app_root, engine, ["printenv", "SECRET"], env={"SECRET": "s3 cr'et"})
    [spec] = engine.created
    assert spec.env == {}
    [env_mount] = [m for m in spec.mounts if m.target == ENV_FILE_TARGET]
    assert env_mount.read_only
    assert engine.env_files == ["SECRET='s3 cr'\"'\"'et'\n"]
    assert not Path(env_mount.source).exists()  # removed when the run ended
    # The loader execs the image's ENTRYPOINT with the words.
    assert spec.entrypoint is not None and spec.entrypoint[0] == "/bin/sh"
    assert spec.command == ("/docker-entrypoint.sh", "printenv", "SECRET")


def test_mounts_network_labels_and_owner(app_root: Path) -> None:
    engine = RunEngine()
    do_run(app_root, engine, mounts=[Mount("/srv/data", "/data", True)], network="backend")
    [spec] = engine.created
    assert spec.mounts == (Mount("/srv/data", "/data", True),)
    assert spec.network == "backend"
    assert spec.labels == {
        APP_LABEL: APP,
        TASK_LABEL: "run",
        OWNER_LABEL: str(app_root.absolute() / "runs"),
    }
    assert spec.name is None  # a fresh container, named by the engine
    assert engine.removed == ["container-1"] and engine.closed


def test_container_options_are_applied_with_phase_run(app_root: Path) -> None:
    seen: list[tuple[str, str, Mapping[str, str]]] = []

    class Extra:
        @hookimpl
        def container_options(
            self, app: str, context: DeployContext, phase: str
        ) -> ContainerOptions:
            seen.append((app, phase, dict(context.env)))
            return ContainerOptions(
                env={"ADDED": "1"}, mounts=[Mount("/srv/cache", "/cache")], network="plugin-net"
            )

    pm = get_plugin_manager(entrypoints=False, blocked=())
    pm.register(Extra(), "extra")
    engine = RunEngine()
    do_run(app_root, engine, pm=pm, env={"GIVEN": "2"}, network="given-net")
    assert seen == [(APP, "run", {"GIVEN": "2"})]
    [spec] = engine.created
    assert Mount("/srv/cache", "/cache") in spec.mounts
    assert spec.network == "plugin-net"
    assert engine.env_files == ["GIVEN=2\nADDED=1\n"]


# -- timeout ----------------------------------------------------------------------------------


def test_the_timeout_defaults_to_the_scheduler_property(app_root: Path) -> None:
    engine = RunEngine()
    do_run(app_root, engine)
    PropertyStore(app_root).set("scheduler", GLOBAL, "task-timeout", "7")
    do_run(app_root, engine)
    do_run(app_root, engine, task_timeout=2.5)
    assert engine.timeouts == [None, 7.0, 2.5]


def test_a_bad_stored_timeout_is_one_line(app_root: Path) -> None:
    PropertyStore(app_root).set("scheduler", APP, "task-timeout", "soon")
    with pytest.raises(PropertyError, match="task-timeout of web is not valid"):
        do_run(app_root, RunEngine())


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_a_bad_timeout_is_refused(app_root: Path, seconds: float) -> None:
    engine = RunEngine()
    with pytest.raises(UsageError):
        do_run(app_root, engine, task_timeout=seconds)
    assert not engine.created


def test_a_timeout_exits_124_and_removes_the_container(app_root: Path) -> None:
    engine = RunEngine(timed_out=True, lines=[("stdout", "working")])
    events: list[Event] = []
    with pytest.raises(RunTimeoutError) as failure:
        do_run(app_root, engine, ["sleep", "30"], task_timeout=1, sinks=[events.append])
    assert failure.value.exit_code == 124
    assert failure.value.message == "Run of web timed out after 1 seconds: sleep 30"
    assert engine.removed == ["container-1"] and engine.closed
    finished = [e for e in events if isinstance(e, TaskFinished)]
    assert [f.exit_status for f in finished] == [-1]
    assert isinstance(events[-1], DeployFinished) and events[-1].outcome == "failed"
    [record] = history.list_deploys(app_root, APP)[0]
    assert record.status == "failed" and record.error == failure.value.message


# -- status, output, history ------------------------------------------------------------------


def test_the_exit_status_and_the_raw_output(app_root: Path, captured: Captured) -> None:
    engine = RunEngine(
        exit_code=5,
        lines=[("stdout", "out"), ("stdout", ""), ("stderr", "err"), ("stdout", "=====> x")],
    )
    result = do_run(app_root, engine, captured=captured)
    assert result.exit_status == 5 and not result.ok
    assert result.app == APP and result.container_id == "container-1"
    assert result.deploy_id == 1 and result.duration >= 0
    # As the command wrote it: no indent, no frame, blank lines kept.
    assert captured.stdout == "out\n\n=====> x\n"
    assert captured.stderr == "err\n"


def test_a_failed_exit_status_is_not_an_error(app_root: Path) -> None:
    assert do_run(app_root, RunEngine(exit_code=0)).ok
    assert do_run(app_root, RunEngine(exit_code=137)).exit_status == 137


def test_the_run_is_recorded_in_the_history(app_root: Path) -> None:
    engine = RunEngine(exit_code=5, lines=[("stdout", "out"), ("stdout", ""), ("stderr", "err")])
    result = do_run(
        app_root,
        engine,
        ["sh", "-c", "echo out; exit 5"],
        env={"SECRET": "s3cret"},
        mounts=[Mount("/srv/data", "/data")],
        network="backend",
        task_timeout=30,
    )
    [record] = history.list_deploys(app_root, APP)[0]
    assert record.id == result.deploy_id == 1
    assert record.status == "failed"
    assert record.error == "Command exited with status 5"
    assert record.image == IMAGE_ID
    assert record.request == {
        "kind": "run",
        "command": "sh -c 'echo out; exit 5'",
        "source": None,
        "image": IMAGE_ID,
        "mounts": [["/srv/data", "/data", False]],
        "network": "backend",
        "task_timeout": 30,
        "env_keys": ["SECRET"],
    }
    events = recorded_events(app_root, 1)
    assert [type(e) for e in events] == [
        DeployStarted,
        TaskStarted,
        TaskOutput,
        TaskOutput,
        TaskFinished,
        DeployFinished,
    ]
    started = events[1]
    assert isinstance(started, TaskStarted)
    assert started.phase == "run" and started.command == "sh -c 'echo out; exit 5'"
    assert started.rule == "shell: no ENTRYPOINT" and started.container_id == "container-1"
    assert [(e.stream, e.line) for e in events if isinstance(e, TaskOutput)] == [
        ("stdout", "out"),
        ("stderr", "err"),
    ]
    finished = events[4]
    assert isinstance(finished, TaskFinished) and finished.exit_status == 5
    # Never a config value.
    for path in (app_root / "history" / APP).iterdir():
        assert "s3cret" not in path.read_text()


def test_runs_and_deploys_share_the_numbering(app_root: Path) -> None:
    first = do_run(app_root, RunEngine())
    second = do_run(app_root, RunEngine())
    assert (first.deploy_id, second.deploy_id) == (1, 2)
    PropertyStore(app_root).set("deploys", APP, "keep", "2")
    third = do_run(app_root, RunEngine())
    assert third.deploy_id == 3
    assert [r.id for r in history.list_deploys(app_root, APP)[0]] == [3, 2]
    assert (app_root / "locks" / f"{APP}.history.lock").is_file()


def test_a_succeeded_run(app_root: Path) -> None:
    do_run(app_root, RunEngine(), ["true"])
    [record] = history.list_deploys(app_root, APP)[0]
    assert record.status == "succeeded" and record.error is None
    assert record.request["command"] == "true"


def test_an_unwritable_history_does_not_stop_the_run(app_root: Path, captured: Captured) -> None:
    (app_root / "history").write_text("in the way")
    result = do_run(app_root, RunEngine(exit_code=3), captured=captured)
    assert result.exit_status == 3 and result.deploy_id is None
    assert captured.stderr.startswith(" !     History: cannot record this deploy of web")


# -- refusals ---------------------------------------------------------------------------------


def test_an_app_never_deployed(app_root: Path) -> None:
    engine = RunEngine(deployed=False)
    events: list[Event] = []
    with pytest.raises(NotDeployedError) as failure:
        do_run(app_root, engine, sinks=[events.append])
    assert failure.value.message == "App web has not been deployed"
    assert failure.value.exit_code == 1
    assert not engine.created and engine.closed
    assert events == []
    assert not (app_root / "history" / APP).exists()


def test_a_missing_app_exits_20(root: Path) -> None:
    engine = RunEngine()
    with pytest.raises(AppNotFoundError) as failure:
        do_run(root, engine)
    assert failure.value.exit_code == 20
    assert not engine.created


def test_command_words() -> None:
    assert command_words(["ls", "-la"]) == ("ls", "-la")
    with pytest.raises(UsageError, match="run needs a command"):
        command_words([])
    with pytest.raises(UsageError, match="NUL"):
        command_words(["echo", "a\x00b"])
    with pytest.raises(TypeError):
        command_words("ls -la")


# -- ownership --------------------------------------------------------------------------------


def test_a_live_run_is_not_a_deploys_stale_task(app_root: Path) -> None:
    deploy_owner = TaskOwner(app_root.absolute())
    verdicts: list[bool] = []

    def look(engine: RunEngine) -> None:
        verdicts.append(deploy_owner.is_orphan(APP, engine.created[0].labels))

    engine = RunEngine(during=look)
    do_run(app_root, engine)
    # While the run lives a deploy leaves its container alone; once it is over (or killed),
    # what it left is a stale task container the next deploy removes.
    assert verdicts == [False]
    assert deploy_owner.is_orphan(APP, engine.created[0].labels)


def leftover(owner: str) -> ContainerInfo:
    return ContainerInfo(
        id=f"left-by-{owner}",
        name="x",
        labels={APP_LABEL: APP, TASK_LABEL: "run", OWNER_LABEL: owner},
        status="exited",
    )


def test_a_run_removes_what_killed_runs_left(app_root: Path) -> None:
    runs = str(app_root.absolute() / "runs")
    engine = RunEngine(listed=[leftover(runs)])
    do_run(app_root, engine)
    assert engine.removed == ["left-by-" + runs, "container-1"]


@pytest.fixture
def other_live_run(app_root: Path) -> Iterator[None]:
    path = lock_path(app_root / "runs", APP)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        yield
    finally:
        os.close(fd)


def test_a_run_beside_a_live_one_removes_nothing_of_it(
    app_root: Path, other_live_run: None
) -> None:
    runs = str(app_root.absolute() / "runs")
    engine = RunEngine(listed=[leftover(runs)])
    do_run(app_root, engine)
    assert engine.removed == ["container-1"]


# -- signals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_and_removes_its_container(
    app_root: Path, signum: int, code: int
) -> None:
    engine = RunEngine(during=lambda _: signal.raise_signal(signum))
    before = signal.getsignal(signum)
    with pytest.raises(InterruptedRunError) as failure:
        do_run(app_root, engine)
    name = signal.Signals(signum).name
    assert failure.value.exit_code == code
    assert failure.value.message == f"Run of web interrupted by {name}; its container was removed"
    assert engine.removed == ["container-1"] and engine.closed
    assert signal.getsignal(signum) == before
    [record] = history.list_deploys(app_root, APP)[0]
    assert record.status == "interrupted"
    finished = [e for e in recorded_events(app_root, 1) if isinstance(e, TaskFinished)]
    assert [f.exit_status for f in finished] == [-1]


def test_the_engine_factory_gets_the_runs_interruption(app_root: Path) -> None:
    got: list[Interruption] = []
    engine = RunEngine()

    def factory(interruption: Interruption) -> RunEngine:
        got.append(interruption)
        return engine

    oneoff.run(
        APP,
        ["true"],
        root=app_root,
        output=Output(text=False),
        pm=get_plugin_manager(entrypoints=False, blocked=()),
        engine=factory,  # type: ignore[arg-type]
    )
    assert len(got) == 1 and got[0].signum is None


# -- the CLI ----------------------------------------------------------------------------------


class FakeRun:
    """Stands in for the library's run: records its arguments, returns ``status``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 0

    def __call__(self, app: str, command: Sequence[str], **kwargs: Any) -> RunResult:
        self.calls.append({"app": app, "command": list(command), **kwargs})
        return RunResult(app, self.status, "container", 0.1, 1)


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    fake = FakeRun()
    monkeypatch.setattr(oneoff, "run", fake)
    return fake


def invoke(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--root", str(root), *args])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["web", "ls", "-la"], ["ls", "-la"]),
        (["web", "--", "ls", "-la"], ["ls", "-la"]),
        (["web", "-e", "A=1", "--", "sh", "-c", "echo $A"], ["sh", "-c", "echo $A"]),
        (["-e", "A=1", "web", "echo", "-e", "x"], ["echo", "-e", "x"]),
        (["web", "--env=A=1", "-eB=2", "cmd", "--", "x"], ["cmd", "--", "x"]),
        (["web", "-v", "/a:/b", "--task-timeout", "3", "cmd", "-v"], ["cmd", "-v"]),
        (["web", "--network", "--", "cmd"], ["cmd"]),
        (["web", "--", "--help"], ["--help"]),
    ],
)
def test_the_cli_splits_its_options_from_the_command(
    root: Path, fake_run: FakeRun, args: list[str], words: list[str]
) -> None:
    result = invoke(root, "run", *args)
    assert result.exit_code == 0, result.output
    [call] = fake_run.calls
    assert call["app"] == "web"
    assert call["command"] == words


def test_the_cli_parses_values_like_deploy(root: Path, tmp_path: Path, fake_run: FakeRun) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("A=from-file\nB='two words'\n")
    result = invoke(
        root,
        "run",
        "web",
        "--env-file",
        str(env_file),
        "-e",
        "A=given",
        "-v",
        "/srv/data:/data:ro",
        "--network",
        "backend",
        "--task-timeout",
        "2.5",
        "--",
        "true",
    )
    assert result.exit_code == 0, result.output
    [call] = fake_run.calls
    assert call["env"] == {"A": "given", "B": "two words"}
    assert call["mounts"] == (Mount("/srv/data", "/data", True),)
    assert call["network"] == "backend"
    assert call["task_timeout"] == 2.5
    assert call["root"] == root.absolute()


@pytest.mark.parametrize("status", [0, 5, 255])
def test_the_cli_exits_with_the_commands_status(root: Path, fake_run: FakeRun, status: int) -> None:
    fake_run.status = status
    result = invoke(root, "run", "web", "--", "x")
    assert result.exit_code == status
    assert result.output == ""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["web"], "run needs a command: dokku-tasks run APP -- COMMAND..."),
        (["web", "--"], "run needs a command: dokku-tasks run APP -- COMMAND..."),
        (["web", "-e", "BAD", "--", "ls"], "Invalid -e value 'BAD': expected KEY=VALUE"),
        (
            ["web", "-v", "data:/data", "ls"],
            "Invalid -v value 'data:/data': the host path must be absolute",
        ),
        (
            ["web", "--task-timeout", "0", "ls"],
            "Invalid task timeout '0': expected a number of seconds above 0",
        ),
        (["web", "--network", " ", "ls"], "--network must name a network"),
        (["Web", "ls"], "Invalid app name 'Web'"),
        (["web", "-x", "ls"], "No such option '-x'"),
        ([], "Missing argument 'APP'"),
    ],
)
def test_the_cli_refuses_bad_values_in_one_line(
    root: Path, fake_run: FakeRun, args: list[str], line: str
) -> None:
    result = invoke(root, "run", *args)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(" !     ")
    assert line in result.stderr
    assert fake_run.calls == []


def test_the_cli_refuses_a_missing_app_with_20(root: Path) -> None:
    result = invoke(root, "run", "nope", "--", "ls")
    assert result.exit_code == 20
    assert result.stderr == " !     App nope does not exist\n"


def test_the_cli_help_shows_the_command(root: Path) -> None:
    result = invoke(root, "run", "--help")
    assert result.exit_code == 0
    assert "Usage: dokku-tasks run [OPTIONS] APP [--] COMMAND..." in result.output
    for option in ("--env", "--env-file", "--volume", "--network", "--task-timeout"):
        assert option in result.output


def test_the_history_record_is_plain_json(app_root: Path) -> None:
    do_run(app_root, RunEngine())
    data = json.loads(history.record_path(app_root, APP, 1).read_text())
    assert data["request"]["kind"] == "run"
