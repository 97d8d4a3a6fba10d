"""Finding app.json and the Procfile in a source tree or inside an image, never outside it."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path

from .errors import SourceError

PROCFILE = "Procfile"


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


#: Reads one path, relative to the image's WORKDIR: (kind, data, path with symlinks resolved).
ImageReader = Callable[[str], tuple[str, bytes, str]]


def read_image_file(
    workdir: str, relative: str, read: ImageReader, what: str = "appjson-path"
) -> bytes | None:
    """Read ``relative`` under an image's WORKDIR (``/`` when empty); ``None`` when missing.

    :raises SourceError: a symlink on the path leads outside the WORKDIR, or it is not a file.
    """
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
    return data


def _inside(path: str, base: str) -> bool:
    return base == "/" or path == base or path.startswith(base.rstrip("/") + "/")
