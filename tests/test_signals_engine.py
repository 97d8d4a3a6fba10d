"""Signals and unwritable output on the real engine: a deploy that succeeded stays a success,
and output that cannot be written never stops a deploy."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_app
from tests.deploys import DEPLOY_TIMEOUT, DOCKERFILE, LiveDeploy, dokku, dokku_cmd, retire_now

pytestmark = [pytest.mark.engine, pytest.mark.serial]

#: PID 1 without a TERM handler ignores SIGTERM: stopping the old container takes 10 s.
STUBBORN_WEB = "web: sleep 3600\n"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_application_deployed_keeps_the_deploy_a_success(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    live: list[LiveDeploy],
    signum: int,
) -> None:
    files = {"Dockerfile": DOCKERFILE, "Procfile": STUBBORN_WEB}
    first = dokku(root, "deploy", engine_app, "--source", str(write_app(tmp_path / "a", files)))
    assert first.returncode == 0, first.stderr
    changed = write_app(tmp_path / "b", {**files, "Dockerfile": DOCKERFILE + "ENV V=2\n"})
    second = LiveDeploy(dokku_cmd(root, "deploy", engine_app, "--source", str(changed)))
    live.append(second)
    second.wait_for(f"=====> Application deployed: {engine_app}")
    signalled = time.monotonic()
    second.signal(signum)
    assert second.finish() == 0, second.stderr
    assert time.monotonic() - signalled < 8
    assert "interrupted" not in second.stderr
    # At most one warning: a clean-up step the signal cut short (the old container is not
    # one of them: it is retired in the background, never waited for).
    for warning in second.stderr.splitlines():
        assert warning.startswith(" !     Clean-up: The Docker engine did not finish ")
    assert len(second.stderr.splitlines()) <= 1
    web = docker_client.containers.get(f"{engine_app}.web.1")
    assert web.status == "running"
    assert web.image.id == docker_client.images.get(f"dokku/{engine_app}:latest").id

    # The old container, handed to the retirement, goes; the next deploy replaces the rest.
    third = dokku(root, "deploy", engine_app, "--source", str(changed))
    assert third.returncode == 0, third.stderr
    retire_now(root)
    names = [
        c.name
        for c in docker_client.containers.list(
            all=True, filters={"label": f"com.dokku.app-name={engine_app}"}
        )
    ]
    assert names == [f"{engine_app}.web.1"]


def test_a_deploy_whose_stdout_is_a_full_device_still_deploys(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    source = write_app(
        tmp_path / "src",
        {"Dockerfile": DOCKERFILE, "Procfile": "release: echo released\nweb: sleep 3600\n"},
    )
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            dokku_cmd(root, "deploy", engine_app, "--source", str(source)),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=DEPLOY_TIMEOUT,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert docker_client.containers.get(f"{engine_app}.web.1").status == "running"
