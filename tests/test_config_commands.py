"""The ``config`` commands: Dokku's names and output, one-line errors, values shown only on
request.  Run in-process with click's runner and the built-in plugins only."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import Result

from dokku_tasks.config_store import MAX_VALUE_BYTES, ConfigStore
from dokku_tasks.properties import GLOBAL, PropertyStore
from tests.cli_runs import builtins_only, ok, run


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """The built-ins, no installed plugin, a fresh state root with the app ``web``."""
    builtins_only(monkeypatch, root, "web")


def fails(result: Result, message: str, code: int = 1) -> None:
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f" !     {message}\n")


# -- config:set and config:unset --------------------------------------------------------------


def test_set_names_the_keys_and_never_prints_a_value(root: Path) -> None:
    out = ok("config:set", "web", "SECRET_KEY=fjdkslafjdk", "B=two words", "A=x=y")
    assert out == "-----> Setting config vars\n       A\n       B\n       SECRET_KEY\n"
    assert "fjdkslafjdk" not in out
    assert ConfigStore(root).get_all("web") == {
        "SECRET_KEY": "fjdkslafjdk",
        "B": "two words",
        "A": "x=y",
    }


def test_set_a_later_pair_wins_and_an_empty_value_is_a_value(root: Path) -> None:
    ok("config:set", "web", "A=1", "A=2", "E=")
    assert ConfigStore(root).get_all("web") == {"A": "2", "E": ""}


def test_set_says_a_deployed_app_is_not_restarted(root: Path) -> None:
    PropertyStore(root).set("common", "web", "deployed", "true")
    out = ok("config:set", "web", "A=1")
    assert out.endswith(
        "       web is not restarted: its containers get the change at its next deploy\n"
    )
    assert "restarted" not in ok("config:set", "--no-restart", "web", "A=2")
    assert "restarted" not in ok("config:set", "web", "A=3", "--no-restart")


def test_set_on_an_app_never_deployed_says_nothing_of_a_restart() -> None:
    assert "restarted" not in ok("config:set", "web", "A=1")


def test_set_encoded_decodes_base64(root: Path) -> None:
    value = "line one\nline 'two'"
    encoded = base64.b64encode(value.encode()).decode()
    ok("config:set", "--encoded", "web", f"MOTD={encoded}")
    assert ConfigStore(root).get_all("web") == {"MOTD": value}
    fails(
        run("config:set", "--encoded", "web", "MOTD=not base64!"),
        "Invalid --encoded value for MOTD: expected base64 of UTF-8 text",
    )


def test_set_global(root: Path) -> None:
    assert ok("config:set", "--global", "G=1") == "-----> Setting config vars\n       G\n"
    assert ConfigStore(root).get_all(GLOBAL) == {"G": "1"}


def test_unset_prints_dokkus_lines(root: Path) -> None:
    ok("config:set", "web", "A=1", "B=2")
    assert ok("config:unset", "web", "A", "Z") == (
        "-----> Unsetting A\n-----> Skipping Z, it is not set in the environment\n"
    )
    assert ConfigStore(root).get_all("web") == {"B": "2"}
    ok("config:set", "--global", "G=1")
    ok("config:unset", "--global", "G")
    assert ConfigStore(root).get_all(GLOBAL) == {}


# -- bad input: one line, exit 1, nothing stored ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["NOKEY"], "Invalid env pair: 'NOKEY': expected KEY=VALUE"),
        (["=value"], "Invalid key name '': it must match [A-Za-z_][A-Za-z0-9_]*"),
        (["A-B=1"], "Invalid key name 'A-B': it must match [A-Za-z_][A-Za-z0-9_]*"),
        (["A\x00B=1"], "Invalid key name 'A\\x00B': it must match [A-Za-z_][A-Za-z0-9_]*"),
        (["A=x\x00y"], "Invalid value for A: it contains a NUL byte"),
        (
            [f"BIG={'x' * (MAX_VALUE_BYTES + 1)}"],
            "Invalid value for BIG: it is 1048577 bytes, over the limit of 1048576 bytes (1 MiB)",
        ),
    ],
    ids=["no-equals", "empty-key", "dash", "nul-key", "nul-value", "over-1-mib"],
)
def test_set_refuses_bad_input_and_stores_nothing(
    root: Path, args: list[str], message: str
) -> None:
    fails(run("config:set", "web", "GOOD=1", *args), message)
    assert not ConfigStore(root).path("web").exists()


def test_a_missing_app_is_exit_20_and_no_app_is_a_usage_error() -> None:
    fails(run("config:set", "nope", "A=1"), "App nope does not exist", 20)
    fails(run("config:show"), "Please specify an app to run the command on")
    fails(run("config:set", "web"), "At least one env pair must be given")
    fails(run("config:set", "UPPER", "A=1"), run("config:show", "UPPER").stderr[7:-1])


def test_unset_refuses_a_bad_key_and_removes_nothing(root: Path) -> None:
    ok("config:set", "web", "A=1")
    fails(
        run("config:unset", "web", "A", "A=B"),
        "Invalid key name 'A=B': it must match [A-Za-z_][A-Za-z0-9_]*",
    )
    fails(run("config:unset", "web"), "At least one key must be given")
    assert ConfigStore(root).get_all("web") == {"A": "1"}


# -- reading -------------------------------------------------------------------------------------


def test_get_prints_the_value_and_exits_1_without_one() -> None:
    ok("config:set", "web", "B=two words", "Q=it's")
    assert ok("config:get", "web", "B") == "two words\n"
    assert ok("config:get", "--quoted", "web", "Q") == "'it'\\''s'\n"
    missing = run("config:get", "web", "NOPE")
    assert (missing.exit_code, missing.stdout, missing.stderr) == (1, "", "")
    fails(run("config:get", "web"), "Expected: key")
    fails(run("config:get", "web", "A", "B"), "Unexpected argument(s) for config:get: B")


def test_get_global() -> None:
    ok("config:set", "--global", "G=1")
    assert ok("config:get", "--global", "G") == "1\n"


def test_show_aligns_values_as_dokku() -> None:
    ok("config:set", "web", "A=1", "LONG_KEY=two words")
    expected = "=====> web env vars\nA:         1\nLONG_KEY:  two words\n"
    assert ok("config:show", "web") == expected
    assert ok("config", "web") == expected


def test_show_without_values_prints_the_header_only() -> None:
    assert ok("config:show", "web") == "=====> web env vars\n"


def test_show_global_and_merged() -> None:
    ok("config:set", "--global", "G=global", "A=global")
    ok("config:set", "web", "A=app")
    assert ok("config:show", "--global") == "=====> global env vars\nA:  global\nG:  global\n"
    assert ok("config:show", "web") == "=====> web env vars\nA:  app\n"
    assert ok("config:show", "--merged", "web") == "=====> web env vars\nA:  app\nG:  global\n"


def test_keys_lists_keys_only() -> None:
    ok("config:set", "web", "B=secret", "A=secret")
    assert ok("config:keys", "web") == "A\nB\n"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("exports", "export A='1'\nexport Q='it'\\''s'\n"),
        ("envfile", 'A="1"\nQ="it\'s"\n'),
        ("json", '{"A":"1","Q":"it\'s"}\n'),
        ("json-list", '[{"name":"A","value":"1"},{"name":"Q","value":"it\'s"}]\n'),
        ("pretty", "A:  1\nQ:  it's\n"),
        ("shell", "A='1' Q='it'\\''s'\n"),
    ],
)
def test_export_formats(fmt: str, expected: str) -> None:
    ok("config:set", "web", "A=1", "Q=it's")
    assert ok("config:export", "web", "--format", fmt) == expected


def test_export_defaults_to_exports_and_refuses_other_formats() -> None:
    ok("config:set", "web", "A=1")
    assert ok("config:export", "web") == "export A='1'\n"
    fails(
        run("config:export", "web", "--format", "xml"),
        "Unknown export format 'xml': expected one of exports, envfile, json, json-list, "
        "pretty, shell",
    )


def test_export_json_round_trips_any_value() -> None:
    value = 'multi\nline "quoted" \\ é'
    ok("config:set", "web", f"V={value}")
    assert json.loads(ok("config:export", "--format", "json", "web")) == {"V": value}


def test_help_lists_the_config_commands() -> None:
    out = ok("--help")
    for name in ("config", "config:export", "config:get", "config:keys", "config:set"):
        assert f"  {name} " in out
    assert "config:show" in out and "config:unset" in out
