"""Built-in plugin: checks of new process containers before the switch (Dokku's ``checks``).

After the scheduler started the new process containers, and before they replace the old
ones, :func:`run_checks` (the ``check_processes`` hook) makes sure they work:

- a process type with app.json ``healthchecks`` of type ``startup`` runs each of them:
  ``command`` (run in the container), ``path`` (an HTTP request made *inside* the container
  with ``wget``, else ``curl``, to ``127.0.0.1``: the host's network is never used),
  ``listening`` (a socket on the port, read from ``/proc/net/tcp`` in the container) or
  ``uptime`` (the container is still running that long after it started), with
  ``initialDelay``, ``attempts``, ``wait`` between attempts and ``timeout`` per attempt;
- any other process type waits ``default-wait`` seconds (one wait for all of them together),
  then each container must be running, not restarting, and not restarted.

A failure raises :class:`~dokku_tasks.errors.ChecksFailedError`: the scheduler removes the new
containers and the old ones keep serving.

Properties, with Dokku's names and defaults: ``default-wait`` (10 s a process must stay up when
it has no healthchecks), ``wait`` (5 s between two attempts of a healthcheck that sets no
``wait``), ``timeout`` (30 s per attempt of one that sets no ``timeout``), ``attempts`` (5 for
one that sets no ``attempts``), ``wait-to-retire`` (60 s an old container keeps serving after
the switch before it is stopped), and the per-app ``disabled`` and ``skipped`` process type
lists (comma-separated, ``_all_`` for every type) that ``checks:disable``, ``checks:enable``
and ``checks:skip`` maintain.  ``checks:run`` runs the checks against the running containers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import click

from .. import settings
from ..errors import ChecksFailedError, DokkuTasksError, PropertyError, UsageError
from ..hookspecs import hookimpl
from ..models import AppJson, DeployContext, Healthcheck, ReportSection
from ..properties import PropertyStore
from ..scheduling import ProcessProbe, StartedProcess
from ..settings import Namespace, Property
from ..text import printable

if TYPE_CHECKING:
    from ..engine import Engine
    from ..hooks import Hooks
    from ..output import Output

#: A day: more than any check or retirement wait needs, and small enough for a timer.
MAX_SECONDS = 86_400

#: The value of ``disabled`` / ``skipped`` that means every process type (as Dokku).
ALL_TYPES = "_all_"
#: The port an HTTP or listening check uses when neither it nor the process gives one.
DEFAULT_PORT = 5000
#: The healthcheck type that runs before the switch (the others are for other schedulers).
STARTUP = "startup"
#: The name of the check a process type without healthchecks gets (Dokku's).
DEFAULT_CHECK = "default"

#: How the runner waits and tells time; tests replace both, so nothing really waits.
_sleep: Callable[[float], None] = time.sleep
_clock: Callable[[], float] = time.monotonic

#: A process type, as a Procfile names one.
_PROCESS_TYPE = re.compile(r"[A-Za-z0-9_-]{1,63}")
#: How much of a check's output its error line keeps.
_OUTPUT_CHARS = 300
#: The HTTP clients a ``path`` check tries in the container, in order.
_HTTP_CLIENTS = ("wget", "curl")


def _whole_number(name: str, minimum: int) -> Callable[[str, Hooks | None], str]:
    def validate(value: str, plugins: Hooks | None) -> str:
        if not value.isascii() or not value.isdigit() or not minimum <= int(value) <= MAX_SECONDS:
            raise PropertyError(
                f"Invalid {name} {value!r}: expected a whole number from {minimum} to {MAX_SECONDS}"
            )
        return str(int(value))

    return validate


def _type_list(name: str) -> Callable[[str, Hooks | None], str]:
    def validate(value: str, plugins: Hooks | None) -> str:
        return ",".join(parse_process_types(value, what=name))

    return validate


CHECKS = Namespace(
    name="checks",
    label="Checks",
    properties=(
        Property("default-wait", default="10", validator=_whole_number("default-wait", 0)),
        Property("wait", default="5", validator=_whole_number("wait", 0)),
        Property("timeout", default="30", validator=_whole_number("timeout", 1)),
        Property("attempts", default="5", validator=_whole_number("attempts", 1)),
        Property("wait-to-retire", default="60", validator=_whole_number("wait-to-retire", 0)),
        # Per app only, as in Dokku; checks:disable / enable / skip maintain them.
        Property("disabled", global_allowed=False, validator=_type_list("disabled")),
        Property("skipped", global_allowed=False, validator=_type_list("skipped")),
    ),
)


def seconds(store: PropertyStore, app: str, prop: str) -> int:
    """The computed value of the whole-number property ``prop`` of ``app``.

    :raises PropertyError: the stored value is not valid (a property file edited by hand).
    """
    value = settings.computed(store, CHECKS, app, prop)
    try:
        return int(CHECKS.get_property(prop).validate(value))
    except PropertyError:
        raise PropertyError(f"Property checks {prop} of {app} is not valid: {value!r}") from None


def wait_to_retire(store: PropertyStore, app: str) -> int:
    """Seconds an old process container keeps serving after the switch before it is stopped."""
    return seconds(store, app, "wait-to-retire")


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(CHECKS)


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``checks`` section: computed, global and app rows for every checks property."""
    return settings.report_section(properties, CHECKS, app)


