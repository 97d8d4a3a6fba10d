"""Finding app.json and the Procfile in a source tree or inside an image, never outside it."""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .appjson import MAX_APP_JSON_BYTES
from .errors import FileTooLargeError, PropertyError, SourceError
from .procfile import MAX_PROCFILE_BYTES

if TYPE_CHECKING:
    from .models import AppFile
    from .specs import ImageFile

PROCFILE = "Procfile"

#: The most a file read out of an image may hold: the larger of the app.json and Procfile
#: limits.  The engine refuses a larger file by its size, before any of it is read.
MAX_IMAGE_FILE_BYTES = max(MAX_APP_JSON_BYTES, MAX_PROCFILE_BYTES)


def clean_relative(path: str, what: str = "appjson-path") -> str:
    """``path`` with leading and trailing ``/`` stripped; refuses ``..`` and empty parts.

    :raises SourceError: the path would leave its base directory.
    """
    stripped = path.strip("/")
    if not stripped:
        raise SourceError(f"The {what} is empty")
    normal = posixpath.normpath(stripped)
    if normal == ".." or normal.startswith("../"):
        raise SourceError(f"The {what} {path!r} leaves the base directory")
    return normal


def check_path_setting(value: str, setting: str) -> str:
    """``value`` if it may be stored as the path property ``setting`` (``appjson-path``,
    ``procfile-path``): once its leading and trailing ``/`` are stripped, as a deploy strips
    them, it names a file and stays inside its base directory.  Stored as given, so a report
    shows what was set.

    :raises PropertyError: ``Invalid SETTING 'VALUE': ...``, one line.
    """
    relative = value.strip("/")
    if "\x00" in value or not relative.strip():
        raise PropertyError(f"Invalid {setting} {value!r}: it must name a file")
    normal = posixpath.normpath(relative)
    if normal == ".." or normal.startswith("../"):
        raise PropertyError(
            f"Invalid {setting} {value!r}: it must stay inside the source tree "
            "(or the image's WORKDIR)"
        )
    return value


def read_limited(path: Path, limit: int, filename: str, shown: object = None) -> bytes:
    """The contents of ``path``, reading at most ``limit + 1`` bytes of it.

    Works on whatever ``path`` is: a regular file over ``limit`` (by its size) is refused
    before anything is read; a pipe, a FIFO or a character device (``/dev/zero``) is read up
    to one byte past ``limit``, so nothing endless or huge is ever held in memory.

    :param filename: what the error calls the file (``app.json``, ``Procfile``, ``env file``).
    :param shown: the path as the error shows it (default: ``path``).
    :raises FileTooLargeError: ``path`` holds more than ``limit`` bytes.
    :raises OSError: ``path`` cannot be opened or read; the caller words that.
    """
    where = str(path if shown is None else shown)
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else None
        if size is not None and size > limit:
            raise FileTooLargeError(filename, where, limit, size)
        data = handle.read(limit + 1)
    if len(data) > limit:
        # A regular file that grew while it was read, or a stream: its size is not known.
        raise FileTooLargeError(filename, where, limit, None)
    return data


