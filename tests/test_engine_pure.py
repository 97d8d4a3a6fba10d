"""The engine module's pure helpers: line splitting and output that cannot stop a task."""

from __future__ import annotations

import io

from dokku_tasks.engine import MAX_LINE_BYTES, LineSplitter, _pump
from dokku_tasks.output import Output


def test_lines_are_split_as_they_complete() -> None:
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    splitter.feed(b"one\ntw")
    assert lines == ["one"]
    splitter.feed(b"o\r\nthree")
    assert lines == ["one", "two"]
    splitter.close()
    assert lines == ["one", "two", "three"]


def test_a_long_line_arrives_in_bounded_pieces() -> None:
    pieces: list[str] = []
    splitter = LineSplitter(pieces.append)
    splitter.feed(b"x" * (MAX_LINE_BYTES * 2 + 5))
    splitter.close()
    assert [len(p) for p in pieces] == [MAX_LINE_BYTES, MAX_LINE_BYTES, 5]


def test_a_failing_sink_does_not_stop_the_reading() -> None:
    chunks = [(b"a\n", None), (None, b"e\n"), (b"b\n", None), (b"c\n", None)]
    consumed: list[object] = []

    def stream():  # type: ignore[no-untyped-def]
        for chunk in chunks:
            consumed.append(chunk)
            yield chunk

    def broken(line: str) -> None:
        raise BrokenPipeError

    errors: list[str] = []
    _pump(stream(), broken, errors.append)
    assert consumed == chunks  # everything was read although stdout's sink broke at once
    assert errors == ["e"]


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_output_to_a_closed_pipe_is_dropped_not_raised() -> None:
    err = io.StringIO()
    output = Output(out=_ClosedPipe(), err=err)
    output.step("one")
    output.info("two")
    output.error("still shown")
    assert err.getvalue() == " !     still shown\n"


class _AsciiOnly(io.StringIO):
    encoding = "ascii"

    def write(self, text: str) -> int:
        text.encode("ascii")
        return super().write(text)


def test_output_that_cannot_encode_a_character_replaces_it() -> None:
    out = _AsciiOnly()
    Output(out=out, err=io.StringIO()).info("caf\u00e9")
    assert out.getvalue() == "       caf?\n"
