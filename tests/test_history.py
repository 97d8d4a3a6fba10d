"""The deploy history: records and events under the state root, bounds, killed deploys, bad
records, a state root that cannot take a write, and what the deploy records of itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dokku_tasks import history
from dokku_tasks.errors import TaskFailedError, UsageError
from dokku_tasks.events import (
    DeployFinished,
    DeployStarted,
    Event,
    Line,
    PhaseStarted,
    TaskFinished,
    TaskOutput,
    TaskStarted,
    Truncated,
)
from dokku_tasks.locks import lock_path
from dokku_tasks.plugins import deploys
from tests.conftest import Captured
from tests.test_pipeline import Harness

REQUEST = {"source": "/src", "image": None, "mounts": [], "network": None}


def finish(
    recorder: history.Recorder, outcome: str = "succeeded", error: str | None = None
) -> None:
    recorder(DeployFinished(outcome=outcome, duration=2.5, image="sha256:9", error=error))


def test_a_deploy_is_numbered_and_recorded_as_it_goes(root: Path) -> None:
    warnings: list[str] = []
    recorder = history.start(root, "web", REQUEST, warn=warnings.append, now=100.0)
    assert recorder is not None and recorder.deploy_id == 1
    recorder(history.started_event(recorder, "web", REQUEST))
    recorder(TaskOutput("release", "stdout", "migrated"))
    [running], _ = history.list_deploys(root, "web")
    # Nobody holds the app's lock in this test: a record still "running" was killed.
    assert (running.status, running.error) == ("interrupted", "killed")
    finish(recorder)
    [done], _ = history.list_deploys(root, "web")
    assert (done.status, done.finished, done.image, done.duration) == (
        "succeeded",
        102.5,
        "sha256:9",
        2.5,
    )
    assert done.request == REQUEST
    assert done.output_bytes == len("migrated") + 1
    assert [type(e).__name__ for e in history.read_events(root, "web", 1)] == [
        "DeployStarted",
        "TaskOutput",
        "DeployFinished",
    ]
    assert warnings == []
    second = history.start(root, "web", REQUEST)
    assert second is not None and second.deploy_id == 2


def test_a_running_deploy_that_holds_the_lock_is_running(root: Path) -> None:
    import fcntl

    recorder = history.start(root, "web", REQUEST)
    assert recorder is not None
    path = lock_path(root, "web")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        pid = os.fork()
        if pid == 0:  # the probe must come from another open file: a child process
            [record], _ = history.list_deploys(root, "web")
            os._exit(0 if record.status == "running" else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_task_output_is_capped_with_one_marker(root: Path) -> None:
    recorder = history.start(root, "web", REQUEST)
    assert recorder is not None
    # Lines count with their newline: 6 + 5 bytes fit in 11, the third does not.
    recorder.max_output_bytes = 11
    for line in ("12345", "6789", "abc", "def"):
        recorder(TaskOutput("release", "stdout", line))
    recorder(TaskFinished("release", 0, 1.0, "c1"))
    finish(recorder)
    kept = list(history.read_events(root, "web", 1))
    assert kept == [
        TaskOutput("release", "stdout", "12345"),
        TaskOutput("release", "stdout", "6789"),
        Truncated(11),
        TaskFinished("release", 0, 1.0, "c1"),
        DeployFinished("succeeded", 2.5, "sha256:9", None),
    ]
    [record], _ = history.list_deploys(root, "web")
    assert record.truncated and record.output_bytes == 11


def test_only_the_newest_deploys_are_kept(root: Path) -> None:
    for _ in range(5):
        recorder = history.start(root, "web", REQUEST, keep=3)
        assert recorder is not None
        finish(recorder)
    records, _ = history.list_deploys(root, "web")
    assert [r.id for r in records] == [5, 4, 3]
    assert sorted(p.name for p in history.app_directory(root, "web").iterdir()) == [
        "3.events.jsonl",
        "3.json",
        "4.events.jsonl",
        "4.json",
        "5.events.jsonl",
        "5.json",
    ]


def test_apps_have_histories_of_their_own(root: Path) -> None:
    for app in ("web", "api", "web"):
        recorder = history.start(root, app, REQUEST)
        assert recorder is not None
        finish(recorder)
    assert [r.id for r in history.list_deploys(root, "web")[0]] == [2, 1]
    assert [r.id for r in history.list_deploys(root, "api")[0]] == [1]


@pytest.mark.parametrize("content", ["", "{", "[]", '{"id": 2}', '{"id": "x", "app": 1}'])
def test_a_corrupt_record_is_skipped_with_a_warning(root: Path, content: str) -> None:
    recorder = history.start(root, "web", REQUEST)
    assert recorder is not None
    finish(recorder)
    history.record_path(root, "web", 2).write_text(content)
    records, warnings = history.list_deploys(root, "web")
    assert [r.id for r in records] == [1]
    [warning] = warnings
    assert warning.startswith(f"Skipping deploy record {history.record_path(root, 'web', 2)}: ")


def test_a_line_of_events_that_does_not_parse_is_skipped(root: Path) -> None:
    recorder = history.start(root, "web", REQUEST)
    assert recorder is not None
    recorder(Line("step", "one"))
    with open(history.events_path(root, "web", 1), "a") as handle:
        handle.write('{"event": "line", "style"\n{"event": "from_the_future"}\n')
    recorder(Line("step", "two"))
    finish(recorder)
    assert list(history.read_events(root, "web", 1))[:2] == [
        Line("step", "one"),
        Line("step", "two"),
    ]


def test_a_state_root_that_cannot_take_the_record_warns_once(root: Path) -> None:
    warnings: list[str] = []
    (root / "history").write_text("a file where the directory belongs")
    assert history.start(root, "web", REQUEST, warn=warnings.append) is None
    [warning] = warnings
    assert warning.startswith("History: cannot record this deploy of web (")


def test_a_write_that_fails_midway_warns_once_and_stops_recording(root: Path) -> None:
    warnings: list[str] = []
    recorder = history.start(root, "web", REQUEST, warn=warnings.append)
    assert recorder is not None
    recorder(Line("step", "one"))
    recorder._close()
    # The next event must open the file again, and finds a directory in its place.
    path = history.events_path(root, "web", 1)
    path.unlink()
    path.mkdir()
    recorder(Line("step", "two"))
    recorder(Line("step", "three"))
    finish(recorder)
    [warning] = warnings
    assert warning.startswith("History: cannot record deploy 1 of web (")
    assert warning.endswith("); the deploy goes on without it")
    # The outcome still reached the record.
    [record], _ = history.list_deploys(root, "web")
    assert record.status == "succeeded"


def test_get_deploy_finds_by_id_or_the_newest(root: Path) -> None:
    for _ in range(3):
        recorder = history.start(root, "web", REQUEST)
        assert recorder is not None
        finish(recorder)
    assert history.get_deploy(root, "web", None).id == 3
    assert history.get_deploy(root, "web", "2").id == 2
    assert history.get_deploy(root, "web", "v1").id == 1
    with pytest.raises(UsageError) as unknown:
        history.get_deploy(root, "web", "9")
    assert unknown.value.message == "Deploy 9 of web is not recorded (recorded: 1, 2, 3)"
    for bad in ("x", "0", "-1", "1.5", ""):
        with pytest.raises(UsageError, match="Invalid deploy id"):
            history.get_deploy(root, "web", bad)
    with pytest.raises(UsageError, match="No deploys of api are recorded"):
        history.get_deploy(root, "api", None)


# -- what a deploy records of itself (no Docker) ----------------------------------------------


PROCFILE = "release: ./migrate\nweb: ./serve\n"


def test_a_failed_deploy_records_its_phase_and_replays_its_output(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    from tests.conftest import write_app

    source = write_app(tmp_path / "src", {"Dockerfile": "FROM scratch\n", "Procfile": PROCFILE})
    harness = Harness(root, exits={"./migrate": 3})
    with pytest.raises(TaskFailedError):
        harness.deploy(source, captured)
    [record], _ = history.list_deploys(root, "web")
    assert (record.status, record.failed_phase) == ("failed", "release")
    assert record.error == "Execution of release task failed: ./migrate (exit status 3)"
    recorded = list(history.read_events(root, "web", 1))
    assert isinstance(recorded[0], DeployStarted) and recorded[0].deploy_id == 1
    assert isinstance(recorded[-1], DeployFinished) and recorded[-1].outcome == "failed"
    [started] = [e for e in recorded if isinstance(e, TaskStarted)]
    assert (started.phase, started.command, started.rule) == (
        "release",
        "./migrate",
        "shell: no ENTRYPOINT",
    )
    assert started.argv[-1] == "set -e; set -o pipefail || true; ./migrate"
    [finished] = [e for e in recorded if isinstance(e, TaskFinished)]
    assert (finished.exit_status, finished.container_id) == (3, started.container_id)
    assert PhaseStarted("release") in recorded
    # The replay prints what the deploy printed, the same lines on the same streams.
    replayed = Captured()
    deploys.replay(recorded, replayed.output)
    assert replayed.stdout == captured.stdout
    assert replayed.stderr == captured.stderr
    only = Captured()
    deploys.replay(recorded, only.output, "release")
    assert only.stdout == "       ran ./migrate\n"


def test_the_jsonl_stream_and_the_text_carry_the_same_lines(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    from tests.conftest import write_app

    source = write_app(tmp_path / "src", {"Dockerfile": "FROM scratch\n", "Procfile": PROCFILE})
    harness = Harness(root)
    seen: list[Event] = []
    harness.deploy(source, Captured())
    text = Captured()
    text.output.sinks.append(seen.append)
    harness.deploy(source, text)
    rebuilt = Captured()
    deploys.replay(seen, rebuilt.output)
    assert (rebuilt.stdout, rebuilt.stderr) == (text.stdout, text.stderr)
    [started] = [e for e in seen if isinstance(e, DeployStarted)]
    assert started.deploy_id == 2
    assert history.record_path(root, "web", 2).exists()


# -- the deploys:* commands -------------------------------------------------------------------


@pytest.fixture
def recorded(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An app with two recorded deploys: 1 failed in release, 2 succeeded."""
    from dokku_tasks.apps import AppRegistry

    monkeypatch.setenv("DOKKU_TASKS_ROOT", str(root))
    monkeypatch.delenv("DOKKU_TASKS_DISABLE_PLUGINS", raising=False)
    AppRegistry(root).create("web")
    first = history.start(root, "web", REQUEST, now=1_800_000_000.0)
    assert first is not None
    first(PhaseStarted("release"))
    first(
        TaskStarted("release", "procfile", "Procfile", "./migrate", "sha256:1", ("x",), "r", "c1")
    )
    first(TaskOutput("release", "stdout", "migrating"))
    first(TaskOutput("release", "stderr", "table locked"))
    first(TaskFinished("release", 3, 1.25, "c1"))
    first.failed_phase("release")
    first(
        DeployFinished(
            "failed", 4.0, None, "Execution of release task failed: ./migrate (exit status 3)"
        )
    )
    second = history.start(root, "web", REQUEST, now=1_800_000_100.0)
    assert second is not None
    second(Line("step", "Deploying web"))
    finish(second)
    return root


