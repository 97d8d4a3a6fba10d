"""The property store: Dokku's layout, raw values, mode 0600, atomic writes, clear errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dokku_tasks.errors import PropertyError
from dokku_tasks.properties import GLOBAL, MAX_PROPERTY_BYTES, PropertyStore, default_root


def test_layout_and_raw_value(root: Path) -> None:
    store = PropertyStore(root)
    store.set("app-json", "web", "appjson-path", "app2.json")
    store.set("app-json", GLOBAL, "appjson-path", "g.json")
    path = root / "config" / "app-json" / "web" / "appjson-path"
    assert store.path("app-json", "web", "appjson-path") == path
    assert path.read_bytes() == b"app2.json"  # no trailing newline
    assert (root / "config" / "app-json" / "--global" / "appjson-path").read_bytes() == b"g.json"
    assert store.get("app-json", "web", "appjson-path") == "app2.json"
    assert store.get("app-json", GLOBAL, "appjson-path") == "g.json"


def test_mode_0600(root: Path) -> None:
    store = PropertyStore(root)
    store.set("p", "web", "k", "v")
    assert stat.S_IMODE(store.path("p", "web", "k").stat().st_mode) == 0o600
    # A rewrite keeps it, whatever the umask.
    old = os.umask(0)
    try:
        store.set("p", "web", "k", "w")
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path("p", "web", "k").stat().st_mode) == 0o600


def test_values_round_trip_exactly(root: Path) -> None:
    store = PropertyStore(root)
    for value in ["", " padded ", "two\nlines\n", "ünïcödé", "a" * 10_000]:
        store.set("p", "web", "k", value)
        assert store.get("p", "web", "k") == value


def test_rewrite_is_atomic_and_leaves_no_temp_files(root: Path) -> None:
    store = PropertyStore(root)
    store.set("p", "web", "k", "first")
    inode = store.path("p", "web", "k").stat().st_ino
    store.set("p", "web", "k", "second")
    directory = root / "config" / "p" / "web"
    assert [p.name for p in directory.iterdir()] == ["k"]
    # Replaced by rename, not rewritten in place: a reader never sees half a value.
    assert store.path("p", "web", "k").stat().st_ino != inode
    assert store.get("p", "web", "k") == "second"


def test_get_default_and_unset(root: Path) -> None:
    store = PropertyStore(root)
    assert store.get("p", "web", "k") == ""
    assert store.get("p", "web", "k", default="d") == "d"
    store.unset("p", "web", "k")  # a no-op, even with no directory
    store.set("p", "web", "k", "v")
    store.unset("p", "web", "k")
    assert not store.path("p", "web", "k").exists()
    assert store.get("p", "web", "k", default="d") == "d"


def test_invalid_utf8_names_the_file(root: Path) -> None:
    store = PropertyStore(root)
    path = store.path("p", "web", "k")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(PropertyError) as info:
        store.get("p", "web", "k")
    assert info.value.message == f"Property file {path} is not valid UTF-8"


def test_unreadable_names_the_file(root: Path) -> None:
    store = PropertyStore(root)
    path = store.path("p", "web", "k")
    path.mkdir(parents=True)  # a directory where the value should be
    with pytest.raises(PropertyError) as info:
        store.get("p", "web", "k")
    assert info.value.message.startswith(f"Cannot read property file {path}: ")


def test_unwritable_is_a_property_error(root: Path) -> None:
    (root / "config").write_text("not a directory")
    with pytest.raises(PropertyError) as info:
        PropertyStore(root).set("p", "web", "k", "v")
    assert info.value.message.startswith("Cannot write property ")
    assert "\n" not in info.value.message


def test_destroy_app_removes_every_plugin_only_for_that_app(root: Path) -> None:
    store = PropertyStore(root)
    store.destroy_app("web")  # nothing there yet
    for plugin in ("app-json", "scheduler", "common"):
        store.set(plugin, "web", "k", "v")
        store.set(plugin, "other", "k", "v")
    store.set("app-json", GLOBAL, "k", "g")
    store.destroy_app("web")
    for plugin in ("app-json", "scheduler", "common"):
        assert not (root / "config" / plugin / "web").exists()
        assert store.get(plugin, "other", "k") == "v"
    assert store.get("app-json", GLOBAL, "k") == "g"


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOKKU_TASKS_ROOT", str(tmp_path / "r"))
    assert default_root() == tmp_path / "r"
    monkeypatch.delenv("DOKKU_TASKS_ROOT")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "dokku-tasks"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".local" / "share" / "dokku-tasks"


def test_the_temp_file_is_hidden_beside_the_value(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Written next to the value (so the rename cannot cross file systems) under a dot-name
    # (so a listing of the app's properties never shows it).
    renamed: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: Path) -> None:
        renamed.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store = PropertyStore(root)
    store.set("registry", "web", "server", "registry.example")
    ((src, dst),) = renamed
    assert dst == store.path("registry", "web", "server")
    assert src.parent == dst.parent
    assert src.name.startswith(".server.")


def test_unset_failure_names_the_file(root: Path) -> None:
    store = PropertyStore(root)
    path = store.path("p", "web", "k")
    (path / "inside").mkdir(parents=True)  # a directory where the value should be
    with pytest.raises(PropertyError) as info:
        store.unset("p", "web", "k")
    assert info.value.message == f"Cannot remove property {path}: Is a directory"


def test_a_directory_in_place_of_a_value_is_named(root: Path) -> None:
    store = PropertyStore(root)
    path = store.path("p", "web", "k")
    path.mkdir(parents=True)
    with pytest.raises(PropertyError) as info:
        store.get("p", "web", "k")
    assert info.value.message == f"Cannot read property file {path}: Is a directory"


def test_a_file_in_place_of_a_directory_is_named(root: Path) -> None:
    store = PropertyStore(root)
    (root / "config" / "p").mkdir(parents=True)
    (root / "config" / "p" / "web").write_text("not a directory")
    path = store.path("p", "web", "k")
    with pytest.raises(PropertyError) as info:
        store.get("p", "web", "k")
    assert info.value.message == f"Cannot read property file {path}: Not a directory"


def test_a_value_of_exactly_the_limit_is_read(root: Path) -> None:
    store = PropertyStore(root)
    path = store.path("p", "web", "k")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"v" * MAX_PROPERTY_BYTES)
    assert store.get("p", "web", "k") == "v" * MAX_PROPERTY_BYTES
    path.write_bytes(b"v" * (MAX_PROPERTY_BYTES + 1))
    with pytest.raises(PropertyError) as info:
        store.get("p", "web", "k")
    assert info.value.message == (
        f"Property file {path} is over the limit of {MAX_PROPERTY_BYTES} bytes (1 MiB)"
    )


def test_a_property_that_cannot_be_read_leaves_no_descriptor_open(tmp_path: Path) -> None:
    store = PropertyStore(tmp_path)
    (tmp_path / "config" / "app-json" / "web" / "appjson-path").mkdir(parents=True)
    fifo = tmp_path / "config" / "app-json" / "web" / "other"
    os.mkfifo(fifo)
    before = len(os.listdir("/proc/self/fd"))
    for name in ("appjson-path", "other") * 3:
        with pytest.raises(PropertyError):
            store.get("app-json", "web", name)
    assert len(os.listdir("/proc/self/fd")) == before
