"""The property namespaces behind the ``NAMESPACE:set`` and ``NAMESPACE:report`` commands.

Each :class:`Namespace` (``app-json``, ``scheduler``) lists its properties; each
:class:`Property` says whether it may be set ``--global``, what its value falls back to, and how
a value is checked.  One set of functions serves every namespace: reading the app, global and
computed values, setting and unsetting with Dokku's checks and messages, and building the
report section with Dokku's rows (computed, global, app value, per property).

Values live in the :class:`~dokku_tasks.properties.PropertyStore` under the namespace's name:
``ROOT/config/<namespace>/<app>/<property>``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs

from .errors import PropertyError, UsageError
from .models import ReportRow, ReportSection
from .options import parse_task_timeout
from .properties import GLOBAL, PropertyStore

if TYPE_CHECKING:
    import pluggy

    from .apps import AppRegistry

#: A value check: gets the value and the plugin manager (``None`` when the caller has none),
#: returns the value to store, raises :class:`PropertyError` with a one-line reason.
Validator = Callable[[str, "pluggy.PluginManager | None"], str]

#: What ``scheduler selected`` may name when no plugin answers ``scheduler_names``.
DEFAULT_SCHEDULERS = ("docker-local", "swarm")
DEFAULT_SCHEDULER = "docker-local"


@attrs.frozen
class Property:
    """One property of a namespace.

    ``default`` is the computed value when neither the app nor ``--global`` sets one; the report's
    global row shows it in place of an unset global value.  ``validator`` checks a value before
    it is stored (``None``: any value); ``needs_plugins`` says the validator asks the plugins
    (so a caller builds a plugin manager for it, and only for it).
    """

    name: str
    default: str = ""
    global_allowed: bool = True
    validator: Validator | None = None
    needs_plugins: bool = False

    @property
    def label(self) -> str:
        """The name as a report label shows it: every ``-`` becomes a space (as Dokku)."""
        return self.name.replace("-", " ")

    def validate(self, value: str, pm: pluggy.PluginManager | None = None) -> str:
        """The value to store for ``value``; :class:`PropertyError` when it is not valid."""
        return value if self.validator is None else self.validator(value, pm)


@attrs.frozen
class Namespace:
    """A group of properties with its own ``:set`` and ``:report`` commands.

    ``name`` is the command prefix, the report section's title and the property store's plugin
    directory; ``label`` starts every report label (``App-json``, ``Scheduler``).
    """

    name: str
    label: str
    properties: tuple[Property, ...]

    @property
    def property_names(self) -> tuple[str, ...]:
        """The properties' names, in report order."""
        return tuple(prop.name for prop in self.properties)

    def get_property(self, name: str) -> Property:
        """The property called ``name``.

        :raises PropertyError: ``Invalid property specified, valid properties include: ...``.
        """
        for prop in self.properties:
            if prop.name == name:
                return prop
        valid = ", ".join(sorted(self.property_names))
        raise PropertyError(f"Invalid property specified, valid properties include: {valid}")


# -- validators -----------------------------------------------------------------------------

_SHELL_WORD = r"[^\s/\x00-\x1f\x7f]+"
_SHELL = re.compile(rf"(/{_SHELL_WORD})+|{_SHELL_WORD}")


def _validate_appjson_path(value: str, pm: pluggy.PluginManager | None) -> str:
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


def _validate_scheduler(value: str, pm: pluggy.PluginManager | None) -> str:
    names = scheduler_names(pm)
    if value not in names:
        raise PropertyError(
            f"Invalid scheduler {value!r}, valid schedulers: {', '.join(sorted(names))}"
        )
    return value


def _validate_shell(value: str, pm: pluggy.PluginManager | None) -> str:
    # The shell becomes argv[0] of the task container: an absolute path or a name looked up in
    # the image's PATH, never words a shell would split.
    if not _SHELL.fullmatch(value):
        raise PropertyError(
            f"Invalid shell {value!r}: expected an absolute path such as /bin/sh, "
            "or a command name, without spaces"
        )
    return value


def _validate_task_timeout(value: str, pm: pluggy.PluginManager | None) -> str:
    try:
        seconds = parse_task_timeout(value)
    except UsageError as exc:
        raise PropertyError(exc.message) from None
    # "none" is stored as such: an app's "none" must beat a global timeout.
    return "none" if seconds is None else value.strip()


def _validate_registry(value: str, pm: pluggy.PluginManager | None) -> str:
    # A registry host with an optional port and path prefix, as image references allow.
    if not _REGISTRY.fullmatch(value):
        raise PropertyError(
            f"Invalid registry {value!r}: expected HOST[:PORT][/PATH], e.g. registry.example:5000"
        )
    return value


def scheduler_names(pm: pluggy.PluginManager | None) -> tuple[str, ...]:
    """The scheduler names plugins provide (``scheduler_names`` hook), in first-seen order.

    Falls back to :data:`DEFAULT_SCHEDULERS` when there is no plugin manager or no plugin
    answers, so the names that ship with dokku-tasks are always accepted.
    """
    names: list[str] = []
    if pm is not None:
        for answer in pm.hook.scheduler_names():
            for name in answer or ():
                if name not in names:
                    names.append(name)
    return tuple(names) or DEFAULT_SCHEDULERS


# -- the table ------------------------------------------------------------------------------

_REGISTRY = re.compile(r"[a-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._-]+)*")

APP_JSON = Namespace(
    name="app-json",
    label="App-json",
    properties=(Property("appjson-path", default="app.json", validator=_validate_appjson_path),),
)

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

REGISTRY = Namespace(
    name="registry",
    label="Registry",
    properties=(Property("server", validator=_validate_registry),),
)

