"""The events and the history of real deploys: the JSON stream against the text, a failed
release's output replayed after later deploys, and a killed deploy recorded as interrupted."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks import history
from dokku_tasks.events import (
    DeployFinished,
    DeployStarted,
    Event,
    Line,
    TaskFinished,
    TaskOutput,
    TaskStarted,
    from_json,
)
from dokku_tasks.plugins.deploys import replay
from tests.conftest import Captured, write_app
from tests.deploys import DOCKERFILE, WEB_ONLY, LiveDeploy, dokku, dokku_cmd, predeploy

pytestmark = pytest.mark.engine


def app_files(release: str, postdeploy: str = "echo warm; echo cold >&2") -> dict[str, Any]:
    return {
        "Dockerfile": DOCKERFILE,
        "Procfile": f"release: {release}\n" + WEB_ONLY,
        "app.json": {
            "scripts": {"dokku": {"predeploy": "echo compiled", "postdeploy": postdeploy}}
        },
    }


def text_of(events: list[Event]) -> tuple[str, str]:
    shown = Captured()
    replay(events, shown.output)
    return shown.stdout, shown.stderr


def test_the_json_stream_carries_what_the_text_shows(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    source = write_app(tmp_path / "src", app_files("echo migrated; echo slow >&2"))
    text = dokku(root, "deploy", engine_app, "--source", str(source))
    assert text.returncode == 0, text.stderr
    # The text deploy's own record replays to exactly what it printed.
    recorded = list(history.read_events(root, engine_app, 1))
    assert text_of(recorded) == (text.stdout, text.stderr)

    streamed = dokku(root, "deploy", engine_app, "--source", str(source), "--format", "jsonl")
    assert (streamed.returncode, streamed.stderr) == (0, "")
    objects = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert objects[0]["event"] == "version" and objects[0]["schema"] == 1
    events = [event for event in map(from_json, objects[1:]) if event is not None]
    assert len(events) == len(objects) - 1
    # The stream is the history of that deploy, event by event.
    assert events == list(history.read_events(root, engine_app, 2))
    started, finished = events[0], events[-1]
    assert isinstance(started, DeployStarted) and started.deploy_id == 2
    assert isinstance(finished, DeployFinished) and finished.outcome == "succeeded"
    tasks = [e for e in events if isinstance(e, TaskStarted)]
    assert [(t.phase, t.command, t.rule, t.commit) for t in tasks] == [
        ("predeploy", "echo compiled", "shell: no ENTRYPOINT", True),
        ("release", "echo migrated; echo slow >&2", "shell: no ENTRYPOINT", False),
        ("postdeploy", "echo warm; echo cold >&2", "shell: no ENTRYPOINT", False),
    ]
    assert all(t.argv[-1].startswith("set -e; set -o pipefail || true; ") for t in tasks)
    ends = [e for e in events if isinstance(e, TaskFinished)]
    assert [(e.phase, e.exit_status) for e in ends] == [
        ("predeploy", 0),
        ("release", 0),
        ("postdeploy", 0),
    ]
    assert [e.container_id for e in ends] == [t.container_id for t in tasks]
    output = [e for e in events if isinstance(e, TaskOutput)]
    # In order within each stream (the engine does not order a task's two streams together).
    assert [(e.phase, e.line) for e in output if e.stream == "stdout"] == [
        ("predeploy", "compiled"),
        ("release", "migrated"),
        ("postdeploy", "warm"),
    ]
    assert [(e.phase, e.line) for e in output if e.stream == "stderr"] == [
        ("release", "slow"),
        ("postdeploy", "cold"),
    ]
    # The lines of the stream are the lines a text deploy prints, in the same frames.
    lines = [(e.style, e.text) for e in events if isinstance(e, Line)]
    assert ("section", f"Application deployed: {engine_app}") in lines
    out, err = text_of(events)
    assert out.count("\n") == len([line for line in out.splitlines() if line])
    assert err == " !     slow\n !     cold\n"


def test_a_failed_release_is_replayed_after_two_later_deploys(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    failing = write_app(tmp_path / "bad", app_files("echo about to fail; echo boom >&2; exit 7"))
    failed = dokku(root, "deploy", engine_app, "--source", str(failing))
    assert failed.returncode == 1
    good = write_app(tmp_path / "good", app_files("true"))
    for _ in range(2):
        assert dokku(root, "deploy", engine_app, "--source", str(good)).returncode == 0
    listed = dokku(root, "deploys:list", engine_app, "--format", "json")
    assert [(r["id"], r["status"], r["failed_phase"]) for r in json.loads(listed.stdout)] == [
        (3, "succeeded", None),
        (2, "succeeded", None),
        (1, "failed", "release"),
    ]
    logs = dokku(root, "deploys:logs", engine_app, "1", "--phase", "release")
    assert (logs.returncode, logs.stdout, logs.stderr) == (
        0,
        "       about to fail\n",
        " !     boom\n",
    )
    whole = dokku(root, "deploys:logs", engine_app, "1")
    # The whole replay is what the failed deploy printed, but for the last line: the error
    # line the command prints when it exits, which is not part of the deploy's own output.
    assert whole.stdout == failed.stdout
    assert whole.stderr == failed.stderr.rsplit(" !     Execution", 1)[0]


def test_a_killed_deploy_is_recorded_as_interrupted(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "Procfile": WEB_ONLY,
            "app.json": predeploy("echo up; sleep 60"),
        },
    )
    deploy = LiveDeploy(dokku_cmd(root, "deploy", engine_app, "--source", str(source)))
    live.append(deploy)
    deploy.wait_for("       up")
    deploy.signal(signal.SIGKILL)
    assert deploy.finish() == -signal.SIGKILL
    listed = dokku(root, "deploys:list", engine_app, "--format", "json")
    [record] = json.loads(listed.stdout)
    assert (record["status"], record["error"]) == ("interrupted", "killed")
    logs = dokku(root, "deploys:logs", engine_app, "--phase", "predeploy")
    assert logs.stdout == "       up\n"
    # Ctrl-C instead: the deploy ends its own record.
    second = LiveDeploy(dokku_cmd(root, "deploy", engine_app, "--source", str(source)))
    live.append(second)
    second.wait_for("       up")
    second.signal(signal.SIGINT)
    assert second.finish() == 130
    shown = dokku(root, "deploys:show", engine_app, "--format", "json")
    assert json.loads(shown.stdout)["status"] == "interrupted"
    assert json.loads(shown.stdout)["error"].startswith("Deploy interrupted by SIGINT")
