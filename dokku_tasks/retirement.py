"""Retirement of old process containers, off the deploy's path.

At the switch a deploy calls :func:`begin`: every old container gets a record on disk
(``ROOT/retirements/<app>/<container id>.json``), its restart policy is set to ``no`` and it is
sent ``SIGTERM`` (two quick API calls on the engine's background lane), and a detached
*retirer* process is started.  The deploy never waits for an old container to stop.

The retirer (``python -m dokku_tasks.retirement ROOT``, at most one per state root, held by an
``flock`` on ``ROOT/retirements/.retirer.lock``) sleeps until a record's deadline
(``wait-to-retire`` seconds after the switch), then stops the container with the record's
``stop-timeout-seconds``, removes it and deletes the record; it exits when no record is left.

The records are the truth, the retirer only a convenience: every later command calls
:func:`reap_if_due`, which starts a retirer when a record is past its deadline and none runs, and
``ps:retire`` calls :func:`retire_due` in line.  So a killed CLI, a killed retirer, an engine
restart or a second deploy inside the window never strand a container.

This module never imports ``docker`` at module level: :func:`due`, :func:`pending` and
:func:`reap_if_due` are a directory listing and a few small reads, cheap enough for every command.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import attrs

from .errors import EngineError, StateError

if TYPE_CHECKING:
    from .engine import Engine

#: The folder of the records under the state root.
DIRECTORY = "retirements"
#: The retirer's lock (and pid) file, inside :data:`DIRECTORY`.
LOCK_NAME = ".retirer.lock"
#: Version of the record format.
RECORD_VERSION = 1

#: The longest the retirer sleeps between two looks at the clock (it wakes sooner when a
#: record is added or removed, see :data:`POLL`).
MAX_SLEEP = 30.0
#: How often a sleeping retirer looks whether a record was added or removed.
POLL = 0.5
#: A record whose retirement failed (engine down or restarting) is retried after this many
#: seconds, doubled on each failure up to :data:`MAX_RETRY_DELAY`.
RETRY_DELAY = 2.0
MAX_RETRY_DELAY = 60.0
#: A retirer that has only failed for this long gives up (exit status 1).  The records stay:
#: the next command, or ``ps:retire``, starts another one.
GIVE_UP_AFTER = 600.0
#: How many containers one pass stops at the same time.
WORKERS = 8
#: A temporary file of an interrupted write older than this is removed by :func:`pending`.
STALE_TEMP_SECONDS = 60.0
#: How long a starting retirer tries for the lock: a :func:`retirer_running` probe holds it for
#: a moment, and must not make a new retirer give up.  A holder whose pid is in the lock file
#: and alive (a retirer, or a deploy starting one) holds it for good: nobody waits for it.
LOCK_TRIES = 5
LOCK_TRY_DELAY = 0.01

# Container ids as the engine gives them (64 hex digits); anything that is a safe file name is
# accepted, so fakes can use short ids.
_CONTAINER_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,127}")

#: Where :meth:`Engine.connect` looks when it is given no address.
_DEFAULT_HOST = "unix:///var/run/docker.sock"

ConnectFn = Callable[[str | None], "Engine"]


@attrs.frozen
class Record:
    """One old container waiting to be retired.

    ``deadline`` is wall-clock epoch seconds: the container is stopped once it has passed.
    ``docker_host`` is the engine the container lives on (``None``: whichever the retirer
    connects to).  ``attempts`` and ``last_error`` tell about failed retirements.
    """

    app: str
    container_id: str
    name: str
    deadline: float
    stop_timeout: int
    docker_host: str | None = None
    registered: float = 0.0
    attempts: int = 0
    last_error: str = ""

    def is_due(self, now: float) -> bool:
        return self.deadline <= now

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "app": self.app,
            "id": self.container_id,
            "name": self.name,
            "deadline": self.deadline,
            "stop_timeout": self.stop_timeout,
            "docker_host": self.docker_host,
            "registered": self.registered,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }

    @classmethod
    def from_json(cls, data: object) -> Record:
        """:raises ValueError: ``data`` is not a record."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        app, cid, name = data.get("app"), data.get("id"), data.get("name")
        deadline, stop_timeout = data.get("deadline"), data.get("stop_timeout")
        host = data.get("docker_host")
        if not (isinstance(app, str) and isinstance(cid, str) and isinstance(name, str)):
            raise ValueError("app, id and name must be strings")
        if not _CONTAINER_ID.fullmatch(cid):
            raise ValueError(f"bad container id {cid!r}")
        if not _is_number(deadline) or not math.isfinite(float(deadline)):
            raise ValueError("deadline must be a number")
        if not (isinstance(stop_timeout, int) and not isinstance(stop_timeout, bool)):
            raise ValueError("stop_timeout must be a whole number")
        if host is not None and not isinstance(host, str):
            raise ValueError("docker_host must be a string")
        registered = data.get("registered", 0.0)
        attempts = data.get("attempts", 0)
        last_error = data.get("last_error", "")
        return cls(
            app=app,
            container_id=cid,
            name=name,
            deadline=float(deadline),
            stop_timeout=max(0, stop_timeout),
            docker_host=host,
            registered=float(registered) if _is_number(registered) else 0.0,
            attempts=attempts if isinstance(attempts, int) and attempts >= 0 else 0,
            last_error=last_error if isinstance(last_error, str) else "",
        )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- records on disk -------------------------------------------------------------------------


