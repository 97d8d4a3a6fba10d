"""app.json ``env``: how it is parsed, Dokku's rules for what it stores, and how a deploy
applies it, without Docker (the real-engine ports of Dokku's cases are in
test_config_engine.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dokku_tasks.appjson import parse_app_json
from dokku_tasks.config_store import ConfigStore
from dokku_tasks.errors import DeployRefusedError, ParseError
from dokku_tasks.models import EnvVar
from dokku_tasks.pipeline import DeployRequest, deploy
from dokku_tasks.plugins.app_json import env_values, generate_secret
from dokku_tasks.scheduling import TaskIO, TaskRun, TaskSpec
from tests.conftest import Captured, write_app
from tests.test_pipeline import FakeScheduler, Harness

#: Dokku's fixture tests/apps/python/app-env.json, as its app-json-5.bats cases use it.
APP_ENV = {
    "env": {
        "SIMPLE_VAR": "simple_value",
        "OBJECT_VAR": {"description": "A variable with a default value", "value": "object_default"},
        "SECRET_VAR": {"description": "A generated secret", "generator": "secret"},
        "OPTIONAL_VAR": {"description": "An optional variable", "required": False},
        "SYNC_VAR": {
            "description": "A variable that syncs on every deploy",
            "value": "sync_value",
            "sync": True,
        },
    }
}
#: Dokku's tests/apps/python/app-env-required.json.
APP_ENV_REQUIRED = {
    "env": {
        "REQUIRED_VAR": {"description": "A required variable with no default", "required": True}
    }
}


def env_of(document: Any) -> dict[str, EnvVar]:
    return dict(parse_app_json(json.dumps(document).encode()).env)


def error_of(text: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_app_json(text.encode())
    return info.value


# -- parsing ------------------------------------------------------------------------------------


def test_dokkus_fixture_parses() -> None:
    assert env_of(APP_ENV) == {
        "SIMPLE_VAR": EnvVar(value="simple_value"),
        "OBJECT_VAR": EnvVar(value="object_default", description="A variable with a default value"),
        "SECRET_VAR": EnvVar(generator="secret", description="A generated secret"),
        "OPTIONAL_VAR": EnvVar(required=False, description="An optional variable"),
        "SYNC_VAR": EnvVar(
            value="sync_value", sync=True, description="A variable that syncs on every deploy"
        ),
    }


def test_fields_fold_as_go_matches_them_and_unknown_ones_are_ignored() -> None:
    assert env_of({"ENV": {"A": {"Value": "x", "SYNC": True, "extra": [1]}}}) == {
        "A": EnvVar(value="x", sync=True)
    }


def test_null_entry_is_required_without_a_value_and_null_required_is_the_default() -> None:
    assert env_of({"env": {"A": None}}) == {"A": EnvVar()}
    text = '{"env": {"A": {"required": false, "required": null, "value": "v", "value": null}}}'
    assert parse_app_json(text.encode()).env == {"A": EnvVar(value="v", required=True)}


def test_a_repeated_key_replaces_the_earlier_entry_and_null_env_clears() -> None:
    text = '{"env": {"A": {"value": "x", "sync": true}, "A": "y"}}'
    assert parse_app_json(text.encode()).env == {"A": EnvVar(value="y")}
    assert parse_app_json(b'{"env": {"A": "x"}, "env": null}').env == {}


@pytest.mark.parametrize(
    ("text", "detail", "column"),
    [
        (
            '{"env": {"A-B": "x"}}',
            "env.A-B is not a valid config key: it must match [A-Za-z_][A-Za-z0-9_]*",
            17,
        ),
        ('{"env": {"A": 5}}', "env.A must be a string or an object, not a number", 15),
        (
            '{"env": {"A": {"generator": "uuid"}}}',
            "env.A.generator must be 'secret', not 'uuid'",
            29,
        ),
        (
            '{"env": {"A": {"required": "yes"}}}',
            "env.A.required must be true or false, not a string",
            28,
        ),
        ('{"env": {"A": {"value": 1}}}', "env.A.value must be a string, not a number", 25),
        ('{"env": {"A": "x\\u0000"}}', "env.A contains a NUL character", 15),
        ('{"env": []}', "env must be an object, not an array", 9),
    ],
)
def test_bad_env_is_one_line_with_its_position(text: str, detail: str, column: int) -> None:
    error = error_of(text)
    assert (error.detail, error.line, error.column) == (detail, 1, column)


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
        max_size=6,
    )
)
def test_any_string_entry_parses_to_its_value(env: dict[str, str]) -> None:
    assert env_of({"env": env}) == {key: EnvVar(value=value) for key, value in env.items()}


# -- Dokku's rules (plugins/app-json processAppJSONEnv) ----------------------------------------


def fixed_secret() -> str:
    return "f" * 64


def resolve(
    stored: dict[str, str],
    *,
    first_deploy: bool,
    given: dict[str, str] | None = None,
    document: Any = APP_ENV,
) -> dict[str, str]:
    return env_values(
        "web",
        env_of(document),
        stored,
        first_deploy=first_deploy,
        given=given or {},
        generate=fixed_secret,
    )


def test_first_deploy_sets_every_entry_with_a_value_and_skips_optional_ones() -> None:
    # app-json-5.bats "env simple value" (4 set) and "skips optional without value".
    assert resolve({}, first_deploy=True) == {
        "OBJECT_VAR": "object_default",
        "SECRET_VAR": "f" * 64,
        "SIMPLE_VAR": "simple_value",
        "SYNC_VAR": "sync_value",
    }


def test_the_secret_generator_makes_64_hex_digits() -> None:
    # app-json-5.bats "secret generator".
    secret = generate_secret()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert generate_secret() != secret


def test_later_deploys_set_only_sync_entries() -> None:
    # app-json-5.bats "does not overwrite on redeploy" and "sync overwrites on redeploy".
    stored = {"SIMPLE_VAR": "changed_value", "SECRET_VAR": "old", "SYNC_VAR": "manual_value"}
    assert resolve(stored, first_deploy=False) == {"SYNC_VAR": "sync_value"}


def test_values_set_before_the_first_deploy_win() -> None:
    # app-json-5.bats "respects pre-set values on first deploy"; a global value counts too.
    values = resolve({"SIMPLE_VAR": "preset_value", "SECRET_VAR": "kept"}, first_deploy=True)
    assert "SIMPLE_VAR" not in values and "SECRET_VAR" not in values
    # An empty stored value is no value, as in Dokku.
    assert resolve({"SIMPLE_VAR": ""}, first_deploy=True)["SIMPLE_VAR"] == "simple_value"


def test_a_required_entry_without_a_value_refuses_the_first_deploy() -> None:
    # app-json-5.bats "required without value fails".
    with pytest.raises(DeployRefusedError) as info:
        resolve({}, first_deploy=True, document=APP_ENV_REQUIRED)
    assert info.value.reason == (
        "required env var REQUIRED_VAR has no value: set one with "
        "'dokku-tasks config:set web REQUIRED_VAR=VALUE' (app.json env)"
    )
    # A stored value, or one given with -e for this deploy, is a value; later deploys skip it.
    assert resolve({"REQUIRED_VAR": "x"}, first_deploy=True, document=APP_ENV_REQUIRED) == {}
    given = {"REQUIRED_VAR": "x"}
    assert resolve({}, first_deploy=True, given=given, document=APP_ENV_REQUIRED) == {}
    assert resolve({}, first_deploy=False, document=APP_ENV_REQUIRED) == {}


def test_a_sync_entry_with_nothing_to_sync_keeps_its_value() -> None:
    # Dokku would fail every later deploy of this app.json; see docs/differences.md.
    document = {"env": {"TOKEN": {"sync": True}}}
    assert resolve({"TOKEN": "set"}, first_deploy=False, document=document) == {}
    with pytest.raises(DeployRefusedError):
        resolve({}, first_deploy=True, document=document)


def test_a_sync_secret_is_made_again_on_every_deploy() -> None:
    document = {"env": {"ROTATED": {"generator": "secret", "sync": True}}}
    assert resolve({"ROTATED": "old"}, first_deploy=False, document=document) == {
        "ROTATED": "f" * 64
    }


# -- in a deploy (a fake engine) ------------------------------------------------------------------


class EnvScheduler(FakeScheduler):
    """Records each task's env and the processes' env."""

    def __init__(self, log: list[str], exits: Any) -> None:
        super().__init__(log, exits)
        self.task_env: dict[str, dict[str, str]] = {}
        self.process_env: dict[str, str] = {}

    def run_task(self, spec: TaskSpec, io: TaskIO) -> TaskRun:
        self.task_env[spec.task.phase] = dict(spec.options.env)
        return super().run_task(spec, io)

    def deploy_processes(
        self, app: str, image: Any, processes: Any, options: Any, check: Any = None
    ) -> tuple[str, ...]:
        self.process_env = dict(options.env)
        return super().deploy_processes(app, image, processes, options, check)


def env_harness(root: Path) -> tuple[Harness, EnvScheduler]:
    harness = Harness(root)
    scheduler = EnvScheduler(harness.log, {})
    harness.scheduler = scheduler
    return harness, scheduler


def run_deploy(
    harness: Harness, source: Path, captured: Captured, env: dict[str, str] | None = None
) -> None:
    deploy(
        DeployRequest(app="web", source=source, scheduler="fake", env=env or {}),
        root=harness.root,
        output=captured.output,
        pm=harness.pm,
        engine=harness.engine_factory,  # type: ignore[arg-type]
    )


def app_source(tmp_path: Path, app_json: Any) -> Path:
    return write_app(
        tmp_path / "src",
        {
            "Dockerfile": "FROM scratch\n",
            "Procfile": "release: ./migrate\nweb: ./serve\n",
            "app.json": {**app_json, "scripts": {"dokku": {"predeploy": "./compile"}}},
        },
    )


def test_a_deploy_stores_app_json_env_and_every_container_gets_it(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    harness, scheduler = env_harness(root)
    ConfigStore(root).set("web", {"SIMPLE_VAR": "preset", "OTHER": "stored"})
    run_deploy(harness, app_source(tmp_path, APP_ENV), captured, env={"OTHER": "given"})

    stored = ConfigStore(root).get_all("web")
    assert stored["SIMPLE_VAR"] == "preset" and stored["OBJECT_VAR"] == "object_default"
    assert re.fullmatch(r"[0-9a-f]{64}", stored["SECRET_VAR"])
    assert "OPTIONAL_VAR" not in stored and stored["OTHER"] == "stored"
    # Stored values reach every task and the processes; the deploy's own -e value wins.
    for env in (*scheduler.task_env.values(), scheduler.process_env):
        assert env["SECRET_VAR"] == stored["SECRET_VAR"]
        assert env["OTHER"] == "given"
    assert set(scheduler.task_env) == {"predeploy", "release"}

    out = captured.stdout
    assert "-----> Processing app.json env vars\n-----> Setting 3 env var(s) from app.json\n" in out
    assert "       OBJECT_VAR\n       SECRET_VAR\n       SYNC_VAR\n" in out
    # Values are never printed: not the generated secret, not a default.
    assert stored["SECRET_VAR"] not in out + captured.stderr
    assert "object_default" not in out + captured.stderr
    # Env processing runs before predeploy.
    assert out.index("Processing app.json env vars") < out.index("Checking for predeploy task")


def test_a_later_deploy_only_syncs(root: Path, tmp_path: Path, captured: Captured) -> None:
    harness, _ = env_harness(root)
    source = app_source(tmp_path, APP_ENV)
    run_deploy(harness, source, captured)
    ConfigStore(root).set("web", {"SIMPLE_VAR": "changed", "SYNC_VAR": "manual"})
    secret = ConfigStore(root).get_all("web")["SECRET_VAR"]
    later = Captured()
    run_deploy(harness, source, later)
    stored = ConfigStore(root).get_all("web")
    assert (stored["SIMPLE_VAR"], stored["SYNC_VAR"], stored["SECRET_VAR"]) == (
        "changed",
        "sync_value",
        secret,
    )
    assert "Setting 1 env var(s) from app.json\n       SYNC_VAR\n" in later.stdout


def test_a_missing_required_value_refuses_before_any_task_and_stores_nothing(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    harness, _ = env_harness(root)
    document = {"env": {**APP_ENV["env"], **APP_ENV_REQUIRED["env"]}}
    with pytest.raises(DeployRefusedError) as info:
        run_deploy(harness, app_source(tmp_path, document), captured)
    assert info.value.message.startswith(
        "Deploy refused by plugin 'app-json': required env var REQUIRED_VAR has no value"
    )
    assert ConfigStore(root).get_all("web") == {}
    assert harness.log == ["remove stale"]


def test_no_app_json_env_prints_nothing_of_it(
    root: Path, tmp_path: Path, captured: Captured
) -> None:
    harness, scheduler = env_harness(root)
    ConfigStore(root).set("web", {"A": "1"})
    run_deploy(harness, app_source(tmp_path, {}), captured)
    assert "env vars" not in captured.stdout
    assert scheduler.task_env["release"] == {"A": "1"}
