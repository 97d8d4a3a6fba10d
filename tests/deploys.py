"""Helpers for tests that drive real deploys: the CLI in a child process, its live output,
and the state a deploy leaves on the engine."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_IMAGE, write_app

DOCKERFILE = f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n'
ENTRYPOINT_DOCKERFILE = (
    f"FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\n"
    'ENTRYPOINT ["/app/entrypoint"]\nCMD ["sleep", "3600"]\n'
)
#: An ENTRYPOINT that passes its arguments through unchanged.
PASSTHROUGH = '#!/bin/sh\nexec "$@"\n'
#: A web process that stops at once on SIGTERM, so replacing it does not wait out a timeout.
WEB_ONLY = "web: sh -c \"trap 'exit 0' TERM; sleep 3600 & wait\"\n"
APP_LABEL = "com.dokku.app-name"
TASK_LABEL = "dokku_phase_script"
#: Generous bounds: a hang fails instead of blocking the suite.
DEPLOY_TIMEOUT = 120


def predeploy(command: str) -> dict[str, Any]:
    return {"scripts": {"dokku": {"predeploy": command}}}


def dokku_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dokku_tasks", "--root", str(root), *args]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def dokku(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = DEPLOY_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dokku_cmd(root, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def retire_now(root: Path) -> int:
    """Do now what the background retirer does after ``wait-to-retire``: stop and remove the
    old process containers the deploys under ``root`` handed to the retirement."""
    from dokku_tasks.engine import Engine
    from dokku_tasks.retirement import retire_due

    engine = Engine.connect()
    try:
        return retire_due(root, engine, force=True)
    finally:
        engine.close()


def error_lines(stderr: str) -> list[str]:
    return stderr.splitlines()


def task_containers(client: Any, app: str) -> list[Any]:
    found = client.containers.list(all=True, filters={"label": f"{APP_LABEL}={app}"})
    return [c for c in found if c.labels.get(TASK_LABEL)]


def running_state(client: Any, app: str) -> tuple[str, str, str]:
    """The web container's id and status and the deployed tag's image id."""
    web = client.containers.get(f"{app}.web.1")
    return web.id, web.status, client.images.get(f"dokku/{app}:latest").id


def good_deploy(client: Any, root: Path, app: str, directory: Path) -> tuple[str, str, str]:
    """Deploy a web-only app; return its running state."""
    source = write_app(directory, {"Dockerfile": DOCKERFILE, "Procfile": WEB_ONLY})
    done = dokku(root, "deploy", app, "--source", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    return running_state(client, app)


class LiveDeploy:
    """``dokku-tasks deploy`` running in a child process, its output collected as it comes.

    Started with ``subprocess.Popen`` from this (Python) process, so SIGINT keeps its default
    disposition in the child (engine-pitfalls 6).
    """

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=False,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Wait until a stdout line contains ``text``; fail on timeout or an early exit."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.out):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._alive()):
                    pytest.fail(f"never saw {text!r}; stdout={self.stdout} stderr={self.stderr}")
                self._changed.wait(timeout=min(left, 0.5))

    def _alive(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def finish(self, timeout: float = DEPLOY_TIMEOUT) -> int:
        code = self.proc.wait(timeout=timeout)
        self._close()
        return code

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def wait_for_handler(self, signum: int, timeout: float = 60) -> None:
        """Wait until the child catches ``signum`` (its handler is installed: the CLI has
        started), read from ``SigCgt`` in ``/proc/PID/status``; a loaded machine can take
        seconds to start Python."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = Path(f"/proc/{self.proc.pid}/status").read_text()
            except OSError:
                break
            caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
            if int(caught.split()[1], 16) & (1 << (signum - 1)):
                return
            time.sleep(0.05)
        pytest.fail(f"the child never caught signal {signum}; stderr={self.stderr}")

    def stop(self) -> None:
        """Kill the child if a failed assertion left it running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._close()

    @property
    def stdout(self) -> str:
        return "\n".join(self.out)

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)
