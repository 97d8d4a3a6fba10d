"""The ``ps`` ``procfile-path`` property: ``ps:set``, ``ps:report``, and where the procfile plugin
reads the Procfile (the deploys themselves are in test_procfile_path_engine.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dokku_tasks.plugins.procfile import app_files
from dokku_tasks.properties import GLOBAL, PropertyStore
from tests.cli_runs import builtins_only, ok, run


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """The built-ins, no installed plugin, a fresh state root with the app ``web``."""
    builtins_only(monkeypatch, root, "web")


def test_global_procfile_path_round_trip() -> None:
    # Dokku's ps-general-1.bats "(ps:set) procfile".
    assert ok("ps:set", "--global", "procfile-path", ".dokku/Procfile") == (
        "=====> Setting procfile-path to .dokku/Procfile\n"
    )
    assert ok("ps:report", "web", "--ps-computed-procfile-path") == ".dokku/Procfile\n"
    assert ok("ps:report", "web", "--ps-global-procfile-path") == ".dokku/Procfile\n"
    assert ok("ps:report", "web", "--ps-procfile-path") == "\n"
    assert ok("ps:set", "--global", "procfile-path") == "=====> Unsetting procfile-path\n"
    assert ok("ps:report", "web", "--ps-computed-procfile-path") == "Procfile\n"
    assert ok("ps:report", "web", "--ps-global-procfile-path") == "\n"
    assert ok("ps:report", "web", "--ps-procfile-path") == "\n"


def test_report_shows_the_three_rows_and_json_keys() -> None:
    ok("ps:set", "web", "procfile-path", "deploy/Procfile")
    out = ok("ps:report", "web")
    assert "       Ps computed procfile path:" in out and out.count("deploy/Procfile") == 2
    assert "       Ps global procfile path:" in out
    report = json.loads(ok("ps:report", "--global", "--format", "json"))
    assert report["computed-procfile-path"] == "Procfile"
    assert report["global-procfile-path"] == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("///", "Invalid procfile-path '///': it must name a file"),
        (
            "../Procfile",
            "Invalid procfile-path '../Procfile': it must stay inside the source tree "
            "(or the image's WORKDIR)",
        ),
        (
            "a/../../Procfile",
            "Invalid procfile-path 'a/../../Procfile': it must stay inside the source tree "
            "(or the image's WORKDIR)",
        ),
    ],
)
def test_paths_that_name_no_file_or_leave_the_base_are_refused(
    root: Path, value: str, message: str
) -> None:
    result = run("ps:set", "web", "procfile-path", value)
    assert (result.exit_code, result.stderr) == (1, f" !     {message}\n")
    assert PropertyStore(root).get("ps", "web", "procfile-path") == ""


def test_the_procfile_plugin_reads_the_computed_path(root: Path) -> None:
    store = PropertyStore(root)
    assert [f.path for f in app_files("web", store)] == ["Procfile"]
    store.set("ps", GLOBAL, "procfile-path", "global.Procfile")
    assert [f.path for f in app_files("web", store)] == ["global.Procfile"]
    store.set("ps", "web", "procfile-path", "/second.Procfile/")
    [file] = app_files("web", store)
    assert (file.path, file.setting, file.name) == (
        "/second.Procfile/",
        "procfile-path",
        "Procfile",
    )
