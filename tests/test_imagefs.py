"""Reading an image's files from its layers (dokku_tasks.imagefs), without Docker: how layers
merge (whiteouts, opaque directories, a directory over a file), how symlinks resolve inside the
image, and that the overlay2 form on disk (0/0 devices, xattrs) and the tar form (``.wh.``
files) of the same layers read the same.  tests/test_plan_engine.py checks the whole against
the engine's own container read."""

from __future__ import annotations

import os
import posixpath
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dokku_tasks import imagefs
from dokku_tasks.errors import EngineError, FileTooLargeError
from dokku_tasks.imagefs import (
    DIRECTORY,
    FILE,
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
    with pytest.raises(ResolveError):
        view.lstat("/app/app.json")


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