#: Every namespace, by name, in the order ``--help`` lists their commands.
NAMESPACES: Mapping[str, Namespace] = {ns.name: ns for ns in (APP_JSON, SCHEDULER, REGISTRY)}


def namespace(name: str) -> Namespace:
    """The namespace called ``name``; :class:`UsageError` for an unknown one."""
    try:
        return NAMESPACES[name]
    except KeyError:
        valid = ", ".join(NAMESPACES)
        raise UsageError(f"Unknown settings namespace {name!r}, valid: {valid}") from None


# -- reading --------------------------------------------------------------------------------


def app_value(store: PropertyStore, ns: str, app: str, prop: str) -> str:
    """The app's own value of ``ns``/``prop`` (empty when unset)."""
    return store.get(ns, app, namespace(ns).get_property(prop).name)


def global_value(store: PropertyStore, ns: str, prop: str) -> str:
    """The ``--global`` value of ``ns``/``prop`` (empty when unset)."""
    return store.get(ns, GLOBAL, namespace(ns).get_property(prop).name)


def computed(store: PropertyStore, ns: str, app: str, prop: str) -> str:
    """The value a deploy of ``app`` uses: the app's, else the global one, else the default."""
    default = namespace(ns).get_property(prop).default
    return app_value(store, ns, app, prop) or global_value(store, ns, prop) or default


def computed_scheduler(store: PropertyStore, app: str) -> str:
    """The scheduler ``app`` deploys with (``docker-local`` unless set)."""
    return computed(store, SCHEDULER.name, app, "selected")


def computed_shell(store: PropertyStore, app: str) -> str | None:
    """The task shell of ``app``; ``None`` means "bash where the image has it, else /bin/sh"."""
    return computed(store, SCHEDULER.name, app, "shell") or None


def computed_task_timeout(store: PropertyStore, app: str) -> float | None:
    """The task timeout of ``app`` in seconds; ``None`` for no timeout (the default).

    :raises PropertyError: the stored value is not a timeout (a property file edited by hand).
    """
    value = computed(store, SCHEDULER.name, app, "task-timeout")
    try:
        return parse_task_timeout(value)
    except UsageError as exc:
        raise PropertyError(
            f"Property scheduler task-timeout of {app} is not valid: {exc.message}"
        ) from None


# -- writing --------------------------------------------------------------------------------


@attrs.frozen
class SetResult:
    """What :func:`set_property` did: ``value`` is what was stored, ``""`` when it unset."""

    namespace: str
    app: str
    name: str
    value: str

    @property
    def message(self) -> str:
        """Dokku's line for it, without the ``=====>`` marker."""
        if self.value:
            return f"Setting {self.name} to {self.value}"
        return f"Unsetting {self.name}"


def set_property(
    registry: AppRegistry,
    ns: str,
    app: str,
    prop: str,
    value: str,
    *,
    pm: pluggy.PluginManager | None = None,
) -> SetResult:
    """Set ``ns``/``prop`` of ``app`` (or of :data:`GLOBAL`) to ``value``; empty unsets it.

    Checks in Dokku's order: the app (name, then existence, exit 20), the property (given,
    known, allowed globally), then the value (the property's validator).  Unsetting removes the
    property file, which is how a value goes back to its default.

    :raises InvalidAppNameError, AppNotFoundError, PropertyError: as above.
    """
    if app != GLOBAL:
        registry.require(app)
    if not prop:
        raise PropertyError("No property specified")
    spec = namespace(ns).get_property(prop)
    if app == GLOBAL and not spec.global_allowed:
        raise PropertyError("Property cannot be specified globally")
    store = registry.properties
    if value == "":
        store.unset(ns, app, spec.name)
        return SetResult(ns, app, spec.name, "")
    stored = spec.validate(value, pm)
    store.set(ns, app, spec.name, stored)
    return SetResult(ns, app, spec.name, stored)


# -- report ---------------------------------------------------------------------------------


def report_section(store: PropertyStore, ns: str, app: str) -> ReportSection:
    """The namespace's report section for ``app``: per property, computed, global, app rows.

    Keys are ``computed-PROP``, ``global-PROP``, ``PROP``; labels ``LABEL computed PROP`` and
    so on with ``-`` shown as a space.  The global row shows the default when unset, while its
    info flag and JSON value stay the raw (empty) value.
    """
    return _section(store, namespace(ns), app)


def global_report_section(store: PropertyStore, ns: str) -> ReportSection:
    """The namespace's ``--global`` report: per property, the computed and global rows only.

    The computed value is what an app without its own value gets: the global value, else the
    default.  Printed as ``=====> --global NAMESPACE information``, as Dokku does.
    """
    return _section(store, namespace(ns), None)


def _section(store: PropertyStore, spec: Namespace, app: str | None) -> ReportSection:
    # Each property file is read once; the computed value is derived from what was read.
    rows: list[ReportRow] = []
    for prop in spec.properties:
        global_raw = store.get(spec.name, GLOBAL, prop.name)
        app_raw = "" if app is None else store.get(spec.name, app, prop.name)
        rows += [
            ReportRow(
                f"computed-{prop.name}",
                f"{spec.label} computed {prop.label}",
                app_raw or global_raw or prop.default,
            ),
            ReportRow(
                f"global-{prop.name}",
                f"{spec.label} global {prop.label}",
                global_raw or prop.default,
                raw=global_raw,
            ),
        ]
        if app is not None:
            rows.append(ReportRow(prop.name, f"{spec.label} {prop.label}", app_raw))
    return ReportSection(title=spec.name, rows=tuple(rows))
