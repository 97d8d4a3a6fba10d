"""Parse app.json the way Dokku reads it, keeping the parts deployment tasks use.

Dokku reads the file with tailscale/hujson's ``Standardize``, which turns JSONC (JSON with
comments and trailing commas) into plain JSON by overwriting comments and trailing commas with
spaces, and then with Go's ``encoding/json``.  This module does the same: :func:`_standardize`
blanks them (keeping every newline, so lines and columns stay where they were), and Python's
``json`` module parses the result.

What is honoured, as Dokku honours it:

- ``//`` line comments, ``/* */`` block comments, one trailing comma in an object or array;
- keys matched case-insensitively, with Go's folding (``"SCRIPTS"``, ``"PreDeploy"``);
- duplicate keys decoded in order into the same place, as Go does: a later string replaces an
  earlier one, a later object is merged into the earlier one, and ``null`` changes nothing;
- unknown keys ignored; an empty or whitespace-only file and a top-level ``null`` mean "no tasks".

Where this deliberately differs: a UTF-8 BOM is accepted, invalid UTF-8 is an error (Go would
quietly replace it), and an empty or whitespace-only script counts as absent.  In
``healthchecks``, what could never work is refused here rather than when the check runs (or
never): an unknown ``type``, a check of two kinds at once, a scheme other than http(s), a port
outside 1..65535, a ``null`` command word, a NUL in a command or path, and more than
:data:`MAX_HEALTHCHECK_SECONDS` seconds or attempts.
"""

from __future__ import annotations

import codecs
import json
import re
import string
from typing import Any, NoReturn, TypeAlias

from .errors import ParseError, over_the_limit
from .models import HEALTHCHECK_TYPES, SECRET_GENERATOR, AppJson, EnvVar, Healthcheck
from .options import is_env_key

__all__ = [
    "GO_WHITESPACE",
    "MAX_APP_JSON_BYTES",
    "MAX_HEALTHCHECK_SECONDS",
    "MAX_NESTING_DEPTH",
    "JSONValue",
    "decode_utf8",
    "parse_app_json",
    "parse_jsonc",
]

#: app.json files larger than this are refused before parsing.
MAX_APP_JSON_BYTES = 1024 * 1024

#: Objects and arrays nested deeper than this are refused (never a ``RecursionError``).
MAX_NESTING_DEPTH = 512

#: The largest number of seconds (or attempts) a healthcheck may give: a day.  Go would take
#: any int32, and a deploy would then wait for decades.
MAX_HEALTHCHECK_SECONDS = 86_400

#: The characters Go's ``strings.TrimSpace`` strips (``unicode.IsSpace``).  Python's
#: ``str.strip()`` also strips U+001C..U+001F, which Go keeps.
GO_WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)

#: A parsed JSON document as plain Python values (what ``json.loads`` would give).
# Quoted: the recursive union cannot be built at runtime on Python 3.10.
JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

# The largest value Go's ``int`` holds on the 64-bit hosts Dokku runs on.
_MAX_GO_INT = 2**63 - 1
# The smallest values Go's ``int32`` and ``int`` hold.
_MIN_GO_INT32 = -(2**31)
_MIN_GO_INT = -(2**63)

