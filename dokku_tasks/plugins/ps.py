"""Built-in plugin: the ``ps`` settings (restart policy, stop grace, where the Procfile is).

Dokku's names: ``ps:set APP restart-policy on-failure:10``,
``ps:set APP stop-timeout-seconds 30`` and ``ps:set APP procfile-path PATH``.  The
``docker-local`` scheduler reads the first two when it starts and retires process containers;
the ``procfile`` plugin reads the Procfile at the computed ``procfile-path``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from .. import settings
from ..errors import PropertyError
from ..hookspecs import hookimpl
from ..locate import check_path_setting
from ..models import ReportSection
from ..properties import PropertyStore
from ..settings import Namespace, Property

if TYPE_CHECKING:
    from ..hooks import Hooks

DEFAULT_RESTART_POLICY = "on-failure:10"
DEFAULT_STOP_TIMEOUT = 30

_RESTART_POLICY = re.compile(r"(no|always|unless-stopped|on-failure(:[0-9]{1,9})?)")
#: The engine's own limit on a stop grace is far above this; a day is more than any app needs.
MAX_STOP_TIMEOUT = 86_400


def _validate_restart_policy(value: str, plugins: Hooks | None) -> str:
    if not _RESTART_POLICY.fullmatch(value):
        raise PropertyError(
            f"Invalid restart-policy {value!r}: expected no, always, unless-stopped, "
            "on-failure or on-failure:N"
        )
    return value


def _validate_stop_timeout(value: str, plugins: Hooks | None) -> str:
    if not value.isascii() or not value.isdigit() or int(value) > MAX_STOP_TIMEOUT:
        raise PropertyError(
            f"Invalid stop-timeout-seconds {value!r}: expected a whole number of seconds "
            f"from 0 to {MAX_STOP_TIMEOUT}"
        )
    return str(int(value))


def _validate_procfile_path(value: str, plugins: Hooks | None) -> str:
    # The same rules as appjson-path: relative, "/" stripped at deploy time, inside the base.
    return check_path_setting(value, "procfile-path")


PS = Namespace(
    name="ps",
    label="Ps",
    properties=(
        Property(
            "restart-policy", default=DEFAULT_RESTART_POLICY, validator=_validate_restart_policy
        ),
        Property(
            "stop-timeout-seconds",
            default=str(DEFAULT_STOP_TIMEOUT),
            validator=_validate_stop_timeout,
        ),
        Property("procfile-path", default="Procfile", validator=_validate_procfile_path),
    ),
)


def restart_policy(store: PropertyStore, app: str) -> tuple[str, int]:
    """The app's restart policy as the engine takes it: its name and its retry count."""
    name, _, count = settings.computed(store, PS, app, "restart-policy").partition(":")
    return name, int(count or 0)


def computed_procfile_path(store: PropertyStore, app: str) -> str:
    """Where the app's Procfile is: the app value, else the global value, else ``Procfile``."""
    return settings.computed(store, PS, app, "procfile-path")


def stop_timeout(store: PropertyStore, app: str) -> int:
    """Seconds a process container gets between SIGTERM and SIGKILL when it is stopped."""
    value = settings.computed(store, PS, app, "stop-timeout-seconds")
    try:
        return int(_validate_stop_timeout(value, None))
    except PropertyError:
        raise PropertyError(
            f"Property ps stop-timeout-seconds of {app} is not valid: {value!r}"
        ) from None


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(PS)


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``ps`` section: computed, global and app rows for every ps property."""
    return settings.report_section(properties, PS, app)


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("ps:retire")
    @click.pass_context
    def ps_retire(ctx: click.Context) -> None:
        """Retire the old process containers whose wait-to-retire has passed, now."""
        from .. import retirement
        from ..cli import state_root
        from ..engine import Engine
        from ..output import Output

        root = state_root(ctx)
        output = Output()
        output.step("Retiring old containers")
        if not retirement.pending(root):
            output.info("No old containers to retire")
            return
        engine = Engine.connect()
        try:
            retired = retirement.retire_due(root, engine)
        finally:
            engine.close()
        left = len(retirement.pending(root))
        output.info(f"Retired {retired} container(s); {left} not yet due")
