"""The swarm scheduler on a one-node swarm of the real engine.

The module's fixture makes this engine a one-node swarm when it is not one, and leaves the
swarm again afterwards, so the machine is left as it was found.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.errors import TaskFailedError, TaskTimeoutError
from dokku_tasks.pipeline import DeployRequest, deploy
from tests.conftest import BASE_IMAGE, Captured

pytestmark = [pytest.mark.engine, pytest.mark.swarm]

APP_JSON = {
    "scripts": {
        "dokku": {"predeploy": "echo predeploy-out", "postdeploy": "echo postdeploy-out >&2"},
        "postdeploy": "echo once-out",
    }
}
PROCFILE = "release: echo release-out; echo second-line\nweb: sleep 3600\n"


@pytest.fixture
def app_image(build_image: Any) -> Any:
    def make(app_json: dict[str, Any] = APP_JSON, procfile: str = PROCFILE) -> str:
        return str(
            build_image(
                f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n',
                {"app.json": json.dumps(app_json), "Procfile": procfile},
            )
        )

    return make


def services(client: Any, app: str) -> list[Any]:
    return list(client.services.list(filters={"label": f"com.dokku.app-name={app}"}))


def job_services(client: Any, app: str) -> list[Any]:
    return [s for s in services(client, app) if s.attrs["Spec"]["Labels"].get("dokku_phase_script")]


#: The lines of docker-local's checks before the switch: on swarm the swarm runs them, silently.
CHECK_LINES = (
    "       Attempting pre-flight checks",
    "       Waiting for ",
    "       All checks successful",
)


def task_lines(text: str, app: str) -> list[str]:
    """What a deploy printed, without ids, the names of what runs, and check lines."""
    lines = []
    for line in text.splitlines():
        if line.startswith("=====> Start of") or line.startswith("=====> End of"):
            line = line.rsplit("(", 1)[0]
        if line.startswith(("       Running ", "-----> Deploying ", *CHECK_LINES)):
            continue
        lines.append(line.replace(app, "APP"))
    return lines


def test_same_task_output_as_docker_local(
    docker_client: Any, swarm: None, app_image: Any, engine_app: str, root: Path
) -> None:
    image = app_image()
    local, clustered = Captured(), Captured()
    other_app = f"{engine_app}-l"
    try:
        deploy(
            DeployRequest(app=other_app, image=image, scheduler="docker-local"),
            root=root,
            output=local.output,
        )
    finally:
        from tests.conftest import remove_app_resources

        remove_app_resources(docker_client, other_app)
    result = deploy(
        DeployRequest(app=engine_app, image=image, scheduler="swarm"),
        root=root,
        output=clustered.output,
    )
    assert task_lines(clustered.stdout, engine_app) == task_lines(local.stdout, other_app)
    assert task_lines(clustered.stderr, engine_app) == task_lines(local.stderr, other_app)
    assert " !     postdeploy-out" in clustered.stderr
    assert "       second-line" in clustered.stdout
    assert "       once-out" in clustered.stdout

    web = docker_client.services.get(f"{engine_app}-web")
    labels = web.attrs["Spec"]["Labels"]
    assert labels == {"com.dokku.app-name": engine_app, "com.dokku.process-type": "web"}
    assert web.attrs["Spec"]["UpdateConfig"]["Order"] == "start-first"
    # The engine's init as PID 1 of each process task (docker-local's init-process rule).
    assert web.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Init"] is True
    assert result.containers == (f"{engine_app}-web",)
    assert job_services(docker_client, engine_app) == []


def _web_spec(client: Any, app: str) -> tuple[int, str]:
    web = client.services.get(f"{app}-web")
    return web.attrs["Version"]["Index"], web.attrs["Spec"]["TaskTemplate"]["ContainerSpec"][
        "Image"
    ]


@pytest.mark.parametrize("failing", ["predeploy", "release"])
def test_failure_before_scheduling_leaves_services_at_their_spec(
    docker_client: Any, swarm: None, app_image: Any, engine_app: str, root: Path, failing: str
) -> None:
    deploy(
        DeployRequest(app=engine_app, image=app_image(), scheduler="swarm"),
        root=root,
        output=Captured().output,
    )
    before = _web_spec(docker_client, engine_app)
    if failing == "predeploy":
        bad = app_image(app_json={"scripts": {"dokku": {"predeploy": "exit 4"}}})
    else:
        bad = app_image(procfile="release: exit 4\nweb: sleep 3600\n")
    with pytest.raises(TaskFailedError) as failure:
        deploy(
            DeployRequest(app=engine_app, image=bad, scheduler="swarm"),
            root=root,
            output=Captured().output,
        )
    assert failure.value.task_exit_status == 4
    assert _web_spec(docker_client, engine_app) == before
    assert job_services(docker_client, engine_app) == []


@pytest.mark.parametrize(
    ("app_json", "phase"),
    [
        ({"scripts": {"dokku": {"postdeploy": "exit 5"}}}, "postdeploy"),
        ({"scripts": {"postdeploy": "exit 5"}}, "heroku.postdeploy"),
    ],
)
def test_failure_after_scheduling_keeps_new_services(
    docker_client: Any,
    swarm: None,
    app_image: Any,
    engine_app: str,
    root: Path,
    app_json: dict[str, Any],
    phase: str,
) -> None:
    with pytest.raises(TaskFailedError, match=f"Execution of {phase} task failed"):
        deploy(
            DeployRequest(app=engine_app, image=app_image(app_json=app_json), scheduler="swarm"),
            root=root,
            output=Captured().output,
        )
    web = docker_client.services.get(f"{engine_app}-web")
    assert web.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 1
    assert job_services(docker_client, engine_app) == []


def test_timeout_removes_the_job(
    docker_client: Any, swarm: None, app_image: Any, engine_app: str, root: Path
) -> None:
    image = app_image(procfile="release: echo started; sleep 60\nweb: sleep 3600\n")
    began = time.monotonic()
    with pytest.raises(TaskTimeoutError, match="release task timed out after 2 seconds"):
        deploy(
            DeployRequest(app=engine_app, image=image, scheduler="swarm", task_timeout=2),
            root=root,
            output=Captured().output,
        )
    assert time.monotonic() - began < 30
    assert job_services(docker_client, engine_app) == []
    assert services(docker_client, engine_app) == []


def test_ctrl_c_removes_the_job(
    docker_client: Any, swarm: None, app_image: Any, engine_app: str, root: Path
) -> None:
    image = app_image(procfile="release: echo started; sleep 60\nweb: sleep 3600\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dokku_tasks",
            "--root",
            str(root),
            "deploy",
            engine_app,
            "--image",
            image,
            "--scheduler",
            "swarm",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            if "       started" in line or time.monotonic() > deadline:
                break
        os.kill(process.pid, signal.SIGINT)
        stopped = time.monotonic()
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130
    assert time.monotonic() - stopped < 10
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert job_services(docker_client, engine_app) == []


def test_apps_destroy_removes_the_services_containers_and_images(
    docker_client: Any, swarm: None, app_image: Any, engine_app: str, root: Path
) -> None:
    from tests.deploys import dokku

    deploy(
        DeployRequest(app=engine_app, image=app_image(), scheduler="swarm"),
        root=root,
        output=Captured().output,
    )
    assert [s.name for s in services(docker_client, engine_app)] == [f"{engine_app}-web"]
    done = dokku(root, "apps:destroy", engine_app, "--force")
    assert done.returncode == 0, done.stderr
    assert "       Removed " in done.stdout
    label = {"label": f"com.dokku.app-name={engine_app}"}
    assert services(docker_client, engine_app) == []
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.images.list(filters=label) == []
    assert docker_client.images.list(name=f"dokku/{engine_app}") == []
    assert not (root / "apps" / engine_app).exists()
