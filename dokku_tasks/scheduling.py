"""The seam between the deploy pipeline and the place tasks and processes run.

A scheduler plugin answers the ``scheduler`` hook with an object that satisfies
:class:`Scheduler`.  The pipeline decides *what* runs and in which order; a scheduler decides
*where* and *how*: local containers (``docker-local``), swarm services (``swarm``), or a
Kubernetes Job and Deployment in a future plugin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from .converters import string_tuple
from .locks import lock_is_held
from .models import ContainerOptions, ImageInfo, Task
from .specs import APP_LABEL, OWNER_LABEL, TASK_LABEL, ExecOutcome

if TYPE_CHECKING:
    from .engine import Engine
    from .properties import PropertyStore

#: Where the task's env file is mounted: /dev is a tmpfs in every container, so neither the
#: file nor its mount point ever reaches a committed image.
ENV_FILE_TARGET = "/dev/.dokku-tasks-env"


@attrs.frozen
class TaskOwner:
    """The deploy that owns task containers: the one holding its state root's app lock.

    Task containers carry :attr:`labels`, so a later deploy reaps only what is provably
    left behind: its own root's containers (it holds that lock now), containers from a root
    whose lock nobody holds, and unlabelled ones from before owners were recorded.  A live
    deploy of the same app under another root keeps its containers.
    """

    root: Path = attrs.field(converter=Path)

    @property
    def labels(self) -> dict[str, str]:
        return {OWNER_LABEL: str(self.root)}

    @property
    def key(self) -> str:
        """A short stable name for the root, for host-side files (env files)."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:12]

    def is_orphan(self, app: str, labels: Mapping[str, str]) -> bool:
        """Whether the task container of ``app`` with ``labels`` belongs to no live deploy."""
        owner = labels.get(OWNER_LABEL)
        if owner is None or Path(owner) == self.root:
            return True
        return not lock_is_held(Path(owner), app)


@attrs.frozen
class TaskSpec:
    """One task to run: the task, the image, the argv for it, and the container options.

    ``argv`` is the container's CMD as the ``task_argv`` hook shaped it; the image's
    ENTRYPOINT stays.  ``shell`` is the shell that loads the env file.  ``timeout`` is in
    seconds, ``None`` for none.
    """

    app: str
    task: Task
    image: ImageInfo
    argv: tuple[str, ...] = attrs.field(converter=string_tuple)
    options: ContainerOptions = attrs.field(factory=ContainerOptions)
    timeout: float | None = None
    shell: str = "/bin/sh"
    owner: TaskOwner | None = None

    @property
    def labels(self) -> dict[str, str]:
        """The labels of the task's container or job: app, phase and owner."""
        owner = self.owner.labels if self.owner is not None else {}
        return {APP_LABEL: self.app, TASK_LABEL: self.task.phase, **owner}


class TaskIO(Protocol):
    """Where a running task reports: its container id once known, then its output lines."""

    def started(self, container_id: str) -> None: ...

    def stdout(self, line: str) -> None: ...

    def stderr(self, line: str) -> None: ...


@attrs.frozen
class TaskRun:
    """How a task ended: its container, real exit status, and the committed image if any."""

    container_id: str
    exit_code: int
    committed_image: str | None = None


@attrs.frozen
class StartedProcess:
    """A new process container: started, not yet switched in.  What checks look at.

    ``name`` is the name it takes at the switch (``APP.web.1``); ``port`` is the ``PORT`` it
    was given (``None`` for a process type without one).
    """

    process_type: str
    index: int
    name: str
    container_id: str
    port: int | None = None

    @property
    def dyno(self) -> str:
        """``web.1``: the process type and index, as Dokku's ``DYNO``."""
        return f"{self.process_type}.{self.index}"


class ProcessProbe(Protocol):
    """What a check may do to a started process container (the engine satisfies it)."""

    def state(self, container_id: str) -> Mapping[str, Any]:
        """The container's ``State`` block: ``Running``, ``ExitCode``, ``Restarting`` ..."""
        ...

    def exec(self, container_id: str, argv: Sequence[str], timeout: float) -> ExecOutcome:
        """Run ``argv`` in the running container; wait at most ``timeout`` seconds."""
        ...


#: What a scheduler calls after it started the new process containers and before they
#: replace the old ones; raises to stop the switch (the scheduler then removes the new ones).
ProcessCheck = Callable[[Sequence[StartedProcess], ProcessProbe], None]


@attrs.frozen
class ProcessSpec:
    """A process type to run: ``argv`` ``None`` runs the image's own CMD."""

    process_type: str
    quantity: int
    argv: tuple[str, ...] | None = None


class Scheduler(Protocol):
    """What a scheduler plugin provides."""

    name: str
    #: Whether run_task can commit a container into an image (predeploy).  Where it cannot,
    #: the pipeline runs committing tasks on the local engine.
    can_commit: bool

    def remove_stale_tasks(self, app: str, owner: TaskOwner) -> int:
        """Remove task containers or jobs a killed deploy of ``app`` left; return how many.

        Only those ``owner.is_orphan`` says no live deploy owns.
        """
        ...

    def remove_app(self, app: str) -> int:
        """Remove everything of ``app`` this scheduler runs (``apps:destroy``); return how many.

        Every container, service or job of the app, tasks and processes alike.  A scheduler
        whose platform is not there (an engine that manages no swarm) removes nothing and
        returns 0 rather than fail.  The app's images are the core's: it removes them after.
        """
        ...

    def run_task(self, spec: TaskSpec, io: TaskIO) -> TaskRun:
        """Run one task to its end, streaming output to ``io``; never leave it behind.

        :raises dokku_tasks.errors.TaskTimeoutError: it ran past ``spec.timeout``.
        """
        ...

    def deploy_processes(
        self,
        app: str,
        image: ImageInfo,
        processes: Sequence[ProcessSpec],
        options: ContainerOptions,
        check: ProcessCheck | None = None,
    ) -> tuple[str, ...]:
        """Replace the app's running processes with ``processes`` of ``image``.

        New ones must be running, and pass ``check``, before old ones go; on failure the new
        ones are removed and the old ones stay.  Old ones are retired without making the
        deploy wait for them.
        :return: the names of what now runs.
        """
        ...

    def image_reference(self, image: ImageInfo) -> str:
        """The registry reference ``image`` was pushed as for other nodes to run it, with its
        digest (``REGISTRY/REPO:TAG@sha256:...``); ``""`` when it was not pushed.

        Called after :meth:`deploy_processes`; the deploy records and prints it.
        """
        ...

    def nodes_of(self, names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        """For each of ``names`` (what :meth:`deploy_processes` returned), the names of the
        nodes it runs on; ``()`` each where the scheduler has one host.

        Called after :meth:`deploy_processes`; the deploy records and prints them.
        """
        ...


class SchedulerFactory(Protocol):
    """Makes a :class:`Scheduler` for one deploy of ``app`` (registered by a plugin).

    ``properties`` holds the plugin's own settings (a registry server, say).
    """

    def __call__(self, *, engine: Engine, app: str, properties: PropertyStore) -> Scheduler: ...
