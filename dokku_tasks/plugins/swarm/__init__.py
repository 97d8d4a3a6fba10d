"""Built-in plugin: the ``swarm`` scheduler, running tasks as jobs and processes as services.

Predeploy still runs (and commits) on the local engine: a commit has no cluster equivalent.
``release``, ``postdeploy`` and ``heroku.postdeploy`` run as one-shot
services; each process type is a replicated service updated start-first.

The checks before the switch (the ``checks`` plugin's, for ``docker-local``) become the
swarm's own: app.json ``startup`` healthchecks of a process type, read from app.json in the
deployed image, become the service's Docker health check (a task then runs, and replaces an old
one, only once healthy), ``uptime`` checks and ``default-wait`` become the update's ``monitor``
window, and an update that fails them is rolled back by the swarm (see :func:`plan_checks`).

The plugin owns its engine calls (:mod:`.services`, the Docker SDK through the deploy's one
connection, :attr:`dokku_tasks.engine.Engine.api`); that module is imported only once a swarm
scheduler talks to the engine, so loading the plugin does not import ``docker``.
"""

from __future__ import annotations

import re
import secrets
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ... import settings
from ...errors import (
    ChecksFailedError,
    EngineError,
    PropertyError,
    TaskTimeoutError,
    add_cleanup_note,
)
from ...hookspecs import hookimpl
from ...models import ContainerOptions, Healthcheck, ImageInfo, ReportSection
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
from ...text import printable
from ..checks import DEFAULT_CHECK, DEFAULT_PORT, STARTUP, CheckSettings, is_disabled, is_skipped
from ..docker_local import DEFAULT_WEB_PORT, DockerLocalScheduler, uses_init
from .specs import NodeInfo, ServiceHealthcheck, ServiceInfo, ServiceSpec

if TYPE_CHECKING:
    from ...engine import Engine
    from ...hooks import Hooks
    from .services import SwarmEngine

NAME = "swarm"
#: How often a job's state is read; the swarm API has no "wait for this task" call.
POLL_SECONDS = 0.2
#: How often a running job's node is asked after (a lost node leaves the task "running").
NODE_CHECK_SECONDS = 1.0
#: How long new process services may take to run the new image (plus what their checks
#: may take: see :meth:`SwarmChecks.budget`).
CONVERGE_SECONDS = 120.0
#: How long a failed deploy waits for the swarm to finish rolling a service back.
ROLLBACK_SECONDS = 60.0
_FINAL_STATES = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
#: The states of a process task that ended by itself (``shutdown`` is the orchestrator's).
_ENDED_STATES = frozenset({"complete", "failed", "rejected", "orphaned"})
#: A service update the swarm gave up on (``failure_action: rollback``, or paused).
_FAILED_UPDATES = frozenset({"rollback_started", "rollback_paused", "rollback_completed", "paused"})
_ROLLED_BACK = frozenset({"rollback_completed", "rollback_paused"})
_TASK_ID = re.compile(r"task ([0-9a-z]{10,})")
_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")
#: How the wait for services tells time and sleeps; tests replace both.
_clock: Callable[[], float] = time.monotonic
_sleep: Callable[[float], None] = time.sleep
#: A task's slot, as a swarm template: each task's ``DYNO`` is ``TYPE.SLOT`` (``web.1``).
SLOT_TEMPLATE = "{{.Task.Slot}}"
#: How much of a health check's output a failure line keeps (as the ``checks`` plugin).
_OUTPUT_CHARS = 300


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
    return SwarmScheduler(
        engine, settings.computed(properties, REGISTRY, app, "server"), properties=properties
    )


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


def template_literal(value: str) -> str:
    """``value`` as literal text in a swarm template (env values are expanded as Go
    templates): every ``{{`` is written as ``{{"{{"}}``."""
    return value.replace("{{", '{{"{{"}}')


def process_env(env: Mapping[str, str], process_type: str) -> dict[str, str]:
    """A process service's environment, as ``docker-local``'s ``process_env``: the config
    (kept literal), ``DYNO`` (``TYPE.SLOT`` of each task) and ``PORT`` for web (5000 unless
    the config sets it)."""
    result = {name: template_literal(value) for name, value in env.items()}
    result["DYNO"] = f"{process_type}.{SLOT_TEMPLATE}"
    if process_type == "web":
        result["PORT"] = template_literal(env.get("PORT") or DEFAULT_WEB_PORT)
    return result


