"""Built-in plugin: the Procfile ``release`` task."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..models import RELEASE, DeployContext, Task
from ..procfile import expand_command


@hookimpl
def release(context: DeployContext) -> Task | None:
    if context.procfile is None:
        return None
    entry = context.procfile.get(RELEASE)
    if entry is None:
        return None
    command = expand_command(entry.command, context.env, RELEASE)
    return Task(phase=RELEASE, command=command, source="Procfile", display=entry.command)
