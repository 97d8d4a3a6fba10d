"""Finding app.json and the Procfile in a source tree or inside an image, never outside it."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from .errors import SourceError

PROCFILE = "Procfile"
_MAX_LINKS = 8


def clean_relative(path: str, what: str = "appjson-path") -> str:
    """``path`` with leading and trailing ``/`` stripped; refuses ``..`` and empty parts.

    :raises SourceError: the path would leave its base directory.
    """
    stripped = path.strip("/")
    if not stripped:
        raise SourceError(f"The {what} is empty")
    parts = PurePosixPath(stripped).parts
    if ".." in parts:
        raise SourceError(f"The {what} {path!r} leaves the base directory")
    return stripped


def read_source_file(base: Path, relative: str, what: str = "appjson-path") -> bytes | None:
    """Read ``base/relative``; ``None`` when it does not exist.

    :raises SourceError: the path, or a symlink on it, leads outside ``base``.
    """
    root = base.resolve()
    candidate = root / clean_relative(relative, what)
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise SourceError(f"The {what} {relative!r} leads outside the source tree ({resolved})")
    if not resolved.exists():
        return None
    if not resolved.is_file():
        raise SourceError(f"The {what} {relative!r} is not a regular file")
    try:
        return resolved.read_bytes()
    except OSError as exc:
        raise SourceError(f"Cannot read {candidate}: {exc.strerror}") from exc


#: Reads one absolute path from an image: (kind, data, link target).
ImageReader = Callable[[str], tuple[str, bytes, str]]


def image_path(workdir: str, relative: str, what: str = "appjson-path") -> str:
    """The absolute path of ``relative`` under an image's WORKDIR (``/`` when empty)."""
    return posixpath.join(workdir or "/", clean_relative(relative, what))


def read_image_file(
    workdir: str, relative: str, read: ImageReader, what: str = "appjson-path"
) -> bytes | None:
    """Read ``relative`` under an image's WORKDIR, following symlinks that stay inside it."""
    base = posixpath.normpath(workdir or "/")
    path = image_path(workdir, relative, what)
    for _ in range(_MAX_LINKS):
        kind, data, target = read(path)
        if kind == "missing":
            return None
        if kind == "file":
            return data
        if kind != "symlink":
            raise SourceError(f"The {what} {relative!r} is not a regular file in the image")
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if not _inside(path, base):
            raise SourceError(
                f"The {what} {relative!r} is a symlink leading outside {base} in the image"
            )
    raise SourceError(f"The {what} {relative!r} has too many levels of symlinks in the image")


def _inside(path: str, base: str) -> bool:
    return base == "/" or path == base or path.startswith(base.rstrip("/") + "/")
