"""The deploy: build or inspect the image, run each phase's tasks, schedule, and record it all.

:func:`deploy` is the library's entry point; the CLI's ``deploy`` command is a thin wrapper.
"""

from __future__ import annotations

import os
import posixpath
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from . import history, locate
from .apps import AppRegistry, validate_app_name
from .converters import mount_tuple, string_map, string_tuple
from .errors import (
    DeployLockedError,
    DokkuTasksError,
    EngineError,
    InterruptedDeployError,
    PluginError,
    PropertyError,
    SourceError,
    TaskFailedError,
    UsageError,
    add_cleanup_note,
    cleanup_line,
)
from .locks import holding, images_lock, lock_path
from .models import (
    APP_JSON_FILE,
    HEROKU_POSTDEPLOY,
    PHASES,
    POSTDEPLOY,
    PREDEPLOY,
    PROCFILE_FILE,
    RELEASE,
    AppFile,
    AppJson,
    ContainerOptions,
    DeployContext,
    DeployResult,
    ImageInfo,
    Mount,
    Procfile,
    Task,
    TaskResult,
)
from .output import Output
from .procfile import command_words, expand_command
from .properties import PropertyStore
from .specs import Interruption

if TYPE_CHECKING:
    import pluggy

    from .engine import Engine
    from .hooks import Hooks
    from .scheduling import ProcessSpec, Scheduler, TaskSpec

_T = TypeVar("_T")

DEPLOYED_IMAGE_REPO = "dokku/{app}"
DEPLOYED_TAG = "latest"
#: The image deployed before ``latest``: what a rollback goes back to.
PREVIOUS_TAG = "previous"
#: The newest image of a deploy that failed before it moved ``latest``: what a retry reuses.
FAILED_TAG = "failed"
#: Every image of the app but these three (and what they are built from) is pruned after a
#: deploy.
KEPT_TAGS = (DEPLOYED_TAG, PREVIOUS_TAG, FAILED_TAG)


def prune_app_images(engine: Engine, app: str) -> None:
    """Remove every image of ``app`` but those the :data:`KEPT_TAGS` name."""
    repository = DEPLOYED_IMAGE_REPO.format(app=app)
    engine.prune_images(app, [f"{repository}:{tag}" for tag in KEPT_TAGS])


DEFAULT_SCHEDULER = "docker-local"
WEB = "web"
#: The ``common`` property listing the process types the last deploy ran (Dokku's scale file).
PROCESS_TYPES = "process-types"


@attrs.frozen
class DeployRequest:
    """What to deploy and how.

    ``source`` alone builds ``source/Dockerfile``; ``image`` alone deploys that image, reading
    app.json and the Procfile from its WORKDIR; both deploy the image with the files from the
    source tree.  ``env`` (config values for this deploy, laid over the app's stored config,
    hook ``config_values``) reach every task and process but never an image.
    ``task_timeout`` and ``scheduler`` of ``None`` fall back to the app's properties.
    """

    app: str
    source: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    image: str | None = None
    env: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=mount_tuple)
    network: str | None = None
    task_timeout: float | None = None
    scheduler: str | None = None
    #: Phases not to run (``--skip``): their hook is not called and their tasks do not run.
    skip: tuple[str, ...] = attrs.field(default=(), converter=string_tuple)


