"""Dokku-style output lines, written and flushed one line at a time."""

from __future__ import annotations

import sys
from typing import TextIO

import attrs

INDENT = "       "
ERROR_PREFIX = " !     "


@attrs.define
class Output:
    """Where a command's progress goes.  ``quiet`` drops everything but errors."""

    out: TextIO = attrs.field(factory=lambda: sys.stdout)
    err: TextIO = attrs.field(factory=lambda: sys.stderr)
    quiet: bool = False

    def _write(self, stream: TextIO, line: str) -> None:
        if self.quiet and stream is self.out:
            return
        try:
            stream.write(line + "\n")
            stream.flush()
        except UnicodeEncodeError:
            # A terminal or pipe that cannot show a character still gets the line.
            encoding = getattr(stream, "encoding", None) or "ascii"
            stream.write(line.encode(encoding, "replace").decode(encoding) + "\n")
            stream.flush()
        except BrokenPipeError:
            # Nobody reads any more (``| head``): the deploy must still finish, so the lines
            # are dropped rather than the deploy stopped half-way.
            if stream is self.out:
                self.quiet = True

    def step(self, message: str) -> None:
        """``-----> message``: a step of the deploy."""
        self._write(self.out, f"-----> {message}")

    def section(self, message: str) -> None:
        """``=====> message``: a section header."""
        self._write(self.out, f"=====> {message}")

    def info(self, message: str) -> None:
        """A detail line, indented 7 spaces."""
        self._write(self.out, f"{INDENT}{message}")

    def error(self, message: str) -> None:
        """`` !     message`` on stderr."""
        self._write(self.err, f"{ERROR_PREFIX}{message}")

    def task_stdout(self, line: str) -> None:
        """A line a task printed on stdout (blank lines dropped, as Dokku)."""
        if line.strip():
            self._write(self.out, f"{INDENT}{line}")

    def task_stderr(self, line: str) -> None:
        """A line a task printed on stderr, as `` !     line`` on stderr."""
        if line.strip():
            self._write(self.err, f"{ERROR_PREFIX}{line}")

    def raw(self, line: str) -> None:
        """A line as it is (report values, JSON)."""
        self._write(self.out, line)
