"""Process containers on the real engine, as Dokku's docker-local starts them: the Procfile
command's words under the image's ENTRYPOINT, the engine's init, the restart policy, DYNO and
PORT, the skipping line, pipefail in tasks, and a redeploy that never waits for an old one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINI_IMAGE, write_app
from tests.deploys import APP_LABEL, DOCKERFILE, dokku, predeploy

pytestmark = pytest.mark.engine

PROCESS_LABEL = "com.dokku.process-type"
#: No ENTRYPOINT and `sleep` as the web process: PID 1 without init ignores SIGTERM.
STUBBORN = "web: sleep 3600\n"
TINI_DOCKERFILE = (
    f"FROM {TINI_IMAGE}\nWORKDIR /app\nCOPY . /app\n"
    'ENTRYPOINT ["/usr/bin/tini", "--"]\nCMD ["sleep", "3600"]\n'
)


def deploy_ok(root: Path, app: str, source: Path) -> Any:
    done = dokku(root, "deploy", app, "--source", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def processes(client: Any, app: str) -> dict[str, Any]:
    found = client.containers.list(all=True, filters={"label": f"{APP_LABEL}={app}"})
    return {c.name: c for c in found if c.labels.get(PROCESS_LABEL)}


def test_a_process_gets_dokkus_container_settings(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": TINI_DOCKERFILE,
            "Procfile": "web: sh -c 'exec sleep 3600' --port $PORT\nworker: sleep 3600\n",
            "app.json": {"formation": {"worker": {"quantity": 1}}},
        },
    )
    deploy_ok(root, engine_app, source)
    web = docker_client.api.inspect_container(f"{engine_app}.web.1")
    # The Procfile command's words, under the image's own ENTRYPOINT: no shell in between.
    assert web["Config"]["Cmd"] == ["sh", "-c", "exec sleep 3600", "--port", "5000"]
    assert web["Config"]["Entrypoint"] == ["/usr/bin/tini", "--"]
    assert web["HostConfig"]["Init"] is True
    assert web["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 10}
    env = dict(item.split("=", 1) for item in web["Config"]["Env"])
    assert (env["DYNO"], env["PORT"]) == ("web.1", "5000")
    assert web["Config"]["Labels"]["com.dokku.dyno"] == "web.1"
    worker = docker_client.api.inspect_container(f"{engine_app}.worker.1")
    worker_env = dict(item.split("=", 1) for item in worker["Config"]["Env"])
    assert worker_env["DYNO"] == "worker.1"
    assert "PORT" not in worker_env


def test_init_process_and_restart_policy_follow_their_properties(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": STUBBORN})
    assert dokku(root, "apps:create", engine_app).returncode == 0
    for args in (
        ("scheduler-docker-local:set", engine_app, "init-process", "false"),
        ("ps:set", engine_app, "restart-policy", "unless-stopped"),
        ("ps:set", "--global", "stop-timeout-seconds", "1"),
        ("checks:set", engine_app, "wait-to-retire", "0"),
    ):
        done = dokku(root, *args)
        assert done.returncode == 0, done.stderr
    deploy_ok(root, engine_app, source)
    web = docker_client.api.inspect_container(f"{engine_app}.web.1")
    assert not web["HostConfig"].get("Init")
    assert web["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_a_zombie_is_reaped_under_init_and_left_without(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    # Dokku's init.bats: an orphaned grandchild that exits is reparented to PID 1.
    procfile = "web: sh -c '(sleep 0.2 &); exec sleep 3600'\n"
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": procfile})
    deploy_ok(root, engine_app, source)

    def zombies() -> list[str]:
        time.sleep(1)
        web = docker_client.containers.get(f"{engine_app}.web.1")
        listing = web.exec_run(["ps", "-o", "stat,comm"]).output.decode()
        return [line for line in listing.splitlines()[1:] if line.split()[0].startswith("Z")]

    assert zombies() == []
    assert (
        dokku(root, "scheduler-docker-local:set", engine_app, "init-process", "false").returncode
        == 0
    )
    assert dokku(root, "checks:set", engine_app, "wait-to-retire", "0").returncode == 0
    deploy_ok(root, engine_app, source)
    assert len(zombies()) == 1


def test_a_failing_pipeline_in_predeploy_fails_it_and_commits_nothing(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "Procfile": STUBBORN,
            "app.json": predeploy("touch /app/committed; exit 3 | cat"),
        },
    )
    done = dokku(root, "deploy", engine_app, "--source", str(source))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        " !     Execution of predeploy task failed: touch /app/committed; exit 3 | cat "
        "(exit status 3)"
    ]
    images = docker_client.images.list(filters={"label": "com.dokku.predeploy-phase=true"})
    assert not [i for i in images if i.labels.get(APP_LABEL) == engine_app]
    assert processes(docker_client, engine_app) == {}


def test_a_vanished_process_type_is_skipped_with_dokkus_warning(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    # Dokku's scheduler-docker-local.bats "no-web": a Procfile without web.
    source = write_app(
        tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": "worker: sleep 3600\n"}
    )
    done = deploy_ok(root, engine_app, source)
    assert " !     Skipping web as it is missing from the current Procfile" in done.stderr
    assert list(processes(docker_client, engine_app)) == []


def test_a_pid_1_app_that_ignores_sigterm_redeploys_without_waiting(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "Procfile": STUBBORN})
    assert dokku(root, "apps:create", engine_app).returncode == 0
    assert (
        dokku(root, "scheduler-docker-local:set", engine_app, "init-process", "false").returncode
        == 0
    )
    assert dokku(root, "checks:set", engine_app, "wait-to-retire", "8").returncode == 0
    assert dokku(root, "ps:set", engine_app, "stop-timeout-seconds", "1").returncode == 0
    deploy_ok(root, engine_app, source)
    old = docker_client.containers.get(f"{engine_app}.web.1").id
    deploy_ok(root, engine_app, source)
    # The deploy returned with the old container still running: it got SIGTERM at the switch
    # (and ignored it), and its stop is not waited for.
    retired = docker_client.containers.get(old)
    assert retired.name.startswith(f"{engine_app}.web.1.retired-")
    assert retired.attrs["State"]["Running"], retired.attrs["State"]
    assert docker_client.containers.get(f"{engine_app}.web.1").id != old
    # Gone after its deadline (8 s) and its grace (1 s), with no command of ours running.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # sparse: no inspect per listed container (other tests' containers come and go).
        if old not in {c.id for c in docker_client.containers.list(all=True, sparse=True)}:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the old container was not retired within 30 s")


def test_a_crashing_process_fails_the_deploy_and_the_old_one_keeps_serving(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    good = write_app(tmp_path / "good", {"Dockerfile": DOCKERFILE, "Procfile": STUBBORN})
    deploy_ok(root, engine_app, good)
    before = docker_client.containers.get(f"{engine_app}.web.1")
    latest = docker_client.images.get(f"dokku/{engine_app}:latest").id
    assert dokku(root, "checks:set", engine_app, "default-wait", "1").returncode == 0
    bad = write_app(
        tmp_path / "bad",
        {
            "Dockerfile": DOCKERFILE + "RUN true\n",
            "Procfile": "web: sh -c 'exit 3'\n",
            "app.json": {"scripts": {"dokku": {"postdeploy": "touch /tmp/never"}}},
        },
    )
    done = dokku(root, "deploy", engine_app, "--source", str(bad))
    assert done.returncode == 1
    assert "web.1" in done.stderr.splitlines()[-1]
    assert "Checking for postdeploy task" not in done.stdout
    after = processes(docker_client, engine_app)
    assert list(after) == [f"{engine_app}.web.1"]
    assert after[f"{engine_app}.web.1"].id == before.id
    assert after[f"{engine_app}.web.1"].status == "running"
    assert docker_client.images.get(f"dokku/{engine_app}:latest").id == latest


def healthchecked(command: str, attempts: int = 2) -> dict[str, Any]:
    return {
        "healthchecks": {
            "web": [
                {
                    "type": "startup",
                    "name": "ready",
                    "command": ["sh", "-c", command],
                    "attempts": attempts,
                    "wait": 1,
                    "timeout": 5,
                }
            ]
        }
    }


def test_a_healthcheck_that_fails_once_then_passes_lets_the_deploy_through(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    # The first attempt leaves a mark and fails; the second finds the mark and passes.
    check = "test -f /tmp/ready || { touch /tmp/ready; echo not yet; exit 1; }"
    source = write_app(
        tmp_path / "src",
        {"Dockerfile": DOCKERFILE, "Procfile": STUBBORN, "app.json": healthchecked(check)},
    )
    done = deploy_ok(root, engine_app, source)
    lines = done.stdout.splitlines()
    assert "       Attempt 1/2 failed name='ready': exit status 1" in lines
    assert "       Healthcheck succeeded name='ready'" in lines
    assert docker_client.containers.get(f"{engine_app}.web.1").status == "running"


def test_a_failing_healthcheck_fails_the_deploy_and_the_old_one_keeps_serving(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    good = write_app(tmp_path / "good", {"Dockerfile": DOCKERFILE, "Procfile": STUBBORN})
    deploy_ok(root, engine_app, good)
    before = docker_client.containers.get(f"{engine_app}.web.1").id
    latest = docker_client.images.get(f"dokku/{engine_app}:latest").id
    bad = write_app(
        tmp_path / "bad",
        {
            "Dockerfile": DOCKERFILE + "ENV V=2\n",
            "Procfile": STUBBORN,
            "app.json": healthchecked("echo down; exit 4"),
        },
    )
    done = dokku(root, "deploy", engine_app, "--source", str(bad))
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        " !     Pre-flight checks failed (web.1): healthcheck 'ready' failed after 2 "
        "attempts: exit status 4; output: down"
    )
    assert list(processes(docker_client, engine_app)) == [f"{engine_app}.web.1"]
    assert docker_client.containers.get(f"{engine_app}.web.1").id == before
    assert docker_client.images.get(f"dokku/{engine_app}:latest").id == latest
