"""Dokku-style output lines, written and flushed one line at a time."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, TextIO

import attrs

from .text import printable

if TYPE_CHECKING:
    from .events import Event, Sink

INDENT = "       "
ERROR_PREFIX = " !     "


@attrs.define
class Output:
    """Where a command's progress goes: Dokku-framed text, and events for every sink.

    ``quiet`` drops every text line but errors; ``text=False`` prints nothing (the events
    still go to the sinks: ``deploy --format jsonl``).  Each line printed is also a
    :class:`~dokku_tasks.events.Line` or :class:`~dokku_tasks.events.TaskOutput` event; the
    pipeline adds structured events with :meth:`emit`.  A sink that raises is dropped, so a
    broken sink never stops a deploy.
    """

    out: TextIO = attrs.field(factory=lambda: sys.stdout)
    err: TextIO = attrs.field(factory=lambda: sys.stderr)
    quiet: bool = False
    text: bool = True
    sinks: list[Sink] = attrs.field(factory=list)

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every sink, in order."""
        for sink in list(self.sinks):
            try:
                sink(event)
            except Exception:
                self.sinks.remove(sink)

    def with_sink(self, sink: Sink) -> Output:
        """This output with one more sink (the same streams; ``self`` is left as it is)."""
        return attrs.evolve(self, sinks=[*self.sinks, sink])

    def _line(self, style: str, text: str) -> None:
        if self.sinks:
            from .events import Line

            self.emit(Line(style, text))

    def write(self, stream: TextIO, line: str) -> None:
        """Write ``line`` as it is to ``stream`` (this output's ``out`` or ``err``), no event.

        Nothing with ``text=False``; nothing on ``out`` when quiet; a stream nobody reads any
        more is dropped, never fatal.
        """
        if not self.text:
            return
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
        self._line("step", message)
        self.write(self.out, f"-----> {printable(message)}")

    def section(self, message: str) -> None:
        """``=====> message``: a section header."""
        self._line("section", message)
        self.write(self.out, f"=====> {printable(message)}")

    def info(self, message: str) -> None:
        """A detail line, indented 7 spaces."""
        self._line("info", message)
        self.write(self.out, f"{INDENT}{printable(message)}")

    def error(self, message: str) -> None:
        """`` !     message`` on stderr."""
        self._line("error", message)
        self.write(self.err, f"{ERROR_PREFIX}{printable(message)}")

    def task_stdout(self, line: str) -> None:
        """A line the build (or a task outside a phase) printed on stdout (blank lines
        dropped, as Dokku).

        Shown as :func:`task_line` makes it safe: colours stay, nothing else moves the cursor.
        """
        line = task_line(line)
        if line.strip():
            self._line("build", line)
            self.write(self.out, f"{INDENT}{line}")

    def task_stderr(self, line: str) -> None:
        """A line printed on stderr, as `` !     line`` on stderr (as task_stdout)."""
        line = task_line(line)
        if line.strip():
            self._line("error", line)
            self.write(self.err, f"{ERROR_PREFIX}{line}")

    def task_output(self, phase: str, stream: str, line: str) -> None:
        """A line the task of ``phase`` wrote on ``stream`` (``stdout`` or ``stderr``): shown
        as :meth:`task_stdout` / :meth:`task_stderr` show it, one
        :class:`~dokku_tasks.events.TaskOutput` event."""
        shown = task_line(line)
        if not shown.strip():
            return
        if self.sinks:
            from .events import TaskOutput

            self.emit(TaskOutput(phase, stream, shown))
        if stream == "stderr":
            self.write(self.err, f"{ERROR_PREFIX}{shown}")
        else:
            self.write(self.out, f"{INDENT}{shown}")

    def raw(self, line: str) -> None:
        """A line as it is (report values, JSON)."""
        self._line("raw", line)
        self.write(self.out, line)


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
