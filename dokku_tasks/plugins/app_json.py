"""Built-in plugin: app.json deployment tasks and the ``app-json`` properties and report.

``scripts.dokku.predeploy`` (committed), ``scripts.dokku.postdeploy`` (every deploy) and Heroku's
``scripts.postdeploy`` (once: on the first deploy after the app was created).
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..models import (
    HEROKU_POSTDEPLOY,
    POSTDEPLOY,
    PREDEPLOY,
    DeployContext,
    ReportRow,
    ReportSection,
    Task,
)
from ..properties import GLOBAL, PropertyStore

PLUGIN = "app-json"
APPJSON_PATH = "appjson-path"
DEFAULT_APPJSON_PATH = "app.json"
#: Written before scripts.postdeploy runs, so a failed one is not retried (as Dokku).
HEROKU_POSTDEPLOY_MARKER = "heroku.postdeploy"
VALID_PROPERTIES = (APPJSON_PATH,)


def app_appjson_path(store: PropertyStore, app: str) -> str:
    """The app's own ``appjson-path`` (empty when unset)."""
    return store.get(PLUGIN, app, APPJSON_PATH)


def global_appjson_path(store: PropertyStore) -> str:
    """The global ``appjson-path`` (empty when unset)."""
    return store.get(PLUGIN, GLOBAL, APPJSON_PATH)


def computed_appjson_path(store: PropertyStore, app: str) -> str:
    """The app value, else the global value, else ``app.json``."""
    return app_appjson_path(store, app) or global_appjson_path(store) or DEFAULT_APPJSON_PATH


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
def post_deploy(app: str, context: DeployContext) -> list[Task]:
    tasks = [task for task in (_task(context, POSTDEPLOY),) if task is not None]
    if context.first_deploy:
        marker_set = context.properties.get(PLUGIN, app, HEROKU_POSTDEPLOY_MARKER) == "executed"
        once = _task(context, HEROKU_POSTDEPLOY)
        if once is not None and not marker_set:
            context.properties.set(PLUGIN, app, HEROKU_POSTDEPLOY_MARKER, "executed")
            tasks.append(once)
    return tasks


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    global_value = global_appjson_path(properties)
    return ReportSection(
        title="app-json",
        rows=(
            ReportRow(
                "computed-appjson-path",
                "App-json computed appjson path",
                computed_appjson_path(properties, app),
            ),
            ReportRow(
                "global-appjson-path",
                "App-json global appjson path",
                global_value or DEFAULT_APPJSON_PATH,
                raw=global_value,
            ),
            ReportRow("appjson-path", "App-json appjson path", app_appjson_path(properties, app)),
        ),
    )
