"""deploys:retry on the real engine: a failed release is run again on the image its deploy
committed, with no rebuild and no second predeploy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_app
from tests.deploys import DOCKERFILE, WEB_ONLY, dokku

pytestmark = pytest.mark.engine


def test_retry_after_a_failed_release_reuses_the_committed_image(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "Procfile": "release: test -f /data/ready && echo released || exit 7\n" + WEB_ONLY,
            "app.json": {"scripts": {"dokku": {"predeploy": "echo compiled > /app/compiled"}}},
        },
    )
    failed = dokku(
        root, "deploy", engine_app, "--source", str(source), "-v", f"{data}:/data", "-e", "K=v"
    )
    assert failed.returncode == 1
    committed = docker_client.images.get(f"dokku/{engine_app}:failed").id
    (data / "ready").write_text("")

    retried = dokku(root, "deploys:retry", engine_app, "-e", "K=v")
    assert retried.returncode == 0, retried.stderr
    lines = retried.stdout.splitlines()
    assert lines[0] == (
        f"-----> Retrying deploy 1 of {engine_app} from its release phase on image "
        f"dokku/{engine_app}:failed"
    )
    assert "-----> Skipping predeploy phase (--skip predeploy)" in lines
    assert not any(line.startswith("-----> Building") for line in lines)
    assert "       released" in lines
    # The retry deployed the very image the failed deploy committed; nothing was rebuilt.
    assert docker_client.images.get(f"dokku/{engine_app}:latest").id == committed
    web = docker_client.containers.get(f"{engine_app}.web.1")
    assert web.image.id == committed
    assert web.exec_run(["cat", "/app/compiled"]).output == b"compiled\n"
    # Mounts come from the failed deploy's record; the retry is a deploy of its own.
    listed = dokku(root, "deploys:list", engine_app)
    assert listed.stdout.splitlines()[2].split()[:2] == ["2", "succeeded"]
    again = dokku(root, "deploys:retry", engine_app)
    assert again.returncode == 1
    assert again.stderr == (
        f" !     Deploy 2 of {engine_app} did not fail in a phase (succeeded): nothing to retry\n"
    )
