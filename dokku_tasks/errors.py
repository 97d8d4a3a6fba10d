"""The one exception hierarchy of dokku-tasks.

Every error a user can cause derives from :class:`DokkuTasksError`; the CLI turns it into one
line on stderr and :attr:`DokkuTasksError.exit_code`.  Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import DeployResult


def add_cleanup_note(error: BaseException, message: str) -> None:
    """Record on ``error`` that cleaning up after it failed too (``message``, one line).

    The deploy's own error stays the one raised; callers show :func:`cleanup_line` after it.
    """
    if hasattr(error, "add_note"):
        error.add_note(message)
    else:  # Python 3.10: the same attribute, which 3.11 also shows in a traceback
        vars(error).setdefault("__notes__", []).append(message)


def cleanup_line(error: BaseException) -> str | None:
    """The one line that says what cleaning up after ``error`` could not do, if anything."""
    notes = [note for note in getattr(error, "__notes__", ()) if note.strip()]
    if not notes:
        return None
    more = f" (and {len(notes) - 1} more clean-up failure(s))" if len(notes) > 1 else ""
    return f"Clean-up: {notes[0]}{more}"


class DokkuTasksError(Exception):
    """Base class: a failure with a message fit for one line, and the exit code it maps to.

    Notes added with :func:`add_cleanup_note` say what cleaning up after it could not do.
    """

    exit_code: int = 1
    #: The record of the deploy this error ended, when it got that far.
    result: DeployResult | None = None

    @property
    def message(self) -> str:
        return str(self)


class InvalidAppNameError(DokkuTasksError):
    """An app name outside the rules (lowercase letters, digits, dashes; at most 63)."""


class AppNotFoundError(DokkuTasksError):
    """The app does not exist (exit 20, as Dokku)."""

    exit_code = 20

    def __init__(self, app: str) -> None:
        super().__init__(f"App {app} does not exist")
        self.app = app


class AppExistsError(DokkuTasksError):
    """``apps:create`` of a name that is taken."""


class UsageError(DokkuTasksError):
    """A command was called with arguments that do not fit it."""


class PropertyError(DokkuTasksError):
    """An unknown property, or a property file that cannot be read or written."""


class ConfigError(DokkuTasksError):
    """A config key or value that cannot be stored (a bad key, a NUL, a value over the limit),
    or a config file that cannot be read or written.  Nothing is stored when it is raised."""


class ParseError(DokkuTasksError):
    """app.json or a Procfile that does not parse.

    ``filename`` names the file (``app.json``, ``Procfile``); ``line`` and ``column`` are
    1-based where the parser knows them.
    """

    def __init__(
        self, filename: str, detail: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = ""
        if line is not None:
            where = f" at line {line}" + (f", column {column}" if column is not None else "")
        super().__init__(f"Invalid {filename}{where}: {detail}")
        self.filename = filename
        self.detail = detail
        self.line = line
        self.column = column


class SourceError(DokkuTasksError):
    """The source tree, image or app.json path cannot be used (missing, escapes its base, ...)."""


class EngineError(DokkuTasksError):
    """The Docker engine could not be reached or refused a request."""


class BuildError(EngineError):
    """``docker build`` of the app's Dockerfile failed."""


class LayersUnreadableError(EngineError):
    """An image's layers cannot be read in place, without a container: a remote engine, a
    storage driver other than overlay2, or not root.  ``reason`` says which, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Cannot read the image's layers on this host: {reason}")
        self.reason = reason


class EngineCallError(Exception):
    """A request to the Docker engine's API failed (:mod:`dokku_tasks.engine_api`).

    Never shown as such: :mod:`dokku_tasks.engine` turns each into an :class:`EngineError`
    (or a :class:`SourceError`) that says what was being done.
    """

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation


class EngineRefusedError(EngineCallError):
    """The engine answered with an HTTP error; ``explanation`` is its message."""

    def __init__(self, status_code: int, explanation: str) -> None:
        super().__init__(explanation)
        self.status_code = status_code


class EngineNotFoundError(EngineRefusedError):
    """The engine answered 404: no such container, image, exec or path."""


class EngineImageNotFoundError(EngineNotFoundError):
    """The engine answered 404 because an image does not exist."""


class EngineTransportError(EngineCallError):
    """The engine could not be talked to: no socket, a refused or dropped connection."""


class EngineTimeoutError(EngineTransportError):
    """The engine did not answer within the request's timeout."""


class CommandError(DokkuTasksError):
    """A task command that cannot be turned into an argv (for example unbalanced quotes)."""


