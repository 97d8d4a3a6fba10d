"""A build whose cache probe loses a race with an image removal is built again.

The engine's classic builder lists the children of a step's parent image and then reads
each one; an image removed between the two (another app's prune of an image built on the
same base) fails the build with ``unable to find image "sha256:…"``.  The engine test makes
that race happen for real, on a base image of its own.
"""

from __future__ import annotations

import io
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.engine import BUILD_ATTEMPTS, Engine, is_cache_probe_race
from dokku_tasks.errors import BuildError
from tests.conftest import APP_LABEL, BASE_IMAGE

VANISHED = 'unable to find image "sha256:' + "2841bf05" * 8 + '"'


def test_the_cache_probe_race_is_told_by_the_full_image_id() -> None:
    assert is_cache_probe_race(f"Image build failed: {VANISHED}")
    assert is_cache_probe_race(VANISHED)
    # A FROM image that is missing is named as written, not by a full id.
    assert not is_cache_probe_race('unable to find image "dokku/app:latest"')
    assert not is_cache_probe_race('unable to find image "sha256:2841bf05"')
    assert not is_cache_probe_race('unable to find image "sha256:' + "Z" * 64 + '"')
    assert not is_cache_probe_race("pull access denied for busybox")


class _ScriptedApi:
    """Answers each build with the next scripted stream of chunks."""

    def __init__(self, *streams: list[dict[str, Any]]) -> None:
        self.streams = list(streams)
        self.builds = 0

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.builds += 1
        return iter(self.streams.pop(0))


def _engine(api: _ScriptedApi) -> Engine:
    engine = object.__new__(Engine)
    engine._api = api  # type: ignore[assignment]
    return engine


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A build context of its own: the engine tars it before each attempt."""
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    return tmp_path


RACED: list[dict[str, Any]] = [{"stream": "Step 1/2 : FROM base\n"}, {"error": VANISHED}]
BUILT: list[dict[str, Any]] = [
    {"stream": "Step 1/2 : FROM base\n"},
    {"aux": {"ID": "sha256:built"}},
]


def test_a_raced_build_is_built_again_and_says_so(context: Path) -> None:
    api = _ScriptedApi(RACED, BUILT)
    lines: list[str] = []
    notes: list[str] = []
    image = _engine(api).build(context, {}, lines.append, on_rebuild=notes.append)
    assert image == "sha256:built"
    assert api.builds == 2
    assert lines == ["Step 1/2 : FROM base", "Step 1/2 : FROM base"]
    assert notes == [
        "An image the build cache was looking at was removed meanwhile "
        f"({VANISHED}); building again"
    ]


def test_a_build_that_keeps_racing_fails_after_the_last_attempt(context: Path) -> None:
    api = _ScriptedApi(*[RACED] * BUILD_ATTEMPTS)
    notes: list[str] = []
    with pytest.raises(BuildError) as failure:
        _engine(api).build(context, {}, lambda line: None, on_rebuild=notes.append)
    assert failure.value.message == f"Image build failed: {VANISHED}"
    assert api.builds == BUILD_ATTEMPTS == 3
    assert len(notes) == BUILD_ATTEMPTS - 1


def test_another_build_failure_is_not_retried(context: Path) -> None:
    api = _ScriptedApi([{"error": "The command '/bin/sh -c false' returned a non-zero code: 1"}])
    with pytest.raises(BuildError) as failure:
        _engine(api).build(context, {}, lambda line: None, on_rebuild=pytest.fail)
    assert failure.value.message == (
        "Image build failed: The command '/bin/sh -c false' returned a non-zero code: 1"
    )
    assert api.builds == 1


def test_a_raced_build_needs_no_rebuild_callback(context: Path) -> None:
    api = _ScriptedApi(RACED, BUILT)
    assert _engine(api).build(context, {}, lambda line: None) == "sha256:built"


# -- on the real engine ----------------------------------------------------------------------


def _context(dockerfile: str) -> io.BytesIO:
    data = dockerfile.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    archive.seek(0)
    return archive


# A count, not a time limit: under CI load a 10-second window held as few as 20 builds.
BUILDS_PER_BUILDER = 10


@pytest.mark.engine
def test_builds_survive_removals_of_sibling_images(
    docker_client: Any, engine_app: str, tmp_path: Path
) -> None:
    """Four builders on one base, each removing what it built, as apps sharing a base image
    prune while others build.  The race is rare and depends on load: without the rebuild,
    7 of 301 such builds failed in five 20-second runs on an idle 2-core host, and a
    deploy failed so in a CI run."""
    labels = {APP_LABEL: engine_app}
    # A base of the test's own, so these removals race only this test's builds.
    base = f"dokku-tasks-test/{engine_app}:base"
    for _ in docker_client.api.build(
        fileobj=_context(f"FROM {BASE_IMAGE}\nLABEL base={uuid.uuid4().hex}\n"),
        custom_context=True,
        decode=True,
        tag=base,
        labels=labels,
        rm=True,  # the low-level client keeps the step's container unless told
        forcerm=True,
    ):
        pass
    failures: list[str] = []
    rebuilds: list[str] = []
    builds: list[str] = []

    def build_and_remove(builder: int) -> None:
        engine = Engine.connect()
        try:
            for attempt in range(BUILDS_PER_BUILDER):
                context = tmp_path / f"builder{builder}-{attempt}"
                context.mkdir()
                (context / "Dockerfile").write_text(
                    f"FROM {base}\nLABEL build={uuid.uuid4().hex}\n"
                )
                try:
                    image = engine.build(
                        context, labels, lambda line: None, on_rebuild=rebuilds.append
                    )
                except BuildError as exc:
                    failures.append(exc.message)
                    continue
                builds.append(image)
                docker_client.api.remove_image(image)
        finally:
            engine.close()

    builders = [threading.Thread(target=build_and_remove, args=(n,)) for n in range(4)]
    for thread in builders:
        thread.start()
    for thread in builders:
        thread.join()
    assert failures == []
    assert len(builds) == 4 * BUILDS_PER_BUILDER
    assert all(is_cache_probe_race(line) for line in rebuilds)
