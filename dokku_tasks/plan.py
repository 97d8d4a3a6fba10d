"""``deploy --plan``: what a deploy would do, resolved without changing anything.

A plan takes no lock, writes no state and no history, and makes no change on the engine: it
only inspects images.  It never calls a phase hook (their host-side steps are ordinary Python);
plugins say what their phase hooks would return through ``plan_tasks``.  The files of an
``--image`` deploy (app.json, the Procfile), which the deploy reads through a container that
never starts, a plan reads from the image's layers on this host, with the same result
(:meth:`~dokku_tasks.engine.Engine.read_image_files_in_place`).  What a plan cannot know without
changing something it says so: the image a ``--source`` deploy builds does not exist yet (so the
ENTRYPOINT rule is applied at deploy time), and where the layers cannot be read here (a remote
engine, a storage driver other than overlay2, not root) the files and the tasks they declare
are named as not resolved.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .models import (
    APP_JSON_FILE,
    POSTDEPLOY,
    PREDEPLOY,
    PROCFILE_FILE,
    RELEASE,
    AppFile,
    AppJson,
    DeployContext,
    ImageInfo,
    Procfile,
)

if TYPE_CHECKING:
    import pluggy

    from .engine import Engine
    from .hooks import Hooks
    from .pipeline import DeployRequest
    from .properties import PropertyStore

#: The phase hooks, with the phase each is named after, in the order a deploy calls them.
_PHASE_HOOKS = (("pre_deploy", PREDEPLOY), ("release", RELEASE), ("post_deploy", POSTDEPLOY))


@attrs.frozen
class PlannedTask:
    """A task the deploy would run: ``argv`` is ``None`` when the image is built at deploy
    time (its ENTRYPOINT decides), with ``rule`` saying so."""

    phase: str
    plugin: str
    source: str
    command: str
    commit: bool
    argv: tuple[str, ...] | None
    rule: str


@attrs.frozen
class PlannedPhase:
    """A phase: its tasks, why it runs none (``skipped``), and the plugins whose phase hook
    cannot be planned (``unplanned``: their tasks are known only when the deploy runs)."""

    phase: str
    tasks: tuple[PlannedTask, ...] = ()
    skipped: str = ""
    unplanned: tuple[str, ...] = ()


@attrs.frozen
class PlannedProcess:
    process_type: str
    quantity: int
    argv: tuple[str, ...] | None
    checks: str


@attrs.frozen
class Plan:
    """Everything ``deploy --plan`` resolved."""

    app: str
    image: str
    scheduler: str
    first_deploy: bool
    files: dict[str, str]
    phases: tuple[PlannedPhase, ...]
    processes: tuple[PlannedProcess, ...]
    notes: tuple[str, ...] = ()
    #: False when the files (and the tasks and processes they give) could not be read: an
    #: ``--image`` deploy whose layers are not readable on this host.
    files_read: bool = True
    #: The facts not resolved, each with why (empty when everything was).
    unresolved: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"event": "plan", **attrs.asdict(self)}

    def lines(self) -> list[tuple[str, str]]:
        """The text form: ``(style, text)`` rows, ``step`` or ``info``."""
        rows = [
            ("section", f"Plan for a deploy of {self.app} (nothing is changed)"),
            ("step", f"Image: {self.image}"),
            ("step", f"Scheduler: {self.scheduler}"),
            ("step", "Files"),
        ]
        rows += [("info", f"{name}: {where}") for name, where in self.files.items()]
        for phase in self.phases:
            rows.append(("step", f"{phase.phase}"))
            if phase.skipped:
                rows.append(("info", f"skipped: {phase.skipped}"))
            for task in phase.tasks:
                kind = "committed" if task.commit else "ephemeral container"
                rows.append(
                    (
                        "info",
                        f"{task.phase} task from {task.source} ({task.plugin}, {kind}): {task.command}",
                    )
                )
                argv = " ".join(task.argv) if task.argv is not None else "(at deploy time)"
                rows.append(("info", f"  argv: {argv}"))
                rows.append(("info", f"  rule: {task.rule}"))
            if not phase.tasks and not phase.skipped:
                rows.append(
                    ("info", f"No {phase.phase} task")
                    if self.files_read
                    else ("info", "its tasks come from the files read at deploy time")
                )
            for plugin in phase.unplanned:
                rows.append(("info", f"plugin {plugin}: its tasks are known only when it runs"))
        rows.append(("step", "Processes"))
        if not self.files_read:
            rows.append(("info", "known only at deploy time, from the files read then"))
        for process in self.processes:
            argv = " ".join(process.argv) if process.argv is not None else "the image's CMD"
            rows.append(
                (
                    "info",
                    f"{process.process_type} x{process.quantity}: {argv} (checks: {process.checks})",
                )
            )
        rows += [("step", note) for note in self.notes]
        rows += [("step", f"Not resolved: {fact}") for fact in self.unresolved]
        return rows


def plan(
    request: DeployRequest,
    *,
    root: str | os.PathLike[str],
    pm: pluggy.PluginManager | None = None,
    engine: Any = None,
) -> Plan:
    """Resolve what ``request`` would do; change nothing.

    :param engine: makes the engine connection from an ``Interruption`` (default: connect).
    :raises DokkuTasksError: the request is not valid, or a file cannot be read or parsed.
    """
    from .apps import validate_app_name
    from .hooks import Hooks
    from .manager import get_plugin_manager
    from .pipeline import _check_request, _connect
    from .properties import PropertyStore
    from .specs import Interruption

    root = Path(root)
    app = validate_app_name(request.app)
    _check_request(request)
    plugins = Hooks(pm or get_plugin_manager())
    store = PropertyStore(root)
    connected: Engine = (engine or _connect)(Interruption())
    try:
        return _Planner(request, app, store, plugins, connected).plan()
    finally:
        connected.close()


class _Planner:
    def __init__(
        self,
        request: DeployRequest,
        app: str,
        store: PropertyStore,
        plugins: Hooks,
        engine: Engine,
    ) -> None:
        self.request = request
        self.app = app
        self.store = store
        self.plugins = plugins
        self.engine = engine

    def _setting(self, namespace: str, prop: str) -> str:
        return self.plugins.settings.computed(self.store, namespace, self.app, prop)

    def plan(self) -> Plan:
        from . import locate
        from .output import Output

        request = self.request
        image: ImageInfo | None = None
        if request.image is not None:
            image = self.engine.image(request.image)
            shown = f"{request.image} ({image.id}, ENTRYPOINT {list(image.entrypoint or [])})"
        else:
            shown = f"built from {request.source}/Dockerfile at deploy time"
        files: dict[str, str] = {}
        parsed: dict[str, object] = {}
        unresolved: list[str] = []
        app_files = self.plugins.app_files(app=self.app, properties=self.store)
        if request.source is not None:
            for file in app_files:
                data = locate.read_source_file(
                    request.source,
                    file.path,
                    file.setting,
                    limit=file.max_bytes,
                    filename=file.name,
                )
                if data is None:
                    files[file.name] = f"none at {file.path} in {request.source}"
                else:
                    parsed[file.name] = file.parse(data)
                    files[file.name] = f"{request.source}/{file.path}"
        else:
            assert image is not None  # no source tree: the files come from the image
            reason = self._read_from_image(image, app_files, files, parsed)
            if reason is not None:
                names = ", ".join(file.name for file in app_files)
                unresolved.append(
                    f"{names} (the image's layers cannot be read on this host: {reason}): the "
                    "tasks they declare, the process types and their checks are known only at "
                    "deploy time (give --source too to plan them)"
                )
        app_json = parsed.get(APP_JSON_FILE)
        procfile = parsed.get(PROCFILE_FILE)
        first_deploy = self.store.get("common", self.app, "deployed") != "true"
        context = DeployContext(
            app=self.app,
            image=image.id if image is not None else "",
            properties=self.store,
            env=request.env,
            app_json=app_json if isinstance(app_json, AppJson) else None,
            procfile=procfile if isinstance(procfile, Procfile) else None,
            files=parsed,
            source_dir=request.source,
            first_deploy=first_deploy,
            shell=self._setting("scheduler", "shell") or None,
            output=Output(text=False),
        )
        phases = [self._phase(hook, phase, context, image) for hook, phase in _PHASE_HOOKS]
        notes = []
        if context.app_json is not None and context.app_json.heroku_postdeploy:
            ran = not first_deploy or self.store.get("app-json", self.app, "heroku.postdeploy")
            if ran:
                notes.append(
                    "heroku.postdeploy: skipped: it runs once, and the app's first deploy is done"
                )
        scheduler = request.scheduler or self._setting("scheduler", "selected") or "docker-local"
        return Plan(
            app=self.app,
            image=shown,
            scheduler=scheduler,
            first_deploy=first_deploy,
            files=files,
            phases=tuple(phases),
            processes=() if unresolved else self._processes(context, image),
            notes=tuple(notes),
            files_read=not unresolved,
            unresolved=tuple(unresolved),
        )

    def _read_from_image(
        self,
        image: ImageInfo,
        app_files: list[AppFile],
        files: dict[str, str],
        parsed: dict[str, object],
    ) -> str | None:
        """Read and parse the files from the image's layers, as the deploy reads them through
        a container (same paths, limits, errors); fill ``files`` and ``parsed``.  Return why
        they could not be read here, or ``None``."""
        from . import locate
        from .errors import LayersUnreadableError

        if not app_files:
            return None
        try:
            read = self.engine.read_image_files_in_place(
                image.id,
                image.workdir,
                locate.image_paths(app_files),
                limit=max(file.max_bytes for file in app_files),
            )
        except LayersUnreadableError as exc:
            for file in app_files:
                files[file.name] = (
                    f"not read: read from {file.path} under the image's WORKDIR at deploy time"
                )
            return exc.reason

        contents = locate.read_app_files(image.workdir, app_files, read)
        for file in app_files:
            data = contents[file.name]
            where = read[locate.clean_relative(file.path, file.setting)].resolved
            if data is None:
                files[file.name] = f"none at {where} in the image"
            else:
                parsed[file.name] = file.parse(data)
                files[file.name] = f"{where} in the image"
        return None

    def _phase(
        self, hook: str, phase: str, context: DeployContext, image: ImageInfo | None
    ) -> PlannedPhase:
        from .pipeline import argv_rule

        if phase in self.request.skip:
            return PlannedPhase(phase, skipped=f"--skip {phase}")
        tasks = []
        for task in self.plugins.planned_tasks(app=self.app, context=context, hook=hook):
            if task.phase in self.request.skip:
                continue
            if image is not None:
                argv = self.plugins.task_argv(app=self.app, task=task, image=image, context=context)
                rule = argv_rule(image, argv) if argv is not None else "no plugin shapes it"
            else:
                argv, rule = None, "decided by the ENTRYPOINT of the image built at deploy time"
            tasks.append(
                PlannedTask(
                    task.phase, task.plugin, task.source, task.shown, task.commit, argv, rule
                )
            )
        unplanned = tuple(self.plugins.unplanned(hook))
        return PlannedPhase(phase, tasks=tuple(tasks), unplanned=unplanned)

    def _checks(self, process_type: str, context: DeployContext) -> str:
        listed = {
            prop: [t for t in self._setting("checks", prop).split(",") if t]
            for prop in ("disabled", "skipped")
        }
        for prop, types in listed.items():
            if "_all_" in types or process_type in types:
                return prop
        healthchecks = context.app_json.healthchecks.get(process_type) if context.app_json else None
        if healthchecks:
            return f"{len(healthchecks)} healthcheck(s) from app.json"
        wait = self._setting("checks", "default-wait")
        return f"must stay up {wait} s (default-wait)" if wait else "none"

    def _processes(
        self, context: DeployContext, image: ImageInfo | None
    ) -> tuple[PlannedProcess, ...]:
        from .procfile import command_words, expand_command

        formation = context.app_json.formation if context.app_json else {}
        if context.procfile is None:
            return (
                PlannedProcess("web", formation.get("web", 1), None, self._checks("web", context)),
            )
        planned = []
        for entry in context.procfile.entries:
            if entry.name == RELEASE:
                continue
            quantity = formation.get(entry.name, 1 if entry.name == "web" else 0)
            command = expand_command(entry.command, context.env, entry.name)
            words = command_words(command, entry.command, f"the {entry.name} process")
            planned.append(
                PlannedProcess(entry.name, quantity, words, self._checks(entry.name, context))
            )
        return tuple(planned)
