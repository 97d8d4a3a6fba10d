"""Building the plugin manager: built-in plugins, then the ``dokku_tasks`` entry points.

Nothing here runs at import time; every command builds its own manager with
:func:`get_plugin_manager`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import types
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import DokkuTasksError, PluginError, PluginLoadError
from .models import Task

ENTRYPOINT_GROUP = "dokku_tasks"
DISABLE_ENV = "DOKKU_TASKS_DISABLE_PLUGINS"

#: Built-in plugins, registered directly under these names, in this order.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("entrypoint", "dokku_tasks.plugins.entrypoint"),
    ("app-json", "dokku_tasks.plugins.app_json"),
    ("procfile", "dokku_tasks.plugins.procfile"),
    ("scheduler", "dokku_tasks.plugins.scheduler"),
    ("docker-local", "dokku_tasks.plugins.docker_local"),
    ("swarm", "dokku_tasks.plugins.swarm"),
)

_PHASE_HOOKS = frozenset({"pre_deploy", "release", "post_deploy"})


@attrs.frozen
class PluginInfo:
    """A loaded plugin: its name, where it comes from, and the hooks it implements."""

    name: str
    origin: str
    hooks: tuple[str, ...]
    disabled: bool = False


def blocked_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The plugin names listed in ``$DOKKU_TASKS_DISABLE_PLUGINS`` (comma-separated)."""
    value = (environ if environ is not None else os.environ).get(DISABLE_ENV, "")
    return tuple(name.strip() for name in value.split(",") if name.strip())


def get_plugin_manager(
    *, entrypoints: bool = True, blocked: Iterable[str] | None = None
) -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specs, the built-ins and (optionally) entry points.

    :param entrypoints: also load third-party plugins from the ``dokku_tasks`` entry-point group.
    :param blocked: plugin names not to load; defaults to ``$DOKKU_TASKS_DISABLE_PLUGINS``.
    :raises PluginLoadError: a plugin fails to import or implements a hook that does not exist.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in blocked_from_env() if blocked is None else blocked:
        pm.set_blocked(name)
    for name, module_name in BUILTIN_PLUGINS:
        if pm.is_blocked(name):
            continue
        register_plugin(pm, importlib.import_module(module_name), name)
    if entrypoints:
        _load_entrypoints(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(pm.get_name(exc.plugin) or "?", str(exc)) from exc
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRYPOINT_GROUP or ep.name in seen:
                continue
            seen.add(ep.name)
            if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # any import-time failure of third-party code
                raise PluginLoadError(ep.name, f"{type(exc).__name__}: {exc}") from exc
            try:
                proxy = register_plugin(pm, plugin, ep.name)
            except pluggy.PluginValidationError as exc:
                raise PluginLoadError(ep.name, str(exc)) from exc
            proxy.dokku_tasks_origin = f"{dist.metadata['Name']} {dist.version}"


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str) -> types.SimpleNamespace:
    """Register ``plugin`` (a module, class instance or namespace) under ``name``.

    What is registered is a stand-in for ``plugin`` whose hook functions raise errors naming it.

    pluggy re-raises a plugin's exception unchanged.  Registering wrapped copies of the hook
    functions (``functools.wraps`` keeps their marker and signature) keeps pluggy's own calling
    rules (ordering, firstresult, wrappers) while every failure, and every task a phase hook
    returns, carries the plugin's name.
    """
    proxy = types.SimpleNamespace(__name__=name, dokku_tasks_origin="registered")
    for attr in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        hook = opts.get("specname") or attr
        setattr(
            proxy,
            attr,
            _named(
                getattr(plugin, attr),
                name,
                hook,
                bool(opts.get("wrapper") or opts.get("hookwrapper")),
            ),
        )
    pm.register(proxy, name=name)
    return proxy


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin, built-ins first, with its origin and implemented hooks.

    A built-in blocked by ``$DOKKU_TASKS_DISABLE_PLUGINS`` is listed as ``disabled``; other
    blocked names are left out (they may name no plugin at all).
    """
    builtin = {name for name, _ in BUILTIN_PLUGINS}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # a blocked name
            if name in builtin:
                infos.append(PluginInfo(name=name, origin="built-in", hooks=(), disabled=True))
            continue
        hooks = sorted(
            caller.name
            for caller in pm.get_hookcallers(plugin) or ()
            if not caller.name.startswith("_")
        )
        origin = (
            "built-in" if name in builtin else getattr(plugin, "dokku_tasks_origin", "registered")
        )
        infos.append(PluginInfo(name=name, origin=origin, hooks=tuple(hooks)))
    infos.sort(key=lambda info: (info.origin != "built-in", info.name))
    return infos


def _named(
    function: Callable[..., Any], plugin: str, hook: str, wrapper: bool
) -> Callable[..., Any]:
    if wrapper:

        @functools.wraps(function)
        def named_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            try:
                return (yield from function(*args, **kwargs))
            except DokkuTasksError:
                raise
            except Exception as exc:
                raise PluginError(plugin, _describe(exc), hook) from exc

        return named_wrapper

    @functools.wraps(function)
    def named(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
        except PluginError:
            raise
        except DokkuTasksError as exc:
            raise PluginError(plugin, exc.message, hook) from exc
        except Exception as exc:
            raise PluginError(plugin, _describe(exc), hook) from exc
        if hook in _PHASE_HOOKS:
            return _stamp_tasks(result, plugin, hook)
        return result

    return named


def _stamp_tasks(result: object, plugin: str, hook: str) -> list[Task] | None:
    if result is None:
        return None
    items = [result] if isinstance(result, Task) else result
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, Task) for t in items):
        raise PluginError(
            plugin, f"returned {result!r}; expected a Task, a list of Tasks or None", hook
        )
    return [attrs.evolve(task, plugin=plugin) for task in items]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