# -- the disabled and skipped lists -----------------------------------------------------------


def parse_process_types(value: str, what: str = "process type list") -> tuple[str, ...]:
    """The process types of a comma-separated list (``_all_`` alone means every type).

    Empty items are dropped and repeats kept once, in order.

    :raises UsageError: an item that is not a process type name.
    """
    types: list[str] = []
    for item in value.split(","):
        if not item:
            continue
        if item != ALL_TYPES and not _PROCESS_TYPE.fullmatch(item):
            raise UsageError(
                f"Invalid {what} {printable(item)!r}: a process type has letters, digits, "
                f"'-' and '_' (at most 63), or is {ALL_TYPES}"
            )
        if item not in types:
            types.append(item)
    return tuple(types)


def listed_types(store: PropertyStore, app: str, prop: str) -> tuple[str, ...]:
    """The app's ``disabled`` or ``skipped`` list (``()`` when unset).

    :raises PropertyError: the stored value is not a list of process types.
    """
    value = settings.app_value(store, CHECKS, app, prop)
    try:
        return parse_process_types(value)
    except UsageError:
        raise PropertyError(f"Property checks {prop} of {app} is not valid: {value!r}") from None


def _is_listed(process_type: str, types: Sequence[str]) -> bool:
    return ALL_TYPES in types or process_type in types


def is_disabled(store: PropertyStore, app: str, process_type: str) -> bool:
    """Whether checks of ``process_type`` of ``app`` are disabled (``checks:disable``)."""
    return _is_listed(process_type, listed_types(store, app, "disabled"))


def is_skipped(store: PropertyStore, app: str, process_type: str) -> bool:
    """Whether checks of ``process_type`` of ``app`` are skipped (``checks:skip``)."""
    return _is_listed(process_type, listed_types(store, app, "skipped"))


_VERBS = {"disable": "Disabling", "enable": "Enabling", "skip": "Skipping"}


def change_lists(
    store: PropertyStore, app: str, action: str, process_types: Sequence[str] = ()
) -> str:
    """Apply ``checks:disable``, ``checks:enable`` or ``checks:skip`` (``action``) to ``app``.

    With no ``process_types`` (or ``_all_``) every type is meant: ``disable`` and ``skip`` store
    ``_all_`` in their own list and clear the other one, ``enable`` clears both.  With types,
    as Dokku: ``disable`` adds them to ``disabled`` (dropping ``_all_`` from it) and removes
    them from ``skipped``; ``skip`` the reverse; ``enable`` removes them from both (so a type
    stays disabled while the list is ``_all_``).  An emptied list is unset.

    :return: Dokku's line for it, without the ``----->`` marker.
    """
    if action not in _VERBS:
        raise ValueError(f"unknown action {action!r}")
    verb = _VERBS[action]
    disabled = list(listed_types(store, app, "disabled"))
    skipped = list(listed_types(store, app, "skipped"))
    every = not process_types or ALL_TYPES in process_types
    if every:
        if action == "enable":
            disabled, skipped = [], []
        elif action == "disable":
            disabled, skipped = [ALL_TYPES], []
        else:
            disabled, skipped = [], [ALL_TYPES]
    else:
        own, other = (disabled, skipped) if action == "disable" else (skipped, disabled)
        for process_type in process_types:
            if action == "enable":
                _drop(disabled, process_type)
                _drop(skipped, process_type)
            else:
                if process_type not in own:
                    own.append(process_type)
                _drop(other, process_type)
        if action != "enable":
            _drop(own, ALL_TYPES)
    for prop, types in (("disabled", disabled), ("skipped", skipped)):
        if types:
            store.set(CHECKS.name, app, prop, ",".join(types))
        else:
            store.unset(CHECKS.name, app, prop)
    if every:
        return f"{verb} zero downtime for app ({app})"
    return f"{verb} zero downtime for app's ({app}) proctypes ({','.join(process_types)})"


