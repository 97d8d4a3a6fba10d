"""Built-in plugin: Dokku's ENTRYPOINT and tini rules for turning a task command into argv."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..models import DeployContext, ImageInfo, Task
from ..procfile import command_words

#: ENTRYPOINTs that count as "no entrypoint": the command still runs through a shell.
TINI_ENTRYPOINTS = frozenset(
    {
        ("/tini", "--"),
        ("/bin/tini", "--"),
        ("/usr/bin/tini", "--"),
        ("/usr/local/bin/tini", "--"),
    }
)

#: What Dokku puts in front of a task's command (plugins/app-json): stop at the first failing
#: command, and fail a pipeline when any part of it fails.  ``|| true`` keeps a shell without
#: ``pipefail`` going; the task's own exit status is kept (Dokku collapses it to 1).
TASK_PREFIX = "set -e; set -o pipefail || true; "

#: Runs the script with bash where the image has it, else with /bin/sh, in one exec chain.
_AUTO_SHELL = 'if [ -x /bin/bash ]; then exec /bin/bash -c "$1"; fi; exec /bin/sh -c "$1"'


def wraps_in_shell(image: ImageInfo) -> bool:
    """True when a task in ``image`` runs through a shell (no ENTRYPOINT, or exact tini)."""
    return not image.entrypoint or image.entrypoint in TINI_ENTRYPOINTS


def shell_argv(command: str, shell: str | None) -> tuple[str, ...]:
    """``<shell> -c "set -e; set -o pipefail || true; <command>"`` (Dokku's prefix: a failure
    anywhere in a pipeline fails the task, where the shell has pipefail); with no shell
    configured, bash if present else sh."""
    script = f"{TASK_PREFIX}{command}"
    if shell:
        return (shell, "-c", script)
    return ("/bin/sh", "-c", _AUTO_SHELL, "dokku-task", script)


def split_command(command: str, shown: str | None = None) -> tuple[str, ...]:
    """Split ``command`` with shell quoting rules, for an ENTRYPOINT that gets it unwrapped.

    ``shown`` is what an error quotes in its place (the command as written, before config
    values were expanded into it).
    """
    shown = command if shown is None else shown
    return command_words(command, shown, "the image's ENTRYPOINT")


@hookimpl(trylast=True)
def task_argv(task: Task, image: ImageInfo, context: DeployContext) -> tuple[str, ...]:
    if wraps_in_shell(image):
        return shell_argv(task.command, context.shell)
    return split_command(task.command, task.shown)
