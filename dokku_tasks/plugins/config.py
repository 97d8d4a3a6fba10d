"""Built-in plugin: the app's stored config values, with Dokku's ``config`` commands.

``config:set [--no-restart] [--encoded] (APP | --global) KEY=VALUE...``,
``config:unset (APP | --global) KEY...``, ``config:get (APP | --global) KEY``,
``config:show`` (and ``config``), ``config:export [--format ...]`` and ``config:keys``.  The
values live in :class:`~dokku_tasks.config_store.ConfigStore`; every deploy and ``run`` gets
them through the ``config_values`` hook, with the values given with ``-e`` laid over them.

Values are printed only by the commands that exist to show them (``config:get``,
``config:show``, ``config:export``); ``config:set`` and a deploy name the keys only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import click

from ..config_store import ConfigStore, check_key, render
from ..errors import UsageError
from ..hookspecs import hookimpl
from ..properties import GLOBAL

if TYPE_CHECKING:
    from ..models import DeployContext

#: ``config:export`` formats, Dokku's names; ``exports`` is the default, as in Dokku.
EXPORT_FORMATS = ("exports", "envfile", "json", "json-list", "pretty", "shell")


@hookimpl
def config_values(app: str, context: DeployContext) -> dict[str, str]:
    """The stored values: the global ones with the app's laid over them."""
    return ConfigStore(context.properties.root).merged(app)


# -- formats --------------------------------------------------------------------------------


def shell_quote(value: str) -> str:
    """``value`` in single quotes for a POSIX shell (``'`` becomes ``'\\''``), as Dokku quotes."""
    return "'" + value.replace("'", "'\\''") + "'"


def pretty_lines(values: Mapping[str, str]) -> list[str]:
    """``KEY:  value`` lines, sorted, values aligned two spaces after the longest ``KEY:``."""
    if not values:
        return []
    width = max(len(key) for key in values) + 1
    return [f"{key + ':':<{width}}  {values[key]}" for key in sorted(values)]


def export_text(values: Mapping[str, str], fmt: str) -> str:
    """``values`` in the ``config:export`` format ``fmt`` (without a final newline).

    :raises UsageError: an unknown format.
    """
    keys = sorted(values)
    if fmt == "exports":
        return "\n".join(f"export {key}={shell_quote(values[key])}" for key in keys)
    if fmt == "envfile":
        return render(values).removesuffix("\n")
    if fmt == "json":
        return json.dumps({key: values[key] for key in keys}, separators=(",", ":"))
    if fmt == "json-list":
        return json.dumps(
            [{"name": key, "value": values[key]} for key in keys], separators=(",", ":")
        )
    if fmt == "pretty":
        return "\n".join(pretty_lines(values))
    if fmt == "shell":
        return " ".join(f"{key}={shell_quote(values[key])}" for key in keys)
    raise UsageError(f"Unknown export format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")


