"""Bad input and damaged state: one clear line on stderr, exit 1, no traceback (issue 4).

Every case goes through the CLI in-process (click's CliRunner).  Cases that need the engine are
marked ``engine``; for those the test also checks on the engine's event stream that no
container of the app was started and that no task container was even created.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dokku_tasks.cli import cli
from dokku_tasks.errors import EngineError, PropertyError
from dokku_tasks.properties import PropertyStore
from tests.conftest import BASE_IMAGE, write_app

DOCKERFILE = f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n'
APP_LABEL = "com.dokku.app-name"
TASK_LABEL = "dokku_phase_script"


def dokku(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--root", str(root), *args], env=env)


def assert_one_error(result: Result, *fragments: str) -> str:
    """Exit 1, exactly one line on stderr starting `` !     ``, containing each fragment."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(" !     "), line
    for fragment in fragments:
        assert fragment in line, line
    assert "Traceback" not in result.output
    return line


class EngineWatch:
    """What the engine did with an app's containers between ``start`` and ``check``."""

    def __init__(self, client: Any, app: str) -> None:
        self.client = client
        self.app = app
        self.since = time.time()

    def events(self) -> list[dict[str, Any]]:
        # Fractional timestamps: an ``until`` in the future would block until it passes.
        stream = self.client.events(
            since=f"{self.since - 0.5:.6f}",
            until=f"{time.time():.6f}",
            decode=True,
            filters={"type": "container", "label": f"{APP_LABEL}={self.app}"},
        )
        try:
            return list(stream)
        finally:
            stream.close()
            # close() skips a stream that reached its end; the response holds the socket.
            stream._response.close()

    def assert_nothing_ran(self) -> None:
        events = self.events()
        started = [e for e in events if e.get("Action") == "start"]
        assert started == [], started
        tasks = [
            e
            for e in events
            # The container that reads app.json out of an image (never started) is labelled
            # "read", so that a killed deploy's reader is cleaned up too; it runs no task.
            if e.get("Action") == "create"
            and e["Actor"]["Attributes"].get(TASK_LABEL) not in (None, "", "read")
        ]
        assert tasks == [], tasks
        left = self.client.containers.list(all=True, filters={"label": f"{APP_LABEL}={self.app}"})
        assert left == []


@contextmanager
def unraisable() -> Iterator[list[Any]]:
    """Collect what objects garbage-collected here failed to clean up (unclosed sockets...)."""
    seen: list[Any] = []
    previous = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        yield seen
        gc.collect()
    finally:
        sys.unraisablehook = previous


@pytest.fixture
def watch(docker_client: Any, engine_app: str) -> EngineWatch:
    return EngineWatch(docker_client, engine_app)


# -- app.json and Procfile in a source tree ----------------------------------------------------

BIG = b"{" + b" " * (1024 * 1024) + b"}"


@pytest.mark.engine
@pytest.mark.parametrize(
    ("name", "data", "fragments"),
    [
        pytest.param(
            "app.json",
            b'{\n  "scripts" {}\n}\n',
            ["Invalid app.json at line 2, column 13"],
            id="appjson-not-jsonc",
        ),
        pytest.param(
            "app.json",
            b"[1, 2]",
            ["Invalid app.json", "top level must be an object"],
            id="appjson-not-object",
        ),
        pytest.param(
            "app.json",
            b'{"scripts": {"dokku": {"predeploy": 5}}}',
            ["Invalid app.json", "scripts.dokku.predeploy must be a string"],
            id="appjson-script-not-string",
        ),
        pytest.param(
            "app.json",
            b'{"scripts": {"dokku": {"predeploy": "echo \xff"}}}',
            ["Invalid app.json at line 1", "UTF-8"],
            id="appjson-not-utf8",
        ),
        pytest.param(
            "app.json", BIG, ["Invalid app.json", "over the limit", "1 MiB"], id="appjson-too-big"
        ),
        pytest.param(
            "Procfile",
            b"web: sleep 3600\nthis is not a process line\n",
            ["Invalid Procfile at line 2", "invalid line"],
            id="procfile-invalid-line",
        ),
        pytest.param(
            "Procfile",
            b"web: sleep 3600\nrelease: true\nweb: sleep 1\n",
            ["Invalid Procfile at line 3", "unique", "line 1"],
            id="procfile-duplicate",
        ),
        pytest.param(
            "Procfile",
            b"# nothing but a comment\n\n",
            ["Invalid Procfile", "no entries"],
            id="procfile-empty",
        ),
    ],
)
def test_bad_files_in_the_source_tree(
    engine_app: str,
    root: Path,
    tmp_path: Path,
    watch: EngineWatch,
    name: str,
    data: bytes,
    fragments: list[str],
) -> None:
    other = "app.json" if name == "Procfile" else "Procfile"
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            other: (
                {"scripts": {"dokku": {"predeploy": "echo never"}}}
                if other == "app.json"
                else "release: echo never\nweb: sleep 3600\n"
            ),
        },
    )
    (source / name).write_bytes(data)
    result = dokku(root, "deploy", engine_app, "--source", str(source))
    assert_one_error(result, *fragments)
    assert "never" not in result.stdout.replace("echo never", "")
    assert "Executing" not in result.stdout
    watch.assert_nothing_ran()


