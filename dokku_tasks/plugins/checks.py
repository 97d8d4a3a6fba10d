"""Built-in plugin: checks of new process containers before the switch (Dokku's ``checks``).

Properties, with Dokku's names and defaults: ``default-wait`` (10 s a process must stay up when
it has no healthchecks), ``wait`` (5 s before the first healthcheck attempt), ``timeout`` (30 s
per attempt), ``attempts`` (5), and ``wait-to-retire`` (60 s an old container keeps serving
after the switch before it is stopped).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import settings
from ..errors import PropertyError
from ..hookspecs import hookimpl
from ..models import ReportSection
from ..properties import PropertyStore
from ..settings import Namespace, Property

if TYPE_CHECKING:
    from ..hooks import Hooks

#: A day: more than any check or retirement wait needs, and small enough for a timer.
MAX_SECONDS = 86_400


def _whole_number(name: str, minimum: int) -> Callable[[str, Hooks | None], str]:
    def validate(value: str, plugins: Hooks | None) -> str:
        if not value.isascii() or not value.isdigit() or not minimum <= int(value) <= MAX_SECONDS:
            raise PropertyError(
                f"Invalid {name} {value!r}: expected a whole number from {minimum} to {MAX_SECONDS}"
            )
        return str(int(value))

    return validate


CHECKS = Namespace(
    name="checks",
    label="Checks",
    properties=(
        Property("default-wait", default="10", validator=_whole_number("default-wait", 0)),
        Property("wait", default="5", validator=_whole_number("wait", 0)),
        Property("timeout", default="30", validator=_whole_number("timeout", 1)),
        Property("attempts", default="5", validator=_whole_number("attempts", 1)),
        Property("wait-to-retire", default="60", validator=_whole_number("wait-to-retire", 0)),
    ),
)


def seconds(store: PropertyStore, app: str, prop: str) -> int:
    """The computed value of the whole-number property ``prop`` of ``app``.

    :raises PropertyError: the stored value is not valid (a property file edited by hand).
    """
    value = settings.computed(store, CHECKS, app, prop)
    try:
        return int(CHECKS.get_property(prop).validate(value))
    except PropertyError:
        raise PropertyError(f"Property checks {prop} of {app} is not valid: {value!r}") from None


def wait_to_retire(store: PropertyStore, app: str) -> int:
    """Seconds an old process container keeps serving after the switch before it is stopped."""
    return seconds(store, app, "wait-to-retire")


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(CHECKS)


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``checks`` section: computed, global and app rows for every checks property."""
    return settings.report_section(properties, CHECKS, app)
