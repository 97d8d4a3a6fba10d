"""Built-in plugin: the ``swarm`` scheduler, running tasks as jobs and processes as services.

Predeploy still runs (and commits) on the local engine: a commit has no cluster equivalent.
``release``, ``postdeploy`` and ``heroku.postdeploy`` run as one-shot ``replicated-job``
services; each process type is a replicated service updated start-first.

The plugin owns its engine calls (:mod:`.services`, the Docker SDK through the deploy's one
connection, :attr:`dokku_tasks.engine.Engine.api`); that module is imported only once a swarm
scheduler talks to the engine, so loading the plugin does not import ``docker``.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ... import settings
from ...errors import EngineError, PropertyError, TaskTimeoutError
from ...hookspecs import hookimpl
from ...models import ContainerOptions, ImageInfo, ReportSection
from ...properties import PropertyStore
from ...scheduling import (
    ProcessCheck,
    ProcessSpec,
    SchedulerFactory,
    TaskIO,
    TaskOwner,
    TaskRun,
    TaskSpec,
)
from ...settings import Namespace, Property
from ...specs import APP_LABEL, PROCESS_LABEL, TASK_LABEL
from ..docker_local import DockerLocalScheduler
from .specs import ServiceSpec

if TYPE_CHECKING:
    from ...engine import Engine
    from ...hooks import Hooks
    from .services import SwarmEngine

NAME = "swarm"
#: How often a job's state is read; the swarm API has no "wait for this task" call.
POLL_SECONDS = 0.2
#: How long new process services may take to run the new image.
CONVERGE_SECONDS = 120.0
_FINAL_STATES = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")


_REGISTRY_SERVER = re.compile(r"[a-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._-]+)*")


def _validate_registry(value: str, plugins: Hooks | None) -> str:
    # A registry host with an optional port and path prefix, as image references allow.
    if not _REGISTRY_SERVER.fullmatch(value):
        raise PropertyError(
            f"Invalid registry {value!r}: expected HOST[:PORT][/PATH], e.g. registry.example:5000"
        )
    return value


#: Where the swarm scheduler pushes the deploy image, so that every node can pull it.
REGISTRY = Namespace(
    name="registry",
    label="Registry",
    properties=(Property("server", validator=_validate_registry),),
)


def _for_deploy(*, engine: Engine, app: str, properties: PropertyStore) -> SwarmScheduler:
    return SwarmScheduler(engine, settings.computed(properties, REGISTRY, app, "server"))


@hookimpl
def register_schedulers(register: Callable[[str, SchedulerFactory], None]) -> None:
    register(NAME, _for_deploy)


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(REGISTRY)


def dns_name(*parts: str, suffix: str = "") -> str:
    """A valid service name (letters, digits, dashes; at most 63) from ``parts`` and ``suffix``.

    The suffix is kept whole; the readable parts are shortened to make room for it.
    """
    base = "-".join(_DNS_UNSAFE.sub("-", part.lower()).strip("-") for part in parts)
    room = 63 - (len(suffix) + 1 if suffix else 0)
    base = base[:room].rstrip("-") or "x"
    return f"{base}-{suffix}" if suffix else base


def image_reference(app: str, image_id: str, registry: str) -> tuple[str, str]:
    """The repository and tag a deploy's image is published under for services."""
    tag = image_id.split(":")[-1][:12]
    repository = f"dokku/{app}"
    if registry:
        repository = f"{registry.rstrip('/')}/{repository}"
    return repository, tag


def job_exit(tasks: Sequence[Mapping[str, Any]]) -> tuple[str, int | None, str] | None:
    """``(state, exit code, error)`` of a job's finished task, or ``None`` while it runs."""
    for task in tasks:
        status = task.get("Status") or {}
        state = str(status.get("State", ""))
        if state in _FINAL_STATES:
            code = (status.get("ContainerStatus") or {}).get("ExitCode")
            return state, None if code is None else int(code), str(status.get("Err") or "")
    return None


