"""The pure parsers behind ``deploy``'s options: -e, --env-file, -v, --task-timeout."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dokku_tasks import options
from dokku_tasks.errors import DokkuTasksError, ParseError, UsageError
from dokku_tasks.models import Mount

KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
VALUES = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40)

# -- -e KEY=VALUE ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KEY=value", ("KEY", "value")),
        ("KEY=", ("KEY", "")),
        ("_K1=a=b=c", ("_K1", "a=b=c")),
        ("k=  spaced  ", ("k", "  spaced  ")),
        ("URL=postgres://u:p@h/db?x=1", ("URL", "postgres://u:p@h/db?x=1")),
    ],
)
def test_env_assignment(text: str, expected: tuple[str, str]) -> None:
    assert options.parse_env_assignment(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("KEY", "Invalid -e value 'KEY': expected KEY=VALUE"),
        ("", "Invalid -e value '': expected KEY=VALUE"),
        ("=value", "Invalid -e value '=value': the key must match [A-Za-z_][A-Za-z0-9_]*"),
        ("1KEY=x", "Invalid -e value '1KEY=x': the key must match [A-Za-z_][A-Za-z0-9_]*"),
        ("MY-KEY=x", "Invalid -e value 'MY-KEY=x': the key must match [A-Za-z_][A-Za-z0-9_]*"),
        ("K EY=x", "Invalid -e value 'K EY=x': the key must match [A-Za-z_][A-Za-z0-9_]*"),
        ("K=a\x00b", "Invalid -e value for K: the value contains a NUL byte"),
    ],
)
def test_env_assignment_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        options.parse_env_assignment(text)
    assert info.value.message == message
    assert info.value.exit_code == 1


def test_env_assignments_later_wins() -> None:
    assert options.parse_env_assignments(["A=1", "B=2", "A=3"]) == {"A": "3", "B": "2"}


def test_long_values_are_shortened_in_errors() -> None:
    with pytest.raises(UsageError) as info:
        options.parse_env_assignment("X" * 500)
    assert len(info.value.message) < 140
    assert "..." in info.value.message


def test_merge_env_cli_overrides_file() -> None:
    assert options.merge_env({"A": "file", "B": "file"}, {"A": "cli"}) == {"A": "cli", "B": "file"}


@given(KEYS, VALUES)
def test_env_assignment_round_trip(key: str, value: str) -> None:
    assert options.parse_env_assignment(f"{key}={value}") == (key, value)


@given(st.text(max_size=60))
def test_env_assignment_only_our_errors(text: str) -> None:
    try:
        key, value = options.parse_env_assignment(text)
    except UsageError as exc:
        assert "\n" not in exc.message.replace("\\n", "")
    else:
        assert options.is_env_key(key)
        assert text == f"{key}={value}"


# -- --env-file -----------------------------------------------------------------------------

ENV_FILE = """\
# a comment
   # an indented comment

