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

    def push(self, repository: str, tag: str) -> str:
        self.calls.append(("push", repository, tag))
        return "sha256:d16e57"


def test_publish_pushes_once_per_image_when_a_registry_is_set() -> None:
    engine = _RecordingEngine()
    scheduler = SwarmScheduler(engine, "reg.example:5000", swarm=engine)  # type: ignore[arg-type]
    image = ImageInfo(ref="x", id="sha256:feedfacecafe0000")
    pushed = "reg.example:5000/dokku/web:feedfacecafe@sha256:d16e57"
    assert scheduler.image_reference(image) == ""
    assert scheduler.publish("web", image) == pushed
    assert scheduler.publish("web", image) == pushed
    assert scheduler.image_reference(image) == pushed
    assert scheduler.constraints() == ()
    assert engine.calls == [
        ("tag", image.id, "reg.example:5000/dokku/web", "feedfacecafe"),
        ("push", "reg.example:5000/dokku/web", "feedfacecafe"),
    ]


def test_publish_only_tags_without_a_registry() -> None:
    engine = _RecordingEngine()
    scheduler = SwarmScheduler(engine, swarm=engine)  # type: ignore[arg-type]
    image = ImageInfo(ref="x", id="sha256:abc")
    assert scheduler.publish("web", image) == "dokku/web:abc"
    assert [call[0] for call in engine.calls] == ["tag"]
    assert scheduler.image_reference(image) == ""


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


# -- checks on swarm: planning --------------------------------------------------------------

from dokku_tasks.errors import ChecksFailedError, EngineError  # noqa: E402
from dokku_tasks.models import ContainerOptions, Healthcheck  # noqa: E402
from dokku_tasks.plugins import swarm as swarm_plugin  # noqa: E402
from dokku_tasks.plugins.checks import CheckSettings  # noqa: E402
from dokku_tasks.plugins.swarm import (  # noqa: E402
    NO_CHECKS,
    check_failure,
    plan_checks,
    process_env,
    template_literal,
)
from dokku_tasks.plugins.swarm.specs import NodeInfo, ServiceInfo, ServiceSpec  # noqa: E402
from dokku_tasks.scheduling import ProcessSpec  # noqa: E402

DEFAULTS = CheckSettings(default_wait=10, wait=5, timeout=30, attempts=5)


def startup(**fields: Any) -> Healthcheck:
    return Healthcheck(type="startup", **fields)


def test_without_startup_healthchecks_the_default_wait_is_the_update_monitor() -> None:
    for checks in ([], [Healthcheck(type="liveness", path="/"), Healthcheck(path="/")]):
        plan = plan_checks("web", checks, DEFAULTS)
        assert plan.healthcheck is None
        assert (plan.monitor, plan.monitor_name) == (10.0, "default")


def test_a_command_check_runs_its_argv_without_a_shell() -> None:
    plan = plan_checks("worker", [startup(name="ping", command=("./ping", "-q"))], DEFAULTS)
    assert plan.healthcheck is not None
    assert plan.healthcheck.test == ("CMD", "./ping", "-q")
    assert (plan.healthcheck.interval, plan.healthcheck.timeout) == (5.0, 30.0)
    assert (plan.healthcheck.retries, plan.healthcheck.start_period) == (5, 0.0)
    assert (plan.health_name, plan.monitor, plan.monitor_name) == ("ping", 0.0, "")


def test_a_path_check_requests_the_port_inside_the_container_and_looks_for_the_content() -> None:
    check = startup(
        path="health", content="it's ok", wait=2, timeout=3, attempts=4, initial_delay=7
    )
    plan = plan_checks("web", [check], DEFAULTS, port=8080)
    assert plan.healthcheck is not None
    kind, script = plan.healthcheck.test
    assert kind == "CMD-SHELL"
    assert "wget -q -O - http://127.0.0.1:8080/health" in script
    assert "curl -fsSL --max-time 3 http://127.0.0.1:8080/health" in script
    assert "*'it'\"'\"'s ok'*" in script
    assert "unable to find expected content in response body: it" in script
    assert (plan.healthcheck.interval, plan.healthcheck.timeout) == (2.0, 3.0)
    assert (plan.healthcheck.retries, plan.healthcheck.start_period) == (4, 7.0)
    assert plan.health_name == "path health"


