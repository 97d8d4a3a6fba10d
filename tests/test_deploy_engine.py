"""Deploys on the real Docker engine: phases, order, commits, ENTRYPOINT rules, failures.

Cases marked "ports Dokku ..." follow Dokku's own bats tests (tests/unit/app-json*.bats).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.errors import SourceError, TaskFailedError
from dokku_tasks.pipeline import DeployRequest, deploy
from tests.conftest import BASE_IMAGE, TINI_IMAGE, Captured, write_app
from tests.deploys import retire_now

pytestmark = pytest.mark.engine

DOCKERFILE = f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n'
PROCFILE = "release: touch /app/release.test && echo release ran\nweb: sleep 3600\n"


def app_json(**scripts: str) -> dict[str, Any]:
    dokku = {k: v for k, v in scripts.items() if k in ("predeploy", "postdeploy")}
    body: dict[str, Any] = {"scripts": {"dokku": dokku}}
    if "heroku" in scripts:
        body["scripts"]["postdeploy"] = scripts["heroku"]
    return body


def run_deploy(root: Path, captured: Captured, app: str, **kwargs: Any) -> Any:
    return deploy(DeployRequest(app=app, **kwargs), root=root, output=captured.output)


def exists_in_image(client: Any, image: str, app: str, path: str) -> bool:
    container = client.containers.create(
        image, entrypoint=["/bin/ls"], command=[path], labels={"com.dokku.app-name": app}
    )
    try:
        container.start()
        return int(container.wait()["StatusCode"]) == 0
    finally:
        container.remove(force=True)


def task_containers(client: Any, app: str) -> list[Any]:
    found = client.containers.list(all=True, filters={"label": f"com.dokku.app-name={app}"})
    return [c for c in found if c.labels.get("dokku_phase_script")]


def web(client: Any, app: str) -> Any:
    return client.containers.get(f"{app}.web.1")


def test_four_phases_in_order_with_predeploy_committed(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    """Ports Dokku app-json.bats "(app-json) app.json scripts" and "app.json scripts postdeploy"."""
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "app.json": app_json(
                predeploy="touch /app/predeploy.test",
                postdeploy="touch /app/postdeploy.test",
                heroku="touch /app/heroku-postdeploy.test",
            ),
            "Procfile": PROCFILE,
        },
    )
    result = run_deploy(root, captured, engine_app, source=source)
    out = captured.stdout
    expected_order = [
        "-----> Checking for predeploy task",
        "       Executing predeploy task from app.json: touch /app/predeploy.test",
        f"=====> Start of {engine_app} predeploy task (",
        f"=====> End of {engine_app} predeploy task (",
        "-----> Checking for release task",
        "       Executing release task from Procfile in ephemeral container: "
        "touch /app/release.test && echo release ran",
        "       release ran",
        f"-----> Deploying {engine_app} via the docker-local scheduler...",
        "-----> Checking for postdeploy task",
        "       Executing postdeploy task from app.json in ephemeral container: "
        "touch /app/postdeploy.test",
        "-----> Checking for heroku.postdeploy task",
        "       Executing heroku.postdeploy task from app.json in ephemeral container: "
        "touch /app/heroku-postdeploy.test",
    ]
    positions = [out.index(line) for line in expected_order]
    assert positions == sorted(positions), out
    assert "prebuild" not in out

    assert [t.phase for t in result.tasks] == [
        "predeploy",
        "release",
        "postdeploy",
        "heroku.postdeploy",
    ]
    assert all(t.exit_code == 0 for t in result.tasks)
    assert result.tasks[0].committed_image == result.image

    deployed = docker_client.images.get(f"dokku/{engine_app}:latest")
    assert deployed.id == result.image
    assert deployed.labels["com.dokku.predeploy-phase"] == "true"
    assert deployed.labels["com.dokku.app-name"] == engine_app
    assert deployed.attrs["Config"]["Cmd"] == ["sleep", "3600"]
    assert not deployed.attrs["Config"]["Entrypoint"]
    assert exists_in_image(docker_client, result.image, engine_app, "/app/predeploy.test")
    assert not exists_in_image(docker_client, result.image, engine_app, "/app/release.test")
    assert not exists_in_image(docker_client, result.image, engine_app, "/app/postdeploy.test")

    container = web(docker_client, engine_app)
    assert container.status == "running"
    assert container.labels["com.dokku.process-type"] == "web"
    assert container.labels["dokku_phase_script"] == ""
    assert container.image.id == result.image
    assert task_containers(docker_client, engine_app) == []


def test_heroku_postdeploy_runs_once_and_again_after_destroy(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    from dokku_tasks.apps import AppRegistry

    source = write_app(
        tmp_path / "src",
        {"Dockerfile": DOCKERFILE, "app.json": app_json(heroku="echo once-only-ran")},
    )
    run_deploy(root, captured, engine_app, source=source)
    assert captured.stdout.count("once-only-ran") == 2  # the Executing line and its output
    second = Captured()
    run_deploy(root, second, engine_app, source=source)
    assert "once-only-ran" not in second.stdout
    assert "heroku.postdeploy" not in second.stdout

    AppRegistry(root).destroy(engine_app)
    third = Captured()
    run_deploy(root, third, engine_app, source=source)
    assert third.stdout.count("once-only-ran") == 2


def test_failed_heroku_postdeploy_is_not_retried(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    """Ports app-json-4.bats "failing postdeploy"; the marker is written before it runs."""
    source = write_app(
        tmp_path / "src", {"Dockerfile": DOCKERFILE, "app.json": app_json(heroku="exit 3")}
    )
    with pytest.raises(TaskFailedError) as failure:
        run_deploy(root, captured, engine_app, source=source)
    assert failure.value.message == (
        "Execution of heroku.postdeploy task failed: exit 3 (exit status 3)"
    )
    again = Captured()
    run_deploy(root, again, engine_app, source=source)
    assert "heroku.postdeploy" not in again.stdout
    assert web(docker_client, engine_app).status == "running"


@pytest.mark.parametrize(
    ("failing", "phase"),
    [
        ({"app.json": app_json(predeploy="echo about to fail; exit 7")}, "predeploy"),
        ({"Procfile": "release: echo about to fail; exit 7\nweb: sleep 3600\n"}, "release"),
    ],
)
def test_failure_before_scheduling_changes_nothing_running(
    docker_client: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    captured: Captured,
    failing: dict[str, Any],
    phase: str,
) -> None:
    """Ports app-json-4.bats "failing dokku.predeploy" and "failing release"."""
    good = write_app(tmp_path / "good", {"Dockerfile": DOCKERFILE, "Procfile": PROCFILE})
    first = run_deploy(root, captured, engine_app, source=good)
    before = web(docker_client, engine_app)

    bad = write_app(tmp_path / "bad", {"Dockerfile": DOCKERFILE + "ENV CHANGED=1\n", **failing})
    failed = Captured()
    with pytest.raises(TaskFailedError) as failure:
        run_deploy(root, failed, engine_app, source=bad)
    assert failure.value.task_exit_status == 7
    assert f"Execution of {phase} task failed" in failure.value.message
    assert "about to fail" in failed.stdout
    assert f"=====> End of {engine_app} {phase} task" in failed.stdout
    assert failure.value.result is not None and not failure.value.result.ok

    after = web(docker_client, engine_app)
    assert after.id == before.id and after.status == "running"
    assert docker_client.images.get(f"dokku/{engine_app}:latest").id == first.image
    assert task_containers(docker_client, engine_app) == []


def test_postdeploy_failure_leaves_new_containers_running(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    """Ports app-json-4.bats "failing dokku.postdeploy"."""
    good = write_app(tmp_path / "good", {"Dockerfile": DOCKERFILE})
    run_deploy(root, captured, engine_app, source=good)
    before = web(docker_client, engine_app)
    bad = write_app(
        tmp_path / "bad",
        {"Dockerfile": DOCKERFILE + "ENV CHANGED=1\n", "app.json": app_json(postdeploy="exit 1")},
    )
    with pytest.raises(TaskFailedError, match="Execution of postdeploy task failed: exit 1"):
        run_deploy(root, Captured(), engine_app, source=bad)
    after = web(docker_client, engine_app)
    assert after.id != before.id and after.status == "running"
    assert "CHANGED=1" in after.attrs["Config"]["Env"]
    assert docker_client.images.get(f"dokku/{engine_app}:latest").id == after.image.id
    assert task_containers(docker_client, engine_app) == []


ENTRYPOINT_SCRIPT = """#!/bin/sh
case "$1" in
  touch*) echo "entrypoint script started with arguments $*"; touch "$2" ;;
  *) exec "$@" ;;
