"""Report formatting: Dokku's aligned block, info flags, --format json and argument parsing."""

from __future__ import annotations

import json

import pytest

from dokku_tasks import report
from dokku_tasks.errors import UsageError
from dokku_tasks.models import ReportRow, ReportSection

#: The seed's report, as issue 2 quotes it.
SEED = """\
=====> node-js-app app-json information
       App-json computed appjson path: app2.json
       App-json global appjson path:   app.json
       App-json appjson path:          app2.json"""

SECTION = ReportSection(
    title="app-json",
    rows=(
        ReportRow("computed-appjson-path", "App-json computed appjson path", "app2.json"),
        ReportRow("global-appjson-path", "App-json global appjson path", "app.json", raw=""),
        ReportRow("appjson-path", "App-json appjson path", "app2.json"),
    ),
)


def test_block_matches_the_seed() -> None:
    assert "\n".join(report.format_block("node-js-app", SECTION)) == SEED


def test_block_empty_value_keeps_the_padding() -> None:
    section = ReportSection("x", (ReportRow("a", "Long label", "v"), ReportRow("b", "Short", "")))
    assert report.format_block("app", section) == [
        "=====> app x information",
        "       Long label: v",
        "       Short:      ",
    ]


def test_block_without_rows() -> None:
    assert report.format_block("app", ReportSection("x", ())) == ["=====> app x information"]


def test_json_is_compact_sorted_and_uses_raw_values() -> None:
    line = report.format_json(SECTION)
    assert line == (
        '{"appjson-path":"app2.json","computed-appjson-path":"app2.json","global-appjson-path":""}'
    )
    assert json.loads(line)["global-appjson-path"] == ""


def test_json_keeps_non_ascii() -> None:
    section = ReportSection("x", (ReportRow("k", "K", 'é"\n'),))
    assert report.format_json(section) == '{"k":"é\\"\\n"}'


def test_info_flags_sorted() -> None:
    assert report.info_flags(SECTION) == [
        "--app-json-appjson-path",
        "--app-json-computed-appjson-path",
        "--app-json-global-appjson-path",
    ]


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--app-json-appjson-path", "app2.json"),
        ("--app-json-computed-appjson-path", "app2.json"),
        ("--app-json-global-appjson-path", ""),
    ],
)
def test_flag_value(flag: str, value: str) -> None:
    assert report.flag_value(SECTION, flag) == value


@pytest.mark.parametrize("flag", ["--app-json-selected", "--appjson-path", "--app-json-"])
def test_flag_value_unknown(flag: str) -> None:
    with pytest.raises(UsageError) as info:
        report.flag_value(SECTION, flag)
    assert info.value.message == (
        "Invalid flag passed, valid flags: --app-json-appjson-path, "
        "--app-json-computed-appjson-path, --app-json-global-appjson-path"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], report.ReportArgs()),
        (["app"], report.ReportArgs(app="app")),
        (["app", "--x-y"], report.ReportArgs(app="app", flag="--x-y")),
        (["--x-y", "app"], report.ReportArgs(app="app", flag="--x-y")),
        (["--format", "json"], report.ReportArgs(format="json")),
        (["--format=json", "app"], report.ReportArgs(app="app", format="json")),
        (["app", "--format", "stdout"], report.ReportArgs(app="app")),
        (["--format", "json", "--format", "stdout", "--x"], report.ReportArgs(flag="--x")),
        (["--global"], report.ReportArgs(is_global=True)),
        (["--x", "--global"], report.ReportArgs(flag="--x", is_global=True)),
    ],
)
def test_parse_report_args(args: list[str], expected: report.ReportArgs) -> None:
    assert report.parse_report_args("app-json:report", args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "yaml"], 'Format must be "stdout" or "json": "yaml"'),
        (["--format="], 'Format must be "stdout" or "json": ""'),
        (["app", "--format"], '--format requires a value: "stdout" or "json"'),
        (
            ["--a", "--b"],
            "app-json:report command allows only a single flag, got --a, --b",
        ),
        (
            ["--a", "--format", "json"],
            "--format flag cannot be specified when specifying an info flag",
        ),
        (["a", "b"], "app-json:report takes at most one app, got 'a' and 'b'"),
        (["--global", "a"], "app-json:report takes an app or --global, not both"),
    ],
)
def test_parse_report_args_errors(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        report.parse_report_args("app-json:report", args)
    assert info.value.message == message
    assert info.value.exit_code == 1


def test_render() -> None:
    assert report.render("node-js-app", SECTION, report.ReportArgs()) == SEED.splitlines()
    assert report.render("a", SECTION, report.ReportArgs(format="json")) == [
        report.format_json(SECTION)
    ]
    flag = report.ReportArgs(flag="--app-json-global-appjson-path")
    assert report.render("a", SECTION, flag) == [""]


def test_a_bare_double_dash_is_an_app_not_a_flag() -> None:
    assert report.parse_report_args("x:report", ["--"]) == report.ReportArgs(app="--")


def test_flags_with_their_own_prefix() -> None:
    # The swarm plugin's flags, for instance, need not start with the section's title.
    assert report.info_flags(SECTION, "appjson") == [
        "--appjson-appjson-path",
        "--appjson-computed-appjson-path",
        "--appjson-global-appjson-path",
    ]
    assert report.flag_value(SECTION, "--appjson-appjson-path", "appjson") == "app2.json"
    with pytest.raises(UsageError) as info:
        report.flag_value(SECTION, "--app-json-appjson-path", "appjson")
    assert info.value.message == (
        "Invalid flag passed, valid flags: --appjson-appjson-path, "
        "--appjson-computed-appjson-path, --appjson-global-appjson-path"
    )
