"""Built-in plugin: reads the Procfile (at the ``ps`` ``procfile-path``), and runs its
``release`` task."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..models import PROCFILE_FILE, RELEASE, AppFile, DeployContext, Task
from ..procfile import MAX_PROCFILE_BYTES, expand_command, parse_procfile
from ..properties import PropertyStore
from .ps import computed_procfile_path


@hookimpl
def app_files(app: str, properties: PropertyStore) -> list[AppFile]:
    """The Procfile, at the computed ``ps`` ``procfile-path`` (``Procfile`` unless set) in the
    source tree or the image's WORKDIR."""
    return [
        AppFile(
            name=PROCFILE_FILE,
            path=computed_procfile_path(properties, app),
            parse=parse_procfile,
            setting="procfile-path",
            max_bytes=MAX_PROCFILE_BYTES,
        )
    ]


@hookimpl
def plan_tasks(context: DeployContext, hook: str) -> Task | None:
    """The release task, for a plan."""
    return release(context) if hook == "release" else None


@hookimpl
def release(context: DeployContext) -> Task | None:
    if context.procfile is None:
        return None
    entry = context.procfile.get(RELEASE)
    if entry is None:
        return None
    command = expand_command(entry.command, context.env, RELEASE)
    return Task(phase=RELEASE, command=command, source="Procfile", display=entry.command)