esac
"""


def test_entrypoint_gets_command_as_arguments(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    """Ports app-json-2.bats "app.json dockerfile entrypoint release" and "... predeploy"."""
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": f"FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\n"
            'ENTRYPOINT ["/app/entrypoint"]\nCMD ["sleep", "3600"]\n',
            "entrypoint": ENTRYPOINT_SCRIPT,
            "app.json": app_json(predeploy="touch /app/predeploy.test"),
            "Procfile": "release: touch /app/release.test\nweb: sleep 3600\n",
        },
    )
    result = run_deploy(root, captured, engine_app, source=source, env={"SOME": "value"})
    out = captured.stdout
    assert out.count("touch /app/release.test") == 2
    assert "entrypoint script started with arguments touch /app/release.test" in out
    assert "entrypoint script started with arguments touch /app/predeploy.test" in out
    image = docker_client.images.get(result.image)
    assert image.attrs["Config"]["Entrypoint"] == ["/app/entrypoint"]
    assert image.attrs["Config"]["Cmd"] == ["sleep", "3600"]
    assert exists_in_image(docker_client, result.image, engine_app, "/app/predeploy.test")


@pytest.mark.parametrize(
    ("entrypoint", "shell_wrapped"),
    [
        (["/usr/bin/tini", "--"], True),
        (["/tini", "--"], True),
        (["/usr/bin/tini", "-g", "--"], False),
        (["tini", "--"], False),
    ],
)
def test_tini_entrypoints_still_get_a_shell(
    docker_client: Any,
    build_image: Any,
    engine_app: str,
    root: Path,
    captured: Captured,
    entrypoint: list[str],
    shell_wrapped: bool,
) -> None:
    """Ports app-json.bats "tini test": the exact tini forms run the command through a shell."""
    image = build_image(
        f"FROM {TINI_IMAGE}\nRUN cp /usr/bin/tini /tini\nWORKDIR /app\n"
        "COPY app.json /app/app.json\n"
        f'ENTRYPOINT {json.dumps(entrypoint)}\nCMD ["sleep", "3600"]\n',
        {"app.json": json.dumps(app_json(predeploy="echo first && echo second"))},
    )
    run_deploy(root, captured, engine_app, image=image)
    lines = captured.stdout.splitlines()
    if shell_wrapped:
        assert "       first" in lines and "       second" in lines
    else:
        assert "       first && echo second" in lines


def test_deploy_from_image_reads_workdir_files_without_touching_the_tag(
    docker_client: Any, build_image: Any, engine_app: str, root: Path, captured: Captured
) -> None:
    image = build_image(
        f'FROM {BASE_IMAGE}\nWORKDIR /srv/app\nCOPY . /srv/app\nCMD ["sleep", "3600"]\n',
        {
            "app.json": json.dumps(app_json(predeploy="echo predeploy from image")),
            "Procfile": "release: echo release from image\nweb: sleep 3600\n",
        },
    )
    user_image_id = docker_client.images.get(image).id
    result = run_deploy(root, captured, engine_app, image=image)
    assert "       predeploy from image" in captured.stdout
    assert "       release from image" in captured.stdout
    assert docker_client.images.get(image).id == user_image_id
    assert result.image != user_image_id
    assert web(docker_client, engine_app).status == "running"


def test_deploy_image_with_files_from_source(
    docker_client: Any,
    build_image: Any,
    engine_app: str,
    root: Path,
    tmp_path: Path,
    captured: Captured,
) -> None:
    image = build_image(
        f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n',
        {"app.json": json.dumps(app_json(predeploy="echo from-the-image"))},
    )
    source = write_app(tmp_path / "src", {"app.json": app_json(predeploy="echo from-the-source")})
    run_deploy(root, captured, engine_app, image=image, source=source)
    assert "       from-the-source" in captured.stdout
    assert "from-the-image" not in captured.stdout


def test_image_without_workdir_reads_from_root(
    docker_client: Any, build_image: Any, engine_app: str, root: Path, captured: Captured
) -> None:
    image = build_image(
        f'FROM {BASE_IMAGE}\nCOPY app.json /app.json\nCMD ["sleep", "3600"]\n',
        {"app.json": json.dumps(app_json(predeploy="echo at-the-root"))},
    )
    run_deploy(root, captured, engine_app, image=image)
    assert "       at-the-root" in captured.stdout


def test_appjson_path_choices(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    """Ports app-json.bats "(app-json:set)": a custom path, a missing one, unset again."""
    from dokku_tasks.apps import AppRegistry

    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "app.json": app_json(predeploy="echo predeploy1"),
            "sub-app/app2.json": app_json(predeploy="echo predeploy2"),
        },
    )
    registry = AppRegistry(root)
    registry.create(engine_app)
    store = registry.properties

    store.set("app-json", engine_app, "appjson-path", "/sub-app/app2.json/")
    run_deploy(root, captured, engine_app, source=source)
    assert "predeploy2" in captured.stdout and "predeploy1" not in captured.stdout

    store.set("app-json", engine_app, "appjson-path", "app-nonexistent.json")
    missing = Captured()
    run_deploy(root, missing, engine_app, source=source)
    assert "No predeploy task found, skipping" in missing.stdout

    store.unset("app-json", engine_app, "appjson-path")
    store.set("app-json", "--global", "appjson-path", "sub-app/app2.json")
    global_value = Captured()
    run_deploy(root, global_value, engine_app, source=source)
    assert "predeploy2" in global_value.stdout


@pytest.mark.parametrize("path", ["../outside.json", "sub/../../outside.json", "link.json"])
def test_appjson_path_never_leaves_the_source_tree(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured, path: str
) -> None:
    from dokku_tasks.apps import AppRegistry

    (tmp_path / "outside.json").write_text(json.dumps(app_json(predeploy="echo escaped")))
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    (source / "link.json").symlink_to(tmp_path / "outside.json")
    registry = AppRegistry(root)
    registry.create(engine_app)
    registry.properties.set("app-json", engine_app, "appjson-path", path)
    with pytest.raises(SourceError, match="appjson-path"):
        run_deploy(root, captured, engine_app, source=source)
    assert "escaped" not in captured.stdout
    assert task_containers(docker_client, engine_app) == []


def test_image_symlink_out_of_workdir_is_refused(
    docker_client: Any, build_image: Any, engine_app: str, root: Path, captured: Captured
) -> None:
    image = build_image(
        f"FROM {BASE_IMAGE}\nCOPY app.json /secret/app.json\nWORKDIR /app\n"
        'RUN ln -s /secret/app.json /app/app.json\nCMD ["sleep", "3600"]\n',
        {"app.json": json.dumps(app_json(predeploy="echo escaped"))},
    )
    with pytest.raises(SourceError, match="outside"):
        run_deploy(root, captured, engine_app, image=image)
    assert "escaped" not in captured.stdout


class _Clock:
    """A text stream that remembers when each line was written."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.lines.append((time.monotonic(), line))
        return len(text)

    def flush(self) -> None:
        pass

    def when(self, wanted: str) -> float:
        return next(t for t, line in self.lines if line == wanted)


