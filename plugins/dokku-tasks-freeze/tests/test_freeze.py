"""Tests for the freeze plugin: its settings, its refusal, its output and its command.

The Docker-free tests use the plugin through the same hooks the core calls; the last test
deploys for real on the Docker engine and checks that a frozen deploy builds nothing.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dokku_tasks_freeze as freeze
import pytest
from click.testing import CliRunner

from dokku_tasks.cli import cli
from dokku_tasks.errors import DeployRefusedError, PropertyError
from dokku_tasks.hooks import Hooks
from dokku_tasks.manager import get_plugin_manager, plugin_infos
from dokku_tasks.output import Output
from dokku_tasks.pipeline import DeployRequest
from dokku_tasks.properties import GLOBAL, PropertyStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _hooks() -> Hooks:
    pm = get_plugin_manager(entrypoints=False)
    pm.register(freeze, "freeze")
    return Hooks(pm)


def _start(hooks: Hooks, store: PropertyStore, output: Output) -> None:
    hooks.deploy_started(
        app="web", request=DeployRequest(app="web", image="x"), properties=store, output=output
    )


@pytest.mark.parametrize(
    ("given", "stored"), [("true", "true"), ("YES", "true"), ("1", "true"), ("off", "false")]
)
def test_frozen_values_are_normalised(given: str, stored: str) -> None:
    assert freeze.FREEZE.get_property("frozen").validate(given) == stored


def test_a_frozen_value_that_is_no_boolean_is_refused() -> None:
    with pytest.raises(PropertyError) as info:
        freeze.FREEZE.get_property("frozen").validate("maybe")
    assert info.value.message == "Invalid frozen value 'maybe': expected true or false"


def test_an_app_value_beats_the_global_one(tmp_path: Path) -> None:
    store = PropertyStore(tmp_path)
    assert not freeze.is_frozen(store, "web")
    store.set("freeze", GLOBAL, "frozen", "true")
    assert freeze.is_frozen(store, "web")
    store.set("freeze", "web", "frozen", "false")
    assert not freeze.is_frozen(store, "web")


def test_a_frozen_app_is_refused_and_the_attempt_recorded(tmp_path: Path) -> None:
    store = PropertyStore(tmp_path)
    store.set("freeze", "web", "frozen", "true")
    store.set("freeze", "web", "reason", "holiday")
    out = Output(out=_Lines(), err=_Lines())
    hooks = _hooks()
    with pytest.raises(DeployRefusedError) as refusal:
        _start(hooks, store, out)
    assert refusal.value.message == "Deploy refused by plugin 'freeze': web is frozen: holiday"
    assert out.out.lines == ["-----> Checking the deploy freeze of web"]  # type: ignore[attr-defined]
    [line] = freeze.audit_log(tmp_path).read_text().splitlines()
    assert line.endswith(" web refused holiday")
    assert [(s.plugin, s.ok) for s in hooks.steps] == [("freeze", False)]


def test_an_app_never_frozen_is_left_alone(tmp_path: Path) -> None:
    store = PropertyStore(tmp_path)
    out = Output(out=_Lines(), err=_Lines())
    _start(_hooks(), store, out)
    assert out.out.lines == []  # type: ignore[attr-defined]
    assert not freeze.audit_log(tmp_path).exists()


def test_an_unfrozen_app_goes_on_and_the_attempt_is_recorded(tmp_path: Path) -> None:
    store = PropertyStore(tmp_path)
    store.set("freeze", GLOBAL, "frozen", "true")
    store.set("freeze", "web", "frozen", "false")
    out = Output(out=_Lines(), err=_Lines())
    _start(_hooks(), store, out)
    assert out.out.lines == ["-----> Checking the deploy freeze of web"]  # type: ignore[attr-defined]
    assert freeze.audit_log(tmp_path).read_text().splitlines()[0].endswith(" web allowed")
    assert freeze.audit_log(tmp_path).stat().st_mode & 0o777 == 0o600


def test_the_plugin_is_an_installed_entry_point() -> None:
    [info] = [i for i in plugin_infos(get_plugin_manager()) if i.name == "freeze"]
    assert info.origin == f"dokku-tasks-freeze {freeze.__version__}"
    assert info.hooks == ("deploy_started", "register_commands", "register_settings")


def _cli(root: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--root", str(root), *args], catch_exceptions=False)


def test_its_namespace_and_command_are_on_the_command_line(root: Path) -> None:
    assert _cli(root, "apps:create", "web").exit_code == 0
    done = _cli(root, "freeze:set", "web", "frozen", "yes")
    assert (done.exit_code, done.stdout) == (0, "=====> Setting frozen to true\n")
    done = _cli(root, "freeze:report", "web", "--freeze-computed-frozen")
    assert (done.exit_code, done.stdout) == (0, "true\n")
    done = _cli(root, "freeze:set", "web", "frozen", "maybe")
    assert done.exit_code == 1
    assert done.stderr == " !     Invalid frozen value 'maybe': expected true or false\n"
    done = _cli(root, "freeze:log", "nope")
    assert (done.exit_code, done.stderr) == (20, " !     App nope does not exist\n")
    freeze.record(root, "web", "refused", "holiday")
    freeze.record(root, "api", "allowed")
    done = _cli(root, "freeze:log", "web")
    assert done.exit_code == 0
    assert [line.split(" ", 1)[1] for line in done.stdout.splitlines()] == ["web refused holiday"]
    assert "freeze:log" in _cli(root, "--help").stdout


class _Lines:
    """A text stream that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines += text.splitlines()
        return len(text)

    def flush(self) -> None:
        pass


# -- on the real engine ---------------------------------------------------------------------

BASE_IMAGE = "dokku-tasks/busybox:latest"
APP_LABEL = "com.dokku.app-name"


@pytest.fixture
def engine_app() -> Iterator[str]:
    """An app name whose containers and images are removed afterwards, pass or fail."""
    docker = pytest.importorskip("docker")
    app = f"t-{uuid.uuid4().hex[:12]}"
    yield app
    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": f"{APP_LABEL}={app}"}):
            container.remove(force=True)
        for _ in range(3):
            images = client.images.list(filters={"label": f"{APP_LABEL}={app}"})
            images += client.images.list(name=f"dokku/{app}")
            for image in images:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(image.id, force=True)
    finally:
        client.close()


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dokku_tasks", "--root", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.engine
def test_a_frozen_deploy_builds_nothing_on_the_engine(
    root: Path, tmp_path: Path, engine_app: str
) -> None:
    import docker

    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(f'FROM {BASE_IMAGE}\nCMD ["sleep", "3600"]\n')
    assert _run(root, "apps:create", engine_app).returncode == 0
    assert _run(root, "freeze:set", engine_app, "frozen", "true").returncode == 0
    refused = _run(root, "deploy", engine_app, "--source", str(source))
    assert refused.returncode == 1
    assert refused.stdout == f"-----> Checking the deploy freeze of {engine_app}\n"
    assert refused.stderr == (f" !     Deploy refused by plugin 'freeze': {engine_app} is frozen\n")
    client = docker.from_env()
    try:
        assert client.images.list(filters={"label": f"{APP_LABEL}={engine_app}"}) == []
        assert _run(root, "freeze:set", engine_app, "frozen", "false").returncode == 0
        done = _run(root, "deploy", engine_app, "--source", str(source))
        assert done.returncode == 0, done.stderr
        assert client.containers.get(f"{engine_app}.web.1").status == "running"
    finally:
        client.close()
    log = _run(root, "freeze:log", engine_app).stdout.splitlines()
    assert [line.split(" ", 2)[2] for line in log] == ["refused", "allowed"]
