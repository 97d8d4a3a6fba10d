"""One-off commands: ``dokku-tasks run APP -- COMMAND...``, Dokku's ``dokku run``.

:func:`run` runs a command in a fresh container of the app's deployed image
(``dokku/APP:latest``), the way a deployment task runs: the same ENTRYPOINT/tini rule (the
``task_argv`` hook, phase ``run``), config values through the docker-local scheduler's env file
(never in the container's configuration), mounts, network, task timeout and the
``container_options`` hook.  Its output is streamed live and printed as the command wrote it,
without Dokku's frame; the container is removed on every path; the command's exit status is
the result.  Each run is recorded in the app's deploy history (``kind: run``).

Locks, and why a run takes no deploy lock:

- Dokku lets ``run`` go on during a deploy, so a run never takes (nor waits for) the app's deploy
  lock, and never makes a deploy wait or fail.  Nor does it lock out ``apps:destroy``: a run
  whose app is destroyed meanwhile loses its container with the rest of the app.
- Its container is owned (:class:`~dokku_tasks.scheduling.TaskOwner`) by ``ROOT/runs``, whose
  lock file ``ROOT/runs/locks/APP.lock`` every live run of the app holds shared.  A deploy
  reaps a task container only when its owner's lock is free, so it leaves live runs alone and
  removes what a killed run left.  A run that finds no other live run of the app removes those
  leftovers itself (containers and env files), under that lock held exclusively, before it
  creates anything.
- The history numbers a run's record as it numbers a deploy's, under
  ``ROOT/locks/APP.history.lock`` (taken by :func:`dokku_tasks.history.start`), so a run and
  a deploy that start in the same instant never get one id.
"""

from __future__ import annotations

import fcntl
import math
import os
import shlex
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from . import history
from .apps import AppRegistry, state_errors, validate_app_name
from .converters import mount_tuple, string_map
from .errors import (
    DokkuTasksError,
    InterruptedDeployError,
    TaskTimeoutError,
    UsageError,
    add_cleanup_note,
    cleanup_line,
)
from .models import ContainerOptions, DeployContext, ImageInfo, Mount, Task
from .output import Output, task_line
from .specs import Interruption

if TYPE_CHECKING:
    import pluggy

    from .engine import Engine
    from .hooks import Hooks
    from .pipeline import _Progress
    from .properties import PropertyStore
    from .scheduling import Scheduler, TaskOwner, TaskSpec

#: The phase a one-off command runs as: its container's ``dokku_phase_script`` label, the
#: ``phase`` the ``task_argv`` and ``container_options`` hooks get, and its events' phase.
RUN_PHASE = "run"
#: The scheduler that runs one-off commands: the local engine, whatever the app's scheduler.
RUN_SCHEDULER = "docker-local"
#: The exit status of a command stopped by its timeout, as ``timeout(1)`` gives.
EXIT_TIMED_OUT = 124
#: Under the state root: the owner of run containers, and its lock directory.
RUNS_DIRECTORY = "runs"


@attrs.frozen
class RunResult:
    """How a one-off command ended.

    ``exit_status`` is the command's own; ``container_id`` the (removed) container it ran in;
    ``duration`` its wall time in seconds; ``deploy_id`` its number in the app's history
    (``None`` when it could not be recorded).
    """

    app: str
    exit_status: int
    container_id: str
    duration: float
    deploy_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class NotDeployedError(DokkuTasksError):
    """``run`` of an app that has no deployed image (``dokku/APP:latest``)."""

    def __init__(self, app: str) -> None:
        super().__init__(f"App {app} has not been deployed")
        self.app = app


class RunTimeoutError(TaskTimeoutError):
    """The command ran past its timeout and was killed; exit code 124, as ``timeout(1)``."""

    exit_code = EXIT_TIMED_OUT

    def __init__(self, app: str, command: str, seconds: float) -> None:
        super().__init__(RUN_PHASE, seconds)
        shown = int(seconds) if float(seconds).is_integer() else seconds
        self.args = (f"Run of {app} timed out after {shown} seconds: {command}",)
        self.app = app
        self.command = command


class InterruptedRunError(InterruptedDeployError):
    """SIGINT or SIGTERM stopped the run; exit code 128 + the signal number.

    A subclass of :class:`~dokku_tasks.errors.InterruptedDeployError`, so the CLI prints its
    line with further signals ignored, as it does for a deploy.
    """

    def __init__(self, app: str, signum: int, name: str, removed: bool) -> None:
        super().__init__(signum, name, cleaned=removed)
        done = "; its container was removed" if removed else ""
        self.args = (f"Run of {app} interrupted by {name}{done}",)
        self.app = app


