"""The ``dokku-tasks`` command: Dokku-compatible command names over the library.

Thin on purpose: each command parses its arguments, calls the library, and prints.  Every
:class:`~dokku_tasks.errors.DokkuTasksError` (and every usage error click finds) becomes one
line, `` !     <message>``, on stderr and its exit code; a Ctrl-C becomes one line and exit 130.

Imports of the library's heavier parts (the plugin manager, plugins, the pipeline and with it
the Docker SDK) happen inside the commands, so ``dokku-tasks --help`` stays fast and works even
when a plugin or the engine is broken.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .errors import (
    DokkuTasksError,
    InterruptedDeployError,
    PropertyError,
    UsageError,
    cleanup_line,
)
from .text import printable

if TYPE_CHECKING:
    from . import settings
    from .hooks import Hooks
    from .output import Output
    from .pipeline import DeployRequest

#: Exit status for a Ctrl-C that reached the CLI (128 + SIGINT), as a shell reports it.
EXIT_INTERRUPTED = 130

_PLUGINS = "dokku_tasks.plugins"
_PLUGIN_COMMANDS = "dokku_tasks.plugin_commands"
#: Names that are never looked up among the plugins' commands (click's own probes).
_NEVER_PLUGIN_COMMANDS = frozenset({"--help", "-h"})

# Arguments that click would take for unknown options ("--global", "-x") reach the command as
# they are, so it can refuse them with its own clear message (an invalid app name, say).
_ARGS_AS_GIVEN: dict[str, Any] = {"ignore_unknown_options": True}


def _output() -> Output:
    """Dokku-framed output on stdout and stderr (imported when a command first prints)."""
    from .output import Output

    return Output()


def _fail(message: str, exit_code: int, cleanup: str | None = None) -> NoReturn:
    """Print `` !     message`` on stderr (always one line) and exit with ``exit_code``.

    ``cleanup``, what cleaning up after the failure could not do, is one more line after it.
    """
    from .output import ERROR_PREFIX

    for text in (message, cleanup):
        if text:
            line = " ".join(part.strip() for part in text.strip().splitlines() if part.strip())
            # A NUL or an escape sequence from a user's file is shown, never sent raw.
            click.echo(f"{ERROR_PREFIX}{printable(line)}", err=True)
    raise click.exceptions.Exit(exit_code)


def _index_location() -> tuple[Path, list[str]]:
    """The command index's file and the key it must carry to be current."""
    from . import command_index

    return command_index.cache_file(), command_index.context_key()


def _indexed_command(entries: list[dict[str, Any]] | None, cmd_name: str) -> click.Command | None:
    """The command ``cmd_name`` from the one plugin that registers it, when the (current)
    command index ``entries`` name that plugin's module; None means: load every plugin.

    The command is built by that module's ``register_commands`` alone: loading the other
    plugins, and the hooks machinery, is most of what a command like ``config:show`` would
    otherwise spend.  Anything unexpected (a module that no longer registers the command, an
    import that fails) falls back to loading every plugin, which names a broken one.
    """
    module_name = next(
        (entry.get("module") for entry in entries or () if entry["name"] == cmd_name), None
    )
    if not isinstance(module_name, str):
        return None
    import importlib

    staging = click.Group()
    try:
        importlib.import_module(module_name).register_commands(cli=staging)
    except Exception:  # any failure of plugin code: the full load says whose it is
        return None
    return staging.commands.get(cmd_name)


def _usage_line(exc: click.UsageError, ctx: click.Context | None = None) -> str:
    where = exc.ctx or ctx
    hint = f" See '{where.command_path} --help'." if where is not None else ""
    return f"{exc.format_message()}{hint}"


