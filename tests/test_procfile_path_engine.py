"""The ``ps`` ``procfile-path`` property in deploys on the real Docker engine.

Cases marked "ports Dokku ..." follow Dokku's own bats tests (tests/unit/ps-general-2.bats,
builder-dockerfile.bats); Dokku's ``ps:rebuild`` is a second ``deploy`` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_app
from tests.deploys import DOCKERFILE, dokku

pytestmark = pytest.mark.engine

#: The web command of each Procfile says which file it came from (Dokku's fixture prints
#: "Arg: first.Procfile"); only the first has a release task.
FIRST = (
    "release: echo SECRET_KEY: from first.Procfile\n"
    "web: sh -c \"trap 'exit 0' TERM; echo Arg: first.Procfile; sleep 3600 & wait\"\n"
)
SECOND = "web: sh -c \"trap 'exit 0' TERM; echo Arg: second.Procfile; sleep 3600 & wait\"\n"


def web_cmd(client: Any, app: str) -> list[str]:
    cmd: list[str] = client.containers.get(f"{app}.web.1").attrs["Config"]["Cmd"]
    return cmd


def deploy(root: Path, app: str, *args: str) -> str:
    done = dokku(root, "deploy", app, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_procfile_path_picks_the_procfile_of_each_deploy(
    docker_client: Any, root: Path, engine_app: str, tmp_path: Path
) -> None:
    # Ports Dokku ps-general-2.bats "(ps:set) procfile-path".
    source = write_app(
        tmp_path / "src",
        {"Dockerfile": DOCKERFILE, "Procfile": FIRST, "second.Procfile": SECOND},
    )
    out = deploy(root, engine_app, "--source", str(source))
    assert "SECRET_KEY:" in out
    assert "Arg: first.Procfile" in " ".join(web_cmd(docker_client, engine_app))

    assert dokku(root, "ps:set", engine_app, "procfile-path", "second.Procfile").returncode == 0
    out = deploy(root, engine_app, "--source", str(source))
    assert "SECRET_KEY:" not in out
    assert "       No release task found, skipping\n" in out
    assert "Arg: second.Procfile" in " ".join(web_cmd(docker_client, engine_app))

    assert dokku(root, "ps:set", engine_app, "procfile-path").returncode == 0
    out = deploy(root, engine_app, "--source", str(source))
    assert "SECRET_KEY: from first.Procfile" in out
    assert "Arg: first.Procfile" in " ".join(web_cmd(docker_client, engine_app))


def test_a_procfile_path_that_names_no_file_means_no_procfile(
    docker_client: Any, root: Path, engine_app: str, tmp_path: Path
) -> None:
    # Ports the "nonexistent-procfile" step of Dokku ps-general-2.bats "(ps:set) procfile-path":
    # Dokku's buildpack app then has nothing to start and fails; an image with a CMD runs it.
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": FIRST})
    dokku(root, "apps:create", engine_app)
    dokku(root, "ps:set", engine_app, "procfile-path", "nonexistent-procfile")
    out = deploy(root, engine_app, "--source", str(source))
    assert "No release task found, skipping" in out
    assert web_cmd(docker_client, engine_app) == ["sleep", "3600"]


def test_procfile_path_in_an_image_is_relative_to_its_workdir(
    docker_client: Any, build_image: Any, root: Path, engine_app: str
) -> None:
    # Ports Dokku builder-dockerfile.bats "exec": a missing custom appjson-path and a custom
    # procfile-path, here read from the image's WORKDIR.
    image = build_image(
        DOCKERFILE,
        {"config/exec.Procfile": FIRST.replace("first.Procfile", "exec.Procfile")},
    )
    dokku(root, "apps:create", engine_app)
    assert dokku(root, "app-json:set", engine_app, "appjson-path", "app.json-fake").returncode == 0
    assert (
        dokku(root, "ps:set", engine_app, "procfile-path", "/config/exec.Procfile/").returncode == 0
    )
    out = deploy(root, engine_app, "--image", image)
    assert "SECRET_KEY: from exec.Procfile" in out
    assert "Arg: exec.Procfile" in " ".join(web_cmd(docker_client, engine_app))


def test_a_procfile_path_leading_out_of_the_tree_stops_the_deploy(
    root: Path, engine_app: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.Procfile"
    outside.write_text(FIRST)
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": FIRST})
    (source / "linked.Procfile").symlink_to(outside)
    dokku(root, "apps:create", engine_app)
    dokku(root, "ps:set", engine_app, "procfile-path", "linked.Procfile")
    done = dokku(root, "deploy", engine_app, "--source", str(source))
    assert done.returncode == 1
    assert done.stderr.startswith(" !     The procfile-path 'linked.Procfile' leads outside")