@pytest.mark.engine
def test_bad_app_json_inside_an_image(
    build_image: Any, engine_app: str, root: Path, watch: EngineWatch
) -> None:
    image = build_image(
        f"FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY app.json /app/app.json\n",
        {"app.json": '{"scripts": {"dokku": {"predeploy": ["not", "a", "string"]}}}'},
    )
    watch.since = time.time()
    result = dokku(root, "deploy", engine_app, "--image", image)
    assert_one_error(result, "Invalid app.json", "must be a string")
    watch.assert_nothing_ran()


# -- names and paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Bad_Name", "a" * 64, "../escape", "dots.in.name", "", "-bad"])
def test_app_name_outside_the_rules(root: Path, tmp_path: Path, name: str) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    # "--" so that a name starting with a dash reaches the command as the app name.
    result = dokku(root, "deploy", "--source", str(source), "--", name)
    assert_one_error(result, "Invalid app name")
    assert not (root / "apps").exists() or list((root / "apps").iterdir()) == []
    assert_one_error(dokku(root, "apps:create", name), "Invalid app name")


@pytest.mark.parametrize("path", ["../app.json", "sub/../../app.json", "/../../etc/passwd"])
def test_appjson_path_that_leaves_the_base_is_refused_when_set(root: Path, path: str) -> None:
    assert dokku(root, "apps:create", "myapp").exit_code == 0
    result = dokku(root, "app-json:set", "myapp", "appjson-path", path)
    assert_one_error(result, "Invalid appjson-path", "must stay inside")
    assert not PropertyStore(root).path("app-json", "myapp", "appjson-path").exists()
    result = dokku(root, "app-json:set", "--global", "appjson-path", path)
    assert_one_error(result, "Invalid appjson-path")


@pytest.mark.engine
@pytest.mark.parametrize("path", ["../outside.json", "sub/../../outside.json"])
def test_appjson_path_that_leaves_the_base_is_refused_at_deploy(
    engine_app: str, root: Path, tmp_path: Path, watch: EngineWatch, path: str
) -> None:
    """A property file written by hand (or by an older version) is checked again."""
    (tmp_path / "outside.json").write_text(
        json.dumps({"scripts": {"dokku": {"predeploy": "echo escaped"}}})
    )
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    assert dokku(root, "apps:create", engine_app).exit_code == 0
    PropertyStore(root).set("app-json", engine_app, "appjson-path", path)
    result = dokku(root, "deploy", engine_app, "--source", str(source))
    assert_one_error(result, "appjson-path", "leaves the base directory")
    assert "escaped" not in result.output
    watch.assert_nothing_ran()


# -- images, sources, builds -------------------------------------------------------------------


@pytest.mark.engine
def test_image_that_does_not_exist(engine_app: str, root: Path, watch: EngineWatch) -> None:
    missing = f"dokku-tasks-test/{engine_app}:does-not-exist"
    result = dokku(root, "deploy", engine_app, "--image", missing)
    assert assert_one_error(result) == f" !     Image {missing} does not exist"
    watch.assert_nothing_ran()


def test_source_directory_that_does_not_exist(root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = dokku(root, "deploy", "myapp", "--source", str(missing))
    assert assert_one_error(result) == f" !     Source directory {missing} does not exist"


def test_source_directory_without_dockerfile(root: Path, tmp_path: Path) -> None:
    source = write_app(tmp_path / "src", {"Procfile": "web: sleep 3600\n"})
    result = dokku(root, "deploy", "myapp", "--source", str(source))
    assert assert_one_error(result) == f" !     Source directory {source} has no Dockerfile"


def test_deploy_without_source_or_image(root: Path) -> None:
    assert_one_error(dokku(root, "deploy", "myapp"), "--source", "--image")


@pytest.mark.engine
def test_failed_build_shows_its_output_then_the_error(
    engine_app: str, root: Path, tmp_path: Path, watch: EngineWatch
) -> None:
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": f"FROM {BASE_IMAGE}\nRUN echo building-step-output && exit 3\n",
            "app.json": {"scripts": {"dokku": {"predeploy": "echo never"}}},
        },
    )
    # The leaked socket of a failed build has its own test below; collect it here so that it
    # cannot fail whichever test happens to run the garbage collector next.
    with unraisable():
        result = dokku(root, "deploy", engine_app, "--source", str(source))
    line = assert_one_error(result, "Image build failed", "non-zero code: 3")
    assert "building-step-output" in result.stdout
    # Build output first, then the error: result.output interleaves both streams.
    assert result.output.index("building-step-output") < result.output.index(line)
    assert "Checking for predeploy task" not in result.stdout
    watch.assert_nothing_ran()


