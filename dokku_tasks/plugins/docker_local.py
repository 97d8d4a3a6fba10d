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

from ..errors import EngineError, TaskTimeoutError, add_cleanup_note
from ..hookspecs import hookimpl
from ..models import ContainerOptions, ImageInfo, Mount
from ..scheduling import (
    ENV_FILE_TARGET,
    ProcessSpec,
    SchedulerFactory,
    TaskIO,
    TaskOwner,
    TaskRun,
    TaskSpec,
)
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
    from ..properties import PropertyStore

NAME = "docker-local"


def _for_deploy(*, engine: Engine, app: str, properties: PropertyStore) -> DockerLocalScheduler:
    return DockerLocalScheduler(engine)


@hookimpl
def register_schedulers(register: Callable[[str, SchedulerFactory], None]) -> None:
    register(NAME, _for_deploy)


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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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

    def deploy_processes(
        self,
        app: str,
        image: ImageInfo,
        processes: Sequence[ProcessSpec],
        options: ContainerOptions,
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
        started: list[tuple[str, str]] = []
        displaced: list[tuple[ContainerInfo, str]] = []
        try:
            for process in processes:
                for index in range(1, process.quantity + 1):
                    name = f"{app}.{process.process_type}.{index}"
                    container_id = self.engine.create(
                        self._process_spec(app, image, process, options, f"{name}.{suffix}")
                    )
                    started.append((container_id, name))
                    self.engine.start(container_id)
            for container_id, name in started:
                state = self.engine.state(container_id)
                if not state.get("Running"):
                    raise EngineError(
                        f"Process container {name} did not stay running "
                        f"(exit status {state.get('ExitCode')})"
                    )
            # The switch: old containers step aside, then the new ones take their names.
            holders = {c.name: c for c in current}
            for name in names:
                if name in holders and self._step_aside(holders[name], f"{name}.retired-{suffix}"):
                    displaced.append((holders[name], f"{name}.retired-{suffix}"))
            for container_id, name in started:
                self.engine.rename(container_id, name)
        except BaseException as error:
            self._roll_back(error, started, displaced)
            raise
        # The old containers stop in the background, while the rest of the deploy
        # (postdeploy) goes on; the deploy waits for them before it returns.
        for container in current:
            self.engine.remove_later(container.id, stop_first=True)
        return tuple(names)

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

    @staticmethod
    def _process_spec(
        app: str, image: ImageInfo, process: ProcessSpec, options: ContainerOptions, name: str
    ) -> ContainerSpec:
        return ContainerSpec(
            image=image.id,
            command=process.argv,
            env=options.env,
            mounts=options.mounts,
            network=options.network,
            labels={
                APP_LABEL: app,
                PROCESS_LABEL: process.process_type,
                # Blank, so a process of a predeploy-committed image (which inherits the task
                # label) never looks like a task.
                TASK_LABEL: "",
            },
            name=name,
            restart_policy="unless-stopped",
        )
