"""In-process runs of the CLI with click's runner, for the Docker-free command tests.

``builtins_only`` makes a test hermetic: the built-in plugins only (no installed plugin, none
disabled), and ``DOKKU_TASKS_ROOT`` at the test's state root with the apps it names created.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dokku_tasks import manager
from dokku_tasks.cli import cli


def builtins_only(monkeypatch: pytest.MonkeyPatch, root: Path, *apps: str) -> None:
    """The built-ins, no installed plugin, the state root ``root`` with ``apps`` in it."""
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(()))
    monkeypatch.delenv(manager.DISABLE_ENV, raising=False)
    monkeypatch.setenv("DOKKU_TASKS_ROOT", str(root))
    for app in apps:
        (root / "apps" / app).mkdir(parents=True)


def run(*args: str) -> Result:
    """``dokku-tasks ARGS...`` in this process."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def ok(*args: str) -> str:
    """``dokku-tasks ARGS...``, which must succeed with nothing on stderr; its stdout."""
    result = run(*args)
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    return result.stdout
