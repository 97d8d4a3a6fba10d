"""A state root that cannot be read or written: one line, exit 1, no traceback (issue 9, item B).

The tests run as root, for whom permissions do not stop a read or a write, so each fault is
made in a way that stops root too: a read-only tmpfs (mounted for the test, unmounted by the
fixture even when the test fails), a tmpfs with too few inodes, a file where a directory
belongs (``ENOTDIR``), a FIFO where a property file belongs, and an injected
``PermissionError`` for ``EACCES``.  Every command goes through the CLI in process, and none of
these needs the Docker engine: a deploy takes its lock, under the state root, before it
contacts the engine.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dokku_tasks.apps import AppRegistry
from dokku_tasks.cli import cli
from dokku_tasks.errors import PropertyError, StateError
from dokku_tasks.properties import MAX_PROPERTY_BYTES, PropertyStore
from tests.conftest import BASE_IMAGE, write_app

DOCKERFILE = f"FROM {BASE_IMAGE}\n"


def dokku(root: Path, *args: str, engine: bool = False) -> Result:
    # Unless the test needs the engine, an unreachable one proves that none was contacted.
    env = None if engine else {"DOCKER_HOST": "tcp://127.0.0.1:1"}
    return CliRunner().invoke(cli, ["--root", str(root), *args], env=env)


def assert_fails(result: Result, line: str, exit_code: int = 1) -> None:
    """Exactly ``line`` on stderr (one line), ``exit_code``, no exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.stderr.splitlines() == [f" !     {line}"], result.stderr
    assert result.exit_code == exit_code, result.output


def ok(root: Path, *args: str) -> str:
    result = dokku(root, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})


# -- mounts ------------------------------------------------------------------------------------


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount is not permitted here ({done.stderr.strip()}); it needs root")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount a small tmpfs with the given options; every mount is undone after the test."""
    mounted: list[Path] = []

    def mount(options: str = "size=1m") -> Path:
        target = tmp_path / f"tmpfs-{len(mounted)}"
        target.mkdir()
        _mount("-t", "tmpfs", "-o", options, "tmpfs", str(target))
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


def remount_read_only(target: Path) -> None:
    _mount("-o", "remount,ro", str(target))


# -- a read-only state root --------------------------------------------------------------------


@pytest.fixture
def read_only_root(tmpfs: Callable[..., Path]) -> Path:
    """A state root with the app ``a1``, then remounted read-only."""
    root = tmpfs()
    ok(root, "apps:create", "a1")
    remount_read_only(root)
    return root


def test_read_only_root_apps_create(read_only_root: Path) -> None:
    root = read_only_root
    result = dokku(root, "apps:create", "b1")
    assert_fails(
        result, f"Cannot write the state root {root}: {root}/apps/b1: Read-only file system"
    )


def test_read_only_root_deploy(read_only_root: Path, source: Path) -> None:
    root = read_only_root
    result = dokku(root, "deploy", "a1", "--source", str(source))
    assert_fails(result, f"Cannot write the state root {root}: {root}/locks: Read-only file system")
    assert result.stdout == ""  # refused before anything else


def test_read_only_root_deploy_of_an_app_deployed_before(
    tmpfs: Callable[..., Path], source: Path
) -> None:
    root = tmpfs()
    ok(root, "apps:create", "a1")
    (root / "locks").mkdir()
    (root / "locks" / "a1.lock").touch()  # left by an earlier deploy
    remount_read_only(root)
    result = dokku(root, "deploy", "a1", "--source", str(source))
    assert_fails(
        result, f"Cannot write the state root {root}: {root}/locks/a1.lock: Read-only file system"
    )


def test_read_only_root_apps_destroy(read_only_root: Path) -> None:
    root = read_only_root
    result = dokku(root, "apps:destroy", "a1", "--force")
    assert_fails(result, f"Cannot write the state root {root}: {root}/locks: Read-only file system")
    assert (root / "apps" / "a1").is_dir()  # nothing was removed


def test_read_only_root_can_still_be_listed(read_only_root: Path) -> None:
    assert ok(read_only_root, "apps:list") == "=====> My Apps\na1\n"


