"""Files of an image read straight from its layers, without a container.

``deploy --plan`` reads app.json and the Procfile of an ``--image`` deploy with this, where the
deploy itself reads them through a container that is created and never started
(:meth:`~dokku_tasks.engine.Engine.read_image_files`).  A plan makes no write on the engine, so
it cannot create that container; instead it rebuilds, in Python, what the engine would show:

- :class:`MergedView`: the union of the image's layers as the kernel's overlay mount merges
  them.  Top layer first; a whiteout (a ``0/0`` character device, as overlay2 stores it, or a
  ``.wh.NAME`` file, as a layer tar carries it) hides the name in every layer below; an opaque
  directory (``trusted.overlay.opaque``/``user.overlay.opaque`` ``y``, or a ``.wh..wh..opq``
  file) hides the directories below it; a directory merges with the directories below it down
  to the first layer where that name is not a directory.  On top sits the container's init
  layer (:data:`INIT_LAYER`: ``/.dockerenv``, ``/etc/hosts`` ...), which every container of the
  image has too.
- :func:`follow_symlinks_in_scope`: the engine's ``FollowSymlinkInScope``: symlinks resolved
  with the image's ``/`` as the root (an absolute target, or ``..`` past ``/``, stays inside).
- :func:`read_files`: the same steps, stats and errors as the container read, path by path, so
  that a plan and a deploy get the same :class:`~dokku_tasks.specs.ImageFile` (content,
  ``missing``, ``other``, the resolved path, the size refusal, the engine's error).

Nothing here talks to the engine: :mod:`dokku_tasks.engine` finds the layers and checks they
are the image's.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import attrs

from .errors import EngineError, FileTooLargeError
from .specs import ImageFile

FILE = "file"
DIRECTORY = "directory"
SYMLINK = "symlink"
OTHER = "other"
WHITEOUT = "whiteout"

#: A whiteout or an opaque marker as a layer tar (and the naive layer formats) write them.
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
#: The extended attributes that mark an overlay directory opaque (root's, then rootless').
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")

#: The engine's ``FollowSymlinkInScope`` gives up after this many path elements.
MAX_RESOLVE_STEPS = 255


class ResolveError(Exception):
    """A path cannot be resolved in the image (a component is not a directory, or the
    symlinks loop); the engine answers such a request with HTTP 500."""


@attrs.frozen
class Entry:
    """What one name is in a layer (or in the merged view)."""

    kind: str
    size: int = 0
    #: A symlink's target, as written.
    target: str = ""
    #: A directory that hides the directories of the layers below.
    opaque: bool = False


class Layer(Protocol):
    """One layer of an image, read-only."""

    def entry(self, path: str) -> Entry | None:
        """What the absolute, normalised ``path`` is in this layer alone; ``None`` when the
        layer has no such name.  Called only when every parent of ``path`` is a directory of
        this layer."""

    def open(self, path: str) -> BinaryIO:
        """The regular file at ``path`` in this layer."""


class DirectoryLayer:
    """A layer unpacked in a directory: an overlay2 ``diff`` directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def entry(self, path: str) -> Entry | None:
        host = self._host(path)
        name = posixpath.basename(path)
        if name.startswith(WHITEOUT_PREFIX):
            return None  # a marker, never a file of the image
        try:
            info = os.lstat(host)
        except FileNotFoundError:
            if name and os.path.lexists(host.with_name(WHITEOUT_PREFIX + name)):
                return Entry(WHITEOUT)
            return None
        mode = info.st_mode
        if stat.S_ISCHR(mode) and info.st_rdev == 0:
            return Entry(WHITEOUT)
        if stat.S_ISDIR(mode):
            return Entry(DIRECTORY, opaque=self._opaque(host))
        if stat.S_ISLNK(mode):
            return Entry(SYMLINK, target=os.readlink(host))
        if stat.S_ISREG(mode):
            return Entry(FILE, size=info.st_size)
        return Entry(OTHER, size=info.st_size)

    @staticmethod
    def _opaque(host: Path) -> bool:
        for attribute in OPAQUE_XATTRS:
            try:
                if os.getxattr(host, attribute, follow_symlinks=False) == b"y":
                    return True
            except OSError as exc:
                if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                    raise
        return os.path.lexists(host / OPAQUE_MARKER)

    def open(self, path: str) -> BinaryIO:
        return open(self._host(path), "rb")


