"""The swarm's engine calls: services, their tasks and logs, and pushing an image.

The swarm scheduler owns these calls; the core engine (:mod:`dokku_tasks.engine`) knows
containers and images only.  They go through the deploy's one connection
(:attr:`dokku_tasks.engine.Engine.api`), so they share its timeouts, including the short ones
of the clean-up after a signal.  This module imports ``docker``: the plugin imports it only
once a swarm scheduler talks to the engine, so loading the plugin stays cheap.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import docker
import docker.errors
import docker.types
import requests
import requests.exceptions
import urllib3.exceptions

from ...engine import LineSink, LineSplitter, engine_errors
from ...errors import EngineError
from .specs import NodeInfo, ServiceHealthcheck, ServiceInfo, ServiceSpec

#: Nanoseconds in a second: the engine's unit for every duration of a service spec.
_NS = 1_000_000_000
#: Seconds before a process task that ended is started again (the docker CLI's default).
RESTART_DELAY = 5.0
#: The shortest update (and rollback) monitor window a service gets, in seconds.
MIN_MONITOR = 1.0


class SwarmEngine:
    """The swarm calls of one engine connection (the SDK's low-level client ``api``)."""

    def __init__(self, api: docker.APIClient) -> None:
        self._api = api

    def swarm_active(self) -> bool:
        """Whether this engine is a manager of an active swarm."""
        swarm = self._swarm_info()
        return bool(swarm.get("LocalNodeState") == "active" and swarm.get("ControlAvailable"))

    def local_node_id(self) -> str:
        """The swarm node id of this engine (``""`` outside a swarm)."""
        return str(self._swarm_info().get("NodeID") or "")

    def _swarm_info(self) -> Mapping[str, Any]:
        with engine_errors("Cannot ask the engine about its swarm"):
            return dict(self._api.info().get("Swarm") or {})

    def nodes(self) -> dict[str, NodeInfo]:
        """Every node of the swarm, by id."""
        with engine_errors("Cannot list the swarm's nodes"):
            found = self._api.nodes()
        return {
            str(n["ID"]): NodeInfo(
                id=str(n["ID"]),
                hostname=str((n.get("Description") or {}).get("Hostname") or n["ID"][:12]),
                state=str((n.get("Status") or {}).get("State") or "unknown"),
                availability=str((n.get("Spec") or {}).get("Availability") or "active"),
            )
            for n in found
        }

    def create_service(self, spec: ServiceSpec) -> str:
        """Create a service (one task, run once, when ``spec.job``); return its id."""
        with engine_errors(f"Cannot create service {spec.name}"):
            result = self._api.create_service(  # type: ignore[no-untyped-call]
                name=spec.name, **_service_args(spec)
            )
        return str(result["ID"])

    def update_service(self, service: ServiceInfo, spec: ServiceSpec) -> None:
        """Replace a service's spec (start-first rolling update for replicated services)."""
        with engine_errors(f"Cannot update service {spec.name}"):
            self._api.update_service(
                service.id, service.version, name=spec.name, **_service_args(spec)
            )

    def services(self, labels: Mapping[str, str]) -> list[ServiceInfo]:
        """Every service carrying all of ``labels``."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        with engine_errors("Cannot list services"):
            found = self._api.services(filters=filters)  # type: ignore[no-untyped-call]
        return [
            ServiceInfo(
                id=s["ID"],
                name=s["Spec"]["Name"],
                labels=s["Spec"].get("Labels") or {},
                version=int(s["Version"]["Index"]),
                image=s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
                force_update=int(s["Spec"]["TaskTemplate"].get("ForceUpdate") or 0),
                update_started=str((s.get("UpdateStatus") or {}).get("StartedAt") or ""),
            )
            for s in found
        ]

    def inspect_service(self, service_id: str) -> Mapping[str, Any]:
        """The service as the engine reports it (``Spec``, ``Version``, ``UpdateStatus`` ...)."""
        with engine_errors(f"Cannot inspect service {service_id[:12]}"):
            return dict(self._api.inspect_service(service_id))  # type: ignore[no-untyped-call]

    def roll_back_service(self, service_id: str) -> None:
        """Ask the swarm to put the service back to its previous spec (``docker service
        rollback``); a service that is gone is fine."""
        with (
            engine_errors(f"Cannot roll back service {service_id[:12]}"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            current = self._api.inspect_service(service_id)  # type: ignore[no-untyped-call]
            url = self._api._url("/services/{0}/update", service_id)  # type: ignore[attr-defined]
            params = {"version": current["Version"]["Index"], "rollback": "previous"}
            response = self._api._post_json(url, data=current["Spec"], params=params)  # type: ignore[attr-defined]
            self._api._raise_for_status(response)  # type: ignore[attr-defined]

    def container_state(self, container_id: str) -> Mapping[str, Any] | None:
        """The ``State`` block (with ``Health``) of a task's container, when this engine
        has it: ``None`` for a container on another node, or one already removed."""
        try:
            data = self._api.inspect_container(container_id)
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return None
        return dict(data.get("State") or {})

    def remove_service(self, service_id: str) -> None:
        """Remove a service; one that is already gone is fine."""
        # NotFound is an APIError: it must be suppressed before engine_errors turns it into ours.
        with (
            engine_errors(f"Cannot remove service {service_id[:12]}"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            self._api.remove_service(service_id)  # type: ignore[no-untyped-call]

    def service_tasks(self, service_id: str) -> list[Mapping[str, Any]]:
        """The service's tasks as the engine reports them (``Status``, ``DesiredState`` ...)."""
        with engine_errors(f"Cannot read the tasks of service {service_id[:12]}"):
            return list(self._api.tasks(filters={"service": service_id}))  # type: ignore[no-untyped-call]

    def follow_service_logs(
        self, service_id: str, on_stdout: LineSink, on_stderr: LineSink
    ) -> ServiceLogFollower:
        """Start streaming a service's output line by line on a reader thread."""
        follower = ServiceLogFollower(self._api, service_id, on_stdout, on_stderr)
        follower.start()
        return follower

    def push(self, repository: str, tag: str) -> str:
        """Push ``repository:tag`` to its registry; return the digest the registry gave the
        manifest (``sha256:...``, ``""`` when the engine did not say).

        :raises EngineError: the push failed.
        """
        digest = ""
        with engine_errors(f"Push of {repository}:{tag} failed"):
            for chunk in self._api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    raise EngineError(f"Push of {repository}:{tag} failed: {chunk['error']}")
                digest = str((chunk.get("aux") or {}).get("Digest") or digest)
        return digest


def _nanoseconds(seconds: float) -> int:
    return round(seconds * _NS)


def _monitor(seconds: float) -> int:
    # At least MIN_MONITOR: with a shorter window, the swarm's updater may declare the update
    # complete before it reads the failure of a new task that never ran (its timer and the
    # failure race), and the old task is then stopped for a failing one.  (A monitor of 0
    # would be read as the default, 5 s.)
    return _nanoseconds(max(seconds, MIN_MONITOR))


def _healthcheck(check: ServiceHealthcheck) -> docker.types.Healthcheck:
    return docker.types.Healthcheck(
        test=list(check.test),
        interval=_nanoseconds(check.interval),
        timeout=_nanoseconds(check.timeout),
        retries=check.retries,
        start_period=_nanoseconds(check.start_period),
    )


def _service_args(spec: ServiceSpec) -> dict[str, Any]:
    container = docker.types.ContainerSpec(
        spec.image,
        args=list(spec.args) if spec.args is not None else None,
        env=[f"{k}={v}" for k, v in spec.env.items()],
        labels=dict(spec.labels),
        mounts=[
            docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
            for m in spec.mounts
        ],
        healthcheck=_healthcheck(spec.healthcheck) if spec.healthcheck is not None else None,
        init=spec.init,
    )
    # A process task that ends is restarted after RESTART_DELAY, as the docker CLI's default
    # does: the SDK's default delay of 0 lets a restart race a rollback of the service, which
    # deadlocks the manager of engine 20.10 (swarmkit's restart supervisor waits on the store
    # lock that the rollback holds; every later service call then fails).
    if spec.job:
        restart = docker.types.RestartPolicy(condition="none")
    else:
        restart = docker.types.RestartPolicy(condition="any", delay=_nanoseconds(RESTART_DELAY))
    template = docker.types.TaskTemplate(
        container,
        restart_policy=restart,
        force_update=spec.force_update or None,
        placement=docker.types.Placement(constraints=list(spec.constraints))
        if spec.constraints
        else None,
    )
    rollback = None
    if spec.job:
        # One task, never restarted (condition "none"), of a plain replicated service rather
        # than a "replicated-job": engine 20.10 never cleans up the task of a job service
        # that is removed, and its container stays on the node that ran it (moby/moby#42789,
        # #44312).  A replicated service's tasks and containers go with it, on every node.
        mode = docker.types.ServiceMode("replicated", replicas=1)
        update = None
    else:
        mode = docker.types.ServiceMode("replicated", replicas=spec.replicas)
        # Every task at once, each new one running (healthy, with a health check) before
        # the old one of its slot stops; a new task that fails before it runs, or within
        # ``monitor`` seconds after, rolls the whole service back, start-first as well.
        update = docker.types.UpdateConfig(
            order="start-first",
            failure_action="rollback",
            monitor=None if spec.monitor is None else _monitor(spec.monitor),
        )
        rollback = docker.types.RollbackConfig(order="start-first", monitor=_monitor(0))
    return {
        "task_template": template,
        "labels": dict(spec.labels),
        "mode": mode,
        "update_config": update,
        "rollback_config": rollback,
        "networks": [spec.network] if spec.network else None,
    }


class ServiceLogFollower:
    """Streams a service's stdout and stderr as lines, and can be stopped from another thread.

    Following a service's logs never ends by itself (a service may start new tasks), so the
    caller stops it once the job is done; :meth:`finish` then fetches the complete logs once
    and passes on any line the live stream had not delivered yet.
    """

    def __init__(
        self, api: docker.APIClient, service_id: str, on_stdout: LineSink, on_stderr: LineSink
    ) -> None:
        self._api = api
        self._service_id = service_id
        self._counts = [0, 0]
        self._sinks = (on_stdout, on_stderr)
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self._thread = threading.Thread(target=self._read, name="service-logs", daemon=True)

    def _request(self, follow: bool) -> requests.Response:
        # The SDK's service_logs() drops which stream a frame came from; read frames ourselves.
        url = self._api._url("/services/{0}/logs", self._service_id)  # type: ignore[attr-defined]
        params = {"follow": str(follow).lower(), "stdout": "true", "stderr": "true", "tail": "all"}
        with engine_errors(f"Cannot read the logs of service {self._service_id[:12]}"):
            response = self._api.get(url, params=params, stream=True)
            response.raise_for_status()
        return response

    def _emit(self, stream: int, line: str) -> None:
        index = 1 if stream == 2 else 0
        with self._lock:
            self._counts[index] += 1
            self._sinks[index](line)

    def start(self) -> None:
        self._response = self._request(follow=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._response is not None
        splitters = {
            1: LineSplitter(lambda line: self._emit(1, line)),
            2: LineSplitter(lambda line: self._emit(2, line)),
        }
        try:
            for stream, data in _frames(self._response):
                splitters.get(stream, splitters[1]).feed(data)
        except (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
            AttributeError,
        ):
            pass  # closed under us by stop()
        # A partial last line stays unsent here; finish() delivers it from the full logs.

    def stop(self) -> None:
        """Stop following (from any thread); safe to call more than once."""
        if self._response is not None:
            docker.types.CancellableStream(iter(()), self._response).close()
            self._thread.join(timeout=5)
            self._response.close()
            self._response = None

    def finish(self) -> None:
        """Stop following, then deliver whatever the live stream missed."""
        self.stop()
        full = self._request(follow=False)
        try:
            lines: dict[int, list[str]] = {1: [], 2: []}
            splitters = {n: LineSplitter(lines[n].append) for n in (1, 2)}
            for stream, data in _frames(full):
                splitters.get(stream, splitters[1]).feed(data)
            for splitter in splitters.values():
                splitter.close()
        finally:
            full.close()
        with self._lock:
            for stream, index in ((1, 0), (2, 1)):
                for line in lines[stream][self._counts[index] :]:
                    self._counts[index] += 1
                    self._sinks[index](line)


def _frames(response: requests.Response) -> Iterator[tuple[int, bytes]]:
    """The (stream, payload) frames of a multiplexed (non-TTY) log response."""
    raw = response.raw
    while True:
        header = raw.read(8)
        if len(header) < 8:
            return
        stream, length = header[0], int.from_bytes(header[4:8], "big")
        data = raw.read(length) if length else b""
        if length and not data:
            return
        yield stream, data
