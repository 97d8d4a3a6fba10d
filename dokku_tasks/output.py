"""Dokku-style output lines, written and flushed one line at a time."""

from __future__ import annotations

import os
import re
import sys
from typing import TextIO

import attrs

from .text import printable

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
        except OSError:
            # Nobody reads any more (``| head``) or the stream cannot take more (``> /dev/full``):
            # the deploy must still finish, so the lines are dropped rather than the deploy
            # stopped half-way.  Bytes the stream still buffers would fail every later write.
            discard(stream)
            if stream is self.out:
                self.quiet = True

    # Our own lines can quote what a user wrote (a command, a path): every control character
    # in them is shown as an escape, so no quoted text can break or overwrite a line.

    def step(self, message: str) -> None:
        """``-----> message``: a step of the deploy."""
        self._write(self.out, f"-----> {printable(message)}")

    def section(self, message: str) -> None:
        """``=====> message``: a section header."""
        self._write(self.out, f"=====> {printable(message)}")

    def info(self, message: str) -> None:
        """A detail line, indented 7 spaces."""
        self._write(self.out, f"{INDENT}{printable(message)}")

    def error(self, message: str) -> None:
        """`` !     message`` on stderr."""
        self._write(self.err, f"{ERROR_PREFIX}{printable(message)}")

    def task_stdout(self, line: str) -> None:
        """A line a task (or the build) printed on stdout (blank lines dropped, as Dokku).

        Shown as :func:`task_line` makes it safe: colours stay, nothing else moves the cursor.
        """
        line = task_line(line)
        if line.strip():
            self._write(self.out, f"{INDENT}{line}")

    def task_stderr(self, line: str) -> None:
        """A line a task printed on stderr, as `` !     line`` on stderr (as task_stdout)."""
        line = task_line(line)
        if line.strip():
            self._write(self.err, f"{ERROR_PREFIX}{line}")

    def raw(self, line: str) -> None:
        """A line as it is (report values, JSON)."""
        self._write(self.out, line)


def discard(stream: TextIO) -> None:
    """Point ``stream`` at the null device, so what it buffers and later lines go nowhere."""
    try:
        fileno = stream.fileno()
    except (OSError, ValueError):
        return  # not a file (a StringIO, a closed stream): nothing is buffered below it
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)


#: An SGR sequence (colours, bold): it changes how text looks, never where it goes.
_SGR = re.compile(r"(\x1b\[[0-9;:]*m)")
#: Escape sequences (SGR ones are kept by the caller): CSI (cursor moves, erasing), OSC (titles, links), and the
#: two-character ones.  An OSC ends at BEL or ST, or runs to the end of the line.
_OTHER_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]"
)


def task_line(line: str) -> str:
    """A line of task or build output, made safe to show after our indent.

    - Text before the last carriage return is dropped, as a terminal would overwrite it (a
      progress bar shows its last state); so ``"\r=====> fake"`` stays indented task output.
    - SGR sequences (colours) stay; every other escape sequence is removed.
    - Any other control character but TAB is shown as an escape (``\x00``).
    """
    if line.isprintable():
        return line
    if "\r" in line:
        line = next((part for part in reversed(line.split("\r")) if part), "")
    line = _OTHER_ESCAPE.sub(lambda m: m[0] if _SGR.fullmatch(m[0]) else "", line)
    return "".join(
        part if index % 2 else printable(part, keep="\t")
        for index, part in enumerate(_SGR.split(line))
    )
