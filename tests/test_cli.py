"""The ``dokku-tasks`` command line: exact output, one-line errors and exit codes.

The report output is compared with the seed text that issue 2 quotes.  Most tests run the
command in-process with click's runner, with only the built-ins they look at and no installed
third-party plugin; a few run the installed script end to end.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dokku_tasks import cli as cli_module
from dokku_tasks import manager, pipeline
from dokku_tasks.cli import cli
from dokku_tasks.errors import (
    AppNotFoundError,
    InterruptedDeployError,
    SourceError,
    TaskFailedError,
)
from dokku_tasks.hookspecs import hookimpl
from dokku_tasks.models import DeployResult, Mount
from tests.fakes import FakeDistribution, FakeEntryPoint

REPO = Path(__file__).resolve().parent.parent
REAL_BUILTINS = manager.BUILTIN_PLUGINS
BUILTINS = (
    ("app-json", "dokku_tasks.plugins.app_json"),
    ("scheduler", "dokku_tasks.plugins.scheduler"),
    ("docker-local", "dokku_tasks.plugins.docker_local"),
    ("swarm", "dokku_tasks.plugins.swarm"),
)

#: The seed's report, as issue 2 quotes it.
SEED = """\
=====> node-js-app app-json information
       App-json computed appjson path: app2.json
       App-json global appjson path:   app.json
       App-json appjson path:          app2.json
