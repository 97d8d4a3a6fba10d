"""Built-in plugin: the ``docker-local`` scheduler, running everything on the local engine."""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import settings
from ..errors import EngineError, PropertyError, TaskTimeoutError, add_cleanup_note
from ..hookspecs import hookimpl
from ..models import ContainerOptions, ImageInfo, Mount, ReportSection
from ..properties import PropertyStore
from ..scheduling import (
    ENV_FILE_TARGET,
    ProcessCheck,
    ProcessSpec,
    SchedulerFactory,
    StartedProcess,
    TaskIO,
    TaskOwner,
    TaskRun,
    TaskSpec,
)
from ..settings import Namespace, Property
from ..specs import (
    APP_LABEL,
    PREDEPLOY_LABEL,
    PROCESS_LABEL,
    TASK_LABEL,
    ContainerInfo,
    ContainerSpec,
)

if TYPE_CHECKING:
    from ..engine import Engine
    from ..hooks import Hooks

NAME = "docker-local"
#: The label Dokku gives a process container: its ``DYNO`` (``web.1``).
DYNO_LABEL = "com.dokku.dyno"
#: Images of this vendor run their own init (s6-overlay): no ``--init`` unless set (as Dokku).
_OWN_INIT_VENDOR = "linuxserver.io"
#: ``PORT`` of a web process when the app's config sets none (Dokku's default).
DEFAULT_WEB_PORT = "5000"


def _validate_bool(value: str, plugins: Hooks | None) -> str:
    if value not in ("true", "false"):
        raise PropertyError(f"Invalid init-process {value!r}: expected true or false")
    return value


#: Dokku's ``scheduler-docker-local`` properties.  ``init-process`` has no default here: an
#: unset value means "true, unless the image brings its own init" (Dokku's rule).
SCHEDULER_DOCKER_LOCAL = Namespace(
    name="scheduler-docker-local",
    label="Scheduler docker local",
    properties=(Property("init-process", validator=_validate_bool),),
)


def _for_deploy(*, engine: Engine, app: str, properties: PropertyStore) -> DockerLocalScheduler:
    return DockerLocalScheduler(engine, properties)


@hookimpl
def register_schedulers(register: Callable[[str, SchedulerFactory], None]) -> None:
    register(NAME, _for_deploy)


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(SCHEDULER_DOCKER_LOCAL)


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``scheduler-docker-local`` section: computed, global and app ``init-process``."""
    return settings.report_section(properties, SCHEDULER_DOCKER_LOCAL, app)


def uses_init(store: PropertyStore, app: str, image: ImageInfo) -> bool:
    """Whether process containers of ``app`` in ``image`` get the engine's init as PID 1."""
    value = settings.computed(store, SCHEDULER_DOCKER_LOCAL, app, "init-process")
    if value:
        return value != "false"
    return image.labels.get("org.opencontainers.image.vendor") != _OWN_INIT_VENDOR


def process_env(env: Mapping[str, str], process_type: str, index: int) -> dict[str, str]:
    """A process container's environment: the config, ``DYNO``, and ``PORT`` for web."""
    result = {**env, "DYNO": f"{process_type}.{index}"}
    if process_type == "web":
        result["PORT"] = env.get("PORT") or DEFAULT_WEB_PORT
    return result


def env_loader(shell: str) -> tuple[str, ...]:
    """An ENTRYPOINT that exports the env file, then runs its arguments unchanged."""
    script = f'set -a; . {ENV_FILE_TARGET}; set +a; exec "$@"'
    return (shell, "-c", script, "dokku-task")


def _env_dir_prefix(app: str, owner: TaskOwner | None) -> str:
    # App names have no dots, so the prefix of one app never matches another's directories;
    # the owner's key keeps another state root's live deploy out of the stale clean-up.
    key = owner.key if owner is not None else "none"
    return f"dokku-tasks-env-{key}-{app}."


def write_env_file(app: str, env: Mapping[str, str], owner: TaskOwner | None = None) -> Path:
    """Write ``env`` as shell assignments into a fresh root-only directory; return the file.

    The directory is 0700, so only root on the host can read it; the file itself is 0644 so
    that a task running as a non-root user in the container can read its own mount.
    """
    directory = Path(tempfile.mkdtemp(prefix=_env_dir_prefix(app, owner)))
    path = directory / "env"
    path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
    path.chmod(0o644)
    return path


def commit_changes(app: str, image: ImageInfo) -> list[str]:
    """Dockerfile instructions that give a committed image back its base's CMD and ENTRYPOINT.

    The task label cannot be removed from an image, only blanked, so task containers are
    recognised by a non-empty ``dokku_phase_script``.
    """
    return [
        f"CMD {json.dumps(list(image.cmd or ()))}",
        f"ENTRYPOINT {json.dumps(list(image.entrypoint or ()))}",
        f"LABEL {APP_LABEL}={json.dumps(app)}",
        f"LABEL {PREDEPLOY_LABEL}=true",
        f'LABEL {TASK_LABEL}=""',
    ]


