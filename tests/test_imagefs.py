"""Reading an image's files from its layers (dokku_tasks.imagefs), without Docker: how layers
merge (whiteouts, opaque directories, a directory over a file), how symlinks resolve inside the
image, and that the overlay2 form on disk (0/0 devices, xattrs) and the tar form (``.wh.``
files) of the same layers read the same.  tests/test_plan_engine.py checks the whole against
the engine's own container read."""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dokku_tasks import imagefs
from dokku_tasks.errors import EngineError, FileTooLargeError
from dokku_tasks.imagefs import (
    DIRECTORY,
    FILE,
    OTHER,
    SYMLINK,
    WHITEOUT,
    DirectoryLayer,
    Entry,
    MemoryLayer,
    MergedView,
    ResolveError,
    follow_symlinks_in_scope,
    read_files,
)
from dokku_tasks.specs import ImageFile

#: One layer as a test writes it: path -> "dir", "opaque", "whiteout", ("file", bytes) or
#: ("link", target).
Spec = Mapping[str, object]


def memory_layer(spec: Spec) -> MemoryLayer:
    entries: dict[str, Entry] = {}
    data: dict[str, bytes] = {}
    for path, what in spec.items():
        if what == "dir":
            entries[path] = Entry(DIRECTORY)
        elif what == "opaque":
            entries[path] = Entry(DIRECTORY, opaque=True)
        elif what == "whiteout":
            entries[path] = Entry(WHITEOUT)
        elif isinstance(what, tuple) and what[0] == "file":
            entries[path] = Entry(FILE, size=len(what[1]))
            data[path] = what[1]
        elif isinstance(what, tuple) and what[0] == "link":
            entries[path] = Entry(SYMLINK, target=what[1])
    return MemoryLayer(entries, data)


def view_of(*layers: Spec) -> MergedView:
    """The top layer first, as the engine lists them."""
    return MergedView([memory_layer(spec) for spec in layers])


def write_layer(directory: Path, spec: Spec, overlay: bool) -> None:
    """Write a layer as overlay2 keeps it (``overlay``: 0/0 devices, the opaque xattr) or as
    a layer tar carries it (``.wh.NAME`` files, ``.wh..wh..opq``)."""
    directory.mkdir(parents=True)
    for path in sorted(spec, key=lambda p: p.count("/")):
        what = spec[path]
        host = directory / path.lstrip("/")
        if what in ("dir", "opaque"):
            host.mkdir()
            if what == "opaque":
                if overlay:
                    os.setxattr(host, "trusted.overlay.opaque", b"y")
                else:
                    (host / imagefs.OPAQUE_MARKER).touch()
        elif what == "whiteout":
            if overlay:
                os.mknod(host, stat.S_IFCHR | 0o600, 0)
            else:
                host.with_name(".wh." + host.name).touch()
        elif isinstance(what, tuple) and what[0] == "file":
            host.write_bytes(what[1])
        elif isinstance(what, tuple) and what[0] == "link":
            host.symlink_to(what[1])


# -- merging ---------------------------------------------------------------------------------


def test_a_file_deleted_in_an_upper_layer_is_gone() -> None:
    view = view_of(
        {"/app": "dir", "/app/app.json": "whiteout"},
        {"/app": "dir", "/app/app.json": ("file", b"{}")},
    )
    assert view.lstat("/app/app.json") is None
    assert view.lstat("/app") == Entry(DIRECTORY)


def test_a_file_of_a_lower_layer_shows_through_a_directory_above_it() -> None:
    view = view_of(
        {"/app": "dir", "/app/new": ("file", b"n")},
        {"/app": "dir", "/app/Procfile": ("file", b"web: x")},
    )
    assert view.read("/app/Procfile", 100) == b"web: x"
    assert view.read("/app/new", 100) == b"n"


def test_an_opaque_directory_hides_the_directories_below() -> None:
    view = view_of(
        {"/app": "opaque", "/app/new": ("file", b"n")},
        {"/app": "dir", "/app/old": ("file", b"o")},
    )
    assert view.lstat("/app/old") is None
    assert view.lstat("/app/new") is not None


def test_a_directory_over_a_file_hides_the_file_and_what_is_below_it() -> None:
    view = view_of(
        {"/app": "dir", "/app/a": ("file", b"top")},
        {"/app": ("file", b"x")},
        {"/app": "dir", "/app/b": ("file", b"bottom")},
    )
    assert view.lstat("/app/a") is not None
    assert view.lstat("/app/b") is None