def deploy(
    request: DeployRequest,
    *,
    root: str | os.PathLike[str],
    output: Output | None = None,
    pm: pluggy.PluginManager | None = None,
    engine: Callable[[Interruption], Engine] | None = None,
) -> DeployResult:
    """Run a whole deploy of ``request.app``; return its record.

    A deploy that got as far as ``Application deployed`` stays a success: a signal or a
    clean-up failure after that point is reported as one warning line, not as a failure.

    :param root: the state root.
    :param output: where progress goes (default: stdout and stderr).
    :param pm: the plugin manager (default: :func:`~dokku_tasks.manager.get_plugin_manager`).
    :param engine: makes the deploy's engine connection, given the deploy's
        :class:`~dokku_tasks.specs.Interruption` (default: :meth:`Engine.connect`); a test passes
        a fake engine here.
    :raises DokkuTasksError: anything that fails the deploy.  The exception's ``result``
        attribute holds the :class:`DeployResult` when the deploy got as far as the engine;
        :func:`~dokku_tasks.errors.cleanup_line` says what cleaning up after it could not do.
    """
    from .hooks import Hooks
    from .manager import get_plugin_manager

    root = Path(root)
    output = output or Output()
    app = validate_app_name(request.app)
    _check_request(request)
    plugins = Hooks(pm or get_plugin_manager())
    registry = AppRegistry(root)
    progress = _Progress()
    recorder = None
    try:
        with _app_lock(root, app), images_lock(root, app), _signals_raise(progress):
            recorder, output = _start_history(root, app, request, plugins, registry, output)
            # First, before anything is built or read: a plugin may refuse the deploy.
            plugins.deploy_started(
                app=app, request=request, properties=registry.properties, output=output
            )
            connected = (engine or _connect)(progress.interruption)
            try:
                if not registry.exists(app):
                    output.step(f"Creating {app}...")
                    registry.create(app)
                result = _Deploy(
                    request, app, registry.properties, connected, plugins, output, progress
                ).run()
            except BaseException as exc:
                # The deploy's own error is the one to report; a failed clean-up is a note.
                _close_noting(connected, exc)
                raise
            try:
                connected.close()
            except DokkuTasksError as cleanup:
                output.error(f"Clean-up: {cleanup.message}")
            _finish_history(output, recorder, "succeeded", result, None)
            return result
    except _Stopped as stop:
        name = signal.Signals(stop.signum).name
        error = InterruptedDeployError(stop.signum, name, cleaned=cleanup_line(stop) is None)
        for note in getattr(stop, "__notes__", ()):
            add_cleanup_note(error, note)
        error.result = stop.result
        _finish_history(output, recorder, "interrupted", stop.result, error)
        raise error from None
    except DokkuTasksError as failure:
        _finish_history(output, recorder, "failed", failure.result, failure)
        raise
    except BaseException as failure:
        # A bug: the record must still say the deploy failed.
        _finish_history(output, recorder, "failed", None, failure)
        raise
    finally:
        # Left ignoring signals after one arrived, until the deploy's end is recorded.
        progress.restore_handlers()


def _start_history(
    root: Path,
    app: str,
    request: DeployRequest,
    plugins: Hooks,
    registry: AppRegistry,
    output: Output,
) -> tuple[history.Recorder | None, Output]:
    """Start the deploy's record (the app's lock is held); return it and the output that
    also feeds it.  Host-side steps become events as they run."""
    from .events import HostStepRun

    info = history_request(request)
    keep = history.configured_keep(
        plugins.settings.computed(registry.properties, "deploys", app, "keep")
    )
    recorder = history.start(root, app, info, keep=keep, warn=output.error)
    if recorder is not None:
        output = output.with_sink(recorder)
    output.emit(history.started_event(recorder, app, info))
    plugins.on_step = lambda step: output.emit(
        HostStepRun(step.plugin, step.hook, step.duration, step.error)
    )
    return recorder, output


def history_request(request: DeployRequest) -> dict[str, Any]:
    """What the history keeps of a request: enough for a retry, never a config value."""
    return {
        "source": str(request.source) if request.source is not None else None,
        "image": request.image,
        "mounts": [[m.source, m.target, m.read_only] for m in request.mounts],
        "network": request.network,
        "task_timeout": request.task_timeout,
        "scheduler": request.scheduler,
        "env_keys": sorted(request.env),
        "skip": list(request.skip),
    }


def _finish_history(
    output: Output,
    recorder: history.Recorder | None,
    outcome: str,
    result: DeployResult | None,
    error: BaseException | None,
) -> None:
    """The deploy's last event: how it ended (also when it was never recorded)."""
    from .events import DeployFinished

    if error is not None and recorder is not None:
        phase = getattr(error, "phase", None)
        if isinstance(phase, str):
            recorder.failed_phase(phase)
    if isinstance(error, DokkuTasksError):
        message: str | None = error.message
    elif error is not None:
        message = f"internal error: {type(error).__name__}: {error}"
    else:
        message = None
    output.emit(
        DeployFinished(
            outcome=outcome,
            duration=result.duration if result is not None else 0.0,
            image=result.image if result is not None else None,
            error=message,
        )
    )