class DockerLocalScheduler:
    """Tasks as one-off containers and processes as long-running containers on one engine."""

    name = NAME
    can_commit = True

    def __init__(self, engine: Engine, properties: PropertyStore | None = None) -> None:
        self.engine = engine
        self.properties = properties

    def remove_stale_tasks(self, app: str, owner: TaskOwner) -> int:
        stale = [
            c
            for c in self.engine.containers({APP_LABEL: app})
            if c.labels.get(TASK_LABEL) and owner.is_orphan(app, c.labels)
        ]
        for container in stale:
            self.engine.remove(container.id)
        # A killed deploy also leaves its env files: remove this root's (the caller holds
        # its lock, so none of them belongs to a live deploy).
        for directory in Path(tempfile.gettempdir()).glob(f"{_env_dir_prefix(app, owner)}*"):
            shutil.rmtree(directory, ignore_errors=True)
        return len(stale)

    def remove_app(self, app: str) -> int:
        """Remove every container of ``app``: processes, tasks, retired ones; return how many."""
        containers = self.engine.containers({APP_LABEL: app})
        for container in containers:
            self.engine.remove(container.id)
        return len(containers)

    def run_task(self, spec: TaskSpec, io: TaskIO) -> TaskRun:
        env = dict(spec.options.env)
        mounts = spec.options.mounts
        entrypoint: tuple[str, ...] | None = None
        command = spec.argv
        env_file = write_env_file(spec.app, env, spec.owner) if env else None
        if env_file is not None:
            # Config values never go into the container's create-time config: a commit would
            # record them in the image.  A loader entrypoint reads them from a tmpfs mount.
            mounts = (*mounts, Mount(str(env_file), ENV_FILE_TARGET, read_only=True))
            if spec.image.entrypoint:
                # The loader takes the ENTRYPOINT's place and execs it; a commit restores it.
                entrypoint = env_loader(spec.shell)
                command = (*spec.image.entrypoint, *spec.argv)
            else:
                # An empty ENTRYPOINT cannot be committed back, so the loader goes in the CMD.
                command = (*env_loader(spec.shell), *spec.argv)
        container_spec = ContainerSpec(
            image=spec.image.id,
            command=command,
            entrypoint=entrypoint,
            mounts=mounts,
            network=spec.options.network,
            labels=spec.labels,
        )
        try:
            container_id = self.engine.create(container_spec)
            try:
                io.started(container_id)
                outcome = self.engine.run(container_id, io.stdout, io.stderr, spec.timeout)
                if outcome.timed_out:
                    raise TaskTimeoutError(spec.task.phase, spec.timeout or 0)
                committed = None
                if spec.task.commit and outcome.exit_code == 0:
                    committed = self.engine.commit(
                        container_id, commit_changes(spec.app, spec.image)
                    )
                return TaskRun(container_id, outcome.exit_code, committed)
            finally:
                self.engine.remove_later(container_id)
        finally:
            if env_file is not None:
                shutil.rmtree(env_file.parent, ignore_errors=True)

    def image_reference(self, image: ImageInfo) -> str:
        """Nothing is pushed: the processes run the local image."""
        return ""

    def nodes_of(self, names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        """One host: no node names."""
        return tuple(() for _ in names)

    def deploy_processes(
        self,
        app: str,
        image: ImageInfo,
        processes: Sequence[ProcessSpec],
        options: ContainerOptions,
        check: ProcessCheck | None = None,
    ) -> tuple[str, ...]:
        # Every process container of the app is replaced, including those a failed or killed
        # deploy left under a temporary or retired name: the next deploy recovers from it.
        current = [
            c
            for c in self.engine.containers({APP_LABEL: app})
            if c.labels.get(PROCESS_LABEL) and not c.labels.get(TASK_LABEL)
        ]
        names = [
            f"{app}.{process.process_type}.{index}"
            for process in processes
            for index in range(1, process.quantity + 1)
        ]
        self._refuse_taken_names(app, names, current)
        suffix = secrets.token_hex(4)
        init = uses_init(self.properties, app, image) if self.properties is not None else True
        started: list[StartedProcess] = []
        displaced: list[tuple[ContainerInfo, str]] = []
        try:
            for process in processes:
                for index in range(1, process.quantity + 1):
                    name = f"{app}.{process.process_type}.{index}"
                    spec = self._process_spec(
                        app, image, process, index, options, f"{name}.{suffix}", init
                    )
                    container_id = self.engine.create(spec)
                    port = spec.env.get("PORT") if process.process_type == "web" else None
                    started.append(
                        StartedProcess(
                            process.process_type,
                            index,
                            name,
                            container_id,
                            int(port) if port and port.isdigit() else None,
                        )
                    )
                    self.engine.start(container_id)
            if check is not None:
                check(started, self.engine)
            else:
                self._require_running(started)
            # The switch: old containers step aside, then the new ones take their names.
            holders = {c.name: c for c in current}
            for name in names:
                if name in holders and self._step_aside(holders[name], f"{name}.retired-{suffix}"):
                    displaced.append((holders[name], f"{name}.retired-{suffix}"))
            for new in started:
                self.engine.rename(new.container_id, new.name)
        except BaseException as error:
            self._roll_back(error, [(p.container_id, p.name) for p in started], displaced)
            raise
        self._retire(app, current, {c.id: retired for c, retired in displaced})
        return tuple(names)

    def _require_running(self, started: Sequence[StartedProcess]) -> None:
        """Without a checks plugin: every new container must at least be running now."""
        for process in started:
            state = self.engine.state(process.container_id)
            if not state.get("Running"):
                raise EngineError(
                    f"Process container {process.name} did not stay running "
                    f"(exit status {state.get('ExitCode')})"
                )

    def _retire(
        self, app: str, current: Sequence[ContainerInfo], renamed: Mapping[str, str]
    ) -> None:
        """Hand the old containers to the retirement (:mod:`dokku_tasks.retirement`).

        They get SIGTERM now and are stopped and removed after ``wait-to-retire`` by a
        detached retirer: the deploy never waits for them.  One already retiring (a deploy
        inside its window) keeps its deadline.
        """
        if not current:
            return
        from .. import retirement
        from . import checks, ps

        if self.properties is None:
            for container in current:
                self.engine.remove_later(container.id, stop_first=True)
            return
        root = self.properties.root
        already = {record.container_id for record in retirement.pending(root)}
        leaving = [(c.id, renamed.get(c.id, c.name)) for c in current if c.id not in already]
        retirement.begin(
            self.engine,
            root,
            app,
            leaving,
            wait=checks.wait_to_retire(self.properties, app),
            stop_timeout=ps.stop_timeout(self.properties, app),
        )

    def _step_aside(self, old: ContainerInfo, retired: str) -> bool:
        """Rename ``old`` out of the way; ``False`` when it had to be removed instead.

        An engine that restarted can hold a stopped container it cannot rename ("sandbox not
        found"): it serves nothing, so it is removed rather than left to block every deploy.
        A running one that cannot be renamed fails the switch.
        """
        try:
            self.engine.rename(old.id, retired)
        except EngineError:
            if self.engine.state(old.id).get("Running"):
                raise
            self.engine.remove(old.id)
            return False
        return True

    def _refuse_taken_names(
        self, app: str, names: Sequence[str], current: Sequence[ContainerInfo]
    ) -> None:
        """Refuse, before anything starts, a name held by a container that is not the app's."""
        ours = {c.id for c in current}
        wanted = set(names)
        for container in self.engine.containers(name=f"{app}."):
            if container.name in wanted and container.id not in ours:
                raise EngineError(
                    f"Container name {container.name} is taken by container "
                    f"{container.id[:12]}, which is not a process of {app}: "
                    "remove or rename it, then deploy again"
                )

    def _roll_back(
        self,
        error: BaseException,
        started: Sequence[tuple[str, str]],
        displaced: Sequence[tuple[ContainerInfo, str]],
    ) -> None:
        """Leave exactly the containers that ran before: remove the new, rename the old back.

        A step that fails is noted on ``error`` and the rest still run; the deploy's own
        error stays the one raised.
        """
        for container_id, _ in started:
            try:
                self.engine.remove(container_id)
            except EngineError as cleanup:
                add_cleanup_note(error, cleanup.message)
        for container, _ in displaced:
            try:
                self.engine.rename(container.id, container.name)
            except EngineError as cleanup:
                add_cleanup_note(error, cleanup.message)

    def _process_spec(
        self,
        app: str,
        image: ImageInfo,
        process: ProcessSpec,
        index: int,
        options: ContainerOptions,
        name: str,
        init: bool,
    ) -> ContainerSpec:
        from . import ps

        if self.properties is not None:
            policy, retries = ps.restart_policy(self.properties, app)
        else:
            policy, retries = "on-failure", 10
        return ContainerSpec(
            image=image.id,
            command=process.argv,
            env=process_env(options.env, process.process_type, index),
            mounts=options.mounts,
            network=options.network,
            labels={
                APP_LABEL: app,
                PROCESS_LABEL: process.process_type,
                DYNO_LABEL: f"{process.process_type}.{index}",
                # Blank, so a process of a predeploy-committed image (which inherits the task
                # label) never looks like a task.
                TASK_LABEL: "",
            },
            name=name,
            restart_policy=policy,
            restart_retries=retries,
            init=init,
        )