def test_a_path_under_a_file_is_not_a_directory() -> None:
    view = view_of({"/app": ("file", b"x")})
    with pytest.raises(ResolveError) as info:
        view.lstat("/app/app.json")
    assert str(info.value) == "/app: Not a directory"


def test_a_memory_layers_root_is_a_directory_unless_it_is_listed() -> None:
    assert MemoryLayer({}).entry("/") == Entry(DIRECTORY)
    opaque = Entry(DIRECTORY, opaque=True)
    assert MemoryLayer({"/": opaque}).entry("/") == opaque


def test_a_layer_with_an_opaque_root_hides_every_layer_below() -> None:
    top = MemoryLayer(
        {"/": Entry(DIRECTORY, opaque=True), "/new": Entry(FILE, size=1)}, {"/new": b"n"}
    )
    view = MergedView([top, memory_layer({"/old": ("file", b"o")})])
    assert view.lstat("/new") == Entry(FILE, size=1)
    assert view.lstat("/old") is None


def test_reading_a_path_that_is_not_a_regular_file_fails() -> None:
    view = view_of({"/app": "dir", "/app/Procfile": ("file", b"web: x")})
    assert view.read("/app/Procfile", 3) == b"web"
    for path in ("/app", "/app/missing"):
        with pytest.raises(ResolveError) as info:
            view.read(path, 100)
        assert str(info.value) == f"{path}: not a regular file"


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteout devices and trusted xattrs need root")
def test_a_layer_on_disk_tells_each_kind_of_entry(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_bytes(b"web: x")
    (app / "link").symlink_to("/srv/app.json")
    os.mkfifo(app / "fifo")
    os.mknod(app / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mknod(app / "removed", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (app / ".wh.deleted").touch()
    (tmp_path / "opaque").mkdir()
    os.setxattr(tmp_path / "opaque", "trusted.overlay.opaque", b"y")
    (tmp_path / "rootless").mkdir()
    os.setxattr(tmp_path / "rootless", "user.overlay.opaque", b"y")
    (tmp_path / "marked").mkdir()
    (tmp_path / "marked" / imagefs.OPAQUE_MARKER).touch()
    (tmp_path / "X11").mkdir()
    layer = DirectoryLayer(tmp_path)
    assert layer.entry("/") == Entry(DIRECTORY)
    assert layer.entry("/app") == Entry(DIRECTORY)
    assert layer.entry("/app/Procfile") == Entry(FILE, size=6)
    assert layer.entry("/app/link") == Entry(SYMLINK, target="/srv/app.json")
    assert layer.entry("/app/fifo") == Entry(OTHER, size=0)
    assert layer.entry("/app/null") == Entry(OTHER, size=0)  # a device, but not a whiteout
    assert layer.entry("/app/removed") == Entry(WHITEOUT)
    assert layer.entry("/app/deleted") == Entry(WHITEOUT)
    assert layer.entry("/app/.wh.deleted") is None
    assert layer.entry("/app/missing") is None
    assert layer.entry("/opaque") == Entry(DIRECTORY, opaque=True)
    assert layer.entry("/rootless") == Entry(DIRECTORY, opaque=True)
    assert layer.entry("/marked") == Entry(DIRECTORY, opaque=True)
    assert layer.entry("/X11") == Entry(DIRECTORY)
    with layer.open("/app/Procfile") as handle:
        assert handle.read() == b"web: x"


# -- symlinks in scope -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("real.json", "/app/real.json"),
        ("/srv/app.json", "/srv/app.json"),
        ("../../../../etc/hostname", "/etc/hostname"),  # .. stops at the image's /
        ("/nowhere/x", "/nowhere/x"),  # a dangling link resolves to where it points
        ("/app/dir/../real.json", "/app/real.json"),
    ],
)
def test_symlinks_resolve_inside_the_image(target: str, expected: str) -> None:
    view = view_of({"/app": "dir", "/app/dir": "dir", "/app/link": ("link", target)})
    assert follow_symlinks_in_scope(view, "/app/link") == expected


def test_a_path_of_255_names_resolves_and_256_are_too_many_steps() -> None:
    # The engine's FollowSymlinkInScope counts the leading "/" as a step too.
    view = view_of({})
    for lead in ("", "/", "//"):  # a path given absolute counts the same
        assert follow_symlinks_in_scope(view, lead + "/".join(["a"] * 255)) == "/a" * 255
        too_long = lead + "/".join(["a"] * 256)
        with pytest.raises(ResolveError) as info:
            follow_symlinks_in_scope(view, too_long)
        assert str(info.value) == f"too many links in {too_long}"


def test_only_the_leading_slashes_of_a_path_are_dropped() -> None:
    view = view_of({})
    assert follow_symlinks_in_scope(view, "X11/Xlib") == "/X11/Xlib"
    assert follow_symlinks_in_scope(view, "//X11") == "/X11"


def test_a_symlink_loop_is_an_engine_error() -> None:
    view = view_of({"/app": "dir", "/app/a": ("link", "b"), "/app/b": ("link", "a")})
    with pytest.raises(ResolveError, match="too many links"):
        follow_symlinks_in_scope(view, "/app/a")
    with pytest.raises(EngineError, match=r"^Cannot read /app/a from the image: HTTP 500$"):
        read_files(view, "/app", ["a"], 100)


def test_a_symlinked_directory_on_the_way_is_followed() -> None:
    view = view_of(
        {"/app": "dir", "/app/cfg": ("link", "/srv/cfg"), "/srv": "dir", "/srv/cfg": "dir"}
        | {"/srv/cfg/app.json": ("file", b"{}")}
    )
    assert read_files(view, "/app", ["cfg/app.json"], 100) == {
        "cfg/app.json": ImageFile("file", data=b"{}", resolved="/srv/cfg/app.json")
    }


def test_the_size_refusal_is_the_engines() -> None:
    view = view_of({"/app": "dir", "/app/Procfile": ("file", b"x" * 11)})
    with pytest.raises(FileTooLargeError) as info:
        read_files(view, "/app", ["Procfile"], 10)
    assert info.value.message == (
        "Invalid Procfile: /app/Procfile in the image is 11 bytes, over the limit of 10 bytes "
        "(10 bytes)"
    )


def test_a_missing_directory_on_the_way_is_where_the_read_stops() -> None:
    view = view_of({"/app": "dir"})
    assert read_files(view, "/app", ["sub/app.json"], 100) == {
        "sub/app.json": ImageFile("missing", resolved="/app/sub")
    }


def test_an_empty_base_is_the_images_root() -> None:
    view = view_of({"/app.json": ("file", b"{}")})
    assert read_files(view, "", ["app.json"], 100) == {
        "app.json": ImageFile("file", data=b"{}", resolved="/app.json")
    }


def test_a_symlink_is_read_as_what_it_leads_to() -> None:
    view = view_of(
        {"/app": "dir", "/srv": "dir", "/srv/dir": "dir", "/srv/Procfile": ("file", b"web: x")}
        | {"/app/Procfile": ("link", "/srv/Procfile"), "/app/app.json": ("link", "../srv/dir")}
        | {"/app/dangling": ("link", "/srv/none")}
    )
    assert read_files(view, "/app", ["Procfile", "app.json", "dangling", "dir"], 100) == {
        "Procfile": ImageFile("file", data=b"web: x", resolved="/srv/Procfile"),
        "app.json": ImageFile("other", resolved="/srv/dir"),
        "dangling": ImageFile("missing", resolved="/srv/none"),
        "dir": ImageFile("missing", resolved="/app/dir"),
    }


def test_a_directory_is_read_as_other() -> None:
    view = view_of({"/app": "dir", "/app/app.json": "dir"})
    assert read_files(view, "/app", ["app.json"], 100) == {
        "app.json": ImageFile("other", resolved="/app/app.json")
    }


def test_a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_refused() -> None:
    view = view_of(
        {"/app": "dir", "/app/Procfile": ("file", b"x" * 10), "/app/app.json": ("file", b"{" * 11)}
    )
    assert read_files(view, "/app", ["Procfile"], 10) == {
        "Procfile": ImageFile("file", data=b"x" * 10, resolved="/app/Procfile")
    }
    with pytest.raises(FileTooLargeError) as info:
        read_files(view, "/app", ["app.json"], 10)
    assert info.value.message == (
        "Invalid app.json: /app/app.json in the image is 11 bytes, over the limit of 10 bytes "
        "(10 bytes)"
    )


def test_a_file_that_grew_since_its_stat_is_refused_without_a_size() -> None:
    grown = MemoryLayer(
        {"/app": Entry(DIRECTORY), "/app/Procfile": Entry(FILE, size=3)},
        {"/app/Procfile": b"x" * 11},
    )
    with pytest.raises(FileTooLargeError) as info:
        read_files(MergedView([grown]), "/app", ["Procfile"], 10)
    assert info.value.message == (
        "Invalid Procfile: /app/Procfile in the image is over the limit of 10 bytes (10 bytes)"
    )


class UnreadableLayer(MemoryLayer):
    """A layer whose files cannot be opened, as when the host refuses a layer's file."""

    def open(self, path: str) -> BinaryIO:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)


