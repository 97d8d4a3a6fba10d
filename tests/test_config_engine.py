"""Stored config and app.json ``env`` on the real Docker engine, through the command line.

Cases marked "ports Dokku ..." follow Dokku's own bats tests (tests/unit/app-json-5.bats and
app-json-2.bats); Dokku's ``ps:rebuild`` is a second ``deploy`` here.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_app
from tests.deploys import DOCKERFILE, WEB_ONLY, dokku
from tests.test_appjson_env import APP_ENV, APP_ENV_REQUIRED

pytestmark = pytest.mark.engine


def source_tree(directory: Path, procfile: str = WEB_ONLY, **files: Any) -> Path:
    return write_app(directory, {"Dockerfile": DOCKERFILE, "Procfile": procfile, **files})


def ok(root: Path, *args: str) -> str:
    done = dokku(root, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def get(root: Path, app: str, key: str) -> tuple[int, str]:
    done = dokku(root, "config:get", app, key)
    return done.returncode, done.stdout.removesuffix("\n")


def image_bytes(client: Any, ref: str) -> bytes:
    return b"".join(client.images.get(ref).save(named=True))


def test_a_deploy_without_e_gets_the_stored_config_and_no_image_keeps_it(
    docker_client: Any, root: Path, engine_app: str, tmp_path: Path
) -> None:
    # Ports Dokku app-json-2.bats "app.json dockerfile release": config:set, then the release
    # task sees the value.
    secret = f"s3cret-{uuid.uuid4().hex}"
    ok(root, "apps:create", engine_app)
    set_out = ok(root, "config:set", engine_app, f"SECRET_KEY={secret}")
    assert secret not in set_out
    source = source_tree(
        tmp_path / "src",
        "release: env | grep '^SECRET_KEY=' || echo SECRET_KEY unset\n" + WEB_ONLY,
        **{
            "app.json": {
                "scripts": {
                    "dokku": {"predeploy": 'test -n "$SECRET_KEY" && echo seen || echo not seen'}
                }
            }
        },
    )

    done = dokku(root, "deploy", engine_app, "--source", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"       SECRET_KEY={secret}\n" in done.stdout
    assert "       seen\n" in done.stdout

    # The committed predeploy image holds no value: not in its config, not in its layers.
    ref = f"dokku/{engine_app}:latest"
    assert docker_client.images.get(ref).labels.get("com.dokku.predeploy-phase") == "true"
    assert secret not in json.dumps(docker_client.api.inspect_image(ref))
    assert secret.encode() not in image_bytes(docker_client, ref)
    # The state files only their owner can read.
    env_file = root / "config" / "config" / engine_app / "ENV"
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(env_file.parent).st_mode) == 0o700
    # A one-off run gets the stored value too.
    run = dokku(root, "run", engine_app, "--", "env")
    assert run.returncode == 0 and f"SECRET_KEY={secret}\n" in run.stdout

    # -e still wins for the deploy it is given to, and stores nothing.
    done = dokku(root, "deploy", engine_app, "--source", str(source), "-e", "SECRET_KEY=given")
    assert done.returncode == 0, done.stderr
    assert "       SECRET_KEY=given\n" in done.stdout
    assert get(root, engine_app, "SECRET_KEY") == (0, secret)

    ok(root, "config:unset", engine_app, "SECRET_KEY")
    done = dokku(root, "deploy", engine_app, "--source", str(source))
    assert done.returncode == 0, done.stderr
    assert "       SECRET_KEY unset\n" in done.stdout
    assert secret not in done.stdout


def env_app(root: Path, app: str, tmp_path: Path, appjson: str = "app-env.json") -> Path:
    """Dokku's python fixture's env files, with appjson-path set as app-json-5.bats sets it."""
    ok(root, "apps:create", app)
    ok(root, "app-json:set", app, "appjson-path", appjson)
    env_json = {
        **APP_ENV,
        "scripts": {
            "dokku": {"predeploy": "echo ENV_CHECK: SIMPLE_VAR=$SIMPLE_VAR OBJECT_VAR=$OBJECT_VAR"}
        },
    }
    return source_tree(
        tmp_path / "src",
        **{"app-env.json": env_json, "app-env-required.json": APP_ENV_REQUIRED},
    )


def deploy_ok(root: Path, app: str, source: Path) -> str:
    done = dokku(root, "deploy", app, "--source", str(source))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_env_simple_value(root: Path, engine_app: str, tmp_path: Path) -> None:
    # Ports Dokku app-json-5.bats "(app-json) app.json env simple value".
    out = deploy_ok(root, engine_app, env_app(root, engine_app, tmp_path))
    assert "-----> Processing app.json env vars\n" in out
    assert "-----> Setting 4 env var(s) from app.json\n" in out
    assert get(root, engine_app, "SIMPLE_VAR") == (0, "simple_value")
    assert get(root, engine_app, "OBJECT_VAR") == (0, "object_default")
    # The predeploy task of the same deploy sees them.
    assert "       ENV_CHECK: SIMPLE_VAR=simple_value OBJECT_VAR=object_default\n" in out


def test_env_secret_generator(root: Path, engine_app: str, tmp_path: Path) -> None:
    # Ports Dokku app-json-5.bats "(app-json) app.json env secret generator".
    out = deploy_ok(root, engine_app, env_app(root, engine_app, tmp_path))
    code, secret = get(root, engine_app, "SECRET_VAR")
    assert code == 0 and re.fullmatch(r"[0-9a-f]{64}", secret)
    assert secret not in out


def test_env_does_not_overwrite_on_redeploy(root: Path, engine_app: str, tmp_path: Path) -> None:
    # Ports Dokku app-json-5.bats "(app-json) app.json env does not overwrite on redeploy".
    source = env_app(root, engine_app, tmp_path)
    deploy_ok(root, engine_app, source)
    _, original_secret = get(root, engine_app, "SECRET_VAR")
    ok(root, "config:set", "--no-restart", engine_app, "SIMPLE_VAR=changed_value")
    deploy_ok(root, engine_app, source)
    assert get(root, engine_app, "SIMPLE_VAR") == (0, "changed_value")
    assert get(root, engine_app, "SECRET_VAR") == (0, original_secret)


def test_env_sync_overwrites_on_redeploy(root: Path, engine_app: str, tmp_path: Path) -> None:
    # Ports Dokku app-json-5.bats "(app-json) app.json env sync overwrites on redeploy".
    source = env_app(root, engine_app, tmp_path)
    deploy_ok(root, engine_app, source)
    assert get(root, engine_app, "SYNC_VAR") == (0, "sync_value")
    ok(root, "config:set", "--no-restart", engine_app, "SYNC_VAR=manual_value")
    deploy_ok(root, engine_app, source)
    assert get(root, engine_app, "SYNC_VAR") == (0, "sync_value")


def test_env_required_without_value_fails(
    docker_client: Any, root: Path, engine_app: str, tmp_path: Path
) -> None:
    # Ports Dokku app-json-5.bats "(app-json) app.json env required without value fails".
    source = env_app(root, engine_app, tmp_path, appjson="app-env-required.json")
    done = dokku(root, "deploy", engine_app, "--source", str(source))
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(" !     Deploy refused by plugin 'app-json': ")
    assert "required env var REQUIRED_VAR has no value" in line
    # Nothing stored, nothing started.
    assert dokku(root, "config:keys", engine_app).stdout == ""
    assert not docker_client.containers.list(
        all=True, filters={"label": f"com.dokku.app-name={engine_app}"}
    )
    # Given a value, the same deploy goes through.
    ok(root, "config:set", engine_app, "REQUIRED_VAR=now set")
    deploy_ok(root, engine_app, source)


def test_env_skips_optional_without_value(root: Path, engine_app: str, tmp_path: Path) -> None:
    # Ports Dokku app-json-5.bats "(app-json) app.json env skips optional without value".
    deploy_ok(root, engine_app, env_app(root, engine_app, tmp_path))
    assert get(root, engine_app, "OPTIONAL_VAR") == (1, "")


def test_env_respects_pre_set_values_on_first_deploy(
    root: Path, engine_app: str, tmp_path: Path
) -> None:
    # Ports Dokku app-json-5.bats "(app-json) app.json env respects pre-set values on first
    # deploy".
    source = env_app(root, engine_app, tmp_path)
    ok(root, "config:set", "--no-restart", engine_app, "SIMPLE_VAR=preset_value")
    deploy_ok(root, engine_app, source)
    assert get(root, engine_app, "SIMPLE_VAR") == (0, "preset_value")