def cli(*args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from dokku_tasks.cli import cli as command

    result = CliRunner().invoke(command, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_deploys_list(recorded: Path) -> None:
    code, out, err = cli("deploys:list", "web")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "=====> web deploys",
        "ID  STATUS     STARTED (UTC)        DURATION  IMAGE  ERROR",
        "2   succeeded  2027-01-15 08:01:40  2.5 s     9",
        "1   failed     2027-01-15 08:00:00  4.0 s     -      "
        "Execution of release task failed: ./migrate (exit status 3)",
    ]
    code, out, _ = cli("deploys:list", "web", "--format", "json")
    assert [r["id"] for r in json.loads(out)] == [2, 1]


def test_deploys_show(recorded: Path) -> None:
    code, out, err = cli("deploys:show", "web", "1")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "=====> web deploy 1",
        "       Status:       failed",
        "       Started:      2027-01-15 08:00:00 UTC",
        "       Finished:     2027-01-15 08:00:04 UTC",
        "       Duration:     4.0 s",
        "       Image:        -",
        "       Source:       /src",
        "       From image:   -",
        "       Error:        Execution of release task failed: ./migrate (exit status 3)",
        "       Failed phase: release",
        "       Task release: ./migrate (exit status 3, 1.2 s)",
        "       Output kept:  23 bytes",
    ]
    code, out, _ = cli("deploys:show", "web", "--format", "json")
    assert json.loads(out)["id"] == 2


def test_deploys_logs_replays_lines_and_streams(recorded: Path) -> None:
    code, out, err = cli("deploys:logs", "web", "1")
    assert (code, out, err) == (0, "       migrating\n", " !     table locked\n")
    code, out, err = cli("deploys:logs", "web", "1", "--phase", "release")
    assert (code, out, err) == (0, "       migrating\n", " !     table locked\n")
    code, out, err = cli("deploys:logs", "web", "1", "--phase", "predeploy")
    assert (code, out, err) == (0, "", "")
    code, out, err = cli("deploys:logs", "web")
    assert (code, out, err) == (0, "-----> Deploying web\n", "")


def test_deploys_commands_refuse_bad_input(recorded: Path) -> None:
    assert cli("deploys:logs", "web", "1", "--phase", "relase") == (
        1,
        "",
        " !     Unknown phase 'relase': expected one of predeploy, release, postdeploy, "
        "heroku.postdeploy\n",
    )
    assert cli("deploys:show", "web", "7") == (
        1,
        "",
        " !     Deploy 7 of web is not recorded (recorded: 1, 2)\n",
    )
    assert cli("deploys:logs", "web", "seven")[0] == 1
    assert cli("deploys:list", "nope") == (20, "", " !     App nope does not exist\n")