@attrs.frozen
class SwarmChecks:
    """What the swarm runs for one process type in place of the checks before the switch.

    ``healthcheck`` (the app.json healthchecks of kind command, path and listening, as one
    Docker health check) named ``health_name``; ``monitor``: seconds a new task must keep
    running after it runs (healthy) for the update to pass, the default check's
    ``default-wait`` or the longest ``uptime`` check, named ``monitor_name``.
    """

    healthcheck: ServiceHealthcheck | None = None
    health_name: str = ""
    monitor: float = 0.0
    monitor_name: str = ""

    @property
    def budget(self) -> float:
        """Seconds the checks may take at most, beyond the time to start a task."""
        extra = self.monitor
        check = self.healthcheck
        if check is not None:
            extra += check.start_period + check.retries * (check.interval + check.timeout)
        return extra


#: No checks: the swarm only has to run the new tasks.
NO_CHECKS = SwarmChecks()


def plan_checks(
    process_type: str,
    healthchecks: Sequence[Healthcheck],
    defaults: CheckSettings,
    port: int | None = None,
) -> SwarmChecks:
    """The swarm's form of the checks of ``process_type`` (not disabled or skipped).

    Only ``startup`` healthchecks count, as before a ``docker-local`` switch.  None: the
    default check, a ``monitor`` of ``default-wait`` seconds.  Else each kind maps to:

    - ``command``: ``["CMD", *command]``; ``path``: ``["CMD-SHELL", ...]`` requesting
      ``http://127.0.0.1:PORT/PATH`` with wget (else curl) inside the task's container and,
      with ``content``, looking for it in the body; ``listening``: ``["CMD-SHELL", ...]``
      finding a socket that listens on the port on every interface in ``/proc/net/tcp``.
      ``wait`` is the interval, ``timeout`` the probe timeout, ``attempts`` the retries and
      ``initialDelay`` the start period (the ``checks`` properties fill in what is unset).
      Several of them become one shell script that runs each in order; it then uses the
      shortest wait, the sum of the timeouts, the most attempts and the longest delay.
    - ``uptime``: the ``monitor`` window: the task must still run ``uptime`` (at least
      ``initialDelay``) seconds after it runs.
    """
    startup = [check for check in healthchecks if check.type == STARTUP]
    if not startup:
        return SwarmChecks(monitor=float(defaults.default_wait), monitor_name=DEFAULT_CHECK)
    uptimes = [check for check in startup if check.kind == "uptime"]
    probed = [check for check in startup if check.kind != "uptime"]
    monitor = max((float(max(c.uptime, c.initial_delay)) for c in uptimes), default=0.0)
    monitor_name = ", ".join(c.label for c in uptimes)
    if not probed:
        return SwarmChecks(monitor=monitor, monitor_name=monitor_name)
    port = port or DEFAULT_PORT
    waits = [max(check.wait or defaults.wait, 1) for check in probed]
    timeouts = [check.timeout or defaults.timeout for check in probed]
    if len(probed) == 1:
        check = probed[0]
        if check.kind == "command":
            test: tuple[str, ...] = ("CMD", *(check.command or ()))
        else:
            test = ("CMD-SHELL", _probe_script(check, port, timeouts[0]))
    else:
        parts = []
        for check, timeout in zip(probed, timeouts, strict=True):
            quoted = shlex.quote(f"healthcheck '{check.label}' failed")
            parts.append(
                f"( {_probe_script(check, port, timeout)} ) || {{ echo {quoted} >&2; exit 1; }}"
            )
        test = ("CMD-SHELL", "\n".join(parts))
    return SwarmChecks(
        healthcheck=ServiceHealthcheck(
            test=test,
            interval=float(min(waits)),
            timeout=float(sum(timeouts)),
            retries=max(check.attempts or defaults.attempts for check in probed),
            start_period=float(max(check.initial_delay for check in probed)),
        ),
        health_name="', '".join(check.label for check in probed),
        monitor=monitor,
        monitor_name=monitor_name,
    )


