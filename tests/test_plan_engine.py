"""deploy --plan on the real engine: nothing is written there (no event at all), on a fresh
app and on one whose once-only postdeploy already ran."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINI_IMAGE, write_app
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


TINI_APP_JSON = {
    "scripts": {"dokku": {"predeploy": "echo compiled", "postdeploy": "echo warm"}},
}
TINI_RULE = "shell: tini ENTRYPOINT (/usr/bin/tini --)"


def deployed_tasks(root: Path, app: str, image: str) -> list[tuple[str, str, list[str], str]]:
    """Deploy ``image`` (no source tree); the tasks it ran: phase, command, argv, rule."""
    done = dokku(root, "deploy", app, "--image", image, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    return [
        (e["phase"], e["command"], e["argv"], e["rule"])
        for e in events
        if e["event"] == "task_started"
    ]


def plan_tasks(plan: dict[str, Any]) -> list[tuple[str, str, list[str], str]]:
    return [
        (t["phase"], t["command"], t["argv"], t["rule"]) for p in plan["phases"] for t in p["tasks"]
    ]


def test_a_plan_of_an_image_reads_its_files_from_the_layers_without_a_container(
    docker_client: Any, engine_app: str, root: Path, build_image: Any
) -> None:
    # app.json and the Procfile in a lower layer (a layer is added over them) ...
    layered = build_image(
        f"FROM {TINI_IMAGE}\nWORKDIR /app\nCOPY . /app\nRUN echo later > /app/later.txt\n"
        'ENTRYPOINT ["/usr/bin/tini", "--"]\nCMD ["sleep", "3600"]\n',
        {
            "Procfile": "release: echo released\n" + WEB_ONLY,
            "app.json": json.dumps(
                {
                    **TINI_APP_JSON,
                    "scripts": {**TINI_APP_JSON["scripts"], "postdeploy": "echo seeded"},
                }
            ),
        },
    )
    # ... and the same image with app.json deleted in an upper layer (a whiteout).
    deleted = build_image(f"FROM {layered}\nRUN rm /app/app.json\n")

    fresh, events = planned(docker_client, root, engine_app, "--image", layered)
    assert events == []
    assert fresh["files_read"] is True and fresh["unresolved"] == []
    assert fresh["files"] == {
        "app.json": "/app/app.json in the image",
        "Procfile": "/app/Procfile in the image",
    }
    tasks = plan_tasks(fresh)
    assert [(phase, command, rule) for phase, command, _, rule in tasks] == [
        ("predeploy", "echo compiled", TINI_RULE),
        ("release", "echo released", TINI_RULE),
        ("postdeploy", "echo warm", TINI_RULE),
        ("heroku.postdeploy", "echo seeded", TINI_RULE),
    ]
    assert all(
        argv[-1] == f"set -e; set -o pipefail || true; {command}" for _, command, argv, _ in tasks
    )
    assert [p["process_type"] for p in fresh["processes"]] == ["web"]

    gone, events = planned(docker_client, root, engine_app, "--image", deleted)
    assert events == []
    assert gone["files"]["app.json"] == "none at /app/app.json in the image"
    assert [t[:2] for t in plan_tasks(gone)] == [("release", "echo released")]

    # What the plans said is what the deploys, reading through a container, do.
    assert deployed_tasks(root, engine_app, layered) == tasks
    again, events = planned(docker_client, root, engine_app, "--image", deleted)
    assert events == []
    assert deployed_tasks(root, engine_app, deleted) == plan_tasks(again) == plan_tasks(gone)