"""

INVALID_NAMES = ["../x", "UPPER", "a b", "--global", "", "-x", "a" * 64]
VALID_FLAGS = (
    "--app-json-appjson-path, --app-json-computed-appjson-path, --app-json-global-appjson-path"
)
GLOBAL_INVALID_FLAG = (
    "Invalid flag passed, valid flags: --app-json-computed-appjson-path, "
    "--app-json-global-appjson-path"
)


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, root: Path) -> Iterator[None]:
    """Known built-ins, no installed plugin, no blocking from outside, a fresh state root."""
    monkeypatch.setattr(manager, "BUILTIN_PLUGINS", BUILTINS)
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(()))
    monkeypatch.delenv(manager.DISABLE_ENV, raising=False)
    monkeypatch.setenv("DOKKU_TASKS_ROOT", str(root))
    yield


def install(monkeypatch: pytest.MonkeyPatch, *dists: FakeDistribution) -> None:
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(dists))


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def ok(*args: str, input: str | None = None) -> str:
    """Run a command that must succeed silently on stderr; return its stdout."""
    result = run(*args, input=input)
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    return result.stdout


def fails(result: Result, message: str, code: int = 1) -> None:
    """The command printed nothing but `` !     message`` on stderr and exited ``code``."""
    assert result.stderr == f" !     {message}\n"
    assert result.exit_code == code
    assert result.stdout == ""


def prop(root: Path, plugin: str, app: str, name: str) -> Path:
    return root / "config" / plugin / app / name


# -- the program ----------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    out = ok("--help")
    for command in [
        "apps:create",
        "apps:destroy",
        "apps:list",
        "app-json:set",
        "app-json:report",
        "scheduler:set",
        "scheduler:report",
        "report",
        "plugins",
        "deploy",
    ]:
        assert f"  {command} " in out
    assert "--root DIRECTORY" in out
    assert ok("-h") == out


def test_version() -> None:
    assert ok("--version") == f"dokku-tasks, version {importlib.metadata.version('dokku-tasks')}\n"


def test_no_command_prints_help() -> None:
    result = run()
    assert "Usage: dokku-tasks" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_command_is_one_line() -> None:
    fails(
        run("apps:frobnicate"),
        "No such command 'apps:frobnicate'. Did you mean 'apps:create'? See 'dokku-tasks --help'.",
    )
    fails(run("frobnicate"), "No such command 'frobnicate'. See 'dokku-tasks --help'.")


def test_missing_argument_is_one_line() -> None:
    fails(
        run("apps:create"),
        "Missing argument 'APP'. See 'dokku-tasks apps:create --help'.",
    )


def test_unknown_option_is_one_line() -> None:
    fails(run("--bogus", "apps:list"), "No such option '--bogus'. See 'dokku-tasks --help'.")


def test_root_option_beats_env(tmp_path: Path, root: Path) -> None:
    other = tmp_path / "other"
    ok("--root", str(other), "apps:create", "web")
    assert (other / "apps" / "web").is_dir()
    assert not (root / "apps").exists()
    assert ok("--root", str(other), "apps:list") == "=====> My Apps\nweb\n"


def test_root_relative_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ok("--root", "rel", "apps:create", "web")
    assert (tmp_path / "rel" / "apps" / "web").is_dir()


# -- apps -----------------------------------------------------------------------------------


def test_apps_create_list_destroy(root: Path) -> None:
    fails(run("apps:list"), "You haven't deployed any applications yet", code=0)
    assert ok("apps:create", "web") == "-----> Creating web...\n"
    assert ok("apps:create", "api") == "-----> Creating api...\n"
    assert ok("apps:list") == "=====> My Apps\napi\nweb\n"
    assert ok("apps:destroy", "web", "--force") == "-----> Destroying web\n"
    assert ok("apps:list") == "=====> My Apps\napi\n"
    assert not (root / "apps" / "web").exists()


def test_apps_create_existing() -> None:
    ok("apps:create", "web")
    fails(run("apps:create", "web"), "Name is already taken: web")


def test_apps_destroy_removes_properties(root: Path) -> None:
    ok("apps:create", "web")
    ok("apps:create", "api")
    ok("app-json:set", "web", "appjson-path", "x.json")
    ok("scheduler:set", "web", "selected", "swarm")
    ok("app-json:set", "api", "appjson-path", "api.json")
    ok("app-json:set", "--global", "appjson-path", "g.json")
    ok("apps:destroy", "--force", "web")
    assert not (root / "config" / "app-json" / "web").exists()
    assert not (root / "config" / "scheduler" / "web").exists()
    assert prop(root, "app-json", "api", "appjson-path").read_text() == "api.json"
    assert prop(root, "app-json", "--global", "appjson-path").read_text() == "g.json"


def test_apps_destroy_missing() -> None:
    fails(run("apps:destroy", "web", "--force"), "App web does not exist", code=20)


def test_apps_destroy_without_tty_refuses(root: Path) -> None:
    ok("apps:create", "web")
    fails(
        run("apps:destroy", "web", input="web\n"),
        "Refusing to destroy web without confirmation: stdin is not a terminal "
        "(pass --force to destroy it anyway)",
    )
    assert (root / "apps" / "web").is_dir()


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "_stdin_is_interactive", lambda: True)


WARNING = (
    " !     WARNING: Potentially Destructive Action\n"
    " !     This command will destroy app web.\n"
    ' !     To proceed, type "web"\n'
)


@pytest.mark.usefixtures("tty")
def test_apps_destroy_confirmed(root: Path) -> None:
    ok("apps:create", "web")
    result = run("apps:destroy", "web", input="web\n")
    assert result.exit_code == 0
    assert result.stderr == WARNING
    assert result.stdout == "> -----> Destroying web\n"
    assert not (root / "apps" / "web").exists()


@pytest.mark.usefixtures("tty")
@pytest.mark.parametrize("answer", ["nope\n", "\n", "", "WEB\n"])
def test_apps_destroy_not_confirmed(root: Path, answer: str) -> None:
    ok("apps:create", "web")
    result = run("apps:destroy", "web", input=answer)
    assert result.exit_code == 1
    assert result.stderr == WARNING + " !     Confirmation did not match web. Aborted.\n"
    assert result.stdout == "> "
    assert (root / "apps" / "web").is_dir()


@pytest.mark.parametrize("name", INVALID_NAMES)
@pytest.mark.parametrize(
    "command",
    [
        ["apps:create"],
        ["apps:destroy", "--force"],
        ["app-json:report"],
        ["scheduler:report"],
        ["report"],
        ["deploy", "--image", "img"],
    ],
)
def test_invalid_app_names_refused_before_disk(root: Path, command: list[str], name: str) -> None:
    ok("apps:create", "web")  # so a report of every app would print something
    before = sorted(root.rglob("*"))
    result = run(*command[:1], name, *command[1:])
    if name.startswith("-") and command[0] == "deploy":
        # deploy takes real options, so an unknown one is click's one-line usage error.
        fails(result, f"No such option '{name}'. See 'dokku-tasks deploy --help'.")
    elif name == "--global" and command[0].endswith(":report"):
        # Dokku's global report: tested below.
        assert result.exit_code == 0
    else:
        fails(
            result,
            f"Invalid app name {name!r}: use lowercase letters, digits and dashes, "
            "starting and ending with a letter or digit, at most 63 characters",
        )
    assert sorted(root.rglob("*")) == before


@pytest.mark.parametrize("name", ["../x", "UPPER", "a b", ""])
def test_invalid_app_names_refused_by_set(root: Path, name: str) -> None:
    fails(
        run("app-json:set", name, "appjson-path", "x.json"),
        f"Invalid app name {name!r}: use lowercase letters, digits and dashes, "
        "starting and ending with a letter or digit, at most 63 characters",
    )
    assert list(root.iterdir()) == []


# -- app-json:set ---------------------------------------------------------------------------


def test_app_json_set_and_unset(root: Path) -> None:
    ok("apps:create", "node-js-app")
    path = prop(root, "app-json", "node-js-app", "appjson-path")
    out = ok("app-json:set", "node-js-app", "appjson-path", "app2.json")
    assert out == "=====> Setting appjson-path to app2.json\n"
    assert path.read_bytes() == b"app2.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ok("app-json:set", "node-js-app", "appjson-path") == "=====> Unsetting appjson-path\n"
    assert not path.exists()
    assert (
        ok("app-json:set", "node-js-app", "appjson-path", "") == "=====> Unsetting appjson-path\n"
    )


def test_app_json_set_global(root: Path) -> None:
    path = prop(root, "app-json", "--global", "appjson-path")
    out = ok("app-json:set", "--global", "appjson-path", "global.json")
    assert out == "=====> Setting appjson-path to global.json\n"
    assert path.read_bytes() == b"global.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # --global may stand anywhere, as with Dokku's flag parsing.
    assert ok("app-json:set", "appjson-path", "--global") == "=====> Unsetting appjson-path\n"
    assert not path.exists()


def test_app_json_set_value_with_dash_and_spaces(root: Path) -> None:
    ok("apps:create", "web")
    ok("app-json:set", "web", "appjson-path", "-odd name.json")
    assert prop(root, "app-json", "web", "appjson-path").read_text() == "-odd name.json"


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (
            ["web", "nope", "x"],
            "Invalid property specified, valid properties include: appjson-path",
            1,
        ),
        (
            ["--global", "nope"],
            "Invalid property specified, valid properties include: appjson-path",
            1,
        ),
        (["web"], "No property specified", 1),
        (["--global"], "No property specified", 1),
        ([], "Please specify an app to run the command on", 1),
        (["missing", "appjson-path", "x"], "App missing does not exist", 20),
        (
            ["web", "appjson-path", "a", "b"],
            "Too many arguments: app-json:set takes (APP | --global) PROPERTY [VALUE]; "
            "quote a value that contains spaces",
            1,
        ),
        (
            ["web", "appjson-path", "../up.json"],
            "Invalid appjson-path '../up.json': it must stay inside the source tree "
            "(or the image's WORKDIR)",
            1,
        ),
        (["web", "appjson-path", "/"], "Invalid appjson-path '/': it must name a file", 1),
    ],
)
def test_app_json_set_errors(root: Path, args: list[str], message: str, code: int) -> None:
    ok("apps:create", "web")
    fails(run("app-json:set", *args), message, code)
    assert not (root / "config").exists()


# -- app-json:report ------------------------------------------------------------------------


@pytest.fixture
def seed(root: Path) -> None:
    """The seed's state: node-js-app with appjson-path app2.json, no global value."""
    ok("apps:create", "node-js-app")
    ok("app-json:set", "node-js-app", "appjson-path", "app2.json")