def test_a_file_that_cannot_be_read_is_an_engine_error() -> None:
    layer = UnreadableLayer({"/app": Entry(DIRECTORY), "/app/Procfile": Entry(FILE, size=1)})
    with pytest.raises(EngineError) as info:
        read_files(MergedView([layer]), "/app", ["Procfile"], 10)
    assert info.value.message == (
        "Cannot read /app/Procfile from the image: [Errno 13] Permission denied: '/app/Procfile'"
    )


def test_the_container_init_layer_has_what_the_engine_adds() -> None:
    expected = {
        "/dev": Entry(DIRECTORY),
        "/dev/pts": Entry(DIRECTORY),
        "/dev/shm": Entry(DIRECTORY),
        "/proc": Entry(DIRECTORY),
        "/sys": Entry(DIRECTORY),
        "/etc": Entry(DIRECTORY),
        "/.dockerenv": Entry(FILE),
        "/etc/resolv.conf": Entry(FILE),
        "/etc/hosts": Entry(FILE),
        "/etc/hostname": Entry(FILE),
        "/dev/console": Entry(FILE),
        "/etc/mtab": Entry(SYMLINK, target="/proc/mounts"),
    }
    # INIT_LAYER is built once, at import; building it again checks the function itself.
    for layer in (imagefs.INIT_LAYER, imagefs._init_layer()):
        assert layer.entries == expected
        assert layer.data == {}
        assert layer.open("/etc/hosts").read() == b""


