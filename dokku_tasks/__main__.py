"""``python -m dokku_tasks``: the ``dokku-tasks`` command."""

from __future__ import annotations

from .cli import cli

if __name__ == "__main__":
    cli.main(prog_name="dokku-tasks")