def run(
    app: str,
    command: Sequence[str],
    *,
    root: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    mounts: Sequence[Mount] = (),
    network: str | None = None,
    task_timeout: float | None = None,
    output: Output | None = None,
    pm: pluggy.PluginManager | None = None,
    engine: Callable[[Interruption], Engine] | None = None,
) -> RunResult:
    """Run ``command`` (its words) in a fresh container of ``app``'s deployed image.

    The command's output is printed as it comes, as the command wrote it: stdout lines on
    ``output.out``, stderr lines on ``output.err``.  A command that exits non-zero is not an
    error: its status is in the result.

    :param root: the state root.
    :param env: config values for the command, laid over the app's stored config (hook
        ``config_values``); they reach it as a task gets them (an env file, never the
        container's configuration).
    :param mounts: bind mounts; :param network: the container's network.
    :param task_timeout: seconds before the command is killed; ``None``: the app's
        ``scheduler`` ``task-timeout`` property (none unless set).
    :param output: where output and errors go, and the sinks that get the run's events
        (default: stdout and stderr).
    :param pm: the plugin manager (default: :func:`~dokku_tasks.manager.get_plugin_manager`).
    :param engine: makes the engine connection, given the run's
        :class:`~dokku_tasks.specs.Interruption` (default: :meth:`Engine.connect`).
    :raises AppNotFoundError: the app does not exist (exit code 20).
    :raises NotDeployedError: it has no deployed image.
    :raises RunTimeoutError: the command ran past its timeout (exit code 124).
    :raises InterruptedRunError: SIGINT or SIGTERM stopped it (its container is removed first).
    :raises DokkuTasksError: anything else that kept the command from running to its end (the
        engine, a plugin); :func:`~dokku_tasks.errors.cleanup_line` says what cleaning up
        could not do.
    """
    from .hooks import Hooks
    from .manager import get_plugin_manager
    from .pipeline import _connect, _Progress, _signals_raise, _Stopped

    root = Path(root).absolute()
    output = output or Output()
    app = validate_app_name(app)
    words = command_words(command)
    check_timeout(task_timeout)
    registry = AppRegistry(root)
    registry.require(app)
    plugins = Hooks(pm or get_plugin_manager())
    store = registry.properties
    timeout = task_timeout if task_timeout is not None else _configured_timeout(plugins, store, app)
    request = _Request(
        app=app,
        command=shlex.join(words),
        env=string_map(env),
        mounts=mount_tuple(mounts),
        network=network,
        timeout=timeout,
        shell=_setting(plugins, store, app, "scheduler", "shell") or None,
    )
    progress = _Progress()
    state = _State(output)
    try:
        with _signals_raise(progress), _run_owner(root, app) as owner:
            connected = (engine or _connect)(progress.interruption)
            with _closing(connected, state):
                scheduler = _scheduler(plugins, connected, app, store)
                if owner.exclusive:
                    # No other run of the app is live: remove what killed ones left.
                    scheduler.remove_stale_tasks(app, owner.owner)
                owner.share()
                result = _Run(request, plugins, store, connected, scheduler, state).go(
                    owner.owner, progress
                )
            # Still under the signal handlers, which no longer stop anything: the record
            # is completed before a late Ctrl-C can cut it short.
            state.finish("succeeded" if result.ok else "failed", None, result.exit_status)
    except _Stopped as stop:
        name = signal.Signals(stop.signum).name
        removed = bool(state.container_id) and cleanup_line(stop) is None
        error = InterruptedRunError(app, stop.signum, name, removed)
        for note in getattr(stop, "__notes__", ()):
            add_cleanup_note(error, note)
        state.finish("interrupted", error)
        raise error from None
    except TaskTimeoutError as timed_out:
        late = RunTimeoutError(app, request.command, timed_out.seconds)
        for note in getattr(timed_out, "__notes__", ()):
            add_cleanup_note(late, note)
        state.finish("failed", late)
        raise late from None
    except BaseException as failure:
        state.finish("failed", failure)
        raise
    finally:
        # Left ignoring signals after one arrived, until the run's end is recorded.
        progress.restore_handlers()
    return result


def command_words(command: Sequence[str]) -> tuple[str, ...]:
    """The command's words, checked: at least one, none with a NUL byte.

    :raises UsageError: no command, or a NUL byte in a word.
    :raises TypeError: ``command`` is one string rather than its words.
    """
    if isinstance(command, str):
        raise TypeError("command must be a sequence of words, such as ['ls', '-la'], not a string")
    words = tuple(command)
    if not words:
        raise UsageError("run needs a command: dokku-tasks run APP -- COMMAND...")
    if any("\x00" in word for word in words):
        raise UsageError("The command contains a NUL byte")
    return words