class _Group(click.Group):
    """A group that turns our errors, click's usage errors and Ctrl-C into one line each.

    The commands plugins bring (``NS:set`` and ``NS:report`` of every registered settings
    namespace, and ``register_commands``) are added the first time a command name is not one
    of the core's, or when ``--help`` lists them: a core command never waits for plugins to
    load before it parses its arguments.
    """

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """The commands plugins bring, built once per command line (kept on its context)."""
        root = ctx.find_root()
        commands: dict[str, click.Command] | None = root.meta.get(_PLUGIN_COMMANDS)
        if commands is None:
            commands = root.meta[_PLUGIN_COMMANDS] = {}
            plugins = _plugins(root)
            for ns in plugins.settings:
                for command in namespace_commands(ns):
                    commands.setdefault(str(command.name), command)
            # Plugins add to a group of their own: a name of the core's cannot be taken over.
            staging = click.Group()
            plugins.register_commands(cli=staging)
            for name, command in staging.commands.items():
                commands.setdefault(name, command)
        return commands

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name in _NEVER_PLUGIN_COMMANDS:
            return command
        from . import command_index

        entries = command_index.read(*_index_location())
        command = _indexed_command(entries, cmd_name)
        if command is None:
            command = self._plugin_commands(ctx).get(cmd_name)
            if entries is None:
                # So that the next run of a plugin's command loads only that plugin.
                with contextlib.suppress(DokkuTasksError):
                    self._write_index(ctx)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        # For --help: a broken plugin must not take the help away.
        with contextlib.suppress(DokkuTasksError):
            names.update(self._plugin_commands(ctx))
        return sorted(names)

    def get_help(self, ctx: click.Context) -> str:
        text = super().get_help(ctx)
        if ctx.parent is None:
            from . import command_index

            # For the next `dokku-tasks --help`, which the console script answers from it.
            command_index.store_help(text)
        return text

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The help's command list: the core's, then the plugins' from the command index."""
        commands = dict(self._listed_plugin_commands(ctx))
        commands.update(self.commands)
        shown = sorted((name, cmd) for name, cmd in commands.items() if not cmd.hidden)
        if shown:
            limit = formatter.width - 6 - max(len(name) for name, _ in shown)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in shown])

    def _listed_plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """The plugins' commands for the help listing: from the index while it is current
        (see :mod:`dokku_tasks.command_index`), else by loading the plugins and rewriting it."""
        from . import command_index

        entries = command_index.read(*_index_location())
        if entries is not None:
            return {
                entry["name"]: click.Command(
                    entry["name"],
                    help=entry.get("help"),
                    short_help=entry.get("short_help"),
                    deprecated=entry.get("deprecated") or False,
                )
                for entry in entries
            }
        try:
            return self._write_index(ctx)
        except DokkuTasksError:
            # A broken plugin must not take the help away.
            return {}

    def _write_index(self, ctx: click.Context) -> dict[str, click.Command]:
        """Load the plugins, write the command index from their commands, return those.

        Each entry names the plugin module whose ``register_commands`` made the command,
        when the command's function comes from that module (see :func:`_indexed_command`).
        """
        from . import command_index

        commands = self._plugin_commands(ctx)
        pm = _plugins(ctx).pm
        # Only a plugin that is a module can be imported again by its name.
        registering = {
            impl.plugin.__name__
            for impl in pm.hook.register_commands.get_hookimpls()
            if isinstance(impl.plugin, types.ModuleType)
        }
        entries = []
        for name, command in commands.items():
            if command.hidden:
                continue
            module = getattr(command.callback, "__module__", None)
            entries.append(
                {
                    "name": name,
                    "help": command.help,
                    "short_help": command.short_help,
                    "deprecated": command.deprecated,
                    "module": module if module in registering else None,
                }
            )
        watched = command_index.watched_paths(command_index.loaded_module_files())
        command_index.write(*_index_location(), watched, entries)
        return commands

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            # Plain `dokku-tasks`: click prints the help, which is what the user wants.
            raise
        except click.UsageError as exc:
            _fail(_usage_line(exc), 1)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DokkuTasksError as exc:
            if isinstance(exc, InterruptedDeployError):
                # The deploy is over and cleaned up: a second Ctrl-C must not cut this line.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _fail(exc.message, exc.exit_code, cleanup_line(exc))
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            # Dokku exits 1 for a bad command line; click's default is 2 and three lines.
            _fail(_usage_line(exc, ctx), 1)
        except KeyboardInterrupt as exc:
            # A second Ctrl-C that lands after the deploy restored Python's handler, while the
            # deploy's own interruption is still on its way here: that deploy's line stands.
            interrupted = _in_flight_interruption(exc)
            if interrupted is not None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                _fail(interrupted.message, interrupted.exit_code, cleanup_line(interrupted))
            _fail("Interrupted", EXIT_INTERRUPTED)


