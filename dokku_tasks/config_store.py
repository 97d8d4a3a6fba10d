"""An app's stored config values (Dokku's ``config:set``), and the ``--global`` ones.

Each app's values are one file, ``ROOT/config/config/<app>/ENV``, and the global values
``ROOT/config/config/--global/ENV``: env-file lines (``KEY="value"``, sorted by key) that
``deploy --env-file`` reads too.  Only the owner can read them: the file is mode 0600, its
directories 0700.  A write is atomic (a temporary file in the same directory, fsync, rename,
fsync of the directory) and holds the file's lock, so two writers never lose each other's keys;
readers take no lock.  ``apps:destroy`` removes an app's file with the rest of its properties.

Every key and value is checked before anything is written: a bad one stores nothing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import attrs

from .errors import ConfigError, FileTooLargeError, ParseError, over_the_limit
from .options import is_env_key, parse_env_file, quote_env_value
from .properties import GLOBAL

__all__ = [
    "CONFIG_FILE",
    "MAX_CONFIG_BYTES",
    "MAX_VALUE_BYTES",
    "PLUGIN_DIR",
    "ConfigStore",
    "check_key",
    "check_value",
    "render",
]

#: The property namespace directory the values live under: ``ROOT/config/config/``.
PLUGIN_DIR = "config"
#: The file name, as Dokku names it.
CONFIG_FILE = "ENV"
#: The largest value, in UTF-8 bytes.
MAX_VALUE_BYTES = 1024 * 1024
#: The largest file: an app's whole config.  A write that would make it larger is refused.
MAX_CONFIG_BYTES = 64 * 1024 * 1024

_KEY_RULE = "[A-Za-z_][A-Za-z0-9_]*"


def check_key(key: str) -> str:
    """``key`` if it is a valid config key (``[A-Za-z_][A-Za-z0-9_]*``).

    :raises ConfigError: ``Invalid key name 'KEY': it must match ...`` (an empty key, ``=``,
        a NUL or anything else outside the rule).
    """
    if not is_env_key(key):
        raise ConfigError(f"Invalid key name {_shown(key)}: it must match {_KEY_RULE}")
    return key


def check_value(key: str, value: str) -> str:
    """``value`` if it can be stored for ``key``: no NUL byte, at most :data:`MAX_VALUE_BYTES`.

    :raises ConfigError: naming the key, never showing the value.
    """
    if "\x00" in value:
        raise ConfigError(f"Invalid value for {key}: it contains a NUL byte")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigError(f"Invalid value for {key}: it is not valid Unicode text") from None
    if size > MAX_VALUE_BYTES:
        raise ConfigError(
            f"Invalid value for {key}: it is {size} bytes, {over_the_limit(MAX_VALUE_BYTES)}"
        )
    return value


def render(values: Mapping[str, str]) -> str:
    """The file contents for ``values``: one ``KEY="value"`` line each, sorted by key."""
    return "".join(f"{key}={quote_env_value(values[key])}\n" for key in sorted(values))


@attrs.frozen
class ConfigStore:
    """The stored config values under a state root.  ``app`` is an app name or :data:`GLOBAL`.

    The caller checks that an app exists; the store only keeps files.
    """

    root: Path = attrs.field(converter=Path)

    def path(self, app: str) -> Path:
        """Where ``app``'s values live."""
        return self.root / "config" / PLUGIN_DIR / app / CONFIG_FILE

    def get_all(self, app: str) -> dict[str, str]:
        """``app``'s own values (empty when none are stored).

        :raises ConfigError: the file cannot be read, is too large, or does not parse (a hand
            edit); the message names the file and never shows a value.
        """
        path = self.path(app)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"Cannot read config file {path}: {exc.strerror}") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                reason = os.strerror(errno.EISDIR) if stat.S_ISDIR(info.st_mode) else "not a file"
                raise ConfigError(f"Cannot read config file {path}: {reason}")
            if info.st_size > MAX_CONFIG_BYTES:
                raise FileTooLargeError("config file", str(path), MAX_CONFIG_BYTES, info.st_size)
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"Cannot read config file {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        if len(data) > MAX_CONFIG_BYTES:
            raise FileTooLargeError("config file", str(path), MAX_CONFIG_BYTES)
        try:
            return parse_env_file(data, str(path))
        except ParseError as exc:
            # Only the line: a broken line of a hand-edited file may hold part of a value.
            where = f" at line {exc.line}" if exc.line is not None else ""
            raise ConfigError(
                f"Config file {path} does not parse{where}: fix it, or unset and set its values"
            ) from None

    def merged(self, app: str) -> dict[str, str]:
        """What a deploy of ``app`` gets: the global values with the app's laid over them."""
        return {**self.get_all(GLOBAL), **self.get_all(app)}

    def set(self, app: str, values: Mapping[str, str]) -> None:
        """Store ``values`` for ``app``, keeping its other keys.

        :raises ConfigError: a bad key or value (nothing is stored), or the file cannot be
            written.
        """
        checked = {check_key(key): check_value(key, value) for key, value in values.items()}
        if not checked:
            return
        with self._locked(app):
            current = self.get_all(app)
            current.update(checked)
            self._write(app, current)

    def unset(self, app: str, keys: Iterable[str]) -> list[str]:
        """Remove ``keys`` from ``app``'s values; return the ones that were set, in order.

        :raises ConfigError: a bad key (nothing is removed), or the file cannot be written.
        """
        wanted = [check_key(key) for key in keys]
        if not self.path(app).exists():
            return []
        with self._locked(app):
            current = self.get_all(app)
            removed = [key for key in dict.fromkeys(wanted) if key in current]
            if removed:
                for key in removed:
                    del current[key]
                self._write(app, current)
        return removed

    # -- writing ------------------------------------------------------------------------------

    def _directory(self, app: str) -> Path:
        """``app``'s directory, made private (0700) along with ``ROOT/config/config``."""
        directory = self.path(app).parent
        try:
            for private in (directory.parent, directory):
                private.mkdir(mode=0o700, parents=True, exist_ok=True)
                # mkdir's mode is cut by the umask, and an older directory keeps its own.
                if stat.S_IMODE(os.stat(private).st_mode) != 0o700:
                    os.chmod(private, 0o700)
        except OSError as exc:
            raise ConfigError(f"Cannot write config directory {directory}: {exc.strerror}") from exc
        return directory

    @contextmanager
    def _locked(self, app: str) -> Iterator[None]:
        directory = self._directory(app)
        try:
            fd = os.open(directory / f".{CONFIG_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"Cannot lock config file {self.path(app)}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, app: str, values: Mapping[str, str]) -> None:
        data = render(values).encode("utf-8")
        path = self.path(app)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"Cannot store the config of {app}: it would be {len(data)} bytes, "
                f"{over_the_limit(MAX_CONFIG_BYTES)}"
            )
        directory = path.parent
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{CONFIG_FILE}.")
            try:
                with os.fdopen(fd, "wb") as handle:
                    os.fchmod(handle.fileno(), 0o600)
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise ConfigError(f"Cannot write config file {path}: {exc.strerror}") from exc


def _shown(text: str) -> str:
    """A key for an error line: quoted, shortened."""
    return repr(text if len(text) <= 64 else text[:61] + "...")