def check_timeout(seconds: float | None) -> None:
    """:raises UsageError: ``seconds`` is not ``None`` nor a finite number above 0."""
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise UsageError("--task-timeout must be a positive number of seconds")


# -- the run ---------------------------------------------------------------------------------


@attrs.frozen
class _Request:
    app: str
    command: str
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    network: str | None
    timeout: float | None
    shell: str | None

    def recorded(self, image: ImageInfo) -> dict[str, Any]:
        """What the history keeps: never a config value, only the names."""
        return {
            "kind": RUN_PHASE,
            "command": self.command,
            "source": None,
            "image": image.id,
            "mounts": [[m.source, m.target, m.read_only] for m in self.mounts],
            "network": self.network,
            "task_timeout": self.timeout,
            "env_keys": sorted(self.env),
        }


@attrs.define
class _State:
    """What the run did so far: its output (with the history's sink once recorded), its
    container, and whether its start was reported (then its end is too)."""

    output: Output
    recorder: history.Recorder | None = None
    reported: bool = False
    container_id: str = ""
    image: str | None = None
    began: float = attrs.field(factory=time.monotonic)

    def finish(self, outcome: str, error: BaseException | None, exit_status: int = -1) -> None:
        """The run's last event (only when its start was reported)."""
        from .events import DeployFinished

        if not self.reported:
            return
        self.reported = False
        if isinstance(error, DokkuTasksError):
            message: str | None = error.message
        elif error is not None:
            message = f"internal error: {type(error).__name__}: {error}"
        else:
            message = None if exit_status == 0 else f"Command exited with status {exit_status}"
        self.output.emit(
            DeployFinished(
                outcome=outcome,
                duration=time.monotonic() - self.began,
                image=self.image,
                error=message,
            )
        )


class _Run:
    """One run in progress, once the engine is connected."""

    def __init__(
        self,
        request: _Request,
        plugins: Hooks,
        store: PropertyStore,
        engine: Engine,
        scheduler: Scheduler,
        state: _State,
    ) -> None:
        self.request = request
        self.plugins = plugins
        self.store = store
        self.engine = engine
        self.scheduler = scheduler
        self.state = state

    def go(self, owner: TaskOwner, progress: _Progress) -> RunResult:
        from .events import TaskFinished
        from .pipeline import DEPLOYED_IMAGE_REPO, DEPLOYED_TAG
        from .scheduling import TaskSpec

        request = self.request
        app = request.app
        ref = f"{DEPLOYED_IMAGE_REPO.format(app=app)}:{DEPLOYED_TAG}"
        if self.engine.image_id(ref) is None:
            raise NotDeployedError(app)
        image = self.engine.image(ref)
        given = DeployContext(
            app=app,
            image=image.id,
            properties=self.store,
            env=request.env,
            shell=request.shell,
            output=self.state.output,
        )
        # The app's stored config, with the values given for this run laid over it.
        stored = self.plugins.config_values(app=app, context=given)
        context = attrs.evolve(given, env={**stored, **request.env})
        task = Task(phase=RUN_PHASE, command=request.command, source=RUN_PHASE)
        argv = self.plugins.task_argv(app=app, task=task, image=image, context=context)
        if argv is None:
            raise UsageError(
                "No plugin turned the run command into a container command "
                "(is the entrypoint plugin disabled?)"
            )
        options = ContainerOptions(env=context.env, mounts=request.mounts, network=request.network)
        for extra in self.plugins.container_options(app=app, context=context, phase=RUN_PHASE):
            options = options.merged(extra)
        spec = TaskSpec(
            app=app,
            task=task,
            image=image,
            argv=argv,
            options=options,
            timeout=request.timeout,
            shell=request.shell or "/bin/sh",
            owner=owner,
        )
        self._start_history(image)
        io = _RunIO(self.state, spec)
        began = time.monotonic()
        try:
            ran = self.scheduler.run_task(spec, io)
        except BaseException:
            # Timed out, interrupted, or the engine failed: it never finished.
            self.state.output.emit(
                TaskFinished(RUN_PHASE, -1, time.monotonic() - began, self.state.container_id)
            )
            raise
        duration = time.monotonic() - began
        # The command is over: a signal from now on only cuts the clean-up short.
        progress.succeeded = True
        self.state.output.emit(TaskFinished(RUN_PHASE, ran.exit_code, duration, ran.container_id))
        recorder = self.state.recorder
        return RunResult(
            app=app,
            exit_status=ran.exit_code,
            container_id=ran.container_id,
            duration=duration,
            deploy_id=recorder.deploy_id if recorder is not None else None,
        )

    def _start_history(self, image: ImageInfo) -> None:
        state = self.state
        app = self.request.app
        info = self.request.recorded(image)
        keep = history.configured_keep(_setting(self.plugins, self.store, app, "deploys", "keep"))
        root = self.store.root
        recorder = history.start(root, app, info, keep=keep, warn=state.output.error)
        if recorder is not None:
            state.recorder = recorder
            state.output = state.output.with_sink(recorder)
        state.image = image.id
        state.reported = True
        state.output.emit(history.started_event(recorder, app, info))