# What the standardizer looks at; everything between these is left to the json module.  A string
# ends at its line's end (JSON strings hold no raw line break), so an unclosed one is found here.
_TOKEN = re.compile(
    r'(?P<string>"[^"\\\r\n]*(?:\\[^\r\n][^"\\\r\n]*)*(?P<closed>")?)'
    r"|(?P<comment>//[^\n]*|/\*[\s\S]*?\*/)"
    r"|(?P<slash>/\*?)"
    r"|(?P<open>[\[{])"
    r"|(?P<close>[\]}])"
)
# A comma with nothing but whitespace before a closing bracket, after a value (not after
# ``[``, ``{``, ``:`` or another comma).  Strings are matched whole so that their commas stay.
_TRAILING_COMMA = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*"'
    r"|(?<=[^ \t\r\n,:\[{])([ \t\r\n]*),(?=[ \t\r\n]*[\]}])"
)
# A ``\u`` escape of a UTF-16 surrogate that is not part of a pair (Go decodes it to U+FFFD).
_HEX2 = "[0-9a-fA-F]{2}"
_ESCAPE = re.compile(
    rf"\\(?:u[dD][89abAB]{_HEX2}\\u[dD][c-fC-F]{_HEX2}|(u[dD][89a-fA-F]{_HEX2})|.)"
)
_CONSTANT = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(?P<word>NaN|Infinity)')
_NOT_NEWLINE = re.compile(r"[^\n]")
_SPACE = re.compile(r"[ \t\r\n]*")
_NUMBER = re.compile(r"-?[0-9][-+.0-9eE]*|-")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_CHARACTERS = "+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_PLAIN_KEY = re.compile(r"[\w-]+")

# What the json module's messages mean.
_EXPECTED = {
    "Expecting value": "a value",
    "Expecting property name enclosed in double quotes": "a string key or '}'",
    "Expecting ':' delimiter": "':'",
    "Expecting ',' delimiter": "','",
}

# Go's encoding/json folds a key by upper-casing ASCII and mapping every other rune r to
# ToUpper(ToLower(r)).  Only four non-ASCII letters fold onto ASCII, so they are the only ones
# that can match the (ASCII) field names Dokku declares; other characters can stay as they are.
_GO_FOLD = str.maketrans(
    string.ascii_lowercase + "\u212a\u017f\u0131\u0130", string.ascii_uppercase + "KSII"
)