def _connect(interruption: Interruption) -> Engine:
    from .engine import Engine

    return Engine.connect(interruption=interruption)


def _close_noting(engine: Engine, error: BaseException) -> None:
    """Close ``engine`` after ``error``; a clean-up failure becomes a note on ``error``."""
    try:
        engine.close()
    except DokkuTasksError as cleanup:
        add_cleanup_note(error, cleanup.message)


def destroy(
    app: str,
    *,
    root: Path,
    output: Output | None = None,
    pm: pluggy.PluginManager | None = None,
) -> None:
    """Destroy ``app``: its containers, services and images, then its state.

    Every scheduler removes what it runs of the app (:meth:`Scheduler.remove_app`), then the
    engine removes the app's images.  Holds the app's deploy lock, so an app is never destroyed
    under a running deploy.  When no engine answers, the state is still removed and a warning
    says what may remain.

    :param pm: the plugin manager (default: :func:`~dokku_tasks.manager.get_plugin_manager`).
    """
    from .engine import Engine

    output = output or Output()
    registry = AppRegistry(root)
    registry.require(validate_app_name(app))
    with _app_lock(root, app):
        try:
            engine = Engine.connect()
        except EngineError as exc:
            output.error(f"{exc.message}; containers and images of {app} were not removed")
        else:
            try:
                schedulers = _every_scheduler(pm, engine, app, registry.properties)
                containers = sum(scheduler.remove_app(app) for scheduler in schedulers)
                images = engine.remove_app_images(app)
            finally:
                engine.close()
            if containers or images:
                output.info(f"Removed {containers} container(s) and {images} image(s)")
        from .retirement import forget

        # Its old containers went with the rest: nothing of the app is left to retire.
        forget(root, app)
        registry.destroy(app)


def _every_scheduler(
    pm: pluggy.PluginManager | None, engine: Engine, app: str, store: PropertyStore
) -> list[Scheduler]:
    """Every registered scheduler, made for ``app`` (``apps:destroy`` empties each).

    The default scheduler comes last: a cluster's schedulers first stop restarting what they
    run, then the local one removes every container that is left.
    """
    from .hooks import Hooks
    from .manager import get_plugin_manager

    factories = Hooks(pm or get_plugin_manager()).schedulers
    names = sorted(factories, key=lambda name: (name == DEFAULT_SCHEDULER, name))
    return [factories[name](engine=engine, app=app, properties=store) for name in names]


def configured_task_timeout(value: str, app: str) -> float | None:
    """The task timeout the ``scheduler`` ``task-timeout`` value gives; ``None`` for none.

    :raises PropertyError: the stored value is not a timeout (a property file edited by hand).
    """
    from .options import parse_task_timeout

    try:
        return parse_task_timeout(value or "none")
    except UsageError as exc:
        raise PropertyError(
            f"Property scheduler task-timeout of {app} is not valid: {exc.message}"
        ) from None


def _check_request(request: DeployRequest) -> None:
    if request.source is None and request.image is None:
        raise UsageError("deploy needs --source DIR, --image IMAGE, or both")
    if request.source is not None:
        if not request.source.is_dir():
            raise SourceError(f"Source directory {request.source} does not exist")
        if request.image is None and not (request.source / "Dockerfile").is_file():
            raise SourceError(f"Source directory {request.source} has no Dockerfile")
    if request.task_timeout is not None and request.task_timeout <= 0:
        raise UsageError("--task-timeout must be a positive number of seconds")
    for phase in request.skip:
        if phase not in PHASES:
            raise UsageError(
                f"Unknown phase {phase!r} to skip: expected one of {', '.join(PHASES)}"
            )


@contextmanager
def _app_lock(root: Path, app: str) -> Iterator[None]:
    """Hold the app's deploy lock; refuse at once when another deploy holds it.

    :raises StateError: the lock file cannot be created: a state root that is read-only, out of
        space or inodes, or has a file where ``ROOT/locks`` belongs.  Taken before anything
        else, so a deploy that could not record its result never starts.
    """
    with holding(root, lock_path(root, app), wait=False) as held:
        if not held:
            raise DeployLockedError(app)
        yield