def records_dir(root: Path) -> Path:
    """``ROOT/retirements``."""
    return Path(root) / DIRECTORY


def record_path(root: Path, app: str, container_id: str) -> Path:
    return records_dir(root) / app / f"{container_id}.json"


def lock_path(root: Path) -> Path:
    return records_dir(root) / LOCK_NAME


def _mkdir(root: Path, app: str | None = None) -> Path:
    """Create ``ROOT/retirements`` (and ``ROOT/retirements/APP``), mode 0700; return the
    deepest.  The state root itself is created as any other command would."""
    directory = records_dir(root)
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    if app is not None:
        directory = directory / app
        directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write(root: Path, record: Record) -> None:
    """Write ``record`` atomically (temporary file, then ``os.replace``), mode 0600."""
    target = record_path(root, record.app, record.container_id)
    data = json.dumps(record.to_json(), sort_keys=True).encode("utf-8")
    for attempt in range(3):
        try:
            _mkdir(root, record.app)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{record.container_id}.")
        except FileNotFoundError:
            # A retirer removed the app's emptied folder between the mkdir and here.
            if attempt == 2:
                raise
            continue
        break
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _read(path: Path) -> Record | None:
    """The record at ``path``; ``None`` when it cannot be read now (it stays).

    A file that is readable but no record of this name (bad JSON, wrong fields, a name that
    does not match its content) is garbage: it is removed.
    """
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        if len(raw) > 64 * 1024:
            raise ValueError("too large")
        record = Record.from_json(json.loads(raw.decode("utf-8")))
        if record.app != path.parent.name or f"{record.container_id}.json" != path.name:
            raise ValueError("the record does not match its file name")
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return record


def _delete(root: Path, record: Record) -> bool:
    """Drop ``record``; ``False`` when its file cannot be removed."""
    path = record_path(root, record.app, record.container_id)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        return False
    # The app's folder goes with its last record (a register() racing this retries its mkdir).
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    return True


def register(
    root: Path,
    app: str,
    containers: Sequence[tuple[str, str]],
    *,
    wait: int,
    stop_timeout: int,
    now: float | None = None,
    docker_host: str | None = None,
) -> None:
    """Record that ``containers`` (``(id, name)`` pairs) of ``app`` retire ``wait`` seconds
    from ``now``, stopped with ``stop_timeout`` seconds between SIGTERM and SIGKILL.

    A container that already has a record (a second deploy inside the window) keeps the
    earlier deadline.  Records of other apps and other containers are left alone.

    :raises InvalidAppNameError: ``app`` is not a valid app name.
    :raises ValueError: a container id that cannot be a file name.
    :raises StateError: the state root cannot be written.
    """
    from .apps import validate_app_name

    validate_app_name(app)
    for container_id, _ in containers:
        if not _CONTAINER_ID.fullmatch(container_id):
            raise ValueError(f"Invalid container id {container_id!r}")
    when = time.time() if now is None else now
    deadline = when + max(0, wait)
    for container_id, name in containers:
        record = Record(
            app=app,
            container_id=container_id,
            name=name,
            deadline=deadline,
            stop_timeout=max(0, stop_timeout),
            docker_host=docker_host,
            registered=when,
        )
        existing = _read(record_path(root, app, container_id))
        if existing is not None and existing.deadline < deadline:
            record = attrs.evolve(record, deadline=existing.deadline)
        try:
            _write(root, record)
        except OSError as exc:
            raise StateError(
                "write", root, record_path(root, app, container_id), exc.strerror or str(exc)
            ) from exc


