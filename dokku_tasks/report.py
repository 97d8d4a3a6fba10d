"""Report sections as Dokku prints them: the ``=====>`` block, info flags and ``--format json``.

Pure: everything here turns :class:`~dokku_tasks.models.ReportSection` records and argument
lists into strings.  The CLI does the printing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import attrs

from .errors import UsageError
from .models import ReportSection
from .output import INDENT

FORMATS = ("stdout", "json")


@attrs.frozen
class ReportArgs:
    """What a ``NAMESPACE:report`` command line asks for.

    ``app`` is ``None`` for "every app"; ``flag`` is the one info flag (with ``--``), if any;
    ``is_global`` asks for the ``--global`` report (the global and computed values only).
    """

    app: str | None = None
    flag: str | None = None
    format: str = "stdout"
    is_global: bool = False


def parse_report_args(command: str, args: Sequence[str]) -> ReportArgs:
    """Parse ``[APP | --global] [--INFO-FLAG] [--format stdout|json]`` in any order, as Dokku.

    ``--format X`` and ``--format=X`` both work.  Every other ``--word`` is an info flag; whether
    it is a valid one is checked against the section later.  Unlike Dokku, two info flags, or an
    info flag with ``--format json``, are an error rather than a silent exit 0.

    :param command: the command's name, for the error messages (``app-json:report``).
    :raises UsageError: two info flags, a flag with json, a bad format, a second APP, or an APP
        with ``--global``.
    """
    app: str | None = None
    flags: list[str] = []
    fmt = "stdout"
    is_global = False
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--format":
            if index >= len(args):
                raise UsageError('--format requires a value: "stdout" or "json"')
            fmt = args[index]
            index += 1
        elif arg.startswith("--format="):
            fmt = arg[len("--format=") :]
        elif arg == "--global":
            is_global = True
        elif arg.startswith("--") and arg != "--":
            flags.append(arg)
        elif app is None:
            app = arg
        else:
            raise UsageError(f"{command} takes at most one app, got {app!r} and {arg!r}")
    if fmt not in FORMATS:
        raise UsageError(f'Format must be "stdout" or "json": "{fmt}"')
    if len(flags) > 1:
        raise UsageError(f"{command} command allows only a single flag, got {', '.join(flags)}")
    if flags and fmt == "json":
        raise UsageError("--format flag cannot be specified when specifying an info flag")
    if is_global and app is not None:
        raise UsageError(f"{command} takes an app or --global, not both")
    return ReportArgs(app=app, flag=flags[0] if flags else None, format=fmt, is_global=is_global)


def format_block(app: str, section: ReportSection) -> list[str]:
    """The stdout block: ``=====> APP TITLE information``, then one aligned row per line.

    Rows are indented 7 spaces; every ``Label:`` is padded so the values start in one column,
    one space after the longest label.  An empty value leaves the padding in place, as Dokku's
    ``RightPad`` does.
    """
    lines = [f"=====> {app} {section.title} information"]
    width = max((len(row.label) + 2 for row in section.rows), default=0)
    for row in section.rows:
        lines.append(f"{INDENT}{row.label + ':':<{width}}{row.value}")
    return lines


def format_json(section: ReportSection) -> str:
    """One compact JSON object, keys sorted (as Go's ``json.Marshal`` sorts a map's keys).

    Keys are the rows' keys (``computed-appjson-path``), values the info-flag values, so an
    unset value is ``""`` rather than its displayed default.
    """
    data = {row.key: row.flag_value for row in section.rows}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def info_flags(section: ReportSection, prefix: str | None = None) -> list[str]:
    """The section's info flags, sorted: ``--PREFIX-KEY`` (``prefix`` defaults to the title)."""
    prefix = section.title if prefix is None else prefix
    return sorted(f"--{prefix}-{row.key}" for row in section.rows)


def flag_value(section: ReportSection, flag: str, prefix: str | None = None) -> str:
    """The bare value an info flag asks for (``""`` when unset, not the displayed default).

    :raises UsageError: ``Invalid flag passed, valid flags: ...`` for an unknown flag.
    """
    prefix = section.title if prefix is None else prefix
    for row in section.rows:
        if flag == f"--{prefix}-{row.key}":
            return row.flag_value
    raise UsageError(f"Invalid flag passed, valid flags: {', '.join(info_flags(section, prefix))}")


def render(app: str, section: ReportSection, args: ReportArgs) -> list[str]:
    """The lines ``NAMESPACE:report`` prints for one app, per ``args``.

    :raises UsageError: ``args.flag`` is not one of the section's info flags.
    """
    if args.flag is not None:
        return [flag_value(section, args.flag)]
    if args.format == "json":
        return [format_json(section)]
    return format_block(app, section)