def _drop(types: list[str], process_type: str) -> None:
    if process_type in types:
        types.remove(process_type)


# -- running the checks -----------------------------------------------------------------------


@attrs.frozen
class CheckSettings:
    """The app's checks properties, read once per run: the defaults of its healthchecks."""

    default_wait: int
    wait: int
    timeout: int
    attempts: int

    @classmethod
    def read(cls, store: PropertyStore, app: str) -> CheckSettings:
        return cls(
            default_wait=seconds(store, app, "default-wait"),
            wait=seconds(store, app, "wait"),
            timeout=seconds(store, app, "timeout"),
            attempts=seconds(store, app, "attempts"),
        )


@hookimpl
def check_processes(
    app: str, context: DeployContext, processes: Sequence[StartedProcess], probe: ProcessProbe
) -> None:
    """Dokku's pre-flight checks of the new process containers (see :func:`run_checks`)."""
    run_checks(app, processes, probe, context.properties, context.app_json, context.output)


def run_checks(
    app: str,
    processes: Sequence[StartedProcess],
    probe: ProcessProbe,
    properties: PropertyStore,
    app_json: AppJson | None,
    output: Output,
) -> None:
    """Check ``processes`` of ``app`` as Dokku does before the switch; return when all pass.

    Types listed in ``disabled`` or ``skipped`` are not checked.  Each type with ``startup``
    healthchecks in ``app_json`` runs them, container after container; the others share one
    wait of ``default-wait`` seconds, then each container must be up.  Delays count from the
    call, which comes right after the containers started.

    :raises ChecksFailedError: the first check that failed (one line: the process, the check,
        the attempts and the last output).
    :raises PropertyError: a checks property file holds a value that is not valid.
    """
    started = _clock()
    disabled = listed_types(properties, app, "disabled")
    skipped = listed_types(properties, app, "skipped")
    checked: list[StartedProcess] = []
    announced: set[str] = set()
    for process in processes:
        if _is_listed(process.process_type, disabled):
            if process.process_type not in announced:
                announced.add(process.process_type)
                output.info(
                    f"Zero downtime is disabled for app ({app}.{process.process_type}). "
                    "Skipping checks"
                )
        elif _is_listed(process.process_type, skipped):
            output.info(f"Zero downtime checks have been skipped ({process.dyno})")
        else:
            checked.append(process)
    if not checked:
        return
    runner = _Runner(probe, output, CheckSettings.read(properties, app), started)
    runner.remember_starts(checked)
    declared = app_json.healthchecks if app_json is not None else {}
    waiting: list[StartedProcess] = []
    warned: set[str] = set()
    for process in checked:
        entries = declared.get(process.process_type, ())
        if process.process_type not in warned:
            warned.add(process.process_type)
            for entry in entries:
                if not entry.type:
                    output.error(
                        f"Missing type field on healthcheck name='{entry.label}' "
                        f"({process.process_type}): it does not run; only type "
                        f"'{STARTUP}' runs before the switch"
                    )
        startup = [entry for entry in entries if entry.type == STARTUP]
        if startup:
            runner.run_healthchecks(process, startup)
        else:
            waiting.append(process)
    if waiting:
        runner.run_default_wait(waiting)