def _in_flight_interruption(exc: BaseException) -> InterruptedDeployError | None:
    """The interrupted deploy a ``KeyboardInterrupt`` cut short, if any (its context chain)."""
    seen: set[int] = set()
    context = exc.__context__
    while context is not None and id(context) not in seen:
        if isinstance(context, InterruptedDeployError):
            return context
        seen.add(id(context))
        context = context.__context__
    return None


@click.group("dokku-tasks", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    help="State directory (default: $DOKKU_TASKS_ROOT, else ~/.local/share/dokku-tasks).",
)
@click.version_option(package_name="dokku-tasks", prog_name="dokku-tasks")
@click.pass_context
def cli(ctx: click.Context, root: Path | None) -> None:
    """Run Dokku-style deployment tasks (app.json, Procfile release) in an app's image."""
    ctx.obj = root
    # Every command checks, once it is done, for old containers past their retirement
    # deadline that no retirer handles (a killed one, a reboot) and starts one: cheap when
    # nothing is due, and it never fails the command.
    ctx.call_on_close(lambda: _reap_retirements(ctx))


def _reap_retirements(ctx: click.Context) -> None:
    with contextlib.suppress(DokkuTasksError, OSError):
        root = _root(ctx)
        # Most command lines run where nothing was ever retired: skip the module's import.
        if not (root / "retirements").is_dir():
            return
        from .retirement import reap_if_due

        reap_if_due(root)


def main() -> None:
    """The console script's entry point."""
    # A short-lived command makes few cycles: collecting them only costs start-up time, and
    # freezing what is left spares the interpreter's exit from walking it again.  A command
    # that may run long turns the collector back on (long_running).
    gc.disable()
    try:
        cli.main(prog_name="dokku-tasks")
    finally:
        gc.freeze()
        _release_stdout()


def _release_stdout() -> None:
    """Flush stdout; when it cannot be written (a full disk, a closed pipe), let it go.

    Output already gave up on such a stream and the command has its exit status; without
    this, the interpreter's own flush at exit would print a traceback and exit 120.
    """
    try:
        sys.stdout.flush()
    except OSError:
        from .output import discard

        discard(sys.stdout)


def long_running(*, engine: bool = True) -> None:
    """Turn the garbage collector back on for a command that may run long and print much
    (``deploy``, ``run``, and a plugin's own such command, such as ``deploys:retry``).

    Only when :func:`main` turned it off for the start-up, so only in a process of its own:
    the command first imports what it will need (with ``engine``, the engine module and its
    HTTP client, which the collector would otherwise walk over and over), then freezes what start-up made, so that later collections never walk it again.
    A command run in-process (a test, a caller of ``cli.main``) leaves the collector alone.
    """
    if gc.isenabled():
        return
    if engine:
        from . import engine as _engine  # noqa: F401

    gc.freeze()
    gc.enable()


def state_root(ctx: click.Context) -> Path:
    """The state root of the command line ``ctx`` belongs to, for a plugin's own commands:
    ``--root``, else ``$DOKKU_TASKS_ROOT``, else the user data dir."""
    return _root(ctx)


def _root(ctx: click.Context) -> Path:
    """The state root: ``--root``, else ``$DOKKU_TASKS_ROOT``, else the user data dir."""
    from .properties import default_root

    given = ctx.find_root().obj
    # Absolute, because paths under the root may be handed to the engine as bind mounts.
    return (given if isinstance(given, Path) else default_root()).absolute()


