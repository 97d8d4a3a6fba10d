"""dokku-tasks plugin: freeze an app's deploys, and keep an audit log of every attempt.

Everything goes through the public hooks: the ``freeze`` settings namespace
(``register_settings``: ``frozen`` and ``reason``, per app or ``--global``), the refusal in
``deploy_started`` (before anything is built), a step printed through the deploy's output, and
a ``freeze:log APP`` command (``register_commands``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dokku_tasks import hookimpl
from dokku_tasks.errors import DeployRefusedError, DokkuTasksError, PropertyError
from dokku_tasks.output import Output
from dokku_tasks.properties import GLOBAL, PropertyStore
from dokku_tasks.settings import Namespace, Property, computed

if TYPE_CHECKING:
    from dokku_tasks.hooks import Hooks
    from dokku_tasks.pipeline import DeployRequest

__version__ = "0.1.0"

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def _validate_frozen(value: str, plugins: Hooks | None) -> str:
    word = value.strip().lower()
    if word not in _TRUE | _FALSE:
        raise PropertyError(f"Invalid frozen value {value!r}: expected true or false")
    return "true" if word in _TRUE else "false"


FREEZE = Namespace(
    name="freeze",
    label="Freeze",
    properties=(
        Property("frozen", default="false", validator=_validate_frozen),
        Property("reason"),
    ),
)


def is_frozen(store: PropertyStore, app: str) -> bool:
    """Whether deploys of ``app`` are frozen (its own value, else the global one)."""
    return computed(store, FREEZE, app, "frozen") == "true"


def audit_log(root: Path) -> Path:
    """Where the audit log of the state root ``root`` is."""
    return root / "freeze" / "audit.log"


def record(root: Path, app: str, verdict: str, reason: str = "") -> None:
    """Append one attempt to the audit log (a line: time, app, verdict, reason)."""
    path = audit_log(root)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = " ".join(part for part in (stamp, app, verdict, reason) if part)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line.replace("\n", " ") + "\n")
    except OSError as exc:
        raise DokkuTasksError(f"Cannot write the freeze audit log {path}: {exc.strerror}") from exc


@hookimpl
def register_settings(register: Callable[[Namespace], None]) -> None:
    register(FREEZE)


def is_watched(store: PropertyStore, app: str) -> bool:
    """Whether a ``frozen`` value is set for ``app`` or globally: then attempts are audited."""
    return bool(store.get(FREEZE.name, app, "frozen") or store.get(FREEZE.name, GLOBAL, "frozen"))


@hookimpl
def deploy_started(
    app: str, request: DeployRequest, properties: PropertyStore, output: Output
) -> None:
    # An app nobody ever froze is left alone: no line, no log entry.
    if not is_watched(properties, app):
        return
    output.step(f"Checking the deploy freeze of {app}")
    if not is_frozen(properties, app):
        record(properties.root, app, "allowed")
        return
    reason = computed(properties, FREEZE, app, "reason")
    record(properties.root, app, "refused", reason)
    raise DeployRefusedError(f"{app} is frozen" + (f": {reason}" if reason else ""))


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("freeze:log")
    @click.argument("app")
    @click.pass_context
    def freeze_log(ctx: click.Context, app: str) -> None:
        """Print the deploy attempts of APP that the freeze plugin recorded."""
        from dokku_tasks.apps import AppRegistry
        from dokku_tasks.cli import state_root

        root = state_root(ctx)
        AppRegistry(root).require(app)
        output = Output()
        try:
            lines = audit_log(root).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        except OSError as exc:
            raise DokkuTasksError(f"Cannot read the freeze audit log: {exc.strerror}") from exc
        for line in lines:
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] == app:
                output.raw(line)