def test_the_container_init_layer_is_on_top() -> None:
    view = MergedView([imagefs.INIT_LAYER, memory_layer({"/etc": ("link", "/usr/etc")})])
    # The init layer's /etc directory hides the image's /etc symlink, as in a container.
    assert read_files(view, "/", ["etc/hosts", ".dockerenv", "etc/mtab"], 100) == {
        "etc/hosts": ImageFile("file", resolved="/etc/hosts"),
        ".dockerenv": ImageFile("file", resolved="/.dockerenv"),
        "etc/mtab": ImageFile("missing", resolved="/proc/mounts"),
    }


def test_a_workdir_that_is_a_file_fails_like_creating_the_container() -> None:
    view = view_of({"/app": ("file", b"")})
    with pytest.raises(EngineError, match="Cannot mkdir: /app is not a directory"):
        imagefs.check_workdir(view, "/app")
    imagefs.check_workdir(view, "/srv")  # missing: the engine makes it


def test_a_workdir_under_a_file_fails_like_creating_the_container() -> None:
    view = view_of({"/app": ("file", b"")})
    with pytest.raises(EngineError) as info:
        imagefs.check_workdir(view, "/app/sub/")
    assert info.value.message == "Failed to create container: lstat /app/sub: not a directory"


# -- the whole against a model ---------------------------------------------------------------

NAMES = ("a", "b")
PATHS = [f"/{x}" for x in NAMES] + [f"/{x}/{y}" for x in NAMES for y in NAMES]


@st.composite
def layers(draw: st.DrawFn) -> list[dict[str, object]]:
    """Two to four layers over paths two levels deep; each layer a consistent tree."""
    stack = []
    for _ in range(draw(st.integers(2, 4))):
        spec: dict[str, object] = {}
        for path in PATHS:
            parent = posixpath.dirname(path)
            if parent != "/" and spec.get(parent) not in ("dir", "opaque"):
                continue
            kind = draw(st.sampled_from(["none", "none", "dir", "opaque", "whiteout", "file"]))
            if kind == "file":
                spec[path] = ("file", draw(st.binary(max_size=3)))
            elif kind != "none":
                spec[path] = kind
        stack.append(spec)
    return stack


def applied(stack: list[dict[str, object]]) -> dict[str, object]:
    """The model: apply each layer, bottom first, as unpacking its tar does (a whiteout
    removes, an opaque directory empties, anything else replaces, a directory over a
    directory keeps what is in it)."""
    tree: dict[str, object] = {}

    def remove_under(path: str, itself: bool) -> None:
        for known in list(tree):
            if known.startswith(path + "/") or (itself and known == path):
                del tree[known]

    for spec in reversed(stack):
        for path in sorted(spec, key=lambda p: p.count("/")):
            what = spec[path]
            if what == "whiteout":
                remove_under(path, itself=True)
            elif what in ("dir", "opaque"):
                if what == "opaque" or tree.get(path, "dir") != "dir":
                    remove_under(path, itself=True)
                tree[path] = "dir"
            else:
                remove_under(path, itself=True)
                tree[path] = what
    return tree