def test_a_path_check_without_content_and_with_its_own_port_and_https() -> None:
    plan = plan_checks("web", [startup(path="/", port=9000, scheme="https")], DEFAULTS, 5000)
    assert plan.healthcheck is not None
    script = plan.healthcheck.test[1]
    assert "wget -q -O - --no-check-certificate https://127.0.0.1:9000/" in script
    assert "curl -fsSL --max-time 30 -k https://127.0.0.1:9000/" in script
    assert script.endswith(">/dev/null")


def test_a_listening_check_reads_proc_net_tcp_for_every_interface() -> None:
    plan = plan_checks("web", [startup(listening=True)], DEFAULTS, port=5000)
    assert plan.healthcheck is not None
    script = plan.healthcheck.test[1]
    assert "cat /proc/net/tcp /proc/net/tcp6" in script
    assert "(0{8}|0{32}):1388 " in script  # 5000 in hex
    assert "nothing listens on port 5000 on every interface" in script


def test_a_wait_of_zero_still_probes_every_second() -> None:
    plan = plan_checks("web", [startup(path="/")], CheckSettings(10, 0, 30, 5))
    assert plan.healthcheck is not None
    assert plan.healthcheck.interval == 1.0


def test_uptime_checks_become_the_monitor_and_several_probes_one_script() -> None:
    checks = [
        startup(name="up", uptime=4),
        startup(name="late", uptime=2, initial_delay=9),
        startup(name="a", command=("true",), wait=3, timeout=2, attempts=2),
        startup(name="b", path="/", wait=1, timeout=5, attempts=6, initial_delay=4),
        Healthcheck(type="readiness", command=("never",)),
    ]
    plan = plan_checks("web", checks, DEFAULTS)
    assert (plan.monitor, plan.monitor_name) == (9.0, "up, late")
    assert plan.healthcheck is not None
    kind, script = plan.healthcheck.test
    assert kind == "CMD-SHELL"
    assert "( true ) || { echo 'healthcheck '\"'\"'a'\"'\"' failed' >&2; exit 1; }" in script
    assert "never" not in script
    assert (plan.healthcheck.interval, plan.healthcheck.timeout) == (1.0, 7.0)
    assert (plan.healthcheck.retries, plan.healthcheck.start_period) == (6, 4.0)
    assert plan.health_name == "a', 'b"


def test_only_uptime_checks_give_no_health_check() -> None:
    plan = plan_checks("web", [startup(uptime=3)], DEFAULTS)
    assert plan.healthcheck is None
    assert (plan.monitor, plan.monitor_name) == (3.0, "uptime 3s")


def test_process_env_sets_dyno_per_slot_and_keeps_config_literal() -> None:
    assert process_env({"A": "x{{.Task.Slot}}", "B": "}}"}, "web") == {
        "A": 'x{{"{{"}}.Task.Slot}}',
        "B": "}}",
        "DYNO": "web.{{.Task.Slot}}",
        "PORT": "5000",
    }
    assert process_env({"PORT": "8000"}, "web")["PORT"] == "8000"
    assert "PORT" not in process_env({}, "worker")
    assert template_literal("{{{{") == '{{"{{"}}{{"{{"}}'


# -- checks on swarm: failure lines -----------------------------------------------------------


def _task(slot: int, state: str, err: str = "", code: int | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"ContainerID": "c1"}
    if code is not None:
        container["ExitCode"] = code
    return {"Slot": slot, "Status": {"State": state, "Err": err, "ContainerStatus": container}}


def test_the_failure_line_of_an_unhealthy_task_shows_the_last_probe() -> None:
    plan = plan_checks("web", [startup(name="home", path="/", attempts=3)], DEFAULTS)
    health = {
        "Health": {
            "Status": "unhealthy",
            "FailingStreak": 3,
            "Log": [{"ExitCode": 1, "Output": "wget: server returned\n error: 404"}],
        }
    }
    task = _task(2, "failed", "task: non-zero exit (137): dockerexec: unhealthy container", 137)
    error = check_failure("web", "app-web", plan, task, health, "rolled back")
    assert isinstance(error, ChecksFailedError)
    assert error.message == (
        "Pre-flight checks failed (web.2): healthcheck 'home' failed after 3 attempts: "
        "exit status 1; output: wget: server returned error: 404; service app-web rolled back"
    )
    assert (error.process, error.check, error.attempts) == ("web.2", "home", 3)


