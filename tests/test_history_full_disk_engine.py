"""A really full disk under the history (a small tmpfs, filled): the deploy's outcome, exit
status and output are its own, the user sees one warning line, and later commands work."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks import history
from tests.conftest import write_app
from tests.deploys import DOCKERFILE, WEB_ONLY, dokku

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

#: A predeploy that writes far more than a page of output.
LOUD = "i=0; while [ $i -lt 400 ]; do echo line $i of the predeploy output; i=$((i+1)); done"


@pytest.fixture
def small_tmpfs() -> Iterator[Callable[[Path, int], Path]]:
    """Mount a tmpfs of ``size`` bytes at a path; every mount is undone after the test, even
    when it fails."""
    mounted: list[Path] = []

    def mount(path: Path, size: int) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        done = subprocess.run(["umount", str(path)], check=False, capture_output=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the file system of ``directory`` up to ``leave`` bytes; return the filler."""
    filler = directory / ".filler"
    stats = os.statvfs(directory)
    room = stats.f_bavail * stats.f_frsize - leave
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        handle.write(b"\0" * max(room, 0))
    return filler


def no_room(directory: Path) -> bool:
    try:
        with open(directory / ".probe", "wb") as handle:
            handle.write(b"x")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return exc.errno == errno.ENOSPC
    finally:
        with contextlib.suppress(OSError):
            (directory / ".probe").unlink()
    return False


@pytest.fixture
def loud_app(tmp_path: Path) -> Path:
    return write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "Procfile": "release: echo released\n" + WEB_ONLY,
            "app.json": {"scripts": {"dokku": {"predeploy": LOUD}}},
        },
    )


def records(root: Path, app: str) -> list[dict[str, Any]]:
    done = dokku(root, "deploys:list", app, "--format", "json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_a_history_full_from_the_start_leaves_the_deploy_alone(
    docker_client: Any,
    engine_app: str,
    root: Path,
    loud_app: Path,
    small_tmpfs: Callable[[Path, int], Path],
) -> None:
    disk = small_tmpfs(root / "history", 64 * 1024)
    filler = fill(disk)
    assert no_room(disk)
    deployed = dokku(root, "deploy", engine_app, "--source", str(loud_app))
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stderr.splitlines() == [
        f" !     History: cannot record this deploy of {engine_app} (No space left on device)"
    ]
    assert "       line 399 of the predeploy output" in deployed.stdout
    assert f"=====> Application deployed: {engine_app}" in deployed.stdout

    # Later commands work: nothing recorded; once there is room, deploys are recorded again.
    listed = dokku(root, "deploys:list", engine_app)
    assert listed.returncode == 0, listed.stderr
    filler.unlink()
    again = dokku(root, "deploy", engine_app, "--source", str(loud_app))
    assert (again.returncode, again.stderr) == (0, "")
    [record] = history.list_deploys(root, engine_app)[0]
    assert (record.id, record.status) == (1, "succeeded")


def test_a_history_that_fills_up_during_the_deploy_still_gets_the_outcome(
    docker_client: Any,
    engine_app: str,
    root: Path,
    loud_app: Path,
    small_tmpfs: Callable[[Path, int], Path],
) -> None:
    disk = small_tmpfs(root / "history", 256 * 1024)
    # Room for the record and the first events, not for the predeploy's output.
    filler = fill(disk, leave=8 * 1024)
    deployed = dokku(root, "deploy", engine_app, "--source", str(loud_app))
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stderr.splitlines() == [
        f" !     History: cannot record deploy 1 of {engine_app} (No space left on device); "
        "the deploy goes on without it"
    ]
    assert "       line 399 of the predeploy output" in deployed.stdout
    assert "       released" in deployed.stdout
    assert no_room(disk)
    # The outcome is written over the record in place, in the room it kept.
    [record] = history.list_deploys(root, engine_app)[0]
    assert (record.id, record.status, record.error) == (1, "succeeded", None)
    assert record.finished is not None and record.image is not None
    # What was kept replays; the commands that read the history work.
    logs = dokku(root, "deploys:logs", engine_app, "1")
    assert logs.returncode == 0, logs.stderr
    shown = dokku(root, "deploys:show", engine_app, "1")
    assert shown.returncode == 0 and "succeeded" in shown.stdout, shown.stderr

    filler.unlink()
    again = dokku(root, "deploy", engine_app, "--source", str(loud_app))
    assert (again.returncode, again.stderr) == (0, "")
    newest = history.list_deploys(root, engine_app)[0][0]
    assert (newest.id, newest.status) == (2, "succeeded")
    replayed = [
        e
        for e in history.read_events(root, engine_app, 2)
        if getattr(e, "phase", "") == "predeploy"
    ]
    assert any(getattr(e, "line", "") == "line 399 of the predeploy output" for e in replayed)