class TaskFailedError(DokkuTasksError):
    """A deployment task exited non-zero.  Carries the phase, command and real exit status."""

    def __init__(self, phase: str, command: str, exit_code: int) -> None:
        super().__init__(f"Execution of {phase} task failed: {command} (exit status {exit_code})")
        self.phase = phase
        self.command = command
        #: The task's own exit status; :attr:`exit_code` stays the command's (1).
        self.task_exit_status = exit_code


class TaskTimeoutError(DokkuTasksError):
    """A deployment task ran past its timeout and was killed."""

    def __init__(self, phase: str, seconds: float) -> None:
        shown = int(seconds) if float(seconds).is_integer() else seconds
        super().__init__(f"{phase} task timed out after {shown} seconds")
        self.phase = phase
        self.seconds = seconds


class ChecksFailedError(DokkuTasksError):
    """A new process container failed its checks; the deploy stops before the switch.

    ``process`` is the container's ``DYNO`` (``web.1``), ``check`` the check's name, and
    ``attempts`` how many attempts were made.
    """

    def __init__(self, message: str, *, process: str = "", check: str = "", attempts: int = 0):
        super().__init__(message)
        self.process = process
        self.check = check
        self.attempts = attempts


class DeployLockedError(DokkuTasksError):
    """Another deploy of the same app holds its lock."""

    def __init__(self, app: str) -> None:
        super().__init__(f"A deploy of {app} is already in progress")
        self.app = app


class InterruptedDeployError(DokkuTasksError):
    """The deploy was stopped by a signal; exit code 128 + signal number."""

    def __init__(self, signum: int, name: str, cleaned: bool = True) -> None:
        # Only claim the clean-up when it finished; otherwise a clean-up note says what is left.
        done = "; task containers removed" if cleaned else ""
        super().__init__(f"Deploy interrupted by {name}{done}")
        self.exit_code = 128 + signum
        self.signum = signum


class PluginError(DokkuTasksError):
    """A plugin failed to load or raised while its hook ran.  Always names the plugin."""

    def __init__(self, plugin_name: str, detail: str, hook: str | None = None) -> None:
        where = f" in hook {hook}" if hook else ""
        super().__init__(f"Plugin {plugin_name!r} failed{where}: {detail}")
        self.plugin_name = plugin_name
        self.hook = hook


class PluginLoadError(PluginError):
    """A plugin could not be imported or validated."""

    def __init__(self, plugin_name: str, detail: str) -> None:
        DokkuTasksError.__init__(self, f"Plugin {plugin_name!r} could not be loaded: {detail}")
        self.plugin_name = plugin_name
        self.hook = None


class StateError(DokkuTasksError):
    """The state root cannot be read or written: read-only, full, or a file where a directory
    belongs.  ``path`` is what failed under ``root``; ``reason`` is the system's word for it."""

    def __init__(self, action: str, root: object, path: object, reason: str) -> None:
        super().__init__(f"Cannot {action} the state root {root}: {path}: {reason}")
        self.action = action
        self.root = str(root)
        self.path = str(path)
        self.reason = reason


def _byte_size(count: int) -> str:
    """``1 MiB`` for 1048576: a limit as people say it."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def over_the_limit(limit: int) -> str:
    """``over the limit of 1048576 bytes (1 MiB)``: how every size refusal ends."""
    return f"over the limit of {limit} bytes ({_byte_size(limit)})"


class FileTooLargeError(ParseError):
    """A file read for a deploy (app.json, the Procfile, an ``--env-file``) is over its limit.

    Refused before more than ``limit + 1`` bytes of it are read; ``size`` is ``None`` when the
    file's size is not known (a pipe, a character device).
    """

    def __init__(self, filename: str, path: str, limit: int, size: int | None = None) -> None:
        amount = "" if size is None else f" {size} bytes,"
        super().__init__(filename, f"{path} is{amount} {over_the_limit(limit)}")
        self.path = path
        self.limit = limit
        self.size = size


class DeployRefusedError(DokkuTasksError):
    """A plugin refused the deploy: in ``deploy_started``, before anything was built, or in
    ``config_values``, before any task ran (app.json ``env`` without a required value).

    Not a failure of the plugin: the line says who refused and why.  The core fills in
    :attr:`plugin_name`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.plugin_name: str | None = None

    @property
    def message(self) -> str:
        by = f" by plugin {self.plugin_name!r}" if self.plugin_name else ""
        return f"Deploy refused{by}: {self.reason}"
