"""``python -m dokku_tasks``: the ``dokku-tasks`` command."""

from __future__ import annotations

from .console import main

if __name__ == "__main__":
    main()
