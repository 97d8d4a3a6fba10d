"""app.json ``healthchecks``: Dokku's schema, Go's decoding rules, and one-line errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dokku_tasks
from dokku_tasks.appjson import MAX_HEALTHCHECK_SECONDS, parse_app_json
from dokku_tasks.errors import ParseError
from dokku_tasks.models import AppJson, Healthcheck

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def checks(text: str) -> dict[str, tuple[Healthcheck, ...]]:
    return dict(parse_app_json(text.encode("utf-8")).healthchecks)


def error_of(text: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_app_json(text.encode("utf-8"))
    assert "\n" not in str(info.value)
    return info.value


def test_dokkus_documented_example() -> None:
    text = """{
      "healthchecks": {
        "web": [
          {
            "type":        "startup",
            "name":        "web check",
            "description": "Checking if the app responds to the /health/ready endpoint",
            "path":        "/health/ready",
            "attempts": 3
          }
        ]
      }
    }"""
    assert checks(text) == {
        "web": (Healthcheck(type="startup", name="web check", path="/health/ready", attempts=3),)
    }


def test_every_field() -> None:
    text = json.dumps(
        {
            "healthchecks": {
                "worker": [
                    {
                        "type": "startup",
                        "name": "all",
                        "command": ["/bin/check", "--fast"],
                        "content": "ok",
                        "attempts": 2,
                        "wait": 3,
                        "timeout": 4,
                        "initialDelay": 5,
                        "port": 8080,
                        "scheme": "HTTPS",
                        "listening": False,
                        "httpHeaders": [{"name": "Host", "value": "x"}],
                        "warn": True,
                        "onFailure": {"url": "http://x"},
                    }
                ]
            }
        }
    )
    assert checks(text)["worker"] == (
        Healthcheck(
            type="startup",
            name="all",
            command=("/bin/check", "--fast"),
            content="ok",
            attempts=2,
            wait=3,
            timeout=4,
            initial_delay=5,
            port=8080,
            scheme="https",
        ),
    )


def test_no_healthchecks_is_an_empty_mapping() -> None:
    assert parse_app_json(b"{}").healthchecks == {}
    assert AppJson().healthchecks == {}
    assert parse_app_json(b'{"healthchecks": null}') == AppJson()


def test_field_names_fold_as_go_does_and_process_types_do_not() -> None:
    text = (
        '{"HealthChecks": {"web": [{"TYPE": "startup", "InitialDelay": 2, "PATH": "/"}],'
        ' "WEB": [{"type": "liveness", "ﬁ": 1, "uptime": 3}]}}'
    )
    assert checks(text) == {
        "web": (Healthcheck(type="startup", initial_delay=2, path="/"),),
        "WEB": (Healthcheck(type="liveness", uptime=3),),
    }


def test_jsonc_comments_and_trailing_commas() -> None:
    text = """{
      // checks before the switch
      "healthchecks": {"web": [{"type": "startup", /* in-line */ "command": ["true",],},],},
    }"""
    assert checks(text) == {"web": (Healthcheck(type="startup", command=["true"]),)}


# -- Go's decoding ------------------------------------------------------------------------------


def test_repeated_healthchecks_keys_merge_and_null_clears() -> None:
    merged = '{"healthchecks": {"web": [{}]}, "HEALTHCHECKS": {"worker": [{"uptime": 1}]}}'
    assert set(checks(merged)) == {"web", "worker"}
    assert checks('{"healthchecks": {"web": [{}]}, "healthchecks": null}') == {}


def test_a_repeated_process_type_is_replaced() -> None:
    text = '{"healthchecks": {"web": [{"name": "a"}, {"name": "b"}], "web": [{"name": "c"}]}}'
    assert checks(text) == {"web": (Healthcheck(name="c"),)}


@pytest.mark.parametrize("value", ["null", "[]"])
def test_a_type_with_no_entries_is_left_out(value: str) -> None:
    assert checks(f'{{"healthchecks": {{"web": {value}, "worker": [{{}}]}}}}') == {
        "worker": (Healthcheck(),)
    }


def test_a_null_entry_is_an_empty_healthcheck() -> None:
    assert checks('{"healthchecks": {"web": [null]}}') == {"web": (Healthcheck(),)}


def test_null_leaves_a_field_as_it_was_but_resets_command() -> None:
    text = (
        '{"healthchecks": {"web": [{"name": "a", "name": null, "attempts": 2, "attempts": null,'
        ' "command": ["x"], "command": null, "listening": true, "listening": null}]}}'
    )
    assert checks(text) == {"web": (Healthcheck(name="a", attempts=2, listening=True),)}


def test_a_repeated_field_takes_the_last_value() -> None:
    text = '{"healthchecks": {"web": [{"path": "/a", "Path": "/b", "command": ["x"], "path": ""}]}}'
    assert checks(text) == {"web": (Healthcheck(command=["x"]),)}


@pytest.mark.parametrize("value", [0, -1, -(2**31)])
def test_zero_or_less_means_the_default(value: int) -> None:
    fields = ("attempts", "wait", "timeout", "initialDelay", "uptime")
    text = json.dumps({"healthchecks": {"web": [{name: value for name in fields}]}})
    assert checks(text) == {"web": (Healthcheck(),)}
    assert checks(json.dumps({"healthchecks": {"web": [{"port": 0}]}})) == {"web": (Healthcheck(),)}


def test_an_empty_command_is_no_command() -> None:
    assert checks('{"healthchecks": {"web": [{"command": [], "path": "/"}]}}') == {
        "web": (Healthcheck(path="/"),)
    }


def test_the_largest_values() -> None:
    text = json.dumps(
        {"healthchecks": {"web": [{"timeout": MAX_HEALTHCHECK_SECONDS, "port": 65535}]}}
    )
    assert checks(text)["web"][0].timeout == MAX_HEALTHCHECK_SECONDS
    assert checks(text)["web"][0].port == 65535


# -- errors -------------------------------------------------------------------------------------


ERRORS = [
    ('{"healthchecks": []}', "healthchecks must be an object, not an array", 1, 18),
    ('{"healthchecks": {"web": {}}}', "healthchecks.web must be an array, not an object", 1, 26),
    (
        '{"healthchecks": {"web": [1]}}',
        "healthchecks.web[0] must be an object, not a number",
        1,
        27,
    ),
    (
        '{"healthchecks": {"web": [{}, {"type": "boot"}]}}',
        "healthchecks.web[1].type must be one of startup, liveness, readiness, not 'boot'",
        1,
        40,
    ),
    (
        '{"healthchecks": {"web": [{"type": "Startup"}]}}',
        "healthchecks.web[0].type must be one of startup, liveness, readiness, not 'Startup'",
        1,
        36,
    ),
    (
        '{"healthchecks": {"web": [{"command": "curl x"}]}}',
        "healthchecks.web[0].command must be an array of strings, not a string",
        1,
        39,
    ),
    (
        '{"healthchecks": {"web": [{"command": ["a", 2]}]}}',
        "healthchecks.web[0].command[1] must be a string, not a number",
        1,
        45,
    ),
    (
        '{"healthchecks": {"web": [{"command": ["a", null]}]}}',
        "healthchecks.web[0].command[1] must be a string, not null",
        1,
        45,
    ),
    (
        '{"healthchecks": {"web": [{"command": ["a\\u0000"]}]}}',
        "healthchecks.web[0].command[0] contains a NUL character",
        1,
        40,
    ),
    (
        '{"healthchecks": {"web": [{"path": "/\\u0000"}]}}',
        "healthchecks.web[0].path contains a NUL character",
        1,
        36,
    ),
    (
        '{"healthchecks": {"web": [{"name": 5}]}}',
        "healthchecks.web[0].name must be a string, not a number",
        1,
        36,
    ),
    (
        '{"healthchecks": {"web": [{"attempts": "3"}]}}',
        "healthchecks.web[0].attempts must be an integer, not a string",
        1,
        40,
    ),
    (
        '{"healthchecks": {"web": [{"attempts": 1.5}]}}',
        "healthchecks.web[0].attempts must be an integer, not 1.5",
        1,
        40,
    ),
    (
        '{"healthchecks": {"web": [{"wait": 1e1}]}}',
        "healthchecks.web[0].wait must be an integer, not 1e1",
        1,
        36,
    ),
    (
        '{"healthchecks": {"web": [{"wait": true}]}}',
        "healthchecks.web[0].wait must be an integer, not a boolean",
        1,
        36,
    ),
    (
        '{"healthchecks": {"web": [{"timeout": 86401}]}}',
        "healthchecks.web[0].timeout must be at most 86400",
        1,
        39,
    ),
    (
        '{"healthchecks": {"web": [{"uptime": -2147483649}]}}',
        "healthchecks.web[0].uptime is out of range (-2147483649)",
        1,
        38,
    ),
    (
        '{"healthchecks": {"web": [{"port": 65536}]}}',
        "healthchecks.web[0].port must be a port number from 1 to 65535",
        1,
        36,
    ),
    (
        '{"healthchecks": {"web": [{"port": -1}]}}',
        "healthchecks.web[0].port must be a port number from 1 to 65535",
        1,
        36,
    ),
    (
        '{"healthchecks": {"web": [{"listening": 1}]}}',
        "healthchecks.web[0].listening must be true or false, not a number",
        1,
        41,
    ),
    (
        '{"healthchecks": {"web": [{"scheme": "ftp"}]}}',
        "healthchecks.web[0].scheme must be http or https, not 'ftp'",
        1,
        38,
    ),
    (
        '{"healthchecks": {"web.1": [{"name": []}]}}',
        "healthchecks.'web.1'[0].name must be a string, not an array",
        1,
        38,
    ),
]


@pytest.mark.parametrize(("text", "detail", "line", "column"), ERRORS)
def test_errors_name_the_key_path_and_where_it_is(
    text: str, detail: str, line: int, column: int
) -> None:
    err = error_of(text)
    assert (err.detail, err.line, err.column) == (detail, line, column)


@pytest.mark.parametrize(
    ("fields", "first", "second"),
    [
        ('"command": ["x"], "path": "/"', "command", "path"),
        ('"command": ["x"], "uptime": 3', "command", "uptime"),
        ('"command": ["x"], "listening": true', "command", "listening"),
        ('"path": "/", "uptime": 3', "path", "uptime"),
        ('"path": "/", "listening": true', "path", "listening"),
        ('"uptime": 3, "listening": true', "uptime", "listening"),
    ],
)
def test_a_healthcheck_checks_one_thing(fields: str, first: str, second: str) -> None:
    err = error_of('{"healthchecks": {"web": [\n  {"type": "startup", ' + fields + "}]}}")
    assert err.detail == (
        f"healthchecks.web[0] cannot have both '{first}' and '{second}': "
        "a healthcheck checks one thing"
    )
    assert (err.line, err.column) == (2, 3)


def test_an_error_deep_in_a_commented_multiline_file_is_placed_exactly() -> None:
    text = """{
  "healthchecks": {
    "web": [
      {"type": "startup", "path": "/"}, // fine
      /* the next one is not */
      {"type": "startup",
       "attempts": "many"}
    ]
  }
}"""
    err = error_of(text)
    assert (err.line, err.column) == (7, 20)
    assert err.detail == "healthchecks.web[1].attempts must be an integer, not a string"


def test_zero_as_the_uptime_does_not_conflict() -> None:
    assert checks('{"healthchecks": {"web": [{"command": ["x"], "uptime": 0}]}}') == {
        "web": (Healthcheck(command=["x"]),)
    }


# -- the record ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "kind", "label"),
    [
        (Healthcheck(name="mine", command=["x"]), "command", "mine"),
        (Healthcheck(command=["pg_isready", "-q"]), "command", "command pg_isready -q"),
        (Healthcheck(path="/health"), "path", "path /health"),
        (Healthcheck(listening=True, port=5000), "listening", "listening on port 5000"),
        (Healthcheck(listening=True), "listening", "listening"),
        (Healthcheck(uptime=10), "uptime", "uptime 10s"),
        (Healthcheck(), "uptime", "uptime 0s"),
    ],
)
def test_kind_and_label(check: Healthcheck, kind: str, label: str) -> None:
    assert (check.kind, check.label) == (kind, label)


def test_the_record_is_frozen_and_exported() -> None:
    check = dokku_tasks.Healthcheck(command=["a"])
    assert check.command == ("a",)
    assert "Healthcheck" in dokku_tasks.__all__
    with pytest.raises(AttributeError):
        check.name = "x"  # type: ignore[misc]


# -- properties ---------------------------------------------------------------------------------

seconds = st.integers(min_value=1, max_value=MAX_HEALTHCHECK_SECONDS)
# No NUL (refused) and no lone surrogate (Go decodes it to U+FFFD).
words = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=8)


@st.composite
def healthcheck_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A valid healthcheck object: at most one of command, path, uptime, listening."""
    entry: dict[str, Any] = {}
    for name, strategy in (
        ("type", st.sampled_from(["startup", "liveness", "readiness", ""])),
        ("name", words),
        ("attempts", seconds),
        ("wait", seconds),
        ("timeout", seconds),
        ("initialDelay", seconds),
        ("port", st.integers(min_value=1, max_value=65535)),
        ("content", words),
        ("scheme", st.sampled_from(["http", "https", "HTTP"])),
    ):
        if draw(st.booleans()):
            entry[name] = draw(strategy)
    what = draw(st.sampled_from(["command", "path", "uptime", "listening", None]))
    if what == "command":
        entry["command"] = draw(st.lists(words, min_size=1, max_size=3))
    elif what == "path":
        entry["path"] = "/" + draw(words)
    elif what == "uptime":
        entry["uptime"] = draw(seconds)
    elif what == "listening":
        entry["listening"] = True
    return entry


