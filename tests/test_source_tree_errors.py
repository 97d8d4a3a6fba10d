"""A source tree whose app.json or Procfile cannot be read: one line, no traceback (issue 9, B).

A symlink loop made ``Path.resolve`` raise ``RuntimeError: Symlink loop``; now it is the same
``Cannot read PATH: REASON`` line as any other file that cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dokku_tasks import locate
from dokku_tasks.cli import cli
from dokku_tasks.errors import SourceError
from tests.conftest import BASE_IMAGE, write_app

LOOP = "Too many levels of symbolic links"


def test_app_json_that_links_to_itself(tmp_path: Path) -> None:
    (tmp_path / "app.json").symlink_to("app.json")
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tmp_path, "app.json")
    assert info.value.message == f"Cannot read {tmp_path.resolve()}/app.json: {LOOP}"


def test_procfile_in_a_two_link_loop(tmp_path: Path) -> None:
    (tmp_path / "Procfile").symlink_to("other")
    (tmp_path / "other").symlink_to("Procfile")
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tmp_path, locate.PROCFILE, "Procfile path")
    assert info.value.message == f"Cannot read {tmp_path.resolve()}/Procfile: {LOOP}"


def test_loop_in_a_directory_on_the_path(tmp_path: Path) -> None:
    (tmp_path / "deploy").symlink_to("deploy")
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tmp_path, "deploy/app.json")
    assert info.value.message == f"Cannot read {tmp_path.resolve()}/deploy/app.json: {LOOP}"


def test_path_through_a_file_is_no_file(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("")
    assert locate.read_source_file(tmp_path, "Dockerfile/app.json") is None


@pytest.mark.engine
def test_deploy_with_an_app_json_symlink_loop(engine_app: str, tmp_path: Path) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": f"FROM {BASE_IMAGE}\n"})
    (source / "app.json").symlink_to("app.json")
    result = CliRunner().invoke(
        cli, ["--root", str(tmp_path / "state"), "deploy", engine_app, "--source", str(source)]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1
    assert result.stderr == f" !     Cannot read {source.resolve()}/app.json: {LOOP}\n"
