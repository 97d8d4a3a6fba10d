"""The core's typed calls of every hook: one method a hook, so mypy checks each call site.

:class:`Hooks` wraps a pluggy manager.  Every failure of a hook implementation comes out as a
:class:`~dokku_tasks.errors.PluginError` that names the plugin it came from, found from the
implementation's frame in the traceback, so plugins are registered as they are (no stand-ins)
and an error raised in a wrapper is named too.  The phase hooks are called one implementation
at a time, which is how each task they return is stamped with its plugin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import CodeType
from typing import TYPE_CHECKING, Any

import attrs

from .errors import ChecksFailedError, DeployRefusedError, DokkuTasksError, PluginError
from .models import AppFile, ContainerOptions, HostStep, ReportSection, Task

if TYPE_CHECKING:
    import click
    import pluggy

    from .models import DeployContext, DeployResult, ImageInfo
    from .output import Output
    from .pipeline import DeployRequest
    from .properties import PropertyStore
    from .scheduling import ProcessProbe, SchedulerFactory, StartedProcess
    from .settings import SettingsRegistry


_PHASES = frozenset({"pre_deploy", "release", "post_deploy"})


class Hooks:
    """Typed calls of the hooks of ``pm``; the registries plugins fill, built once."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        #: The host-side steps run so far (phase hooks and ``deploy_started``), in order.
        self.steps: list[HostStep] = []
        #: Called with each host-side step as it is recorded (the deploy turns it into an event).
        self.on_step: Callable[[HostStep], None] | None = None
        self._settings: SettingsRegistry | None = None
        self._schedulers: dict[str, SchedulerFactory] | None = None

    # -- registries ------------------------------------------------------------------------

    @property
    def settings(self) -> SettingsRegistry:
        """Every settings namespace plugins registered (``register_settings``)."""
        if self._settings is None:
            from .settings import SettingsRegistry

            registry = SettingsRegistry()
            self._call("register_settings", register=registry.register)
            self._settings = registry
        return self._settings

    @property
    def schedulers(self) -> dict[str, SchedulerFactory]:
        """Every scheduler plugins registered (``register_schedulers``), by name."""
        if self._schedulers is None:
            found: dict[str, SchedulerFactory] = {}

            def register(name: str, factory: SchedulerFactory) -> None:
                if name in found:
                    raise DokkuTasksError(f"Scheduler {name!r} is registered twice")
                found[name] = factory

            self._call("register_schedulers", register=register)
            self._schedulers = found
        return self._schedulers

    def register_commands(self, cli: click.Group) -> None:
        self._call("register_commands", cli=cli)

    # -- a deploy --------------------------------------------------------------------------

    def deploy_started(
        self, *, app: str, request: DeployRequest, properties: PropertyStore, output: Output
    ) -> None:
        self._each("deploy_started", app=app, request=request, properties=properties, output=output)

    def pre_deploy(self, *, app: str, context: DeployContext) -> list[Task]:
        return self._tasks("pre_deploy", app=app, context=context)

    def release(self, *, app: str, context: DeployContext) -> list[Task]:
        return self._tasks("release", app=app, context=context)

    def post_deploy(self, *, app: str, context: DeployContext) -> list[Task]:
        return self._tasks("post_deploy", app=app, context=context)

    def phase(self, hook: str, *, app: str, context: DeployContext) -> list[Task]:
        """The tasks of phase hook ``hook`` (``pre_deploy``, ``release``, ``post_deploy``)."""
        if hook not in _PHASES:
            raise ValueError(f"{hook!r} is not a phase hook")
        return self._tasks(hook, app=app, context=context)

    def planned_tasks(self, *, app: str, context: DeployContext, hook: str) -> list[Task]:
        """What the implementations of ``plan_tasks`` say phase hook ``hook`` would return."""
        tasks: list[Task] = []
        for plugin, result in self._each(
            "plan_tasks", record=False, app=app, context=context, hook=hook
        ):
            tasks += _stamped(result, plugin, "plan_tasks")
        return tasks

    def unplanned(self, hook: str) -> list[str]:
        """The plugins implementing phase hook ``hook`` but not ``plan_tasks``."""
        planned = {impl.plugin_name for impl in self.pm.hook.plan_tasks.get_hookimpls()}
        return sorted(
            impl.plugin_name
            for impl in getattr(self.pm.hook, hook).get_hookimpls()
            if impl.plugin_name not in planned
        )

    def deploy_finished(self, *, app: str, result: DeployResult) -> None:
        self._call("deploy_finished", app=app, result=result)

    def check_processes(
        self,
        *,
        app: str,
        context: DeployContext,
        processes: Sequence[StartedProcess],
        probe: ProcessProbe,
    ) -> None:
        """Run every plugin's checks of the new process containers.

        :raises ChecksFailedError: a check failed (as the plugin raised it).
        """
        try:
            self.pm.hook.check_processes(app=app, context=context, processes=processes, probe=probe)
        except ChecksFailedError:
            raise
        except Exception as exc:
            if isinstance(exc, PluginError):
                raise
            raise _plugin_error(
                self._culprit("check_processes", exc), "check_processes", exc
            ) from exc

    def app_files(self, *, app: str, properties: PropertyStore) -> list[AppFile]:
        """Every file plugins asked the deploy to read, in the order they were named.

        :raises PluginError: two plugins named the same file (the second one is named).
        """
        files: dict[str, AppFile] = {}
        for plugin, result in self._each("app_files", record=False, app=app, properties=properties):
            items = result or ()
            if not isinstance(items, Sequence) or not all(isinstance(f, AppFile) for f in items):
                raise PluginError(
                    plugin, f"returned {result!r}; expected a list of AppFiles or None", "app_files"
                )
            for file in items:
                if file.name in files:
                    raise PluginError(
                        plugin, f"names file {file.name!r}, which another plugin reads", "app_files"
                    )
                files[file.name] = file
        return list(files.values())

    def config_values(self, *, app: str, context: DeployContext) -> dict[str, str]:
        """Every plugin's config values for ``app``, laid over each other in call order.

        :raises PluginError: a plugin returned something else than a mapping of valid keys to
            strings without a NUL (the value is never shown).
        """
        from .options import is_env_key

        values: dict[str, str] = {}
        for plugin, result in self._each("config_values", app=app, context=context):
            if result is None:
                continue
            if not isinstance(result, Mapping):
                raise PluginError(
                    plugin,
                    f"returned {type(result).__name__}; expected a mapping of config values "
                    "or None",
                    "config_values",
                )
            for key, value in result.items():
                if not isinstance(key, str) or not is_env_key(key):
                    raise PluginError(plugin, f"returned the invalid key {key!r}", "config_values")
                if not isinstance(value, str) or "\x00" in value:
                    raise PluginError(
                        plugin, f"returned an invalid value for {key}", "config_values"
                    )
                values[key] = value
        return values

    def container_options(
        self, *, app: str, context: DeployContext, phase: str
    ) -> list[ContainerOptions]:
        results = self._call("container_options", app=app, context=context, phase=phase)
        return [r for r in results if isinstance(r, ContainerOptions)]

    def task_argv(
        self, *, app: str, task: Task, image: ImageInfo, context: DeployContext
    ) -> tuple[str, ...] | None:
        argv = self._call("task_argv", app=app, task=task, image=image, context=context)
        return None if argv is None else tuple(argv)

    def report(self, *, app: str, properties: PropertyStore) -> list[ReportSection]:
        results = self._call("report", app=app, properties=properties)
        return [r for r in results if isinstance(r, ReportSection)]

    # -- calling ---------------------------------------------------------------------------

    def _call(self, hook: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.pm.hook, hook)(**kwargs)
        except PluginError:
            raise
        except DeployRefusedError as refusal:
            refusal.plugin_name = refusal.plugin_name or self._culprit(hook, refusal)
            raise
        except Exception as exc:
            raise _plugin_error(self._culprit(hook, exc), hook, exc) from exc

    def _tasks(self, hook: str, **kwargs: Any) -> list[Task]:
        tasks: list[Task] = []
        for plugin, result in self._each(hook, **kwargs):
            tasks += _stamped(result, plugin, hook)
        return tasks

    def _each(
        self, hook: str, /, *, record: bool = True, **kwargs: Any
    ) -> list[tuple[str, object]]:
        """Call each implementation of ``hook`` on its own; record each as a host step
        unless ``record`` is false."""
        results: list[tuple[str, object]] = []
        # pluggy's calling order (tryfirst/trylast honoured): the last registered first.
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            began = time.monotonic()
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
            except BaseException as exc:
                error = _step_error(impl.plugin_name, hook, exc)
                if record:
                    self._step(
                        HostStep(impl.plugin_name, hook, time.monotonic() - began, error.message)
                    )
                if error is exc or not isinstance(exc, Exception):
                    raise
                raise error from exc
            if record:
                self._step(HostStep(impl.plugin_name, hook, time.monotonic() - began))
            results.append((impl.plugin_name, result))
        return results

    def _step(self, step: HostStep) -> None:
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    def _culprit(self, hook: str, exc: Exception) -> str:
        """The plugin whose implementation of ``hook`` ``exc`` came out of."""
        codes: dict[CodeType, str] = {}
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            code = getattr(impl.function, "__code__", None)
            if isinstance(code, CodeType):
                codes[code] = impl.plugin_name
        culprit = "?"
        frame = exc.__traceback__
        while frame is not None:  # the innermost implementation on the way is the culprit
            culprit = codes.get(frame.tb_frame.f_code, culprit)
            frame = frame.tb_next
        return culprit


def _step_error(plugin: str, hook: str, exc: BaseException) -> DokkuTasksError:
    """What a failed step is reported as: a refusal or a plugin error as they are, any other
    failure as a :class:`PluginError` naming ``plugin``."""
    if isinstance(exc, (PluginError, DeployRefusedError)):
        if isinstance(exc, DeployRefusedError) and not exc.plugin_name:
            exc.plugin_name = plugin
        return exc
    if isinstance(exc, Exception):
        return _plugin_error(plugin, hook, exc)
    return PluginError(plugin, type(exc).__name__, hook)  # a signal: recorded, re-raised


def _plugin_error(plugin: str, hook: str, exc: Exception) -> PluginError:
    detail = exc.message if isinstance(exc, DokkuTasksError) else _describe(exc)
    return PluginError(plugin, detail, hook)


def _stamped(result: object, plugin: str, hook: str) -> list[Task]:
    if result is None:
        return []
    items = [result] if isinstance(result, Task) else result
    if not isinstance(items, Sequence) or not all(isinstance(t, Task) for t in items):
        raise PluginError(
            plugin, f"returned {result!r}; expected a Task, a list of Tasks or None", hook
        )
    return [attrs.evolve(task, plugin=plugin) for task in items]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
