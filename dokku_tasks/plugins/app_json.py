"""Built-in plugin: app.json deployment tasks and the ``app-json`` properties and report.

``scripts.dokku.predeploy`` (committed), ``scripts.dokku.postdeploy`` (every deploy) and Heroku's
``scripts.postdeploy`` (once: on the first deploy after the app was created).
"""

from __future__ import annotations

import attrs

from .. import settings
from ..hookspecs import hookimpl
from ..models import (
    HEROKU_POSTDEPLOY,
    POSTDEPLOY,
    PREDEPLOY,
    DeployContext,
    ReportSection,
    Task,
)
from ..properties import PropertyStore

PLUGIN = settings.APP_JSON.name
#: Written before scripts.postdeploy runs, so a failed one is not retried (as Dokku).
HEROKU_POSTDEPLOY_MARKER = "heroku.postdeploy"


def computed_appjson_path(store: PropertyStore, app: str) -> str:
    """The app value, else the global value, else ``app.json``."""
    return settings.computed(store, PLUGIN, app, "appjson-path")


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
    return settings.report_section(properties, PLUGIN, app)