def _plugins(ctx: click.Context) -> Hooks:
    """The loaded plugins, built once per command line (kept on its root context)."""
    root = ctx.find_root()
    plugins: Hooks | None = root.meta.get(_PLUGINS)
    if plugins is None:
        from .hooks import Hooks
        from .manager import get_plugin_manager

        plugins = root.meta[_PLUGINS] = Hooks(get_plugin_manager())
    return plugins


# -- apps -----------------------------------------------------------------------------------


@cli.command("apps:create", context_settings=_ARGS_AS_GIVEN)
@click.argument("app")
@click.pass_context
def apps_create(ctx: click.Context, app: str) -> None:
    """Create an app."""
    from .api import create_app

    create_app(app, root=_root(ctx))
    _output().step(f"Creating {app}...")


def _stdin_is_interactive() -> bool:
    """Whether a person can answer a prompt (a test replaces this)."""
    return sys.stdin.isatty()


@cli.command("apps:destroy", context_settings=_ARGS_AS_GIVEN)
@click.argument("app")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def apps_destroy(ctx: click.Context, app: str, force: bool) -> None:
    """Destroy an app: its containers, services, images and every property it has."""
    from .apps import AppRegistry

    registry = AppRegistry(_root(ctx))
    registry.require(app)
    output = _output()
    if not force:
        if not _stdin_is_interactive():
            raise UsageError(
                f"Refusing to destroy {app} without confirmation: stdin is not a terminal "
                "(pass --force to destroy it anyway)"
            )
        output.error("WARNING: Potentially Destructive Action")
        output.error(f"This command will destroy app {app}.")
        output.error(f'To proceed, type "{app}"')
        click.echo("> ", nl=False)
        answer = sys.stdin.readline()
        if answer.strip() != app:
            raise UsageError(f"Confirmation did not match {app}. Aborted.")
    output.step(f"Destroying {app}")
    from .pipeline import destroy

    destroy(app, root=_root(ctx), output=output)


@cli.command("apps:list")
@click.pass_context
def apps_list(ctx: click.Context) -> None:
    """List the apps."""
    from .apps import AppRegistry

    apps = AppRegistry(_root(ctx)).list()
    output = _output()
    if not apps:
        output.error("You haven't deployed any applications yet")
        return
    output.section("My Apps")
    for app in apps:
        output.raw(app)


# -- NAMESPACE:set and NAMESPACE:report -----------------------------------------------------


def _set(ctx: click.Context, ns: settings.Namespace, args: Sequence[str]) -> None:
    from .apps import AppRegistry
    from .properties import GLOBAL

    # As Dokku's pflag parsing: --global may stand anywhere, the rest is positional.
    is_global = GLOBAL in args
    words = [arg for arg in args if arg != GLOBAL]
    if is_global:
        app = GLOBAL
    elif words:
        app, words = words[0], words[1:]
    else:
        raise UsageError("Please specify an app to run the command on")
    if len(words) > 2:
        raise UsageError(
            f"Too many arguments: {ns.name}:set takes (APP | --global) PROPERTY [VALUE]; "
            "quote a value that contains spaces"
        )
    prop = words[0] if words else ""
    value = words[1] if len(words) > 1 else ""
    registry = AppRegistry(_root(ctx))
    if app != GLOBAL:
        registry.require(app)
    plugins = None
    # Only a value check that asks plugins (which schedulers exist) uses them.
    if value and prop in ns.property_names and ns.get_property(prop).needs_plugins:
        plugins = _plugins(ctx)
    from .settings import set_property

    result = set_property(registry, ns, app, prop, value, plugins=plugins)
    _output().section(result.message)


def _apps_for_report(ctx: click.Context, app: str | None) -> list[str]:
    """``[app]`` if it exists, else every app; an empty list after warning when there are none."""
    from .apps import AppRegistry

    registry = AppRegistry(_root(ctx))
    if app is not None:
        return [registry.require(app)]
    apps = registry.list()
    if not apps:
        _output().error("You haven't deployed any applications yet")
    return apps