@pytest.mark.usefixtures("seed")
def test_app_json_report_matches_the_seed() -> None:
    assert ok("app-json:report", "node-js-app") == SEED
    assert ok("app-json:report", "node-js-app", "--format", "stdout") == SEED


@pytest.mark.usefixtures("seed")
@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--app-json-computed-appjson-path", "app2.json"),
        ("--app-json-global-appjson-path", ""),
        ("--app-json-appjson-path", "app2.json"),
    ],
)
def test_app_json_report_info_flags(flag: str, value: str) -> None:
    """Ports Dokku app-json.bats "(app-json:report) appjson-path round-trip" (info flags)."""
    assert ok("app-json:report", "node-js-app", flag) == f"{value}\n"
    assert ok("app-json:report", flag, "node-js-app") == f"{value}\n"


@pytest.mark.usefixtures("seed")
@pytest.mark.parametrize("fmt", [["--format", "json"], ["--format=json"]])
def test_app_json_report_json(fmt: list[str]) -> None:
    """Ports the round-trip case's ``--format json`` check (trimmed keys only, by choice)."""
    out = ok("app-json:report", "node-js-app", *fmt)
    assert out == (
        '{"appjson-path":"app2.json","computed-appjson-path":"app2.json",'
        '"global-appjson-path":""}\n'
    )
    assert json.loads(out) == {
        "computed-appjson-path": "app2.json",
        "global-appjson-path": "",
        "appjson-path": "app2.json",
    }


def test_app_json_report_raw_computed_global_round_trip() -> None:
    """Ports Dokku app-json.bats "(app-json:report) appjson-path raw vs computed vs global"."""
    ok("apps:create", "web")

    def values() -> tuple[str, str, str]:
        return (
            ok("app-json:report", "web", "--app-json-appjson-path"),
            ok("app-json:report", "web", "--app-json-global-appjson-path"),
            ok("app-json:report", "web", "--app-json-computed-appjson-path"),
        )

    assert values() == ("\n", "\n", "app.json\n")
    ok("app-json:set", "--global", "appjson-path", "app.global.json")
    assert values() == ("\n", "app.global.json\n", "app.global.json\n")
    assert ok("app-json:report", "web") == (
        "=====> web app-json information\n"
        "       App-json computed appjson path: app.global.json\n"
        "       App-json global appjson path:   app.global.json\n"
        "       App-json appjson path:          \n"
    )
    ok("app-json:set", "web", "appjson-path", "app.app.json")
    assert values() == ("app.app.json\n", "app.global.json\n", "app.app.json\n")
    ok("app-json:set", "web", "appjson-path")
    ok("app-json:set", "--global", "appjson-path")
    assert values() == ("\n", "\n", "app.json\n")


@pytest.mark.usefixtures("seed")
def test_app_json_report_every_app_sorted() -> None:
    ok("apps:create", "alpha")
    ok("apps:create", "zulu")
    assert ok("app-json:report") == (
        "=====> alpha app-json information\n"
        "       App-json computed appjson path: app.json\n"
        "       App-json global appjson path:   app.json\n"
        "       App-json appjson path:          \n" + SEED + "=====> zulu app-json information\n"
        "       App-json computed appjson path: app.json\n"
        "       App-json global appjson path:   app.json\n"
        "       App-json appjson path:          \n"
    )
    assert ok("app-json:report", "--format", "json").splitlines() == [
        '{"appjson-path":"","computed-appjson-path":"app.json","global-appjson-path":""}',
        '{"appjson-path":"app2.json","computed-appjson-path":"app2.json","global-appjson-path":""}',
        '{"appjson-path":"","computed-appjson-path":"app.json","global-appjson-path":""}',
    ]
    assert ok("app-json:report", "--app-json-appjson-path") == "\napp2.json\n\n"


