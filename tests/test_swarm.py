"""The swarm scheduler's pure parts: names, image references, job states, publishing, and
removing an app's services (with fakes for the engine)."""

from __future__ import annotations

from typing import Any

import pytest

from dokku_tasks.models import ImageInfo
from dokku_tasks.plugins.swarm import SwarmScheduler, dns_name, image_reference, job_exit
from dokku_tasks.specs import APP_LABEL as APP
from dokku_tasks.specs import PROCESS_LABEL as PROCESS
from dokku_tasks.specs import TASK_LABEL as TASK


@pytest.mark.parametrize(
    ("parts", "suffix", "expected"),
    [
        (("web-app", "heroku.postdeploy"), "a1b2c3", "web-app-heroku-postdeploy-a1b2c3"),
        (("app", "worker_2"), "", "app-worker-2"),
        (("a" * 63, "release"), "abcdef", "a" * 56 + "-abcdef"),
    ],
)
def test_dns_names(parts: tuple[str, ...], suffix: str, expected: str) -> None:
    name = dns_name(*parts, suffix=suffix)
    assert name == expected
    assert len(name) <= 63


def test_image_reference_with_and_without_registry() -> None:
    assert image_reference("web", "sha256:0123456789abcdef", "") == ("dokku/web", "0123456789ab")
    assert image_reference("web", "sha256:0123456789abcdef", "reg.example:5000/") == (
        "reg.example:5000/dokku/web",
        "0123456789ab",
    )


def test_job_exit_reads_the_finished_task() -> None:
    assert job_exit([{"Status": {"State": "running"}}]) is None
    assert job_exit(
        [{"Status": {"State": "failed", "ContainerStatus": {"ExitCode": 7}, "Err": "x"}}]
    ) == ("failed", 7, "x")
    assert job_exit([{"Status": {"State": "rejected", "Err": "no such image"}}]) == (
        "rejected",
        None,
        "no such image",
    )


class _RecordingEngine:
    """The core engine (``tag``) and the plugin's service calls (``push``) in one, so that one
    list records the order of both."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.calls.append(("tag", image, repository, tag))

    def push(self, repository: str, tag: str) -> None:
        self.calls.append(("push", repository, tag))


def test_publish_pushes_once_per_image_when_a_registry_is_set() -> None:
    engine = _RecordingEngine()
    scheduler = SwarmScheduler(engine, "reg.example:5000", swarm=engine)  # type: ignore[arg-type]
    image = ImageInfo(ref="x", id="sha256:feedfacecafe0000")
    assert scheduler.publish("web", image) == "reg.example:5000/dokku/web:feedfacecafe"
    assert scheduler.publish("web", image) == "reg.example:5000/dokku/web:feedfacecafe"
    assert engine.calls == [
        ("tag", image.id, "reg.example:5000/dokku/web", "feedfacecafe"),
        ("push", "reg.example:5000/dokku/web", "feedfacecafe"),
    ]


def test_publish_only_tags_without_a_registry() -> None:
    engine = _RecordingEngine()
    scheduler = SwarmScheduler(engine, swarm=engine)  # type: ignore[arg-type]
    assert scheduler.publish("web", ImageInfo(ref="x", id="sha256:abc")) == "dokku/web:abc"
    assert [call[0] for call in engine.calls] == ["tag"]


class _NoSwarmEngine(_RecordingEngine):
    def swarm_active(self) -> bool:
        return False


def test_a_deploy_on_an_engine_without_a_swarm_stops_before_any_task() -> None:
    from dokku_tasks.errors import EngineError
    from dokku_tasks.scheduling import TaskOwner

    engine = _NoSwarmEngine()
    scheduler = SwarmScheduler(engine, swarm=engine)  # type: ignore[arg-type]
    with pytest.raises(EngineError, match="needs an engine that manages an active swarm"):
        scheduler.remove_stale_tasks("web", TaskOwner("/state"))


class _Services:
    """The plugin's service calls, on a swarm that is active or not."""

    def __init__(self, active: bool, services: dict[str, dict[str, str]]) -> None:
        self.active = active
        self.listed = services
        self.removed: list[str] = []

    def swarm_active(self) -> bool:
        return self.active

    def services(self, labels: dict[str, str]) -> list[Any]:
        from dokku_tasks.plugins.swarm.specs import ServiceInfo

        return [
            ServiceInfo(id=sid, name=sid, labels=own, version=1, image="x")
            for sid, own in self.listed.items()
            if labels.items() <= own.items()
        ]

    def remove_service(self, service_id: str) -> None:
        assert self.active, "no service call on an engine without a swarm"
        self.removed.append(service_id)


def test_remove_app_removes_every_service_of_the_app() -> None:
    swarm = _Services(
        True,
        {
            "web": {APP: "shop", PROCESS: "web"},
            "job": {APP: "shop", PROCESS: "web", TASK: "release"},
            "other": {APP: "blog", PROCESS: "web"},
        },
    )
    scheduler = SwarmScheduler(_RecordingEngine(), swarm=swarm)  # type: ignore[arg-type]
    assert scheduler.remove_app("shop") == 2
    assert sorted(swarm.removed) == ["job", "web"]


def test_remove_app_without_a_swarm_removes_nothing_and_does_not_fail() -> None:
    swarm = _Services(False, {"web": {APP: "shop"}})
    scheduler = SwarmScheduler(_RecordingEngine(), swarm=swarm)  # type: ignore[arg-type]
    assert scheduler.remove_app("shop") == 0
    assert swarm.removed == []