def pending(root: Path) -> list[Record]:
    """Every readable record under ``root``, earliest deadline first.

    Unreadable records are skipped, garbage ones removed; never raises.
    """
    base = records_dir(root)
    try:
        apps = sorted(os.listdir(base))
    except OSError:
        return []
    found: list[Record] = []
    for app in apps:
        if app.startswith("."):
            continue
        directory = base / app
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = directory / name
            if name.startswith("."):
                _remove_if_stale(path)
            elif name.endswith(".json"):
                record = _read(path)
                if record is not None:
                    found.append(record)
    found.sort(key=lambda r: (r.deadline, r.app, r.container_id))
    return found


def _remove_if_stale(path: Path) -> None:
    """Remove the temporary file of a write that was interrupted long ago."""
    with contextlib.suppress(OSError):
        if time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
            path.unlink()


def due(root: Path, now: float | None = None) -> bool:
    """Whether some record is past its deadline.  Cheap; never raises."""
    when = time.time() if now is None else now
    return any(record.is_due(when) for record in pending(root))


def forget(root: Path, app: str) -> int:
    """Drop every record of ``app`` (for ``apps:destroy``, which removes the containers itself);
    return how many there were."""
    dropped = 0
    for record in pending(root):
        if record.app == app:
            _delete(root, record)
            dropped += 1
    return dropped


def _note_failure(root: Path, record: Record, error: str) -> None:
    """Keep the record, with the failure counted and its reason."""
    path = record_path(root, record.app, record.container_id)
    current = _read(path)
    if current is None:  # retired meanwhile (ps:retire), or unreadable: leave it be
        return
    updated = attrs.evolve(current, attempts=current.attempts + 1, last_error=error)
    with contextlib.suppress(OSError):
        _write(root, updated)


# -- retiring --------------------------------------------------------------------------------


def _retire_one(root: Path, engine: Engine, record: Record) -> bool:
    """Stop and remove one container, then drop its record; ``False`` when the engine failed
    (the record stays, its failure noted)."""
    cid = record.container_id
    try:
        # Restart policy first: a container with "always" must not come back after the stop.
        engine.update_restart_policy(cid, "no")
        # The engine sends SIGTERM, and SIGKILL after stop_timeout.  A stop that fails is
        # followed by a forced removal, which kills.
        engine.stop(cid, timeout=record.stop_timeout)
        engine.remove(cid)
    except EngineError as exc:
        _note_failure(root, record, exc.message)
        return False
    # A record that cannot be dropped counts as a failure, so a retirer backs off from it.
    return _delete(root, record)


def _retire_records(root: Path, engine: Engine, records: Sequence[Record]) -> list[Record]:
    """Retire ``records`` on ``engine``, several at a time; return those that failed."""
    if len(records) == 1:
        return [] if _retire_one(root, engine, records[0]) else [records[0]]
    workers = min(WORKERS, len(records))
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="retire"
    ) as pool:
        outcomes = list(pool.map(lambda r: _retire_one(root, engine, r), records))
    return [record for record, ok in zip(records, outcomes, strict=True) if not ok]


def _engine_host(engine: Engine) -> str | None:
    where = getattr(engine, "where", None)
    return where if isinstance(where, str) else None


def _same_host(record: Record, host: str | None) -> bool:
    return record.docker_host is None or host is None or record.docker_host == host


def retire_due(root: Path, engine: Engine, *, force: bool = False, now: float | None = None) -> int:
    """Retire, in this process, every record past its deadline (every record when ``force``)
    that lives on ``engine``: restart policy ``no``, stop with the record's stop timeout,
    remove, drop the record.  A container that is already gone counts as retired.

    Records of another engine (another ``DOCKER_HOST``) are left to the retirer.  A failure
    keeps its record (with ``attempts`` and ``last_error``) for a later try.

    :returns: how many containers were retired.
    """
    when = time.time() if now is None else now
    host = _engine_host(engine)
    chosen = [r for r in pending(root) if (force or r.is_due(when)) and _same_host(r, host)]
    if not chosen:
        return 0
    failed = _retire_records(root, engine, chosen)
    _prune_images(root, engine, {r.app for r in chosen} - {r.app for r in failed})
    return len(chosen) - len(failed)


