"""The records that flow between the core, the plugins and the callers of the library.

All of them are immutable (``attrs.frozen``): hooks receive them and return new ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .converters import mount_tuple, string_map, string_tuple

if TYPE_CHECKING:
    from .output import Output
    from .properties import PropertyStore

#: The four deployment-task phases, in the order a deploy runs them.
PREDEPLOY = "predeploy"
RELEASE = "release"
POSTDEPLOY = "postdeploy"
HEROKU_POSTDEPLOY = "heroku.postdeploy"
PHASES = (PREDEPLOY, RELEASE, POSTDEPLOY, HEROKU_POSTDEPLOY)


# Converters with concrete types, so that mypy's attrs plugin can check the records' callers.


def _counts(value: Mapping[str, int]) -> Mapping[str, int]:
    return dict(value)


def _words(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return tuple(value) if value else None


def _entries(value: Iterable[ProcfileEntry]) -> tuple[ProcfileEntry, ...]:
    return tuple(value)


def _rows(value: Iterable[ReportRow]) -> tuple[ReportRow, ...]:
    return tuple(value)


def _task_results(value: Iterable[TaskResult]) -> tuple[TaskResult, ...]:
    return tuple(value)


def _host_steps(value: Iterable[HostStep]) -> tuple[HostStep, ...]:
    return tuple(value)


def _healthcheck_lists(
    value: Mapping[str, Iterable[Healthcheck]],
) -> Mapping[str, tuple[Healthcheck, ...]]:
    return {process_type: tuple(checks) for process_type, checks in value.items()}


def _env_vars(value: Mapping[str, EnvVar]) -> Mapping[str, EnvVar]:
    return dict(value)


#: The one ``generator`` app.json ``env`` knows: a random value, made once.
SECRET_GENERATOR = "secret"


@attrs.frozen
class EnvVar:
    """One entry of app.json ``env``, as Dokku reads it.

    ``"KEY": "value"`` gives ``value`` only; the object form may also give ``required``
    (``True`` unless it says ``false``, as Heroku's spec has it), ``generator`` (``"secret"``:
    a random value of 64 hex digits), ``sync`` (set again on every deploy, not only the first)
    and a ``description``.
    """

    value: str = ""
    required: bool = True
    generator: str = ""
    sync: bool = False
    description: str = ""


@attrs.frozen
class AppJson:
    """The parts of app.json that deployment tasks use.

    ``predeploy`` and ``postdeploy`` are ``scripts.dokku.*``; ``heroku_postdeploy`` is Heroku's
    once-only ``scripts.postdeploy``.  ``formation`` maps a process type to its ``quantity``.
    ``healthchecks`` maps a process type to its ``healthchecks`` entries (:class:`Healthcheck`),
    in the order written; a type with none is left out.  ``env`` maps a config key to its
    :class:`EnvVar`.
    """

    predeploy: str | None = None
    postdeploy: str | None = None
    heroku_postdeploy: str | None = None
    formation: Mapping[str, int] = attrs.field(factory=dict, converter=_counts)
    healthchecks: Mapping[str, tuple[Healthcheck, ...]] = attrs.field(
        factory=dict, converter=_healthcheck_lists
    )
    env: Mapping[str, EnvVar] = attrs.field(factory=dict, converter=_env_vars)

    def script(self, phase: str) -> str | None:
        """The command app.json gives for ``phase`` (``None`` when it gives none)."""
        return {
            PREDEPLOY: self.predeploy,
            POSTDEPLOY: self.postdeploy,
            HEROKU_POSTDEPLOY: self.heroku_postdeploy,
        }.get(phase)


@attrs.frozen
class ProcfileEntry:
    """One ``name: command`` line of a Procfile; ``line`` is 1-based."""

    name: str
    command: str
    line: int


@attrs.frozen
class Procfile:
    """A parsed Procfile: its entries sorted by name, as procfile-util sorts them."""

    entries: tuple[ProcfileEntry, ...] = attrs.field(converter=_entries)

    def get(self, name: str) -> ProcfileEntry | None:
        """The entry called ``name``, if any."""
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)


@attrs.frozen
class Mount:
    """A host path bind-mounted into task and process containers."""

    source: str
    target: str
    read_only: bool = False


@attrs.frozen
class ContainerOptions:
    """What task and process containers of an app get besides the image: env, mounts, network."""

    env: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=mount_tuple)
    network: str | None = None

    def merged(self, other: ContainerOptions) -> ContainerOptions:
        """These options with ``other`` laid over them (env updated, mounts added, network replaced)."""
        return ContainerOptions(
            env={**self.env, **other.env},
            mounts=self.mounts + tuple(m for m in other.mounts if m not in self.mounts),
            network=other.network if other.network is not None else self.network,
        )


@attrs.frozen
class ImageInfo:
    """What the engine says about an image: the fields deployment tasks depend on."""

    ref: str
    id: str
    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=_words)
    cmd: tuple[str, ...] | None = attrs.field(default=None, converter=_words)
    workdir: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)


@attrs.frozen
class Task:
    """A deployment task: a command that the core runs in a fresh container of the phase's image.

    ``source`` is where it was declared (``app.json``, ``Procfile``), used in the log lines.
    ``commit`` asks for the container to be committed into the image (predeploy).  ``plugin`` is
    filled in by the core with the name of the plugin that returned the task.  ``display`` is
    what log lines and errors show in place of ``command`` (a Procfile command as written,
    before config values were expanded into it, so no value reaches the output).
    """

    phase: str
    command: str
    source: str
    commit: bool = False
    plugin: str = ""
    display: str | None = None
    #: A host-side step run just before the task's container starts (after the tasks before
    #: it succeeded); the once-only marker of ``scripts.postdeploy`` is written here.
    before_run: Callable[[], None] | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def shown(self) -> str:
        """The command as the output shows it."""
        return self.command if self.display is None else self.display


@attrs.frozen
class TaskResult:
    """How one task ran: its container, real exit status and wall time in seconds."""

    phase: str
    command: str
    plugin: str
    image: str
    container_id: str
    exit_code: int
    duration: float
    committed_image: str | None = None


@attrs.frozen
class DeployContext:
    """Everything a deploy-phase hook may look at.  Plugins never need Docker to use it.

    ``image`` is the image this phase's tasks run in.  ``app_json`` and ``procfile`` are
    ``None`` when the app has none.  ``first_deploy`` is true until a deploy of the app has
    got through its postdeploy phase.  ``shell`` is the app's configured task shell, or ``None`` for
    "bash where the image has it, else /bin/sh".
    """

    app: str
    image: str
    properties: PropertyStore
    env: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    app_json: AppJson | None = None
    procfile: Procfile | None = None
    source_dir: Path | None = None
    first_deploy: bool = False
    shell: str | None = None
    #: Every file the plugins asked for (hook ``app_files``) and found, parsed, by name.
    files: Mapping[str, object] = attrs.field(factory=dict)
    #: The deploy's output: a host-side step prints through it (``output.step``, ``info``),
    #: so a library caller's sink gets its lines like any task's.
    output: Output = attrs.field(factory=lambda: _default_output(), eq=False, repr=False)


def _default_output() -> Output:
    from .output import Output

    return Output()


#: The names under which the built-in plugins read app.json and the Procfile
#: (:attr:`DeployContext.files`).
APP_JSON_FILE = "app.json"
PROCFILE_FILE = "Procfile"


@attrs.frozen
class AppFile:
    """A file of the app that a plugin asks the deploy to read (hook ``app_files``).

    The deploy reads it from the source tree, or from the image's WORKDIR when there is no
    source tree (every file of a deploy in one pass, from a container that never starts), and
    never from outside them: a path or symlink that leads out is refused.

    :param name: the file's name in errors, and its key in :attr:`DeployContext.files`.
    :param path: where it is, relative to the source tree or the WORKDIR.
    :param parse: turns its bytes into what the phase hooks get; raises
        :class:`~dokku_tasks.errors.ParseError` (one line) for bad content.
    :param setting: what errors call the path (``appjson-path``, ``Procfile path``).
    :param max_bytes: a larger file is refused before it is read into memory.
    """

    name: str
    path: str
    parse: Callable[[bytes], object] = attrs.field(eq=False)
    setting: str
    max_bytes: int


@attrs.frozen
class HostStep:
    """One plugin's host-side step in a deploy: a phase hook's implementation, or the early
    ``deploy_started`` check.  ``error`` is the failure line, ``None`` when it went through."""

    plugin: str
    hook: str
    duration: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen
class ReportRow:
    """One line of a report section.

    ``key`` is the info flag's name without ``--`` and without the section prefix
    (``computed-appjson-path``).  ``value`` is what the block shows; ``raw`` (when not ``None``)
    is what the info flag and ``--format json`` give instead, for a row whose block shows a
    default in place of an unset value.
    """

    key: str
    label: str
    value: str
    raw: str | None = None

    @property
    def flag_value(self) -> str:
        return self.value if self.raw is None else self.raw


@attrs.frozen
class ReportSection:
    """A plugin's block in ``report``: ``=====> APP TITLE information`` and its rows."""

    title: str
    rows: tuple[ReportRow, ...] = attrs.field(converter=_rows)


