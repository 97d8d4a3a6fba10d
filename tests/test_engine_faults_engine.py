"""A host's engine faults during a deploy, on a private engine of each test's own: an engine
that hangs (SIGSTOP), dies (SIGKILL) or restarts.  Each ends in the cause's one line (and one
clean-up line at most), the right exit status, and a next deploy that recovers."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_app
from tests.deploys import (
    APP_LABEL,
    DOCKERFILE,
    TASK_LABEL,
    WEB_ONLY,
    LiveDeploy,
    dokku,
    dokku_cmd,
    predeploy,
)
from tests.private_engine import PrivateEngine, private_engine_fixture  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.private_engine]

APP = "faulty"
#: Seconds within which a signalled deploy must end, whatever the engine does.
PROMPT = 10


def slow_app(directory: Path, command: str = "echo task-is-up; sleep 60") -> Path:
    files = {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY, "app.json": predeploy(command)}
    return write_app(directory, files)


def good_app(directory: Path, version: int = 1) -> Path:
    return write_app(
        directory, {"Dockerfile": f"{DOCKERFILE}ENV VERSION={version}\n", "Procfile": WEB_ONLY}
    )


def app_containers(engine: PrivateEngine) -> list[Any]:
    return engine.client().containers.list(all=True, filters={"label": f"{APP_LABEL}={APP}"})


def running_web(engine: PrivateEngine) -> list[str]:
    return sorted(
        c.name
        for c in app_containers(engine)
        if not c.labels.get(TASK_LABEL) and c.status == "running"
    )


def start_deploy(
    engine: PrivateEngine, root: Path, source: Path, live: list[LiveDeploy]
) -> LiveDeploy:
    deploy = LiveDeploy(
        dokku_cmd(root, "deploy", APP, "--source", str(source)), env=engine.environ()
    )
    live.append(deploy)
    return deploy


def deploy_on(engine: PrivateEngine, root: Path, source: Path) -> Any:
    return dokku(root, "deploy", APP, "--source", str(source), env=engine.environ())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_a_deploy_within_seconds_while_the_engine_hangs_in_a_task(
    private_engine: PrivateEngine, root: Path, tmp_path: Path, live: list[LiveDeploy], signum: int
) -> None:
    deploy = start_deploy(private_engine, root, slow_app(tmp_path / "slow"), live)
    deploy.wait_for("       task-is-up")
    private_engine.pause()
    signalled = time.monotonic()
    deploy.signal(signum)
    assert deploy.finish(timeout=60) == 128 + signum
    assert time.monotonic() - signalled < PROMPT
    name = signal.Signals(signum).name
    cause, cleanup = deploy.stderr.splitlines()
    assert cause == f" !     Deploy interrupted by {name}"
    assert re.fullmatch(
        r" !     Clean-up: .*; the next deploy removes (it|what they left)", cleanup
    )

    # Once the engine answers again, the next deploy leaves no task container behind.
    private_engine.resume()
    done = deploy_on(private_engine, root, good_app(tmp_path / "good"))
    assert done.returncode == 0, done.stderr
    assert [c.name for c in app_containers(private_engine)] == [f"{APP}.web.1"]


def test_a_signal_ends_a_deploy_within_seconds_while_the_engine_hangs_from_the_start(
    private_engine: PrivateEngine, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    private_engine.pause()
    deploy = start_deploy(private_engine, root, good_app(tmp_path / "good"), live)
    # Python catches SIGINT from its start; the deploy's handlers (both signals at once) are
    # in place once SIGTERM is caught too.
    deploy.wait_for_handler(signal.SIGTERM)
    time.sleep(1)  # it is waiting for the engine's first answer
    signalled = time.monotonic()
    deploy.signal(signal.SIGINT)
    assert deploy.finish(timeout=60) == 130
    assert time.monotonic() - signalled < PROMPT
    assert deploy.stderr.splitlines() == [
        " !     Deploy interrupted by SIGINT; task containers removed"
    ]
    assert not (root / "apps" / APP).exists()  # the engine never answered: nothing was made
    private_engine.resume()
    done = deploy_on(private_engine, root, good_app(tmp_path / "good"))
    assert done.returncode == 0, done.stderr


def test_an_engine_that_dies_during_a_task_gives_the_cause_first(
    private_engine: PrivateEngine, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    deploy = start_deploy(private_engine, root, slow_app(tmp_path / "slow"), live)
    deploy.wait_for("       task-is-up")
    private_engine.kill()
    assert deploy.finish(timeout=60) == 1
    lines = deploy.stderr.splitlines()
    assert 1 <= len(lines) <= 2, lines
    assert lines[0].startswith(" !     Container ") and " failed: " in lines[0]
    if len(lines) == 2:
        assert lines[1].startswith(" !     Clean-up: ")
    assert "Traceback" not in deploy.stdout + deploy.stderr

    private_engine.start()
    done = deploy_on(private_engine, root, good_app(tmp_path / "good"))
    assert done.returncode == 0, done.stderr
    assert [c.name for c in app_containers(private_engine)] == [f"{APP}.web.1"]


def test_deploys_recover_after_the_engine_restarts_mid_deploy(
    private_engine: PrivateEngine, root: Path, tmp_path: Path, live: list[LiveDeploy]
) -> None:
    # Old containers are retired at once (in the background), and `ps:retire` below
    # finishes what the retirer has not yet done.
    assert dokku(root, "checks:set", "--global", "wait-to-retire", "0").returncode == 0
    assert deploy_on(private_engine, root, good_app(tmp_path / "v1")).returncode == 0
    files = {
        "Dockerfile": f"{DOCKERFILE}ENV VERSION=2\n",
        "Procfile": "release: echo task-is-up; sleep 60\n" + WEB_ONLY,
    }
    deploy = start_deploy(private_engine, root, write_app(tmp_path / "v2", files), live)
    deploy.wait_for("       task-is-up")
    private_engine.restart()
    assert deploy.finish(timeout=60) == 1
    assert 1 <= len(deploy.stderr.splitlines()) <= 2, deploy.stderr

    for version in (3, 4, 5):
        done = deploy_on(private_engine, root, good_app(tmp_path / f"v{version}", version))
        assert done.returncode == 0, done.stderr
        retired = dokku(root, "ps:retire", env=private_engine.environ())
        assert retired.returncode == 0, retired.stderr
        assert running_web(private_engine) == [f"{APP}.web.1"]
        assert [c.name for c in app_containers(private_engine)] == [f"{APP}.web.1"]
