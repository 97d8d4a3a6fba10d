"""Retirement of old process containers on the real engine: the deploy's side returns at once,
a detached retirer stops and removes them after the wait, and the records outlive a killed
retirer."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from dokku_tasks import retirement
from dokku_tasks.engine import Engine
from tests.conftest import APP_LABEL, BASE_IMAGE, TINI_IMAGE

pytestmark = pytest.mark.engine


@pytest.fixture
def state(root: Path) -> Iterator[Path]:
    """A state root whose retirer (if one still runs) is killed after the test."""
    yield root
    pid = retirement.retirer_pid(root)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start(
    client: Any, app: str, name: str, *, tini: bool = False, restart: str | None = None
) -> Any:
    """A running process-like container of ``app`` (removed by ``engine_app``)."""
    options: dict[str, Any] = {}
    if tini:
        options["entrypoint"] = ["/usr/bin/tini", "--"]
    if restart:
        options["restart_policy"] = {"Name": restart}
    return client.containers.run(
        TINI_IMAGE if tini else BASE_IMAGE,
        # Without tini, sleep is PID 1 and has no handler: SIGTERM does nothing to it.
        ["sleep", "1000"],
        name=f"{app}.{name}",
        labels={APP_LABEL: app, "com.dokku.process-type": "web"},
        detach=True,
        **options,
    )


def status(client: Any, container_id: str) -> str | None:
    try:
        return str(client.api.inspect_container(container_id)["State"]["Status"])
    except docker.errors.NotFound:
        return None


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


BEGIN = """
import os, signal, sys, time
from pathlib import Path
from dokku_tasks.engine import Engine
from dokku_tasks.retirement import begin

root, app, cid, name = sys.argv[1:]
engine = Engine.connect()
started = time.monotonic()
begin(engine, Path(root), app, [(cid, name)], wait=1, stop_timeout=1)
print(f"{time.monotonic() - started:.3f}", flush=True)
engine.close()
# What a closed terminal does to a CLI: SIGHUP to its whole process group.
os.killpg(0, signal.SIGHUP)
time.sleep(5)
"""


def test_a_detached_retirer_stops_and_removes_a_container_that_ignores_sigterm(
    docker_client: Any, engine_app: str, state: Path
) -> None:
    old = start(docker_client, engine_app, "web.1.retired-a")
    child = subprocess.run(
        [sys.executable, "-c", BEGIN, str(state), engine_app, old.id, old.name],
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )
    assert child.returncode == -signal.SIGHUP, child.stderr
    assert float(child.stdout.strip()) < 0.5  # begin never waits for the container
    # The CLI is gone; only the retirer is left to do the work.
    (record,) = retirement.pending(state)
    if time.time() < record.deadline - 0.2:
        assert status(docker_client, old.id) == "running"  # SIGTERM alone did not stop it
    assert wait_for(lambda: status(docker_client, old.id) is None, 15)
    assert retirement.pending(state) == []
    assert wait_for(lambda: not retirement.retirer_running(state), 5)


def test_sigterm_stops_a_graceful_container_at_once_and_force_retires_the_rest(
    docker_client: Any, engine_app: str, state: Path
) -> None:
    graceful = start(docker_client, engine_app, "web.1.retired-b", tini=True, restart="always")
    stubborn = start(docker_client, engine_app, "web.2.retired-b")
    engine = Engine.connect()
    try:
        started = time.monotonic()
        retirement.begin(
            engine,
            state,
            engine_app,
            [(graceful.id, graceful.name), (stubborn.id, stubborn.name)],
            wait=30,
            stop_timeout=1,
        )
        assert time.monotonic() - started < 0.5
    finally:
        engine.close()  # what the deploy does at its end: the SIGTERM steps have run
    # tini passed SIGTERM on and exited; its restart policy was "no" by then.
    assert wait_for(lambda: status(docker_client, graceful.id) == "exited", 5)
    assert docker_client.api.inspect_container(graceful.id)["HostConfig"]["RestartPolicy"][
        "Name"
    ] in ("no", "")
    time.sleep(0.5)
    assert status(docker_client, graceful.id) == "exited"  # not restarted
    assert status(docker_client, stubborn.id) == "running"
    assert len(retirement.pending(state)) == 2
    pid = retirement.retirer_pid(state)
    assert pid is not None  # waiting for the deadline
    # At a lower CPU priority (field 19 of /proc/PID/stat, after the command's parentheses).
    stat = Path(f"/proc/{pid}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[16]) == 10

    engine = Engine.connect()
    try:
        assert retirement.retire_due(state, engine) == 0  # nothing is due yet
        assert retirement.retire_due(state, engine, force=True) == 2
    finally:
        engine.close()
    assert status(docker_client, graceful.id) is None
    assert status(docker_client, stubborn.id) is None
    assert retirement.pending(state) == []
    # The sleeping retirer sees the records go and exits.
    assert wait_for(lambda: not retirement.retirer_running(state), 5)


def test_a_killed_retirer_leaves_the_record_and_the_next_command_reaps_it(
    docker_client: Any, engine_app: str, state: Path
) -> None:
    old = start(docker_client, engine_app, "web.1.retired-c")
    engine = Engine.connect()
    try:
        retirement.begin(engine, state, engine_app, [(old.id, old.name)], wait=2, stop_timeout=1)
    finally:
        engine.close()
    assert wait_for(lambda: retirement.retirer_pid(state) is not None, 10)
    pid = retirement.retirer_pid(state)
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not retirement.retirer_running(state), 5)

    (record,) = retirement.pending(state)
    assert wait_for(lambda: retirement.due(state), 5)
    time.sleep(0.5)
    assert status(docker_client, old.id) == "running"  # nobody retired it
    assert retirement.pending(state) == [record]

    started = time.monotonic()
    assert retirement.reap_if_due(state)
    assert time.monotonic() - started < 0.5
    assert not retirement.reap_if_due(state)  # one retirer at a time (or already done)
    assert wait_for(lambda: status(docker_client, old.id) is None, 15)
    assert retirement.pending(state) == []
    assert wait_for(lambda: not retirement.retirer_running(state), 5)