# -- out of inodes -----------------------------------------------------------------------------


@pytest.fixture
def full_root(tmpfs: Callable[..., Path]) -> Path:
    """A state root with the app ``a1`` and not one inode left (root, apps, apps/a1)."""
    root = tmpfs("size=1m,nr_inodes=3")
    ok(root, "apps:create", "a1")
    return root


def test_out_of_inodes_apps_create(full_root: Path) -> None:
    root = full_root
    result = dokku(root, "apps:create", "b1")
    assert_fails(
        result, f"Cannot write the state root {root}: {root}/apps/b1: No space left on device"
    )


def test_out_of_inodes_deploy(full_root: Path, source: Path) -> None:
    root = full_root
    result = dokku(root, "deploy", "a1", "--source", str(source))
    assert_fails(
        result, f"Cannot write the state root {root}: {root}/locks: No space left on device"
    )


def test_out_of_inodes_apps_destroy(full_root: Path) -> None:
    root = full_root
    result = dokku(root, "apps:destroy", "a1", "--force")
    assert_fails(
        result, f"Cannot write the state root {root}: {root}/locks: No space left on device"
    )
    assert ok(root, "apps:list") == "=====> My Apps\na1\n"


# -- files where directories belong ----------------------------------------------------------


def test_locks_is_a_file(root: Path, source: Path) -> None:
    ok(root, "apps:create", "a1")
    (root / "locks").write_text("")
    line = f"Cannot write the state root {root}: {root}/locks: Not a directory"
    assert_fails(dokku(root, "deploy", "a1", "--source", str(source)), line)
    assert_fails(dokku(root, "apps:destroy", "a1", "--force"), line)
    assert (root / "apps" / "a1").is_dir()


def test_lock_file_is_a_directory(root: Path, source: Path) -> None:
    (root / "locks" / "a1.lock").mkdir(parents=True)
    result = dokku(root, "deploy", "a1", "--source", str(source))
    assert_fails(
        result, f"Cannot write the state root {root}: {root}/locks/a1.lock: Is a directory"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["apps:create", "a1"],
        ["apps:list"],
        # A deploy looks for the app once it holds its lock and the engine has answered.
        pytest.param(["deploy", "a1", "--source", "SOURCE"], marks=pytest.mark.engine),
        ["apps:destroy", "a1", "--force"],
    ],
)
def test_apps_is_a_file(root: Path, source: Path, command: list[str]) -> None:
    (root / "apps").write_text("")
    args = [str(source) if arg == "SOURCE" else arg for arg in command]
    result = dokku(root, *args, engine=command[0] == "deploy")
    assert_fails(result, f"Cannot read the state root {root}: {root}/apps: Not a directory")
    assert (root / "apps").is_file()


def test_an_app_directory_that_is_a_file(root: Path) -> None:
    (root / "apps").mkdir()
    (root / "apps" / "a1").write_text("")
    result = dokku(root, "apps:create", "a1")
    assert_fails(result, f"Cannot read the state root {root}: {root}/apps/a1: Not a directory")


