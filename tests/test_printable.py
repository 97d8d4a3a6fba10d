"""Control characters in an error line are shown, never sent raw (issue 9, item C).

:func:`dokku_tasks.text.printable` is the one helper; the CLI's error line (``_fail``) uses
it, so a NUL from an app.json script or an escape sequence in a path cannot hide, break or
recolour the line.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dokku_tasks.cli import _fail, cli
from dokku_tasks.text import printable
from tests.conftest import BASE_IMAGE, write_app


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("echo \x00", "echo \\x00"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("a\rb", "a\\rb"),
        ("a\nb", "a\\nb"),
        ("tab\there", "tab\\there"),
        ("\x7f", "\\x7f"),
        ("\x9b2J", "\\x9b2J"),  # C1 CSI
        ("line\u2028sep", "line\\u2028sep"),
        ("\u202eevil", "\\u202eevil"),  # right-to-left override
        ("back\\slash", "back\\slash"),
        ("naïve ✓ 日本 \u00a0", "naïve ✓ 日本 \u00a0"),
        ("emoji 👍🏽 and zwj 👩\u200d💻", "emoji 👍🏽 and zwj 👩\u200d💻"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_keep() -> None:
    assert printable("a\tb\x00", keep="\t") == "a\tb\\x00"


def test_every_control_character_is_escaped() -> None:
    controls = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
    for char in controls:
        shown = printable(char)
        expected = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(char, f"\\x{ord(char):02x}")
        assert shown == expected, repr(char)
        assert shown.isprintable()


def test_printable_is_one_line() -> None:
    assert len(printable("a\nb\r\nc\x0bd\x0ce\x1cf\x85g\u2028h").splitlines()) == 1


def test_error_line_shows_control_characters(tmp_path: Path) -> None:
    missing = tmp_path / "src\x1b[2J\x07x"
    result = CliRunner().invoke(
        cli, ["--root", str(tmp_path / "state"), "deploy", "web", "--source", str(missing)]
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f" !     Source directory {tmp_path}/src\\x1b[2J\\x07x does not exist\n"
    )


def test_fail_shows_a_nul(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(click.exceptions.Exit) as info:
        _fail("Execution of predeploy task failed: echo \x00 (exit status 1)", 1)
    assert info.value.exit_code == 1
    assert capsys.readouterr().err == (
        " !     Execution of predeploy task failed: echo \\x00 (exit status 1)\n"
    )


def test_fail_keeps_joining_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(click.exceptions.Exit):
        _fail("first\n  second\r\nthird\x1b", 1)
    assert capsys.readouterr().err == " !     first second third\\x1b\n"


@pytest.mark.engine
def test_nul_in_an_app_json_script(engine_app: str, tmp_path: Path) -> None:
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n',
            "app.json": '{"scripts": {"dokku": {"predeploy": "echo \\u0000 \\u001b[2J"}}}',
        },
    )
    result = CliRunner().invoke(
        cli, ["--root", str(tmp_path / "state"), "deploy", engine_app, "--source", str(source)]
    )
    # A NUL is refused when app.json is read: nothing is built, and the line stays printable.
    assert result.exit_code == 1
    assert "\x00" not in result.stderr and "\x1b" not in result.stderr
    assert result.stderr.splitlines() == [
        " !     Invalid app.json at line 1, column 37: scripts.dokku.predeploy contains a NUL "
        "character"
    ]