def test_app_json_report_no_apps() -> None:
    """Ports Dokku report.bats: no apps is a message on stderr and exit 0."""
    fails(run("app-json:report"), "You haven't deployed any applications yet", code=0)
    fails(run("report"), "You haven't deployed any applications yet", code=0)


@pytest.mark.usefixtures("seed")
@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["missing"], "App missing does not exist", 20),
        (["missing", "--format", "json"], "App missing does not exist", 20),
        (
            ["node-js-app", "--app-json-selected"],
            f"Invalid flag passed, valid flags: {VALID_FLAGS}",
            1,
        ),
        (["--global", "--app-json-appjson-path"], GLOBAL_INVALID_FLAG, 1),
        (["--global", "node-js-app"], "app-json:report takes an app or --global, not both", 1),
        (["node-js-app", "--format", "yaml"], 'Format must be "stdout" or "json": "yaml"', 1),
        (["--format=yaml"], 'Format must be "stdout" or "json": "yaml"', 1),
        (["node-js-app", "--format"], '--format requires a value: "stdout" or "json"', 1),
        (
            ["node-js-app", "--app-json-appjson-path", "--app-json-global-appjson-path"],
            "app-json:report command allows only a single flag, got "
            "--app-json-appjson-path, --app-json-global-appjson-path",
            1,
        ),
        (
            ["node-js-app", "--app-json-appjson-path", "--format", "json"],
            "--format flag cannot be specified when specifying an info flag",
            1,
        ),
        (
            ["node-js-app", "other"],
            "app-json:report takes at most one app, got 'node-js-app' and 'other'",
            1,
        ),
    ],
)
def test_app_json_report_errors(args: list[str], message: str, code: int) -> None:
    fails(run("app-json:report", *args), message, code)


def test_app_json_report_global() -> None:
    """Dokku's ``app-json:report --global``: the global and computed values only."""
    expected = (
        "=====> --global app-json information\n"
        "       App-json computed appjson path: app.json\n"
        "       App-json global appjson path:   app.json\n"
    )
    # No app is needed, and none is listed.
    assert ok("app-json:report", "--global") == expected
    ok("apps:create", "web")
    ok("app-json:set", "web", "appjson-path", "web.json")
    assert ok("app-json:report", "--global") == expected
    assert ok("app-json:report", "--global", "--app-json-global-appjson-path") == "\n"
    ok("app-json:set", "--global", "appjson-path", "g.json")
    assert ok("app-json:report", "--global", "--format", "json") == (
        '{"computed-appjson-path":"g.json","global-appjson-path":"g.json"}\n'
    )
    assert ok("scheduler:report", "--global", "--scheduler-computed-selected") == "docker-local\n"


# -- scheduler:set / scheduler:report -------------------------------------------------------

SCHEDULER_DEFAULT = (
    "=====> web scheduler information\n"
    "       Scheduler computed selected:     docker-local\n"
    "       Scheduler global selected:       docker-local\n"
    "       Scheduler selected:              \n"
    "       Scheduler computed shell:        \n"
    "       Scheduler global shell:          \n"
    "       Scheduler shell:                 \n"
    "       Scheduler computed task timeout: none\n"
    "       Scheduler global task timeout:   none\n"
    "       Scheduler task timeout:          \n"
)


def test_scheduler_report_defaults() -> None:
    ok("apps:create", "web")
    assert ok("scheduler:report", "web") == SCHEDULER_DEFAULT
    assert ok("scheduler:report", "web", "--scheduler-computed-selected") == "docker-local\n"
    assert ok("scheduler:report", "web", "--scheduler-global-selected") == "\n"
    assert json.loads(ok("scheduler:report", "web", "--format", "json")) == {
        "computed-selected": "docker-local",
        "global-selected": "",
        "selected": "",
        "computed-shell": "",
        "global-shell": "",
        "shell": "",
        "computed-task-timeout": "none",
        "global-task-timeout": "",
        "task-timeout": "",
    }