def _report(ctx: click.Context, ns: settings.Namespace, args: Sequence[str]) -> None:
    from . import report, settings
    from .properties import GLOBAL, PropertyStore

    parsed = report.parse_report_args(f"{ns.name}:report", args)
    store = PropertyStore(_root(ctx))
    lines: list[str] = []
    # The section is the namespace's own: another plugin's report (or its unreadable property
    # file) cannot break it.
    if parsed.is_global:
        lines = report.render(GLOBAL, settings.global_report_section(store, ns), parsed)
    elif apps := _apps_for_report(ctx, parsed.app):
        # Rendered in full before printing, so a bad info flag prints nothing but its error.
        shared = settings.global_values(store, ns)  # read once for every app
        for app in apps:
            lines += report.render(app, settings.report_section(store, ns, app, shared), parsed)
    output = _output()
    for line in lines:
        output.raw(line)


def namespace_commands(ns: settings.Namespace) -> tuple[click.Command, click.Command]:
    """``NS:set`` and ``NS:report`` for a registered namespace, with Dokku's behaviour."""
    valid = ", ".join(ns.property_names)

    @click.command(
        f"{ns.name}:set",
        context_settings=_ARGS_AS_GIVEN,
        help=f"Set or clear a {ns.name} property for an app, or --global.  Properties: {valid}.",
    )
    @click.argument(
        "args", nargs=-1, type=click.UNPROCESSED, metavar="(APP | --global) PROPERTY [VALUE]"
    )
    @click.pass_context
    def set_command(ctx: click.Context, args: tuple[str, ...]) -> None:
        _set(ctx, ns, args)

    @click.command(
        f"{ns.name}:report",
        context_settings=_ARGS_AS_GIVEN,
        help=(
            f"Display the {ns.name} report for one app or every app.  Info flags "
            f"(--{ns.name}-PROPERTY, --{ns.name}-computed-PROPERTY, --{ns.name}-global-PROPERTY) "
            "print one bare value; --format json prints one JSON object per app."
        ),
    )
    @click.argument(
        "args",
        nargs=-1,
        type=click.UNPROCESSED,
        metavar="[APP | --global] [FLAG] [--format stdout|json]",
    )
    @click.pass_context
    def report_command(ctx: click.Context, args: tuple[str, ...]) -> None:
        _report(ctx, ns, args)

    return set_command, report_command


@cli.command("report", context_settings=_ARGS_AS_GIVEN)
@click.argument("app", required=False)
@click.pass_context
def report_all(ctx: click.Context, app: str | None) -> None:
    """Display every plugin's report section for one app or every app."""
    from . import report
    from .properties import PropertyStore

    apps = _apps_for_report(ctx, app)
    if not apps:
        return
    plugins = _plugins(ctx)
    store = PropertyStore(_root(ctx))
    lines: list[str] = []
    for name in apps:
        for section in plugins.report(app=name, properties=store):
            lines += report.format_block(name, section)
    output = _output()
    for line in lines:
        output.raw(line)


# -- plugins --------------------------------------------------------------------------------


@cli.command("plugins")
def plugins() -> None:
    """List the loaded plugins, where each comes from, and the hooks it implements."""
    from .manager import plugin_infos

    pm = _plugins(click.get_current_context()).pm
    rows = [
        (
            info.name,
            info.origin,
            "(disabled)" if info.disabled else ", ".join(info.hooks) or "(no hooks)",
        )
        for info in plugin_infos(pm)
    ]
    name_width = max((len(name) for name, _, _ in rows), default=0)
    origin_width = max((len(origin) for _, origin, _ in rows), default=0)
    output = _output()
    for name, origin, hooks in rows:
        output.raw(f"{name:<{name_width}}  {origin:<{origin_width}}  {hooks}")


# -- deploy ---------------------------------------------------------------------------------