@attrs.define
class _RunIO:
    """The command's output, printed as it is written (no frame), and its events."""

    state: _State
    spec: TaskSpec

    def started(self, container_id: str) -> None:
        from .events import TaskStarted
        from .pipeline import argv_rule

        self.state.container_id = container_id
        task = self.spec.task
        self.state.output.emit(
            TaskStarted(
                phase=task.phase,
                plugin=task.plugin,
                source=task.source,
                command=task.shown,
                image=self.spec.image.id,
                argv=self.spec.argv,
                rule=argv_rule(self.spec.image, self.spec.argv),
                container_id=container_id,
            )
        )

    def stdout(self, line: str) -> None:
        self._line("stdout", self.state.output.out, line)

    def stderr(self, line: str) -> None:
        self._line("stderr", self.state.output.err, line)

    def _line(self, stream: str, where: TextIO, line: str) -> None:
        output = self.state.output
        # The event (and the history) keeps the line as a framed task line shows it; the
        # terminal gets it exactly as the command wrote it, as ``dokku run`` prints it.
        shown = task_line(line)
        if shown.strip() and output.sinks:
            from .events import TaskOutput

            output.emit(TaskOutput(self.spec.task.phase, stream, shown))
        output.write(where, line)


# -- helpers ---------------------------------------------------------------------------------


@attrs.define
class _Owner:
    """The owner of this run's container, and how this run holds the runs' lock."""

    owner: TaskOwner
    fd: int
    exclusive: bool

    def share(self) -> None:
        """Hold the lock shared from now on, beside the other live runs of the app."""
        if self.exclusive:
            # Not atomic: another run may clean up in between, before this one made anything.
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            self.exclusive = False


@contextmanager
def _run_owner(root: Path, app: str) -> Iterator[_Owner]:
    """Hold ``ROOT/runs/locks/APP.lock``: exclusively when no other run of the app is live
    (so this one may remove what killed runs left), else shared."""
    from .locks import lock_path
    from .scheduling import TaskOwner

    owner = TaskOwner(root / RUNS_DIRECTORY)
    path = lock_path(owner.root, app)
    with state_errors(root, "write"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            exclusive = True
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)
            exclusive = False
        yield _Owner(owner, fd, exclusive)
    finally:
        os.close(fd)


def _scheduler(plugins: Hooks, engine: Engine, app: str, store: PropertyStore) -> Scheduler:
    factory = plugins.schedulers.get(RUN_SCHEDULER)
    if factory is None:
        raise UsageError(f"run needs the {RUN_SCHEDULER} scheduler, which no plugin registered")
    return factory(engine=engine, app=app, properties=store)


def _setting(plugins: Hooks, store: PropertyStore, app: str, namespace: str, prop: str) -> str:
    """The value a plugin's setting has for ``app``; empty when no plugin registered it."""
    return plugins.settings.computed(store, namespace, app, prop)


def _configured_timeout(plugins: Hooks, store: PropertyStore, app: str) -> float | None:
    from .pipeline import configured_task_timeout

    return configured_task_timeout(_setting(plugins, store, app, "scheduler", "task-timeout"), app)


def _close(engine: Engine, state: _State) -> None:
    """Close the engine after the command ended: a clean-up failure is one warning line."""
    try:
        engine.close()
    except DokkuTasksError as cleanup:
        state.output.error(f"Clean-up: {cleanup.message}")


@contextmanager
def _closing(engine: Engine, state: _State) -> Iterator[None]:
    """Close ``engine`` when the block ends: after a failure, a clean-up failure is a note on
    it; after success, one warning line."""
    from .pipeline import _close_noting

    try:
        yield
    except BaseException as exc:
        _close_noting(engine, exc)
        raise
    _close(engine, state)


__all__ = [
    "EXIT_TIMED_OUT",
    "RUN_PHASE",
    "InterruptedRunError",
    "NotDeployedError",
    "RunResult",
    "RunTimeoutError",
    "command_words",
    "run",
]