class MemoryLayer:
    """A layer given as data: ``{path: Entry}`` and the files' bytes (tests, the init layer).

    A directory's parents must be listed too; ``/`` is implied.
    """

    def __init__(
        self, entries: Mapping[str, Entry], data: Mapping[str, bytes] | None = None
    ) -> None:
        self.entries = dict(entries)
        self.data = dict(data or {})

    def entry(self, path: str) -> Entry | None:
        if path == "/":
            return self.entries.get("/", Entry(DIRECTORY))
        return self.entries.get(path)

    def open(self, path: str) -> BinaryIO:
        import io

        return io.BytesIO(self.data.get(path, b""))


def _init_layer() -> MemoryLayer:
    """The engine's init layer (``daemon/initlayer``): what every container adds on top of
    its image, whether it runs or not."""
    directories = ("/dev", "/dev/pts", "/dev/shm", "/proc", "/sys", "/etc")
    files = ("/.dockerenv", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/dev/console")
    entries = {path: Entry(DIRECTORY) for path in directories}
    entries.update({path: Entry(FILE) for path in files})
    entries["/etc/mtab"] = Entry(SYMLINK, target="/proc/mounts")
    return MemoryLayer(entries)


INIT_LAYER = _init_layer()


class MergedView:
    """The layers as one tree, the way the overlay mount of a container of the image shows
    it.  ``layers``: the top layer first."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        self.layers = list(layers)

    def _lookup(self, path: str) -> tuple[Entry, list[Layer]] | None:
        """The entry at ``path`` and the layers that make it up (top first).

        :raises ResolveError: a component of ``path`` is not a directory (``ENOTDIR``).
        """
        current: list[Layer] = []
        for layer in self.layers:
            current.append(layer)
            root = layer.entry("/")
            if root is not None and root.opaque:
                break
        entry = Entry(DIRECTORY)
        walked = ""
        for name in (part for part in path.split("/") if part):
            if entry.kind != DIRECTORY:
                raise ResolveError(f"{walked}: {os.strerror(errno.ENOTDIR)}")
            walked = f"{walked}/{name}"
            found: Entry | None = None
            merged: list[Layer] = []
            for layer in current:
                candidate = layer.entry(walked)
                if candidate is None:
                    continue
                if candidate.kind == WHITEOUT:
                    break
                if found is None:
                    found = candidate
                elif candidate.kind != DIRECTORY:
                    break  # a lower non-directory ends the merge
                merged.append(layer)
                if candidate.kind != DIRECTORY or candidate.opaque:
                    break
            if found is None:
                return None
            entry, current = found, merged
        return entry, current

    def lstat(self, path: str) -> Entry | None:
        """What ``path`` is, without following a symlink at its end; ``None`` when missing.

        :raises ResolveError: a component of ``path`` is not a directory.
        """
        found = self._lookup(path)
        return None if found is None else found[0]

    def read(self, path: str, size: int) -> bytes:
        """At most ``size`` bytes of the regular file at ``path``."""
        found = self._lookup(path)
        if found is None or found[0].kind != FILE:
            raise ResolveError(f"{path}: not a regular file")
        with found[1][0].open(path) as handle:
            return handle.read(size)


def follow_symlinks_in_scope(view: MergedView, path: str) -> str:
    """``path`` with every symlink on it resolved, the image's ``/`` as the root.

    The engine's ``FollowSymlinkInScope``: a component that does not exist is kept as it is
    (and so is everything after it), ``..`` never climbs above ``/``, an absolute target
    starts again from ``/``.

    :raises ResolveError: too many steps (a symlink loop), or a component is not a directory.
    """
    # One leading "/", as the engine's path has: normpath keeps a leading "//" as it is.
    remaining = posixpath.normpath("/" + path.lstrip("/"))
    resolved = ""  # the resolved components so far, each followed by "/"
    steps = 0
    while remaining:
        if steps > MAX_RESOLVE_STEPS:
            raise ResolveError(f"too many links in {path}")
        steps += 1
        head, _, rest = remaining.partition("/")
        remaining = rest
        if not head:
            continue
        clean = posixpath.normpath("/" + resolved + head)
        if clean == "/":
            resolved = ""
            continue
        entry = view.lstat(clean)
        if entry is None or entry.kind != SYMLINK:
            resolved += head + "/"
            continue
        if entry.target.startswith("/"):
            resolved = ""
        remaining = entry.target + "/" + remaining
    return posixpath.normpath("/" + resolved)


@attrs.frozen
class _Stat:
    entry: Entry
    #: Where a symlink leads, fully resolved; empty for anything else.
    link_target: str = ""


def _stat(view: MergedView, path: str) -> _Stat | None:
    """The engine's stat of ``path`` in a container (``HEAD /containers/ID/archive``): its
    directory resolved in scope, its last component not followed.

    :raises EngineError: where the engine answers HTTP 500.
    """
    try:
        directory, name = posixpath.split(posixpath.normpath("/" + path))
        resolved = follow_symlinks_in_scope(view, directory)
        entry = view.lstat(posixpath.join(resolved, name))
        if entry is None:
            return None
        target = follow_symlinks_in_scope(view, path) if entry.kind == SYMLINK else ""
    except ResolveError:
        raise EngineError(f"Cannot read {path} from the image: HTTP 500") from None
    return _Stat(entry, target)


def check_workdir(view: MergedView, workdir: str) -> None:
    """Fail as creating a container of the image fails when its WORKDIR cannot be made a
    directory (the engine makes a missing WORKDIR when it creates a container).

    :raises EngineError: the WORKDIR, or a directory on its way, is not a directory.
    """
    if not workdir:
        return
    shown = posixpath.normpath(workdir)
    try:
        entry = view.lstat(follow_symlinks_in_scope(view, workdir))
    except ResolveError:
        # The engine names the path on the host (its mount of the container): not shown here.
        raise EngineError(f"Failed to create container: lstat {shown}: not a directory") from None
    if entry is not None and entry.kind != DIRECTORY:
        raise EngineError(f"Failed to create container: Cannot mkdir: {shown} is not a directory")


def read_files(
    view: MergedView, base: str, paths: Iterable[str], limit: int
) -> dict[str, ImageFile]:
    """Read each of ``paths`` (relative to ``base``) from ``view`` as the engine's container
    read does: see :meth:`~dokku_tasks.engine.Engine.read_image_files`.

    :raises FileTooLargeError: a file is over ``limit`` (refused by its size, unread).
    :raises EngineError: where the engine would fail the read.
    """
    return {path: _read_under(view, base, path, limit) for path in paths}


def _read_under(view: MergedView, base: str, relative: str, limit: int) -> ImageFile:
    resolved = posixpath.normpath(base or "/")
    *directories, name = [part for part in relative.split("/") if part]
    for part in directories:
        candidate = posixpath.join(resolved, part)
        found = _stat(view, candidate)
        if found is None:
            return ImageFile("missing", resolved=candidate)
        resolved = found.link_target or candidate
    return _read_file(view, posixpath.join(resolved, name), limit)


def _read_file(view: MergedView, path: str, limit: int) -> ImageFile:
    for _ in range(2):  # a symlink's target comes back fully resolved: one hop is enough
        found = _stat(view, path)
        if found is None:
            return ImageFile("missing", resolved=path)
        if found.link_target:
            path = found.link_target
            continue
        if found.entry.kind != FILE:
            return ImageFile("other", resolved=path)
        if found.entry.size > limit:
            raise FileTooLargeError(
                posixpath.basename(path), f"{path} in the image", limit, found.entry.size
            )
        try:
            real = posixpath.join(
                follow_symlinks_in_scope(view, posixpath.dirname(path)), posixpath.basename(path)
            )
            data = view.read(real, limit + 1)
        except (ResolveError, OSError) as exc:
            raise EngineError(f"Cannot read {path} from the image: {exc}") from exc
        if len(data) > limit:  # it grew since its stat
            raise FileTooLargeError(posixpath.basename(path), f"{path} in the image", limit)
        return ImageFile("file", data=data, resolved=path)
    return ImageFile("other", resolved=path)