def test_the_failure_line_of_a_task_that_stopped_before_it_was_healthy() -> None:
    plan = plan_checks("web", [startup(name="home", path="/")], DEFAULTS)
    error = check_failure(
        "web", "app-web", plan, _task(1, "failed", "task: non-zero exit (2)", 2), None, "removed"
    )
    assert error.message == (
        "Pre-flight checks failed (web.1): healthcheck 'home' failed: the task stopped before "
        "it was healthy (exit status 2); service app-web removed"
    )


def test_the_failure_line_of_the_default_check_and_of_a_rejected_task() -> None:
    plan = plan_checks("web", [], DEFAULTS)
    error = check_failure("web", "app-web", plan, _task(1, "complete", "", 0), None, "rolled back")
    assert error.message == (
        "Pre-flight checks failed (web.1): healthcheck 'default' failed after 1 attempt: "
        "task stopped within 10 seconds (exit status 0); service app-web rolled back"
    )
    rejected = {"Slot": 1, "Status": {"State": "rejected", "Err": "No such image: x"}}
    error = check_failure("web", "app-web", plan, rejected, None, "removed")
    assert isinstance(error, EngineError)
    assert not isinstance(error, ChecksFailedError)
    assert (
        error.message == "Process web.1 did not start (No such image: x); service app-web removed"
    )


# -- checks on swarm: deploying with a fake swarm ---------------------------------------------


class _FakeSwarm:
    """Services that the test scripts: their update states and tasks, call by call."""

    def __init__(self, existing: dict[str, ServiceInfo] | None = None) -> None:
        self.existing = dict(existing or {})
        self.created: list[ServiceSpec] = []
        self.updated: list[tuple[ServiceInfo, ServiceSpec]] = []
        self.removed: list[str] = []
        self.rolled_back: list[str] = []
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.tasks: dict[str, list[dict[str, Any]]] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.node_infos = {"n1": NodeInfo("n1", "manager", "ready", "active")}

    def swarm_active(self) -> bool:
        return True

    def local_node_id(self) -> str:
        return "n1"

    def nodes(self) -> dict[str, NodeInfo]:
        return dict(self.node_infos)

    def tag(self, image: str, repository: str, tag: str) -> None:
        pass

    def services(self, labels: dict[str, str]) -> list[ServiceInfo]:
        return list(self.existing.values())

    def create_service(self, spec: ServiceSpec) -> str:
        self.created.append(spec)
        service_id = f"new-{spec.name}"
        self.existing[service_id] = ServiceInfo(service_id, spec.name, spec.labels, 1, spec.image)
        return service_id

    def update_service(self, service: ServiceInfo, spec: ServiceSpec) -> None:
        self.updated.append((service, spec))

    def inspect_service(self, service_id: str) -> dict[str, Any]:
        statuses = self.statuses[service_id]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return {"UpdateStatus": status}

    def service_tasks(self, service_id: str) -> list[dict[str, Any]]:
        return self.tasks.get(service_id, [])

    def container_state(self, container_id: str) -> dict[str, Any] | None:
        return self.states.get(container_id)

    def remove_service(self, service_id: str) -> None:
        self.removed.append(service_id)
        self.existing.pop(service_id, None)

    def roll_back_service(self, service_id: str) -> None:
        self.rolled_back.append(service_id)


def _existing(process_type: str, force_update: int = 3) -> ServiceInfo:
    return ServiceInfo(
        id=f"old-{process_type}",
        name=f"shop-{process_type}",
        labels={APP: "shop", PROCESS: process_type},
        version=7,
        image="dokku/shop:000000000000",
        force_update=force_update,
        update_started="2026-01-01T00:00:00Z",
    )


