"""Pure parsers for the values ``deploy`` takes on the command line.

``-e KEY=VALUE``, the contents of an ``--env-file``, ``-v HOST:CONTAINER[:ro]`` and
``--task-timeout SECONDS``.  Nothing here touches disk or the engine; every bad value raises a
:class:`~dokku_tasks.errors.DokkuTasksError` whose message fits on one line.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ParseError, UsageError

if TYPE_CHECKING:
    from .models import Mount

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Checked on every value, because neither the engine nor a process env can carry a NUL byte.
_NUL = "\x00"
_NO_TIMEOUT = frozenset({"", "none"})


def is_env_key(key: str) -> bool:
    """Whether ``key`` is a valid environment variable name (``[A-Za-z_][A-Za-z0-9_]*``)."""
    return _KEY.fullmatch(key) is not None


def parse_env_assignment(text: str) -> tuple[str, str]:
    """Parse one ``-e KEY=VALUE``: the key before the first ``=``, the value (maybe empty) after.

    :raises UsageError: no ``=``, an invalid key, or a NUL byte in the value.
    """
    key, sep, value = text.partition("=")
    if not sep:
        raise UsageError(f"Invalid -e value {_shown(text)}: expected KEY=VALUE")
    if not is_env_key(key):
        raise UsageError(
            f"Invalid -e value {_shown(text)}: the key must match [A-Za-z_][A-Za-z0-9_]*"
        )
    if _NUL in value:
        raise UsageError(f"Invalid -e value for {key}: the value contains a NUL byte")
    return key, value


def parse_env_assignments(texts: Iterable[str]) -> dict[str, str]:
    """Parse every ``-e`` value, in order; a later value for the same key wins."""
    return dict(parse_env_assignment(text) for text in texts)


#: An ``--env-file`` larger than this is refused after reading at most this and one byte, so
#: ``/dev/zero`` or a huge file never fills memory: 1 MiB, far beyond any real config.
MAX_ENV_FILE_BYTES = 1024 * 1024


def parse_env_file(text: str | bytes, filename: str) -> dict[str, str]:
    """Parse the contents of an env file; ``filename`` is what errors call it.

    One ``KEY=VALUE`` per line.  Blank lines and lines starting with ``#`` are skipped, an
    ``export `` prefix is allowed.  A value in single quotes is taken literally; in double
    quotes ``\\\\``, ``\\"`` and ``\\n`` are escapes (any other backslash stays as it is); after a
    closing quote only whitespace or a ``#`` comment may follow.  An unquoted value is trimmed
    and taken as it is, ``#`` included (as Docker's ``--env-file`` does).  A later line for the
    same key wins.

    :raises ParseError: naming ``filename`` and the 1-based line of the first bad line.
    """
    if isinstance(text, bytes):
        try:
            content = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = text.count(b"\n", 0, exc.start) + 1
            raise ParseError(filename, "not valid UTF-8", line=bad_line) from None
    else:
        content = text
    # An editor's byte-order mark is not part of the first key.
    content = content.removeprefix("\ufeff")
    env: dict[str, str] = {}
    # split("\n") rather than splitlines(): only a newline ends a line, so a stray form feed or
    # U+2028 inside a value cannot silently cut it in two.
    for number, raw_line in enumerate(content.split("\n"), start=1):
        line = raw_line.removesuffix("\r").strip()
        if not line or line.startswith("#"):
            continue
        parsed = _parse_env_line(line)
        if isinstance(parsed, str):
            raise ParseError(filename, parsed, line=number)
        env[parsed[0]] = parsed[1]
    return env


def _parse_env_line(line: str) -> tuple[str, str] | str:
    """``(key, value)`` for a good line; the problem, as a string, for a bad one."""
    if line.startswith("export") and line[6:7].isspace():
        line = line[6:].lstrip()
    key, sep, rest = line.partition("=")
    key = key.strip()
    if not sep:
        return f"expected KEY=VALUE, got {_shown(line)}"
    if not is_env_key(key):
        return f"invalid key {_shown(key)}: it must match [A-Za-z_][A-Za-z0-9_]*"
    rest = rest.strip()
    if rest[:1] == "'":
        end = rest.find("'", 1)
        if end < 0:
            return f"unterminated single quote in the value of {key}"
        value, tail = rest[1:end], rest[end + 1 :]
    elif rest[:1] == '"':
        parsed = _double_quoted(rest)
        if parsed is None:
            return f"unterminated double quote in the value of {key}"
        value, tail = parsed
    else:
        value, tail = rest, ""
    tail = tail.strip()
    if tail and not tail.startswith("#"):
        return f"unexpected text after the quoted value of {key}: {_shown(tail)}"
    if _NUL in value:
        return f"the value of {key} contains a NUL byte"
    return key, value


def _double_quoted(rest: str) -> tuple[str, str] | None:
    """The unescaped value of ``"..."`` at the start of ``rest`` and the text after it."""
    # One regular expression rather than a loop over characters: a stored config value may be
    # a megabyte long.  A backslash and the character after it are taken together, so an
    # escaped quote never ends the value; only \\, \" and \n are escapes, any other
    # backslash stays as it is.
    match = _DOUBLE_QUOTED.match(rest)
    if match is None:
        return None
    return _ESCAPE.sub(_unescape, match.group(1)), rest[match.end() :]


_DOUBLE_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ESCAPE = re.compile(r'\\(["\\n])')
_ESCAPED = {"\\": "\\", '"': '"', "n": "\n"}


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPED[match.group(1)]


def quote_env_value(value: str) -> str:
    """``value`` as a double-quoted env-file value that :func:`parse_env_file` reads back."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def merge_env(file_env: Mapping[str, str], cli_env: Mapping[str, str]) -> dict[str, str]:
    """The deploy's env: ``--env-file`` values with ``-e`` values laid over them."""
    return {**file_env, **cli_env}


