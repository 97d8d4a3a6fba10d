"""Clean-up after a failure: bounded once a signal came, and reported after the cause."""

from __future__ import annotations

import threading
import time

import pytest

from dokku_tasks.engine import Engine
from dokku_tasks.errors import (
    EngineError,
    InterruptedDeployError,
    TaskFailedError,
    add_cleanup_note,
    cleanup_line,
)
from dokku_tasks.specs import Interruption


class _Api:
    """Just enough of EngineApi for the engine's clean-up bookkeeping."""

    def __init__(self) -> None:
        self.timeout = 600
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _engine(interruption: Interruption | None = None) -> tuple[Engine, _Api]:
    api = _Api()
    return Engine(api, "test", interruption), api  # type: ignore[arg-type]


def test_cleanup_line_names_the_first_failure_and_counts_the_rest() -> None:
    error = TaskFailedError("release", "migrate", 3)
    assert cleanup_line(error) is None
    add_cleanup_note(error, "Cannot remove container abc: Connection refused")
    assert cleanup_line(error) == "Clean-up: Cannot remove container abc: Connection refused"
    add_cleanup_note(error, "Cannot rename container def")
    add_cleanup_note(error, "  ")
    assert cleanup_line(error) == (
        "Clean-up: Cannot remove container abc: Connection refused (and 1 more clean-up failure(s))"
    )
    assert error.message.startswith("Execution of release task failed")  # the cause is unchanged


def test_an_interrupted_deploy_claims_the_clean_up_only_when_it_finished() -> None:
    assert InterruptedDeployError(2, "SIGINT").message == (
        "Deploy interrupted by SIGINT; task containers removed"
    )
    unfinished = InterruptedDeployError(15, "SIGTERM", cleaned=False)
    assert unfinished.message == "Deploy interrupted by SIGTERM"
    assert unfinished.exit_code == 143


def test_interruption_records_the_first_signal_and_tells_listeners() -> None:
    calls: list[str] = []
    interruption = Interruption(budget=5)
    interruption.listen(lambda: calls.append("early"))
    assert interruption.remaining() is None
    interruption.signal(2)
    interruption.signal(15)
    assert interruption.signum == 2 and calls == ["early"]
    remaining = interruption.remaining()
    assert remaining is not None and 4 < remaining <= 5
    interruption.listen(lambda: calls.append("late"))  # told at once: the signal came
    assert calls == ["early", "late"]


def test_a_signal_shortens_the_engine_requests() -> None:
    interruption = Interruption()
    _, api = _engine(interruption)
    assert api.timeout == 600
    interruption.signal(2)
    assert api.timeout == 2


def test_close_waits_for_queued_clean_up_and_reports_its_failure() -> None:
    engine, api = _engine()
    done: list[str] = []

    def slow() -> None:
        time.sleep(0.3)
        done.append("slow")

    def broken() -> None:
        raise EngineError("Cannot remove container abc: gone wrong")

    engine.later(slow)
    engine.later(broken)
    engine.later(lambda: done.append("after"))
    with pytest.raises(EngineError, match="Cannot remove container abc: gone wrong"):
        engine.close()
    assert done == ["slow", "after"]  # steps run in order, a failure does not stop the rest
    assert api.closed


def test_a_step_that_fails_with_a_foreign_error_is_one_line() -> None:
    engine, _ = _engine()

    def broken() -> None:
        raise ValueError("bad\nsecond line")

    engine.later(broken)
    with pytest.raises(EngineError) as failure:
        engine.close()
    assert failure.value.message == "Background clean-up failed: bad"


def test_after_a_signal_close_gives_up_on_a_stuck_step_within_the_budget() -> None:
    interruption = Interruption(budget=0.5)
    engine, api = _engine(interruption)
    release = threading.Event()
    engine.later(lambda: release.wait(30))  # an engine that stopped answering
    engine.later(lambda: None)
    interruption.signal(2)
    began = time.monotonic()
    with pytest.raises(EngineError) as failure:
        engine.close()
    assert time.monotonic() - began < 2
    assert failure.value.message == (
        "The Docker engine did not finish 2 clean-up step(s) within 0.5 s; the next deploy "
        "removes what they left"
    )
    assert api.closed
    release.set()


def test_a_signal_during_an_unbounded_wait_bounds_it() -> None:
    interruption = Interruption(budget=0.3)
    engine, _ = _engine(interruption)
    release = threading.Event()
    engine.later(lambda: release.wait(30))
    # The handler of a deploy that already succeeded does not raise: the wait notices alone.
    timer = threading.Timer(0.3, interruption.signal, args=(2,))
    timer.start()
    began = time.monotonic()
    with pytest.raises(EngineError, match="did not finish 1 clean-up step"):
        engine.close()
    assert time.monotonic() - began < 2
    release.set()
    timer.join()


def test_the_janitor_thread_never_holds_the_process() -> None:
    engine, _ = _engine()
    release = threading.Event()
    engine.later(lambda: release.wait(30))
    engine.later(lambda: None, lane="images")
    janitors = [t for t in threading.enumerate() if t.name.startswith("engine-janitor-")]
    assert len(janitors) >= 2 and all(t.daemon for t in janitors)
    release.set()
    engine.close()