class _Stopped(BaseException):
    """A signal stopped the deploy.

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` on the
    way out (the Docker SDK has some around its requests) can swallow or rewrap it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.result: DeployResult | None = None


@attrs.define
class _Progress:
    """What the signal handler needs to know about the deploy in progress."""

    interruption: Interruption = attrs.field(factory=Interruption)
    #: Set once ``Application deployed`` is printed: from then on a signal cannot fail it.
    succeeded: bool = False
    #: The caller's SIGINT and SIGTERM handlers, still to be put back after a signal.
    saved_handlers: dict[int, Any] = attrs.field(factory=dict)

    def restore_handlers(self) -> None:
        """Put the caller's handlers back (once)."""
        for sig, old in self.saved_handlers.items():
            signal.signal(sig, old)
        self.saved_handlers.clear()


@contextmanager
def _signals_raise(progress: _Progress) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`_Stopped`, so the clean-up runs.

    The signal also bounds the clean-up (``progress.interruption``), so a deploy stops within
    seconds even when the engine hangs.  After the first signal further ones are ignored, so
    a second Ctrl-C cannot cut the removal of the task container short.  A signal after the
    deploy succeeded only cuts short the wait for the last clean-up.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress.interruption.signal(signum)
        if not progress.succeeded:
            raise _Stopped(signum)

    progress.saved_handlers = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        # After a signal, further ones stay ignored while the deploy records its end:
        # deploy() restores the caller's handlers as it returns or raises (a library caller
        # keeps its own handling; the CLI ignores further signals itself while it prints
        # its last line).
        if progress.interruption.signum is None:
            progress.restore_handlers()


@attrs.define
class _TaskPrinter:
    """Frames a task's live output the way Dokku does, and reports the task's start."""

    output: Output
    app: str
    phase: str
    container_id: str = ""
    spec: TaskSpec | None = None

    @property
    def short_id(self) -> str:
        return self.container_id[:9]

    def started(self, container_id: str) -> None:
        self.container_id = container_id
        if self.spec is not None:
            from .events import TaskStarted

            task = self.spec.task
            self.output.emit(
                TaskStarted(
                    phase=task.phase,
                    plugin=task.plugin,
                    source=task.source,
                    command=task.shown,
                    image=self.spec.image.id,
                    argv=self.spec.argv,
                    rule=argv_rule(self.spec.image, self.spec.argv),
                    container_id=container_id,
                    commit=task.commit,
                )
            )
        self.output.section(f"Start of {self.app} {self.phase} task ({self.short_id}) output")

    def stdout(self, line: str) -> None:
        self.output.task_output(self.phase, "stdout", line)

    def stderr(self, line: str) -> None:
        self.output.task_output(self.phase, "stderr", line)

    def ended(self) -> None:
        if self.short_id:
            self.output.section(f"End of {self.app} {self.phase} task ({self.short_id}) output")


def argv_rule(image: ImageInfo, argv: tuple[str, ...]) -> str:
    """Which ENTRYPOINT/tini rule shaped ``argv`` for ``image``, in words."""
    shell = len(argv) >= 2 and argv[1] == "-c"
    entrypoint = tuple(image.entrypoint or ())
    if not entrypoint:
        return "shell: no ENTRYPOINT" if shell else "as given: no ENTRYPOINT"
    shown = " ".join(entrypoint)
    if shell and "tini" in posixpath.basename(entrypoint[0]):
        return f"shell: tini ENTRYPOINT ({shown})"
    return f"{'shell' if shell else 'words'}: ENTRYPOINT ({shown})"


