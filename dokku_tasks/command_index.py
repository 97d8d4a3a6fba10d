"""A cached list of the commands plugins bring, so ``dokku-tasks --help`` need not load them.

Listing the plugins' commands means importing every plugin (and, through them, most of the
library), which costs more than the rest of ``--help`` together.  The listing only needs each
command's name and help text, so the first ``--help`` writes them to a small JSON file and later
ones read it back.

The file is trusted only while nothing that could change the listing has changed.  It records
the modification time of

* every directory on ``sys.path`` (installing or removing a distribution, and with it an entry
  point, changes its directory's listing), and
* every source file that was imported while the plugins were loaded and their commands built
  (a plugin edited in place, an editable install, the built-in plugins themselves),

together with the interpreter, ``sys.path`` and ``$DOKKU_TASKS_DISABLE_PLUGINS``.  Any
difference, an unreadable or malformed file, or a file of another format means the plugins are
loaded as before and the file is rewritten.  A cache that cannot be written is not an error:
``--help`` is then as slow as it was, never wrong.

Only the help uses the index: the listing of commands, and the whole text of
``dokku-tasks --help`` (per terminal width), which :mod:`dokku_tasks.console` prints without
importing click.  Running a plugin's command, or ``NS:set --help``, always loads the plugins
themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FORMAT = 1
CACHE_ENV = "XDG_CACHE_HOME"
_DISABLE_ENV = "DOKKU_TASKS_DISABLE_PLUGINS"
_FILE_NAME = "plugin-commands.json"


def cache_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where the index lives: ``$XDG_CACHE_HOME/dokku-tasks/``, else ``~/.cache/dokku-tasks/``."""
    env = os.environ if environ is None else environ
    base = env.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dokku-tasks" / _FILE_NAME


def context_key(environ: Mapping[str, str] | None = None) -> list[str]:
    """What the listing depends on besides files: the interpreter, its path, disabled plugins."""
    env = os.environ if environ is None else environ
    return [sys.executable, env.get(_DISABLE_ENV, ""), *sys.path]


def stamps(paths: Iterable[str]) -> dict[str, int]:
    """The modification time (ns) of each path that exists; missing ones are left out."""
    found = {}
    for path in paths:
        try:
            found[path] = os.stat(path).st_mtime_ns
        except OSError:
            continue
    return found


def watched_paths(module_files: Iterable[str]) -> list[str]:
    """The directories on ``sys.path`` and the given source files, minus the standard library.

    The standard library changes only with the interpreter, which the key already names.
    """
    stdlib = os.path.dirname(os.__file__) + os.sep
    paths = [entry for entry in sys.path if entry and os.path.isdir(entry)]
    paths += sorted(
        {
            path
            for path in module_files
            if not path.startswith(stdlib) or "-packages" + os.sep in path
        }
    )
    return paths


def loaded_module_files() -> set[str]:
    """The source files of every module imported so far."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            files.add(path)
    return files


def read(path: Path, key: list[str]) -> list[dict[str, Any]] | None:
    """The cached commands, or None when the file is missing, malformed or out of date."""
    data = _current(path, key)
    return None if data is None else data["commands"]


def _current(path: Path, key: list[str]) -> dict[str, Any] | None:
    """The whole index when it is well formed and current, else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    recorded = data.get("stamps")
    commands = data.get("commands")
    if not isinstance(recorded, dict) or not isinstance(commands, list):
        return None
    if not recorded or stamps(recorded) != recorded:
        return None
    if not all(
        isinstance(entry, dict) and isinstance(entry.get("name"), str) for entry in commands
    ):
        return None
    return data


def terminal_columns() -> int:
    """The terminal's width, which click lays the help out for (it reads the same)."""
    import shutil

    return shutil.get_terminal_size().columns


def cached_help(path: Path | None = None, key: list[str] | None = None) -> str | None:
    """The text of ``dokku-tasks --help`` for this terminal's width, while the index is
    current; None otherwise."""
    data = _current(path or cache_file(), context_key() if key is None else key)
    if data is None:
        return None
    texts = data.get("help")
    text = texts.get(str(terminal_columns())) if isinstance(texts, dict) else None
    return text if isinstance(text, str) else None


def store_help(text: str, path: Path | None = None, key: list[str] | None = None) -> None:
    """Keep the top-level help ``text`` for this terminal's width in the current index.

    Only in an index that is current: the same ``--help`` just read or wrote it, so the text
    was made from what its stamps describe.  Anything else leaves the file alone.
    """
    path = path or cache_file()
    key = context_key() if key is None else key
    data = _current(path, key)
    if data is None:
        return
    texts = data.get("help")
    texts = dict(texts) if isinstance(texts, dict) else {}
    texts[str(terminal_columns())] = text
    _store({**data, "help": texts}, path)


def write(path: Path, key: list[str], paths: Iterable[str], commands: list[dict[str, Any]]) -> None:
    """Store the index atomically; a failure to write leaves things as they were."""
    _store({"format": FORMAT, "key": key, "stamps": stamps(paths), "commands": commands}, path)


def _store(data: dict[str, Any], path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