def read_source_file(
    base: Path,
    relative: str,
    what: str = "appjson-path",
    *,
    limit: int | None = None,
    filename: str | None = None,
) -> bytes | None:
    """Read ``base/relative``; ``None`` when it does not exist.

    At most ``limit + 1`` bytes are read (default: :data:`~dokku_tasks.appjson.MAX_APP_JSON_BYTES`
    for app.json, :data:`~dokku_tasks.procfile.MAX_PROCFILE_BYTES` for the Procfile, which
    ``what`` of ``Procfile path`` selects); ``filename`` names the file in errors.

    :raises SourceError: the path, or a symlink on it, leads outside ``base``, loops, or is
        not a regular file, or the file cannot be read.
    :raises FileTooLargeError: the file is over ``limit``.
    """
    limit, filename = _limit_for(what, limit, filename)
    cleaned = clean_relative(relative, what)
    candidate = base / cleaned
    try:
        root = base.resolve()
        candidate = root / cleaned
        resolved = candidate.resolve()
    except RuntimeError:  # Python before 3.13 raises this for a symlink loop
        raise SourceError(f"Cannot read {candidate}: {os.strerror(errno.ELOOP)}") from None
    except OSError as exc:
        raise SourceError(f"Cannot read {candidate}: {exc.strerror or exc}") from None
    if not resolved.is_relative_to(root):
        raise SourceError(f"The {what} {relative!r} leads outside the source tree ({resolved})")
    try:
        mode = resolved.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise SourceError(f"Cannot read {candidate}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise SourceError(f"The {what} {relative!r} is not a regular file")
    try:
        return read_limited(resolved, limit, filename, shown=candidate)
    except OSError as exc:
        raise SourceError(f"Cannot read {candidate}: {exc.strerror or exc}") from exc


#: Reads one path, relative to the image's WORKDIR: (kind, data, path with symlinks resolved).
ImageReader = Callable[[str], tuple[str, bytes, str]]


def image_paths(files: Sequence[AppFile]) -> list[str]:
    """The paths (under the WORKDIR, cleaned) to ask the engine for to read ``files``."""
    return sorted({clean_relative(file.path, file.setting) for file in files})


def read_app_files(
    workdir: str, files: Sequence[AppFile], read: Mapping[str, ImageFile]
) -> dict[str, bytes | None]:
    """Each of ``files`` by name, as :func:`read_image_file` takes it from ``read`` (what the
    engine read of :func:`image_paths`, by path): its bytes, or ``None`` when missing.

    :raises SourceError: a file leads outside the WORKDIR, or is not a regular file.
    :raises FileTooLargeError: a file is over its ``max_bytes``.
    """

    def reader(path: str) -> tuple[str, bytes, str]:
        return read[path].kind, read[path].data, read[path].resolved

    return {
        file.name: read_image_file(
            workdir, file.path, reader, file.setting, limit=file.max_bytes, filename=file.name
        )
        for file in files
    }


def read_image_file(
    workdir: str,
    relative: str,
    read: ImageReader,
    what: str = "appjson-path",
    *,
    limit: int | None = None,
    filename: str | None = None,
) -> bytes | None:
    """Read ``relative`` under an image's WORKDIR (``/`` when empty); ``None`` when missing.

    ``limit`` and ``filename`` default as for :func:`read_source_file`.  (The engine already
    refuses a file over :data:`MAX_IMAGE_FILE_BYTES` without reading it.)

    :raises SourceError: a symlink on the path leads outside the WORKDIR, or it is not a file.
    :raises FileTooLargeError: the file is over ``limit``.
    """
    limit, filename = _limit_for(what, limit, filename)
    base = posixpath.normpath(workdir or "/")
    kind, data, resolved = read(clean_relative(relative, what))
    if not _inside(posixpath.normpath(resolved), base):
        raise SourceError(
            f"The {what} {relative!r} leads outside {base} in the image (to {resolved})"
        )
    if kind == "missing":
        return None
    if kind != "file":
        raise SourceError(f"The {what} {relative!r} is not a regular file in the image")
    if len(data) > limit:
        raise FileTooLargeError(filename, f"{resolved} in the image", limit, len(data))
    return data


def _limit_for(what: str, limit: int | None, filename: str | None) -> tuple[int, str]:
    """The size limit and the file's name in errors: the Procfile's for ``Procfile path``,
    app.json's otherwise, unless given."""
    if what == "Procfile path":
        return (MAX_PROCFILE_BYTES if limit is None else limit), filename or PROCFILE
    return (MAX_APP_JSON_BYTES if limit is None else limit), filename or "app.json"


def _inside(path: str, base: str) -> bool:
    return base == "/" or path == base or path.startswith(base.rstrip("/") + "/")