def test_scheduler_set_and_report(root: Path) -> None:
    ok("apps:create", "web")
    assert ok("scheduler:set", "web", "selected", "swarm") == "=====> Setting selected to swarm\n"
    assert ok("scheduler:set", "--global", "shell", "/bin/ash") == (
        "=====> Setting shell to /bin/ash\n"
    )
    assert ok("scheduler:set", "--global", "task-timeout", "600") == (
        "=====> Setting task-timeout to 600\n"
    )
    assert ok("scheduler:set", "web", "task-timeout", "None") == (
        "=====> Setting task-timeout to none\n"
    )
    assert prop(root, "scheduler", "web", "selected").read_bytes() == b"swarm"
    assert prop(root, "scheduler", "web", "task-timeout").read_bytes() == b"none"
    assert ok("scheduler:report", "web") == (
        "=====> web scheduler information\n"
        "       Scheduler computed selected:     swarm\n"
        "       Scheduler global selected:       docker-local\n"
        "       Scheduler selected:              swarm\n"
        "       Scheduler computed shell:        /bin/ash\n"
        "       Scheduler global shell:          /bin/ash\n"
        "       Scheduler shell:                 \n"
        "       Scheduler computed task timeout: none\n"
        "       Scheduler global task timeout:   600\n"
        "       Scheduler task timeout:          none\n"
    )
    assert ok("scheduler:set", "web", "task-timeout") == "=====> Unsetting task-timeout\n"
    assert ok("scheduler:report", "web", "--scheduler-computed-task-timeout") == "600\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["web", "selected", "k8s"],
            "Invalid scheduler 'k8s', valid schedulers: docker-local, swarm",
        ),
        (
            ["web", "task-timeout", "0"],
            "Invalid task timeout '0': expected a number of seconds above 0 (or none for no timeout)",
        ),
        (
            ["--global", "task-timeout", "soon"],
            "Invalid task timeout 'soon': expected a number of seconds above 0 "
            "(or none for no timeout)",
        ),
        (
            ["web", "shell", "bash -x"],
            "Invalid shell 'bash -x': expected an absolute path such as /bin/sh, "
            "or a command name, without spaces",
        ),
        (
            ["web", "nope", "x"],
            "Invalid property specified, valid properties include: selected, shell, task-timeout",
        ),
    ],
)
def test_scheduler_set_errors(root: Path, args: list[str], message: str) -> None:
    ok("apps:create", "web")
    fails(run("scheduler:set", *args), message)
    assert not (root / "config").exists()


def test_scheduler_names_come_from_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    class Nomad:
        @hookimpl
        def register_schedulers(self, register: Any) -> None:
            register("nomad", lambda **_: None)

    install(monkeypatch, FakeDistribution("nomad-dist", "1", FakeEntryPoint("nomad", Nomad())))
    ok("apps:create", "web")
    assert ok("scheduler:set", "web", "selected", "nomad") == "=====> Setting selected to nomad\n"
    fails(
        run("scheduler:set", "web", "selected", "k8s"),
        "Invalid scheduler 'k8s', valid schedulers: docker-local, nomad, swarm",
    )


def test_namespace_commands_come_from_the_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        monkeypatch, FakeDistribution("d", "1", FakeEntryPoint("broken", error=ImportError("x")))
    )
    ok("apps:create", "web")  # a core command loads no plugin
    # NS:set and NS:report are registered by plugins: a broken one is one line.
    for args in (("scheduler:set", "web", "selected"), ("app-json:report", "web")):
        fails(run(*args), "Plugin 'broken' could not be loaded: ImportError: x")


# -- report and plugins ---------------------------------------------------------------------


@pytest.mark.usefixtures("seed")
def test_report_prints_every_section_in_hook_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager, "BUILTIN_PLUGINS", BUILTINS[:2])
    ok("apps:create", "web")
    scheduler_web = SCHEDULER_DEFAULT
    scheduler_node = SCHEDULER_DEFAULT.replace("web scheduler", "node-js-app scheduler")
    app_json_web = (
        SEED.replace("node-js-app", "web")
        .replace("path:          app2.json", "path:          ")
        .replace("appjson path: app2.json", "appjson path: app.json")
    )
    # pluggy calls the last registered plugin first.
    assert ok("report", "web") == scheduler_web + app_json_web
    assert ok("report") == scheduler_node + SEED + scheduler_web + app_json_web


def test_report_missing_app() -> None:
    fails(run("report", "web"), "App web does not exist", code=20)


def test_report_plugin_failure_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    class Bad:
        @hookimpl
        def report(self, app: str) -> None:
            raise RuntimeError(f"cannot report {app}\nmore detail")

    install(monkeypatch, FakeDistribution("bad-dist", "1", FakeEntryPoint("bad", Bad())))
    ok("apps:create", "web")
    fails(
        run("report", "web"), "Plugin 'bad' failed in hook report: RuntimeError: cannot report web"
    )
    # A namespace's own report is its own: another plugin's failing report cannot break it.
    assert ok("app-json:report", "web", "--app-json-computed-appjson-path") == "app.json\n"


def test_a_disabled_plugins_namespace_has_no_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    ok("apps:create", "web")
    monkeypatch.setenv(manager.DISABLE_ENV, "scheduler,app-json")
    fails(
        run("scheduler:report", "web"),
        "No such command 'scheduler:report'. See 'dokku-tasks --help'.",
    )
    assert ok("registry:report", "web", "--registry-server") == "\n"


def test_plugins_lists_builtins_and_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    class Greeter:
        @hookimpl
        def release(self, app: str) -> None:
            return None

        @hookimpl
        def deploy_finished(self, app: str) -> None:
            return None

    class Quiet:
        pass

    install(
        monkeypatch,
        FakeDistribution(
            "dokku-tasks-greeter",
            "2.0.1",
            FakeEntryPoint("greeter", Greeter()),
            FakeEntryPoint("quiet", Quiet()),
        ),
    )
    monkeypatch.setattr(manager, "BUILTIN_PLUGINS", BUILTINS[:2])
    assert ok("plugins") == (
        "app-json   built-in                   app_files, config_values, plan_tasks, post_deploy, pre_deploy, register_settings, report\n"
        "scheduler  built-in                   register_settings, report\n"
        "greeter    dokku-tasks-greeter 2.0.1  deploy_finished, release\n"
        "quiet      dokku-tasks-greeter 2.0.1  (no hooks)\n"
    )


