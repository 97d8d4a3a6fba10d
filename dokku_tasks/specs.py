"""Records and labels shared by the engine and the schedulers, free of the Docker SDK.

Schedulers build these and hand them to :class:`dokku_tasks.engine.Engine`; keeping them
here means loading a scheduler plugin does not import ``docker`` (``report`` and ``--help``
stay fast).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import attrs

from .converters import mount_tuple, optional_string_tuple, string_map
from .models import Mount

APP_LABEL = "com.dokku.app-name"
PROCESS_LABEL = "com.dokku.process-type"
TASK_LABEL = "dokku_phase_script"
PREDEPLOY_LABEL = "com.dokku.predeploy-phase"
#: The state root whose deploy made a task container: only that root's deploys may reap it.
OWNER_LABEL = "com.dokku-tasks.state-root"


@attrs.define
class Interruption:
    """Whether a signal asked the deploy to stop, shared by the signal handler and the engine.

    Once :meth:`signal` is called, the engine bounds its clean-up: no request and no wait
    may hold the command past ``at + budget`` seconds, whatever the engine does.
    """

    budget: float = 5.0
    signum: int | None = None
    at: float | None = None
    _listeners: list[Callable[[], None]] = attrs.field(factory=list)

    def signal(self, signum: int) -> None:
        """Record the signal (the first one counts) and tell every listener."""
        if self.at is not None:
            return
        self.signum, self.at = signum, time.monotonic()
        for listener in self._listeners:
            listener()

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` when the signal comes (at once if it already came)."""
        self._listeners.append(listener)
        if self.at is not None:
            listener()

    def remaining(self) -> float | None:
        """Seconds of clean-up left, ``None`` while no signal came (no bound)."""
        if self.at is None:
            return None
        return max(0.0, self.at + self.budget - time.monotonic())


@attrs.frozen
class ContainerSpec:
    """How to create a container.  ``entrypoint``/``command`` ``None`` keep the image's."""

    image: str
    command: tuple[str, ...] | None = attrs.field(default=None, converter=optional_string_tuple)
    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=optional_string_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=mount_tuple)
    network: str | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    name: str | None = None
    restart_policy: str | None = None
    #: Retries of an ``on-failure`` restart policy (0: the engine's default, unlimited).
    restart_retries: int = 0
    #: Run the engine's init process (docker-init, a tini) as PID 1 in front of the command.
    init: bool = False


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
class ExecOutcome:
    """How a command run in a running container ended: its exit status and its output
    (stdout and stderr, interleaved, at most the reader's limit), or ``timed_out``."""

    exit_code: int
    output: str
    timed_out: bool = False


@attrs.frozen
class RunOutcome:
    """How a started container ended: its exit status, or ``timed_out``."""

    exit_code: int
    timed_out: bool = False