class _AttemptFailed(Exception):
    """One attempt of a check failed; ``final`` when another attempt cannot help."""

    def __init__(self, reason: str, output: str = "", final: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.output = output
        self.final = final


class _Runner:
    """The checks of one run: the probe, where lines go, the settings, and when it started."""

    def __init__(
        self, probe: ProcessProbe, output: Output, defaults: CheckSettings, started: float
    ) -> None:
        self.probe = probe
        self.output = output
        self.defaults = defaults
        self.started = started
        self.started_at: dict[str, object] = {}
        #: The HTTP client that works in each container (found on its first ``path`` check).
        self.http_client: dict[str, str] = {}

    # -- time ---------------------------------------------------------------------------------

    def sleep_until(self, seconds_after_start: float) -> None:
        """Sleep until ``seconds_after_start`` after the run started (no sleep if past)."""
        remaining = self.started + seconds_after_start - _clock()
        if remaining > 0:
            _sleep(remaining)

    # -- the default check --------------------------------------------------------------------

    def remember_starts(self, processes: Iterable[StartedProcess]) -> None:
        """Note when each container started, so that a restart since is seen."""
        for process in processes:
            state = self.state(process, DEFAULT_CHECK)
            self.started_at[process.container_id] = state.get("StartedAt")

    def run_default_wait(self, processes: Sequence[StartedProcess]) -> None:
        wait = self.defaults.default_wait
        for process in processes:
            self.output.info(f"Attempting pre-flight checks ({process.dyno})")
        dynos = ", ".join(process.dyno for process in processes)
        self.output.info(f"Waiting for {wait} seconds ({dynos})")
        self.sleep_until(wait)  # one wait for them all
        for process in processes:
            try:
                self.require_up(process, DEFAULT_CHECK, wait)
            except _AttemptFailed as failure:
                raise self.failed(process, DEFAULT_CHECK, 1, failure) from None
            self.output.info(f"All checks successful ({process.dyno})")

    def state(self, process: StartedProcess, check: str) -> Mapping[str, Any]:
        try:
            return self.probe.state(process.container_id)
        except DokkuTasksError as exc:
            failure = _AttemptFailed(f"the container cannot be inspected: {exc.message}")
            raise self.failed(process, check, 1, failure) from None

    def require_up(self, process: StartedProcess, check: str, after: int) -> None:
        """The container must be running, not restarting, and not restarted since it started.

        :raises _AttemptFailed: it is not, with the reason and its exit status.
        """
        state = self.state(process, check)
        status = f"exit status {state.get('ExitCode')}"
        if state.get("OOMKilled"):
            status += ", out of memory"
        if not state.get("Running"):
            raise _AttemptFailed(f"container not running after {after} seconds ({status})")
        if state.get("Restarting"):
            raise _AttemptFailed(f"container restarting after {after} seconds ({status})")
        before = self.started_at.get(process.container_id)
        if before is not None and state.get("StartedAt") != before:
            raise _AttemptFailed(f"container restarted within {after} seconds")

    # -- healthchecks -------------------------------------------------------------------------

    def run_healthchecks(self, process: StartedProcess, checks: Sequence[Healthcheck]) -> None:
        self.output.info(f"Attempting pre-flight checks ({process.dyno})")
        self.output.info(f"Executing {len(checks)} healthchecks ({process.dyno})")
        for check in checks:
            self.run_healthcheck(process, check)
        self.output.info(f"All checks successful ({process.dyno})")

    def run_healthcheck(self, process: StartedProcess, check: Healthcheck) -> None:
        name = check.label
        kind = check.kind
        if kind == "uptime":
            self.output.info(
                f"Running healthcheck name='{name}' type='uptime' uptime={check.uptime}"
            )
            self.sleep_until(max(check.uptime, check.initial_delay))
            try:
                self.require_up(process, name, max(check.uptime, check.initial_delay))
            except _AttemptFailed as failure:
                raise self.failed(process, name, 1, failure) from None
            self.output.info(f"Healthcheck succeeded name='{name}'")
            return
        attempts = check.attempts or self.defaults.attempts
        wait = check.wait or self.defaults.wait
        timeout = check.timeout or self.defaults.timeout
        port = check.port or process.port or DEFAULT_PORT
        detail = {
            "command": f"command='{' '.join(check.command or ())}'",
            "path": f"path='{_url_path(check.path)}' port={port}",
            "listening": f"port={port}",
        }[kind]
        self.output.info(
            f"Running healthcheck name='{name}' attempts={attempts} {detail} "
            f"delay={check.initial_delay} timeout={timeout} type='{kind}' wait={wait}"
        )
        self.sleep_until(check.initial_delay)
        attempt: Callable[[], None] = {
            "command": lambda: self.command_attempt(process, check.command or (), timeout),
            "path": lambda: self.http_attempt(process, check, port, timeout),
            "listening": lambda: self.listening_attempt(process, port, timeout),
        }[kind]
        for number in range(1, attempts + 1):
            try:
                attempt()
            except _AttemptFailed as failure:
                self.output.info(
                    f"Attempt {number}/{attempts} failed name='{name}': {failure.reason}"
                )
                if failure.final or number == attempts:
                    raise self.failed(process, name, number, failure) from None
                _sleep(wait)
            else:
                self.output.info(f"Healthcheck succeeded name='{name}'")
                return

    def failed(
        self, process: StartedProcess, check: str, attempts: int, failure: _AttemptFailed
    ) -> ChecksFailedError:
        plural = "" if attempts == 1 else "s"
        message = (
            f"Pre-flight checks failed ({process.dyno}): healthcheck '{check}' failed after "
            f"{attempts} attempt{plural}: {failure.reason}"
        )
        shown = _condense(failure.output)
        if shown:
            message += f"; output: {shown}"
        return ChecksFailedError(message, process=process.dyno, check=check, attempts=attempts)

    def exec(self, process: StartedProcess, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        """Run ``argv`` in the container: its exit status and output.

        :raises _AttemptFailed: it timed out, or the engine could not run it (final when the
            container is no longer running).
        """
        try:
            outcome = self.probe.exec(process.container_id, argv, timeout)
        except DokkuTasksError as exc:
            try:
                running = bool(self.probe.state(process.container_id).get("Running"))
            except DokkuTasksError:
                running = False
            raise _AttemptFailed(exc.message, final=not running) from None
        if outcome.timed_out:
            raise _AttemptFailed(f"timed out after {_number(timeout)} seconds", outcome.output)
        return outcome.exit_code, outcome.output

    def command_attempt(
        self, process: StartedProcess, command: Sequence[str], timeout: int
    ) -> None:
        code, text = self.exec(process, command, timeout)
        if code != 0:
            raise _AttemptFailed(f"exit status {code}", text)

    def http_attempt(
        self, process: StartedProcess, check: Healthcheck, port: int, timeout: int
    ) -> None:
        """One GET of the check's path, made inside the container (``wget``, else ``curl``)."""
        scheme = check.scheme or "http"
        url = f"{scheme}://127.0.0.1:{port}{_url_path(check.path)}"
        known = self.http_client.get(process.container_id)
        for client in (known,) if known else _HTTP_CLIENTS:
            argv = _http_argv(client, url, scheme, timeout)
            # curl gets a second more than its own limit, so that it reports the timeout.
            code, text = self.exec(process, argv, timeout + (1 if client == "curl" else 0))
            if _missing_program(code, text):
                continue
            self.http_client[process.container_id] = client
            if code != 0:
                raise _AttemptFailed(f"{client} exit status {code} for {url}", text)
            if check.content and check.content not in text:
                raise _AttemptFailed(
                    f"unable to find expected content in response body: {check.content}", text
                )
            return
        raise _AttemptFailed(
            f"the container has neither wget nor curl to request {url}", final=True
        )

    def listening_attempt(self, process: StartedProcess, port: int, timeout: int) -> None:
        """Something listens on ``port`` on every interface (``/proc/net/tcp`` in the container)."""
        code, text = self.exec(process, ("cat", "/proc/net/tcp", "/proc/net/tcp6"), timeout)
        if _missing_program(code, text):
            raise _AttemptFailed("the container has no cat to read /proc/net/tcp", text, final=True)
        addresses = _listening_addresses(text, port)
        if not addresses:
            raise _AttemptFailed(f"nothing listens on port {port}")
        if not any(address in ("0.0.0.0", "::") for address in addresses):
            shown = ", ".join(sorted(addresses))
            raise _AttemptFailed(
                f"listening on port {port} only on {shown}, not on every interface (0.0.0.0)"
            )


def _url_path(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _http_argv(client: str, url: str, scheme: str, timeout: int) -> tuple[str, ...]:
    # No ``-T`` for wget: some busybox builds lack it or crash on it; the exec's own timeout
    # bounds the request instead.  A certificate cannot match 127.0.0.1, so it is not verified.
    if client == "wget":
        insecure = ("--no-check-certificate",) if scheme == "https" else ()
        return ("wget", "-q", "-O", "-", *insecure, url)
    insecure = ("-k",) if scheme == "https" else ()
    return ("curl", "-fsSL", "--max-time", str(timeout), *insecure, url)


def _missing_program(code: int, text: str) -> bool:
    """Whether an exec failed because its program is not in the image."""
    lowered = text.lower()
    return code in (126, 127) and (
        "not found" in lowered or "no such file" in lowered or "executable file" in lowered
    )


def _listening_addresses(table: str, port: int) -> set[str]:
    """The local addresses listening on ``port`` in ``/proc/net/tcp`` (and ``tcp6``) text."""
    found: set[str] = set()
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A" or ":" not in fields[1]:  # 0A: LISTEN
            continue
        address, _, hex_port = fields[1].rpartition(":")
        try:
            if int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address)
        except ValueError:
            continue
        if len(raw) == 4:
            found.add(".".join(str(byte) for byte in reversed(raw)))
        elif len(raw) == 16:
            found.add("::" if not any(raw) else "an IPv6 address")
    return found


def _condense(text: str) -> str:
    """Output as part of one line: whitespace runs made one space, escapes shown, shortened."""
    line = printable(" ".join(text.split()))
    return line if len(line) <= _OUTPUT_CHARS else line[: _OUTPUT_CHARS - 3] + "..."


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# -- commands -------------------------------------------------------------------------------


@hookimpl
def register_commands(cli: click.Group) -> None:
    for action, help_text in (
        (
            "disable",
            "Disable zero-downtime checks of APP for every process type, or for the "
            "comma-separated PROCESS_TYPES.",
        ),
        (
            "enable",
            "Enable zero-downtime checks of APP for every process type, or for the "
            "comma-separated PROCESS_TYPES.",
        ),
        (
            "skip",
            "Skip zero-downtime checks of APP for every process type, or for the "
            "comma-separated PROCESS_TYPES.",
        ),
    ):
        cli.add_command(_list_command(action, help_text))
    cli.add_command(_run_command())


def _list_command(action: str, help_text: str) -> click.Command:
    @click.command(f"checks:{action}", help=help_text)
    @click.argument("app")
    @click.argument("process_types", required=False, default="", metavar="[PROCESS_TYPES]")
    @click.pass_context
    def command(ctx: click.Context, app: str, process_types: str) -> None:
        from ..apps import AppRegistry
        from ..cli import state_root
        from ..output import Output

        registry = AppRegistry(state_root(ctx))
        registry.require(app)
        types = parse_process_types(process_types)
        Output().step(change_lists(registry.properties, app, action, types))

    return command


def _run_command() -> click.Command:
    @click.command("checks:run")
    @click.argument("app")
    @click.argument("process_types", required=False, default="", metavar="[PROCESS_TYPES]")
    @click.pass_context
    def command(ctx: click.Context, app: str, process_types: str) -> None:
        """Run the checks of APP now against its running process containers: every one, or
        those of the comma-separated PROCESS_TYPES (a type such as web, or one container such
        as web.2)."""
        from ..apps import AppRegistry
        from ..cli import state_root
        from ..engine import Engine
        from ..output import Output

        registry = AppRegistry(state_root(ctx))
        registry.require(app)
        wanted = [item for item in process_types.split(",") if item]
        output = Output()
        output.step("Running pre-flight checks")
        engine = Engine.connect()
        try:
            processes = select_processes(app, running_processes(engine, app), wanted)
            app_json = deployed_app_json(engine, registry.properties, app)
            run_checks(app, processes, engine, registry.properties, app_json, output)
        finally:
            engine.close()

    return command


_DYNO = re.compile(r"([A-Za-z0-9_-]+)\.([1-9][0-9]*)")


def running_processes(engine: Engine, app: str) -> list[StartedProcess]:
    """The app's process containers under their switched-in names (``APP.TYPE.N``), in order.

    Containers under a temporary or retired name (a deploy in progress or retiring) are left
    out.  ``port`` is the ``PORT`` in the container's environment.
    """
    from ..specs import APP_LABEL, PROCESS_LABEL, TASK_LABEL

    found: list[StartedProcess] = []
    for container in engine.containers({APP_LABEL: app}):
        process_type = container.labels.get(PROCESS_LABEL)
        if not process_type or container.labels.get(TASK_LABEL):
            continue
        prefix = f"{app}."
        match = _DYNO.fullmatch(container.name[len(prefix) :])
        if not container.name.startswith(prefix) or match is None:
            continue
        if match.group(1) != process_type:
            continue
        found.append(
            StartedProcess(
                process_type,
                int(match.group(2)),
                container.name,
                container.id,
                _container_port(engine, container.id),
            )
        )
    return sorted(found, key=lambda p: (p.process_type, p.index))


def _container_port(engine: Engine, container_id: str) -> int | None:
    for item in engine.environment(container_id):
        name, _, value = item.partition("=")
        if name == "PORT" and value.isdigit() and 0 < int(value) <= 65535:
            return int(value)
    return None


def select_processes(
    app: str, processes: Sequence[StartedProcess], wanted: Sequence[str]
) -> list[StartedProcess]:
    """The processes ``wanted`` names (``web``, ``web.2``; none: all), in the order asked.

    :raises UsageError: Dokku's lines for a process type or container index that is not there.
    """
    if not processes:
        raise UsageError(f"No process containers of {app} are running: deploy it first")
    if not wanted:
        return list(processes)
    chosen: list[StartedProcess] = []
    for item in wanted:
        process_type, _, index = item.partition(".")
        matching = [p for p in processes if p.process_type == process_type]
        if not matching:
            raise UsageError(f"Invalid process type specified ({app}.{printable(process_type)})")
        if index:
            matching = [p for p in matching if str(p.index) == index]
            if not matching:
                raise UsageError(f"Invalid container index specified ({app}.{printable(item)})")
        chosen += [p for p in matching if p not in chosen]
    return chosen


def deployed_app_json(engine: Engine, store: PropertyStore, app: str) -> AppJson | None:
    """app.json as the deployed image ``dokku/APP:latest`` holds it (at ``appjson-path`` under
    its WORKDIR); ``None`` when the image has none.

    A source deploy read app.json from the source tree: it is here only if the Dockerfile
    copied it into the WORKDIR.
    """
    from .. import locate
    from ..appjson import MAX_APP_JSON_BYTES, parse_app_json
    from ..scheduling import TaskOwner
    from ..specs import APP_LABEL
    from .app_json import computed_appjson_path

    ref = f"dokku/{app}:latest"
    if engine.image_id(ref) is None:
        raise UsageError(f"App {app} has not been deployed: there is no image {ref}")
    image = engine.image(ref)
    path = computed_appjson_path(store, app)
    relative = locate.clean_relative(path, "appjson-path")
    labels = {APP_LABEL: app, **TaskOwner(store.root).labels}
    read = engine.read_image_files(
        image.id, image.workdir, [relative], labels, limit=MAX_APP_JSON_BYTES
    )

    def reader(wanted: str) -> tuple[str, bytes, str]:
        return read[wanted].kind, read[wanted].data, read[wanted].resolved

    data = locate.read_image_file(
        image.workdir, path, reader, "appjson-path", limit=MAX_APP_JSON_BYTES, filename="app.json"
    )
    return None if data is None else parse_app_json(data)
