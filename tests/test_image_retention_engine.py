"""What a deploy keeps of an app's images on the real engine: what rollback and retry need
(``latest``, ``previous``, ``failed``), nothing else; ``apps:destroy`` removes them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_app
from tests.deploys import APP_LABEL, DOCKERFILE, WEB_ONLY, dokku, predeploy, retire_now

pytestmark = pytest.mark.engine


def app_images(client: Any, app: str) -> set[str]:
    """Every image id of the app: labelled with it or tagged ``dokku/APP``, layers included."""
    labelled = client.images.list(all=True, filters={"label": f"{APP_LABEL}={app}"})
    tagged = client.images.list(name=f"dokku/{app}")
    return {image.id for image in labelled + tagged}


def tag(client: Any, app: str, name: str) -> str | None:
    try:
        return str(client.images.get(f"dokku/{app}:{name}").id)
    except Exception:  # docker.errors.ImageNotFound; the SDK is imported lazily
        return None


def deploy_version(root: Path, app: str, directory: Path, version: int, **extra: Any) -> Any:
    files: dict[str, Any] = {
        "Dockerfile": f"{DOCKERFILE}ENV VERSION={version}\n",
        "Procfile": WEB_ONLY,
        "app.json": predeploy(f"echo {version} > /version"),
        **extra,
    }
    return dokku(root, "deploy", app, "--source", str(write_app(directory / str(version), files)))


def test_deploys_keep_the_latest_and_previous_images_only(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    for version in range(1, 5):
        done = deploy_version(root, engine_app, tmp_path, version)
        assert done.returncode == 0, done.stderr
    # The images the retiring containers still use go with them.
    retire_now(root)
    latest, previous = (
        tag(docker_client, engine_app, "latest"),
        tag(docker_client, engine_app, "previous"),
    )
    assert latest is not None and previous is not None and latest != previous
    # Each kept deploy is a committed predeploy image on top of its build: two chains of two.
    kept = app_images(docker_client, engine_app)
    assert {latest, previous} <= kept
    parents = {docker_client.images.get(i).attrs["Parent"] for i in (latest, previous)}
    assert kept == {latest, previous} | (parents - {""})
    assert len(kept) <= 4


def test_a_failed_deploy_keeps_its_image_until_the_next_success(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    assert deploy_version(root, engine_app, tmp_path, 1).returncode == 0
    failed = deploy_version(root, engine_app, tmp_path, 2, Procfile="release: exit 4\n" + WEB_ONLY)
    assert failed.returncode == 1
    kept_for_retry = tag(docker_client, engine_app, "failed")
    assert kept_for_retry is not None
    assert kept_for_retry != tag(docker_client, engine_app, "latest")
    assert docker_client.images.get(kept_for_retry).labels[APP_LABEL] == engine_app

    assert deploy_version(root, engine_app, tmp_path, 3).returncode == 0
    assert tag(docker_client, engine_app, "failed") is None
    assert kept_for_retry not in app_images(docker_client, engine_app)


def test_an_image_tagged_elsewhere_is_never_pruned(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, build_image: Any
) -> None:
    # An image the user built and tagged, labelled with the app: deployed once, then replaced.
    theirs = build_image(f"{DOCKERFILE}ENV THEIRS=1\n", {"Procfile": WEB_ONLY})
    assert dokku(root, "deploy", engine_app, "--image", theirs).returncode == 0
    for version in (1, 2, 3):
        assert deploy_version(root, engine_app, tmp_path, version).returncode == 0
    assert docker_client.images.get(theirs).tags == [theirs]


def test_apps_destroy_removes_every_image_of_the_app(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    assert deploy_version(root, engine_app, tmp_path, 1).returncode == 0
    assert deploy_version(root, engine_app, tmp_path, 2).returncode == 0
    deploy_version(root, engine_app, tmp_path, 3, Procfile="release: exit 4\n" + WEB_ONLY)
    assert app_images(docker_client, engine_app)
    done = dokku(root, "apps:destroy", engine_app, "--force")
    assert done.returncode == 0, done.stderr
    assert app_images(docker_client, engine_app) == set()


def test_an_image_is_removed_only_when_untagged_and_unused(
    docker_client: Any, engine_app: str, build_image: Any, tmp_path: Path
) -> None:
    from dokku_tasks.engine import Engine

    tagged = docker_client.images.get(build_image(f"{DOCKERFILE}ENV ONE=1\n"))
    engine = Engine.connect()
    try:
        untagged = []
        for number in (2, 3):  # built as a deploy builds: untagged, labelled with the app
            dockerfile = f"{DOCKERFILE}ENV NUMBER={number}\n"
            context = write_app(tmp_path / f"untagged{number}", {"Dockerfile": dockerfile})
            untagged.append(engine.build(context, {APP_LABEL: engine_app}, lambda line: None))
        used, free = untagged
        docker_client.api.create_container(used, labels={APP_LABEL: engine_app})
        assert engine.remove_image_if_untagged(tagged.id) is False
        assert engine.remove_image_if_untagged(used) is False
        assert engine.remove_image_if_untagged(free) is True
        assert engine.remove_image_if_untagged(free) is False  # gone already
    finally:
        engine.close()
    assert docker_client.images.get(tagged.id).tags == tagged.tags
    assert docker_client.images.get(used).id == used
    # The low-level listing: the high-level one reads each image and fails when another
    # test removes one of them between the list and the read.
    assert free not in docker_client.api.images(all=True, quiet=True)
