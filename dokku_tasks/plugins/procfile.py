"""Built-in plugin: reads the Procfile, and runs its ``release`` task."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..models import PROCFILE_FILE, RELEASE, AppFile, DeployContext, Task
from ..procfile import MAX_PROCFILE_BYTES, expand_command, parse_procfile
from ..properties import PropertyStore


@hookimpl
def app_files(app: str, properties: PropertyStore) -> list[AppFile]:
    """The Procfile, at the top of the source tree or the image's WORKDIR."""
    return [
        AppFile(
            name=PROCFILE_FILE,
            path=PROCFILE_FILE,
            parse=parse_procfile,
            setting="Procfile path",
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