class _Deploy:
    """One deploy in progress: the state that the phases share."""

    def __init__(
        self,
        request: DeployRequest,
        app: str,
        store: PropertyStore,
        engine: Engine,
        plugins: Hooks,
        output: Output,
        progress: _Progress | None = None,
    ) -> None:
        from .scheduling import TaskOwner

        self.request = request
        self.progress = progress or _Progress()
        self.owner = TaskOwner(store.root.absolute())
        self.app = app
        self.store = store
        self.engine = engine
        self.plugins = plugins
        self.output = output
        self.results: list[TaskResult] = []
        self.started = time.monotonic()
        self.deployed_image: str | None = None
        #: The newest image this deploy made (built, or committed by predeploy).
        self.newest_image: str | None = None
        self.containers: tuple[str, ...] = ()
        #: Whether the app's other images were pruned already, beside postdeploy.
        self.pruned_early = False

    def run(self) -> DeployResult:
        try:
            self._run()
        except BaseException as exc:
            if not isinstance(exc, _Stopped):
                self._keep_images(failed=True)
            self._finish(exc)
            raise
        self._keep_images(failed=False)
        return self._finish(None)

    def _keep_images(self, failed: bool) -> None:
        """Tag what rollback and retry need, and prune every other image of the app.

        Done in the background (the deploy waits for it before it returns); a failure there
        is a clean-up failure, never the deploy's.
        """
        repository = DEPLOYED_IMAGE_REPO.format(app=self.app)
        newest = self.newest_image if self.newest_image != self.deployed_image else None

        pruned_early = self.pruned_early

        def keep_and_prune() -> None:
            failed_ref = f"{repository}:{FAILED_TAG}"
            # The image `failed` named, which the early prune kept: the tag may now leave it.
            was_failed = self.engine.image_id(failed_ref) if pruned_early else None
            freed = None
            if failed and newest is not None:
                self.engine.tag(newest, repository, FAILED_TAG)
                freed = was_failed if was_failed != newest else None
            elif not failed:
                self.engine.untag(failed_ref)
                freed = was_failed
            if not pruned_early:
                prune_app_images(self.engine, self.app)
            elif freed is not None:
                self.engine.remove_image_if_untagged(freed)

        # Beside the retirement of the old containers: an image they still use is kept anyway.
        self.engine.later(keep_and_prune, lane="images")

    def _prune_beside_postdeploy(self) -> None:
        """Prune the app's other images now, in the background, while postdeploy runs.

        Listing the engine's images is slow on a host with many (about 80 ms a listing here,
        and a prune lists twice); started after the switch, it overlaps postdeploy instead of
        delaying the deploy's end.  The tags that keep images are where they stay: `latest`
        and `previous` are set, and whatever the rest of the deploy does it moves only the
        `failed` tag, which :meth:`_keep_images` then settles with the one image it frees.
        """

        def prune() -> None:
            prune_app_images(self.engine, self.app)

        self.engine.later(prune, lane="images")
        self.pruned_early = True

    def _result(self, error: BaseException | None) -> DeployResult:
        if error is None:
            message = None
        elif isinstance(error, DokkuTasksError):
            message = error.message
        elif isinstance(error, _Stopped):
            message = f"Deploy interrupted by {signal.Signals(error.signum).name}"
        else:  # a bug: the record must still say the deploy failed
            message = f"internal error: {type(error).__name__}: {error}"
        return DeployResult(
            app=self.app,
            image=self.deployed_image,
            tasks=self.results,
            containers=self.containers,
            error=message,
            duration=time.monotonic() - self.started,
            steps=self.plugins.steps,
        )

    def _finish(self, error: BaseException | None) -> DeployResult:
        """Tell the plugins how the deploy ended; never let that hide the deploy's own error."""
        result = self._result(error)
        if isinstance(error, (DokkuTasksError, _Stopped)):
            error.result = result
        try:
            self.plugins.deploy_finished(app=self.app, result=result)
        except DokkuTasksError as hook_error:
            if error is None:
                raise
            self.output.error(hook_error.message)
        return result

    def _run(self) -> None:
        scheduler_name = self.request.scheduler or self._setting("scheduler", "selected")
        scheduler = self._scheduler(scheduler_name)
        local = scheduler if scheduler.can_commit else self._scheduler(DEFAULT_SCHEDULER)
        removed = scheduler.remove_stale_tasks(self.app, self.owner)
        if removed:
            self.output.step(
                f"Removed {removed} stale task container(s) left by an interrupted deploy of {self.app}"
            )
        shell = self._setting("scheduler", "shell") or None
        timeout = self.request.task_timeout
        if timeout is None:
            timeout = self._task_timeout()

        self.deployed_image = self.engine.image_id(
            f"{DEPLOYED_IMAGE_REPO.format(app=self.app)}:{DEPLOYED_TAG}"
        )
        app_files = self.plugins.app_files(app=self.app, properties=self.store)
        if self.request.source is not None:
            # From a source tree the files are checked before the build spends any time.
            files = self._read_files(app_files, None)
            image = self._image()
        else:
            image = self._image()
            files = self._read_files(app_files, image)
        first_deploy = self.store.get("common", self.app, "deployed") != "true"
        given = DeployContext(
            app=self.app,
            image=image.id,
            properties=self.store,
            env=self.request.env,
            app_json=_of_type(files.get(APP_JSON_FILE), AppJson),
            procfile=_of_type(files.get(PROCFILE_FILE), Procfile),
            files=files,
            source_dir=self.request.source,
            first_deploy=first_deploy,
            shell=shell,
            output=self.output,
        )
        # The app's config (config:set, app.json env): the deploy's own values win.
        stored = self.plugins.config_values(app=self.app, context=given)
        base = attrs.evolve(given, env={**stored, **self.request.env})
        runner = _PhaseRunner(self, base, scheduler, local, timeout)

        image = runner.phase("pre_deploy", PREDEPLOY, image)
        image = runner.phase("release", RELEASE, image)

        self.output.step(f"Deploying {self.app} via the {scheduler.name} scheduler...")
        context = attrs.evolve(base, image=image.id)
        processes = self._processes(image, context)
        self.containers = scheduler.deploy_processes(
            self.app,
            image,
            processes,
            runner.options(context, "deploy"),
            check=lambda started, probe: self.plugins.check_processes(
                app=self.app, context=context, processes=started, probe=probe
            ),
        )
        self.store.set(
            "common", self.app, PROCESS_TYPES, ",".join(p.process_type for p in processes)
        )
        from .events import ProcessesScheduled

        reference = scheduler.image_reference(image)
        nodes = tuple(", ".join(n) for n in scheduler.nodes_of(self.containers))
        self.output.emit(
            ProcessesScheduled(scheduler.name, image.id, self.containers, reference, nodes)
        )
        repository = DEPLOYED_IMAGE_REPO.format(app=self.app)
        if self.deployed_image is not None and self.deployed_image != image.id:
            self.engine.tag(self.deployed_image, repository, PREVIOUS_TAG)
        self.engine.tag(image.id, repository, DEPLOYED_TAG)
        self.deployed_image = image.id
        if reference:
            self.output.info(f"Image pushed as {reference}")
        for name, on in zip(self.containers, nodes, strict=True):
            self.output.info(f"Running {name} on {on}" if on else f"Running {name}")

        self._prune_beside_postdeploy()
        runner.phase("post_deploy", POSTDEPLOY, image)
        # Only a deploy that got through postdeploy ends the app's "first deploy": a failed
        # scripts.dokku.postdeploy must not use up the once-only scripts.postdeploy, and
        # neither must a deploy that skipped it.
        if not {POSTDEPLOY, HEROKU_POSTDEPLOY} & set(self.request.skip):
            self.store.set("common", self.app, "deployed", "true")
        self.progress.succeeded = True
        self.output.section(f"Application deployed: {self.app}")

    def _setting(self, namespace: str, prop: str) -> str:
        """The value a plugin's setting has for this app; empty when no plugin registered it."""
        return self.plugins.settings.computed(self.store, namespace, self.app, prop)

    def _task_timeout(self) -> float | None:
        return configured_task_timeout(self._setting("scheduler", "task-timeout"), self.app)

    def _scheduler(self, name: str) -> Scheduler:
        factory = self.plugins.schedulers.get(name or DEFAULT_SCHEDULER)
        if factory is None:
            known = ", ".join(sorted(self.plugins.schedulers))
            raise UsageError(f"Unknown scheduler {name!r}; available: {known}")
        return factory(engine=self.engine, app=self.app, properties=self.store)

    def _image(self) -> ImageInfo:
        if self.request.image is not None:
            return self.engine.image(self.request.image)
        assert self.request.source is not None  # _check_request guarantees one of the two
        self.output.step(f"Building {self.app} from {self.request.source}/Dockerfile...")
        from .specs import APP_LABEL

        image_id = self.engine.build(
            self.request.source,
            {APP_LABEL: self.app},
            self.output.task_stdout,
            on_rebuild=self.output.step,
        )
        self.newest_image = image_id
        return self.engine.image(image_id)

    def _read_files(self, files: list[AppFile], image: ImageInfo | None) -> dict[str, object]:
        """Read and parse the files plugins asked for; a missing file is left out."""
        if self.request.source is not None:
            source = self.request.source
            found = {
                file.name: locate.read_source_file(
                    source, file.path, file.setting, limit=file.max_bytes, filename=file.name
                )
                for file in files
            }
        else:
            assert image is not None  # no source tree: the files come from the image
            found = self._read_from_image(image, files)
        return {
            file.name: file.parse(data) for file in files if (data := found[file.name]) is not None
        }

    def _read_from_image(self, image: ImageInfo, files: list[AppFile]) -> dict[str, bytes | None]:
        from .specs import APP_LABEL

        if not files:
            return {}
        read = self.engine.read_image_files(
            image.id,
            image.workdir,
            locate.image_paths(files),
            {APP_LABEL: self.app, **self.owner.labels},
            limit=max(file.max_bytes for file in files),
        )
        return locate.read_app_files(image.workdir, files, read)

    def argv(self, task: Task, image: ImageInfo, context: DeployContext) -> tuple[str, ...]:
        """The container argv for ``task`` in ``image``, as the ``task_argv`` hook shapes it."""
        argv = self.plugins.task_argv(app=self.app, task=task, image=image, context=context)
        if argv is None:
            raise UsageError(
                f"No plugin turned the {task.phase} command into a container command "
                "(is the entrypoint plugin disabled?)"
            )
        return tuple(argv)

    def _processes(self, image: ImageInfo, context: DeployContext) -> list[ProcessSpec]:
        """The formation: each Procfile process type (but ``release``) with its quantity and
        the Procfile command's words as the container's CMD, under the image's ENTRYPOINT.

        A process type the app ran before, or that app.json's formation names, but that the
        Procfile no longer has is skipped with Dokku's warning line.
        """
        from .scheduling import ProcessSpec

        formation = context.app_json.formation if context.app_json else {}
        if context.procfile is None:
            if not image.cmd and not image.entrypoint:
                raise SourceError(
                    f"Image {image.ref} has no CMD and there is no Procfile: nothing to run for web"
                )
            return [ProcessSpec(WEB, formation.get(WEB, 1), None)]
        present = set(context.procfile.names)
        before = [t for t in self.store.get("common", self.app, PROCESS_TYPES).split(",") if t]
        for process_type in sorted({WEB, *formation, *before} - present - {RELEASE}):
            self.output.error(f"Skipping {process_type} as it is missing from the current Procfile")
        specs = []
        for entry in context.procfile.entries:
            if entry.name == RELEASE:
                continue
            quantity = formation.get(entry.name, 1 if entry.name == WEB else 0)
            command = expand_command(entry.command, context.env, entry.name)
            words = command_words(command, entry.command, f"the {entry.name} process")
            specs.append(ProcessSpec(entry.name, quantity, words))
        return specs