def check_against_model(view: MergedView, tree: dict[str, object]) -> None:
    for path in PATHS:
        parent = posixpath.dirname(path)
        if parent != "/" and parent in tree and tree[parent] != "dir":
            with pytest.raises(ResolveError):
                view.lstat(path)
            continue
        entry = view.lstat(path)
        expected = tree.get(path)
        if expected is None:
            assert entry is None, path
        elif expected == "dir":
            assert entry is not None and entry.kind == DIRECTORY, path
        else:
            assert isinstance(expected, tuple)
            assert entry is not None and entry.kind == FILE, path
            assert view.read(path, 10) == expected[1], path


@settings(max_examples=150, deadline=None)
@given(layers())
def test_merged_layers_read_as_the_layers_applied_in_turn(stack: list[dict[str, object]]) -> None:
    check_against_model(MergedView([memory_layer(spec) for spec in stack]), applied(stack))


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteout devices and trusted xattrs need root")
@settings(max_examples=40, deadline=None)
@given(layers())
def test_layers_on_disk_read_the_same_in_overlay2_and_tar_form(
    stack: list[dict[str, object]],
) -> None:
    tree = applied(stack)
    for overlay in (True, False):
        with tempfile.TemporaryDirectory() as scratch:
            directories = []
            for number, spec in enumerate(stack):
                directory = Path(scratch) / str(number)
                write_layer(directory, spec, overlay)
                directories.append(DirectoryLayer(directory))
            check_against_model(MergedView(directories), tree)


# -- finding the layers ------------------------------------------------------------------------


def inspected(
    upper: str, lower: str = "", layers: int = 1, driver: str = "overlay2"
) -> dict[str, object]:
    data = {"LowerDir": lower} if lower else {}
    return {
        "GraphDriver": {"Name": driver, "Data": {"UpperDir": upper, **data}},
        "RootFS": {"Layers": [f"sha256:{n:064x}" for n in range(layers)]},
    }


def test_only_overlay2_layers_are_read_in_place() -> None:
    from dokku_tasks.engine import _layer_directories
    from dokku_tasks.errors import LayersUnreadableError

    with pytest.raises(LayersUnreadableError) as info:
        _layer_directories(inspected("/x/diff", driver="vfs"))
    assert info.value.message == (
        "Cannot read the image's layers on this host: the engine stores images with the vfs "
        "driver (only overlay2 is read in place)"
    )


def test_layers_are_read_in_place_only_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from dokku_tasks.engine import _layer_directories
    from dokku_tasks.errors import LayersUnreadableError

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LayersUnreadableError, match="needs root"):
        _layer_directories(inspected("/x/diff"))


def test_layer_directories_not_in_the_engines_layer_store_are_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote engine's paths, or another image's directory: the chain id must name it."""
    import hashlib

    from dokku_tasks.engine import _layer_directories
    from dokku_tasks.errors import LayersUnreadableError

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    diff = tmp_path / "overlay2" / "cafe" / "diff"
    diff.mkdir(parents=True)
    with pytest.raises(LayersUnreadableError, match="not on this host"):
        _layer_directories(inspected(str(diff)))
    store = tmp_path / "image" / "overlay2" / "layerdb" / "sha256"
    (store / f"{0:064x}").mkdir(parents=True)
    (store / f"{0:064x}" / "cache-id").write_text("cafe")
    assert _layer_directories(inspected(str(diff))) == [str(diff)]
    # Two layers: the upper one is named by the chain id of both.
    upper = tmp_path / "overlay2" / "beef" / "diff"
    upper.mkdir(parents=True)
    with pytest.raises(LayersUnreadableError, match="not on this host"):
        _layer_directories(inspected(str(upper), str(diff), layers=2))
    chain = hashlib.sha256(f"sha256:{0:064x} sha256:{1:064x}".encode()).hexdigest()
    (store / chain).mkdir()
    (store / chain / "cache-id").write_text("beef")
    assert _layer_directories(inspected(str(upper), str(diff), layers=2)) == [str(upper), str(diff)]
