"""Deploy events: their JSON form, reading it back, the JSON-lines sink and Output's events."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dokku_tasks import events
from dokku_tasks.output import Output


def test_json_form_is_the_fields_and_the_event_name() -> None:
    event = events.TaskStarted(
        phase="release",
        plugin="procfile",
        source="Procfile",
        command="./migrate",
        image="sha256:1",
        argv=("/bin/sh", "-c", "x"),
        rule="shell: no ENTRYPOINT",
        container_id="c1",
    )
    assert events.to_json(event) == {
        "event": "task_started",
        "phase": "release",
        "plugin": "procfile",
        "source": "Procfile",
        "command": "./migrate",
        "image": "sha256:1",
        "argv": ("/bin/sh", "-c", "x"),
        "rule": "shell: no ENTRYPOINT",
        "container_id": "c1",
        "commit": False,
    }
    assert events.from_json(json.loads(json.dumps(events.to_json(event)))) == event


def test_every_event_has_its_own_name() -> None:
    names = [cls.name for cls in events.EVENT_TYPES.values()]
    assert len(names) == len(set(names)) == 11
    assert events.EVENT_TYPES["deploy_finished"] is events.DeployFinished


def test_a_reader_ignores_fields_and_events_it_does_not_know() -> None:
    assert events.from_json({"event": "line", "style": "step", "text": "x", "colour": "red"}) == (
        events.Line("step", "x")
    )
    assert events.from_json({"event": "from_the_future", "x": 1}) is None
    assert events.from_json({}) is None


def test_a_known_event_with_missing_fields_is_an_error() -> None:
    with pytest.raises(ValueError, match="bad line event"):
        events.from_json({"event": "line", "style": "step"})


@given(
    st.sampled_from(["step", "section", "info", "error", "build", "raw"]),
    st.text(),
)
def test_lines_round_trip_through_json(style: str, text: str) -> None:
    event = events.Line(style, text)
    assert events.from_json(json.loads(json.dumps(events.to_json(event)))) == event


def test_json_lines_writes_the_version_first_and_one_object_per_line() -> None:
    stream = io.StringIO()
    sink = events.JsonLines(stream, "9.9")
    sink(events.Line("step", "a\nb"))
    sink(events.PhaseStarted("release"))
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["version", "line", "phase_started"]
    assert json.loads(lines[0]) == {
        "event": "version",
        "schema": events.SCHEMA_VERSION,
        "tool": "dokku-tasks",
        "tool_version": "9.9",
    }
    assert json.loads(lines[1])["text"] == "a\nb"


def test_every_printed_line_is_an_event_in_order() -> None:
    seen: list[events.Event] = []
    out, err = io.StringIO(), io.StringIO()
    output = Output(out=out, err=err, sinks=[seen.append])
    output.step("Deploying")
    output.info("detail")
    output.section("Done")
    output.error("bad")
    output.task_stdout("built")
    output.task_output("release", "stdout", "hello")
    output.task_output("release", "stderr", "oops")
    output.task_output("release", "stdout", "   ")
    output.raw("plain")
    assert seen == [
        events.Line("step", "Deploying"),
        events.Line("info", "detail"),
        events.Line("section", "Done"),
        events.Line("error", "bad"),
        events.Line("build", "built"),
        events.TaskOutput("release", "stdout", "hello"),
        events.TaskOutput("release", "stderr", "oops"),
        events.Line("raw", "plain"),
    ]
    assert out.getvalue() == (
        "-----> Deploying\n       detail\n=====> Done\n       built\n       hello\nplain\n"
    )
    assert err.getvalue() == " !     bad\n !     oops\n"


def test_without_text_only_the_sinks_get_anything() -> None:
    seen: list[events.Event] = []
    out, err = io.StringIO(), io.StringIO()
    output = Output(out=out, err=err, text=False, sinks=[seen.append])
    output.step("x")
    output.error("y")
    assert (out.getvalue(), err.getvalue()) == ("", "")
    assert len(seen) == 2


def test_a_sink_that_raises_is_dropped_and_the_others_go_on() -> None:
    seen: list[events.Event] = []

    def broken(event: events.Event) -> None:
        raise RuntimeError("sink down")

    output = Output(out=io.StringIO(), err=io.StringIO(), sinks=[broken, seen.append])
    output.step("a")
    output.step("b")
    assert output.sinks == [seen.append]
    assert seen == [events.Line("step", "a"), events.Line("step", "b")]


def test_with_sink_leaves_the_original_alone() -> None:
    first: list[events.Event] = []
    second: list[events.Event] = []
    output = Output(out=io.StringIO(), err=io.StringIO(), sinks=[first.append])
    more = output.with_sink(second.append)
    more.info("x")
    output.info("y")
    assert first == [events.Line("info", "x"), events.Line("info", "y")]
    assert second == [events.Line("info", "x")]
    assert more.out is output.out
