"""Parse a Procfile and expand its commands the way Dokku does, through procfile-util.

Dokku validates Procfiles with ``procfile-util check`` and gets a command with ``procfile-util
show --default-port 5000 --env-file <app config>``, both in procfile-util's non-strict mode.
:func:`parse_procfile` applies the same line rules; :func:`expand_command` the same variable
expansion (Go's ``os.Expand``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .appjson import GO_WHITESPACE, decode_utf8
from .errors import CommandError, ParseError
from .models import Procfile, ProcfileEntry

__all__ = ["MAX_PROCESS_NAME_LENGTH", "MAX_PROCFILE_BYTES", "expand_command", "parse_procfile"]

#: procfile-util refuses longer process names (they could not be DNS labels).
MAX_PROCESS_NAME_LENGTH = 63

#: Procfiles larger than this are refused where they are read (a source tree, an image),
#: before more than this and one byte is read: 1 MiB, as app.json's limit.
MAX_PROCFILE_BYTES = 1024 * 1024

# Go's regexp ``\s`` is ASCII-only ([\t\n\f\r ]); Python's would also match \v and Unicode
# spaces, which procfile-util leaves in the command.
_S = r"[\t\n\f\r ]"
_COMMAND_LINE = re.compile(rf"([A-Za-z0-9_-]+){_S}*:{_S}*(.+)")
# Greedy, so a command loses everything from its *last* whitespace-then-comment marker.
_TRAILING_HASH_COMMENT = re.compile(rf"(.*){_S}#.+")
_TRAILING_SLASH_COMMENT = re.compile(rf"(.*){_S}//.+")

# os.Expand's single-character names, and the characters of an ordinary name.
_SPECIAL_NAMES = frozenset("*#$@!?-0123456789")
_NAME_RUN = re.compile(r"[A-Za-z0-9_]*")


def parse_procfile(data: bytes | str, filename: str = "Procfile") -> Procfile:
    """Parse a Procfile with procfile-util's non-strict rules; entries come back sorted by name.

    Each line is stripped of whitespace (Go's ``strings.TrimSpace``); empty lines and lines
    starting with ``#`` or ``//`` are skipped.  Every other line must be ``name: command`` with
    a name of letters, digits, ``_`` and ``-`` (at most 63, and unique).  A trailing comment is
    cut from the command: from the last whitespace followed by ``#``, else from the last
    whitespace followed by ``//`` (so ``curl http://x`` keeps its URL).  Only ``\\n`` ends a
    line; a lone ``\\r`` does not.

    Raises :class:`ParseError` with the line number for an invalid line, a name too long or
    repeated, a comment in place of the command, or an empty command; and for a file without
    entries or (given ``bytes``) one that is not UTF-8.  A leading UTF-8 byte order mark is
    accepted, where procfile-util would call that first line invalid.
    """
    text = decode_utf8(data, filename) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    entries: list[ProcfileEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(GO_WHITESPACE)
        if not line or line.startswith(("#", "//")):
            continue
        match = _COMMAND_LINE.fullmatch(line)
        if match is None:
            raise ParseError(filename, "invalid line (expected 'name: command')", line=number)
        name, command = match.groups()
        if len(name) > MAX_PROCESS_NAME_LENGTH:
            detail = f"process name over {MAX_PROCESS_NAME_LENGTH} characters ({len(name)})"
            raise ParseError(filename, detail, line=number)
        if name in seen:
            detail = f"process names must be unique ({name!r} is also on line {seen[name]})"
            raise ParseError(filename, detail, line=number)
        seen[name] = number
        command = _strip_trailing_comment(command).strip(GO_WHITESPACE)
        if command.startswith(("#", "//")):
            raise ParseError(filename, "comment specified in place of command", line=number)
        if not command:
            raise ParseError(filename, "no command specified", line=number)
        if "\x00" in command:
            raise ParseError(filename, "the command contains a NUL character", line=number)
        entries.append(ProcfileEntry(name=name, command=command, line=number))
    if not entries:
        raise ParseError(filename, "no entries found")
    # Names are ASCII, so str ordering is procfile-util's byte ordering.
    return Procfile(entries=sorted(entries, key=lambda entry: entry.name))


def _strip_trailing_comment(command: str) -> str:
    for pattern in (_TRAILING_HASH_COMMENT, _TRAILING_SLASH_COMMENT):
        match = pattern.fullmatch(command)
        if match is not None:
            return match.group(1)
    return command


def command_words(command: str, shown: str, where: str) -> tuple[str, ...]:
    """``command`` split into words with shell quoting rules, as Dokku's ``shellquote.Split``.

    ``shown`` is the command as an error quotes it (as written, before config values were
    expanded into it); ``where`` says what the words are for (``the web process``).

    :raises CommandError: unbalanced quotes, or no words at all.
    """
    import shlex

    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise CommandError(f"Cannot split command for {where}: {exc}: {shown}") from None
    if not words:
        raise CommandError(f"Empty command for {where}: {shown!r}")
    return tuple(words)


def expand_command(
    command: str, env: Mapping[str, str], process_type: str, port: int = 5000
) -> str:
    """Expand ``$NAME`` and ``${NAME}`` in a Procfile command as ``procfile-util show`` does.

    A name is looked up in ``env`` first; then ``PORT`` is ``str(port)`` and ``PS`` is
    ``process_type``; anything else becomes the empty string.  The syntax is Go's
    ``os.Expand``, exactly:

    - ``$NAME``: the longest run of ASCII letters, digits and ``_`` after the ``$``;
    - ``$*``, ``$#``, ``$$``, ``$@``, ``$!``, ``$?``, ``$-`` and ``$0`` .. ``$9`` are
      one-character names (so ``$$`` and ``$1`` become empty, and ``$10`` is ``$1`` then
      ``0``);
    - ``${NAME}``: everything up to the first ``}`` is the name, whatever it contains, so
      ``${VAR:-default}`` looks up ``VAR:-default`` (and becomes empty);
    - bad syntax is eaten: ``${}`` disappears, and a ``${`` with no ``}`` after it loses the
      ``${`` while the rest of the text stays;
    - a ``$`` followed by anything else (a space, ``'``, ``/``, a non-ASCII letter), or at the
      very end, is kept as it is.

    ``$(`` is always kept, so command substitution reaches the shell: procfile-util means to
    protect it too, by swapping it for a placeholder variable before expanding.  Deviation:
    we split the command at each ``$(`` and expand the pieces in between, which differs only
    in contrived overlaps (``${A$(b)}``, ``$$(``).  In the procfile-util source we read, the
    placeholder is only resolved with ``--allow-getenv``, which Dokku does not pass, so Dokku
    itself appears to turn ``$(date)`` into ``date)``; we keep ``$(date)``.
    """

    def lookup(name: str) -> str:
        if name in env:
            return env[name]
        if name == "PORT":
            return str(port)
        if name == "PS":
            return process_type
        return ""

    return "$(".join(_go_expand(piece, lookup) for piece in command.split("$("))


def _go_expand(text: str, mapping: Callable[[str], str]) -> str:
    """Go's ``os.Expand(text, mapping)``."""
    out: list[str] = []
    copied_to = 0  # text[copied_to:] is still to be copied to out
    j = text.find("$")
    # A "$" in the last position is never a reference, so it is copied like any other text.
    while 0 <= j < len(text) - 1:
        out.append(text[copied_to:j])
        name, width = _shell_name(text, j + 1)
        if name:
            out.append(mapping(name))
        elif width == 0:
            out.append("$")  # valid syntax, but no name: the "$" stays
        # else: invalid syntax, and the characters are eaten
        copied_to = j + width + 1
        j = text.find("$", copied_to)
    out.append(text[copied_to:])
    return "".join(out)


def _shell_name(text: str, start: int) -> tuple[str, int]:
    """The variable name at ``text[start:]`` (just after a ``$``) and how many characters it
    spans; an empty name with a non-zero width is bad syntax (Go's ``getShellName``)."""
    char = text[start]
    if char == "{":
        if len(text) - start > 2 and text[start + 1] in _SPECIAL_NAMES and text[start + 2] == "}":
            return text[start + 1], 3
        close = text.find("}", start + 1)
        if close < 0:
            return "", 1  # "${" with no closing brace
        if close == start + 1:
            return "", 2  # "${}"
        return text[start + 1 : close], close - start + 1
    if char in _SPECIAL_NAMES:
        return char, 1
    match = _NAME_RUN.match(text, start)
    end = match.end() if match is not None else start
    return text[start:end], end - start