@attrs.frozen
class DeployResult:
    """The record of one deploy, successful or not.

    ``image`` is the image ``dokku/APP:latest`` pointed at when the deploy ended (the new one on
    success).  ``error`` is the one-line failure, ``None`` on success.
    """

    app: str
    image: str | None
    tasks: tuple[TaskResult, ...] = attrs.field(converter=_task_results)
    containers: tuple[str, ...] = attrs.field(default=(), converter=string_tuple)
    error: str | None = None
    duration: float = 0.0
    #: The plugins' host-side steps, in the order they ran.
    steps: tuple[HostStep, ...] = attrs.field(default=(), converter=_host_steps)

    @property
    def ok(self) -> bool:
        return self.error is None


#: The healthcheck types Dokku knows.  Only ``startup`` checks run before the process switch.
HEALTHCHECK_TYPES = ("startup", "liveness", "readiness")


@attrs.frozen
class Healthcheck:
    """One entry of app.json ``healthchecks.<process type>``, as Dokku's healthchecker reads it.

    What it checks is the first of these that applies (:attr:`kind`): ``listening`` (something
    listens on ``port`` on every interface), ``command`` (run in the container, exit status 0),
    ``path`` (an HTTP GET answers 2xx, with ``content`` in the body), else ``uptime`` (the
    container is still running ``uptime`` seconds after it started).

    A value app.json does not give (absent, ``null``, or zero or less, as Dokku reads them) is
    ``None`` for ``attempts``, ``wait``, ``timeout`` and ``port``, so that the runner picks the
    default (the app's ``checks`` properties; for ``port`` the process's ``PORT``, else 5000),
    and ``0`` for ``initial_delay`` and ``uptime``.  ``type`` is ``""`` when not given (Dokku
    then runs the check at no point); ``scheme`` is ``"http"`` or ``"https"`` (lower case),
    ``""`` for the default ``http``.
    """

    type: str = ""
    name: str = ""
    command: tuple[str, ...] | None = attrs.field(default=None, converter=_words)
    path: str = ""
    port: int | None = None
    content: str = ""
    attempts: int | None = None
    wait: int | None = None
    timeout: int | None = None
    initial_delay: int = 0
    uptime: int = 0
    scheme: str = ""
    listening: bool = False

    @property
    def kind(self) -> str:
        """``listening``, ``command``, ``path`` or ``uptime``, in Dokku's order of precedence."""
        if self.listening:
            return "listening"
        if self.command:
            return "command"
        if self.path:
            return "path"
        return "uptime"

    @property
    def label(self) -> str:
        """The name, else one made from what it checks (Dokku would show base64 of its JSON)."""
        if self.name:
            return self.name
        kind = self.kind
        if kind == "command":
            return "command " + " ".join(self.command or ())
        if kind == "path":
            return f"path {self.path}"
        if kind == "listening":
            return "listening" + (f" on port {self.port}" if self.port else "")
        return f"uptime {self.uptime}s"