def test_output_is_streamed_while_the_task_runs(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path
) -> None:
    from dokku_tasks.output import Output

    clock = _Clock()
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "app.json": app_json(predeploy="echo before-sleep; sleep 3; echo after-sleep"),
        },
    )
    deploy(
        DeployRequest(app=engine_app, source=source),
        root=root,
        output=Output(out=clock, err=clock),  # type: ignore[arg-type]
    )
    assert clock.when("       after-sleep") - clock.when("       before-sleep") >= 2.5


def test_env_reaches_tasks_and_processes_but_not_the_image(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    """Ports app-json.bats "app.json herokuish release": config is visible to release."""
    secret = "fjdkslafjdk-unique-7f3a"
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "app.json": app_json(predeploy='echo "predeploy sees ${#SECRET_KEY} chars"'),
            "Procfile": 'release: echo "SECRET_KEY: $SECRET_KEY"\nweb: sleep 3600\n',
        },
    )
    result = run_deploy(root, captured, engine_app, source=source, env={"SECRET_KEY": secret})
    assert f"       SECRET_KEY: {secret}" in captured.stdout
    assert f"predeploy sees {len(secret)} chars" in captured.stdout
    assert (
        "Executing release task from Procfile in ephemeral container: "
        'echo "SECRET_KEY: $SECRET_KEY"' in captured.stdout
    )
    assert f"SECRET_KEY={secret}" in web(docker_client, engine_app).attrs["Config"]["Env"]
    saved = b"".join(docker_client.images.get(result.image).save())
    assert secret.encode() not in saved


