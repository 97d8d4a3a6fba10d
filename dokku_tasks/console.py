"""The ``dokku-tasks`` console script.

``dokku-tasks --help`` is answered from the command index (:mod:`dokku_tasks.command_index`)
while it is current, before click or any other part of the command line is imported: the
interpreter's own start-up is then most of what the help costs.  Everything else goes to
:func:`dokku_tasks.cli.main`.
"""

from __future__ import annotations

import gc
import sys

_HELP_FLAGS = (["--help"], ["-h"])


def main() -> None:
    """The console script's entry point."""
    # No garbage collection while the command starts (see dokku_tasks.cli.main): importing the
    # CLI itself is the first thing that would pay for it.
    gc.disable()
    if sys.argv[1:] in _HELP_FLAGS:
        from .command_index import cached_help

        text = cached_help()
        if text is not None:
            try:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
            except OSError:
                # Nobody reads (`| head`) or the stream is full: nothing else to do.
                pass
            return
    from .cli import main as cli_main

    cli_main()
