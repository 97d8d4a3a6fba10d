"""Which task containers a deploy may reap: only those no live deploy owns."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dokku_tasks.locks import lock_is_held, lock_path
from dokku_tasks.models import ImageInfo, Task
from dokku_tasks.scheduling import TaskOwner, TaskSpec
from dokku_tasks.specs import APP_LABEL, OWNER_LABEL, TASK_LABEL


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A state root whose lock of app ``web`` is held by an open file, as a live deploy's."""
    root = tmp_path / "live"
    path = lock_path(root, "web")
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    yield root
    os.close(fd)


def test_lock_path() -> None:
    assert lock_path(Path("/srv/state"), "web") == Path("/srv/state/locks/web.lock")


def test_a_held_lock_is_seen_as_held(held: Path) -> None:
    assert lock_is_held(held, "web")
    assert not lock_is_held(held, "other")  # another app's lock is free


def test_a_released_lock_is_free(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "web")
    path.parent.mkdir(parents=True)
    path.touch()
    assert not lock_is_held(tmp_path, "web")
    # Looking does not take it: the lock is still free afterwards.
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_a_missing_lock_or_root_is_held_by_nobody(tmp_path: Path) -> None:
    assert not lock_is_held(tmp_path, "web")
    assert not lock_is_held(tmp_path / "gone", "web")


def test_a_lock_that_cannot_be_opened_counts_as_held(tmp_path: Path) -> None:
    # A path through a file (ENOTDIR): nothing can be said, so nothing is reaped.
    (tmp_path / "file").write_text("")
    assert lock_is_held(tmp_path / "file", "web")


def test_owner_labels_and_key() -> None:
    owner = TaskOwner("/srv/state")
    assert owner.root == Path("/srv/state")
    assert owner.labels == {OWNER_LABEL: "/srv/state"}
    assert len(owner.key) == 12 and owner.key == TaskOwner(Path("/srv/state")).key
    assert owner.key != TaskOwner("/srv/other").key


def test_own_and_unowned_containers_are_orphans(held: Path, tmp_path: Path) -> None:
    # Our own root's containers are orphans even though our own lock is held (by us).
    mine = TaskOwner(held)
    assert mine.is_orphan("web", {OWNER_LABEL: str(held)})
    # Containers from before owners were recorded.
    assert mine.is_orphan("web", {APP_LABEL: "web", TASK_LABEL: "release"})


def test_another_roots_live_deploy_keeps_its_containers(held: Path, tmp_path: Path) -> None:
    other = TaskOwner(tmp_path / "other-root")
    assert not other.is_orphan("web", {OWNER_LABEL: str(held)})
    # The same root's lock for another app is free: that deploy is gone.
    assert other.is_orphan("api", {OWNER_LABEL: str(held)})
    assert other.is_orphan("web", {OWNER_LABEL: str(tmp_path / "deleted-root")})


def test_task_spec_labels_carry_the_owner() -> None:
    image = ImageInfo(ref="x", id="sha256:1", entrypoint=None, cmd=None, workdir="", labels={})
    task = Task(phase="release", command="true", source="Procfile")
    spec = TaskSpec(app="web", task=task, image=image, argv=("true",))
    assert spec.labels == {APP_LABEL: "web", TASK_LABEL: "release"}
    owned = TaskSpec(app="web", task=task, image=image, argv=("true",), owner=TaskOwner("/s"))
    assert owned.labels == {APP_LABEL: "web", TASK_LABEL: "release", OWNER_LABEL: "/s"}
