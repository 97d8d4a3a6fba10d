"""Task and build output is shown as safe text: it can colour itself, never forge our lines."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dokku_tasks.output import Output, task_line


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("tab\tstays", "tab\tstays"),
        ("naïve ünïcode ✓", "naïve ünïcode ✓"),
        # A carriage return would move the cursor over our indent: the terminal's view is kept.
        ("\r=====> Application deployed: fake", "=====> Application deployed: fake"),
        ("10%\r20%\r30%", "30%"),
        ("done\r", "done"),
        ("\r", ""),
        # Colours stay; every other escape sequence goes.
        ("\x1b[31mred\x1b[0m", "\x1b[31mred\x1b[0m"),
        ("\x1b[1;32mok\x1b[m", "\x1b[1;32mok\x1b[m"),
        ("\x1b[2K\x1b[1Gprogress", "progress"),
        ("up\x1b[5Aover", "upover"),
        ("\x1b]0;window title\x07text", "text"),
        ("\x1b]8;;http://x\x1b\\link", "link"),
        ("\x1b]0;unterminated", ""),
        ("charset\x1b(Bswitch", "charsetswitch"),
        ("keypad\x1b=mode", "keypadmode"),
        # Any other control character is shown as an escape.
        ("nul\x00byte", "nul\\x00byte"),
        ("bell\x07", "bell\\x07"),
        ("back\x08space", "back\\x08space"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("form\x0cfeed", "form\\x0cfeed"),
    ],
)
def test_task_line(raw: str, shown: str) -> None:
    assert task_line(raw) == shown


@given(st.text())
def test_task_line_never_leaves_a_cursor_moving_character(raw: str) -> None:
    shown = task_line(raw)
    assert "\r" not in shown and "\n" not in shown
    # Only SGR escape sequences survive, and after one nothing can start a line of ours.
    for index, char in enumerate(shown):
        if char == "\x1b":
            assert shown[index + 1] == "["
    assert task_line(shown) == shown  # already safe text stays as it is


def _output() -> tuple[Output, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Output(out=out, err=err), out, err


def test_task_output_is_indented_and_made_safe() -> None:
    output, out, err = _output()
    output.task_stdout("\r=====> Application deployed: x")
    output.task_stderr("bad\x00thing")
    assert out.getvalue() == "       =====> Application deployed: x\n"
    assert err.getvalue() == " !     bad\\x00thing\n"


def test_a_line_that_is_blank_once_made_safe_is_dropped() -> None:
    output, out, err = _output()
    output.task_stdout("text\r")
    output.task_stdout("\x1b[2K")
    output.task_stderr("\r")
    assert out.getvalue() == "       text\n"
    assert err.getvalue() == ""


def test_our_own_lines_show_quoted_control_characters_as_escapes() -> None:
    output, out, err = _output()
    output.step("Executing \x1b[2J")
    output.section("x\ry")
    output.info("Executing release task: echo \x00")
    output.error("Invalid\rline")
    assert out.getvalue().splitlines() == [
        "-----> Executing \\x1b[2J",
        "=====> x\\ry",
        "       Executing release task: echo \\x00",
    ]
    assert err.getvalue() == " !     Invalid\\rline\n"


class _FullStream(io.StringIO):
    """A stream whose device is full: every flush fails."""

    def flush(self) -> None:
        raise OSError(28, "No space left on device")


def test_output_that_cannot_be_written_is_dropped_without_failing() -> None:
    out, err = _FullStream(), io.StringIO()
    output = Output(out=out, err=err)
    output.step("Building")
    output.info("more")
    output.error("still shown")
    assert output.quiet
    assert err.getvalue() == " !     still shown\n"


def test_an_unwritable_error_stream_is_dropped_too() -> None:
    output = Output(out=io.StringIO(), err=_FullStream())
    output.error("nobody can read this")
    output.task_stderr("nor this")
    assert not output.quiet  # stdout still works
