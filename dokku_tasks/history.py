"""The deploy history: every deploy of an app, recorded under the state root as it goes.

Layout, per app (``ROOT/history/APP/``):

- ``N.json``: the deploy's record (:class:`DeployRecord`): written when the deploy starts
  (``running``) and rewritten when it ends (``succeeded``, ``failed`` or ``interrupted``), each
  time atomically.  A deploy killed outright stays ``running`` on disk; a reader that finds the
  app's deploy lock free reports it as ``interrupted``.
- ``N.events.jsonl``: every event of the deploy (:mod:`dokku_tasks.events`), one JSON object
  per line, written and flushed as it happens, so the task output of a failed or killed deploy
  can be replayed (``deploys:logs``).

Bounds: task output is kept up to :data:`MAX_OUTPUT_BYTES` per deploy (then one ``truncated``
event and no more output; the other events are still kept); the app keeps its newest ``keep``
deploys (the ``deploys`` property, 20 by default), older ones are removed when a deploy starts.
A deploy holds its app's lock while it records, so ids and pruning never race; two apps write
to different directories.

Recording never changes a deploy's outcome: when the state root cannot take a write (full,
read-only), one warning line says that the history of this deploy is incomplete, and the
deploy goes on.  A new record keeps :data:`RECORD_RESERVE` bytes of room (trailing spaces), so
that on a disk that filled up during the deploy its outcome is still written, in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from .errors import UsageError
from .events import DeployFinished, DeployStarted, Event, TaskOutput, Truncated, from_json, to_json

#: Task output kept per deploy (bytes of the lines as shown); beyond it, a truncated marker.
MAX_OUTPUT_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 20
DIRECTORY = "history"
_RECORD = re.compile(r"([1-9][0-9]{0,9})\.json")


@attrs.frozen
class DeployRecord:
    """One deploy as the history keeps it.

    ``status`` is ``running``, ``succeeded``, ``failed`` or ``interrupted``.  ``request`` holds
    what a retry needs (source, image, mounts, network, task timeout, scheduler, skipped
    phases); config values are never recorded.
    """

    id: int
    app: str
    status: str
    started: float
    finished: float | None = None
    image: str | None = None
    error: str | None = None
    failed_phase: str | None = None
    request: dict[str, Any] = attrs.field(factory=dict)
    pid: int = 0
    output_bytes: int = 0
    truncated: bool = False

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else max(0.0, self.finished - self.started)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: object) -> DeployRecord:
        """:raises ValueError: ``data`` is not a record."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        known = {field.name for field in attrs.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        try:
            record = cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(record.id, int) or not isinstance(record.app, str):
            raise ValueError("id and app must be a number and a string")
        if not isinstance(record.status, str) or not isinstance(record.started, (int, float)):
            raise ValueError("status and started must be a string and a number")
        return record


def configured_keep(value: str) -> int:
    """How many deploys to keep for a ``deploys`` ``keep`` value (the default when unset)."""
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_KEEP


def app_directory(root: Path, app: str) -> Path:
    return Path(root) / DIRECTORY / app


def record_path(root: Path, app: str, deploy_id: int) -> Path:
    return app_directory(root, app) / f"{deploy_id}.json"


def events_path(root: Path, app: str, deploy_id: int) -> Path:
    return app_directory(root, app) / f"{deploy_id}.events.jsonl"


def _ids(root: Path, app: str) -> list[int]:
    try:
        names = os.listdir(app_directory(root, app))
    except OSError:
        return []
    return sorted(int(m[1]) for name in names if (m := _RECORD.fullmatch(name)))


#: Room a new record keeps after its JSON (trailing spaces, which JSON ignores), so that its
#: outcome can still be written over it in place when the disk is full (:func:`_write_record`).
RECORD_RESERVE = 2048


