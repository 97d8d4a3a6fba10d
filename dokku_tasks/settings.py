"""The property namespaces behind the ``NAMESPACE:set`` and ``NAMESPACE:report`` commands.

Plugins register their namespaces (``register_settings``; the built-ins ``app-json``,
``scheduler`` and ``registry`` too) into a :class:`SettingsRegistry`.  Each :class:`Namespace` lists its properties; each
:class:`Property` says whether it may be set ``--global``, what its value falls back to, and how
a value is checked.  One set of functions serves every namespace: reading the app, global and
computed values, setting and unsetting with Dokku's checks and messages, and building the
report section with Dokku's rows (computed, global, app value, per property).

Values live in the :class:`~dokku_tasks.properties.PropertyStore` under the namespace's name:
``ROOT/config/<namespace>/<app>/<property>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import attrs

from .errors import PropertyError, UsageError
from .models import ReportRow, ReportSection
from .properties import GLOBAL, PropertyStore

if TYPE_CHECKING:
    from .apps import AppRegistry
    from .hooks import Hooks

#: A value check: gets the value and the loaded plugins (``None`` when the caller has none),
#: returns the value to store, raises :class:`PropertyError` with a one-line reason.
Validator = Callable[[str, "Hooks | None"], str]


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

    def validate(self, value: str, plugins: Hooks | None = None) -> str:
        """The value to store for ``value``; :class:`PropertyError` when it is not valid."""
        return value if self.validator is None else self.validator(value, plugins)


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


class SettingsRegistry:
    """The namespaces plugins registered, by name, in registration order."""

    def __init__(self) -> None:
        self._namespaces: dict[str, Namespace] = {}

    def register(self, namespace: Namespace) -> None:
        """Add ``namespace``; :class:`UsageError` when its name is taken."""
        if namespace.name in self._namespaces:
            raise UsageError(f"Settings namespace {namespace.name!r} is registered twice")
        self._namespaces[namespace.name] = namespace

    def __iter__(self) -> Iterator[Namespace]:
        return iter(self._namespaces.values())

    def __contains__(self, name: object) -> bool:
        return name in self._namespaces

    def get(self, name: str) -> Namespace | None:
        return self._namespaces.get(name)

    def computed(self, store: PropertyStore, name: str, app: str, prop: str) -> str:
        """The computed value of property ``prop`` of namespace ``name`` for ``app``; empty
        when no plugin registered that namespace or property."""
        ns = self._namespaces.get(name)
        if ns is None or prop not in ns.property_names:
            return ""
        return computed(store, ns, app, prop)

    def namespace(self, name: str) -> Namespace:
        """The namespace called ``name``; :class:`UsageError` for an unknown one."""
        found = self._namespaces.get(name)
        if found is None:
            valid = ", ".join(self._namespaces)
            raise UsageError(f"Unknown settings namespace {name!r}, valid: {valid}")
        return found


# -- reading --------------------------------------------------------------------------------


def app_value(store: PropertyStore, ns: Namespace, app: str, prop: str) -> str:
    """The app's own value of ``ns``/``prop`` (empty when unset)."""
    return store.get(ns.name, app, ns.get_property(prop).name)


def global_value(store: PropertyStore, ns: Namespace, prop: str) -> str:
    """The ``--global`` value of ``ns``/``prop`` (empty when unset)."""
    return store.get(ns.name, GLOBAL, ns.get_property(prop).name)


def computed(store: PropertyStore, ns: Namespace, app: str, prop: str) -> str:
    """The value a deploy of ``app`` uses: the app's, else the global one, else the default."""
    default = ns.get_property(prop).default
    return app_value(store, ns, app, prop) or global_value(store, ns, prop) or default


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
    ns: Namespace,
    app: str,
    prop: str,
    value: str,
    *,
    plugins: Hooks | None = None,
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
    spec = ns.get_property(prop)
    if app == GLOBAL and not spec.global_allowed:
        raise PropertyError("Property cannot be specified globally")
    store = registry.properties
    if value == "":
        store.unset(ns.name, app, spec.name)
        return SetResult(ns.name, app, spec.name, "")
    stored = spec.validate(value, plugins)
    store.set(ns.name, app, spec.name, stored)
    return SetResult(ns.name, app, spec.name, stored)


# -- report ---------------------------------------------------------------------------------


def report_section(
    store: PropertyStore,
    ns: Namespace,
    app: str,
    global_values: Mapping[str, str] | None = None,
) -> ReportSection:
    """The namespace's report section for ``app``: per property, computed, global, app rows.

    Keys are ``computed-PROP``, ``global-PROP``, ``PROP``; labels ``LABEL computed PROP`` and
    so on with ``-`` shown as a space.  The global row shows the default when unset, while its
    info flag and JSON value stay the raw (empty) value.  ``global_values`` (from
    :func:`global_values`) spares a report of many apps reading the global files again for each.
    """
    return _section(store, ns, app, global_values)


def global_values(store: PropertyStore, ns: Namespace) -> dict[str, str]:
    """The raw ``--global`` value of every property of ``ns`` (empty when unset)."""
    return {prop.name: store.get(ns.name, GLOBAL, prop.name) for prop in ns.properties}


def global_report_section(store: PropertyStore, ns: Namespace) -> ReportSection:
    """The namespace's ``--global`` report: per property, the computed and global rows only.

    The computed value is what an app without its own value gets: the global value, else the
    default.  Printed as ``=====> --global NAMESPACE information``, as Dokku does.
    """
    return _section(store, ns, None)


def _section(
    store: PropertyStore,
    spec: Namespace,
    app: str | None,
    global_raws: Mapping[str, str] | None = None,
) -> ReportSection:
    # Each property file is read once; the computed value is derived from what was read.
    globals_ = global_values(store, spec) if global_raws is None else global_raws
    rows: list[ReportRow] = []
    for prop in spec.properties:
        global_raw = globals_[prop.name]
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
