"""Building the plugin manager: built-in plugins, then the ``dokku_tasks`` entry points.

Nothing here runs at import time; every command builds its own manager with
:func:`get_plugin_manager`, and calls its hooks through :class:`dokku_tasks.hooks.Hooks`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterable, Mapping

import attrs
import pluggy

from . import hookspecs
from .errors import PluginLoadError

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
    ("checks", "dokku_tasks.plugins.checks"),
    ("ps", "dokku_tasks.plugins.ps"),
    ("deploys", "dokku_tasks.plugins.deploys"),
    ("config", "dokku_tasks.plugins.config"),
)

#: The hooks called one implementation at a time (see hooks.Hooks), so that each task, each
#: host-side step and each file carries its plugin: they cannot be wrapped.
PHASE_HOOKS = (
    "deploy_started",
    "app_files",
    "config_values",
    "plan_tasks",
    "pre_deploy",
    "release",
    "post_deploy",
)


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

    Entry points are loaded with pluggy's own loader.  Plugins are registered as they are
    (``get_plugin`` returns the plugin, ``unregister`` works); the core calls hooks through
    :class:`~dokku_tasks.hooks.Hooks`, which names the plugin behind every failure.

    :param entrypoints: also load third-party plugins from the ``dokku_tasks`` entry-point group.
    :param blocked: plugin names not to load; defaults to ``$DOKKU_TASKS_DISABLE_PLUGINS``.
    :raises PluginLoadError: a plugin fails to import, implements a hook that does not exist,
        or wraps a phase hook.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in blocked_from_env() if blocked is None else blocked:
        pm.set_blocked(name)
    for name, module_name in BUILTIN_PLUGINS:
        if pm.is_blocked(name):
            continue
        pm.register(importlib.import_module(module_name), name)
    if entrypoints:
        _load_entrypoints(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(pm.get_name(exc.plugin) or "?", _one_line(exc)) from exc
    _refuse_phase_wrappers(pm)
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    try:
        pm.load_setuptools_entrypoints(ENTRYPOINT_GROUP)
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(_failing_entry_point(pm), _one_line(exc)) from exc
    except Exception as exc:  # any import-time failure of third-party code
        raise PluginLoadError(_failing_entry_point(pm), _describe(exc)) from exc


def _failing_entry_point(pm: pluggy.PluginManager) -> str:
    """The entry point pluggy's loader stopped at: the first one it would load but did not.

    The loader goes through distributions and their entry points in order and registers each
    before the next, so every one before the failure is registered (or blocked).
    """
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRYPOINT_GROUP and not (
                pm.has_plugin(ep.name) or pm.is_blocked(ep.name)
            ):
                return str(ep.name)
    return "?"


def _refuse_phase_wrappers(pm: pluggy.PluginManager) -> None:
    # These hooks are called one implementation at a time, so that each task and step
    # carries its plugin: a wrapper around them would never run.
    for hook in PHASE_HOOKS:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                raise PluginLoadError(
                    impl.plugin_name,
                    f"hook {hook} is called one implementation at a time and cannot be a wrapper",
                )


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin, built-ins first, with its origin and implemented hooks.

    The origin is ``built-in``, the distribution and version an entry point came from, or
    ``registered`` for a plugin a caller registered itself.  A built-in blocked by
    ``$DOKKU_TASKS_DISABLE_PLUGINS`` is listed as ``disabled``; other blocked names are left
    out (they may name no plugin at all).
    """
    builtin = {name for name, _ in BUILTIN_PLUGINS}
    distributions = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
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
        if name in builtin:
            origin = "built-in"
        elif (dist := distributions.get(id(plugin))) is not None:
            origin = f"{dist.metadata['Name']} {dist.version}"
        else:
            origin = "registered"
        infos.append(PluginInfo(name=name, origin=origin, hooks=tuple(hooks)))
    infos.sort(key=lambda info: (info.origin != "built-in", info.name))
    return infos


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