PLAIN=value
TRIMMED =   spaced value   \t
export EXPORTED=yes
export   SPACED_EXPORT=ok
EMPTY=
SINGLE='lit\\eral $HOME "x" # not a comment'
DOUBLE="a \\"quoted\\" \\\\ back\\nslash \\t kept"
AFTER_QUOTE="v"   # trailing comment
HASH=abc # part of the value
EQUALS=a=b=c
PLAIN=second wins
"""


def test_env_file() -> None:
    assert options.parse_env_file(ENV_FILE, "app.env") == {
        "PLAIN": "second wins",
        "TRIMMED": "spaced value",
        "EXPORTED": "yes",
        "SPACED_EXPORT": "ok",
        "EMPTY": "",
        "SINGLE": 'lit\\eral $HOME "x" # not a comment',
        "DOUBLE": 'a "quoted" \\ back\nslash \\t kept',
        "AFTER_QUOTE": "v",
        "HASH": "abc # part of the value",
        "EQUALS": "a=b=c",
    }


def test_env_file_bytes_crlf_and_bom() -> None:
    data = "\ufeffA=1\r\nB='two'\r\n".encode()
    assert options.parse_env_file(data, "x.env") == {"A": "1", "B": "two"}


def test_env_file_empty() -> None:
    assert options.parse_env_file("", "x.env") == {}
    assert options.parse_env_file("\n\n# only comments\n", "x.env") == {}


def test_env_file_export_is_a_key_without_space() -> None:
    assert options.parse_env_file("export=1\nexporter=2", "f") == {"export": "1", "exporter": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\nNOEQUALS\n", "Invalid my.env at line 2: expected KEY=VALUE, got 'NOEQUALS'"),
        (
            "\n\n1A=x",
            "Invalid my.env at line 3: invalid key '1A': it must match [A-Za-z_][A-Za-z0-9_]*",
        ),
        ("=x", "Invalid my.env at line 1: invalid key '': it must match [A-Za-z_][A-Za-z0-9_]*"),
        ("export", "Invalid my.env at line 1: expected KEY=VALUE, got 'export'"),
        ("A='open", "Invalid my.env at line 1: unterminated single quote in the value of A"),
        ('A="open\\"', "Invalid my.env at line 1: unterminated double quote in the value of A"),
        (
            "A='x' y",
            "Invalid my.env at line 1: unexpected text after the quoted value of A: 'y'",
        ),
        ('A="x"y', "Invalid my.env at line 1: unexpected text after the quoted value of A: 'y'"),
        ("A=a\x00b", "Invalid my.env at line 1: the value of A contains a NUL byte"),
    ],
)
def test_env_file_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        options.parse_env_file(text, "my.env")
    assert info.value.message == message
    assert info.value.exit_code == 1


def test_env_file_invalid_utf8_names_the_line() -> None:
    with pytest.raises(ParseError) as info:
        options.parse_env_file(b"A=1\nB=\xff\n", "bad.env")
    assert info.value.message == "Invalid bad.env at line 2: not valid UTF-8"


@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_env_file_round_trip(env: dict[str, str]) -> None:
    text = "".join(f"{key}={options.quote_env_value(value)}\n" for key, value in env.items())
    assert options.parse_env_file(text, "f") == env


@given(st.dictionaries(KEYS, VALUES.filter(lambda v: "'" not in v and "\n" not in v), max_size=8))
def test_env_file_single_quoted_round_trip(env: dict[str, str]) -> None:
    text = "".join(f"export {key}='{value}'\n" for key, value in env.items())
    assert options.parse_env_file(text, "f") == env


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_env_file_only_our_errors(data: str | bytes) -> None:
    try:
        env = options.parse_env_file(data, "fuzz.env")
    except ParseError as exc:
        assert exc.message.startswith("Invalid fuzz.env at line ")
    else:
        assert all(options.is_env_key(key) for key in env)
        assert all("\x00" not in value for value in env.values())


# -- -v HOST:CONTAINER[:ro] -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("/srv/data:/data", Mount("/srv/data", "/data", False)),
        ("/srv/data:/data:ro", Mount("/srv/data", "/data", True)),
        ("/srv/data:/data:rw", Mount("/srv/data", "/data", False)),
        ("/:/host:ro", Mount("/", "/host", True)),
    ],
)
def test_mount(spec: str, expected: Mount) -> None:
    assert options.parse_mount(spec) == expected


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("/srv/data", "expected HOST:CONTAINER or HOST:CONTAINER:ro"),
        ("/a:/b:ro:x", "expected HOST:CONTAINER or HOST:CONTAINER:ro"),
        ("", "expected HOST:CONTAINER or HOST:CONTAINER:ro"),
        ("/a:/b:rx", "the mode must be ro or rw"),
        ("/a:/b:", "the mode must be ro or rw"),
        ("data:/data", "the host path must be absolute"),
        ("./data:/data", "the host path must be absolute"),
        (":/data", "the host path must be absolute"),
        ("/data:data", "the container path must be absolute"),
        ("/data:", "the container path must be absolute"),
        ("/data:/", "cannot mount over /"),
        ("/data:/./", "cannot mount over /"),
        ("/da\nta:/x", "the host path contains a control character"),
    ],
)
def test_mount_errors(spec: str, reason: str) -> None:
    with pytest.raises(UsageError) as info:
        options.parse_mount(spec)
    assert info.value.message == f"Invalid -v value {spec!r}: {reason}"


@given(st.text(max_size=60))
def test_mount_only_our_errors(spec: str) -> None:
    try:
        mount = options.parse_mount(spec)
    except UsageError as exc:
        assert exc.message.startswith("Invalid -v value ")
    else:
        assert mount.source.startswith("/")
        assert mount.target.startswith("/")


# -- --task-timeout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30", 30.0), (" 1.5 ", 1.5), ("0.001", 0.001), ("1e3", 1000.0), ("", None), ("None", None)],
)
def test_task_timeout(text: str, expected: float | None) -> None:
    assert options.parse_task_timeout(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "abc", "nan", "inf", "-inf", "1s", "0x10"])
def test_task_timeout_errors(text: str) -> None:
    with pytest.raises(UsageError) as info:
        options.parse_task_timeout(text)
    assert info.value.message == (
        f"Invalid task timeout {text!r}: expected a number of seconds above 0 "
        "(or none for no timeout)"
    )


@pytest.mark.parametrize("text", ["", "none"])
def test_task_timeout_none_not_allowed(text: str) -> None:
    with pytest.raises(UsageError) as info:
        options.parse_task_timeout(text, allow_none=False)
    assert info.value.message == (
        f"Invalid task timeout {text!r}: expected a number of seconds above 0"
    )


@given(st.text(max_size=30))
def test_task_timeout_only_our_errors(text: str) -> None:
    try:
        seconds = options.parse_task_timeout(text)
    except DokkuTasksError as exc:
        assert isinstance(exc, UsageError)
    else:
        assert seconds is None or (math.isfinite(seconds) and seconds > 0)


@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False))
def test_task_timeout_round_trip(seconds: float) -> None:
    assert options.parse_task_timeout(repr(seconds)) == seconds


# -- edges: where a line, a quote and a shown value end ---------------------------------------


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"A=\xff\nB=1\nC=2\n", 1),  # newlines after the bad byte do not count
        (b"\nA=\xff", 2),  # nor does a newline at the very start get lost
        (b"\n\n\nA=1\nB=\xff\n\n", 5),
    ],
)
def test_env_file_invalid_utf8_line_numbers(data: bytes, line: int) -> None:
    with pytest.raises(ParseError) as info:
        options.parse_env_file(data, "bad.env")
    assert info.value.message == f"Invalid bad.env at line {line}: not valid UTF-8"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A='one' # it's a comment", "one"),
        ("A='it''s'", None),  # a second quoted part is not joined
        ("A='x'#c", "x"),
        ("A=''", ""),
        ('A="" # "quoted" comment', ""),
        ('A="a\\\\" # \\', "a\\"),
        ('A="tab\\t and \\x"', "tab\\t and \\x"),  # unknown escapes keep their backslash
        ('A="\\"', None),  # the escaped quote does not close
    ],
)
def test_env_file_quote_ends(text: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ParseError):
            options.parse_env_file(text, "q.env")
    else:
        assert options.parse_env_file(text, "q.env") == {"A": expected}


@pytest.mark.parametrize("text", ['A="abc\\', 'A="\\', 'A="x\\\\\\'])
def test_env_file_trailing_backslash_is_unterminated(text: str) -> None:
    with pytest.raises(ParseError) as info:
        options.parse_env_file(text, "q.env")
    assert (
        info.value.message == "Invalid q.env at line 1: unterminated double quote in the value of A"
    )


def test_env_file_text_right_after_a_single_quote() -> None:
    with pytest.raises(ParseError) as info:
        options.parse_env_file("A='x'y", "q.env")
    assert info.value.message == (
        "Invalid q.env at line 1: unexpected text after the quoted value of A: 'y'"
    )


def test_env_file_export_with_several_spaces_or_a_tab() -> None:
    assert options.parse_env_file("export  A=1\nexport\tB=2\n", "f") == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("/srv/X:/data/XX", Mount("/srv/X", "/data/XX", False)),
        ("/srv/data:/data/", Mount("/srv/data", "/data/", False)),
    ],
)
def test_mount_paths_are_kept_as_given(spec: str, expected: Mount) -> None:
    assert options.parse_mount(spec) == expected


@pytest.mark.parametrize("target", ["//", "///", "/./", "/../", "//./"])
def test_mount_over_root_in_any_spelling(target: str) -> None:
    with pytest.raises(UsageError) as info:
        options.parse_mount(f"/data:{target}")
    assert info.value.message == f"Invalid -v value '/data:{target}': cannot mount over /"


@pytest.mark.parametrize("path", ["/a\rb", "/a\x00b"])
def test_mount_control_characters(path: str) -> None:
    with pytest.raises(UsageError) as info:
        options.parse_mount(f"/x:{path}")
    assert info.value.message == (
        f"Invalid -v value {f'/x:{path}'!r}: the container path contains a control character"
    )


@pytest.mark.parametrize(
    ("length", "shown"),
    [
        (79, "K" * 79),
        (80, "K" * 80),  # at most 80 characters are shown whole
        (81, "K" * 77 + "..."),
        (500, "K" * 77 + "..."),
    ],
)
def test_shown_values_are_cut_after_80_characters(length: int, shown: str) -> None:
    with pytest.raises(UsageError) as info:
        options.parse_env_assignment("K" * length)
    assert info.value.message == f"Invalid -e value {shown!r}: expected KEY=VALUE"


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ("back\\slash", '"back\\\\slash"'),
        ("\\", '"\\\\"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("two\nlines", '"two\\nlines"'),
        ("\\n is not a newline", '"\\\\n is not a newline"'),
    ],
)
def test_quote_env_value_reads_back(value: str, quoted: str) -> None:
    assert options.quote_env_value(value) == quoted
    assert options.parse_env_file(f"A={quoted}", "f") == {"A": value}