def _probe_script(check: Healthcheck, port: int, timeout: int) -> str:
    """A shell script that makes one attempt of a command, path or listening check."""
    port = check.port or port
    if check.kind == "command":
        return shlex.join(check.command or ())
    if check.kind == "listening":
        # A LISTEN (0A) socket on 0.0.0.0 or :: at the port, in the kernel's hex notation.
        pattern = f"^ *[0-9]+: (0{{8}}|0{{32}}):{port:04X} [0-9A-F]+:[0-9A-F]+ 0A "
        missing = shlex.quote(f"nothing listens on port {port} on every interface")
        return (
            "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | "
            f"grep -qE {shlex.quote(pattern)} || {{ echo {missing} >&2; exit 1; }}"
        )
    scheme = check.scheme or "http"
    path = check.path if check.path.startswith("/") else "/" + check.path
    url = shlex.quote(f"{scheme}://127.0.0.1:{port}{path}")
    wget_tls = " --no-check-certificate" if scheme == "https" else ""
    curl_tls = " -k" if scheme == "https" else ""
    fetch = (
        f"if command -v wget >/dev/null 2>&1; then wget -q -O -{wget_tls} {url}; "
        f"else curl -fsSL --max-time {timeout}{curl_tls} {url}; fi"
    )
    if not check.content:
        return f"{fetch} >/dev/null"
    missing = shlex.quote(f"unable to find expected content in response body: {check.content}")
    return (
        f"body=$({fetch}) || exit $?\n"
        f'case "$body" in *{shlex.quote(check.content)}*) ;; '
        f"*) echo {missing} >&2; exit 1 ;; esac"
    )


def _condense(text: str) -> str:
    line = printable(" ".join(text.split()))
    return line if len(line) <= _OUTPUT_CHARS else line[: _OUTPUT_CHARS - 3] + "..."


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_failure(
    process_type: str,
    service: str,
    checks: SwarmChecks,
    task: Mapping[str, Any] | None,
    state: Mapping[str, Any] | None,
    outcome: str,
) -> ChecksFailedError | EngineError:
    """The one line a process service whose new tasks failed ends the deploy with.

    ``task`` is the task that failed (``None`` when it cannot be found), ``state`` its
    container's ``State`` when this engine has it (for the health check's last output), and
    ``outcome`` what became of the service (``rolled back to its previous version``).
    """
    status = (task or {}).get("Status") or {}
    slot = (task or {}).get("Slot")
    dyno = f"{process_type}.{slot}" if slot else process_type
    error = str(status.get("Err") or status.get("Message") or status.get("State") or "")
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    if code is None and state is not None and not state.get("Running", True):
        code = state.get("ExitCode")
    exited = f"exit status {code}" if code is not None else error or "it failed"
    health = (state or {}).get("Health") or {}
    unhealthy = "unhealthy" in error or health.get("Status") == "unhealthy"
    tail = f"; service {service} {outcome}"
    if checks.healthcheck is not None and (unhealthy or health.get("Status") != "healthy"):
        name = checks.health_name
        if unhealthy:
            # The failed probes in a row that made it unhealthy (the streak may grow on
            # until the container stops).
            attempts = checks.healthcheck.retries
            log = (health.get("Log") or [{}])[-1]
            plural = "" if attempts == 1 else "s"
            reason = f"failed after {attempts} attempt{plural}"
            if log.get("ExitCode") is not None:
                reason += f": exit status {log['ExitCode']}"
            else:
                reason += ": the task's container turned unhealthy"
            shown = _condense(str(log.get("Output") or ""))
            if shown:
                reason += f"; output: {shown}"
        else:
            attempts = 1
            reason = f"failed: the task stopped before it was healthy ({exited})"
        return ChecksFailedError(
            f"Pre-flight checks failed ({dyno}): healthcheck '{name}' {reason}{tail}",
            process=dyno,
            check=name,
            attempts=attempts,
        )
    if checks.monitor_name and status.get("State") != "rejected":
        within = f"within {_seconds(checks.monitor)} seconds" if checks.monitor else "at once"
        return ChecksFailedError(
            f"Pre-flight checks failed ({dyno}): healthcheck '{checks.monitor_name}' failed "
            f"after 1 attempt: task stopped {within} ({exited}){tail}",
            process=dyno,
            check=checks.monitor_name,
            attempts=1,
        )
    return EngineError(f"Process {dyno} did not start ({error or exited}){tail}")


