"""Procfile parsing (procfile-util's non-strict rules) and command expansion (Go's os.Expand)."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dokku_tasks.appjson import GO_WHITESPACE
from dokku_tasks.errors import ParseError
from dokku_tasks.models import Procfile, ProcfileEntry
from dokku_tasks.procfile import MAX_PROCESS_NAME_LENGTH, expand_command, parse_procfile

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def commands(text: str | bytes) -> dict[str, str]:
    return {entry.name: entry.command for entry in parse_procfile(text).entries}


def error_of(text: str | bytes, filename: str = "Procfile") -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_procfile(text, filename)
    return info.value


# --- parsing ---------------------------------------------------------------------------------


def test_entries_are_sorted_by_name_and_keep_their_lines() -> None:
    procfile = parse_procfile(
        b"# a comment\n"
        b"web: node web.js --port $PORT\n"
        b"\n"
        b"// another comment\n"
        b"release: python3 -u release.py\n"
        b"worker:   python3 worker.py   \n"
    )
    assert procfile == Procfile(
        entries=(
            ProcfileEntry(name="release", command="python3 -u release.py", line=5),
            ProcfileEntry(name="web", command="node web.js --port $PORT", line=2),
            ProcfileEntry(name="worker", command="python3 worker.py", line=6),
        )
    )
    assert procfile.names == ("release", "web", "worker")
    release = procfile.get("release")
    assert release is not None
    assert release.command == "python3 -u release.py"
    assert procfile.get("cron") is None


def test_str_and_bytes_give_the_same_result() -> None:
    text = "web: echo h\u00e9llo\nrelease: true\n"
    assert parse_procfile(text) == parse_procfile(text.encode("utf-8"))


@pytest.mark.parametrize(
    ("line", "name", "command"),
    [
        ("web: run", "web", "run"),
        ("web:run", "web", "run"),
        ("web :run", "web", "run"),
        ("web\t:\trun", "web", "run"),
        ("  web: run  ", "web", "run"),
        ("Web_2-x: run", "Web_2-x", "run"),
        ("_: run", "_", "run"),
        ("-: run", "-", "run"),
        ("web: a: b: c", "web", "a: b: c"),
        ("web: run\r", "web", "run"),
        ("web:\u00a0run", "web", "run"),  # Go's \s is ASCII, TrimSpace then drops the NBSP
        ("web: x\x1c", "web", "x\x1c"),  # Go's TrimSpace keeps U+001C, unlike str.strip()
        ("web: x\v", "web", "x"),
    ],
)
def test_command_lines(line: str, name: str, command: str) -> None:
    assert commands(line) == {name: command}


def test_crlf_line_endings() -> None:
    assert commands("web: a\r\n\r\nworker: b\r\n") == {"web": "a", "worker": "b"}


def test_a_lone_carriage_return_does_not_end_a_line() -> None:
    # bufio.Scanner splits on \n only.
    assert commands("web: a\rworker: b") == {"web": "a\rworker: b"}


def test_other_unicode_line_separators_do_not_end_a_line() -> None:
    assert commands("web: a\u2028b\x0cc\x1ed") == {"web": "a\u2028b\x0cc\x1ed"}


@pytest.mark.parametrize(
    "line",
    ["# web: run", "#", "// web: run", "//", "   # indented", "\t// indented", "\u00a0# nbsp"],
)
def test_comment_lines_are_skipped(line: str) -> None:
    assert commands(f"{line}\nweb: run\n") == {"web": "run"}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("run # comment", "run"),
        ("run\t#comment", "run"),
        ("run # one # two", "run # one"),  # from the *last* whitespace-#
        ("run #", "run #"),  # '#' must be followed by something
        ("run#not-a-comment", "run#not-a-comment"),
        ("echo '#x' #c", "echo '#x'"),
        ("run // comment", "run"),
        ("run // one // two", "run // one"),
        ("curl http://example.com/x", "curl http://example.com/x"),
        ("run //", "run //"),
        ("run # a // b", "run"),  # the '#' pattern wins when both match
        ("run // a # b", "run // a"),
        ("echo 'a # b'", "echo 'a"),  # quotes mean nothing to procfile-util
        ("run \u00a0# c", "run \u00a0# c"),  # Go's \s is ASCII: no-break space is not one
    ],
)
def test_trailing_comments(command: str, expected: str) -> None:
    assert commands(f"web: {command}") == {"web": expected}


@pytest.mark.parametrize(
    ("text", "line", "detail"),
    [
        ("web", 1, "invalid line"),
        ("web run", 1, "invalid line"),
        ("we b: run", 1, "invalid line"),
        ("web.1: run", 1, "invalid line"),
        ("w\u00e9b: run", 1, "invalid line"),
        (": run", 1, "invalid line"),
        ("web:", 1, "invalid line"),  # the command must not be empty
        ("web:   ", 1, "invalid line"),
        ("web: ok\n\n# c\nbroken line\n", 4, "invalid line"),
        ("web: # just a comment", 1, "comment specified in place of command"),
        ("web: // just a comment", 1, "comment specified in place of command"),
        ("web: #", 1, "comment specified in place of command"),
        ("web:\u00a0#c", 1, "comment specified in place of command"),
        ("web: a\nworker:\u00a0 #c", 2, "no command specified"),
        ("web: a\nweb: b", 2, "process names must be unique ('web' is also on line 1)"),
        ("a: 1\nb: 2\n\na: 3", 4, "process names must be unique"),
    ],
)
def test_errors_name_the_line(text: str, line: int, detail: str) -> None:
    err = error_of(text)
    assert detail in err.detail
    assert err.line == line
    assert err.column is None


def test_duplicate_check_is_case_sensitive() -> None:
    assert commands("web: a\nWEB: b") == {"WEB": "b", "web": "a"}


def test_name_length_limit() -> None:
    name = "p" * MAX_PROCESS_NAME_LENGTH
    assert commands(f"{name}: run") == {name: "run"}
    err = error_of(f"web: run\n{name}x: run")
    assert err.detail == "process name over 63 characters (64)"
    assert err.line == 2


@pytest.mark.parametrize("text", ["", "\n\n", "   \n\t\n", "# only\n// comments\n", "\ufeff"])
def test_no_entries(text: str) -> None:
    err = error_of(text)
    assert err.detail == "no entries found"
    assert err.line is None
    assert str(err) == "Invalid Procfile: no entries found"


def test_utf8_bom_is_accepted() -> None:
    assert commands(b"\xef\xbb\xbfweb: run\n") == {"web": "run"}
    assert commands("\ufeffweb: run\n") == {"web": "run"}


@pytest.mark.parametrize(
    ("data", "line", "column"),
    [(b"web: \xff", 1, 6), (b"web: ok\nworker: \xc3\x28", 2, 9), (b"\x80", 1, 1)],
)
def test_invalid_utf8(data: bytes, line: int, column: int) -> None:
    err = error_of(data)
    assert err.detail.startswith("invalid UTF-8")
    assert (err.line, err.column) == (line, column)


def test_error_message_names_the_file() -> None:
    err = error_of("oops", filename="Procfile.staging")
    assert str(err) == "Invalid Procfile.staging at line 1: invalid line (expected 'name: command')"


# --- parsing properties ----------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9_-]{1,63}", fullmatch=True)
_COMMENT_TAIL = re.compile(r"[\t\n\f\r ](#|//).")


def _valid_command(command: str) -> bool:
    return (
        bool(command)
        and command == command.strip(GO_WHITESPACE)
        and not command.startswith(("#", "//"))
        and not _COMMENT_TAIL.search(command)
    )


# A NUL is refused (no command line can carry it); see test_a_command_with_a_nul_character...
command_texts = (
    st.text(st.characters(codec="utf-8", exclude_characters="\n\x00"), min_size=1)
    .map(lambda s: s.strip(GO_WHITESPACE))
    .filter(_valid_command)
)
filler_lines = st.sampled_from(["", "   ", "# comment", "// comment", "\t#x: y"])


@FAST
@given(
    st.dictionaries(names, command_texts, min_size=1, max_size=8),
    st.lists(filler_lines, max_size=8),
    st.sampled_from([": ", ":", " : ", ":\t"]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_round_trip(
    entries: dict[str, str], fillers: list[str], separator: str, newline: str
) -> None:
    lines: list[str] = []
    expected: list[ProcfileEntry] = []
    for index, (name, command) in enumerate(entries.items()):
        if index < len(fillers):
            lines.append(fillers[index])
        lines.append(f"{name}{separator}{command}")
        expected.append(ProcfileEntry(name=name, command=command, line=len(lines)))
    text = newline.join(lines) + newline
    procfile = parse_procfile(text.encode("utf-8"))
    assert procfile.entries == tuple(sorted(expected, key=lambda entry: entry.name))


# A comment that is all white space vanishes when the line is trimmed, leaving a bare "#" that
# the trailing-comment pattern (which needs text after the "#") rightly keeps.
comment_texts = st.text(
    st.characters(codec="utf-8", exclude_characters="\n#/\x00"), min_size=1
).filter(lambda text: text.strip(GO_WHITESPACE) != "")


@FAST
@given(st.dictionaries(names, command_texts, min_size=1, max_size=5), comment_texts)
def test_trailing_comment_is_dropped(entries: dict[str, str], comment: str) -> None:
    # The comment holds no '#' or '/', or the greedy pattern would cut inside it instead.
    text = "".join(f"{name}: {command} # {comment}\n" for name, command in entries.items())
    assert commands(text) == entries


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_procfile(data)


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_parse_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        procfile = parse_procfile(text)
        assert procfile.entries
        assert list(procfile.names) == sorted(procfile.names)


PROCFILE_TOKENS = ["web", "w", ":", " ", "\t", "\n", "\r", "#", "//", "x", "\u00a0", "-", "_", "é"]


@FAST
@given(st.lists(st.sampled_from(PROCFILE_TOKENS), max_size=40).map("".join))
def test_token_soup_only_raises_parse_error(text: str) -> None:
    try:
        procfile = parse_procfile(text)
    except ParseError as err:
        assert err.line is not None or err.detail == "no entries found"
    else:
        for entry in procfile.entries:
            assert entry.command
            assert entry.command == entry.command.strip(GO_WHITESPACE)


# --- expansion -------------------------------------------------------------------------------


def test_dokku_release_interpolation() -> None:
    # Dokku's ps-general-1.bats: procfile-get-command with ENV_VAR=value.
    procfile = parse_procfile("release: interpolated $ENV_VAR\nweb: node web.js --port $PORT\n")
    release = procfile.get("release")
    web = procfile.get("web")
    assert release is not None
    assert web is not None
    env = {"ENV_VAR": "value"}
    assert expand_command(release.command, env, "release", 5001) == "interpolated value"
    assert expand_command(web.command, env, "web", 5001) == "node web.js --port 5001"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("--port $PORT", "--port 5000"),
        ("--port ${PORT}", "--port 5000"),
        ("run $PS", "run worker"),
        ("run ${PS}.log", "run worker.log"),
        ("a $UNKNOWN b", "a  b"),
        ("a ${UNKNOWN} b", "a  b"),
        ("$HOME/bin", "/home/app/bin"),
        ("$HOMEX/bin", "/bin"),  # the longest run of name characters
        ("${HOME}X", "/home/appX"),
        ("$A_B1.txt", "ab1.txt"),
        ("$_", ""),
        ("echo $(date)", "echo $(date)"),
        ("echo $(echo $HOME)", "echo $(echo /home/app)"),
        ("$( $(", "$( $("),
        ("cost: 5$", "cost: 5$"),  # a final '$' stays
        ("$", "$"),
        ("a $ b", "a $ b"),
        ("'$'", "'$'"),
        ("$/x", "$/x"),
        ("$\u00e9t\u00e9", "$\u00e9t\u00e9"),  # names are ASCII
        ("$$", ""),  # os.Expand: '$' is a one-character name
        ("pid $$.", "pid ."),
        ("$1 $9 $0", "  "),
        ("$10", "0"),  # digits are one-character names
        ("$* $# $@ $! $? $-", "     "),
        ("${*} ${#}", " "),
        ("${*x}", ""),  # not a special form: the name is "*x"
        ("${A B}", "spaced"),
        ("${VAR:-default}", ""),
        ("${PORT:-80}", ""),
        ("a${}b", "ab"),  # bad syntax is eaten
        ("a ${HOME", "a HOME"),  # "${" with no "}" loses the "${" only
        ("${", ""),
        ("${}", ""),
        ("x${HOME}}", "x/home/app}"),
        ("$${HOME}", "{HOME}"),
        ("${${HOME}}", "}"),  # the name is "${HOME"
        ("no dollars here", "no dollars here"),
        ("", ""),
    ],
)
def test_expansion(command: str, expected: str) -> None:
    env = {"HOME": "/home/app", "A_B1": "ab1", "A B": "spaced"}
    assert expand_command(command, env, "worker") == expected


def test_env_wins_over_builtins() -> None:
    env = {"PORT": "8080", "PS": "from-env"}
    assert expand_command("$PORT $PS", env, "web", port=5001) == "8080 from-env"


def test_empty_env_value_is_used() -> None:
    assert expand_command("[$PORT]", {"PORT": ""}, "web") == "[]"


def test_values_are_not_expanded_again() -> None:
    env = {"A": "$B", "B": "no", "C": "$(date)"}
    assert expand_command("$A ${C}", env, "web") == "$B $(date)"


def test_port_default() -> None:
    assert expand_command("$PORT", {}, "web") == "5000"


# --- expansion properties --------------------------------------------------------------------

env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
env_values = st.text(st.characters(codec="utf-8", exclude_characters="$"))


@FAST
@given(st.text(st.characters(exclude_characters="$")), st.dictionaries(env_names, env_values))
def test_text_without_dollars_is_unchanged(text: str, env: dict[str, str]) -> None:
    assert expand_command(text, env, "web") == text


@FAST
@given(env_names, env_values, st.sampled_from(["", " ", "/", ".", "-", "}", "$("]))
def test_variables_expand(name: str, value: str, after: str) -> None:
    env = {name: value}
    assert expand_command(f"<${{{name}}}{after}>", env, "web") == f"<{value}{after}>"
    assert expand_command(f"<${name}{after}>", env, "web") == f"<{value}{after}>"


@FAST
@given(st.text(), st.dictionaries(st.text(max_size=5), env_values), st.integers(0, 65535))
def test_expansion_never_fails_and_keeps_command_substitution(
    command: str, env: dict[str, str], port: int
) -> None:
    expanded = expand_command(command, env, "web", port)
    assert expanded.count("$(") >= command.count("$(")


# --- exact messages and the ${...} scanner ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("oops", "Invalid {} at line 1: invalid line (expected 'name: command')"),
        (f"{'p' * 64}: run", "Invalid {} at line 1: process name over 63 characters (64)"),
        (
            "a: 1\na: 2",
            "Invalid {} at line 2: process names must be unique ('a' is also on line 1)",
        ),
        ("web: # c", "Invalid {} at line 1: comment specified in place of command"),
        ("web: a\nworker:\u00a0 #c", "Invalid {} at line 2: no command specified"),
        ("# nothing", "Invalid {}: no entries found"),
        (b"web: \xff", "Invalid {} at line 1, column 6: invalid UTF-8 (byte 0xff)"),
    ],
)
def test_every_error_names_the_file(data: str | bytes, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_procfile(data)
    assert str(info.value) == message.format("Procfile")
    with pytest.raises(ParseError) as info:
        parse_procfile(data, "Procfile.staging")
    assert str(info.value) == message.format("Procfile.staging")


class EchoEnv(dict[str, str]):
    """An env in which every name is set, to "<name>": shows exactly which names are looked up."""

    def __contains__(self, name: object) -> bool:
        return True

    def __getitem__(self, name: str) -> str:
        return f"<{name}>"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("$PORT ${PORT} $1 ${1} ${*}", "<PORT> <PORT> <1> <1> <*>"),
        ("${10}", "<10>"),
        ("${1x}", "<1x>"),
        ("echo ${PORT", "echo PORT"),  # no "}": nothing is looked up, "${" is eaten
        ("echo ${1", "echo 1"),  # the same, right at the end of the command
        ("${", ""),
        ("a${}b", "ab"),
        ("a${}}b", "a}b"),  # "${}" is eaten, the second "}" stays
        ("${}}}", "}}"),
        ("$ {PORT}", "$ {PORT}"),
        ("$", "$"),
    ],
)
def test_which_names_are_looked_up(command: str, expected: str) -> None:
    assert expand_command(command, EchoEnv(), "web") == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # A "}" earlier in the command does not close a later "${".
        ("f() { :; }; echo ${PORT}", "f() { :; }; echo 5000"),
        ("} ${PORT}", "} 5000"),
        ("a} ${PS} ${PORT", "a} web PORT"),
        ("{${PORT}}", "{5000}"),
    ],
)
def test_closing_brace_is_searched_after_the_opening_one(command: str, expected: str) -> None:
    assert expand_command(command, {}, "web") == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # The documented deviation: the command is split at "$(" before expanding.
        ("${A$(b)}", "A$(b)}"),
        ("$$(date)", "$$(date)"),
        ("x$(y)$", "x$(y)$"),
    ],
)
def test_command_substitution_splits_before_expanding(command: str, expected: str) -> None:
    assert expand_command(command, {"A": "no"}, "web") == expected


def _reference_expand(text: str, mapping: EchoEnv) -> str:
    """Go's os.Expand and getShellName, transcribed line by line (on characters, which gives
    the same result as Go's bytes: "$", "{" and "}" never occur inside a UTF-8 sequence)."""
    special = "*#$@!?-0123456789"

    def shell_name(s: str) -> tuple[str, int]:
        if s[0] == "{":
            if len(s) > 2 and s[1] in special and s[2] == "}":
                return s[1:2], 3
            for i in range(1, len(s)):
                if s[i] == "}":
                    if i == 1:
                        return "", 2
                    return s[1:i], i + 1
            return "", 1
        if s[0] in special:
            return s[0:1], 1
        i = 0
        while i < len(s) and (s[i] == "_" or (s[i].isascii() and s[i].isalnum())):
            i += 1
        return s[:i], i

    buf: list[str] = []
    i = 0
    j = 0
    while j < len(text):
        if text[j] == "$" and j + 1 < len(text):
            buf.append(text[i:j])
            name, w = shell_name(text[j + 1 :])
            if name == "" and w > 0:
                pass
            elif name == "":
                buf.append(text[j])
            else:
                buf.append(mapping[name])
            j += w
            i = j + 1
        j += 1
    return "".join(buf) + text[i:]


expansion_soup = st.lists(
    st.sampled_from(["$", "$", "{", "}", "(", ")", "1", "*", "a", "Z", "_", " ", "-", "\u00e9"]),
    max_size=30,
).map("".join)


@FAST
@given(expansion_soup)
def test_expansion_matches_go_os_expand(command: str) -> None:
    env = EchoEnv()
    expected = "$(".join(_reference_expand(piece, env) for piece in command.split("$("))
    assert expand_command(command, env, "web") == expected


def test_a_command_with_a_nul_character_is_refused() -> None:
    # No command line can carry a NUL: refused with its line, never handed to a container.
    with pytest.raises(ParseError) as failure:
        parse_procfile(b"web: sleep 1\nrelease: echo \x00 done\n")
    assert failure.value.message == (
        "Invalid Procfile at line 2: the command contains a NUL character"
    )