def decode_utf8(data: bytes, filename: str) -> str:
    """Decode a file's bytes as UTF-8, dropping one leading byte order mark.

    Raises :class:`ParseError` at the line and column of the first byte that is not UTF-8.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
        line_start = data.rfind(b"\n", 0, bad) + 1
        line = data.count(b"\n", 0, bad) + 1
        # Everything before the first bad byte decodes, so the column counts characters.
        column = len(data[line_start:bad].decode("utf-8")) + 1
        detail = f"invalid UTF-8 (byte 0x{data[bad]:02x})"
        raise ParseError(filename, detail, line, column) from None


def parse_jsonc(data: bytes | str, filename: str = "app.json") -> JSONValue:
    """Parse a JSONC document (JSON plus comments and trailing commas) into Python values.

    ``bytes`` are decoded with :func:`decode_utf8`.  Duplicate keys: the last one wins, as with
    ``json.loads``.  A lone UTF-16 surrogate escape becomes U+FFFD, as in Go.  Every syntax
    error raises :class:`ParseError` with the 1-based line and column of the offending character.
    """
    text = decode_utf8(data, filename) if isinstance(data, bytes) else data
    value: JSONValue = _parse(text, filename, None)[1]
    return value


def parse_app_json(data: bytes, filename: str = "app.json") -> AppJson:
    """Parse the bytes of an app.json file into an :class:`AppJson`.

    Reads ``scripts.dokku.predeploy``, ``scripts.dokku.postdeploy``, ``scripts.postdeploy``
    (each a string; ``null`` is absent), ``formation.<type>.quantity`` (a non-negative
    integer; types without one are left out), ``healthchecks.<type>`` (an array of
    healthcheck objects, see :class:`~dokku_tasks.models.Healthcheck`) and ``env.<KEY>`` (a
    string or an object, see :class:`~dokku_tasks.models.EnvVar`; a key that is not a valid
    config key, a generator other than ``secret`` and a NUL in a value are errors).  Everything
    else is ignored.  An empty or whitespace-only file, and a top-level ``null``, give an empty
    ``AppJson()``.

    Raises :class:`ParseError` for a file over :data:`MAX_APP_JSON_BYTES`, invalid UTF-8, any
    JSONC syntax error, a top level that is not an object, and a known key of the wrong type;
    the message names the key path (``scripts.dokku.predeploy must be a string ...``) and,
    where there is one, the line and column.
    """
    if len(data) > MAX_APP_JSON_BYTES:
        raise ParseError(
            filename,
            f"file is {len(data)} bytes, {over_the_limit(MAX_APP_JSON_BYTES)}",
        )
    text = decode_utf8(data, filename)
    # Dokku checks strings.TrimSpace(content) == "" before parsing, with Go's idea of space.
    if not text.strip(GO_WHITESPACE):
        return AppJson()
    text, root = _parse(text, filename, _Object)
    return _Reader(text, filename).read(root)


# --------------------------------------------------------------------------------------------
# JSONC to JSON, and JSON to Python
# --------------------------------------------------------------------------------------------


def _standardize(text: str) -> tuple[str, tuple[str, int] | None]:
    """``text`` with comments and trailing commas overwritten with spaces (newlines kept).

    Also finds the first problem the json module would not report well, as a detail and an
    offset: an unterminated string or block comment, a ``/`` that starts no comment, or nesting
    deeper than :data:`MAX_NESTING_DEPTH` (which would exhaust the stack).  The text is cut off
    there, so that a syntax error before it is still reported first.  Lone surrogate escapes
    become ``\\ufffd`` (Go decodes them to U+FFFD; Python would keep them).
    """
    pieces: list[str] = []
    done = depth = 0
    problem: tuple[str, int] | None = None
    for match in _TOKEN.finditer(text):
        kind, token, start = match.lastgroup, match.group(), match.start()
        if kind == "open":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                detail = f"objects and arrays are nested more than {MAX_NESTING_DEPTH} levels deep"
                problem = (detail, start)
        elif kind == "close":
            depth -= 1
        elif kind == "slash":
            problem = ("unexpected '/' (a comment starts with // or /*)", start)
            if token == "/*":
                problem = ("unterminated /* comment", start)
        elif kind == "string" and match.group("closed") is None:
            problem = ("unterminated string", start)
        elif kind == "comment" or "\\u" in token:
            pieces += (text[done:start], _blank_or_fix(token))
            done = match.end()
        if problem is not None:
            text = text[:start]
            break
    pieces.append(text[done:])
    return _TRAILING_COMMA.sub(_blank_trailing_comma, "".join(pieces)), problem


def _blank_or_fix(token: str) -> str:
    if token[0] == '"':
        return _ESCAPE.sub(lambda m: "\\ufffd" if m.group(1) else m.group(), token)
    return _NOT_NEWLINE.sub(" ", token)


def _blank_trailing_comma(match: re.Match[str]) -> str:
    return match.group() if match.group(1) is None else match.group(1) + " "


def _parse(text: str, filename: str, pairs_hook: Any) -> tuple[str, Any]:
    """The standardized ``text`` and what the json module makes of it (objects built by
    ``pairs_hook``, a dict if it is ``None``)."""
    standard, problem = _standardize(text)
    decoder = json.JSONDecoder(
        object_pairs_hook=pairs_hook, parse_int=_int, parse_constant=_refuse_constant
    )
    try:
        value = decoder.decode(standard)
    except json.JSONDecodeError as exc:
        # The standardized text stops at the problem: an error before it is reported first.
        if problem is None or exc.pos < len(standard):
            raise _syntax_error(standard, filename, exc.msg, exc.pos) from None
    except _ConstantError:
        # The first NaN or Infinity outside a string is the one the decoder stopped at.
        word = next(m for m in _CONSTANT.finditer(standard) if m.lastgroup)
        detail = f"unexpected word {word.group()!r}, expected a value"
        raise _error(standard, filename, detail, word.start()) from None
    except RecursionError:
        # Only when the caller's own stack is already deep: MAX_NESTING_DEPTH keeps the json
        # module itself well inside Python's recursion limit.
        raise ParseError(filename, "objects and arrays are nested too deeply") from None
    if problem is not None:
        raise _error(standard, filename, *problem)
    return standard, value


def _int(literal: str) -> int | float:
    try:
        return int(literal)
    except ValueError:
        # Python refuses to convert integers of more than a few thousand digits; keep the
        # magnitude as a float, as Go's json does for untyped numbers.
        return float(literal)


class _ConstantError(Exception):
    """NaN, Infinity or -Infinity, which Python's json accepts and JSON does not."""