def _container_options(target: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options ``deploy`` and ``run`` share: config values (``-e``, ``--env-file``),
    bind mounts (``-v``) and the network, whose help names ``target``."""
    options = (
        click.option(
            "-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Config value."
        ),
        click.option(
            "--env-file",
            type=click.Path(path_type=Path),
            help="KEY=VALUE lines; -e values override them.",
        ),
        click.option(
            "-v",
            "--volume",
            "volumes",
            multiple=True,
            metavar="HOST:CONTAINER[:ro]",
            help=f"Bind-mount a host path into {target}.",
        ),
        click.option("--network", help=f"Docker network for {target}."),
    )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _deploy_request(
    app: str,
    *,
    source: Path | None,
    image: str | None,
    env: Sequence[str],
    env_file: Path | None,
    volumes: Sequence[str],
    network: str | None,
    task_timeout: str | None,
    scheduler: str | None,
    skip: Sequence[str] = (),
) -> DeployRequest:
    """The :class:`~dokku_tasks.pipeline.DeployRequest` that ``deploy``'s arguments describe.

    Pure parsing: the scheduler's name is checked against the plugins by the caller.

    :raises DokkuTasksError: the first bad value, as one line.
    """
    from . import options
    from .apps import validate_app_name
    from .pipeline import DeployRequest

    validate_app_name(app)
    if source is None and image is None:
        raise UsageError("deploy needs --source DIR, --image IMAGE, or both")
    if image is not None and not image.strip():
        raise UsageError("--image must name an image")
    values = options.config_values(env, env_file)
    if network is not None and not network.strip():
        raise UsageError("--network must name a network")
    timeout = None
    if task_timeout is not None:
        timeout = options.parse_task_timeout(task_timeout, allow_none=False)
    return DeployRequest(
        app=app,
        source=source,
        image=image,
        env=values,
        mounts=tuple(options.parse_mount(spec) for spec in volumes),
        network=network,
        task_timeout=timeout,
        scheduler=scheduler,
        skip=_skipped_phases(skip),
    )


def _skipped_phases(skip: Sequence[str]) -> tuple[str, ...]:
    from .models import PHASES

    for phase in skip:
        if phase not in PHASES:
            raise UsageError(
                f"Unknown phase {phase!r} to skip: expected one of {', '.join(PHASES)}"
            )
    return tuple(dict.fromkeys(skip))


@cli.command("deploy")
@click.argument("app")
@click.option(
    "--source",
    type=click.Path(path_type=Path),
    help="Source tree: builds DIR/Dockerfile, and holds app.json and the Procfile.",
)
@click.option("--image", help="Deploy this image (app.json and Procfile from its WORKDIR).")
@_container_options("task and process containers")
@click.option(
    "--task-timeout",
    metavar="SECONDS",
    help="Kill a task that runs longer (default: the scheduler task-timeout property).",
)
@click.option(
    "--scheduler",
    metavar="NAME",
    help="docker-local or swarm (default: the scheduler selected property).",
)
@click.option(
    "--skip",
    "skip",
    multiple=True,
    metavar="PHASE",
    help="Do not run this phase (predeploy, release, postdeploy, heroku.postdeploy); repeatable.",
)
@click.option(
    "--plan",
    "show_plan",
    is_flag=True,
    help="Print what the deploy would do, and change nothing.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    help="text: Dokku's framed lines; jsonl: one JSON event per line on stdout.",
)
@click.pass_context
def deploy(
    ctx: click.Context,
    app: str,
    source: Path | None,
    image: str | None,
    env: tuple[str, ...],
    env_file: Path | None,
    volumes: tuple[str, ...],
    network: str | None,
    task_timeout: str | None,
    scheduler: str | None,
    skip: tuple[str, ...],
    show_plan: bool,
    fmt: str,
) -> None:
    """Deploy APP: build or take the image, run its tasks, schedule its processes."""
    request = _deploy_request(
        app,
        source=source,
        image=image,
        env=env,
        env_file=env_file,
        volumes=volumes,
        network=network,
        task_timeout=task_timeout,
        scheduler=scheduler,
        skip=skip,
    )
    # Plugins are loaded once every value has parsed, so a typo is reported even when a
    # plugin is broken.
    plugins = _plugins(ctx)
    if scheduler is not None and scheduler not in plugins.schedulers:
        valid = ", ".join(sorted(plugins.schedulers))
        raise PropertyError(f"Invalid scheduler {scheduler!r}, valid schedulers: {valid}")
    import attrs

    from . import pipeline

    output = _output()
    # A deploy may run for long and stream much output: from here on, collect as usual.
    long_running(engine=True)
    if show_plan:
        import json

        from .plan import plan

        planned = plan(request, root=_root(ctx), pm=plugins.pm)
        if fmt == "jsonl":
            output.raw(json.dumps(planned.to_json()))
            return
        for style, text in planned.lines():
            getattr(output, style)(text)
        return
    if fmt == "jsonl":
        from . import __version__
        from .events import JsonLines

        output = attrs.evolve(output, text=False, sinks=[JsonLines(sys.stdout, __version__)])
    result = pipeline.deploy(request, root=_root(ctx), output=output, pm=plugins.pm)
    if not result.ok:
        # The pipeline raises on failure; a record with an error is still a failed deploy.
        _fail(result.error or "Deploy failed", 1)


# -- run ------------------------------------------------------------------------------------

#: Where ``run`` keeps the command's words between parsing and the command (``ctx.meta``).
_RUN_WORDS = "dokku_tasks.run_words"


def _split_run_args(command: click.Command, args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``run``'s arguments: its own (APP and options), and the command's words.

    Options are ``run``'s up to ``--`` or up to the first word after APP; every word from there
    on is the command's, as written, so ``run web ls -la`` runs ``ls -la``.
    """
    takes_value = {
        opt
        for param in command.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for opt in (*param.opts, *param.secondary_opts)
    }
    ours: list[str] = []
    app_seen = False
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return ours, list(args[index + 1 :])
        if arg.startswith("-") and arg != "-":
            ours.append(arg)
            if arg in takes_value and index + 1 < len(args):
                index += 1
                ours.append(args[index])
        elif app_seen:
            return ours, list(args[index:])
        else:
            ours.append(arg)
            app_seen = True
        index += 1
    return ours, []


class _RunCommand(click.Command):
    """``run APP [OPTIONS] [--] COMMAND...``: the command's words never reach click."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ours, words = _split_run_args(self, args)
        ctx.meta[_RUN_WORDS] = words
        return super().parse_args(ctx, ours)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [*super().collect_usage_pieces(ctx), "[--] COMMAND..."]


@cli.command("run", cls=_RunCommand)
@click.argument("app")
@_container_options("the container")
@click.option(
    "--task-timeout",
    metavar="SECONDS",
    help="Kill the command when it runs longer (exit 124; default: the scheduler "
    "task-timeout property).",
)
@click.pass_context
def run_command(
    ctx: click.Context,
    app: str,
    env: tuple[str, ...],
    env_file: Path | None,
    volumes: tuple[str, ...],
    network: str | None,
    task_timeout: str | None,
) -> None:
    """Run a one-off COMMAND in a new container of APP's deployed image; exit with its status."""
    from . import oneoff, options
    from .apps import validate_app_name

    validate_app_name(app)
    words = oneoff.command_words(ctx.meta.get(_RUN_WORDS) or [])
    values = options.config_values(env, env_file)
    mounts = tuple(options.parse_mount(spec) for spec in volumes)
    if network is not None and not network.strip():
        raise UsageError("--network must name a network")
    timeout = None
    if task_timeout is not None:
        timeout = options.parse_task_timeout(task_timeout, allow_none=False)
    plugins = _plugins(ctx)
    # A command may run for long and print much: from here on, collect as usual.
    long_running(engine=True)
    result = oneoff.run(
        app,
        words,
        root=_root(ctx),
        env=values,
        mounts=mounts,
        network=network,
        task_timeout=timeout,
        output=_output(),
        pm=plugins.pm,
    )
    # The command's status is ours; one a shell cannot show (a negative one) is a failure.
    ctx.exit(result.exit_status if 0 <= result.exit_status <= 255 else 1)