class SwarmScheduler:
    """Tasks as one-shot services (one task, never restarted) and processes as replicated
    services."""

    name = NAME
    can_commit = False

    def __init__(
        self,
        engine: Engine,
        registry: str = "",
        swarm: SwarmEngine | None = None,
        properties: PropertyStore | None = None,
    ) -> None:
        """``swarm`` makes the service calls (default: through ``engine.api``); tests pass a fake.

        ``properties`` are the app's settings: the ``checks`` properties and the
        ``appjson-path`` the healthchecks are read from (without them: the checks' defaults
        and no healthchecks).
        """
        self.engine = engine
        self.registry = registry
        self.properties = properties
        self.local = DockerLocalScheduler(engine)
        self._swarm = swarm
        self._published: dict[str, str] = {}
        self._checked = False
        self._constraints: tuple[str, ...] | None = None
        self._nodes: dict[str, tuple[str, ...]] = {}

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
        """Tag (and with a registry, push) ``image`` so every node can run it; return its ref.

        A pushed image's reference carries the digest the registry gave it
        (``REGISTRY/dokku/APP:TAG@sha256:...``), so every node runs exactly that image.
        """
        if image.id not in self._published:
            repository, tag = image_reference(app, image.id, self.registry)
            self.engine.tag(image.id, repository, tag)
            reference = f"{repository}:{tag}"
            if self.registry:
                digest = self.swarm.push(repository, tag)
                if digest:
                    reference = f"{reference}@{digest}"
            self._published[image.id] = reference
        return self._published[image.id]

    def image_reference(self, image: ImageInfo) -> str:
        """The registry reference (with digest) ``image`` was pushed as; ``""`` when it was
        not pushed (no registry: the image is only on this node)."""
        reference = self._published.get(image.id, "")
        return reference if self.registry else ""

    def constraints(self) -> tuple[str, ...]:
        """The placement constraints of every service and job of this deploy.

        Without a registry the image exists only on this engine's node, so everything is
        placed there; with one, anywhere.
        """
        if self._constraints is None:
            node = "" if self.registry else self.swarm.local_node_id()
            self._constraints = (f"node.id=={node}",) if node else ()
        return self._constraints

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
            env={name: template_literal(value) for name, value in spec.options.env.items()},
            mounts=spec.options.mounts,
            network=spec.options.network,
            labels=spec.labels,
            job=True,
            constraints=self.constraints(),
        )
        service_id = self.swarm.create_service(service)
        follower = None
        try:
            io.started(service_id)
            follower = self.swarm.follow_service_logs(service_id, io.stdout, io.stderr)
            deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
            next_node_check = time.monotonic() + NODE_CHECK_SECONDS
            while (finished := job_exit(tasks := self.swarm.service_tasks(service_id))) is None:
                if deadline is not None and time.monotonic() > deadline:
                    raise TaskTimeoutError(phase, spec.timeout or 0)
                if time.monotonic() >= next_node_check:
                    self._check_job_node(phase, tasks)
                    next_node_check = time.monotonic() + NODE_CHECK_SECONDS
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

    def _check_job_node(self, phase: str, tasks: Sequence[Mapping[str, Any]]) -> None:
        """Fail a job whose task sits on a node the swarm lost.

        The swarm leaves such a task ``running`` (it cannot know whether the node will come
        back), so the deploy would otherwise wait until the task timeout, or forever.  The
        job is not run again elsewhere: a task may have done part of its work there.

        :raises EngineError: the node running the job's task is down.
        """
        placed = {str(t.get("NodeID")) for t in tasks if t.get("NodeID")}
        if not placed:
            return
        nodes = self.swarm.nodes()
        for node_id in sorted(placed):
            node = nodes.get(node_id)
            if node is None or node.state == "down":
                name = node.hostname if node is not None else node_id[:12]
                raise EngineError(
                    f"The {phase} job was lost: its node {name} went down while it ran "
                    "(it was not run again elsewhere)"
                )

    def deploy_processes(
        self,
        app: str,
        image: ImageInfo,
        processes: Sequence[ProcessSpec],
        options: ContainerOptions,
        check: ProcessCheck | None = None,
    ) -> tuple[str, ...]:
        """Update (or create) one service per process type, start-first, and wait for them.

        ``check`` is not called: it probes local containers, and a service's tasks may run on
        any node.  When it is given (a deploy always gives one), the checks it stands for run
        as the swarm's own instead (:func:`plan_checks`); without it, the new tasks only have
        to run.

        :raises ChecksFailedError: new tasks failed their checks; the swarm rolled the
            service back (a service this deploy created is removed).
        """
        self._require_swarm()
        reference = self.publish(app, image)
        existing = {
            s.labels[PROCESS_LABEL]: s
            for s in self.swarm.services({APP_LABEL: app})
            if s.labels.get(PROCESS_LABEL) and not s.labels.get(TASK_LABEL)
        }
        plans = self._plan_checks(app, image, processes, options) if check is not None else {}
        # The engine's init as PID 1 of each task, by docker-local's rule (``init-process``).
        init = uses_init(self.properties, app, image) if self.properties is not None else True
        rollouts: list[_Rollout] = []
        created: list[str] = []
        retired: list[str] = []
        try:
            for process in processes:
                current = existing.pop(process.process_type, None)
                if process.quantity == 0:
                    if current is not None:
                        retired.append(current.id)
                    continue
                checks = plans.get(process.process_type, NO_CHECKS)
                spec = ServiceSpec(
                    name=dns_name(app, process.process_type),
                    image=reference,
                    args=process.argv,
                    env=process_env(options.env, process.process_type),
                    mounts=options.mounts,
                    network=options.network,
                    labels={APP_LABEL: app, PROCESS_LABEL: process.process_type},
                    replicas=process.quantity,
                    healthcheck=checks.healthcheck,
                    monitor=checks.monitor,
                    # Every deploy replaces every task, as docker-local replaces every
                    # container, even when nothing else changed (the same image again).
                    force_update=(current.force_update + 1) if current is not None else 0,
                    constraints=self.constraints(),
                    init=init,
                )
                if current is None:
                    service_id = self.swarm.create_service(spec)
                    created.append(service_id)
                    rollouts.append(_Rollout(service_id, spec, process.process_type, checks))
                else:
                    self.swarm.update_service(current, spec)
                    rollouts.append(
                        _Rollout(current.id, spec, process.process_type, checks, current)
                    )
            self._converge(rollouts)
        except BaseException as error:
            # Services new to this deploy go; updated ones go back to their previous spec
            # (the swarm already does so for one whose new tasks failed).
            for service_id in created:
                try:
                    self.swarm.remove_service(service_id)
                except EngineError as cleanup:
                    add_cleanup_note(error, cleanup.message)
            for rollout in rollouts:
                if rollout.previous is not None and not rollout.rolled_back:
                    try:
                        self.swarm.roll_back_service(rollout.service_id)
                    except EngineError as cleanup:
                        add_cleanup_note(error, cleanup.message)
            raise
        # Only once the new spec runs do process types that are gone or scaled to 0 go.
        for service_id in [*retired, *(s.id for s in existing.values())]:
            self.swarm.remove_service(service_id)
        ids = {rollout.service_id for rollout in rollouts}
        names = tuple(s.name for s in self.swarm.services({APP_LABEL: app}) if s.id in ids)
        nodes = self.swarm.nodes()
        for service_id in ids:
            name = next(r.spec.name for r in rollouts if r.service_id == service_id)
            self._nodes[name] = _placed(self.swarm.service_tasks(service_id), nodes)
        return names

    def nodes_of(self, names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        """The nodes each service's running tasks were on when the deploy saw them run."""
        return tuple(self._nodes.get(name, ()) for name in names)

    def _plan_checks(
        self,
        app: str,
        image: ImageInfo,
        processes: Sequence[ProcessSpec],
        options: ContainerOptions,
    ) -> dict[str, SwarmChecks]:
        """The swarm's checks of each process type that runs and is not disabled or skipped."""
        store = self.properties
        defaults = CheckSettings.read(store, app) if store is not None else _DEFAULT_SETTINGS
        plans: dict[str, SwarmChecks] = {}
        declared: Mapping[str, Sequence[Healthcheck]] | None = None
        for process in processes:
            kind = process.process_type
            if process.quantity == 0:
                continue
            if store is not None and (
                is_disabled(store, app, kind) or is_skipped(store, app, kind)
            ):
                plans[kind] = NO_CHECKS
                continue
            if declared is None:
                declared = self._healthchecks(app, image)
            port = options.env.get("PORT") or DEFAULT_WEB_PORT if kind == "web" else None
            plans[kind] = plan_checks(
                kind,
                declared.get(kind, ()),
                defaults,
                int(port) if port and port.isdigit() else None,
            )
        return plans

    def _healthchecks(self, app: str, image: ImageInfo) -> Mapping[str, Sequence[Healthcheck]]:
        """The healthchecks of app.json in ``image`` (at ``appjson-path`` under its WORKDIR).

        The scheduler is not given the deploy's app.json, so it reads the file from the
        image it deploys, as ``checks:run`` does: for a deploy from an image, the very file
        the deploy read; for a source deploy, the one the Dockerfile copied into the WORKDIR.
        """
        store = self.properties
        if store is None:
            return {}
        from ... import locate
        from ...appjson import MAX_APP_JSON_BYTES, parse_app_json
        from ..app_json import computed_appjson_path

        path = computed_appjson_path(store, app)
        relative = locate.clean_relative(path, "appjson-path")
        labels = {APP_LABEL: app, **TaskOwner(store.root).labels}
        read = self.engine.read_image_files(
            image.id, image.workdir, [relative], labels, limit=MAX_APP_JSON_BYTES
        )

        def reader(wanted: str) -> tuple[str, bytes, str]:
            return read[wanted].kind, read[wanted].data, read[wanted].resolved

        data = locate.read_image_file(
            image.workdir,
            path,
            reader,
            "appjson-path",
            limit=MAX_APP_JSON_BYTES,
            filename="app.json",
        )
        return {} if data is None else parse_app_json(data).healthchecks

    def _converge(self, rollouts: Sequence[_Rollout]) -> None:
        """Wait until each service runs its new tasks and they passed their checks.

        An updated service is done when the swarm completes its update (which watched the
        ``monitor`` window); one created by this deploy when its replicas run and none of its
        tasks ended for ``monitor`` seconds.

        :raises ChecksFailedError: new tasks failed (the swarm rolled an updated service back:
            this waits, up to :data:`ROLLBACK_SECONDS`, until the old tasks run again).
        :raises EngineError: a service did not get there in time.
        """
        budget = CONVERGE_SECONDS + max((r.checks.budget for r in rollouts), default=0.0)
        deadline = _clock() + budget
        pending = list(rollouts)
        while pending:
            for rollout in list(pending):
                if self._settled(rollout):
                    pending.remove(rollout)
            if pending and _clock() > deadline:
                names = ", ".join(r.spec.name for r in pending)
                raise EngineError(
                    f"Services did not run the new image within {budget:.0f} seconds: {names}"
                )
            if pending:
                _sleep(POLL_SECONDS)

    def _settled(self, rollout: _Rollout) -> bool:
        """Whether ``rollout`` is done.  :raises ChecksFailedError: its new tasks failed."""
        if rollout.previous is not None:
            status = self.swarm.inspect_service(rollout.service_id).get("UpdateStatus") or {}
            if str(status.get("StartedAt") or "") == rollout.previous.update_started:
                return False  # the swarm has not begun this update yet
            state = str(status.get("State") or "")
            if state in _FAILED_UPDATES:
                found = _TASK_ID.search(str(status.get("Message") or ""))
                self._fail(rollout, found.group(1) if found else None, state)
            if state != "completed":
                return False
            # Trust but verify: the swarm can call an update complete although a new task
            # failed (when its failure races the end of the monitor window).
            tasks = self._new_tasks(rollout)
            if len(_running(tasks)) >= rollout.spec.replicas:
                return True
            ended = [t for t in tasks if (t.get("Status") or {}).get("State") in _ENDED_STATES]
            if ended:
                self.swarm.roll_back_service(rollout.service_id)
                self._fail(rollout, str(ended[-1].get("ID")), "rollback_started")
            return False
        tasks = self._new_tasks(rollout)
        ended = [t for t in tasks if (t.get("Status") or {}).get("State") in _ENDED_STATES]
        if ended:
            self._fail(rollout, str(ended[-1].get("ID")), "")
        if len(_running(tasks)) < rollout.spec.replicas:
            rollout.running_since = None
            return False
        if rollout.running_since is None:
            rollout.running_since = _clock()
        return _clock() - rollout.running_since >= rollout.checks.monitor

    def _new_tasks(self, rollout: _Rollout) -> list[Mapping[str, Any]]:
        """The service's tasks of this deploy's spec, oldest first."""
        tasks = [
            t
            for t in self.swarm.service_tasks(rollout.service_id)
            if t["Spec"]["ContainerSpec"]["Image"].startswith(rollout.spec.image)
            and int(t["Spec"].get("ForceUpdate") or 0) == rollout.spec.force_update
        ]
        return sorted(tasks, key=lambda t: str(t.get("CreatedAt") or ""))

    def _fail(self, rollout: _Rollout, task_id: str | None, state: str) -> None:
        """Raise the failure line of ``rollout``, once an updated service is rolled back."""
        tasks = self._new_tasks(rollout)
        task = next((t for t in tasks if t.get("ID") == task_id), None)
        if task is None:
            ended = [t for t in tasks if (t.get("Status") or {}).get("State") in _ENDED_STATES]
            task = ended[-1] if ended else None
        container = ((task or {}).get("Status") or {}).get("ContainerStatus") or {}
        container_id = container.get("ContainerID")
        health = self.swarm.container_state(str(container_id)) if container_id else None
        if rollout.previous is None:
            outcome = "removed"
        else:
            rollout.rolled_back = True
            state = self._await_rollback(rollout.service_id, state)
            outcome = {
                "rollback_completed": "rolled back to its previous version",
                "paused": "paused by the swarm: its update failed",
            }.get(state, "rolling back to its previous version")
        raise check_failure(
            rollout.process_type, rollout.spec.name, rollout.checks, task, health, outcome
        )

    def _await_rollback(self, service_id: str, state: str) -> str:
        """Wait, up to :data:`ROLLBACK_SECONDS`, for the swarm's rollback; its last state."""
        deadline = _clock() + ROLLBACK_SECONDS
        while state not in _ROLLED_BACK and state != "paused" and _clock() < deadline:
            _sleep(POLL_SECONDS)
            status = self.swarm.inspect_service(service_id).get("UpdateStatus") or {}
            state = str(status.get("State") or "")
        return state


def _placed(tasks: Sequence[Mapping[str, Any]], nodes: Mapping[str, NodeInfo]) -> tuple[str, ...]:
    """The names of the nodes ``tasks`` run on (``?`` for a node the swarm no longer lists)."""
    return tuple(
        sorted(
            {
                nodes[str(t["NodeID"])].hostname if str(t.get("NodeID")) in nodes else "?"
                for t in _running(tasks)
            }
        )
    )


def _running(tasks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The tasks that run and are meant to."""
    return [
        t
        for t in tasks
        if (t.get("Status") or {}).get("State") == "running" and t.get("DesiredState") == "running"
    ]


#: The ``checks`` defaults, for a scheduler made without the app's properties.
_DEFAULT_SETTINGS = CheckSettings(default_wait=10, wait=5, timeout=30, attempts=5)


@attrs.define
class _Rollout:
    """One process service this deploy creates (``previous`` ``None``) or updates."""

    service_id: str
    spec: ServiceSpec
    process_type: str
    checks: SwarmChecks
    previous: ServiceInfo | None = None
    running_since: float | None = None
    rolled_back: bool = False


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``registry`` section: where the swarm scheduler pushes the deploy image."""
    return settings.report_section(properties, REGISTRY, app)