class _PhaseRunner:
    """Calls a phase's hook and runs the tasks it returns, in order."""

    def __init__(
        self,
        deploy: _Deploy,
        base: DeployContext,
        scheduler: Scheduler,
        local: Scheduler,
        timeout: float | None,
    ) -> None:
        self.deploy = deploy
        self.base = base
        self.scheduler = scheduler
        self.local = local
        self.timeout = timeout

    def options(self, context: DeployContext, phase: str) -> ContainerOptions:
        request = self.deploy.request
        # context.env: the stored config with the deploy's own values laid over it.
        merged = ContainerOptions(env=context.env, mounts=request.mounts, network=request.network)
        for extra in self.deploy.plugins.container_options(
            app=self.deploy.app, context=context, phase=phase
        ):
            merged = merged.merged(extra)
        return merged

    def phase(self, hook_name: str, main_phase: str, image: ImageInfo) -> ImageInfo:
        """Run one phase; return the image later phases use (changed by a committing task)."""
        from .events import PhaseStarted

        deploy = self.deploy
        context = attrs.evolve(self.base, image=image.id)
        skip = deploy.request.skip
        if main_phase in skip:
            # The whole phase: its hook (host-side steps too) is not called.
            deploy.output.emit(PhaseStarted(main_phase, skipped="--skip"))
            deploy.output.step(f"Skipping {main_phase} phase (--skip {main_phase})")
            return image
        deploy.output.emit(PhaseStarted(main_phase))
        tasks = deploy.plugins.phase(hook_name, app=deploy.app, context=context)
        phases = [main_phase, *sorted({t.phase for t in tasks} - {main_phase}, key=_phase_order)]
        for phase in phases:
            phase_tasks = [t for t in tasks if t.phase == phase]
            if phase in skip:
                if phase_tasks:
                    deploy.output.emit(PhaseStarted(phase, skipped="--skip"))
                    deploy.output.step(f"Skipping {phase} phase (--skip {phase})")
                continue
            if phase != main_phase and phase_tasks:
                deploy.output.emit(PhaseStarted(phase))
            if phase == main_phase or phase_tasks:
                deploy.output.step(f"Checking for {phase} task")
            if not phase_tasks:
                if phase == main_phase:
                    deploy.output.info(f"No {phase} task found, skipping")
                continue
            for task in phase_tasks:
                if task.commit and hook_name != "pre_deploy":
                    raise PluginError(
                        task.plugin, f"returned a committing {task.phase} task", hook_name
                    )
                image = self._run_task(task, image, attrs.evolve(context, image=image.id))
        return image

    def _run_task(self, task: Task, image: ImageInfo, context: DeployContext) -> ImageInfo:
        from .scheduling import TaskSpec

        deploy = self.deploy
        if task.commit:
            deploy.output.info(f"Executing {task.phase} task from {task.source}: {task.shown}")
        else:
            deploy.output.info(
                f"Executing {task.phase} task from {task.source} in ephemeral container: {task.shown}"
            )
        spec = TaskSpec(
            app=deploy.app,
            task=task,
            image=image,
            argv=deploy.argv(task, image, context),
            options=self.options(context, task.phase),
            timeout=self.timeout,
            shell=context.shell or "/bin/sh",
            owner=deploy.owner,
        )
        runner = self.local if task.commit else self.scheduler
        printer = _TaskPrinter(deploy.output, deploy.app, task.phase, spec=spec)
        if task.before_run is not None:
            task.before_run()
        began = time.monotonic()

        def record(container_id: str, exit_code: int, committed: str | None = None) -> None:
            from .events import TaskFinished

            deploy.output.emit(
                TaskFinished(
                    phase=task.phase,
                    exit_status=exit_code,
                    duration=time.monotonic() - began,
                    container_id=container_id,
                    committed_image=committed,
                )
            )
            deploy.results.append(
                TaskResult(
                    phase=task.phase,
                    command=task.shown,
                    plugin=task.plugin,
                    image=image.id,
                    container_id=container_id,
                    exit_code=exit_code,
                    duration=time.monotonic() - began,
                    committed_image=committed,
                )
            )

        try:
            run = runner.run_task(spec, printer)
        except BaseException:
            record(printer.container_id, -1)  # timed out, interrupted, or the engine failed
            raise
        finally:
            printer.ended()
        record(run.container_id, run.exit_code, run.committed_image)
        if run.exit_code != 0:
            raise TaskFailedError(task.phase, task.shown, run.exit_code)
        if run.committed_image is None:
            return image
        if not run.committed_image:
            raise EngineError("Committing of 'predeploy' to image failed")
        deploy.newest_image = run.committed_image
        return deploy.engine.image(run.committed_image)


def _of_type(value: object, kind: type[_T]) -> _T | None:
    """``value`` when it is a ``kind``; what another plugin parsed a file into is not."""
    return value if isinstance(value, kind) else None


def _phase_order(phase: str) -> tuple[int, str]:
    return (PHASES.index(phase) if phase in PHASES else len(PHASES), phase)
