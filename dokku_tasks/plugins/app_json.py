"""Built-in plugin: app.json deployment tasks and the ``app-json`` properties and report.

``scripts.dokku.predeploy`` (committed), ``scripts.dokku.postdeploy`` (every deploy) and Heroku's
``scripts.postdeploy`` (once: on the first deploy after the app was created).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from .. import settings
from ..appjson import MAX_APP_JSON_BYTES, parse_app_json
from ..errors import PropertyError
from ..hookspecs import hookimpl
from ..models import (
    APP_JSON_FILE,
    HEROKU_POSTDEPLOY,
    POSTDEPLOY,
    PREDEPLOY,
    AppFile,
    DeployContext,
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
    # Stored as given (the report shows what was set); the checks use the form the deploy uses:
    # leading and trailing "/" stripped, as Dokku's strings.Trim(path, "/").
    relative = value.strip("/")
    if "\x00" in value or not relative.strip():
        raise PropertyError(f"Invalid appjson-path {value!r}: it must name a file")
    normal = posixpath.normpath(relative)
    if normal == ".." or normal.startswith("../"):
        raise PropertyError(
            f"Invalid appjson-path {value!r}: it must stay inside the source tree "
            "(or the image's WORKDIR)"
        )
    return value


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


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``app-json`` section: computed, global and app ``appjson-path``."""
    return settings.report_section(properties, APP_JSON, app)
