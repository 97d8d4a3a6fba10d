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
        stream.write(line + "\n")
        stream.flush()

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