def _new_task(
    image: str, force_update: int, state: str, task_id: str = "t1", **status: Any
) -> dict[str, Any]:
    return {
        "ID": task_id,
        "NodeID": "n1",
        "Slot": 1,
        "CreatedAt": "2026-01-02T00:00:00Z",
        "DesiredState": "running",
        "Spec": {"ContainerSpec": {"Image": image}, "ForceUpdate": force_update},
        "Status": {"State": state, **status},
    }


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real waits: each reading of the clock is a second later than the last."""
    clock = iter(range(1_000_000))
    monkeypatch.setattr(swarm_plugin, "_sleep", lambda seconds: None)
    monkeypatch.setattr(swarm_plugin, "_clock", lambda: float(next(clock)))


def _scheduler(fake: _FakeSwarm, tmp_path: Any, healthchecks: Any = None) -> SwarmScheduler:
    from dokku_tasks.properties import PropertyStore

    scheduler = SwarmScheduler(fake, swarm=fake, properties=PropertyStore(tmp_path))  # type: ignore[arg-type]
    scheduler._healthchecks = lambda app, image: healthchecks or {}  # type: ignore[method-assign]
    return scheduler


IMAGE = ImageInfo(ref="x", id="sha256:abcdefabcdef0000")
REFERENCE = "dokku/shop:abcdefabcdef"


def _check(started: Any, probe: Any) -> None:
    raise AssertionError("the swarm runs the checks itself")


def test_an_update_waits_for_the_swarm_to_complete_it_and_replaces_every_task(
    tmp_path: Any, fast: None
) -> None:
    fake = _FakeSwarm({"old-web": _existing("web")})
    fake.statuses["old-web"] = [
        {"State": "completed", "StartedAt": "2026-01-01T00:00:00Z"},  # the last deploy's
        {"State": "updating", "StartedAt": "2026-01-03T00:00:00Z"},
        {"State": "completed", "StartedAt": "2026-01-03T00:00:00Z"},
    ]
    fake.tasks["old-web"] = [
        _new_task(REFERENCE, 4, "running", "a"),
        _new_task(REFERENCE, 4, "running", "b"),
        _new_task("dokku/shop:000000000000", 3, "running", "old"),
    ]
    scheduler = _scheduler(fake, tmp_path, {"web": (startup(path="/"),)})
    names = scheduler.deploy_processes(
        "shop", IMAGE, [ProcessSpec("web", 2, ("run",))], ContainerOptions(env={"A": "1"}), _check
    )
    assert names == ("shop-web",)
    assert scheduler.nodes_of(names) == (("manager",),)
    assert scheduler.nodes_of(("other",)) == ((),)
    ((_, spec),) = fake.updated
    assert spec.constraints == ("node.id==n1",)
    assert spec.init is True  # docker-local's init-process rule, unset: the engine's init
    assert spec.force_update == 4
    assert spec.replicas == 2
    assert spec.healthcheck is not None and spec.healthcheck.test[0] == "CMD-SHELL"
    assert spec.monitor == 0.0
    assert spec.env == {"A": "1", "DYNO": "web.{{.Task.Slot}}", "PORT": "5000"}
    assert fake.statuses["old-web"] == [{"State": "completed", "StartedAt": "2026-01-03T00:00:00Z"}]
    assert fake.rolled_back == fake.removed == []


def test_a_rolled_back_update_fails_with_the_failed_task_once_the_rollback_is_done(
    tmp_path: Any, fast: None
) -> None:
    fake = _FakeSwarm({"old-web": _existing("web")})
    message = "update rolled back due to failure or early termination of task t2abcdefghij"
    fake.statuses["old-web"] = [
        {"State": "updating", "StartedAt": "new"},
        {"State": "rollback_started", "StartedAt": "new", "Message": message},
        {"State": "rollback_started", "StartedAt": "new", "Message": message},
        {"State": "rollback_completed", "StartedAt": "new", "Message": "rollback completed"},
    ]
    fake.tasks["old-web"] = [
        _new_task(REFERENCE, 4, "failed", "t1", Err="x"),
        _new_task(
            REFERENCE,
            4,
            "complete",
            "t2abcdefghij",
            ContainerStatus={"ContainerID": "c2", "ExitCode": 3},
        ),
        _new_task("dokku/shop:000000000000", 3, "running", "old"),
    ]
    scheduler = _scheduler(fake, tmp_path)
    with pytest.raises(ChecksFailedError) as failure:
        scheduler.deploy_processes(
            "shop", IMAGE, [ProcessSpec("web", 1, None)], ContainerOptions(), _check
        )
    assert failure.value.message == (
        "Pre-flight checks failed (web.1): healthcheck 'default' failed after 1 attempt: task "
        "stopped within 10 seconds (exit status 3); service shop-web rolled back to its "
        "previous version"
    )
    assert fake.statuses["old-web"][0]["State"] == "rollback_completed"
    assert fake.rolled_back == []  # the swarm did it
    assert fake.removed == []


def test_when_one_service_fails_the_others_are_rolled_back_and_new_ones_removed(
    tmp_path: Any, fast: None
) -> None:
    fake = _FakeSwarm({"old-web": _existing("web")})
    fake.statuses["old-web"] = [{"State": "completed", "StartedAt": "new"}]
    fake.tasks["new-shop-worker"] = [
        _new_task(REFERENCE, 0, "failed", Err="task: non-zero exit (1)"),
    ]
    scheduler = _scheduler(fake, tmp_path)
    processes = [ProcessSpec("web", 1, None), ProcessSpec("worker", 1, ("work",))]
    with pytest.raises(ChecksFailedError, match=r"\(worker.1\).*service shop-worker removed"):
        scheduler.deploy_processes("shop", IMAGE, processes, ContainerOptions(), _check)
    assert fake.removed == ["new-shop-worker"]
    assert fake.rolled_back == ["old-web"]


def test_a_new_service_is_done_once_its_tasks_ran_for_the_monitor_window(
    tmp_path: Any, fast: None
) -> None:
    from dokku_tasks.properties import PropertyStore

    PropertyStore(tmp_path).set("checks", "shop", "default-wait", "2")
    fake = _FakeSwarm()
    fake.tasks["new-shop-web"] = [_new_task(REFERENCE, 0, "running")]
    scheduler = _scheduler(fake, tmp_path)
    assert scheduler.deploy_processes(
        "shop", IMAGE, [ProcessSpec("web", 1, None)], ContainerOptions(), _check
    ) == ("shop-web",)
    (spec,) = fake.created
    assert (spec.monitor, spec.force_update, spec.healthcheck) == (2.0, 0, None)


def test_skipped_or_disabled_types_get_no_checks_and_no_check_means_none(
    tmp_path: Any, fast: None
) -> None:
    from dokku_tasks.properties import PropertyStore

    PropertyStore(tmp_path).set("checks", "shop", "skipped", "web")
    PropertyStore(tmp_path).set("checks", "shop", "disabled", "worker")
    fake = _FakeSwarm()
    for name in ("web", "worker", "clock"):
        fake.tasks[f"new-shop-{name}"] = [_new_task(REFERENCE, 0, "running")]
    scheduler = _scheduler(fake, tmp_path, {"web": (startup(path="/"),)})
    processes = [ProcessSpec(name, 1, None) for name in ("web", "worker", "clock")]
    scheduler.deploy_processes("shop", IMAGE, processes, ContainerOptions(), _check)
    assert [(s.healthcheck, s.monitor) for s in fake.created] == [
        (None, 0.0),
        (None, 0.0),
        (None, 10.0),
    ]
    fake = _FakeSwarm()
    fake.tasks["new-shop-web"] = [_new_task(REFERENCE, 0, "running")]
    _scheduler(fake, tmp_path).deploy_processes(
        "shop", IMAGE, [ProcessSpec("web", 1, None)], ContainerOptions()
    )
    assert (fake.created[0].healthcheck, fake.created[0].monitor) == (
        NO_CHECKS.healthcheck,
        NO_CHECKS.monitor,
    )


def test_an_update_the_swarm_calls_complete_with_a_failed_new_task_is_rolled_back(
    tmp_path: Any, fast: None
) -> None:
    fake = _FakeSwarm({"old-web": _existing("web")})
    fake.statuses["old-web"] = [
        {"State": "completed", "StartedAt": "new"},
        {"State": "rollback_started", "StartedAt": "newer"},
        {"State": "rollback_completed", "StartedAt": "newer"},
    ]
    fake.tasks["old-web"] = [
        _new_task(REFERENCE, 4, "complete", "t1", ContainerStatus={"ExitCode": 0}),
        _new_task("dokku/shop:000000000000", 3, "shutdown", "old"),
    ]
    scheduler = _scheduler(fake, tmp_path)
    with pytest.raises(ChecksFailedError, match="rolled back to its previous version"):
        scheduler.deploy_processes(
            "shop", IMAGE, [ProcessSpec("web", 1, None)], ContainerOptions(), _check
        )
    assert fake.rolled_back == ["old-web"]  # once: by the scheduler, not again on the way out


class _JobSwarm(_FakeSwarm):
    """A job whose task runs on node ``n2`` until the test says the node is down."""

    def __init__(self) -> None:
        super().__init__()
        self.node_infos["n2"] = NodeInfo("n2", "worker-2", "ready", "active")
        self.polls = 0
        self.followers: list[Any] = []

    def follow_service_logs(self, service_id: str, out: Any, err: Any) -> Any:
        follower = _Follower()
        self.followers.append(follower)
        return follower

    def service_tasks(self, service_id: str) -> list[dict[str, Any]]:
        self.polls += 1
        if self.polls == 3:
            self.node_infos["n2"] = NodeInfo("n2", "worker-2", "down", "active")
        return [{"ID": "t", "NodeID": "n2", "Status": {"State": "running"}}]


class _Follower:
    stopped = False

    def finish(self) -> None:
        raise AssertionError("a lost job has no end to wait for")

    def stop(self) -> None:
        self.stopped = True


def _job_spec(timeout: float | None) -> Any:
    from dokku_tasks.models import Task
    from dokku_tasks.scheduling import TaskOwner, TaskSpec

    return TaskSpec(
        app="shop",
        image=IMAGE,
        task=Task(phase="release", command="migrate", source="Procfile"),
        argv=("/bin/sh", "-c", "migrate"),
        options=ContainerOptions(),
        owner=TaskOwner("/state"),
        timeout=timeout,
    )


class _IO:
    def started(self, container_id: str) -> None:
        pass

    def stdout(self, line: str) -> None:
        pass

    def stderr(self, line: str) -> None:
        pass


def test_a_job_whose_node_goes_down_fails_with_the_node_named_and_is_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(range(1_000_000))
    monkeypatch.setattr(swarm_plugin.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(swarm_plugin.time, "sleep", lambda seconds: None)
    fake = _JobSwarm()
    scheduler = SwarmScheduler(fake, swarm=fake)  # type: ignore[arg-type]
    with pytest.raises(EngineError) as raised:
        scheduler.run_task(_job_spec(timeout=None), _IO())
    assert str(raised.value) == (
        "The release job was lost: its node worker-2 went down while it ran "
        "(it was not run again elsewhere)"
    )
    ((spec),) = fake.created
    assert spec.job and spec.constraints == ("node.id==n1",)
    assert fake.removed == [f"new-{spec.name}"]
    assert [f.stopped for f in fake.followers] == [True]


def test_a_job_on_a_node_the_swarm_no_longer_lists_is_lost_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(range(1_000_000))
    monkeypatch.setattr(swarm_plugin.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(swarm_plugin.time, "sleep", lambda seconds: None)
    fake = _JobSwarm()
    del fake.node_infos["n2"]
    scheduler = SwarmScheduler(fake, swarm=fake)  # type: ignore[arg-type]
    with pytest.raises(EngineError, match="its node n2 went down"):
        scheduler.run_task(_job_spec(timeout=None), _IO())


def test_processes_name_the_nodes_their_running_tasks_are_on() -> None:
    nodes = {
        "n1": NodeInfo("n1", "manager", "ready", "active"),
        "n2": NodeInfo("n2", "worker-2", "ready", "active"),
    }
    tasks = [
        {"NodeID": "n2", "DesiredState": "running", "Status": {"State": "running"}},
        {"NodeID": "n1", "DesiredState": "running", "Status": {"State": "running"}},
        {"NodeID": "n2", "DesiredState": "running", "Status": {"State": "running"}},
        {"NodeID": "n3", "DesiredState": "shutdown", "Status": {"State": "running"}},
        {"NodeID": "n3", "DesiredState": "running", "Status": {"State": "failed"}},
    ]
    assert swarm_plugin._placed(tasks, nodes) == ("manager", "worker-2")
    assert swarm_plugin._placed([], nodes) == ()
    lost = [{"NodeID": "n9", "DesiredState": "running", "Status": {"State": "running"}}]
    assert swarm_plugin._placed(lost, nodes) == ("?",)
