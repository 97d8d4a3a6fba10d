"""The checks plugin without Docker: a fake probe, a fake clock, the real property store.

Covers the default-wait check (one overlapping wait), healthchecks (attempts, waits, timeouts,
HTTP through wget/curl inside the container, content, listening, uptime), skip and disable,
the error line, the disable/enable/skip lists and the commands' argument handling.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dokku_tasks import manager
from dokku_tasks.apps import AppRegistry
from dokku_tasks.cli import cli
from dokku_tasks.errors import ChecksFailedError, EngineError, UsageError
from dokku_tasks.hooks import Hooks
from dokku_tasks.models import AppJson, DeployContext, Healthcheck
from dokku_tasks.plugins import checks
from dokku_tasks.properties import PropertyStore
from dokku_tasks.scheduling import StartedProcess
from dokku_tasks.specs import ExecOutcome
from tests.conftest import Captured

APP = "shop"

WEB1 = StartedProcess("web", 1, "shop.web.1", "cid-web-1", 5000)
WEB2 = StartedProcess("web", 2, "shop.web.2", "cid-web-2", 5000)
WORKER1 = StartedProcess("worker", 1, "shop.worker.1", "cid-worker-1")

RUNNING = {"Running": True, "Restarting": False, "ExitCode": 0, "StartedAt": "t0"}


class FakeClock:
    """Time that moves only when slept: every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


Exec = Callable[[str, tuple[str, ...], float], ExecOutcome]


class FakeProbe:
    """A probe with scripted container states and exec results; it records every call.

    ``states`` maps a container id to its state, or to a list of states returned one per
    call (the last one repeats).  ``results`` is a list of exec outcomes returned in order
    (the last one repeats), or a function of (container id, argv, timeout).
    """

    def __init__(
        self,
        states: Mapping[str, Mapping[str, Any] | list[Mapping[str, Any]]] | None = None,
        results: list[ExecOutcome] | Exec | None = None,
    ) -> None:
        self.states = {k: (v if isinstance(v, list) else [v]) for k, v in (states or {}).items()}
        self.results = results if results is not None else [ExecOutcome(0, "")]
        self.state_calls: list[str] = []
        self.exec_calls: list[tuple[str, tuple[str, ...], float]] = []

    def state(self, container_id: str) -> Mapping[str, Any]:
        self.state_calls.append(container_id)
        script = self.states.get(container_id, [RUNNING])
        return script.pop(0) if len(script) > 1 else script[0]

    def exec(self, container_id: str, argv: Sequence[str], timeout: float) -> ExecOutcome:
        call = (container_id, tuple(argv), timeout)
        self.exec_calls.append(call)
        if callable(self.results):
            return self.results(*call)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(checks, "_sleep", fake.sleep)
    monkeypatch.setattr(checks, "_clock", fake.monotonic)
    return fake


@pytest.fixture
def store(root: Path) -> PropertyStore:
    AppRegistry(root).create(APP)
    return PropertyStore(root)


def run(
    store: PropertyStore,
    captured: Captured,
    probe: FakeProbe,
    processes: Sequence[StartedProcess] = (WEB1,),
    healthchecks: Mapping[str, Sequence[Healthcheck]] | None = None,
) -> None:
    app_json = AppJson(healthchecks=healthchecks) if healthchecks is not None else None
    checks.run_checks(APP, processes, probe, store, app_json, captured.output)


def failure(
    store: PropertyStore,
    captured: Captured,
    probe: FakeProbe,
    processes: Sequence[StartedProcess] = (WEB1,),
    healthchecks: Mapping[str, Sequence[Healthcheck]] | None = None,
) -> ChecksFailedError:
    with pytest.raises(ChecksFailedError) as info:
        run(store, captured, probe, processes, healthchecks)
    assert "\n" not in info.value.message
    return info.value


def lines(captured: Captured) -> list[str]:
    return captured.stdout.splitlines()


# -- the default check ----------------------------------------------------------------------


