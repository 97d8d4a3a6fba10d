"""deploys:retry: which deploys can be retried, and the request a retry makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dokku_tasks import history
from dokku_tasks.errors import UsageError
from dokku_tasks.events import DeployFinished
from dokku_tasks.models import Mount
from dokku_tasks.retry import retry_request


def record(
    root: Path,
    status: str = "failed",
    phase: str | None = "release",
    **request: Any,
) -> int:
    recorder = history.start(root, "web", {"skip": [], **request})
    assert recorder is not None
    if phase is not None:
        recorder.failed_phase(phase)
    recorder(DeployFinished(status, 1.0, None, None if status == "succeeded" else "boom"))
    return recorder.deploy_id


def test_a_failed_release_is_retried_from_release_on_the_failed_image(
    root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    record(
        root,
        source=str(source),
        image=None,
        mounts=[["/data", "/app/data", True]],
        network="backend",
        task_timeout=30.0,
        scheduler="docker-local",
    )
    request, failed = retry_request(root, "web", env={"SECRET": "x"})
    assert failed.id == 1
    assert request.image == "dokku/web:failed"
    assert request.source == source
    assert request.skip == ("predeploy",)
    assert request.mounts == (Mount("/data", "/app/data", True),)
    assert (request.network, request.task_timeout, request.scheduler) == (
        "backend",
        30.0,
        "docker-local",
    )
    assert dict(request.env) == {"SECRET": "x"}


def test_a_failed_postdeploy_skips_what_ran_before_it(root: Path) -> None:
    record(root, phase="postdeploy", source="/gone/away", skip=["heroku.postdeploy"])
    request, _ = retry_request(root, "web", "1", failed_image="sha256:abc")
    assert request.skip == ("predeploy", "release", "heroku.postdeploy")
    # A source tree that is gone: the files come from the image.
    assert (request.source, request.image) == (None, "sha256:abc")


@pytest.mark.parametrize(
    ("status", "phase", "message"),
    [
        (
            "succeeded",
            None,
            "Deploy 1 of web did not fail in a phase (succeeded): nothing to retry",
        ),
        ("failed", None, "Deploy 1 of web did not fail in a phase (failed): nothing to retry"),
        (
            "failed",
            "heroku.postdeploy",
            "Deploy 1 of web failed in heroku.postdeploy, which runs once only (as Dokku): "
            "nothing to retry",
        ),
    ],
)
def test_what_cannot_be_retried_is_refused(
    root: Path, status: str, phase: str | None, message: str
) -> None:
    record(root, status=status, phase=phase)
    with pytest.raises(UsageError) as refused:
        retry_request(root, "web")
    assert refused.value.message == message


def test_only_the_newest_deploy_can_be_retried(root: Path) -> None:
    record(root)
    record(root, status="succeeded", phase=None)
    with pytest.raises(UsageError) as refused:
        retry_request(root, "web", "1")
    assert refused.value.message == (
        "Deploy 1 of web is not the newest (deploy 2 is): only the newest deploy can be retried"
    )


def test_a_run_is_not_a_deploy(root: Path) -> None:
    record(root, kind="run", command="ls")
    with pytest.raises(UsageError, match="is a one-off run, not a deploy"):
        retry_request(root, "web")


def test_unknown_ids_are_refused(root: Path) -> None:
    with pytest.raises(UsageError, match="No deploys of web are recorded"):
        retry_request(root, "web")
    record(root)
    with pytest.raises(UsageError, match="Deploy 5 of web is not recorded"):
        retry_request(root, "web", "5")


def test_a_retry_gets_the_stored_config_as_it_stands_and_e_values_given_again(
    root: Path, tmp_path: Path
) -> None:
    from dokku_tasks.config_store import ConfigStore
    from dokku_tasks.pipeline import deploy
    from tests.conftest import Captured, write_app
    from tests.test_appjson_env import EnvScheduler
    from tests.test_pipeline import Harness

    harness = Harness(root)
    scheduler = EnvScheduler(harness.log, {"./migrate": 1})
    harness.scheduler = scheduler
    source = write_app(
        tmp_path / "src",
        {"Dockerfile": "FROM scratch\n", "Procfile": "release: ./migrate\nweb: ./serve\n"},
    )
    ConfigStore(root).set("web", {"A": "before"})
    with pytest.raises(Exception, match="Execution of release task failed"):
        harness.deploy(source, Captured())
    assert scheduler.task_env["release"] == {"A": "before"}

    ConfigStore(root).set("web", {"A": "after", "B": "stored"})
    scheduler.exits = {}
    request, _ = retry_request(root, "web", env={"B": "given"})
    deploy(
        request, root=root, output=Captured().output, pm=harness.pm, engine=harness.engine_factory
    )  # type: ignore[arg-type]
    assert scheduler.task_env["release"] == {"A": "after", "B": "given"}
    assert scheduler.process_env["A"] == "after"