def _refuse_constant(name: str) -> NoReturn:
    raise _ConstantError


def _syntax_error(text: str, filename: str, message: str, pos: int) -> ParseError:
    """Our wording of the json module's ``message`` about position ``pos`` of ``text``."""
    # A word ("nul", "truex") or a malformed number ("01", "1.", "-") that the decoder stopped
    # in, or could not start, is reported as a whole, from where it starts.
    start = pos
    while start and text[start - 1] in _WORD_CHARACTERS:
        start -= 1
    if start < pos or message == "Expecting value":
        word = _WORD.match(text, start)
        if word and word.end() > pos:
            detail = f"unexpected word {word.group()!r}, expected a value"
            return _error(text, filename, detail, start)
        number = _NUMBER.match(text, start)
        if number and number.end() > pos:
            return _error(text, filename, f"invalid number {number.group()!r}", start)
    char = text[pos : pos + 1]
    found = _describe(char)
    expected = _EXPECTED.get(message)
    if expected is None:
        detail = {
            "Extra data": f"unexpected {found} after the end of the top-level value",
            "Invalid control character at": f"control character {found} in string must be escaped",
            "Invalid \\escape": f"invalid escape \\{text[pos + 1 : pos + 2]} in string",
        }.get(message, message)
        if message == "Invalid \\uXXXX escape":  # the json module points at the 'u'
            detail, pos = "invalid \\u escape in string (expected 4 hex digits)", pos - 1
        return _error(text, filename, detail, pos)
    opened_at = _innermost_open(text, pos)
    if expected == "','":
        expected += " or ']'" if opened_at is not None and text[opened_at] == "[" else " or '}'"
    detail = f"unexpected {found}, expected {expected}"
    if opened_at is not None and not char:
        line, column = _line_column(text, opened_at)
        detail += f" to close the one opened at line {line}, column {column}"
    return _error(text, filename, detail, pos)


def _innermost_open(text: str, end: int) -> int | None:
    """Where the innermost ``[`` or ``{`` still open at ``end`` is (text up to ``end`` is JSON)."""
    stack: list[int] = []
    for match in _TOKEN.finditer(text, 0, end):
        if match.lastgroup == "open":
            stack.append(match.start())
        elif match.lastgroup == "close":
            stack.pop()
    return stack[-1] if stack else None


def _describe(char: str) -> str:
    """How an error message shows one character of the input."""
    if not char:
        return "end of input"
    if char.isprintable() and not char.isspace():
        return repr(char)
    return f"U+{ord(char):04X}"


