"""A state root that cannot take a property write (a full disk) during a deploy, without
Docker: the once-only heroku.postdeploy never runs twice and never runs unmarked."""

from __future__ import annotations

from pathlib import Path

import pytest

from dokku_tasks.errors import PropertyError
from dokku_tasks.properties import PropertyStore
from tests.conftest import Captured, write_app
from tests.test_pipeline import APP_JSON, PROCFILE, Harness


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_app(
        tmp_path / "src",
        {"Dockerfile": "FROM scratch\n", "Procfile": PROCFILE, "app.json": APP_JSON},
    )


def disk_full_for(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Writing the properties ``names`` fails as on a full disk (the line PropertyStore gives)."""
    original = PropertyStore.set

    def set_(self: PropertyStore, plugin: str, app: str, name: str, value: str) -> None:
        if name in names:
            path = self.path(plugin, app, name)
            raise PropertyError(f"Cannot write property {path}: No space left on device")
        original(self, plugin, app, name, value)

    monkeypatch.setattr(PropertyStore, "set", set_)


def test_a_once_only_postdeploy_that_cannot_be_marked_does_not_run_until_it_can(
    root: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness(root)
    with monkeypatch.context() as patch:
        disk_full_for(patch, "heroku.postdeploy")
        with pytest.raises(PropertyError) as failed:
            harness.deploy(source, Captured())
    assert failed.value.message == (
        f"Cannot write property {root}/config/app-json/web/heroku.postdeploy: "
        "No space left on device"
    )
    assert "postdeploy: ./warm" in harness.log
    assert "heroku.postdeploy: ./seed" not in harness.log  # never run unmarked
    # Once there is room it runs, once.
    harness.log.clear()
    harness.deploy(source, Captured())
    assert "heroku.postdeploy: ./seed" in harness.log
    harness.log.clear()
    harness.deploy(source, Captured())
    assert "heroku.postdeploy: ./seed" not in harness.log


def test_a_deploy_that_cannot_record_its_first_deploy_fails_without_rerunning_the_once_only(
    root: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness(root)
    with monkeypatch.context() as patch:
        disk_full_for(patch, "deployed")
        with pytest.raises(PropertyError, match="common/web/deployed: No space left on device"):
            harness.deploy(source, Captured())
    assert "heroku.postdeploy: ./seed" in harness.log
    # The app's first deploy is not recorded as done, but the once-only task's own marker is:
    # the next deploy does not run it again.
    harness.log.clear()
    harness.deploy(source, Captured())
    assert "postdeploy: ./warm" in harness.log
    assert "heroku.postdeploy: ./seed" not in harness.log
