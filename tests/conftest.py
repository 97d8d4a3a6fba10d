"""Shared fixtures.  Engine-backed tests use the real Docker engine and clean up by label."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from tests.deploys import LiveDeploy

# The multi-node swarm's fixtures (tests/cluster.py), for the tests marked ``cluster``.
from tests.cluster import cluster, healthy_cluster  # noqa: F401

# CI runs the property tests with a fixed seed, so a run is repeatable; locally each run
# explores new examples.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Under mutmut (docs/mutation-testing.md) every call to a mutated function passes through two
# extra frames, so the JSONC nesting-limit tests need a deeper stack than a plain run.
if "mutmut" in sys.modules:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

BASE_IMAGE = "dokku-tasks/busybox:latest"
TINI_IMAGE = "dokku-tasks/busybox-tini:latest"
APP_LABEL = "com.dokku.app-name"


@pytest.fixture(autouse=True)
def command_index_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test's own cache directory: no test reads a help index another one wrote."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(path))
    return path


@pytest.fixture
def root(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh state root.

    For a test on the engine, new processes are checked at once rather than after Dokku's
    10 s default wait (those deploy often); tests of the checks set their own values.
    """
    path = tmp_path / "state"
    path.mkdir()
    if "docker_client" in request.fixturenames:
        from dokku_tasks.properties import GLOBAL, PropertyStore

        PropertyStore(path).set("checks", GLOBAL, "default-wait", "0")
    return path


@pytest.fixture
def app_name(request: pytest.FixtureRequest) -> str:
    """An app name no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:  # pragma: no cover - set-up failure
        pytest.fail(f"engine tests need a Docker engine (run scripts/setup.sh): {exc}")
    for image in (BASE_IMAGE, TINI_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:  # pragma: no cover - set-up failure
            pytest.fail(f"engine tests need {image} (run scripts/setup.sh)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def swarm(docker_client: Any) -> Iterator[None]:
    """A one-node swarm on the engine for a module's tests: made (and left) here when the
    engine is in none."""
    state = docker_client.info().get("Swarm", {}).get("LocalNodeState")
    created = state != "active"
    if created:
        docker_client.swarm.init(advertise_addr="127.0.0.1")
    yield
    if created:
        docker_client.swarm.leave(force=True)


@pytest.fixture
def engine_app(docker_client: Any, app_name: str) -> Iterator[str]:
    """An app name whose containers and images are removed after the test, pass or fail."""
    yield app_name
    remove_app_resources(docker_client, app_name)


def remove_app_resources(client: Any, app: str) -> None:
    import docker

    if client.info().get("Swarm", {}).get("ControlAvailable"):
        for service in client.services.list(filters={"label": f"{APP_LABEL}={app}"}):
            with contextlib.suppress(docker.errors.NotFound):
                service.remove()

    for container in client.containers.list(
        all=True, sparse=True, filters={"label": f"{APP_LABEL}={app}"}
    ):
        # A container the app's retirer is removing at this moment: "already in progress".
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True, v=True)
    for _ in range(3):  # committed images depend on built ones: remove children first
        images = client.images.list(filters={"label": f"{APP_LABEL}={app}"})
        images += [i for i in client.images.list(name=f"dokku/{app}")]
        images += [i for i in client.images.list(name=f"dokku-tasks-test/{app}")]
        if not images:
            break
        for image in images:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)


@pytest.fixture
def build_image(docker_client: Any, engine_app: str, tmp_path: Path) -> Any:
    """Build a test image labelled with the app (so the cleanup removes it); return its tag."""
    counter = iter(range(1000))

    def build(dockerfile: str, files: dict[str, str] | None = None) -> str:
        context = tmp_path / f"img-{next(counter)}"
        context.mkdir()
        (context / "Dockerfile").write_text(_own_build_cache(dockerfile))
        for name, text in (files or {}).items():
            target = context / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if name.endswith(".sh") or name == "entrypoint":
                target.chmod(0o755)
        tag = f"dokku-tasks-test/{engine_app}:{uuid.uuid4().hex[:8]}"
        import docker.errors

        try:
            docker_client.images.build(
                path=str(context), tag=tag, labels={APP_LABEL: engine_app}, rm=True
            )
        except docker.errors.BuildError as exc:
            # Under pytest-xdist another test's clean-up can remove an image built on the same
            # base while this build's cache probe reads the base's children (the race that
            # Engine.build retries for deploys, tests/test_build_cache_race.py), or one this
            # build found in the cache a moment before; once more, without the cache.
            if "unable to find image" not in str(exc) and "parent image" not in str(exc):
                raise
            docker_client.images.build(
                path=str(context), tag=tag, labels={APP_LABEL: engine_app}, rm=True, nocache=True
            )
        return tag

    return build


def write_app(directory: Path, files: dict[str, str | dict[str, Any]]) -> Path:
    """Write a source tree; dict values are dumped as JSON.

    A Dockerfile gets a label of its own after its first ``FROM``: trees of other tests that
    are alike then share no build cache, so one test's clean-up never removes an image that
    another test's build (running in parallel, under pytest-xdist) is about to build on
    ("unknown parent image ID").
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(content) if isinstance(content, dict) else content
        if name == "Dockerfile":
            text = _own_build_cache(text)
        target.write_text(text)
        if name == "entrypoint" or name.endswith(".sh"):
            target.chmod(0o755)
    return directory


def _own_build_cache(dockerfile: str) -> str:
    lines = dockerfile.split("\n")
    for number, line in enumerate(lines):
        if line.strip().upper().startswith("FROM "):
            lines.insert(number + 1, f"LABEL com.dokku-tasks.test-tree={uuid.uuid4().hex}")
            break
    return "\n".join(lines)


class Captured:
    """An Output that keeps what it printed."""

    def __init__(self) -> None:
        from dokku_tasks.output import Output

        self.out = io.StringIO()
        self.err = io.StringIO()
        self.output = Output(out=self.out, err=self.err)

    @property
    def stdout(self) -> str:
        return self.out.getvalue()

    @property
    def stderr(self) -> str:
        return self.err.getvalue()


@pytest.fixture
def captured() -> Captured:
    return Captured()


@pytest.fixture
def other_app(docker_client: Any) -> Iterator[str]:
    """A second app name, cleaned up like ``engine_app``."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    remove_app_resources(docker_client, name)


@pytest.fixture
def live() -> Iterator[list[LiveDeploy]]:
    """Every LiveDeploy a test appends here is killed at the end if it still runs."""
    started: list[LiveDeploy] = []
    yield started
    for child in started:
        child.stop()