def _prune_images(root: Path, engine: Engine, apps: set[str]) -> None:
    """Prune the images the retired containers kept in use, as the deploy prunes the rest:
    everything of the app but what rollback and retry need.

    Not while a deploy of the app runs (it holds the app's images lock): its build may be
    using layers of those images as cache, and would fail with "unable to find image".  That
    deploy prunes at its end.
    """
    from .errors import DokkuTasksError
    from .locks import images_lock
    from .pipeline import prune_app_images

    for app in sorted(apps):
        # A failure to prune is no failure to retire: the next deploy prunes again.
        with contextlib.suppress(DokkuTasksError), images_lock(root, app, wait=False) as held:
            if held:
                prune_app_images(engine, app)


# -- the deploy's side -----------------------------------------------------------------------


def begin(
    engine: Engine,
    root: Path,
    app: str,
    containers: Sequence[tuple[str, str]],
    *,
    wait: int,
    stop_timeout: int,
) -> None:
    """Start the retirement of ``containers`` (``(id, name)``) at the switch of a deploy.

    Registers their records, queues on the engine's background lane (which the deploy drains
    at close: quick API calls only) restart policy ``no`` and ``SIGTERM`` for each, and starts
    a detached retirer (unless one runs: it sees the new records).  Never waits for a container to stop, even when ``wait`` is 0.

    When the records cannot be written (state root read-only or full), the containers are
    stopped and removed in the background of this deploy instead, as before retirement
    records existed.
    """
    if not containers:
        return
    try:
        register(
            root,
            app,
            containers,
            wait=wait,
            stop_timeout=stop_timeout,
            docker_host=_engine_host(engine),
        )
    except (StateError, OSError):
        for container_id, _ in containers:
            engine.remove_later(container_id, stop_first=True)
        return
    for container_id, _ in containers:
        engine.later(_signal_step(engine, container_id))
    spawn_retirer(root)


def _signal_step(engine: Engine, container_id: str) -> Callable[[], None]:
    def step() -> None:
        # A failure here is no failure of the deploy: the record makes the retirer stop the
        # container anyway (and set its restart policy again first).
        with contextlib.suppress(EngineError):
            engine.update_restart_policy(container_id, "no")
        engine.kill(container_id, "SIGTERM")

    return step


# -- the retirer process ---------------------------------------------------------------------