@pytest.mark.parametrize(
    ("command", "action"),
    [
        (["apps:create", "a1"], "read"),
        (["apps:list"], "read"),
        (["deploy", "a1", "--source", "SOURCE"], "write"),
        (["apps:destroy", "a1", "--force"], "read"),
    ],
)
def test_root_below_a_file(tmp_path: Path, source: Path, command: list[str], action: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    root = blocker / "state"
    args = [str(source) if arg == "SOURCE" else arg for arg in command]
    result = dokku(root, *args)
    assert_fails(result, f"Cannot {action} the state root {root}: {blocker}: Not a directory")


# -- EACCES (root reads everything, so the error is injected) -----------------------------------


def _denied(path: object) -> PermissionError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


def test_apps_list_unreadable(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(root, "apps:create", "a1")
    real = os.scandir

    def scandir(path: object) -> object:
        if Path(str(path)) == root / "apps":
            raise _denied(path)
        return real(path)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "scandir", scandir)
    result = dokku(root, "apps:list")
    assert_fails(result, f"Cannot read the state root {root}: {root}/apps: Permission denied")


def test_apps_create_unreadable(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.stat

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if Path(str(path)) == root / "apps" / "a1":
            raise _denied(path)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", stat)
    result = dokku(root, "apps:create", "a1")
    assert_fails(result, f"Cannot read the state root {root}: {root}/apps/a1: Permission denied")


def test_deploy_lock_not_permitted(
    root: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.open
    lock = root / "locks" / "a1.lock"

    def open_(path: object, *args: object, **kwargs: object) -> int:
        if Path(str(path)) == lock:
            raise _denied(path)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", open_)
    result = dokku(root, "deploy", "a1", "--source", str(source))
    assert_fails(result, f"Cannot write the state root {root}: {lock}: Permission denied")


def test_destroy_that_cannot_remove(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = AppRegistry(root)
    registry.create("a1")

    def rmtree(path: object, *args: object, **kwargs: object) -> None:
        raise _denied(path)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    with pytest.raises(StateError) as info:
        registry.destroy("a1")
    assert info.value.message == (
        f"Cannot write the state root {root}: {root}/apps/a1: Permission denied"
    )
    assert info.value.exit_code == 1


def test_create_without_a_filename_names_the_root(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(StateError) as info:
        AppRegistry(root).create("a1")
    assert info.value.message == f"Cannot write the state root {root}: {root}: Input/output error"


# -- one namespace's unreadable property does not break another's report ------------------------


@pytest.fixture
def unreadable_scheduler_property(root: Path) -> Path:
    ok(root, "apps:create", "a1")
    path = PropertyStore(root).path("scheduler", "--global", "task-timeout")
    path.mkdir(parents=True)  # a directory in the file's place: unreadable, for root too
    return path


def test_other_namespace_report_still_works(unreadable_scheduler_property: Path) -> None:
    root = unreadable_scheduler_property.parents[3]
    assert ok(root, "app-json:report", "a1") == (
        "=====> a1 app-json information\n"
        "       App-json computed appjson path: app.json\n"
        "       App-json global appjson path:   app.json\n"
        "       App-json appjson path:          \n"
    )
    assert ok(root, "app-json:report", "a1", "--app-json-computed-appjson-path") == "app.json\n"


@pytest.mark.parametrize("args", [["a1"], [], ["--global"], ["a1", "--format", "json"]])
def test_own_namespace_report_names_the_file(
    unreadable_scheduler_property: Path, args: list[str]
) -> None:
    path = unreadable_scheduler_property
    root = path.parents[3]
    result = dokku(root, "scheduler:report", *args)
    assert_fails(result, f"Cannot read property file {path}: Is a directory")


def test_property_fifo_does_not_block(root: Path) -> None:
    ok(root, "apps:create", "a1")
    path = PropertyStore(root).path("scheduler", "--global", "shell")
    path.parent.mkdir(parents=True)
    os.mkfifo(path)  # opening it for reading would wait for a writer forever
    result = dokku(root, "scheduler:report", "a1")
    assert_fails(result, f"Cannot read property file {path}: not a regular file")
    assert ok(root, "app-json:report", "a1").startswith("=====> a1 app-json information\n")


def test_property_file_over_the_limit(root: Path) -> None:
    store = PropertyStore(root)
    path = store.path("app-json", "a1", "appjson-path")
    path.parent.mkdir(parents=True)
    with path.open("wb") as handle:
        handle.truncate(1024 * 1024 * 1024)
    with pytest.raises(PropertyError) as info:
        store.get("app-json", "a1", "appjson-path")
    assert str(info.value) == (
        f"Property file {path} is over the limit of {MAX_PROPERTY_BYTES} bytes (1 MiB)"
    )


def test_another_plugins_bug_still_fails_the_report(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only an unreadable property file is passed over; a plugin's own failure is not.
    from dokku_tasks.hookspecs import hookimpl
    from dokku_tasks.plugins import scheduler

    ok(root, "apps:create", "a1")

    def broken(app: str, properties: PropertyStore) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(scheduler, "report", hookimpl(broken))
    result = dokku(root, "report", "a1")
    assert_fails(result, "Plugin 'scheduler' failed in hook report: RuntimeError: boom")
