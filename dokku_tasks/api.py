"""The library's functions for what the command line does: apps, settings, deploys.

Each takes the state root as a ``str`` or a :class:`~pathlib.Path` and checks its input exactly
as the matching command does, raising the same :class:`~dokku_tasks.errors.DokkuTasksError`
(whose ``message`` is the command's one line and ``exit_code`` its exit status).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pluggy

    from .output import Output
    from .settings import SetResult


def create_app(app: str, *, root: str | os.PathLike[str]) -> None:
    """Create ``app`` (``apps:create``).

    :raises InvalidAppNameError: the name breaks the rule.
    :raises AppExistsError: ``Name is already taken: APP``.
    """
    from .apps import AppRegistry, validate_app_name
    from .errors import AppExistsError

    registry = AppRegistry(Path(root))
    if registry.exists(validate_app_name(app)):
        raise AppExistsError(f"Name is already taken: {app}")
    registry.create(app)


def list_apps(*, root: str | os.PathLike[str]) -> list[str]:
    """The apps under ``root``, sorted (``apps:list``)."""
    from .apps import AppRegistry

    return AppRegistry(Path(root)).list()


def destroy_app(app: str, *, root: str | os.PathLike[str], output: Output | None = None) -> None:
    """Destroy ``app``: its containers, services, images and every property (``apps:destroy``).

    :raises AppNotFoundError: the app does not exist (exit code 20).
    """
    from .pipeline import destroy

    destroy(app, root=Path(root), output=output)


def get_setting(
    namespace: str,
    app: str,
    prop: str,
    *,
    root: str | os.PathLike[str],
    pm: pluggy.PluginManager | None = None,
) -> str:
    """The value a deploy of ``app`` uses for ``namespace``/``prop``: the app's, else the global
    one, else the default (``NS:report APP --NS-computed-PROP``).

    :raises UsageError: no plugin registered ``namespace``.
    :raises PropertyError: no such property, or its file cannot be read.
    """
    from .hooks import Hooks
    from .manager import get_plugin_manager
    from .properties import PropertyStore
    from .settings import computed

    ns = Hooks(pm or get_plugin_manager()).settings.namespace(namespace)
    return computed(PropertyStore(Path(root)), ns, app, prop)


def set_setting(
    namespace: str,
    app: str,
    prop: str,
    value: str,
    *,
    root: str | os.PathLike[str],
    pm: pluggy.PluginManager | None = None,
) -> SetResult:
    """Set ``namespace``/``prop`` of ``app`` (or ``"--global"``) to ``value``; ``""`` unsets it
    (``NS:set``), with the property's own check of the value.

    :raises AppNotFoundError, PropertyError, UsageError: as ``NS:set`` reports them.
    """
    from .apps import AppRegistry
    from .hooks import Hooks
    from .manager import get_plugin_manager
    from .settings import set_property

    plugins = Hooks(pm or get_plugin_manager())
    ns = plugins.settings.namespace(namespace)
    return set_property(AppRegistry(Path(root)), ns, app, prop, value, plugins=plugins)