def test_plugins_marks_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager, "BUILTIN_PLUGINS", BUILTINS[:2])
    monkeypatch.setenv(manager.DISABLE_ENV, "scheduler")
    assert ok("plugins") == (
        "app-json   built-in  app_files, config_values, plan_tasks, post_deploy, pre_deploy, register_settings, report\n"
        "scheduler  built-in  (disabled)\n"
    )


def test_plugin_import_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    error = ModuleNotFoundError("No module named 'requests_oauthlib'")
    install(monkeypatch, FakeDistribution("d", "1", FakeEntryPoint("broken", error=error)))
    fails(
        run("plugins"),
        "Plugin 'broken' could not be loaded: ModuleNotFoundError: "
        "No module named 'requests_oauthlib'",
    )


def test_misspelt_hook_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    class Typo:
        @hookimpl
        def post_deploi(self, app: str) -> None:
            return None

    install(monkeypatch, FakeDistribution("d", "1", FakeEntryPoint("typo", Typo())))
    result = run("plugins")
    assert result.exit_code == 1
    assert result.stderr.startswith(" !     Plugin 'typo' could not be loaded: ")
    assert "post_deploi" in result.stderr
    assert result.stderr.count("\n") == 1


def test_disabled_broken_plugin_is_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeDistribution("d", "1", FakeEntryPoint("broken", error=ImportError())))
    monkeypatch.setattr(manager, "BUILTIN_PLUGINS", BUILTINS[:2])
    monkeypatch.setenv(manager.DISABLE_ENV, "broken,no-such-plugin")
    assert ok("plugins") == (
        "app-json   built-in  app_files, config_values, plan_tasks, post_deploy, pre_deploy, register_settings, report\n"
        "scheduler  built-in  register_settings, report\n"
    )


