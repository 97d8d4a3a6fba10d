"""What happens during a deploy, as typed events: one model behind every kind of output.

The pipeline and the plugins report through :class:`~dokku_tasks.output.Output`.  Every line it
prints is also a :class:`Line` (or :class:`TaskOutput`) event, and the pipeline adds structured
events (:class:`TaskStarted`, :class:`TaskFinished`, ...) that the Dokku-framed text does not
spell out.  Sinks receive every event, in order:

- the text sink is :class:`Output` itself (the lines it prints);
- ``deploy --format jsonl`` writes each event as one JSON object per line (:class:`JsonLines`),
  a :class:`Version` record first;
- the deploy history (:mod:`dokku_tasks.history`) keeps them under the state root.

The JSON form of an event is its fields plus ``"event": NAME`` (:func:`to_json`).  Readers must
ignore fields and events they do not know: later versions add to them, and only a change of
meaning bumps :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any, ClassVar

import attrs

#: Bumped only when the meaning of an existing field changes; new fields and events do not.
SCHEMA_VERSION = 1


@attrs.frozen
class Version:
    """The first record of a JSON stream: what wrote it and which schema it follows."""

    name: ClassVar[str] = "version"
    schema: int = SCHEMA_VERSION
    tool: str = "dokku-tasks"
    tool_version: str = ""


@attrs.frozen
class DeployStarted:
    """A deploy of ``app`` got its lock: ``deploy_id`` is its number in the app's history."""

    name: ClassVar[str] = "deploy_started"
    app: str
    deploy_id: int
    at: float
    source: str | None = None
    image: str | None = None
    skip: tuple[str, ...] = ()


@attrs.frozen
class Line:
    """A Dokku-framed line: ``style`` is ``step`` (``-----> ``), ``section`` (``=====> ``),
    ``info`` (indented), ``error`` (`` !     `` on stderr), ``build`` (a line of the build's
    output) or ``raw``; ``text`` is the line without its frame."""

    name: ClassVar[str] = "line"
    style: str
    text: str


@attrs.frozen
class PhaseStarted:
    """A phase (``predeploy``, ``release``, ``postdeploy``, ``heroku.postdeploy``) starts;
    ``skipped`` says why it runs nothing (``--skip``), empty when it runs."""

    name: ClassVar[str] = "phase_started"
    phase: str
    skipped: str = ""


@attrs.frozen
class TaskStarted:
    """A task's container started.  ``argv`` is its CMD; ``rule`` names the ENTRYPOINT/tini
    decision that shaped it (``shell: no ENTRYPOINT``, ``shell: tini ENTRYPOINT``,
    ``words: ENTRYPOINT``)."""

    name: ClassVar[str] = "task_started"
    phase: str
    plugin: str
    source: str
    command: str
    image: str
    argv: tuple[str, ...]
    rule: str
    container_id: str
    commit: bool = False


@attrs.frozen
class TaskOutput:
    """One line a task wrote: ``stream`` is ``stdout`` or ``stderr``."""

    name: ClassVar[str] = "task_output"
    phase: str
    stream: str
    line: str


@attrs.frozen
class TaskFinished:
    """A task ended: its real exit status (``-1`` when it never finished: a timeout, a signal,
    an engine failure), wall time in seconds, container, and the image a commit made."""

    name: ClassVar[str] = "task_finished"
    phase: str
    exit_status: int
    duration: float
    container_id: str
    committed_image: str | None = None


@attrs.frozen
class HostStepRun:
    """A plugin's host-side step ran (a phase hook's implementation, ``deploy_started``)."""

    name: ClassVar[str] = "host_step"
    plugin: str
    hook: str
    duration: float
    error: str | None = None


@attrs.frozen
class ProcessesScheduled:
    """The new process containers (or services) passed their checks and took over."""

    name: ClassVar[str] = "processes_scheduled"
    scheduler: str
    image: str
    containers: tuple[str, ...]
    #: The registry reference (with digest) the image was pushed as; "" when not pushed.
    reference: str = ""
    #: For each of ``containers``, the nodes it runs on, comma-separated ("" on one host).
    nodes: tuple[str, ...] = ()


@attrs.frozen
class Truncated:
    """The history stopped keeping task output here: the deploy's cap was reached."""

    name: ClassVar[str] = "truncated"
    kept_bytes: int


@attrs.frozen
class DeployFinished:
    """The deploy ended: ``outcome`` is ``succeeded``, ``failed`` or ``interrupted``;
    ``error`` is the failure line."""

    name: ClassVar[str] = "deploy_finished"
    outcome: str
    duration: float
    image: str | None = None
    error: str | None = None


Event = (
    Version
    | DeployStarted
    | Line
    | PhaseStarted
    | TaskStarted
    | TaskOutput
    | TaskFinished
    | HostStepRun
    | ProcessesScheduled
    | Truncated
    | DeployFinished
)

#: Receives every event of a deploy, in order.  A sink must not raise: a failing sink is
#: dropped (see :class:`~dokku_tasks.output.Output`).
Sink = Callable[[Event], None]

EVENT_TYPES: dict[str, type[Any]] = {
    cls.name: cls
    for cls in (
        Version,
        DeployStarted,
        Line,
        PhaseStarted,
        TaskStarted,
        TaskOutput,
        TaskFinished,
        HostStepRun,
        ProcessesScheduled,
        Truncated,
        DeployFinished,
    )
}


def to_json(event: Event) -> dict[str, Any]:
    """``{"event": NAME, **fields}`` (tuples stay tuples: JSON writes them as lists)."""
    names = _FIELD_NAMES.get(type(event))
    if names is None:
        names = _FIELD_NAMES[type(event)] = tuple(f.name for f in attrs.fields(type(event)))
    # Not attrs.asdict: a deploy may stream millions of task_output events, and the fields
    # are plain values.
    data: dict[str, Any] = {"event": event.name}
    for name in names:
        data[name] = getattr(event, name)
    return data


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def from_json(data: dict[str, Any]) -> Event | None:
    """The event ``data`` describes; None for an event this version does not know.

    Fields this version does not know are ignored, as a reader of a newer stream must.

    :raises ValueError: ``data`` names a known event but its fields do not fit it.
    """
    cls = EVENT_TYPES.get(str(data.get("event")))
    if cls is None:
        return None
    known = {field.name for field in attrs.fields(cls)}
    values = {key: value for key, value in data.items() if key in known}
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    try:
        event: Event = cls(**values)
    except TypeError as exc:
        raise ValueError(f"bad {cls.name} event: {exc}") from None
    return event


@attrs.define
class JsonLines:
    """A sink writing each event as one line of JSON to ``stream``, flushed at once.

    The :class:`Version` record is written before the first event.
    """

    stream: IO[str]
    tool_version: str = ""
    _started: bool = False

    def __call__(self, event: Event) -> None:
        if not self._started:
            self._started = True
            self._write(Version(tool_version=self.tool_version))
        self._write(event)

    def _write(self, event: Event) -> None:
        self.stream.write(json.dumps(to_json(event), ensure_ascii=False) + "\n")
        self.stream.flush()
