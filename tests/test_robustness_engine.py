"""Robustness on the real engine: timeouts, signals, killed deploys, the app lock, exit codes
and secrets (issue 4).

Most cases drive the real ``dokku-tasks`` command in a subprocess, because what is under test
is what a user sees: exit status, the lines on stdout and stderr, and the state the engine is
left in.  Every wait has a timeout, so a hang fails the test instead of blocking the run.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.errors import DeployLockedError, TaskTimeoutError
from dokku_tasks.pipeline import DeployRequest, _app_lock, deploy
from tests.conftest import Captured, write_app
from tests.deploys import (
    DOCKERFILE,
    ENTRYPOINT_DOCKERFILE,
    PASSTHROUGH,
    TASK_LABEL,
    WEB_ONLY,
    LiveDeploy,
    child_env,
    dokku,
    dokku_cmd,
    error_lines,
    good_deploy,
    predeploy,
    running_state,
    task_containers,
)

pytestmark = [pytest.mark.engine, pytest.mark.serial]

# -- timeout ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "phase"),
    [
        ({"app.json": predeploy("sleep 30"), "Procfile": WEB_ONLY}, "predeploy"),
        ({"Procfile": "release: sleep 30\n" + WEB_ONLY}, "release"),
    ],
)
def test_cli_task_timeout_kills_the_task_and_changes_nothing_running(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    files: dict[str, Any],
    phase: str,
) -> None:
    before = good_deploy(docker_client, root, engine_app, tmp_path / "good")
    slow = write_app(tmp_path / "slow", {"Dockerfile": DOCKERFILE + "ENV CHANGED=1\n", **files})
    began = time.monotonic()
    done = dokku(root, "deploy", engine_app, "--source", str(slow), "--task-timeout", "1")
    elapsed = time.monotonic() - began
    assert done.returncode == 1, done.stdout + done.stderr
    assert error_lines(done.stderr) == [f" !     {phase} task timed out after 1 seconds"]
    assert "Traceback" not in done.stdout + done.stderr
    assert f"=====> Start of {engine_app} {phase} task" in done.stdout
    assert f"=====> End of {engine_app} {phase} task" in done.stdout
    assert elapsed < 20
    assert task_containers(docker_client, engine_app) == []
    assert running_state(docker_client, engine_app) == before


def test_library_task_timeout(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    before = good_deploy(docker_client, root, engine_app, tmp_path / "good")
    slow = write_app(
        tmp_path / "slow", {"Dockerfile": DOCKERFILE, "app.json": predeploy("sleep 30")}
    )
    began = time.monotonic()
    with pytest.raises(TaskTimeoutError) as failure:
        deploy(
            DeployRequest(app=engine_app, source=slow, task_timeout=1.5),
            root=root,
            output=captured.output,
        )
    assert time.monotonic() - began < 20
    assert failure.value.message == "predeploy task timed out after 1.5 seconds"
    assert failure.value.phase == "predeploy"
    assert failure.value.result is not None and not failure.value.result.ok
    assert task_containers(docker_client, engine_app) == []
    assert running_state(docker_client, engine_app) == before


def test_task_timeout_properties_per_app_and_global(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    before = good_deploy(docker_client, root, engine_app, tmp_path / "good")
    slow = write_app(
        tmp_path / "slow", {"Dockerfile": DOCKERFILE, "app.json": predeploy("sleep 30")}
    )

    def report(flag: str) -> str:
        done = dokku(root, "scheduler:report", engine_app, flag)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def timed_out_deploy(*extra: str) -> str:
        began = time.monotonic()
        done = dokku(root, "deploy", engine_app, "--source", str(slow), *extra)
        assert time.monotonic() - began < 20
        assert done.returncode == 1, done.stdout + done.stderr
        assert task_containers(docker_client, engine_app) == []
        assert running_state(docker_client, engine_app) == before
        return done.stderr

    assert report("--scheduler-computed-task-timeout") == "none"

    # Per app.
    assert dokku(root, "scheduler:set", engine_app, "task-timeout", "2").returncode == 0
    assert report("--scheduler-task-timeout") == "2"
    assert report("--scheduler-computed-task-timeout") == "2"
    full = dokku(root, "scheduler:report", engine_app).stdout
    assert "task timeout" in full.lower() and "2" in full
    assert timed_out_deploy() == " !     predeploy task timed out after 2 seconds\n"
    # The command-line flag beats the property.
    assert (
        timed_out_deploy("--task-timeout", "1")
        == " !     predeploy task timed out after 1 seconds\n"
    )

    # Global, once the app value is unset.
    assert dokku(root, "scheduler:set", engine_app, "task-timeout").returncode == 0
    assert dokku(root, "scheduler:set", "--global", "task-timeout", "2").returncode == 0
    assert report("--scheduler-global-task-timeout") == "2"
    assert report("--scheduler-computed-task-timeout") == "2"
    assert timed_out_deploy() == " !     predeploy task timed out after 2 seconds\n"

    # An app's "none" beats the global value.
    assert dokku(root, "scheduler:set", engine_app, "task-timeout", "none").returncode == 0
    assert report("--scheduler-computed-task-timeout") == "none"
    short = write_app(
        tmp_path / "short", {"Dockerfile": DOCKERFILE, "app.json": predeploy("sleep 3")}
    )
    done = dokku(root, "deploy", engine_app, "--source", str(short))
    assert done.returncode == 0, done.stdout + done.stderr


def test_bad_task_timeout_values_are_refused(engine_app: str, root: Path, tmp_path: Path) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    for value in ("0", "-1", "soon", "nan", "none"):
        done = dokku(root, "deploy", engine_app, "--source", str(source), "--task-timeout", value)
        assert done.returncode == 1, value
        assert len(error_lines(done.stderr)) == 1 and "task timeout" in done.stderr.lower()
        assert done.stderr.startswith(" !     ")
    done = dokku(root, "apps:create", engine_app)
    assert done.returncode == 0
    done = dokku(root, "scheduler:set", engine_app, "task-timeout", "soon")
    assert done.returncode == 1
    assert error_lines(done.stderr) == [
        " !     Invalid task timeout 'soon': expected a number of seconds above 0 "
        "(or none for no timeout)"
    ]


# -- Ctrl-C and SIGTERM -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "code", "times"),
    [
        pytest.param(signal.SIGINT, 130, 1, id="SIGINT"),
        pytest.param(signal.SIGTERM, 143, 1, id="SIGTERM"),
        # An impatient user keeps pressing Ctrl-C while the deploy cleans up and exits.
        pytest.param(signal.SIGINT, 130, 50, id="SIGINT-repeated"),
    ],
)
def test_signal_stops_the_task_releases_the_lock_and_changes_nothing(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    live: list[LiveDeploy],
    signum: int,
    code: int,
    times: int,
) -> None:
    before = good_deploy(docker_client, root, engine_app, tmp_path / "good")
    slow = write_app(
        tmp_path / "slow",
        {"Dockerfile": DOCKERFILE, "app.json": predeploy("echo task-began; sleep 60")},
    )
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    child = LiveDeploy(
        dokku_cmd(root, "deploy", engine_app, "--source", str(slow), "-e", "SOME=value"),
        env=child_env(TMPDIR=str(scratch)),
    )
    live.append(child)
    child.wait_for(f"=====> Start of {engine_app} predeploy task")
    child.wait_for("       task-began")
    assert len(task_containers(docker_client, engine_app)) == 1
    sent = time.monotonic()
    for _ in range(times):
        if child.proc.poll() is not None:
            break
        child.signal(signum)
        time.sleep(0.02)
    assert child.finish(timeout=30) == code
    assert time.monotonic() - sent < 10
    name = signal.Signals(signum).name
    assert child.err == [f" !     Deploy interrupted by {name}; task containers removed"]
    assert "Traceback" not in child.stdout + child.stderr
    assert task_containers(docker_client, engine_app) == []
    assert running_state(docker_client, engine_app) == before
    assert list(scratch.iterdir()) == []  # the env file went with the task

    # The lock was released: the next deploy runs, with nothing stale to remove.
    follow = dokku(root, "deploy", engine_app, "--source", str(tmp_path / "good"))
    assert follow.returncode == 0, follow.stdout + follow.stderr
    assert "stale" not in follow.stdout


# -- a killed deploy ---------------------------------------------------------------------------


def _kill_during_task(
    root: Path, app: str, slow: Path, scratch: Path, live: list[LiveDeploy]
) -> LiveDeploy:
    child = LiveDeploy(
        dokku_cmd(root, "deploy", app, "--source", str(slow), "-e", "SOME=value"),
        env=child_env(TMPDIR=str(scratch)),
    )
    live.append(child)
    child.wait_for(f"=====> Start of {app} predeploy task")
    child.wait_for("       task-began")
    child.signal(signal.SIGKILL)
    assert child.finish(timeout=30) == -signal.SIGKILL
    return child


def test_next_deploy_removes_what_a_killed_deploy_left(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    before = good_deploy(docker_client, root, engine_app, tmp_path / "good")
    slow = write_app(
        tmp_path / "slow",
        {"Dockerfile": DOCKERFILE, "app.json": predeploy("echo task-began; sleep 60")},
    )
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    _kill_during_task(root, engine_app, slow, scratch, live)

    left = task_containers(docker_client, engine_app)
    assert len(left) == 1 and left[0].labels[TASK_LABEL] == "predeploy"
    assert running_state(docker_client, engine_app) == before

    follow = dokku(root, "deploy", engine_app, "--source", str(tmp_path / "good"))
    assert follow.returncode == 0, follow.stdout + follow.stderr
    removed = (
        f"-----> Removed 1 stale task container(s) left by an interrupted deploy of {engine_app}"
    )
    assert removed in follow.stdout.splitlines()
    assert follow.stdout.index(removed) < follow.stdout.index("-----> Building")
    assert task_containers(docker_client, engine_app) == []


def test_killed_deploy_leaves_no_config_values_on_disk(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    """The env file of a SIGKILLed deploy holds the app's config values in clear text.

    Expected: the next deploy of the app removes it along with the stale task container.
    """
    slow = write_app(
        tmp_path / "slow",
        {"Dockerfile": DOCKERFILE, "app.json": predeploy("echo task-began; sleep 60")},
    )
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    _kill_during_task(root, engine_app, slow, scratch, live)
    good = write_app(tmp_path / "good", {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY})
    follow = dokku(
        root, "deploy", engine_app, "--source", str(good), env=child_env(TMPDIR=str(scratch))
    )
    assert follow.returncode == 0, follow.stdout + follow.stderr
    leftovers = sorted(str(p) for p in scratch.rglob("*"))
    assert leftovers == [], f"config values left on disk: {leftovers}"


# -- one deploy per app ------------------------------------------------------------------------


def test_second_deploy_of_the_same_app_refuses_and_other_apps_go_on(
    docker_client: Any,
    engine_app: str,
    other_app: str,
    root: Path,
    tmp_path: Path,
    live: list[LiveDeploy],
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    task = "echo start $TOKEN >> /shared/log; sleep 6; echo end $TOKEN >> /shared/log"
    slow = write_app(tmp_path / "slow", {"Dockerfile": DOCKERFILE, "app.json": predeploy(task)})
    mount = f"{shared}:/shared"
    first = LiveDeploy(
        dokku_cmd(root, "deploy", engine_app, "--source", str(slow), "-v", mount, "-e", "TOKEN=1")
    )
    live.append(first)
    first.wait_for(f"=====> Start of {engine_app} predeploy task")
    assert (root / "locks" / f"{engine_app}.lock").exists()

    began = time.monotonic()
    second = dokku(root, "deploy", engine_app, "--source", str(slow), "-v", mount, "-e", "TOKEN=2")
    assert time.monotonic() - began < 5
    assert second.returncode == 1
    assert error_lines(second.stderr) == [f" !     A deploy of {engine_app} is already in progress"]
    assert second.stdout == ""

    quick = write_app(tmp_path / "quick", {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY})
    other = dokku(root, "deploy", other_app, "--source", str(quick))
    assert other.returncode == 0, other.stdout + other.stderr
    assert first.proc.poll() is None, "the other app's deploy waited for the first one"

    assert first.finish() == 0, first.stdout + first.stderr
    assert (shared / "log").read_text().split("\n") == ["start 1", "end 1", ""]


def test_tasks_of_concurrent_deploys_of_one_app_never_overlap(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    task = "echo start $TOKEN >> /shared/log; sleep 1; echo end $TOKEN >> /shared/log"
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "app.json": predeploy(task)})
    children = []
    for token in "abcd":
        child = LiveDeploy(
            dokku_cmd(
                root,
                "deploy",
                engine_app,
                "--source",
                str(source),
                "-v",
                f"{shared}:/shared",
                "-e",
                f"TOKEN={token}",
            )
        )
        live.append(child)
        children.append(child)
    codes = [child.finish() for child in children]
    assert 0 in codes
    for child, code in zip(children, codes, strict=True):
        if code != 0:
            assert code == 1
            assert child.err == [f" !     A deploy of {engine_app} is already in progress"]
    log = (shared / "log").read_text().split()
    pairs = [log[i : i + 4] for i in range(0, len(log), 4)]
    for pair in pairs:
        assert pair[0] == "start" and pair[2] == "end" and pair[1] == pair[3], log
    assert len(pairs) == codes.count(0)


def test_library_deploy_refuses_while_the_lock_is_held(
    engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    with _app_lock(root, engine_app):
        began = time.monotonic()
        with pytest.raises(DeployLockedError) as refused:
            deploy(DeployRequest(app=engine_app, source=source), root=root, output=captured.output)
        assert time.monotonic() - began < 5
    assert refused.value.message == f"A deploy of {engine_app} is already in progress"
    assert captured.stdout == ""


# -- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "extra", "line"),
    [
        pytest.param(
            {"Dockerfile": DOCKERFILE, "app.json": predeploy("exit 7")},
            [],
            "Execution of predeploy task failed: exit 7 (exit status 7)",
            id="shell",
        ),
        pytest.param(
            {"Dockerfile": DOCKERFILE, "app.json": predeploy("echo x; exit 7")},
            ["-e", "SOME=value"],
            "Execution of predeploy task failed: echo x; exit 7 (exit status 7)",
            id="shell-with-env",
        ),
        pytest.param(
            {"Dockerfile": DOCKERFILE, "Procfile": "release: exit 7\n" + WEB_ONLY},
            [],
            "Execution of release task failed: exit 7 (exit status 7)",
            id="release",
        ),
        pytest.param(
            {
                "Dockerfile": ENTRYPOINT_DOCKERFILE,
                "entrypoint": PASSTHROUGH,
                "app.json": predeploy('sh -c "exit 7"'),
            },
            [],
            'Execution of predeploy task failed: sh -c "exit 7" (exit status 7)',
            id="entrypoint",
        ),
        pytest.param(
            {
                "Dockerfile": ENTRYPOINT_DOCKERFILE,
                "entrypoint": PASSTHROUGH,
                "app.json": predeploy('sh -c "exit 7"'),
            },
            ["-e", "SOME=value"],
            'Execution of predeploy task failed: sh -c "exit 7" (exit status 7)',
            id="entrypoint-with-env",
        ),
    ],
)
def test_failure_line_carries_the_real_exit_status(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    files: dict[str, Any],
    extra: list[str],
    line: str,
) -> None:
    source = write_app(tmp_path / "src", files)
    done = dokku(root, "deploy", engine_app, "--source", str(source), *extra)
    assert done.returncode == 1, done.stdout + done.stderr
    assert error_lines(done.stderr) == [f" !     {line}"]
    assert task_containers(docker_client, engine_app) == []


# -- secrets -----------------------------------------------------------------------------------


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # a fingerprint, not security


@pytest.mark.parametrize("wrapped", [True, False], ids=["shell-wrapped", "entrypoint"])
def test_config_values_reach_every_task_and_process_but_no_image_or_output(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, wrapped: bool
) -> None:
    token = uuid.uuid4().hex
    cli_value = f"cli-{token}-with 'quotes' and $dollar"
    file_value = f'file-{token}-with $x "q"'
    env_file = tmp_path / "config.env"
    env_file.write_text(f"SECRET_FILE='{file_value}'\n")

    def task(phase: str) -> str:
        script = (
            f"echo {phase} $(env | grep ^SECRET_CLI= | md5sum) $(env | grep ^SECRET_FILE= | md5sum)"
        )
        return script if wrapped else f'sh -c "{script}"'

    files: dict[str, Any] = {
        "Dockerfile": DOCKERFILE if wrapped else ENTRYPOINT_DOCKERFILE,
        "app.json": {
            "scripts": {"dokku": {"predeploy": task("predeploy"), "postdeploy": task("postdeploy")}}
        },
        "Procfile": f"release: {task('release')}\n"
        + (WEB_ONLY if wrapped else f"web: sh -c {shlex.quote(WEB_ONLY[5:].strip())}\n"),
    }
    if not wrapped:
        files["entrypoint"] = PASSTHROUGH
    source = write_app(tmp_path / "src", files)
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    done = dokku(
        root,
        "deploy",
        engine_app,
        "--source",
        str(source),
        "-e",
        f"SECRET_CLI={cli_value}",
        "--env-file",
        str(env_file),
        env=child_env(TMPDIR=str(scratch)),
    )
    assert done.returncode == 0, done.stdout + done.stderr

    cli_hash = _md5(f"SECRET_CLI={cli_value}\n")
    file_hash = _md5(f"SECRET_FILE={file_value}\n")
    seen = f"{cli_hash} - {file_hash} -"
    lines = done.stdout.splitlines()
    for phase in ("predeploy", "release", "postdeploy"):
        assert f"       {phase} {seen}" in lines, done.stdout

    web = docker_client.containers.get(f"{engine_app}.web.1")
    exit_code, env_out = web.exec_run(["env"])
    assert exit_code == 0
    assert f"SECRET_CLI={cli_value}" in env_out.decode().splitlines()
    assert f"SECRET_FILE={file_value}" in env_out.decode().splitlines()

    image = docker_client.images.get(f"dokku/{engine_app}:latest")
    assert image.labels.get("com.dokku.predeploy-phase") == "true"
    if not wrapped:
        assert image.attrs["Config"]["Entrypoint"] == ["/app/entrypoint"]
    config_env = image.attrs["Config"].get("Env") or []
    container_env = (image.attrs.get("ContainerConfig") or {}).get("Env") or []
    for env_list in (config_env, container_env):
        assert not any(token in entry for entry in env_list), env_list
    assert token not in json.dumps(image.attrs)
    saved = b"".join(image.save())
    assert token.encode() not in saved
    assert token not in done.stdout + done.stderr
    assert list(scratch.iterdir()) == []
