"""Built-in plugin: the deploy history's setting and commands.

``deploys:set APP keep N`` (how many deploys the history keeps, 20 by default);
``deploys:list APP [--format json]``, ``deploys:show APP [ID] [--format json]`` and
``deploys:logs APP [ID] [--phase PHASE]``, which replay what :mod:`dokku_tasks.history` kept.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import settings
from ..errors import PropertyError, UsageError
from ..hookspecs import hookimpl
from ..models import PHASES, ReportSection
from ..properties import PropertyStore
from ..settings import Namespace, Property

if TYPE_CHECKING:
    from ..events import Event
    from ..history import DeployRecord
    from ..hooks import Hooks
    from ..output import Output

#: The most deploys an app's history may keep.
MAX_KEEP = 10_000


def _validate_keep(value: str, plugins: Hooks | None) -> str:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_KEEP:
        raise PropertyError(f"Invalid keep {value!r}: expected a whole number from 1 to {MAX_KEEP}")
    return str(int(value))


DEPLOYS = Namespace(
    name="deploys",
    label="Deploys",
    properties=(Property("keep", default="20", validator=_validate_keep),),
)


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(DEPLOYS)


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``deploys`` section: computed, global and app ``keep``."""
    return settings.report_section(properties, DEPLOYS, app)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def list_lines(records: Sequence[DeployRecord]) -> list[str]:
    """The table ``deploys:list`` prints: one row per deploy, newest first."""
    rows = [("ID", "STATUS", "STARTED (UTC)", "DURATION", "IMAGE", "ERROR")]
    for record in records:
        image = (record.image or "-").removeprefix("sha256:")[:12]
        rows.append(
            (
                str(record.id),
                record.status,
                _when(record.started),
                _seconds(record.duration),
                image,
                record.error or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        (
            "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
            + "  "
            + row[-1]
        ).rstrip()
        for row in rows
    ]


def show_lines(record: DeployRecord, events: Sequence[Event]) -> list[tuple[str, str]]:
    """``deploys:show``'s rows: (label, value)."""
    from ..events import PhaseStarted, TaskFinished, TaskStarted

    request = record.request
    rows = [
        ("Status", record.status),
        ("Started", f"{_when(record.started)} UTC"),
        ("Finished", f"{_when(record.finished)} UTC" if record.finished else "-"),
        ("Duration", _seconds(record.duration)),
        ("Image", record.image or "-"),
        ("Source", request.get("source") or "-"),
        ("From image", request.get("image") or "-"),
    ]
    if record.error:
        rows.append(("Error", record.error))
    if record.failed_phase:
        rows.append(("Failed phase", record.failed_phase))
    skipped = [e.phase for e in events if isinstance(e, PhaseStarted) and e.skipped]
    if skipped:
        rows.append(("Skipped", ", ".join(skipped)))
    started: dict[str, TaskStarted] = {}
    for event in events:
        if isinstance(event, TaskStarted):
            started[event.container_id] = event
        elif isinstance(event, TaskFinished):
            task = started.get(event.container_id)
            command = task.command if task is not None else "?"
            status = (
                "timed out or stopped"
                if event.exit_status < 0
                else f"exit status {event.exit_status}"
            )
            rows.append((f"Task {event.phase}", f"{command} ({status}, {event.duration:.1f} s)"))
    kept = f"{record.output_bytes} bytes" + (" (truncated)" if record.truncated else "")
    rows.append(("Output kept", kept))
    return rows


def replay(events: Sequence[Event], output: Output, phase: str | None = None) -> int:
    """Print recorded events as the deploy printed them; only ``phase``'s task output (with its
    start and end lines) when given.  Returns how many lines were printed."""
    from ..events import Line, TaskOutput, Truncated

    printed = 0
    for event in events:
        if isinstance(event, TaskOutput):
            if phase is None or event.phase == phase:
                output.task_output(event.phase, event.stream, event.line)
                printed += 1
        elif isinstance(event, Truncated):
            if phase is None or printed:
                output.error(f"(output truncated here: {event.kept_bytes} bytes were kept)")
                printed += 1
        elif isinstance(event, Line) and phase is None:
            style = {
                "step": output.step,
                "section": output.section,
                "info": output.info,
                "error": output.error,
                "build": output.task_stdout,
                "raw": output.raw,
            }.get(event.style, output.info)
            style(event.text)
            printed += 1
    return printed


def _app_and_id(
    ctx: click.Context, app: str, deploy_id: str | None
) -> tuple[DeployRecord, list[Event]]:
    from .. import history
    from ..apps import AppRegistry
    from ..cli import state_root

    root = state_root(ctx)
    AppRegistry(root).require(app)
    record = history.get_deploy(root, app, deploy_id)
    return record, list(history.read_events(root, app, record.id))


@hookimpl
def register_commands(cli: click.Group) -> None:
    format_option = click.option(
        "--format", "fmt", type=click.Choice(["stdout", "json"]), default="stdout"
    )

    @cli.command("deploys:list")
    @click.argument("app")
    @format_option
    @click.pass_context
    def deploys_list(ctx: click.Context, app: str, fmt: str) -> None:
        """List the recorded deploys of APP, newest first."""
        from .. import history
        from ..apps import AppRegistry
        from ..cli import state_root
        from ..output import Output

        root = state_root(ctx)
        AppRegistry(root).require(app)
        records, warnings = history.list_deploys(root, app)
        output = Output()
        for warning in warnings:
            output.error(warning)
        if fmt == "json":
            output.raw(json.dumps([r.to_json() for r in records]))
            return
        output.section(f"{app} deploys")
        if not records:
            output.info("No deploys recorded")
            return
        for line in list_lines(records):
            output.raw(line)

    @cli.command("deploys:show")
    @click.argument("app")
    @click.argument("deploy_id", metavar="[ID]", required=False)
    @format_option
    @click.pass_context
    def deploys_show(ctx: click.Context, app: str, deploy_id: str | None, fmt: str) -> None:
        """Show one recorded deploy of APP (the newest without ID): outcome, image, tasks."""
        from ..output import Output

        record, events = _app_and_id(ctx, app, deploy_id)
        output = Output()
        if fmt == "json":
            output.raw(json.dumps(record.to_json()))
            return
        output.section(f"{app} deploy {record.id}")
        rows = show_lines(record, events)
        width = max(len(label) for label, _ in rows) + 1
        for label, value in rows:
            output.info(f"{label + ':':<{width}} {value}")

    @cli.command("deploys:logs")
    @click.argument("app")
    @click.argument("deploy_id", metavar="[ID]", required=False)
    @click.option("--phase", help="Only this phase's task output (predeploy, release, ...).")
    @click.pass_context
    def deploys_logs(
        ctx: click.Context, app: str, deploy_id: str | None, phase: str | None
    ) -> None:
        """Replay the output of a recorded deploy of APP (the newest without ID)."""
        from .. import history
        from ..output import Output

        _, events = _app_and_id(ctx, app, deploy_id)
        if phase is not None:
            ran = history.phases_of(events)
            if phase not in (*PHASES, *ran):
                raise UsageError(f"Unknown phase {phase!r}: expected one of {', '.join(PHASES)}")
        replay(events, Output(), phase)

    @cli.command("deploys:retry")
    @click.argument("app")
    @click.argument("deploy_id", metavar="[ID]", required=False)
    @click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Config value.")
    @click.option("--env-file", type=click.Path(path_type=Path), help="KEY=VALUE lines.")
    @click.pass_context
    def deploys_retry(
        ctx: click.Context,
        app: str,
        deploy_id: str | None,
        env: tuple[str, ...],
        env_file: Path | None,
    ) -> None:
        """Run the failed newest deploy of APP again from its failed phase, on its image."""
        from .. import options
        from ..apps import AppRegistry
        from ..cli import long_running, state_root
        from ..retry import retry

        root = state_root(ctx)
        AppRegistry(root).require(app)
        long_running()
        retry(app, deploy_id, root=root, env=options.config_values(env, env_file))
