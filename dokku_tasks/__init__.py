"""dokku-tasks: Dokku's deployment tasks (predeploy, release, postdeploy) as a Python library.

The public API is re-exported here and imported lazily, so that ``import dokku_tasks`` (and
``dokku-tasks --help``) stays fast and loads no plugin and no Docker SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import create_app, destroy_app, get_setting, list_apps, set_setting
    from .config_store import ConfigStore
    from .errors import (
        AppNotFoundError,
        DeployRefusedError,
        DokkuTasksError,
        ParseError,
        PluginError,
        TaskFailedError,
        TaskTimeoutError,
    )
    from .hooks import Hooks
    from .hookspecs import hookimpl
    from .manager import get_plugin_manager
    from .models import (
        AppFile,
        AppJson,
        ContainerOptions,
        DeployContext,
        DeployResult,
        EnvVar,
        Healthcheck,
        HostStep,
        ImageInfo,
        Mount,
        Procfile,
        ReportRow,
        ReportSection,
        Task,
        TaskResult,
    )
    from .oneoff import RunResult, run
    from .output import Output
    from .pipeline import DeployRequest, deploy
    from .properties import PropertyStore
    from .retry import retry
    from .settings import Namespace, Property

__version__ = "0.1.0"

__all__ = [
    "AppFile",
    "AppJson",
    "AppNotFoundError",
    "ConfigStore",
    "ContainerOptions",
    "DeployContext",
    "DeployRefusedError",
    "DeployRequest",
    "DeployResult",
    "DokkuTasksError",
    "EnvVar",
    "Healthcheck",
    "Hooks",
    "HostStep",
    "ImageInfo",
    "Mount",
    "Namespace",
    "Output",
    "ParseError",
    "PluginError",
    "Procfile",
    "Property",
    "PropertyStore",
    "ReportRow",
    "ReportSection",
    "RunResult",
    "Task",
    "TaskFailedError",
    "TaskResult",
    "TaskTimeoutError",
    "__version__",
    "create_app",
    "deploy",
    "destroy_app",
    "get_plugin_manager",
    "get_setting",
    "hookimpl",
    "list_apps",
    "retry",
    "run",
    "set_setting",
]

# Which module each public name comes from; everything else is a model or an error.
_HOMES = {
    "create_app": "api",
    "destroy_app": "api",
    "get_setting": "api",
    "list_apps": "api",
    "set_setting": "api",
    "Hooks": "hooks",
    "Namespace": "settings",
    "Property": "settings",
    "hookimpl": "hookspecs",
    "get_plugin_manager": "manager",
    "deploy": "pipeline",
    "DeployRequest": "pipeline",
    "run": "oneoff",
    "retry": "retry",
    "RunResult": "oneoff",
    "Output": "output",
    "PropertyStore": "properties",
    "ConfigStore": "config_store",
}


def __getattr__(name: str) -> Any:
    if name not in __all__ or name == "__version__":
        raise AttributeError(f"module 'dokku_tasks' has no attribute {name!r}")
    module = _HOMES.get(name) or ("errors" if name.endswith("Error") else "models")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