class SwarmScheduler:
    """Tasks as ``replicated-job`` services and processes as replicated services."""

    name = NAME
    can_commit = False

    def __init__(
        self, engine: Engine, registry: str = "", swarm: SwarmEngine | None = None
    ) -> None:
        """``swarm`` makes the service calls (default: through ``engine.api``); tests pass a fake."""
        self.engine = engine
        self.registry = registry
        self.local = DockerLocalScheduler(engine)
        self._swarm = swarm
        self._published: dict[str, str] = {}
        self._checked = False

    @property
    def swarm(self) -> SwarmEngine:
        """The service calls, made through the deploy's connection (imports ``docker``)."""
        if self._swarm is None:
            from .services import SwarmEngine

            self._swarm = SwarmEngine(self.engine.api)
        return self._swarm

    def _require_swarm(self) -> None:
        if not self._checked:
            if not self.swarm.swarm_active():
                raise EngineError(
                    "The swarm scheduler needs an engine that manages an active swarm "
                    "(docker swarm init)"
                )
            self._checked = True

    def publish(self, app: str, image: ImageInfo) -> str:
        """Tag (and with a registry, push) ``image`` so every node can run it; return its ref."""
        if image.id not in self._published:
            repository, tag = image_reference(app, image.id, self.registry)
            self.engine.tag(image.id, repository, tag)
            if self.registry:
                self.swarm.push(repository, tag)
            self._published[image.id] = f"{repository}:{tag}"
        return self._published[image.id]

    def remove_stale_tasks(self, app: str, owner: TaskOwner) -> int:
        # The first call of a deploy: refuse a non-swarm engine before any task runs.
        self._require_swarm()
        stale = [
            s
            for s in self.swarm.services({APP_LABEL: app})
            if s.labels.get(TASK_LABEL) and owner.is_orphan(app, s.labels)
        ]
        for service in stale:
            self.swarm.remove_service(service.id)
        return len(stale) + self.local.remove_stale_tasks(app, owner)

    def remove_app(self, app: str) -> int:
        """Remove every service of ``app`` (processes and jobs); return how many.

        Nothing where this engine manages no swarm.  The app's local containers (predeploy)
        are the ``docker-local`` scheduler's.
        """
        if not self.swarm.swarm_active():
            return 0
        services = self.swarm.services({APP_LABEL: app})
        for service in services:
            self.swarm.remove_service(service.id)
        return len(services)

    def run_task(self, spec: TaskSpec, io: TaskIO) -> TaskRun:
        self._require_swarm()
        phase = spec.task.phase
        service = ServiceSpec(
            name=dns_name(spec.app, phase, suffix=secrets.token_hex(3)),
            image=self.publish(spec.app, spec.image),
            args=spec.argv,
            env=spec.options.env,
            mounts=spec.options.mounts,
            network=spec.options.network,
            labels=spec.labels,
            job=True,
        )
        service_id = self.swarm.create_service(service)
        follower = None
        try:
            io.started(service_id)
            follower = self.swarm.follow_service_logs(service_id, io.stdout, io.stderr)
            deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
            while (finished := job_exit(self.swarm.service_tasks(service_id))) is None:
                if deadline is not None and time.monotonic() > deadline:
                    raise TaskTimeoutError(phase, spec.timeout or 0)
                time.sleep(POLL_SECONDS)
            follower.finish()
            follower = None
            state, code, error = finished
            if code is None:
                raise EngineError(f"The {phase} job ended {state} without running: {error}")
            return TaskRun(service_id, code)
        finally:
            self.swarm.remove_service(service_id)
            if follower is not None:
                follower.stop()

    def deploy_processes(
        self,
        app: str,
        image: ImageInfo,
        processes: Sequence[ProcessSpec],
        options: ContainerOptions,
        check: ProcessCheck | None = None,
    ) -> tuple[str, ...]:
        # Swarm runs its own health checks on its tasks; ``check`` probes local containers,
        # which a service does not have.
        self._require_swarm()
        reference = self.publish(app, image)
        existing = {
            s.labels[PROCESS_LABEL]: s
            for s in self.swarm.services({APP_LABEL: app})
            if s.labels.get(PROCESS_LABEL) and not s.labels.get(TASK_LABEL)
        }
        wanted: dict[str, int] = {}
        created: list[str] = []
        retired: list[str] = []
        try:
            for process in processes:
                current = existing.pop(process.process_type, None)
                if process.quantity == 0:
                    if current is not None:
                        retired.append(current.id)
                    continue
                spec = ServiceSpec(
                    name=dns_name(app, process.process_type),
                    image=reference,
                    args=process.argv,
                    env=options.env,
                    mounts=options.mounts,
                    network=options.network,
                    labels={APP_LABEL: app, PROCESS_LABEL: process.process_type},
                    replicas=process.quantity,
                )
                if current is None:
                    service_id = self.swarm.create_service(spec)
                    created.append(service_id)
                    wanted[service_id] = process.quantity
                else:
                    self.swarm.update_service(current, spec)
                    wanted[current.id] = process.quantity
            self._converge(wanted, reference)
        except BaseException:
            # Services new to this deploy go; updated ones roll back by themselves (their
            # update config says so) when their new tasks fail.
            for service_id in created:
                self.swarm.remove_service(service_id)
            raise
        # Only once the new spec runs do process types that are gone or scaled to 0 go.
        for service_id in [*retired, *(s.id for s in existing.values())]:
            self.swarm.remove_service(service_id)
        return tuple(s.name for s in self.swarm.services({APP_LABEL: app}) if s.id in wanted)

    def _converge(self, wanted: Mapping[str, int], reference: str) -> None:
        """Wait until each service runs its replicas of ``reference``."""
        deadline = time.monotonic() + CONVERGE_SECONDS
        pending = dict(wanted)
        while pending:
            for service_id, replicas in list(pending.items()):
                running = [
                    t
                    for t in self.swarm.service_tasks(service_id)
                    if (t.get("Status") or {}).get("State") == "running"
                    and t.get("DesiredState") == "running"
                    and t["Spec"]["ContainerSpec"]["Image"].startswith(reference)
                ]
                if len(running) >= replicas:
                    del pending[service_id]
            if pending and time.monotonic() > deadline:
                raise EngineError(
                    f"Services did not run the new image within {CONVERGE_SECONDS:.0f} seconds"
                )
            if pending:
                time.sleep(POLL_SECONDS)


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``registry`` section: where the swarm scheduler pushes the deploy image."""
    return settings.report_section(properties, REGISTRY, app)