def acquire_retirer_lock(root: Path, tries: int = LOCK_TRIES) -> int | None:
    """Take the retirer lock of ``root``: an open file descriptor holding the ``flock``, with
    this process's pid written in the file; ``None`` when another process holds it.

    :raises OSError: the lock file cannot be created.
    """
    _mkdir(root)
    fd = os.open(lock_path(root), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    for attempt in range(max(1, tries)):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # A deploy that finds a retirer running must not wait for it (it sees the new
            # records): only a holder that names no live process, a probe, is worth a retry.
            if attempt + 1 >= max(1, tries) or _holder_alive(fd):
                os.close(fd)
                return None
            time.sleep(LOCK_TRY_DELAY)
            continue
        break
    _write_pid(fd, os.getpid())
    return fd


def _holder_alive(fd: int) -> bool:
    """Whether the lock file open at ``fd`` names a process that is alive.

    A retirer (and a deploy from the moment it takes the lock to start one) keeps its pid in
    the file; a :func:`retirer_running` probe writes nothing, and a retirer that let go
    emptied the file.
    """
    try:
        pid = _pid_in(os.pread(fd, 32, 0).decode("ascii", "replace"))
    except OSError:
        return False
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another user's
        return True
    return True


def _pid_in(text: str) -> int | None:
    """The pid a retirer lock file holds (as :func:`_write_pid` writes it), if any."""
    text = text.strip()
    return int(text) if text.isdigit() else None


#: The width of the pid in a retirer lock file (Linux pids have at most 7 digits).
_PID_WIDTH = 10


def _write_pid(fd: int, pid: int) -> None:
    # Always the same width, so one write replaces the last pid: a file truncated first and
    # written after would name no process in between, for as long as a retirer at a low priority
    # waits for the CPU on a busy host.
    data = f"{pid:>{_PID_WIDTH}}\n".encode()
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except OSError:
        pass  # the pid is for people and tests; the lock is what counts


def release_retirer_lock(fd: int) -> None:
    """Let go of a lock :func:`acquire_retirer_lock` returned."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing drops the flock


def retirer_running(root: Path) -> bool:
    """Whether a retirer holds the lock of ``root`` right now.  Never raises."""
    from .locks import file_lock_is_held

    return file_lock_is_held(lock_path(root))


def retirer_pid(root: Path) -> int | None:
    """The pid of the retirer that holds the lock of ``root``, or ``None`` when none does."""
    if not retirer_running(root):
        return None
    try:
        return _pid_in(lock_path(root).read_text())
    except OSError:
        return None


def _child_env() -> dict[str, str]:
    """The environment of a retirer: this one, and this copy of dokku_tasks importable."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    on_path = {str(Path(p).resolve()) for p in sys.path[1:] if p}
    if package_parent not in on_path:
        env["PYTHONPATH"] = os.pathsep.join(
            [package_parent, *filter(None, [env.get("PYTHONPATH")])]
        )
    return env


#: What the retirer's interpreter runs (``python -c``; its arguments follow): it lowers its own
#: priority before it imports anything.  A retirer starts at a deploy's switch, while the
#: deploy's postdeploy container starts: its start-up (about 100 ms of CPU) should leave the
#: CPUs to the deploy and the engine.  Nice 10, not 19: under a load that keeps every CPU
#: busy it still gets about a tenth of one, so its deadlines hold.  It is the same as
#: ``python -m dokku_tasks.retirement``.
RETIRER_BOOT = (
    "import os; os.nice(10); from dokku_tasks.retirement import main; raise SystemExit(main())"
)


def spawn_retirer(root: Path) -> None:
    """Start a detached retirer for ``root`` and return at once.

    The lock is taken here and handed to the child (the same open file), so that it is held
    without a gap from this moment on: when another retirer holds it, none is started, since
    that one looks at the records again before it exits.  The retirer runs in a session of
    its own (a SIGINT or SIGHUP to this process's group never reaches it), at a lower CPU
    priority (see :data:`RETIRER_BOOT`), with stdin, stdout and stderr on ``/dev/null``, and
    outlives this process.  When it cannot be started,
    nothing is raised: the records stay and the next command starts one.
    """
    absolute = os.path.abspath(root)
    try:
        lock = acquire_retirer_lock(root)
    except OSError:
        return
    if lock is None:
        return
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", RETIRER_BOOT, "--lock-fd", str(lock), absolute],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            pass_fds=(lock,),
            start_new_session=True,
            cwd="/",
            env=_child_env(),
        )
    except OSError:
        release_retirer_lock(lock)
        return
    _write_pid(lock, process.pid)
    os.close(lock)  # the child holds the lock now
    # Reap it when it exits while this process lives on (a library user deploying many
    # times): no zombies.  A daemon thread: it never holds this process.
    threading.Thread(target=process.wait, name="retirer-reaper", daemon=True).start()


def reap_if_due(root: Path, now: float | None = None) -> bool:
    """Start a retirer when a record is past its deadline and none runs; ``True`` when one was
    started.  For every command of the CLI: cheap when nothing is due; never raises."""
    try:
        if not due(root, now) or retirer_running(root):
            return False
        spawn_retirer(root)
    except Exception:  # a housekeeping step must never fail a command
        return False
    return True


def _default_host() -> str:
    return os.environ.get("DOCKER_HOST") or _DEFAULT_HOST


def _connect(host: str | None) -> Engine:
    from .engine import Engine

    if host is None or host == _default_host():
        return Engine.connect()
    return Engine.connect(host)


def _signature(root: Path) -> tuple[tuple[str, int], ...]:
    """What changes when a record is added or removed: the folders' modification times."""
    base = records_dir(root)
    marks: list[tuple[str, int]] = []
    try:
        marks.append(("", base.stat().st_mtime_ns))
        for name in sorted(os.listdir(base)):
            if not name.startswith("."):
                with contextlib.suppress(OSError):
                    marks.append((name, (base / name).stat().st_mtime_ns))
    except OSError:
        pass
    return tuple(marks)


