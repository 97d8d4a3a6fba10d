"""Per-app and global properties on disk, in Dokku's layout.

``ROOT/config/<plugin>/<app>/<property>`` holds one raw value (no trailing newline, mode 0600);
global values live under the literal directory ``--global``.  Writes are atomic: a temp file in
the same directory, fsync, rename, fsync of the directory.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import attrs

from .errors import PropertyError, over_the_limit

GLOBAL = "--global"

#: A property value is a short string (a command-line argument, so at most 128 KiB on Linux):
#: a property file larger than this is damage, refused without reading it whole.
MAX_PROPERTY_BYTES = 1024 * 1024


def default_root() -> Path:
    """The state root: ``$DOKKU_TASKS_ROOT``, else ``$XDG_DATA_HOME/dokku-tasks``."""
    env = os.environ.get("DOKKU_TASKS_ROOT")
    if env:
        return Path(env)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "dokku-tasks"


@attrs.frozen
class PropertyStore:
    """Properties under ``root``.  ``app`` is an app name or :data:`GLOBAL`."""

    root: Path = attrs.field(converter=Path)

    def path(self, plugin: str, app: str, name: str) -> Path:
        return self.root / "config" / plugin / app / name

    def get(self, plugin: str, app: str, name: str, default: str = "") -> str:
        """The raw value, or ``default`` when the property is not set.

        Only a regular file is read, and at most :data:`MAX_PROPERTY_BYTES` of it: a FIFO in
        its place never blocks the command, and a huge file never fills memory.

        :raises PropertyError: the file cannot be read, is not a regular file, is too large or
            is not UTF-8; the message names the file.
        """
        path = self.path(plugin, app, name)
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return default
        except OSError as exc:
            raise PropertyError(f"Cannot read property file {path}: {exc.strerror}") from exc
        try:
            # Checked on the descriptor: os.fdopen refuses a directory but leaves it open.
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                os.close(fd)
                reason = os.strerror(errno.EISDIR) if stat.S_ISDIR(mode) else "not a regular file"
                raise PropertyError(f"Cannot read property file {path}: {reason}")
            with os.fdopen(fd, "rb") as handle:
                data = handle.read(MAX_PROPERTY_BYTES + 1)
            if len(data) > MAX_PROPERTY_BYTES:
                raise PropertyError(f"Property file {path} is {over_the_limit(MAX_PROPERTY_BYTES)}")
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PropertyError(f"Property file {path} is not valid UTF-8") from exc
        except OSError as exc:
            raise PropertyError(f"Cannot read property file {path}: {exc.strerror}") from exc

    def set(self, plugin: str, app: str, name: str, value: str) -> None:
        """Write ``value`` atomically with mode 0600."""
        directory = self.path(plugin, app, name).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(value.encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, directory / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(directory)
        except OSError as exc:
            raise PropertyError(
                f"Cannot write property {directory / name}: {exc.strerror}"
            ) from exc

    def unset(self, plugin: str, app: str, name: str) -> None:
        """Remove the property (a no-op when it is not set)."""
        path = self.path(plugin, app, name)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise PropertyError(f"Cannot remove property {path}: {exc.strerror}") from exc
        if path.parent.is_dir():
            _fsync_dir(path.parent)

    def destroy_app(self, app: str) -> None:
        """Remove every plugin's properties of ``app``."""
        config = self.root / "config"
        if not config.is_dir():
            return
        for plugin_dir in config.iterdir():
            target = plugin_dir / app
            if target.is_dir():
                shutil.rmtree(target)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
