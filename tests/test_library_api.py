"""The library API: what ``import dokku_tasks`` offers, with the command line's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

import dokku_tasks
from dokku_tasks import (
    AppNotFoundError,
    DokkuTasksError,
    TaskFailedError,
    create_app,
    destroy_app,
    get_setting,
    list_apps,
    set_setting,
)
from dokku_tasks.errors import AppExistsError, InvalidAppNameError, PropertyError, UsageError
from dokku_tasks.properties import GLOBAL


def test_the_api_is_visible_and_every_name_resolves() -> None:
    names = dir(dokku_tasks)
    for name in dokku_tasks.__all__:
        assert name in names
        assert getattr(dokku_tasks, name) is not None
    with pytest.raises(AttributeError):
        _ = dokku_tasks.nothing_here  # type: ignore[attr-defined]


def test_apps_with_a_str_or_a_path_root(tmp_path: Path) -> None:
    create_app("web", root=str(tmp_path))
    create_app("api", root=tmp_path)
    assert list_apps(root=str(tmp_path)) == ["api", "web"]
    with pytest.raises(AppExistsError) as taken:
        create_app("web", root=tmp_path)
    assert taken.value.message == "Name is already taken: web"
    with pytest.raises(InvalidAppNameError):
        create_app("Bad-", root=tmp_path)


def test_destroy_app_without_an_engine_still_removes_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    create_app("web", root=tmp_path)
    destroy_app("web", root=str(tmp_path))
    assert list_apps(root=tmp_path) == []
    with pytest.raises(AppNotFoundError) as missing:
        destroy_app("web", root=tmp_path)
    assert missing.value.exit_code == 20


def test_settings_are_checked_as_on_the_command_line(tmp_path: Path) -> None:
    create_app("web", root=tmp_path)
    assert get_setting("scheduler", "web", "task-timeout", root=tmp_path) == "none"
    result = set_setting("scheduler", "web", "task-timeout", "30", root=str(tmp_path))
    assert result.message == "Setting task-timeout to 30"
    set_setting("app-json", GLOBAL, "appjson-path", "deploy/app.json", root=tmp_path)
    assert get_setting("scheduler", "web", "task-timeout", root=tmp_path) == "30"
    assert get_setting("app-json", "web", "appjson-path", root=tmp_path) == "deploy/app.json"
    with pytest.raises(PropertyError) as bad:
        set_setting("scheduler", "web", "task-timeout", "soon", root=tmp_path)
    assert bad.value.message.startswith("Invalid task timeout 'soon'")
    with pytest.raises(UsageError, match="Unknown settings namespace 'nope'"):
        get_setting("nope", "web", "x", root=tmp_path)
    with pytest.raises(AppNotFoundError):
        set_setting("scheduler", "ghost", "shell", "/bin/sh", root=tmp_path)


def test_a_failed_task_carries_its_own_status_apart_from_the_commands() -> None:
    failure = TaskFailedError("release", "./migrate", 7)
    assert failure.task_exit_status == 7
    assert failure.exit_code == 1
    assert isinstance(failure, DokkuTasksError)