def _pass(
    root: Path,
    records: Sequence[Record],
    connect: ConnectFn,
) -> tuple[list[Record], list[Record]]:
    """Retire ``records``, one engine connection per ``docker_host``; return (retired, failed)."""
    by_host: dict[str | None, list[Record]] = {}
    for record in records:
        by_host.setdefault(record.docker_host, []).append(record)
    retired: list[Record] = []
    failed: list[Record] = []
    for host, group in by_host.items():
        try:
            engine = connect(host)
        except EngineError as exc:
            for record in group:
                _note_failure(root, record, exc.message)
            failed.extend(group)
            continue
        try:
            bad = _retire_records(root, engine, group)
        finally:
            with contextlib.suppress(EngineError):
                engine.close()
        failed.extend(bad)
        retired.extend(r for r in group if r not in bad)
    return retired, failed


def run_retirer(
    root: Path,
    *,
    connect: ConnectFn | None = None,
    give_up_after: float = GIVE_UP_AFTER,
    lock_fd: int | None = None,
) -> int:
    """The retirer's loop, in this process; returns its exit status.

    ``lock_fd`` is the lock :func:`spawn_retirer` took and handed down; without it the lock
    is taken here.  0: no record left (or another retirer holds the lock); 1: it gave up
    after ``give_up_after`` seconds of nothing but failures (the records stay).
    """
    connect_fn: ConnectFn = connect or _connect
    lock: int | None
    if lock_fd is not None:
        try:
            # The same open file as the spawner's: this succeeds at once when it is held.
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            with contextlib.suppress(OSError):
                os.close(lock_fd)
            return 0
        lock = lock_fd
        _write_pid(lock, os.getpid())
    else:
        try:
            lock = acquire_retirer_lock(root)
        except OSError:
            return 1
        if lock is None:
            return 0
    retry_at: dict[str, float] = {}
    failures: dict[str, int] = {}
    failing_since: float | None = None
    try:
        while True:
            records = pending(root)
            if not records:
                # A register() that found this retirer's lock relies on it to see its record:
                # let go, then look again (and take the lock again when there is one).
                release_retirer_lock(lock)
                lock = None
                if not pending(root):
                    return 0
                lock = acquire_retirer_lock(root)
                if lock is None:
                    return 0
                continue
            now = time.time()
            ready = [
                r for r in records if r.is_due(now) and retry_at.get(r.container_id, 0.0) <= now
            ]
            if ready:
                retired, failed = _pass(root, ready, connect_fn)
                for record in retired:
                    retry_at.pop(record.container_id, None)
                    failures.pop(record.container_id, None)
                now = time.time()
                for record in failed:
                    count = failures.get(record.container_id, 0) + 1
                    failures[record.container_id] = count
                    retry_at[record.container_id] = now + min(
                        MAX_RETRY_DELAY, RETRY_DELAY * 2 ** (count - 1)
                    )
                if retired:
                    failing_since = None
                elif failed and failing_since is None:
                    failing_since = now
                if (
                    failing_since is not None
                    and now - failing_since >= give_up_after
                    and all(r.container_id in failures for r in pending(root))
                ):
                    return 1
                continue  # look at the records again: the pass took time
            wake = min(max(r.deadline, retry_at.get(r.container_id, 0.0)) for r in records)
            _sleep_until(root, wake)
    finally:
        if lock is not None:
            release_retirer_lock(lock)


def _sleep_until(root: Path, wake: float) -> None:
    """Sleep until ``wake`` (at most :data:`MAX_SLEEP`), or until a record is added or removed."""
    end = min(wake, time.time() + MAX_SLEEP)
    before = _signature(root)
    while True:
        left = end - time.time()
        if left <= 0:
            return
        time.sleep(min(POLL, left))
        if _signature(root) != before:
            return


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dokku_tasks.retirement [--lock-fd N] ROOT``: run the retirer of ``ROOT``."""
    args = list(sys.argv[1:] if argv is None else argv)
    lock_fd: int | None = None
    if len(args) == 3 and args[0] == "--lock-fd" and args[1].isdigit():
        lock_fd = int(args[1])
        args = args[2:]
    if len(args) != 1:
        sys.stderr.write("usage: python -m dokku_tasks.retirement [--lock-fd N] ROOT\n")
        return 2
    # As Dokku's background retirement does (trap '' INT HUP): only SIGTERM/SIGKILL end it.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    return run_retirer(Path(args[0]), lock_fd=lock_fd)


if __name__ == "__main__":
    sys.exit(main())