def _line_column(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column (counted in characters) of ``offset``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _error(text: str, filename: str, detail: str, offset: int) -> ParseError:
    return ParseError(filename, detail, *_line_column(text, offset))


# --------------------------------------------------------------------------------------------
# Reading the app.json keys, with Go's encoding/json semantics
# --------------------------------------------------------------------------------------------


class _Object(list[tuple[str, Any]]):
    """A JSON object as written: every member in order, duplicates kept.

    Go decodes duplicates one after the other into the same struct field, so reading app.json
    needs the members themselves, not a dict.
    """


#: Where a value is: the index of its member in each enclosing object, from the top.
_Path: TypeAlias = tuple[int, ...]


def _kind(value: object) -> str:
    """What a type error calls ``value`` (never ``None``: null is handled before)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, _Object) else "an array"


class _Reader:
    """Decodes the parsed document into Dokku's ``AppJSON`` struct, as ``json.Unmarshal`` would.

    Struct fields (``scripts``, ``dokku``, the script strings, ``quantity``, a healthcheck's
    fields) are matched with :data:`_GO_FOLD`; ``formation`` and ``healthchecks`` are maps, so
    their process types match exactly.
    """

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.scripts: dict[str, str | None] = {}
        self.formation: dict[str, int | None] = {}
        self.healthchecks: dict[str, tuple[Healthcheck, ...]] = {}
        self.env: dict[str, EnvVar] = {}

    def read(self, root: Any) -> AppJson:
        for name, value, path in self._members("top level", root, ()):
            if name == "SCRIPTS":
                for child, script, child_path in self._members("scripts", value, path):
                    if child == "DOKKU":
                        self._dokku(script, child_path)
                    elif child == "POSTDEPLOY":
                        self._script("scripts.postdeploy", script, child_path)
            elif name == "FORMATION":
                if value is None:
                    # Go sets a map to nil on null, dropping what an earlier "formation" put there.
                    self.formation = {}
                for process, entry, entry_path in self._members("formation", value, path, False):
                    # Each map value is decoded into a fresh struct: a repeated type replaces the
                    # earlier one entirely, and a null one has no quantity.
                    self.formation[process] = self._quantity(process, entry, entry_path)
            elif name == "HEALTHCHECKS":
                if value is None:
                    self.healthchecks = {}  # a nil map, as for formation
                for process, entries, entries_path in self._members(
                    "healthchecks", value, path, False
                ):
                    # A map value is decoded fresh: a repeated process type replaces the earlier.
                    where = f"healthchecks.{_shown_key(process)}"
                    self.healthchecks[process] = self._healthchecks(where, entries, entries_path)
            elif name == "ENV":
                if value is None:
                    self.env = {}  # a nil map, as for formation
                for key, entry, entry_path in self._members("env", value, path, False):
                    # A map value is decoded fresh: a repeated key replaces the earlier one.
                    self.env[key] = self._env_var(key, entry, entry_path)
        return AppJson(
            predeploy=self.scripts.get("scripts.dokku.predeploy"),
            postdeploy=self.scripts.get("scripts.dokku.postdeploy"),
            heroku_postdeploy=self.scripts.get("scripts.postdeploy"),
            formation={name: count for name, count in self.formation.items() if count is not None},
            # null and [] give no healthchecks, as Dokku treats them: the default check runs.
            healthchecks={name: checks for name, checks in self.healthchecks.items() if checks},
            env=self.env,
        )

    def _members(
        self, where: str, value: Any, path: _Path, fold: bool = True
    ) -> list[tuple[str, Any, _Path]]:
        """The members of the object ``value`` (keys folded, for a struct); ``null`` has none."""
        # Go: null leaves a struct as it was; anything but an object is a type error.
        if value is None:
            return []
        if not isinstance(value, _Object):
            raise self._error(f"{where} must be an object, not {_kind(value)}", path)
        return [
            (key.translate(_GO_FOLD) if fold else key, item, (*path, index))
            for index, (key, item) in enumerate(value)
        ]

    def _dokku(self, value: Any, path: _Path) -> None:
        for name, script, script_path in self._members("scripts.dokku", value, path):
            if name in ("PREDEPLOY", "POSTDEPLOY"):
                self._script(f"scripts.dokku.{name.lower()}", script, script_path)

    def _script(self, where: str, value: Any, path: _Path) -> None:
        # Go: null leaves a string field as it was, so an earlier duplicate survives it.
        if value is None:
            return
        if not isinstance(value, str):
            raise self._error(f"{where} must be a string, not {_kind(value)}", path)
        if "\x00" in value:
            # No command line can carry it: refused here rather than by the container's exec.
            raise self._error(f"{where} contains a NUL character", path)
        # Kept exactly as written, except that nothing but whitespace is no script at all.
        self.scripts[where] = value if value.strip() else None

    def _quantity(self, process: str, value: Any, path: _Path) -> int | None:
        where = f"formation.{_shown_key(process)}"
        quantity: int | None = None
        for name, number, number_path in self._members(where, value, path):
            if name != "QUANTITY":
                continue
            if number is None:
                quantity = None  # Quantity is a Go *int: null resets it
            elif type(number) is int and 0 <= number <= _MAX_GO_INT:
                quantity = number
            else:
                raise self._bad_quantity(f"{where}.quantity", number, number_path)
        return quantity

    def _bad_quantity(self, where: str, value: Any, path: _Path) -> ParseError:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self._error(f"{where} must be a non-negative integer, not {_kind(value)}", path)
        # Quote the number as written: Go's int decoding refuses 1.0 and 1e2 as well.
        literal = self.text[slice(*self._span(path))]
        shown = literal if len(literal) <= 24 else literal[:20] + "..."
        if literal.isdigit():  # an integer too large for Go's int (or even for Python's int())
            return self._error(f"{where} is too large ({shown})", path)
        return self._error(f"{where} must be a non-negative integer, not {shown}", path)

    # -- env -------------------------------------------------------------------------------

    def _env_var(self, key: str, value: Any, path: _Path) -> EnvVar:
        """One entry of ``env``: a string (its value), or an object, as Dokku's ``EnvVarValue``.

        ``null`` is an entry with no value (Go calls the type's decoder with it, which leaves
        the value empty), so it is required.  In the object form ``null`` leaves a field as it
        was, except ``required``, a Go ``*bool``, which goes back to its default (true).
        """
        where = f"env.{_shown_key(key)}"
        if not is_env_key(key):
            # Dokku would fail later, when config:set refuses the key.
            raise self._error(
                f"{where} is not a valid config key: it must match [A-Za-z_][A-Za-z0-9_]*", path
            )
        if value is None:
            return EnvVar()
        if isinstance(value, str):
            return EnvVar(value=self._word(where, value, path))
        if not isinstance(value, _Object):
            raise self._error(f"{where} must be a string or an object, not {_kind(value)}", path)
        fields: dict[str, Any] = {}
        for name, item, item_path in self._members(where, value, path):
            field = _ENV_FIELDS.get(name)
            if field is None:
                continue  # unknown fields are ignored, as Go does
            at = f"{where}.{field}"
            if item is None:
                if field == "required":
                    fields.pop("required", None)
                continue
            if field in ("required", "sync"):
                fields[field] = self._flag(at, item, item_path)
            elif field == "value":
                fields[field] = self._word(at, item, item_path)
            else:
                fields[field] = self._string(at, item, item_path)
            if field == "generator" and item not in ("", SECRET_GENERATOR):
                # Go would take any string and then generate nothing.
                raise self._error(
                    f"{at} must be {SECRET_GENERATOR!r}, not {_shown(item)}", item_path
                )
        return EnvVar(
            value=fields.get("value", ""),
            required=fields.get("required", True),
            generator=fields.get("generator", ""),
            sync=fields.get("sync", False),
            description=fields.get("description", ""),
        )

    # -- healthchecks ---------------------------------------------------------------------

    def _healthchecks(self, where: str, value: Any, path: _Path) -> tuple[Healthcheck, ...]:
        """The healthchecks of one process type: an array of objects (``null``: none)."""
        if value is None:
            return ()
        if not isinstance(value, list) or isinstance(value, _Object):
            raise self._error(f"{where} must be an array, not {_kind(value)}", path)
        return tuple(
            self._healthcheck(f"{where}[{index}]", entry, (*path, index))
            for index, entry in enumerate(value)
        )

    def _healthcheck(self, where: str, value: Any, path: _Path) -> Healthcheck:
        """One healthcheck, decoded as Go decodes Dokku's ``Healthcheck`` struct.

        ``null`` for a string, number or boolean leaves it as it was; ``null`` for ``command``
        (a slice) resets it.  A later duplicate replaces an earlier one.  Unknown fields
        (``httpHeaders``, ``warn``, ``onFailure``, ``description``) are ignored.
        """
        fields: dict[str, Any] = {}
        for name, item, item_path in self._members(where, value, path):
            spec = _HEALTHCHECK_FIELDS.get(name)
            if spec is None:
                continue
            field, reader = spec
            at = f"{where}.{field}"
            if item is None:
                if field == "command":
                    fields.pop("command", None)
                continue
            fields[field] = reader(self, at, item, item_path)
        check = Healthcheck(
            type=fields.get("type", ""),
            name=fields.get("name", ""),
            command=fields.get("command"),
            path=fields.get("path", ""),
            port=fields.get("port") or None,
            content=fields.get("content", ""),
            attempts=_positive(fields.get("attempts")),
            wait=_positive(fields.get("wait")),
            timeout=_positive(fields.get("timeout")),
            initial_delay=_positive(fields.get("initialDelay")) or 0,
            uptime=_positive(fields.get("uptime")) or 0,
            scheme=fields.get("scheme", ""),
            listening=fields.get("listening", False),
        )
        conflict = _conflict(check)
        if conflict is not None:
            raise self._error(f"{where} {conflict}", path)
        return check

    def _string(self, where: str, value: Any, path: _Path) -> str:
        if not isinstance(value, str):
            raise self._error(f"{where} must be a string, not {_kind(value)}", path)
        return value

    def _word(self, where: str, value: Any, path: _Path) -> str:
        """A string that is passed to a program as an argument: no NUL character."""
        text = self._string(where, value, path)
        if "\x00" in text:
            raise self._error(f"{where} contains a NUL character", path)
        return text

    def _type(self, where: str, value: Any, path: _Path) -> str:
        text = self._string(where, value, path)
        if text and text not in HEALTHCHECK_TYPES:
            # Go would take any string, and the check would then silently never run.
            valid = ", ".join(HEALTHCHECK_TYPES)
            raise self._error(f"{where} must be one of {valid}, not {_shown(text)}", path)
        return text

    def _scheme(self, where: str, value: Any, path: _Path) -> str:
        text = self._string(where, value, path).lower()
        if text not in ("", "http", "https"):
            raise self._error(f"{where} must be http or https, not {_shown(value)}", path)
        return text

    def _command(self, where: str, value: Any, path: _Path) -> tuple[str, ...]:
        if not isinstance(value, list) or isinstance(value, _Object):
            raise self._error(f"{where} must be an array of strings, not {_kind(value)}", path)
        words = []
        for index, word in enumerate(value):
            at, word_path = f"{where}[{index}]", (*path, index)
            if word is None:
                # Go would make it an empty argument; almost surely a mistake.
                raise self._error(f"{at} must be a string, not null", word_path)
            words.append(self._word(at, word, word_path))
        return tuple(words)

    def _flag(self, where: str, value: Any, path: _Path) -> bool:
        if not isinstance(value, bool):
            raise self._error(f"{where} must be true or false, not {_kind(value)}", path)
        return value

    def _seconds(self, where: str, value: Any, path: _Path) -> int:
        """A Go ``int32`` count (seconds or attempts); zero or less means the default."""
        number = self._integer(where, value, path, _MIN_GO_INT32)
        if number > MAX_HEALTHCHECK_SECONDS:
            raise self._error(f"{where} must be at most {MAX_HEALTHCHECK_SECONDS}", path)
        return number

    def _port(self, where: str, value: Any, path: _Path) -> int:
        """A Go ``int`` port; 0 means the default, anything else must be a TCP port."""
        number = self._integer(where, value, path, _MIN_GO_INT)
        if not 0 <= number <= 65535:
            raise self._error(f"{where} must be a port number from 1 to 65535", path)
        return number

    def _integer(self, where: str, value: Any, path: _Path, minimum: int) -> int:
        if type(value) is int:
            if value < minimum:
                literal = self._literal(path)
                raise self._error(f"{where} is out of range ({literal})", path)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._error(f"{where} must be an integer, not {_kind(value)}", path)
        literal = self._literal(path)
        if literal.lstrip("-").isdigit():  # an integer too large for Python's int()
            raise self._error(f"{where} is out of range ({literal})", path)
        # Go's int decoding refuses 1.0 and 1e2 as well.
        raise self._error(f"{where} must be an integer, not {literal}", path)

    def _literal(self, path: _Path) -> str:
        """The value at ``path`` as written, shortened for a one-line message."""
        literal = self.text[slice(*self._span(path))]
        return literal if len(literal) <= 24 else literal[:20] + "..."

    def _error(self, detail: str, path: _Path) -> ParseError:
        return _error(self.text, self.filename, detail, self._span(path)[0])

    def _span(self, path: _Path) -> tuple[int, int]:
        """Where the value at ``path`` starts and ends in the text.  Only an error needs it, so
        it is found again here rather than recorded for every value while parsing."""
        text = self.text
        skip = json.JSONDecoder(parse_int=_int).raw_decode
        start = end = _skip_space(text, 0)
        for index in path:
            pos = start  # at the object's '{' or the array's '['
            in_array = text[pos] == "["
            for _ in range(index + 1):
                if in_array:
                    start = _skip_space(text, pos + 1)  # past the '[' or ','
                else:
                    pos = _skip_space(text, skip(text, _skip_space(text, pos + 1))[1])  # the key
                    start = _skip_space(text, pos + 1)  # past the ':'
                end = skip(text, start)[1]
                pos = _skip_space(text, end)  # at the ',' or the closing bracket
        return start, end


#: An ``env`` entry's JSON fields, folded as Go matches them, and the names errors use.
_ENV_FIELDS = {
    "VALUE": "value",
    "REQUIRED": "required",
    "GENERATOR": "generator",
    "SYNC": "sync",
    "DESCRIPTION": "description",
}

#: A healthcheck's JSON fields, folded as Go matches them: the name errors use, and the reader.
_HEALTHCHECK_FIELDS: dict[str, tuple[str, Any]] = {
    "TYPE": ("type", _Reader._type),
    "NAME": ("name", _Reader._string),
    "COMMAND": ("command", _Reader._command),
    "PATH": ("path", _Reader._word),
    "PORT": ("port", _Reader._port),
    "CONTENT": ("content", _Reader._string),
    "ATTEMPTS": ("attempts", _Reader._seconds),
    "WAIT": ("wait", _Reader._seconds),
    "TIMEOUT": ("timeout", _Reader._seconds),
    "INITIALDELAY": ("initialDelay", _Reader._seconds),
    "UPTIME": ("uptime", _Reader._seconds),
    "SCHEME": ("scheme", _Reader._scheme),
    "LISTENING": ("listening", _Reader._flag),
}


def _positive(value: int | None) -> int | None:
    """Dokku's healthchecker reads zero or less as "use the default"."""
    return value if value is not None and value > 0 else None


def _conflict(check: Healthcheck) -> str | None:
    """What makes ``check`` ambiguous, as Dokku's healthchecker refuses it; ``None`` if fine."""
    given = [
        name
        for name, present in (
            ("command", bool(check.command)),
            ("path", bool(check.path)),
            ("uptime", check.uptime > 0),
            ("listening", check.listening),
        )
        if present
    ]
    if len(given) < 2:
        return None
    return f"cannot have both {given[0]!r} and {given[1]!r}: a healthcheck checks one thing"


def _shown_key(key: str) -> str:
    """A map key (any string) in a key path: quoted when it would garble a one-line message."""
    return key if _PLAIN_KEY.fullmatch(key) else repr(key)


def _shown(value: str) -> str:
    """A string value in a message: quoted, shortened."""
    return repr(value if len(value) <= 24 else value[:20] + "...")


def _skip_space(text: str, pos: int) -> int:
    return _SPACE.match(text, pos).end()  # type: ignore[union-attr]  # it matches "" too