def test_default_wait_is_one_wait_for_every_container(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    probe = FakeProbe()
    run(store, captured, probe, (WEB1, WEB2, WORKER1))
    assert clock.sleeps == [10]
    # Each container: its start noted, then its state after the wait.
    assert sorted(probe.state_calls) == sorted(["cid-web-1", "cid-web-2", "cid-worker-1"] * 2)
    assert lines(captured) == [
        "       Attempting pre-flight checks (web.1)",
        "       Attempting pre-flight checks (web.2)",
        "       Attempting pre-flight checks (worker.1)",
        "       Waiting for 10 seconds (web.1, web.2, worker.1)",
        "       All checks successful (web.1)",
        "       All checks successful (web.2)",
        "       All checks successful (worker.1)",
    ]


def test_default_wait_comes_from_the_property(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    store.set("checks", "--global", "default-wait", "3")
    run(store, captured, FakeProbe())
    assert clock.sleeps == [3]


def test_default_wait_of_zero_does_not_sleep_but_still_checks_the_state(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    store.set("checks", APP, "default-wait", "0")
    probe = FakeProbe({"cid-web-1": [RUNNING, {**RUNNING, "Running": False, "ExitCode": 1}]})
    err = failure(store, captured, probe)
    assert clock.sleeps == []
    assert "exit status 1" in err.message


def test_a_container_that_exited_fails_with_its_exit_status(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    exited = {"Running": False, "Restarting": False, "ExitCode": 3, "StartedAt": "t0"}
    err = failure(store, captured, FakeProbe({"cid-web-2": [RUNNING, exited]}), (WEB1, WEB2))
    assert err.message == (
        "Pre-flight checks failed (web.2): healthcheck 'default' failed after 1 attempt: "
        "container not running after 10 seconds (exit status 3)"
    )
    assert (err.process, err.check, err.attempts) == ("web.2", "default", 1)
    assert clock.sleeps == [10]


def test_a_restarting_container_fails(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    restarting = {**RUNNING, "Restarting": True, "ExitCode": 137, "OOMKilled": True}
    err = failure(store, captured, FakeProbe({"cid-web-1": [RUNNING, restarting]}))
    assert err.message.endswith(
        "container restarting after 10 seconds (exit status 137, out of memory)"
    )


def test_a_container_restarted_during_the_wait_fails(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    again = {**RUNNING, "StartedAt": "t1"}
    err = failure(store, captured, FakeProbe({"cid-web-1": [RUNNING, again]}))
    assert err.message.endswith("container restarted within 10 seconds")


def test_a_container_that_cannot_be_inspected_fails_in_one_line(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    class GoneProbe(FakeProbe):
        def state(self, container_id: str) -> Mapping[str, Any]:
            raise EngineError("Cannot inspect container cid-web-1: No such container")

    err = failure(store, captured, GoneProbe())
    assert err.message == (
        "Pre-flight checks failed (web.1): healthcheck 'default' failed after 1 attempt: "
        "the container cannot be inspected: Cannot inspect container cid-web-1: No such container"
    )


# -- healthchecks ---------------------------------------------------------------------------


def startup(**fields: Any) -> Healthcheck:
    return Healthcheck(type="startup", **fields)


def test_command_check_fails_on_attempt_one_and_passes_on_attempt_two(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    check = startup(name="db ready", command=["pg_isready"], attempts=3, wait=2, timeout=4)
    probe = FakeProbe(results=[ExecOutcome(1, "no response\n"), ExecOutcome(0, "accepting\n")])
    run(store, captured, probe, healthchecks={"web": [check]})
    assert probe.exec_calls == [("cid-web-1", ("pg_isready",), 4)] * 2
    assert clock.sleeps == [2]  # one wait between the two attempts, no default wait
    assert lines(captured) == [
        "       Attempting pre-flight checks (web.1)",
        "       Executing 1 healthchecks (web.1)",
        "       Running healthcheck name='db ready' attempts=3 command='pg_isready' delay=0 "
        "timeout=4 type='command' wait=2",
        "       Attempt 1/3 failed name='db ready': exit status 1",
        "       Healthcheck succeeded name='db ready'",
        "       All checks successful (web.1)",
    ]


def test_a_check_that_never_passes_uses_every_attempt_and_names_them(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    check = startup(name="migrated", command=["check"], attempts=3, wait=1)
    probe = FakeProbe(
        results=[ExecOutcome(2, "first\n"), ExecOutcome(2, "not yet\n  pending: 4\n")]
    )
    err = failure(store, captured, probe, healthchecks={"web": [check]})
    assert len(probe.exec_calls) == 3
    assert clock.sleeps == [1, 1]
    assert err.message == (
        "Pre-flight checks failed (web.1): healthcheck 'migrated' failed after 3 attempts: "
        "exit status 2; output: not yet pending: 4"
    )
    assert (err.process, err.check, err.attempts) == ("web.1", "migrated", 3)
    assert "       Attempt 3/3 failed name='migrated': exit status 2" in lines(captured)


def test_the_error_line_is_condensed_shortened_and_escaped(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    noisy = "\x1b[31mred\x1b[0m\r\n" + "x" * 1000
    check = startup(command=["x"], attempts=1)
    err = failure(
        store, captured, FakeProbe(results=[ExecOutcome(1, noisy)]), (WEB1,), {"web": [check]}
    )
    assert "\x1b" not in err.message and "\r" not in err.message
    assert "\\x1b[31mred" in err.message
    assert err.message.endswith("...")
    assert len(err.message) < 500


def test_unset_attempts_wait_and_timeout_come_from_the_checks_properties(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    store.set("checks", APP, "attempts", "2")
    store.set("checks", APP, "wait", "7")
    store.set("checks", "--global", "timeout", "9")
    probe = FakeProbe(results=[ExecOutcome(1, "")])
    err = failure(store, captured, probe, healthchecks={"web": [startup(command=["x"])]})
    assert err.attempts == 2
    assert clock.sleeps == [7]
    assert [timeout for _, _, timeout in probe.exec_calls] == [9, 9]


def test_the_default_settings_are_dokkus(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    probe = FakeProbe(results=[ExecOutcome(1, "")])
    err = failure(store, captured, probe, healthchecks={"web": [startup(command=["x"])]})
    assert err.attempts == 5
    assert clock.sleeps == [5, 5, 5, 5]
    assert {timeout for _, _, timeout in probe.exec_calls} == {30}


def test_a_timed_out_attempt_says_so(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    check = startup(command=["sleep", "99"], attempts=1, timeout=3)
    probe = FakeProbe(results=[ExecOutcome(-1, "", timed_out=True)])
    err = failure(store, captured, probe, healthchecks={"web": [check]})
    assert err.message.endswith("failed after 1 attempt: timed out after 3 seconds")


def test_initial_delay_counts_from_the_start_and_overlaps(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    check = startup(command=["x"], initial_delay=4)
    probe = FakeProbe()
    run(store, captured, probe, (WEB1, WEB2), {"web": [check]})
    # web.2's delay has already passed when its turn comes.
    assert clock.sleeps == [4]
    assert len(probe.exec_calls) == 2


def test_checks_run_in_order_and_stop_at_the_first_failure(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    first = startup(name="one", command=["one"], attempts=1)
    second = startup(name="two", command=["two"], attempts=1)
    third = startup(name="three", command=["three"], attempts=1)

    def result(container_id: str, argv: tuple[str, ...], timeout: float) -> ExecOutcome:
        return ExecOutcome(1 if argv == ("two",) else 0, "")

    probe = FakeProbe(results=result)
    err = failure(store, captured, probe, healthchecks={"web": [first, second, third]})
    assert err.check == "two"
    assert [argv for _, argv, _ in probe.exec_calls] == [("one",), ("two",)]


def test_a_container_that_stopped_fails_the_check_without_more_attempts(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    class StoppedProbe(FakeProbe):
        def exec(self, container_id: str, argv: Sequence[str], timeout: float) -> ExecOutcome:
            self.exec_calls.append((container_id, tuple(argv), timeout))
            raise EngineError("Cannot run a command in container cid-web-1: is not running")

    stopped = {**RUNNING, "Running": False}
    probe = StoppedProbe({"cid-web-1": [RUNNING, stopped]})
    err = failure(store, captured, probe, healthchecks={"web": [startup(command=["x"])]})
    assert len(probe.exec_calls) == 1
    assert err.attempts == 1
    assert "is not running" in err.message


def test_types_with_and_without_healthchecks_in_one_deploy(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    probe = FakeProbe()
    run(store, captured, probe, (WEB1, WORKER1), {"worker": [startup(command=["ok"])]})
    assert [c[0] for c in probe.exec_calls] == ["cid-worker-1"]
    assert clock.sleeps == [10]  # web.1 has no healthchecks: the default wait
    assert "       Waiting for 10 seconds (web.1)" in lines(captured)


def test_only_startup_checks_run_and_a_missing_type_is_reported(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    others = [
        Healthcheck(type="liveness", command=["x"]),
        Healthcheck(type="readiness", path="/ready"),
        Healthcheck(name="untyped", command=["y"]),
    ]
    probe = FakeProbe()
    run(store, captured, probe, (WEB1, WEB2), {"web": others})
    assert probe.exec_calls == []
    assert clock.sleeps == [10]  # no startup check: the default check instead
    assert captured.stderr == (
        " !     Missing type field on healthcheck name='untyped' (web): it does not run; "
        "only type 'startup' runs before the switch\n"
    )


# -- HTTP, listening, uptime ------------------------------------------------------------------


def test_http_check_runs_wget_inside_the_container(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    check = startup(name="web check", path="/health", content="ok", timeout=6)
    probe = FakeProbe(results=[ExecOutcome(0, "all ok\n")])
    run(store, captured, probe, healthchecks={"web": [check]})
    assert probe.exec_calls == [
        ("cid-web-1", ("wget", "-q", "-O", "-", "http://127.0.0.1:5000/health"), 6)
    ]
    assert "       Healthcheck succeeded name='web check'" in lines(captured)


def test_http_check_uses_the_check_port_else_the_process_port_else_5000(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    web = StartedProcess("web", 1, "shop.web.1", "a", 8080)
    api = StartedProcess("api", 1, "shop.api.1", "b")
    probe = FakeProbe()
    run(
        store,
        captured,
        probe,
        (web, api),
        {"web": [startup(path="/")], "api": [startup(path="x", port=9000), startup(path="/")]},
    )
    urls = [argv[-1] for _, argv, _ in probe.exec_calls]
    assert urls == ["http://127.0.0.1:8080/", "http://127.0.0.1:9000/x", "http://127.0.0.1:5000/"]


def test_http_check_fails_without_the_expected_content(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    check = startup(name="home", path="/", content="Welcome", attempts=2, wait=1)
    probe = FakeProbe(results=[ExecOutcome(0, "<h1>Maintenance</h1>")])
    err = failure(store, captured, probe, healthchecks={"web": [check]})
    assert err.message == (
        "Pre-flight checks failed (web.1): healthcheck 'home' failed after 2 attempts: "
        "unable to find expected content in response body: Welcome; "
        "output: <h1>Maintenance</h1>"
    )


def test_http_check_falls_back_to_curl_and_keeps_using_it(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    missing = ExecOutcome(126, 'exec: "wget": executable file not found in $PATH: unknown')
    probe = FakeProbe(results=[missing, ExecOutcome(22, "curl: (22) 503"), ExecOutcome(0, "up")])
    check = startup(path="/up", scheme="https", timeout=5, attempts=3, wait=1)
    run(store, captured, probe, healthchecks={"web": [check]})
    assert [argv for _, argv, _ in probe.exec_calls] == [
        ("wget", "-q", "-O", "-", "--no-check-certificate", "https://127.0.0.1:5000/up"),
        ("curl", "-fsSL", "--max-time", "5", "-k", "https://127.0.0.1:5000/up"),
        ("curl", "-fsSL", "--max-time", "5", "-k", "https://127.0.0.1:5000/up"),
    ]
    assert [timeout for _, _, timeout in probe.exec_calls] == [5, 6, 6]
    assert (
        "       Attempt 1/3 failed name='path /up': curl exit status 22 for "
        "https://127.0.0.1:5000/up" in lines(captured)
    )


def test_http_check_without_wget_or_curl_fails_at_once(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    probe = FakeProbe(results=[ExecOutcome(127, "sh: not found")])
    err = failure(store, captured, probe, healthchecks={"web": [startup(path="/", attempts=5)]})
    assert len(probe.exec_calls) == 2  # wget, then curl, once each
    assert err.attempts == 1
    assert err.message.endswith(
        "failed after 1 attempt: the container has neither wget nor curl to request "
        "http://127.0.0.1:5000/"
    )


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: {address}:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0
"""


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("00000000", None),
        ("0100007F", "listening on port 5000 only on 127.0.0.1, not on every interface (0.0.0.0)"),
    ],
)
def test_listening_check_reads_the_socket_table_in_the_container(
    store: PropertyStore, captured: Captured, clock: FakeClock, address: str, reason: str | None
) -> None:
    table = PROC_NET_TCP.format(address=address)
    probe = FakeProbe(results=[ExecOutcome(1, table + "cat: can't open '/proc/net/tcp6'\n")])
    check = startup(name="port", listening=True, attempts=1)
    if reason is None:
        run(store, captured, probe, healthchecks={"web": [check]})
    else:
        assert failure(store, captured, probe, healthchecks={"web": [check]}).message.endswith(
            reason
        )
    assert probe.exec_calls[0][1] == ("cat", "/proc/net/tcp", "/proc/net/tcp6")


def test_listening_check_on_a_port_nothing_listens_on(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    probe = FakeProbe(results=[ExecOutcome(0, PROC_NET_TCP.format(address="00000000"))])
    check = startup(listening=True, port=6000, attempts=1)
    err = failure(store, captured, probe, healthchecks={"web": [check]})
    assert err.message.endswith("nothing listens on port 6000")
    assert err.check == "listening on port 6000"


def test_listening_check_accepts_every_ipv6_interface() -> None:
    table = "   0: " + "0" * 32 + ":1388 " + "0" * 32 + ":0000 0A 0\n"
    assert checks._listening_addresses(table, 5000) == {"::"}


def test_uptime_check_waits_until_the_container_is_that_old(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    probe = FakeProbe()
    run(store, captured, probe, (WEB1, WEB2), {"web": [startup(name="up", uptime=15)]})
    assert clock.sleeps == [15]  # web.2 is as old by then
    assert probe.exec_calls == []
    assert "       Running healthcheck name='up' type='uptime' uptime=15" in lines(captured)


def test_uptime_check_fails_for_an_exited_container(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    exited = {**RUNNING, "Running": False, "ExitCode": 2}
    probe = FakeProbe({"cid-web-1": [RUNNING, exited]})
    err = failure(store, captured, probe, healthchecks={"web": [startup(uptime=3)]})
    assert err.message == (
        "Pre-flight checks failed (web.1): healthcheck 'uptime 3s' failed after 1 attempt: "
        "container not running after 3 seconds (exit status 2)"
    )


# -- skip and disable -------------------------------------------------------------------------


def test_skipped_and_disabled_types_are_not_checked(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    store.set("checks", APP, "disabled", "web")
    store.set("checks", APP, "skipped", "worker")
    probe = FakeProbe()
    run(store, captured, probe, (WEB1, WEB2, WORKER1), {"web": [startup(command=["x"])]})
    assert probe.state_calls == [] and probe.exec_calls == [] and clock.sleeps == []
    assert lines(captured) == [
        "       Zero downtime is disabled for app (shop.web). Skipping checks",
        "       Zero downtime checks have been skipped (worker.1)",
    ]


@pytest.mark.parametrize("prop", ["disabled", "skipped"])
def test_all_types_skips_every_check(
    store: PropertyStore, captured: Captured, clock: FakeClock, prop: str
) -> None:
    store.set("checks", APP, prop, "_all_")
    probe = FakeProbe()
    run(store, captured, probe, (WEB1, WORKER1))
    assert probe.state_calls == [] and clock.sleeps == []


def test_the_hook_reads_the_deploy_context(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    context = DeployContext(
        app=APP,
        image="sha256:x",
        properties=store,
        app_json=AppJson(healthchecks={"web": (startup(command=["x"]),)}),
        output=captured.output,
    )
    probe = FakeProbe()
    checks.check_processes(app=APP, context=context, processes=[WEB1], probe=probe)
    assert probe.exec_calls == [("cid-web-1", ("x",), 30)]


def test_the_builtin_plugin_answers_check_processes(
    store: PropertyStore, captured: Captured, clock: FakeClock
) -> None:
    plugins = Hooks(manager.get_plugin_manager(entrypoints=False))
    context = DeployContext(app=APP, image="x", properties=store, output=captured.output)
    exited = {**RUNNING, "Running": False, "ExitCode": 1}
    with pytest.raises(ChecksFailedError):
        plugins.check_processes(
            app=APP,
            context=context,
            processes=[WEB1],
            probe=FakeProbe({"cid-web-1": [RUNNING, exited]}),
        )


# -- the lists ----------------------------------------------------------------------------------


def values(store: PropertyStore) -> tuple[str, str]:
    return store.get("checks", APP, "disabled"), store.get("checks", APP, "skipped")


def test_disable_and_skip_every_type_replace_each_other(store: PropertyStore) -> None:
    assert checks.change_lists(store, APP, "disable") == "Disabling zero downtime for app (shop)"
    assert values(store) == ("_all_", "")
    assert checks.change_lists(store, APP, "skip", ["_all_"]) == (
        "Skipping zero downtime for app (shop)"
    )
    assert values(store) == ("", "_all_")
    assert checks.change_lists(store, APP, "enable") == "Enabling zero downtime for app (shop)"
    assert values(store) == ("", "")
    assert not (store.root / "config" / "checks" / APP / "skipped").exists()


def test_types_move_between_the_lists(store: PropertyStore) -> None:
    assert checks.change_lists(store, APP, "disable", ["web", "worker"]) == (
        "Disabling zero downtime for app's (shop) proctypes (web,worker)"
    )
    assert values(store) == ("web,worker", "")
    checks.change_lists(store, APP, "skip", ["web"])
    assert values(store) == ("worker", "web")
    checks.change_lists(store, APP, "disable", ["worker"])  # already there: kept once
    assert values(store) == ("worker", "web")
    assert checks.change_lists(store, APP, "enable", ["web", "worker"]) == (
        "Enabling zero downtime for app's (shop) proctypes (web,worker)"
    )
    assert values(store) == ("", "")


def test_naming_types_narrows_all_as_dokku_does(store: PropertyStore) -> None:
    checks.change_lists(store, APP, "disable")
    checks.change_lists(store, APP, "disable", ["web"])
    assert values(store) == ("web", "")
    checks.change_lists(store, APP, "disable")
    checks.change_lists(store, APP, "enable", ["web"])  # _all_ has no web to take out
    assert checks.is_disabled(store, APP, "web")


def test_is_disabled_and_is_skipped(store: PropertyStore) -> None:
    checks.change_lists(store, APP, "skip", ["worker"])
    assert checks.is_skipped(store, APP, "worker")
    assert not checks.is_skipped(store, APP, "web")
    assert not checks.is_disabled(store, APP, "worker")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("web", ("web",)), ("web,,worker,web", ("web", "worker")), ("", ()), ("_all_", ("_all_",))],
)
def test_process_type_lists_parse(value: str, expected: tuple[str, ...]) -> None:
    assert checks.parse_process_types(value) == expected


@pytest.mark.parametrize("value", ["web worker", "web;rm", "a" * 64, "web,\n"])
def test_bad_process_type_lists_are_refused_in_one_line(value: str) -> None:
    with pytest.raises(UsageError) as info:
        checks.parse_process_types(value)
    assert "\n" not in info.value.message
    assert info.value.message.startswith("Invalid process type list ")


# -- the commands -----------------------------------------------------------------------------


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, root: Path) -> Iterator[Path]:
    """The built-in plugins only, the test's state root."""
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(()))
    monkeypatch.delenv(manager.DISABLE_ENV, raising=False)
    monkeypatch.setenv("DOKKU_TASKS_ROOT", str(root))
    yield root


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_checks_disable_command_writes_the_list(hermetic: Path) -> None:
    assert invoke("apps:create", APP).exit_code == 0
    result = invoke("checks:disable", APP, "web,worker")
    assert (result.exit_code, result.stderr) == (0, "")
    assert (
        result.stdout == "-----> Disabling zero downtime for app's (shop) proctypes (web,worker)\n"
    )
    assert (hermetic / "config" / "checks" / APP / "disabled").read_text() == "web,worker"
    result = invoke("checks:skip", APP)
    assert result.stdout == "-----> Skipping zero downtime for app (shop)\n"
    assert invoke("checks:enable", APP).stdout == "-----> Enabling zero downtime for app (shop)\n"
    assert not (hermetic / "config" / "checks" / APP / "skipped").exists()


def test_checks_report_shows_the_lists(hermetic: Path) -> None:
    invoke("apps:create", APP)
    invoke("checks:skip", APP, "worker")
    result = invoke("checks:report", APP, "--checks-skipped")
    assert (result.exit_code, result.stdout) == (0, "worker\n")


@pytest.mark.parametrize(
    "command", ["checks:disable", "checks:enable", "checks:skip", "checks:run"]
)
def test_checks_commands_of_a_missing_app_exit_20(hermetic: Path, command: str) -> None:
    result = invoke(command, "nope")
    assert result.exit_code == 20
    assert result.stderr == " !     App nope does not exist\n"


def test_checks_disable_refuses_a_bad_list_in_one_line(hermetic: Path) -> None:
    invoke("apps:create", APP)
    result = invoke("checks:disable", APP, "web worker")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(" !     Invalid process type list 'web worker'")
    assert not (hermetic / "config" / "checks" / APP / "disabled").exists()


def test_the_lists_cannot_be_set_globally(hermetic: Path) -> None:
    result = invoke("checks:set", "--global", "disabled", "web")
    assert (result.exit_code, result.stderr) == (
        1,
        " !     Property cannot be specified globally\n",
    )


def test_checks_set_validates_the_lists_too(hermetic: Path) -> None:
    invoke("apps:create", APP)
    assert invoke("checks:set", APP, "skipped", "web,,worker").exit_code == 0
    assert (hermetic / "config" / "checks" / APP / "skipped").read_text() == "web,worker"
    assert invoke("checks:set", APP, "skipped", "a b").exit_code == 1


# -- choosing the processes of checks:run ------------------------------------------------------


def test_select_processes_by_type_and_index() -> None:
    running = [WEB1, WEB2, WORKER1]
    assert checks.select_processes(APP, running, []) == running
    assert checks.select_processes(APP, running, ["worker", "web.2"]) == [WORKER1, WEB2]
    assert checks.select_processes(APP, running, ["web", "web.1"]) == [WEB1, WEB2]


@pytest.mark.parametrize(
    ("wanted", "message"),
    [
        (["cron"], "Invalid process type specified (shop.cron)"),
        (["web.3"], "Invalid container index specified (shop.web.3)"),
    ],
)
def test_select_processes_refuses_what_is_not_there(wanted: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        checks.select_processes(APP, [WEB1, WEB2], wanted)
    assert info.value.message == message


def test_select_processes_of_an_app_with_none_running() -> None:
    with pytest.raises(UsageError, match="No process containers of shop are running"):
        checks.select_processes(APP, [], [])