def expected(entry: dict[str, Any]) -> Healthcheck:
    return Healthcheck(
        type=entry.get("type", ""),
        name=entry.get("name", ""),
        command=entry.get("command"),
        path=entry.get("path", ""),
        port=entry.get("port"),
        content=entry.get("content", ""),
        attempts=entry.get("attempts"),
        wait=entry.get("wait"),
        timeout=entry.get("timeout"),
        initial_delay=entry.get("initialDelay", 0),
        uptime=entry.get("uptime", 0),
        scheme=entry.get("scheme", "").lower(),
        listening=entry.get("listening", False),
    )


@FAST
@given(
    st.dictionaries(st.text(max_size=8), st.lists(healthcheck_objects(), min_size=1, max_size=3))
)
def test_valid_healthchecks_round_trip(document: dict[str, list[dict[str, Any]]]) -> None:
    text = json.dumps({"healthchecks": document})
    parsed = parse_app_json(text.encode("utf-8")).healthchecks
    assert parsed == {
        process: tuple(expected(entry) for entry in entries)
        for process, entries in document.items()
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["type", "name", "command", "path", "port", "content", "attempts", "wait", "timeout",
     "initialDelay", "uptime", "scheme", "listening", "other"]
)  # fmt: skip


@FAST
@given(
    st.dictionaries(
        st.text(max_size=5),
        st.none()
        | json_values
        | st.lists(st.none() | st.dictionaries(field_names, json_values, max_size=4), max_size=3),
        max_size=3,
    )
)
def test_any_healthchecks_value_parses_or_raises_one_parse_error(value: Any) -> None:
    text = json.dumps({"healthchecks": value}, indent=1)
    try:
        parsed = parse_app_json(text.encode("utf-8"))
    except ParseError as err:
        assert err.line is not None and err.column is not None
        assert "\n" not in err.detail
        # The position is inside the document, at the start of a value.
        line = text.splitlines()[err.line - 1]
        assert 1 <= err.column <= len(line)
    else:
        for entries in parsed.healthchecks.values():
            assert entries and all(isinstance(entry, Healthcheck) for entry in entries)