def _write_record(root: Path, record: DeployRecord, reserve: int = 0) -> None:
    """Write the record atomically (a temporary file renamed over it).

    When that fails (no space for the temporary file) and the record's file already holds
    enough room (the :data:`RECORD_RESERVE` a new record keeps), the record is written over
    it in place: overwriting bytes the file already has needs no new space.
    """
    path = record_path(root, record.app, record.id)
    text = json.dumps(record.to_json())
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        temporary.write_text(text + " " * reserve, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if not _write_in_place(path, text.encode("utf-8")):
            raise


def _write_in_place(path: Path, data: bytes) -> bool:
    """Overwrite ``path`` with ``data`` padded with spaces to its size; ``False`` when it is
    not there or too small."""
    try:
        with open(path, "r+b") as handle:
            size = os.fstat(handle.fileno()).st_size
            if len(data) > size:
                return False
            handle.write(data + b" " * (size - len(data)))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        return False
    return True


@attrs.define
class Recorder:
    """A sink that records one deploy: its record and its events.

    Made by :func:`start`; the deploy holds the app's lock meanwhile.  ``warn`` prints the one
    warning a failed write gives (then the recorder stops writing).
    """

    root: Path
    app: str
    deploy_id: int
    record: DeployRecord
    warn: Any = None
    max_output_bytes: int = MAX_OUTPUT_BYTES
    _events: IO[str] | None = None
    _failed: bool = False

    def __call__(self, event: Event) -> None:
        if self._failed:
            if isinstance(event, DeployFinished):
                # The outcome is still worth a try: the events may be gone, the record not.
                with contextlib.suppress(OSError):
                    _write_record(self.root, self._finished(event))
            return
        try:
            self._record(event)
        except OSError as exc:
            self._failed = True
            self._close()
            if self.warn is not None:
                self.warn(
                    f"History: cannot record deploy {self.deploy_id} of {self.app} "
                    f"({exc.strerror or exc}); the deploy goes on without it"
                )

    def _record(self, event: Event) -> None:
        if isinstance(event, TaskOutput):
            size = len(event.line.encode("utf-8", "replace")) + 1
            if self.record.truncated:
                return
            if self.record.output_bytes + size > self.max_output_bytes:
                self.record = attrs.evolve(self.record, truncated=True)
                self._append(Truncated(self.record.output_bytes))
                return
            self.record = attrs.evolve(self.record, output_bytes=self.record.output_bytes + size)
        if isinstance(event, DeployFinished):
            self.record = self._finished(event)
        self._append(event)
        if isinstance(event, DeployFinished):
            self._close()
            _write_record(self.root, self.record)

    def _finished(self, event: DeployFinished) -> DeployRecord:
        return attrs.evolve(
            self.record,
            status=event.outcome,
            finished=self.record.started + event.duration,
            image=event.image,
            error=event.error,
        )

    def failed_phase(self, phase: str) -> None:
        """Note the phase whose task failed (what a retry starts from)."""
        self.record = attrs.evolve(self.record, failed_phase=phase)

    def _append(self, event: Event) -> None:
        if self._events is None:
            self._events = open(  # noqa: SIM115 - held open for the whole deploy
                events_path(self.root, self.app, self.deploy_id), "a", encoding="utf-8"
            )
        self._events.write(json.dumps(to_json(event), ensure_ascii=False) + "\n")
        self._events.flush()

    def _close(self) -> None:
        if self._events is not None:
            with contextlib.suppress(OSError):
                self._events.close()
            self._events = None


def start(
    root: Path,
    app: str,
    request: dict[str, Any],
    *,
    keep: int = DEFAULT_KEEP,
    warn: Any = None,
    now: float | None = None,
) -> Recorder | None:
    """Begin the record of a new deploy of ``app`` (the caller holds the app's lock).

    Removes the oldest deploys beyond ``keep`` (counting the new one).  Returns None, after
    one warning, when the state root cannot take the record.
    """
    began = time.time() if now is None else now
    try:
        with _numbering_lock(root, app):
            return _start(root, app, request, keep, warn, began)
    except OSError as exc:
        if warn is not None:
            warn(f"History: cannot record this deploy of {app} ({exc.strerror or exc})")
        return None


@contextlib.contextmanager
def _numbering_lock(root: Path, app: str) -> Iterator[None]:
    """``ROOT/locks/APP.history.lock``, held while a record is numbered and old ones pruned:
    a deploy and a one-off run (which holds no deploy lock) may start at the same moment."""
    import fcntl

    directory = Path(root) / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{app}.history.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for milliseconds: waiting is fine
        yield
    finally:
        os.close(fd)


def _start(
    root: Path, app: str, request: dict[str, Any], keep: int, warn: Any, began: float
) -> Recorder:
    directory = app_directory(root, app)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ids = _ids(root, app)
    deploy_id = (ids[-1] if ids else 0) + 1
    for old in ids[: max(0, len(ids) - max(keep, 1) + 1)]:
        for path in (record_path(root, app, old), events_path(root, app, old)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    record = DeployRecord(
        id=deploy_id,
        app=app,
        status="running",
        started=began,
        request=request,
        pid=os.getpid(),
    )
    _write_record(root, record, reserve=RECORD_RESERVE)
    return Recorder(root=root, app=app, deploy_id=deploy_id, record=record, warn=warn)


def started_event(recorder: Recorder | None, app: str, request: dict[str, Any]) -> DeployStarted:
    """The :class:`DeployStarted` event of a deploy (id 0 when it is not recorded)."""
    return DeployStarted(
        app=app,
        deploy_id=recorder.deploy_id if recorder is not None else 0,
        at=recorder.record.started if recorder is not None else time.time(),
        source=request.get("source"),
        image=request.get("image"),
        skip=tuple(request.get("skip") or ()),
    )


# -- reading ---------------------------------------------------------------------------------


def list_deploys(root: Path, app: str) -> tuple[list[DeployRecord], list[str]]:
    """The app's recorded deploys, newest first, and a warning for each record skipped.

    A ``running`` record whose deploy no longer holds the app's lock is reported
    ``interrupted`` (the deploy was killed).
    """
    from .locks import lock_is_held

    records: list[DeployRecord] = []
    warnings: list[str] = []
    live: dict[str, bool] = {}
    for deploy_id in reversed(_ids(root, app)):
        path = record_path(root, app, deploy_id)
        try:
            record = DeployRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            continue  # pruned meanwhile
        except (OSError, ValueError) as exc:
            warnings.append(f"Skipping deploy record {path}: {exc}")
            continue
        if record.status == "running":
            # A deploy holds the app's deploy lock; a one-off run, the runs' lock of the app.
            kind = str(record.request.get("kind") or "deploy")
            if kind not in live:
                holder = Path(root) / "runs" if kind == "run" else Path(root)
                live[kind] = lock_is_held(holder, app)
            if not live[kind]:
                record = attrs.evolve(record, status="interrupted", error="killed")
        records.append(record)
    return records, warnings


def get_deploy(root: Path, app: str, deploy_id: str | int | None) -> DeployRecord:
    """The record of deploy ``deploy_id`` (the newest when None).

    :raises UsageError: no such deploy (one line naming it).
    """
    records, _ = list_deploys(root, app)
    if not records:
        raise UsageError(f"No deploys of {app} are recorded")
    if deploy_id is None:
        return records[0]
    wanted = _parse_id(deploy_id)
    for record in records:
        if record.id == wanted:
            return record
    known = ", ".join(str(r.id) for r in sorted(records, key=lambda r: r.id))
    raise UsageError(f"Deploy {deploy_id} of {app} is not recorded (recorded: {known})")


def _parse_id(value: str | int) -> int:
    text = str(value).strip()
    if text.startswith("v"):
        text = text[1:]
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 10**10:
        raise UsageError(f"Invalid deploy id {value!r}: expected a number such as 3")
    return int(text)


def read_events(root: Path, app: str, deploy_id: int) -> Iterator[Event]:
    """The recorded events of a deploy, in order; a line that does not parse is skipped."""
    try:
        handle = open(events_path(root, app, deploy_id), encoding="utf-8")  # noqa: SIM115
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            try:
                event = from_json(json.loads(line))
            except ValueError:
                continue
            if event is not None:
                yield event


def phases_of(events: Sequence[Event]) -> list[str]:
    """The phases whose tasks wrote output, in order of appearance."""
    seen: list[str] = []
    for event in events:
        if isinstance(event, TaskOutput) and event.phase not in seen:
            seen.append(event.phase)
    return seen