@pytest.mark.engine
def test_failed_build_releases_its_connection_to_the_engine(
    engine_app: str, root: Path, tmp_path: Path
) -> None:
    """A failed build must not leave its HTTP response (a socket to the engine) open.

    The library is meant for long-running callers too; today every failed build leaks one
    connection, which surfaces as a ``ResourceWarning`` when the garbage collector finds it.
    """
    source = write_app(tmp_path / "src", {"Dockerfile": f"FROM {BASE_IMAGE}\nRUN exit 3\n"})
    with unraisable() as seen:
        result = dokku(root, "deploy", engine_app, "--source", str(source))
        assert result.exit_code == 1
        del result
    leaked = [str(u.exc_value) for u in seen if isinstance(u.exc_value, ResourceWarning)]
    assert leaked == []


@pytest.mark.engine
def test_unreachable_engine(root: Path, tmp_path: Path) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    began = time.monotonic()
    result = dokku(
        root, "deploy", "myapp", "--source", str(source), env={"DOCKER_HOST": "tcp://127.0.0.1:1"}
    )
    assert time.monotonic() - began < 30
    assert_one_error(result, "Cannot reach the Docker engine at tcp://127.0.0.1:1")


@pytest.mark.engine
@pytest.mark.parametrize(
    ("files", "phase"),
    [
        ({"app.json": json.dumps({"scripts": {"dokku": {"predeploy": 'echo "unbalanced'}}})}, ""),
        ({"Procfile": "release: echo 'unbalanced\nweb: sleep 3600\n"}, "release"),
    ],
)
def test_unbalanced_quotes_for_an_entrypoint(
    build_image: Any,
    engine_app: str,
    root: Path,
    watch: EngineWatch,
    files: dict[str, str],
    phase: str,
) -> None:
    image = build_image(
        f"FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\n"
        'ENTRYPOINT ["/app/entrypoint"]\nCMD ["sleep", "3600"]\n',
        {"entrypoint": '#!/bin/sh\nexec "$@"\n', **files},
    )
    watch.since = time.time()
    result = dokku(root, "deploy", engine_app, "--image", image)
    assert_one_error(result, "Cannot split command for the image's ENTRYPOINT", "unbalanced")
    watch.assert_nothing_ran()


# -- other deploy arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-e", "NOEQUALS"], "Invalid -e value"),
        (["-e", "1BAD=x"], "Invalid -e value"),
        (["--env-file", "/nonexistent/env"], "Cannot read env file /nonexistent/env"),
        (["--task-timeout", "0"], "Invalid task timeout"),
        (["--task-timeout", "later"], "Invalid task timeout"),
        (["--image", " "], "--image must name an image"),
    ],
)
def test_bad_deploy_arguments(root: Path, tmp_path: Path, args: list[str], fragment: str) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    result = dokku(root, "deploy", "myapp", "--source", str(source), *args)
    assert_one_error(result, fragment)
    assert not (root / "apps" / "myapp").exists()


def test_env_file_that_does_not_parse(root: Path, tmp_path: Path) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    env_file = tmp_path / "bad.env"
    env_file.write_text("GOOD=1\nthis line has no equals sign\n")
    result = dokku(root, "deploy", "myapp", "--source", str(source), "--env-file", str(env_file))
    assert_one_error(result, str(env_file))


# -- the engine layer --------------------------------------------------------------------------


MISSING_ID = "0" * 64


@pytest.mark.engine
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda engine: engine.rename(MISSING_ID, "no-such-container"), id="rename"),
        pytest.param(lambda engine: engine.state(MISSING_ID), id="state"),
        pytest.param(
            lambda engine: engine.tag(f"sha256:{MISSING_ID}", "dokku/no-such-app", "latest"),
            id="tag",
        ),
    ],
)
def test_engine_turns_every_refusal_into_engine_error(docker_client: Any, call: Any) -> None:
    """A container or image that vanished under a deploy gives one line, not a traceback.

    Seen in a deploy whose new web container died between the "stayed running" check and
    the rename: ``docker.errors.NotFound`` escaped the CLI with a traceback.
    """
    from dokku_tasks.engine import Engine

    engine = Engine.connect()
    try:
        with pytest.raises(EngineError):
            call(engine)
    finally:
        engine.close()


# -- state on disk -----------------------------------------------------------------------------


