"""The swarm scheduler's records of a service, free of the Docker SDK.

The scheduler builds these and hands them to :class:`~dokku_tasks.plugins.swarm.services.SwarmEngine`;
keeping them here means loading the plugin does not import ``docker`` (``report`` and
``--help`` stay fast).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ...converters import mount_tuple, optional_string_tuple, string_map, string_tuple
from ...models import Mount


@attrs.frozen
class ServiceHealthcheck:
    """A Docker health check of a service's tasks (``HEALTHCHECK`` of the container).

    ``test`` is Docker's form: ``("CMD", argv...)`` or ``("CMD-SHELL", script)``.  Times are
    in seconds.  Swarm counts a task as running only once it is healthy, and fails it when it
    turns unhealthy (``retries`` failed probes in a row after ``start_period``).
    """

    test: tuple[str, ...] = attrs.field(converter=string_tuple)
    interval: float = 5.0
    timeout: float = 30.0
    retries: int = 5
    start_period: float = 0.0


@attrs.frozen
class ServiceSpec:
    """A swarm service: a one-shot job (``job=True``) or ``replicas`` long-running tasks.

    ``args`` replaces the image's CMD (``None`` keeps it); the ENTRYPOINT always stays.
    ``healthcheck`` replaces the image's own ``HEALTHCHECK`` (``None`` keeps it).
    ``monitor`` is how many seconds after a task runs its failure still fails (and rolls
    back) an update (``None``: the engine's default, 5 s).  ``force_update`` is the task
    template's counter: a new value makes the swarm replace every task, even when nothing
    else changed.  ``constraints`` are swarm placement constraints (``node.id==...``).
    """

    name: str
    image: str
    args: tuple[str, ...] | None = attrs.field(default=None, converter=optional_string_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=mount_tuple)
    network: str | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    job: bool = False
    replicas: int = 1
    healthcheck: ServiceHealthcheck | None = None
    monitor: float | None = None
    force_update: int = 0
    constraints: tuple[str, ...] = attrs.field(default=(), converter=string_tuple)
    #: Whether the engine's init runs as PID 1 of each task (``--init``); ``None``: the
    #: engine's default (none).
    init: bool | None = None


@attrs.frozen
class ServiceInfo:
    """A service as a listing shows it; ``version`` is needed to update it.

    ``force_update`` is its task template's counter, and ``update_started`` when its last
    update began (``UpdateStatus.StartedAt``, ``""`` for a service never updated): a later
    value means a new update.
    """

    id: str
    name: str
    labels: Mapping[str, str]
    version: int
    image: str
    force_update: int = 0
    update_started: str = ""


@attrs.frozen
class NodeInfo:
    """A swarm node: its ``hostname``, ``state`` (``ready``, ``down`` ...) and
    ``availability`` (``active``, ``pause``, ``drain``)."""

    id: str
    hostname: str
    state: str
    availability: str
