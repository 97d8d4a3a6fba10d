"""Built-in plugin: the ``docker-local`` scheduler, running everything on the local engine."""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EngineError, TaskTimeoutError
from ..hookspecs import hookimpl
from ..models import ContainerOptions, ImageInfo, Mount
from ..scheduling import ENV_FILE_TARGET, ProcessSpec, TaskIO, TaskRun, TaskSpec
from ..specs import APP_LABEL, PREDEPLOY_LABEL, PROCESS_LABEL, TASK_LABEL, ContainerSpec

if TYPE_CHECKING:
    from ..engine import Engine

NAME = "docker-local"


@hookimpl
def scheduler(name: str, engine: Engine) -> DockerLocalScheduler | None:
    return DockerLocalScheduler(engine) if name == NAME else None


@hookimpl
def scheduler_names() -> list[str]:
    return [NAME]


def env_loader(shell: str) -> tuple[str, ...]:
    """An ENTRYPOINT that exports the env file, then runs its arguments unchanged."""
    script = f'set -a; . {ENV_FILE_TARGET}; set +a; exec "$@"'
    return (shell, "-c", script, "dokku-task")


def _env_dir_prefix(app: str) -> str:
    # App names have no dots, so the prefix of one app never matches another's directories.
    return f"dokku-tasks-env-{app}."


def write_env_file(app: str, env: Mapping[str, str]) -> Path:
    """Write ``env`` as shell assignments into a fresh root-only directory; return the file.

    The directory is 0700, so only root on the host can read it; the file itself is 0644 so
    that a task running as a non-root user in the container can read its own mount.
    """
    directory = Path(tempfile.mkdtemp(prefix=_env_dir_prefix(app)))
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

    def remove_stale_tasks(self, app: str) -> int:
        stale = [c for c in self.engine.containers({APP_LABEL: app}) if c.labels.get(TASK_LABEL)]
        for container in stale:
            self.engine.remove(container.id)
        # A killed deploy also leaves its env files: remove them (the caller holds the lock).
        for directory in Path(tempfile.gettempdir()).glob(f"{_env_dir_prefix(app)}*"):
            shutil.rmtree(directory, ignore_errors=True)
        return len(stale)

    def run_task(self, spec: TaskSpec, io: TaskIO) -> TaskRun:
        env = dict(spec.options.env)
        mounts = spec.options.mounts
        entrypoint: tuple[str, ...] | None = None
        command = spec.argv
        env_file = write_env_file(spec.app, env) if env else None
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
            labels={APP_LABEL: spec.app, TASK_LABEL: spec.task.phase},
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
        old = [
            c
            for c in self.engine.containers({APP_LABEL: app})
            if c.labels.get(PROCESS_LABEL) and not c.labels.get(TASK_LABEL)
        ]
        suffix = secrets.token_hex(4)
        started: list[tuple[str, str]] = []
        try:
            for process in processes:
                for index in range(1, process.quantity + 1):
                    name = f"{app}.{process.process_type}.{index}"
                    container_id = self.engine.create(
                        ContainerSpec(
                            image=image.id,
                            command=process.argv,
                            env=options.env,
                            mounts=options.mounts,
                            network=options.network,
                            labels={
                                APP_LABEL: app,
                                PROCESS_LABEL: process.process_type,
                                # Blank, so a process of a predeploy-committed image (which
                                # inherits the task label) never looks like a task.
                                TASK_LABEL: "",
                            },
                            name=f"{name}.{suffix}",
                            restart_policy="unless-stopped",
                        )
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
        except BaseException:
            for container_id, _ in started:
                self.engine.remove(container_id)
            raise
        # The old containers step aside at once and stop in the background, while the rest of
        # the deploy (postdeploy) goes on; the deploy waits for them before it returns.
        for container in old:
            self.engine.rename(container.id, f"{container.name}.retired-{suffix}")
        for container_id, name in started:
            self.engine.rename(container_id, name)
        for container in old:
            self.engine.remove_later(container.id, stop_first=True)
        return tuple(name for _, name in started)
