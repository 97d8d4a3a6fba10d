"""Built-in plugin: app.json deployment tasks, app.json ``env``, and the ``app-json``
properties and report.

``scripts.dokku.predeploy`` (committed), ``scripts.dokku.postdeploy`` (every deploy) and Heroku's
``scripts.postdeploy`` (once: on the first deploy after the app was created).  ``env`` fills
the app's stored config before the predeploy phase, with Dokku's rules (:func:`env_values`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs

from .. import settings
from ..appjson import MAX_APP_JSON_BYTES, parse_app_json
from ..config_store import ConfigStore
from ..errors import DeployRefusedError
from ..hookspecs import hookimpl
from ..locate import check_path_setting
from ..models import (
    APP_JSON_FILE,
    HEROKU_POSTDEPLOY,
    POSTDEPLOY,
    PREDEPLOY,
    AppFile,
    DeployContext,
    EnvVar,
    ReportSection,
    Task,
)
from ..properties import PropertyStore
from ..settings import Namespace, Property

if TYPE_CHECKING:
    from ..hooks import Hooks

#: Written before scripts.postdeploy runs, so a failed one is not retried (as Dokku).
HEROKU_POSTDEPLOY_MARKER = "heroku.postdeploy"


def _validate_appjson_path(value: str, plugins: Hooks | None) -> str:
    # The checks use the form the deploy uses: leading and trailing "/" stripped, as Dokku's
    # strings.Trim(path, "/").
    return check_path_setting(value, "appjson-path")


APP_JSON = Namespace(
    name="app-json",
    label="App-json",
    properties=(Property("appjson-path", default="app.json", validator=_validate_appjson_path),),
)
PLUGIN = APP_JSON.name


def computed_appjson_path(store: PropertyStore, app: str) -> str:
    """The app value, else the global value, else ``app.json``."""
    return settings.computed(store, APP_JSON, app, "appjson-path")


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(APP_JSON)


@hookimpl
def app_files(app: str, properties: PropertyStore) -> list[AppFile]:
    """app.json, at the app's computed ``appjson-path``."""
    return [
        AppFile(
            name=APP_JSON_FILE,
            path=computed_appjson_path(properties, app),
            parse=parse_app_json,
            setting="appjson-path",
            max_bytes=MAX_APP_JSON_BYTES,
        )
    ]


def _task(context: DeployContext, phase: str, commit: bool = False) -> Task | None:
    if context.app_json is None:
        return None
    command = context.app_json.script(phase)
    if command is None:
        return None
    return Task(phase=phase, command=command, source="app.json", commit=commit)


@hookimpl
def pre_deploy(context: DeployContext) -> Task | None:
    return _task(context, PREDEPLOY, commit=True)


@hookimpl
def plan_tasks(app: str, context: DeployContext, hook: str) -> list[Task]:
    """The tasks pre_deploy and post_deploy would return, without marking anything."""
    if hook == "pre_deploy":
        return [task for task in (_task(context, PREDEPLOY, commit=True),) if task is not None]
    if hook == "post_deploy":
        return [attrs.evolve(task, before_run=None) for task in post_deploy(app, context)]
    return []


@hookimpl
def post_deploy(app: str, context: DeployContext) -> list[Task]:
    tasks = [task for task in (_task(context, POSTDEPLOY),) if task is not None]
    once = _task(context, HEROKU_POSTDEPLOY)
    store = context.properties
    marked = store.get(PLUGIN, app, HEROKU_POSTDEPLOY_MARKER) == "executed"
    if context.first_deploy and once is not None and not marked:
        # Marked as it starts, so a failed one is not retried (as Dokku); not before, so
        # that a failing scripts.dokku.postdeploy does not use up the once-only run.
        def mark() -> None:
            store.set(PLUGIN, app, HEROKU_POSTDEPLOY_MARKER, "executed")

        tasks.append(attrs.evolve(once, before_run=mark))
    return tasks


def generate_secret() -> str:
    """A value for ``generator: secret``: 32 random bytes as 64 hex digits, as Dokku makes it."""
    return secrets.token_hex(32)


def env_values(
    app: str,
    env: Mapping[str, EnvVar],
    stored: Mapping[str, str],
    *,
    first_deploy: bool,
    given: Mapping[str, str],
    generate: Callable[[], str] = generate_secret,
) -> dict[str, str]:
    """The config values app.json ``env`` stores for this deploy, by Dokku's rules.

    On the app's first deploy every entry is looked at; later, only ``sync`` ones.  An entry
    whose key already has a stored (non-empty) value, the app's or a global one, is left alone
    unless it syncs.  Otherwise its value is a new secret for ``generator: secret``, else its
    ``value``; an entry with neither is skipped when it is optional or when ``given`` (the
    deploy's own ``-e`` values) has it, and refuses the deploy when it is required.

    One difference from Dokku: an entry with ``sync`` but nothing to sync (no value, no
    generator) is treated as not syncing, so it never fails a deploy once it has a value.

    :raises DeployRefusedError: ``required env var KEY has no value ...`` for the first
        required key (in sorted order) without one; nothing is stored then.
    """
    values: dict[str, str] = {}
    for key in sorted(env):
        var = env[key]
        sync = var.sync and bool(var.value or var.generator)
        if not (first_deploy or sync):
            continue
        if stored.get(key) and not sync:
            continue
        if var.generator:
            values[key] = generate()
        elif var.value:
            values[key] = var.value
        elif var.required and not given.get(key):
            raise DeployRefusedError(
                f"required env var {key} has no value: set one with "
                f"'dokku-tasks config:set {app} {key}=VALUE' (app.json env)"
            )
    return values


@hookimpl(tryfirst=True)
def config_values(app: str, context: DeployContext) -> None:
    """Apply app.json ``env`` to the app's stored config (before the ``config`` plugin reads
    it): Dokku's ``Processing app.json env vars`` step.  Values are never printed."""
    app_json = context.app_json
    if app_json is None or not app_json.env:
        return
    output = context.output
    output.step("Processing app.json env vars")
    store = ConfigStore(context.properties.root)
    values = env_values(
        app,
        app_json.env,
        store.merged(app),
        first_deploy=context.first_deploy,
        given=context.env,
    )
    if not values:
        output.info("No env vars to set from app.json")
        return
    store.set(app, values)
    output.step(f"Setting {len(values)} env var(s) from app.json")
    for key in sorted(values):
        output.info(key)


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``app-json`` section: computed, global and app ``appjson-path``."""
    return settings.report_section(properties, APP_JSON, app)