def test_real_builtins(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """With the shipped built-in list, every command that loads plugins still works."""
    monkeypatch.setattr(manager, "BUILTIN_PLUGINS", REAL_BUILTINS)
    out = ok("plugins")
    for name, _ in manager.BUILTIN_PLUGINS:
        assert f"{name} " in out
    assert "scheduler " in out
    ok("apps:create", "web")
    out = ok("report", "web")
    assert "=====> web app-json information\n" in out
    assert "=====> web scheduler information\n" in out
    ok("scheduler:set", "web", "selected", "docker-local")
    assert ok("scheduler:report", "web", "--scheduler-selected") == "docker-local\n"


# -- deploy ---------------------------------------------------------------------------------


@pytest.fixture
def deploys(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace the pipeline: record each request and answer success."""
    calls: list[Any] = []

    def fake(request: Any, *, root: Path, output: Any, pm: Any = None) -> DeployResult:
        calls.append(types.SimpleNamespace(request=request, root=root, output=output, pm=pm))
        output.section(f"Application deployed: {request.app}")
        return DeployResult(app=request.app, image="sha256:x", tasks=())

    monkeypatch.setattr(pipeline, "deploy", fake)
    return calls


def test_deploy_builds_the_request(deploys: list[Any], root: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("FROM_FILE=1\nBOTH=file\n# comment\nexport QUOTED='a b'\n")
    out = ok(
        "deploy",
        "web",
        "--source",
        str(tmp_path),
        "--image",
        "busybox:latest",
        "-e",
        "BOTH=cli",
        "--env",
        "EMPTY=",
        "--env-file",
        str(env_file),
        "-v",
        "/srv/data:/data",
        "--volume",
        "/etc/ssl:/ssl:ro",
        "--network",
        "backend",
        "--task-timeout",
        "2.5",
        "--scheduler",
        "swarm",
    )
    assert out == "=====> Application deployed: web\n"
    (call,) = deploys
    assert call.request == pipeline.DeployRequest(
        app="web",
        source=tmp_path,
        image="busybox:latest",
        env={"FROM_FILE": "1", "BOTH": "cli", "QUOTED": "a b", "EMPTY": ""},
        mounts=(Mount("/srv/data", "/data"), Mount("/etc/ssl", "/ssl", read_only=True)),
        network="backend",
        task_timeout=2.5,
        scheduler="swarm",
    )
    assert call.root == root
    assert call.pm is not None


def test_deploy_defaults(deploys: list[Any]) -> None:
    ok("deploy", "web", "--image", "img")
    assert deploys[0].request == pipeline.DeployRequest(app="web", image="img")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "deploy needs --source DIR, --image IMAGE, or both"),
        (["--image", " "], "--image must name an image"),
        (["--image", "i", "-e", "NOEQUALS"], "Invalid -e value 'NOEQUALS': expected KEY=VALUE"),
        (
            ["--image", "i", "-e", "1X=y"],
            "Invalid -e value '1X=y': the key must match [A-Za-z_][A-Za-z0-9_]*",
        ),
        (
            ["--image", "i", "-v", "data:/data"],
            "Invalid -v value 'data:/data': the host path must be absolute",
        ),
        (
            ["--image", "i", "-v", "/a"],
            "Invalid -v value '/a': expected HOST:CONTAINER or HOST:CONTAINER:ro",
        ),
        (
            ["--image", "i", "--task-timeout", "0"],
            "Invalid task timeout '0': expected a number of seconds above 0",
        ),
        (
            ["--image", "i", "--task-timeout", "none"],
            "Invalid task timeout 'none': expected a number of seconds above 0",
        ),
        (
            ["--image", "i", "--scheduler", "k8s"],
            "Invalid scheduler 'k8s', valid schedulers: docker-local, swarm",
        ),
        (["--image", "i", "--network", ""], "--network must name a network"),
        (
            ["--image", "i", "--task-timeout"],
            "Option '--task-timeout' requires an argument. See 'dokku-tasks --help'.",
        ),
    ],
)
def test_deploy_bad_values(deploys: list[Any], root: Path, args: list[str], message: str) -> None:
    fails(run("deploy", "web", *args), message)
    assert deploys == []
    assert list(root.iterdir()) == []


def test_deploy_values_checked_before_plugins_load(
    monkeypatch: pytest.MonkeyPatch, deploys: list[Any]
) -> None:
    error = ImportError("boom")
    install(monkeypatch, FakeDistribution("d", "1", FakeEntryPoint("broken", error=error)))
    fails(
        run("deploy", "web", "--image", "i", "-e", "X"), "Invalid -e value 'X': expected KEY=VALUE"
    )
    fails(
        run("deploy", "web", "--image", "i"),
        "Plugin 'broken' could not be loaded: ImportError: boom",
    )


def test_deploy_scheduler_checked_against_plugins(
    monkeypatch: pytest.MonkeyPatch, deploys: list[Any]
) -> None:
    class Nomad:
        @hookimpl
        def register_schedulers(self, register: Any) -> None:
            register("nomad", lambda **_: None)

    install(monkeypatch, FakeDistribution("nomad-dist", "1", FakeEntryPoint("nomad", Nomad())))
    ok("deploy", "web", "--image", "i", "--scheduler", "nomad")
    assert deploys[0].request.scheduler == "nomad"
    fails(
        run("deploy", "web", "--image", "i", "--scheduler", "k8s"),
        "Invalid scheduler 'k8s', valid schedulers: docker-local, nomad, swarm",
    )


def test_deploy_env_file_errors(deploys: list[Any], tmp_path: Path) -> None:
    missing = tmp_path / "missing.env"
    fails(
        run("deploy", "web", "--image", "i", "--env-file", str(missing)),
        f"Cannot read env file {missing}: No such file or directory",
    )
    bad = tmp_path / "bad.env"
    bad.write_text("A=1\n\nB='unterminated\n")
    fails(
        run("deploy", "web", "--image", "i", "--env-file", str(bad)),
        f"Invalid {bad} at line 3: unterminated single quote in the value of B",
    )
    assert deploys == []


@pytest.mark.parametrize(
    ("error", "message", "code"),
    [
        (
            TaskFailedError("predeploy", "exit 7", 7),
            "Execution of predeploy task failed: exit 7 (exit status 7)",
            1,
        ),
        (
            SourceError("Source directory /x does not exist"),
            "Source directory /x does not exist",
            1,
        ),
        (AppNotFoundError("web"), "App web does not exist", 20),
        (
            InterruptedDeployError(2, "SIGINT"),
            "Deploy interrupted by SIGINT; task containers removed",
            130,
        ),
        (
            InterruptedDeployError(15, "SIGTERM"),
            "Deploy interrupted by SIGTERM; task containers removed",
            143,
        ),
    ],
)
def test_deploy_errors(
    monkeypatch: pytest.MonkeyPatch, error: Exception, message: str, code: int
) -> None:
    def fake(request: Any, **kwargs: Any) -> DeployResult:
        raise error

    monkeypatch.setattr(pipeline, "deploy", fake)
    fails(run("deploy", "web", "--image", "i"), message, code)


def test_deploy_keyboard_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(request: Any, **kwargs: Any) -> DeployResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "deploy", fake)
    fails(run("deploy", "web", "--image", "i"), "Interrupted", 130)


def test_deploy_failed_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(request: Any, **kwargs: Any) -> DeployResult:
        return DeployResult(app="web", image=None, tasks=(), error="release task failed")

    monkeypatch.setattr(pipeline, "deploy", fake)
    fails(run("deploy", "web", "--image", "i"), "release task failed", 1)


# -- the installed script, end to end -------------------------------------------------------


def _script_env(root: Path) -> dict[str, str]:
    env = {**os.environ, "DOKKU_TASKS_ROOT": str(root), "PYTHONPATH": str(REPO)}
    env.pop(manager.DISABLE_ENV, None)
    return env


@pytest.fixture
def script() -> Callable[..., subprocess.CompletedProcess[str]]:
    path = shutil.which("dokku-tasks")
    command = [path] if path else [sys.executable, "-m", "dokku_tasks"]

    def invoke(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args],
            env=_script_env(root),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return invoke


def test_script_help(script: Callable[..., subprocess.CompletedProcess[str]], root: Path) -> None:
    done = script(root, "--help")
    assert done.returncode == 0, done.stderr
    assert "app-json:report" in done.stdout


def test_script_seed_and_errors(
    script: Callable[..., subprocess.CompletedProcess[str]], root: Path
) -> None:
    assert script(root, "apps:create", "node-js-app").returncode == 0
    assert script(root, "app-json:set", "node-js-app", "appjson-path", "app2.json").returncode == 0
    done = script(root, "app-json:report", "node-js-app")
    assert (done.returncode, done.stdout) == (0, SEED)
    done = script(root, "app-json:report", "missing")
    assert (done.returncode, done.stderr) == (20, " !     App missing does not exist\n")
    done = script(root, "apps:create", "--global")
    assert done.returncode == 1
    assert done.stderr.startswith(" !     Invalid app name '--global'")
    assert done.stderr.count("\n") == 1
    done = script(root, "apps:destroy", "node-js-app")
    assert done.returncode == 1
    assert "Refusing to destroy node-js-app" in done.stderr


def test_module_entry_point(root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dokku_tasks", "apps:list"],
        env=_script_env(root),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        0,
        " !     You haven't deployed any applications yet\n",
    )


def _probe(root: Path, code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_script_env(root),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_command_starts_and_ends_without_a_collection(root: Path) -> None:
    """The console script turns the collector off before it imports the CLI."""
    probe = (
        "import gc, sys\n"
        "from dokku_tasks import console\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: runs.append(info) if phase == 'start' else None)\n"
        "sys.argv = ['dokku-tasks', 'apps:list']\n"
        "try:\n"
        "    console.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(len(runs), gc.isenabled(), 'dokku_tasks.cli' in sys.modules)\n"
    )
    assert _probe(root, probe) == ["0", "False", "True"]


@pytest.mark.parametrize("engine", [True, False])
def test_a_long_command_collects_once_started(root: Path, engine: bool) -> None:
    """deploy and run turn the collector back on, with start-up frozen and (for the engine)
    the engine's modules imported first, but never the Docker SDK: the engine's own HTTP
    client speaks to it."""
    probe = (
        "import gc, sys\n"
        "from dokku_tasks import cli\n"
        "gc.disable()\n"
        f"cli.long_running(engine={engine})\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 0, 'dokku_tasks.engine_api' in sys.modules,"
        " 'docker' in sys.modules, 'requests' in sys.modules)\n"
    )
    assert _probe(root, probe) == ["True", "True", str(engine), "False", "False"]


def test_a_command_run_in_process_leaves_the_collector_alone() -> None:
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    cli_module.long_running(engine=False)
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_import_loads_no_plugins_and_help_no_docker(root: Path) -> None:
    probe = (
        "import sys, dokku_tasks.cli; "
        "print(sorted(m for m in sys.modules if m == 'docker' or m.startswith(('docker.', "
        "'dokku_tasks.plugins', 'dokku_tasks.manager', 'dokku_tasks.pipeline', "
        "'dokku_tasks.engine')))); "
        "from dokku_tasks.cli import cli; "
        "cli.main(['--help'], standalone_mode=False); "
        "print(sorted(m for m in sys.modules if m == 'docker' or m.startswith(('docker.', "
        "'dokku_tasks.plugins', 'dokku_tasks.manager', 'dokku_tasks.pipeline', "
        "'dokku_tasks.engine'))))"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        env=_script_env(root),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "[]"
    # --help lists the plugins' commands (their namespaces), so it loads them; never Docker.
    after_help = lines[-1]
    assert "'dokku_tasks.manager'" in after_help
    assert "docker" not in after_help.replace("dokku_tasks.plugins.docker_local", "")
    imported = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "docker" not in imported
    assert "dokku_tasks.cli" in imported


def test_deploy_refuses_an_unknown_phase_to_skip(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text("FROM scratch\n")
    fails(
        run("deploy", "web", "--source", str(source), "--skip", "release", "--skip", "nope"),
        "Unknown phase 'nope' to skip: expected one of predeploy, release, postdeploy, "
        "heroku.postdeploy",
    )


def test_a_late_ctrl_c_does_not_replace_the_interrupted_deploys_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second SIGINT that lands while the deploy's own interruption is on its way up (after
    the deploy put Python's handler back) must not turn the line into ``Interrupted``."""
    import click

    from dokku_tasks import cli as cli_module
    from dokku_tasks.errors import InterruptedDeployError

    ignored: list[int] = []
    monkeypatch.setattr(cli_module.signal, "signal", lambda signum, handler: ignored.append(signum))

    @click.command()
    def stopped() -> None:
        try:
            raise InterruptedDeployError(2, "SIGINT")
        finally:
            raise KeyboardInterrupt  # the late Ctrl-C, raised while the first is in flight

    @click.command()
    def plain() -> None:
        raise KeyboardInterrupt

    for command, line, code in (
        (stopped, " !     Deploy interrupted by SIGINT; task containers removed", 130),
        (plain, " !     Interrupted", 130),
    ):
        group = cli_module._Group("t", commands={"go": command})
        result = CliRunner().invoke(group, ["go"])
        assert (result.exit_code, result.stderr.splitlines()) == (code, [line])
    assert ignored == [signal.SIGINT, signal.SIGTERM]  # for the stopped deploy's line only
    assert cli_module._in_flight_interruption(KeyboardInterrupt()) is None