@pytest.fixture
def store(root: Path) -> PropertyStore:
    return PropertyStore(root)


def _leftovers(directory: Path, name: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != name)


@pytest.mark.parametrize("failure", [OSError(5, "Input/output error"), KeyboardInterrupt()])
def test_property_write_interrupted_at_rename_keeps_the_old_value(
    store: PropertyStore, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    store.set("app-json", "myapp", "appjson-path", "old.json")
    path = store.path("app-json", "myapp", "appjson-path")

    def broken_replace(src: Any, dst: Any) -> None:
        raise failure

    monkeypatch.setattr("dokku_tasks.properties.os.replace", broken_replace)
    expected = PropertyError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as raised:
        store.set("app-json", "myapp", "appjson-path", "new-and-longer.json")
    if isinstance(raised.value, PropertyError):
        assert str(path) in raised.value.message
    monkeypatch.undo()
    assert path.read_text() == "old.json"
    assert _leftovers(path.parent, path.name) == []


def test_property_write_interrupted_mid_write_keeps_the_old_value(
    store: PropertyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.set("scheduler", "myapp", "task-timeout", "30")
    path = store.path("scheduler", "myapp", "task-timeout")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dokku_tasks.properties.os.fsync", broken_fsync)
    with pytest.raises(PropertyError, match="No space left on device"):
        store.set("scheduler", "myapp", "task-timeout", "45")
    monkeypatch.undo()
    assert path.read_text() == "30"
    assert _leftovers(path.parent, path.name) == []


def test_property_write_syncs_the_file_and_its_directory(
    store: PropertyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    kinds: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        kinds.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr("dokku_tasks.properties.os.fsync", recording_fsync)
    store.set("app-json", "myapp", "appjson-path", "x.json")
    assert kinds == ["file", "dir"]
    path = store.path("app-json", "myapp", "appjson-path")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes() == b"x.json"


def test_cli_property_write_failure_is_one_line_and_keeps_the_old_value(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert dokku(root, "apps:create", "myapp").exit_code == 0
    assert dokku(root, "app-json:set", "myapp", "appjson-path", "old.json").exit_code == 0
    path = PropertyStore(root).path("app-json", "myapp", "appjson-path")

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("dokku_tasks.properties.os.replace", broken_replace)
    result = dokku(root, "app-json:set", "myapp", "appjson-path", "new.json")
    monkeypatch.undo()
    assert_one_error(result, str(path), "Read-only file system")
    assert path.read_text() == "old.json"
    assert _leftovers(path.parent, path.name) == []


@pytest.fixture
def damaged(root: Path) -> Iterator[Path]:
    """An app whose appjson-path property file exists; the test damages it."""
    assert dokku(root, "apps:create", "myapp").exit_code == 0
    path = PropertyStore(root).path("app-json", "myapp", "appjson-path")
    path.parent.mkdir(parents=True, exist_ok=True)
    yield path


def test_report_of_a_property_that_is_not_utf8(root: Path, damaged: Path) -> None:
    damaged.write_bytes(b"app\xff\xfe.json")
    for args in (["app-json:report", "myapp"], ["app-json:report"], ["report", "myapp"]):
        result = dokku(root, *args)
        assert_one_error(result, str(damaged), "not valid UTF-8")


def test_report_of_a_property_that_cannot_be_read(root: Path, damaged: Path) -> None:
    # Tests run as root, for whom chmod 000 changes nothing: a directory cannot be read as a file.
    damaged.mkdir()
    result = dokku(root, "app-json:report", "myapp")
    assert_one_error(result, f"Cannot read property file {damaged}")
    result = dokku(root, "app-json:report", "myapp", "--app-json-computed-appjson-path")
    assert_one_error(result, str(damaged))


def test_global_property_that_is_not_utf8(root: Path) -> None:
    path = PropertyStore(root).path("scheduler", "--global", "task-timeout")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80")
    result = dokku(root, "scheduler:report", "--global")
    assert_one_error(result, str(path), "not valid UTF-8")


@pytest.mark.engine
def test_deploy_with_a_damaged_property(
    engine_app: str, root: Path, tmp_path: Path, watch: EngineWatch
) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    assert dokku(root, "apps:create", engine_app).exit_code == 0
    store = PropertyStore(root)
    timeout = store.path("scheduler", engine_app, "task-timeout")
    timeout.parent.mkdir(parents=True)
    timeout.write_bytes(b"soon")
    result = dokku(root, "deploy", engine_app, "--source", str(source))
    assert_one_error(result, "task-timeout", engine_app, "not valid")
    timeout.write_bytes(b"\xff")
    result = dokku(root, "deploy", engine_app, "--source", str(source))
    assert_one_error(result, str(timeout), "not valid UTF-8")
    watch.assert_nothing_ran()
