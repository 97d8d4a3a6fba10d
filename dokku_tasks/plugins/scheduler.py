"""Built-in plugin: the ``scheduler`` settings (which scheduler, the task shell and timeout).

The schedulers themselves come from plugins through ``register_schedulers``; ``selected``
accepts exactly the names they registered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import settings
from ..errors import PropertyError, UsageError
from ..hookspecs import hookimpl
from ..models import ReportSection
from ..options import parse_task_timeout
from ..properties import PropertyStore
from ..settings import Namespace, Property

if TYPE_CHECKING:
    from ..hooks import Hooks

DEFAULT_SCHEDULER = "docker-local"

_SHELL_WORD = r"[^\s/\x00-\x1f\x7f]+"
_SHELL = re.compile(rf"(/{_SHELL_WORD})+|{_SHELL_WORD}")


def _validate_scheduler(value: str, plugins: Hooks | None) -> str:
    if plugins is not None and value not in plugins.schedulers:
        raise PropertyError(
            f"Invalid scheduler {value!r}, valid schedulers: {', '.join(sorted(plugins.schedulers))}"
        )
    return value


def _validate_shell(value: str, plugins: Hooks | None) -> str:
    # The shell becomes argv[0] of the task container: an absolute path or a name looked up in
    # the image's PATH, never words a shell would split.
    if not _SHELL.fullmatch(value):
        raise PropertyError(
            f"Invalid shell {value!r}: expected an absolute path such as /bin/sh, "
            "or a command name, without spaces"
        )
    return value


def _validate_task_timeout(value: str, plugins: Hooks | None) -> str:
    try:
        seconds = parse_task_timeout(value)
    except UsageError as exc:
        raise PropertyError(exc.message) from None
    # "none" is stored as such: an app's "none" must beat a global timeout.
    return "none" if seconds is None else value.strip()


SCHEDULER = Namespace(
    name="scheduler",
    label="Scheduler",
    properties=(
        Property(
            "selected",
            default=DEFAULT_SCHEDULER,
            validator=_validate_scheduler,
            needs_plugins=True,
        ),
        Property("shell", validator=_validate_shell),
        Property("task-timeout", default="none", validator=_validate_task_timeout),
    ),
)


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(SCHEDULER)


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``scheduler`` section: computed, global and app rows for every scheduler property."""
    return settings.report_section(properties, SCHEDULER, app)
