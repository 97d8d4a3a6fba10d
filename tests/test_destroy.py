"""``apps:destroy`` through the schedulers, with fakes for the engine and the schedulers.

Each scheduler removes what it runs of the app (``Scheduler.remove_app``); the core engine
removes the app's images after.  The real-engine tests are in ``test_deploy_engine.py``
(containers and images) and ``test_swarm_engine.py`` (services).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.apps import AppRegistry
from dokku_tasks.hookspecs import hookimpl
from dokku_tasks.manager import get_plugin_manager
from dokku_tasks.pipeline import destroy
from dokku_tasks.plugins.docker_local import DockerLocalScheduler
from dokku_tasks.specs import APP_LABEL, PROCESS_LABEL, TASK_LABEL, ContainerInfo
from tests.conftest import Captured


class _Engine:
    """The core engine's containers and images, as destroy and docker-local use them."""

    def __init__(self, containers: dict[str, dict[str, str]] | None = None) -> None:
        self.listed = containers or {}
        self.calls: list[str] = []
        self.closed = False

    def containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        return [
            ContainerInfo(id=cid, name=cid, labels=own, status="running")
            for cid, own in self.listed.items()
            if labels.items() <= own.items()
        ]

    def remove(self, container_id: str) -> None:
        self.calls.append(f"remove {container_id}")

    def remove_app_images(self, app: str) -> int:
        self.calls.append(f"images of {app}")
        return 2

    def close(self) -> None:
        self.closed = True


def test_docker_local_removes_every_container_of_the_app() -> None:
    engine = _Engine(
        {
            "web": {APP_LABEL: "shop", PROCESS_LABEL: "web", TASK_LABEL: ""},
            "retired": {APP_LABEL: "shop", PROCESS_LABEL: "web"},
            "task": {APP_LABEL: "shop", TASK_LABEL: "release"},
            "blog": {APP_LABEL: "blog", PROCESS_LABEL: "web"},
        }
    )
    assert DockerLocalScheduler(engine).remove_app("shop") == 3  # type: ignore[arg-type]
    assert sorted(engine.calls) == ["remove retired", "remove task", "remove web"]


def test_docker_local_with_nothing_to_remove() -> None:
    engine = _Engine({"blog": {APP_LABEL: "blog"}})
    assert DockerLocalScheduler(engine).remove_app("shop") == 0  # type: ignore[arg-type]
    assert engine.calls == []


class _Scheduler:
    def __init__(self, name: str, removes: int, engine: _Engine, app: str) -> None:
        self.name = name
        self.removes = removes
        self.engine = engine
        self.app = app

    def remove_app(self, app: str) -> int:
        assert app == self.app
        self.engine.calls.append(f"{self.name} removes {app}")
        return self.removes


class _Schedulers:
    """A plugin with a cluster scheduler and a stand-in for docker-local."""

    @hookimpl
    def register_schedulers(self, register: Callable[[str, Any], None]) -> None:
        for name, removes in (("docker-local", 1), ("cluster", 3)):
            register(name, self._factory(name, removes))

    @staticmethod
    def _factory(name: str, removes: int) -> Any:
        def make(*, engine: _Engine, app: str, properties: Any) -> _Scheduler:
            return _Scheduler(name, removes, engine, app)

        return make


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> _Engine:
    from dokku_tasks.engine import Engine

    fake = _Engine()
    monkeypatch.setattr(Engine, "connect", classmethod(lambda cls, *a, **k: fake))
    return fake


def _manager() -> Any:
    pm = get_plugin_manager(entrypoints=False, blocked=["docker-local", "swarm"])
    pm.register(_Schedulers(), "schedulers")
    return pm


def test_every_scheduler_removes_the_app_then_the_engine_its_images(
    engine: _Engine, root: Path
) -> None:
    AppRegistry(root).create("shop")
    done = Captured()
    destroy("shop", root=root, output=done.output, pm=_manager())
    # The local scheduler comes last: a cluster first stops restarting what it runs.
    assert engine.calls == ["cluster removes shop", "docker-local removes shop", "images of shop"]
    assert engine.closed
    assert done.stdout == "       Removed 4 container(s) and 2 image(s)\n"
    assert not AppRegistry(root).exists("shop")
