"""The per-app deploy lock under a state root, and whether some deploy holds it.

The lock is an ``flock`` on ``ROOT/locks/APP.lock``: the kernel drops it when its holder dies,
so a held lock always means a live deploy on this host.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def lock_path(root: Path, app: str) -> Path:
    """Where the deploy lock of ``app`` under ``root`` lives."""
    return root / "locks" / f"{app}.lock"


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
