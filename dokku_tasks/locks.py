"""The per-app locks under a state root, and whether some deploy holds one.

Each lock is an ``flock`` on a file in ``ROOT/locks``: the kernel drops it when its holder
dies, so a held lock always means a live holder on this host.  ``APP.lock`` is held by a
deploy for its whole run; ``APP.images.lock`` guards the app's images from a prune while a
deploy builds.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(root: Path, app: str) -> Path:
    """Where the deploy lock of ``app`` under ``root`` lives."""
    return root / "locks" / f"{app}.lock"


def images_lock_path(root: Path, app: str) -> Path:
    """Where the lock on the images of ``app`` under ``root`` lives."""
    return root / "locks" / f"{app}.images.lock"


@contextmanager
def holding(root: Path, path: Path, *, wait: bool) -> Iterator[bool]:
    """Take the ``flock`` on ``path`` (a file under ``ROOT/locks``, made 0600 when missing),
    waiting for it or not; yield whether it is held, and let it go after.

    :raises StateError: the lock file cannot be created: a state root that is read-only, out
        of space or inodes, or has a file where ``ROOT/locks`` belongs.
    """
    from .apps import state_errors

    with state_errors(root, "write"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            held = False
        yield held
    finally:
        os.close(fd)


@contextmanager
def images_lock(root: Path, app: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold the lock on the app's images; yield whether it is held.

    A deploy holds it from before its build to its end, waiting for it (a retirer's prune
    takes moments); the retirer prunes only when it gets it at once (``wait=False``), so it
    never removes an image whose layers a running build is using as cache.
    """
    with holding(root, images_lock_path(root, app), wait=wait) as held:
        yield held


def lock_is_held(root: Path, app: str) -> bool:
    """Whether a live deploy of ``app`` under ``root`` holds its lock right now.

    A lock file that does not exist (or a root that is gone) is held by nobody.  The caller
    must not hold the lock itself: ``flock`` locks belong to an open file, so a second open
    by the holder would see it as held.
    """
    return file_lock_is_held(lock_path(root, app))


def file_lock_is_held(path: Path) -> bool:
    """Whether some process holds an ``flock`` on ``path`` right now.

    A missing file is held by nobody; a file that cannot be opened counts as held (nothing
    that may belong to a live holder is touched on a guess).  Never raises.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: another holder; anything else: cannot tell
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