def config_values(env: Iterable[str], env_file: Path | None) -> dict[str, str]:
    """The config values of ``--env-file`` and ``-e`` (which win), as ``deploy``, ``run`` and
    ``deploys:retry`` take them.

    :raises UsageError: the env file cannot be read, or a value is not ``KEY=VALUE``.
    :raises FileTooLargeError: the env file is over :data:`MAX_ENV_FILE_BYTES`.
    """
    from .locate import read_limited

    file_env: dict[str, str] = {}
    if env_file is not None:
        try:
            # At most the limit and one byte: a FIFO or /dev/zero never fills memory.
            data = read_limited(env_file, MAX_ENV_FILE_BYTES, "env file")
        except OSError as exc:
            raise UsageError(f"Cannot read env file {env_file}: {exc.strerror}") from None
        file_env = parse_env_file(data, str(env_file))
    return merge_env(file_env, parse_env_assignments(list(env)))


def parse_mount(spec: str) -> Mount:
    """Parse ``-v HOST:CONTAINER[:ro|:rw]`` into a :class:`~dokku_tasks.models.Mount`.

    Both paths must be absolute (a bare name would be a Docker named volume, and a relative path
    would depend on where the command runs); the container path cannot be ``/``.

    :raises UsageError: any other shape.
    """
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(
            f"Invalid -v value {_shown(spec)}: expected HOST:CONTAINER or HOST:CONTAINER:ro"
        )
    host, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise UsageError(f"Invalid -v value {_shown(spec)}: the mode must be ro or rw")
    for what, path in (("host", host), ("container", target)):
        if not path.startswith("/"):
            raise UsageError(f"Invalid -v value {_shown(spec)}: the {what} path must be absolute")
        if _NUL in path or any(ch in path for ch in "\n\r"):
            raise UsageError(
                f"Invalid -v value {_shown(spec)}: the {what} path contains a control character"
            )
    if posixpath.normpath(target) in ("/", "//"):
        raise UsageError(f"Invalid -v value {_shown(spec)}: cannot mount over /")
    # The records module builds many attrs classes: only a command that mounts needs it.
    from .models import Mount

    return Mount(source=host, target=target, read_only=mode == "ro")


def parse_task_timeout(text: str, *, allow_none: bool = True) -> float | None:
    """Parse a task timeout in seconds: a finite number above zero.

    With ``allow_none``, an empty value or ``none`` (any case) means "no timeout" and gives
    ``None``.

    :raises UsageError: anything else.
    """
    value = text.strip()
    if allow_none and value.lower() in _NO_TIMEOUT:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        hint = " (or none for no timeout)" if allow_none else ""
        raise UsageError(
            f"Invalid task timeout {_shown(text)}: expected a number of seconds above 0{hint}"
        )
    return seconds


def _shown(text: str) -> str:
    """``text`` quoted for an error line, shortened so the message stays one readable line."""
    if len(text) > 80:
        text = text[:77] + "..."
    return repr(text)