def test_formation_and_procfile_processes(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    """Ports app-json-3.bats "persist scale": formation quantities decide what runs."""
    source = write_app(
        tmp_path / "src",
        {
            "Dockerfile": DOCKERFILE,
            "Procfile": "release: true\nweb: sleep 3600\nworker: sleep 3600\ncron: sleep 3600\n",
            "app.json": {"formation": {"web": {"quantity": 1}, "worker": {"quantity": 2}}},
        },
    )
    result = run_deploy(root, captured, engine_app, source=source)
    assert sorted(result.containers) == [
        f"{engine_app}.web.1",
        f"{engine_app}.worker.1",
        f"{engine_app}.worker.2",
    ]
    for name in result.containers:
        container = docker_client.containers.get(name)
        assert container.status == "running"
        assert container.attrs["HostConfig"]["RestartPolicy"] == {
            "Name": "on-failure",
            "MaximumRetryCount": 10,
        }

    source_2 = write_app(
        tmp_path / "src2",
        {
            "Dockerfile": DOCKERFILE,
            "Procfile": "web: sleep 3600\ncron: sleep 3600\n",
            "app.json": {"formation": {"web": {"quantity": 1}, "cron": {"quantity": 1}}},
        },
    )
    second = run_deploy(root, Captured(), engine_app, source=source_2)
    assert sorted(second.containers) == [f"{engine_app}.cron.1", f"{engine_app}.web.1"]
    # The first deploy's containers, worker.1 and worker.2 among them, are retired.
    assert retire_now(root) == 3
    names = {
        c.name
        for c in docker_client.containers.list(
            all=True, filters={"label": f"com.dokku.app-name={engine_app}"}
        )
    }
    assert names == set(second.containers)


def test_missing_app_json_deploys_without_tasks(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    """Ports app-json.bats "app.json scripts missing"."""
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    result = run_deploy(root, captured, engine_app, source=source)
    assert result.tasks == ()
    assert "No predeploy task found, skipping" in captured.stdout
    assert "No release task found, skipping" in captured.stdout
    assert "No postdeploy task found, skipping" in captured.stdout
    assert web(docker_client, engine_app).attrs["Config"]["Cmd"] == ["sleep", "3600"]


def test_heroku_postdeploy_survives_a_failed_dokku_postdeploy(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    failing = write_app(
        tmp_path / "a",
        {"Dockerfile": DOCKERFILE, "app.json": app_json(postdeploy="exit 2", heroku="echo once")},
    )
    with pytest.raises(TaskFailedError, match="postdeploy task failed: exit 2"):
        run_deploy(root, captured, engine_app, source=failing)
    assert "heroku.postdeploy" not in captured.stdout
    fixed = write_app(
        tmp_path / "b",
        {"Dockerfile": DOCKERFILE, "app.json": app_json(postdeploy="true", heroku="echo once")},
    )
    again = Captured()
    run_deploy(root, again, engine_app, source=fixed)
    assert "       once" in again.stdout.splitlines()


def test_image_directory_symlink_out_of_workdir_is_refused(
    docker_client: Any, build_image: Any, engine_app: str, root: Path, captured: Captured
) -> None:
    from dokku_tasks.apps import AppRegistry

    image = build_image(
        f"FROM {BASE_IMAGE}\nCOPY app.json /outside/app.json\nWORKDIR /app\n"
        'RUN ln -s /outside /app/conf\nCMD ["sleep", "3600"]\n',
        {"app.json": json.dumps(app_json(predeploy="echo escaped"))},
    )
    registry = AppRegistry(root)
    registry.create(engine_app)
    registry.properties.set("app-json", engine_app, "appjson-path", "conf/app.json")
    with pytest.raises(SourceError, match="outside /app"):
        run_deploy(root, captured, engine_app, image=image)
    assert "escaped" not in captured.stdout


def test_image_symlink_inside_workdir_is_followed(
    docker_client: Any, build_image: Any, engine_app: str, root: Path, captured: Captured
) -> None:
    image = build_image(
        f"FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY real.json /app/conf/real.json\n"
        'RUN ln -s conf/real.json /app/app.json\nCMD ["sleep", "3600"]\n',
        {"real.json": json.dumps(app_json(predeploy="echo via-link"))},
    )
    run_deploy(root, captured, engine_app, image=image)
    assert "       via-link" in captured.stdout.splitlines()


def test_bad_app_json_stops_before_the_build(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    from dokku_tasks.errors import ParseError

    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE, "app.json": '{"scripts": {,}}'})
    with pytest.raises(ParseError, match=r"app.json at line 1, column \d+"):
        run_deploy(root, captured, engine_app, source=source)
    assert "Step 1" not in captured.stdout
    assert docker_client.images.list(filters={"label": f"com.dokku.app-name={engine_app}"}) == []


class _CommitsInRelease:
    @staticmethod
    def release() -> Any:
        from dokku_tasks.models import Task

        return Task(phase="release", command="true", source="plugin", commit=True)


class _FailingNotifier:
    @staticmethod
    def deploy_finished() -> None:
        raise RuntimeError("notifier down")


def _manager_with(plugin: object, name: str) -> Any:
    from dokku_tasks import hookimpl
    from dokku_tasks.manager import get_plugin_manager

    for attr in ("release", "deploy_finished"):
        if hasattr(plugin, attr):
            hookimpl(getattr(plugin, attr))
    pm = get_plugin_manager(entrypoints=False)
    pm.register(plugin, name)
    return pm


def test_a_committing_task_outside_predeploy_is_refused(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    from dokku_tasks.errors import PluginError

    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    pm = _manager_with(_CommitsInRelease, "committer")
    with pytest.raises(PluginError, match="'committer' failed in hook release: returned a "):
        deploy(
            DeployRequest(app=engine_app, source=source), root=root, output=captured.output, pm=pm
        )


def test_failing_notifier_does_not_hide_the_deploy_error(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    source = write_app(
        tmp_path / "src", {"Dockerfile": DOCKERFILE, "app.json": app_json(predeploy="exit 9")}
    )
    pm = _manager_with(_FailingNotifier, "notifier")
    with pytest.raises(TaskFailedError, match=r"exit status 9"):
        deploy(
            DeployRequest(app=engine_app, source=source), root=root, output=captured.output, pm=pm
        )
    assert "Plugin 'notifier' failed in hook deploy_finished: RuntimeError: notifier down" in (
        captured.stderr
    )


def test_apps_destroy_removes_containers_and_images(
    docker_client: Any, engine_app: str, root: Path, tmp_path: Path, captured: Captured
) -> None:
    from dokku_tasks.pipeline import destroy

    source = write_app(
        tmp_path / "src", {"Dockerfile": DOCKERFILE, "app.json": app_json(predeploy="true")}
    )
    run_deploy(root, captured, engine_app, source=source)
    gone = Captured()
    destroy(engine_app, root=root, output=gone.output)
    assert gone.stdout.startswith("       Removed 1 container(s) and ")
    label = {"label": f"com.dokku.app-name={engine_app}"}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.images.list(filters=label) == []
    assert docker_client.images.list(name=f"dokku/{engine_app}") == []
    assert not (root / "apps" / engine_app).exists()
