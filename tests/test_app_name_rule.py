"""The app name rule agrees with Docker's image reference grammar (issue 9, item C).

An app's image is ``dokku/APP:latest``, so APP must be a valid path component of a Docker
repository: lowercase letters and digits, separated by ``.``, ``_``, ``__`` or one or more
``-``.  Our names use only the dashes, so a name may not start or end with one.  ``a-`` used
to be accepted by ``apps:create`` and then failed every deploy with ``invalid reference
format``; now it is refused up front, with a message that states the rule.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dokku_tasks.apps import MAX_APP_NAME_LENGTH, AppRegistry, validate_app_name
from dokku_tasks.cli import cli
from dokku_tasks.errors import InvalidAppNameError

# Docker's distribution/reference grammar for one path component.
DOCKER_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*")


def rule(name: str) -> str:
    return (
        f"Invalid app name {name!r}: use lowercase letters, digits and dashes, "
        "starting and ending with a letter or digit, at most 63 characters"
    )


@pytest.mark.parametrize(
    "name", ["a", "a-b", "a--b", "a---b-c", "0-9", "a" * 63, "a" + "-" * 61 + "b"]
)
def test_valid(name: str) -> None:
    assert validate_app_name(name) == name
    assert DOCKER_PATH_COMPONENT.fullmatch(name)


@pytest.mark.parametrize("name", ["a-", "-a", "-", "--", "a--", "a-b-", "a" * 64, "a" * 62 + "-"])
def test_invalid(name: str) -> None:
    with pytest.raises(InvalidAppNameError) as info:
        validate_app_name(name)
    assert info.value.message == rule(name)


def test_length_limit() -> None:
    assert MAX_APP_NAME_LENGTH == 63


@pytest.mark.parametrize(
    "name", ["a", "a-b", "a--b", "a-", "-a", "a_b", "a.b", "a__b", "A", "a" * 63, "a" * 64, ""]
)
def test_every_valid_name_is_a_docker_path_component(name: str) -> None:
    try:
        validate_app_name(name)
    except InvalidAppNameError:
        return
    assert DOCKER_PATH_COMPONENT.fullmatch(name)
    assert len(f"dokku/{name}") <= 255


@pytest.mark.parametrize("name", ["a-", "z9-"])
def test_apps_create_refuses_a_trailing_dash(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "apps:create", name])
    assert result.exit_code == 1
    assert result.stderr == f" !     {rule(name)}\n"
    assert result.stdout == ""
    assert not (tmp_path / "apps").exists()


def test_deploy_refuses_a_trailing_dash_before_anything(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "deploy", "web-", "--image", "img"])
    assert result.exit_code == 1
    assert result.stderr == f" !     {rule('web-')}\n"
    assert list(tmp_path.iterdir()) == []


def test_list_leaves_out_a_directory_with_a_trailing_dash(tmp_path: Path) -> None:
    (tmp_path / "apps" / "web-").mkdir(parents=True)
    (tmp_path / "apps" / "web").mkdir()
    assert AppRegistry(tmp_path).list() == ["web"]
