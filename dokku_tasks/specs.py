"""Records and labels shared by the engine and the schedulers, free of the Docker SDK.

Schedulers build these and hand them to :class:`dokku_tasks.engine.Engine`; keeping them
here means loading a scheduler plugin does not import ``docker`` (``report`` and ``--help``
stay fast).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from .models import Mount

APP_LABEL = "com.dokku.app-name"
PROCESS_LABEL = "com.dokku.process-type"
TASK_LABEL = "dokku_phase_script"
PREDEPLOY_LABEL = "com.dokku.predeploy-phase"


def _argv(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _mapping(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


def _mounts(value: Iterable[Mount]) -> tuple[Mount, ...]:
    return tuple(value)


@attrs.frozen
class ContainerSpec:
    """How to create a container.  ``entrypoint``/``command`` ``None`` keep the image's."""

    image: str
    command: tuple[str, ...] | None = attrs.field(default=None, converter=_argv)
    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=_argv)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=_mounts)
    network: str | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    name: str | None = None
    restart_policy: str | None = None


@attrs.frozen
class ServiceSpec:
    """A swarm service: a one-shot job (``job=True``) or ``replicas`` long-running tasks.

    ``args`` replaces the image's CMD (``None`` keeps it); the ENTRYPOINT always stays.
    """

    name: str
    image: str
    args: tuple[str, ...] | None = attrs.field(default=None, converter=_argv)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=_mounts)
    network: str | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    job: bool = False
    replicas: int = 1


@attrs.frozen
class ServiceInfo:
    """A service as a listing shows it; ``version`` is needed to update it."""

    id: str
    name: str
    labels: Mapping[str, str]
    version: int
    image: str


@attrs.frozen
class ContainerInfo:
    """A container as a listing shows it."""

    id: str
    name: str
    labels: Mapping[str, str]
    status: str


@attrs.frozen
class ImageFile:
    """What a path inside an image led to: ``kind`` is ``file``, ``other`` or ``missing``.

    ``resolved`` is the path with every symlink on it resolved.
    """

    kind: str
    data: bytes = b""
    resolved: str = ""


@attrs.frozen
class RunOutcome:
    """How a started container ended: its exit status, or ``timed_out``."""

    exit_code: int
    timed_out: bool = False