def parse_pairs(pairs: Sequence[str], *, encoded: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a dict (a later one wins); with ``encoded``, each VALUE is
    base64 and is decoded.  Keys and values are checked when they are stored.

    :raises UsageError: no pair, a pair without ``=``, a value that is not base64 or not UTF-8.
    """
    if not pairs:
        raise UsageError("At least one env pair must be given")
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            # No "=": the argument holds no value, so it can be shown.
            raise UsageError(f"Invalid env pair: {pair!r}: expected KEY=VALUE")
        if encoded:
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise UsageError(
                    f"Invalid --encoded value for {check_key(key)}: expected base64 of UTF-8 text"
                ) from None
        values[key] = value
    return values


# -- commands -------------------------------------------------------------------------------


def _store_and_target(
    ctx: click.Context, args: Sequence[str], is_global: bool
) -> tuple[ConfigStore, str, list[str]]:
    """The store, the app (or :data:`GLOBAL`) and the arguments after it."""
    from ..apps import AppRegistry
    from ..cli import state_root

    root = state_root(ctx)
    if is_global:
        return ConfigStore(root), GLOBAL, list(args)
    if not args:
        raise UsageError("Please specify an app to run the command on")
    AppRegistry(root).require(args[0])
    return ConfigStore(root), args[0], list(args[1:])


def _values(store: ConfigStore, app: str, merged: bool) -> dict[str, str]:
    return store.merged(app) if merged and app != GLOBAL else store.get_all(app)


def _print(lines: Sequence[str]) -> None:
    """Print ``lines`` in one write (a thousand keys are one write, not a thousand)."""
    from ..output import Output

    if lines:
        Output().raw("\n".join(lines))


def _no_extra(command: str, extra: Sequence[str]) -> None:
    if extra:
        raise UsageError(f"Unexpected argument(s) for {command}: {' '.join(extra)}")


def _restart_note(ctx: click.Context, app: str, no_restart: bool) -> None:
    """Dokku restarts a deployed app after a change; dokku-tasks says it does not."""
    from ..cli import state_root
    from ..output import Output
    from ..properties import PropertyStore

    if no_restart or app == GLOBAL:
        return
    if PropertyStore(state_root(ctx)).get("common", app, "deployed") == "true":
        Output().info(f"{app} is not restarted: its containers get the change at its next deploy")


_GLOBAL = click.option("--global", "is_global", is_flag=True, help="The global config.")
_MERGED = click.option("--merged", is_flag=True, help="The app's values laid over the global ones.")
_NO_RESTART = click.option(
    "--no-restart",
    is_flag=True,
    help="Accepted for Dokku's sake: dokku-tasks never restarts an app after a change.",
)


def _show(ctx: click.Context, args: Sequence[str], is_global: bool, merged: bool) -> None:
    from ..output import Output

    store, app, extra = _store_and_target(ctx, args, is_global)
    _no_extra("config:show", extra)
    values = _values(store, app, merged)
    Output().section(f"{'global' if app == GLOBAL else app} env vars")
    _print(pretty_lines(values))


@hookimpl
def register_commands(cli: click.Group) -> None:
    args = click.argument("args", nargs=-1, metavar="(APP | --global)")

    @cli.command("config:show")
    @args
    @_GLOBAL
    @_MERGED
    @click.pass_context
    def config_show(
        ctx: click.Context, args: tuple[str, ...], is_global: bool, merged: bool
    ) -> None:
        """Show the config values of APP (or --global), aligned."""
        _show(ctx, args, is_global, merged)

    @cli.command("config")
    @args
    @_GLOBAL
    @_MERGED
    @click.pass_context
    def config(ctx: click.Context, args: tuple[str, ...], is_global: bool, merged: bool) -> None:
        """Show the config values of APP (or --global): config:show."""
        _show(ctx, args, is_global, merged)

    @cli.command("config:get")
    @click.argument("args", nargs=-1, metavar="(APP | --global) KEY")
    @_GLOBAL
    @click.option("--quoted", is_flag=True, help="Print the value in single quotes.")
    @click.pass_context
    def config_get(
        ctx: click.Context, args: tuple[str, ...], is_global: bool, quoted: bool
    ) -> None:
        """Print the value of KEY for APP (or --global); exit 1 when it is not set."""
        store, app, keys = _store_and_target(ctx, args, is_global)
        if not keys:
            raise UsageError("Expected: key")
        if len(keys) > 1:
            raise UsageError(f"Unexpected argument(s) for config:get: {' '.join(keys[1:])}")
        values = store.get_all(app)
        key = check_key(keys[0])
        if key not in values:
            ctx.exit(1)
        _print([shell_quote(values[key]) if quoted else values[key]])

    @cli.command("config:keys")
    @args
    @_GLOBAL
    @_MERGED
    @click.pass_context
    def config_keys(
        ctx: click.Context, args: tuple[str, ...], is_global: bool, merged: bool
    ) -> None:
        """List the config keys of APP (or --global), sorted; never their values."""
        store, app, extra = _store_and_target(ctx, args, is_global)
        _no_extra("config:keys", extra)
        _print(sorted(_values(store, app, merged)))

    @cli.command("config:export")
    @args
    @_GLOBAL
    @_MERGED
    @click.option(
        "--format",
        "fmt",
        default="exports",
        metavar="FORMAT",
        help=f"One of {', '.join(EXPORT_FORMATS)} (default: exports).",
    )
    @click.pass_context
    def config_export(
        ctx: click.Context, args: tuple[str, ...], is_global: bool, merged: bool, fmt: str
    ) -> None:
        """Print the config values of APP (or --global) for another tool: a shell, JSON."""
        if fmt not in EXPORT_FORMATS:
            raise UsageError(
                f"Unknown export format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}"
            )
        store, app, extra = _store_and_target(ctx, args, is_global)
        _no_extra("config:export", extra)
        text = export_text(_values(store, app, merged), fmt)
        _print([text] if text else [])

    @cli.command("config:set")
    @click.argument("args", nargs=-1, metavar="(APP | --global) KEY=VALUE...")
    @_GLOBAL
    @_NO_RESTART
    @click.option("--encoded", is_flag=True, help="Each VALUE is base64; store it decoded.")
    @click.pass_context
    def config_set(
        ctx: click.Context,
        args: tuple[str, ...],
        is_global: bool,
        no_restart: bool,
        encoded: bool,
    ) -> None:
        """Store config values for APP (or --global); the next deploy and run get them."""
        from ..output import Output

        store, app, pairs = _store_and_target(ctx, args, is_global)
        values = parse_pairs(pairs, encoded=encoded)
        store.set(app, values)  # checks every key and value before it writes anything
        output = Output()
        output.step("Setting config vars")
        for key in sorted(values):
            output.info(key)
        _restart_note(ctx, app, no_restart)

    @cli.command("config:unset")
    @click.argument("args", nargs=-1, metavar="(APP | --global) KEY...")
    @_GLOBAL
    @_NO_RESTART
    @click.pass_context
    def config_unset(
        ctx: click.Context, args: tuple[str, ...], is_global: bool, no_restart: bool
    ) -> None:
        """Remove config values of APP (or --global); the next deploy and run go without."""
        from ..output import Output

        store, app, keys = _store_and_target(ctx, args, is_global)
        if not keys:
            raise UsageError("At least one key must be given")
        removed = set(store.unset(app, keys))
        output = Output()
        for key in dict.fromkeys(keys):
            if key in removed:
                output.step(f"Unsetting {key}")
            else:
                output.step(f"Skipping {key}, it is not set in the environment")
        if removed:
            _restart_note(ctx, app, no_restart)
