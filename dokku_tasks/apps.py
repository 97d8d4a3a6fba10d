"""Apps: their names and their existence under the state root (``ROOT/apps/<app>/``)."""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from .errors import AppExistsError, AppNotFoundError, InvalidAppNameError, StateError
from .properties import PropertyStore

#: The longest app name: it must fit a DNS label, as Dokku's does.
MAX_APP_NAME_LENGTH = 63

# An app name is the path component of its image reference (dokku/APP): Docker allows
# lowercase letters and digits separated by one or more dashes (or by ., _ or __, which our
# names leave out), so a name can neither start nor end with a separator.
_NAME = re.compile(r"[a-z0-9]+(?:-+[a-z0-9]+)*")


def _is_app_name(name: str) -> bool:
    return len(name) <= MAX_APP_NAME_LENGTH and _NAME.fullmatch(name) is not None


def validate_app_name(name: str) -> str:
    """Return ``name`` if it is a valid app name, else raise :class:`InvalidAppNameError`.

    Valid: lowercase letters, digits and dashes, starting and ending with a letter or digit, at
    most 63 characters (so ``dokku/APP:latest`` is a valid image reference).  Checked before
    anything touches disk, so ``../x`` never becomes a path.
    """
    if not _is_app_name(name):
        raise InvalidAppNameError(
            f"Invalid app name {name!r}: use lowercase letters, digits and dashes, "
            f"starting and ending with a letter or digit, at most {MAX_APP_NAME_LENGTH} characters"
        )
    return name


def _not_a_directory(path: Path) -> Path:
    """The first component of ``path`` that exists and is not a directory (else ``path``)."""
    for candidate in (*reversed(path.parents), path):
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            break
        if not stat.S_ISDIR(mode):
            return candidate
    return path


def state_error(root: Path, action: str, exc: OSError) -> StateError:
    """The :class:`StateError` for ``exc``, raised while ``action`` (read or write) ran on
    ``root``: it names the path that failed, and for a file in a directory's place, that file."""
    path = Path(os.fsdecode(exc.filename)) if exc.filename is not None else root
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        # mkdir(exist_ok=True) says "File exists" for a file in the way; name that file.
        return StateError(action, root, _not_a_directory(path), os.strerror(errno.ENOTDIR))
    return StateError(action, root, path, exc.strerror or str(exc))


@contextmanager
def state_errors(root: Path, action: str) -> Iterator[None]:
    """Turn an :class:`OSError` on the state root into one :class:`StateError` line."""
    try:
        yield
    except OSError as exc:
        raise state_error(root, action, exc) from exc


@attrs.frozen
class AppRegistry:
    """The apps that exist under a state root."""

    root: Path = attrs.field(converter=Path)

    @property
    def properties(self) -> PropertyStore:
        return PropertyStore(self.root)

    def _dir(self, app: str) -> Path:
        return self.root / "apps" / validate_app_name(app)

    def exists(self, app: str) -> bool:
        """Whether ``app`` exists.

        :raises StateError: the state root cannot be read, or a file stands where the app's
            directory (or a directory above it) belongs.
        """
        directory = self._dir(app)
        try:
            mode = os.stat(directory).st_mode
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise state_error(self.root, "read", exc) from exc
        if not stat.S_ISDIR(mode):
            raise StateError("read", self.root, directory, os.strerror(errno.ENOTDIR))
        return True

    def require(self, app: str) -> str:
        """``app`` if it exists; :class:`AppNotFoundError` (exit 20) otherwise."""
        if not self.exists(app):
            raise AppNotFoundError(app)
        return app

    def create(self, app: str) -> None:
        """Create ``app``.

        :raises AppExistsError: it exists.
        :raises StateError: the state root cannot be written (read-only, full, ...).
        """
        directory = self._dir(app)
        with state_errors(self.root, "write"):
            directory.parent.mkdir(parents=True, exist_ok=True)
            try:
                directory.mkdir()
            except FileExistsError:
                raise AppExistsError(f"Name is already taken: {app}") from None

    def destroy(self, app: str) -> None:
        """Remove the app and every property it has (the heroku.postdeploy marker included)."""
        directory = self._dir(self.require(app))
        with state_errors(self.root, "write"):
            self.properties.destroy_app(app)
            shutil.rmtree(directory)

    def list(self) -> list[str]:
        """The apps, sorted; entries of ``ROOT/apps`` that are not valid app names are skipped.

        :raises StateError: ``ROOT/apps`` (or the root) cannot be read, or is a file.
        """
        apps_dir = self.root / "apps"
        try:
            with os.scandir(apps_dir) as entries:
                return sorted(
                    entry.name for entry in entries if _is_app_name(entry.name) and entry.is_dir()
                )
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise state_error(self.root, "read", exc) from exc
