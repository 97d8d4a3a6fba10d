"""Apps: the name rules, create, destroy (with its properties) and list."""

from __future__ import annotations

from pathlib import Path

import pytest

from dokku_tasks.apps import AppRegistry, validate_app_name
from dokku_tasks.errors import AppExistsError, AppNotFoundError, InvalidAppNameError
from dokku_tasks.properties import GLOBAL

INVALID = [
    "../x",
    "UPPER",
    "a b",
    "--global",
    "",
    "-leading",
    "a_b",
    "a.b",
    "x/y",
    "a" * 64,
    "é",
    "web\n",
]


@pytest.mark.parametrize("name", ["a", "0", "node-js-app", "a--b", "9lives", "a" * 63])
def test_valid_names(name: str) -> None:
    assert validate_app_name(name) == name


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidAppNameError) as info:
        validate_app_name(name)
    assert info.value.message == (
        f"Invalid app name {name!r}: use lowercase letters, digits and dashes, "
        "starting and ending with a letter or digit, at most 63 characters"
    )
    assert info.value.exit_code == 1


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names_touch_nothing(tmp_path: Path, name: str) -> None:
    root = tmp_path / "state"
    registry = AppRegistry(root)
    for call in (registry.create, registry.destroy, registry.exists, registry.require):
        with pytest.raises(InvalidAppNameError):
            call(name)
    assert not root.exists()


def test_create_list_exists(root: Path) -> None:
    registry = AppRegistry(root)
    assert registry.list() == []
    registry.create("web")
    registry.create("api")
    assert (root / "apps" / "web").is_dir()
    assert registry.exists("web")
    assert not registry.exists("worker")
    assert registry.list() == ["api", "web"]
    assert registry.require("web") == "web"


def test_create_existing(root: Path) -> None:
    registry = AppRegistry(root)
    registry.create("web")
    with pytest.raises(AppExistsError) as info:
        registry.create("web")
    assert info.value.message == "Name is already taken: web"
    assert info.value.exit_code == 1


def test_require_missing_is_exit_20(root: Path) -> None:
    with pytest.raises(AppNotFoundError) as info:
        AppRegistry(root).require("web")
    assert info.value.message == "App web does not exist"
    assert info.value.exit_code == 20


def test_list_skips_what_is_not_an_app(root: Path) -> None:
    registry = AppRegistry(root)
    registry.create("web")
    (root / "apps" / ".hidden").mkdir()
    (root / "apps" / "UPPER").mkdir()
    (root / "apps" / "file").write_text("")
    assert registry.list() == ["web"]


def test_destroy_removes_app_and_its_properties(root: Path) -> None:
    registry = AppRegistry(root)
    registry.create("web")
    registry.create("api")
    store = registry.properties
    store.set("app-json", "web", "appjson-path", "x.json")
    store.set("app-json", "web", "heroku.postdeploy", "executed")
    store.set("scheduler", "web", "selected", "swarm")
    store.set("app-json", "api", "appjson-path", "api.json")
    store.set("app-json", GLOBAL, "appjson-path", "g.json")
    registry.destroy("web")
    assert not registry.exists("web")
    assert not (root / "apps" / "web").exists()
    assert not (root / "config" / "app-json" / "web").exists()
    assert not (root / "config" / "scheduler" / "web").exists()
    assert store.get("app-json", "api", "appjson-path") == "api.json"
    assert store.get("app-json", GLOBAL, "appjson-path") == "g.json"
    assert registry.list() == ["api"]
    # A new app of the same name starts clean (heroku.postdeploy runs again).
    registry.create("web")
    assert store.get("app-json", "web", "heroku.postdeploy") == ""


def test_destroy_missing(root: Path) -> None:
    with pytest.raises(AppNotFoundError):
        AppRegistry(root).destroy("web")
