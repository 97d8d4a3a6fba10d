"""deploy --plan on the real engine: nothing is written there (no event at all), on a fresh
app and on one whose once-only postdeploy already ran."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_app
from tests.deploys import DOCKERFILE, WEB_ONLY, dokku

pytestmark = pytest.mark.engine

APP_JSON = {
    "scripts": {"dokku": {"predeploy": "echo compiled"}, "postdeploy": "echo seeded"},
}


def engine_events(app: str, since: float, until: float) -> list[str]:
    """The engine's events in the window about the app's containers (other tests may share
    the engine meanwhile)."""
    done = subprocess.run(
        [
            "docker",
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{until:.3f}",
            "--filter",
            f"label=com.dokku.app-name={app}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


def app_images(client: Any, app: str) -> list[tuple[str, tuple[str, ...]]]:
    found = client.images.list(all=True, filters={"label": f"com.dokku.app-name={app}"})
    found += client.images.list(name=f"dokku/{app}")
    return sorted({(image.id, tuple(sorted(image.tags))) for image in found})


def planned(client: Any, root: Path, app: str, *args: str) -> tuple[dict[str, Any], list[str]]:
    images = app_images(client, app)
    time.sleep(1.1)  # docker events has a resolution of seconds at its edges
    began = time.time()
    done = dokku(root, "deploy", app, *args, "--plan", "--format", "jsonl")
    ended = time.time()
    time.sleep(1.1)
    assert done.returncode == 0, done.stderr
    # No tag moved, no image made or removed.
    assert app_images(client, app) == images
    return json.loads(done.stdout), engine_events(app, began, ended)


def test_a_plan_writes_nothing_on_the_engine_nor_in_the_state_root(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, build_image: Any
) -> None:
    files = {"Procfile": "release: echo released\n" + WEB_ONLY, "app.json": json.dumps(APP_JSON)}
    image = build_image(DOCKERFILE, files)
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, **files})
    before = sorted(str(p) for p in root.rglob("*"))
    fresh, events = planned(
        docker_client, root, engine_app, "--image", image, "--source", str(source)
    )
    assert events == []
    assert sorted(str(p) for p in root.rglob("*")) == before
    assert fresh["first_deploy"] is True
    tasks = [(t["phase"], t["command"]) for p in fresh["phases"] for t in p["tasks"]]
    assert tasks == [
        ("predeploy", "echo compiled"),
        ("release", "echo released"),
        ("heroku.postdeploy", "echo seeded"),
    ]
    assert all(t["rule"] == "shell: no ENTRYPOINT" for p in fresh["phases"] for t in p["tasks"])

    # The same window around a real deploy sees its containers: the probe would see a write.
    began = time.time()
    deployed = dokku(root, "deploy", engine_app, "--image", image, "--source", str(source))
    assert deployed.returncode == 0, deployed.stderr
    time.sleep(1.1)
    assert any(" container create " in e for e in engine_events(engine_app, began, time.time()))
    again, events = planned(
        docker_client, root, engine_app, "--image", image, "--source", str(source)
    )
    assert events == []
    assert again["first_deploy"] is False
    assert [t["command"] for p in again["phases"] for t in p["tasks"]] == [
        "echo compiled",
        "echo released",
    ]
    assert again["notes"] == [
        "heroku.postdeploy: skipped: it runs once, and the app's first deploy is done"
    ]
