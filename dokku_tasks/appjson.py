"""Parse app.json the way Dokku reads it, keeping the parts deployment tasks use.

Dokku runs the file through tailscale/hujson (JSON with comments and trailing commas) and then
Go's ``encoding/json``.  This module does both steps itself, with a small hand-written JSONC
parser, so that every error can name the line and column it happened at.

What is honoured, as Dokku honours it:

- ``//`` line comments, ``/* */`` block comments, one trailing comma in an object or array;
- keys matched case-insensitively, with Go's folding (``"SCRIPTS"``, ``"PreDeploy"``);
- duplicate keys decoded in order into the same place, as Go does: a later string replaces an
  earlier one, a later object is merged into the earlier one, and ``null`` changes nothing;
- unknown keys ignored; an empty or whitespace-only file and a top-level ``null`` mean "no tasks".

Where this deliberately differs: a UTF-8 BOM is accepted, invalid UTF-8 is an error (Go would
quietly replace it), and an empty or whitespace-only script counts as absent.
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple, TypeAlias

from .errors import ParseError
from .models import AppJson

__all__ = [
    "GO_WHITESPACE",
    "MAX_APP_JSON_BYTES",
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

_NOT_WHITESPACE = re.compile(r"[^ \t\r\n]")
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]+')
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_KEY = re.compile(r"[\w-]+")
# Deliberately looser than JSON's grammar, so that a malformed number gets a precise message.
_NUMBER = re.compile(r"(-?)([0-9]*)(\.[0-9]*)?([eE][+-]?[0-9]*)?")
_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_LITERALS: dict[str, bool | None] = {"null": None, "true": True, "false": False}

# Go's encoding/json folds a key by upper-casing ASCII and mapping every other rune r to
# ToUpper(ToLower(r)).  Only these four non-ASCII letters fold onto ASCII, so they are the only
# ones that can match the (ASCII) field names Dokku declares.
_GO_FOLD_TO_ASCII = {"\u212a": "K", "\u017f": "S", "\u0131": "I", "\u0130": "I"}


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
    node, _ = _Parser(text, filename).document()
    # No RecursionError guard needed here: _to_python nests no deeper than the parser just did.
    return _to_python(node)


def parse_app_json(data: bytes, filename: str = "app.json") -> AppJson:
    """Parse the bytes of an app.json file into an :class:`AppJson`.

    Reads ``scripts.dokku.predeploy``, ``scripts.dokku.postdeploy``, ``scripts.postdeploy``
    (each a string; ``null`` is absent) and ``formation.<type>.quantity`` (a non-negative
    integer; types without one are left out).  Everything else is ignored.  An empty or
    whitespace-only file, and a top-level ``null``, give an empty ``AppJson()``.

    Raises :class:`ParseError` for a file over :data:`MAX_APP_JSON_BYTES`, invalid UTF-8, any
    JSONC syntax error, a top level that is not an object, and a known key of the wrong type;
    the message names the key path (``scripts.dokku.predeploy must be a string ...``) and,
    where there is one, the line and column.
    """
    if len(data) > MAX_APP_JSON_BYTES:
        raise ParseError(
            filename,
            f"file is {len(data)} bytes, over the limit of {MAX_APP_JSON_BYTES} bytes (1 MiB)",
        )
    text = decode_utf8(data, filename)
    # Dokku checks strings.TrimSpace(content) == "" before parsing, with Go's idea of space.
    if not text.strip(GO_WHITESPACE):
        return AppJson()
    parser = _Parser(text, filename)
    root, offset = parser.document()
    if root is None:
        return AppJson()
    if not isinstance(root, _Object):
        raise parser.error(f"top level must be an object, not {_a(_type_name(root))}", offset)
    return _AppJsonReader(parser).read(root)


# --------------------------------------------------------------------------------------------
# The JSONC parser
# --------------------------------------------------------------------------------------------


class _Object:
    """A JSON object as written: every member in order, duplicates kept.

    Go decodes duplicates one after the other into the same struct field, so reading app.json
    needs the members themselves, not a dict.
    """

    __slots__ = ("members",)

    def __init__(self, members: list[_Member]) -> None:
        self.members = members


_Node: TypeAlias = "bool | int | float | str | list[_Node] | _Object | None"


class _Member(NamedTuple):
    key: str
    value: _Node
    #: Where the value starts in the text, for the position of a type error.
    offset: int


class _Parser:
    """Recursive descent over one JSONC text; ``pos`` is an index into ``text``.

    Only offsets are tracked while parsing; an error turns its offset into a line and column.
    """

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.pos = 0

    def line_column(self, offset: int) -> tuple[int, int]:
        """The 1-based line and column (counted in characters) of ``offset``."""
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return line, column

    def error(self, detail: str, offset: int) -> ParseError:
        """A :class:`ParseError` pointing at ``offset``."""
        return ParseError(self.filename, detail, *self.line_column(offset))

    def unexpected(self, expected: str, opened_at: int | None = None) -> ParseError:
        """The error for whatever sits at ``pos`` when ``expected`` should be there.

        At the end of the input, ``opened_at`` (the unclosed ``{`` or ``[``) is named too.
        """
        found = self.text[self.pos : self.pos + 1]
        detail = f"unexpected {_describe(found)}, expected {expected}"
        if opened_at is not None and not found:
            line, column = self.line_column(opened_at)
            detail += f" to close the one opened at line {line}, column {column}"
        return self.error(detail, self.pos)

    def document(self) -> tuple[_Node, int]:
        """Parse the whole text as one value; returns it and the offset where it starts."""
        self.skip()
        start = self.pos
        try:
            # The same three-way dispatch appears in _object and _array: a helper function
            # would put a second Python frame on the stack for every nesting level.
            char = self.text[start : start + 1]
            value: _Node = (
                self._object(1)
                if char == "{"
                else self._array(1)
                if char == "["
                else self._scalar()
            )
        except RecursionError:
            # Only reachable when the caller's own stack is already deep: MAX_NESTING_DEPTH
            # keeps the parser itself well inside Python's recursion limit.
            raise self.error("objects and arrays are nested too deeply", self.pos) from None
        self.skip()
        if self.pos < len(self.text):
            found = _describe(self.text[self.pos])
            raise self.error(f"unexpected {found} after the end of the top-level value", self.pos)
        return value, start

    def skip(self) -> None:
        """Move ``pos`` past whitespace and comments."""
        text = self.text
        pos = self.pos
        while True:
            match = _NOT_WHITESPACE.search(text, pos)
            pos = match.start() if match is not None else len(text)
            if not text.startswith("/", pos):
                break
            if text.startswith("//", pos):
                newline = text.find("\n", pos)
                pos = len(text) if newline < 0 else newline + 1
            elif text.startswith("/*", pos):
                close = text.find("*/", pos + 2)
                if close < 0:
                    raise self.error("unterminated /* comment", pos)
                pos = close + 2
            else:
                raise self.error("unexpected '/' (a comment starts with // or /*)", pos)
        self.pos = pos

    def _check_depth(self, depth: int) -> None:
        if depth > MAX_NESTING_DEPTH:
            raise self.error(
                f"objects and arrays are nested more than {MAX_NESTING_DEPTH} levels deep",
                self.pos,
            )

    def _object(self, depth: int) -> _Object:
        self._check_depth(depth)
        text = self.text
        opened_at = self.pos
        self.pos += 1
        members: list[_Member] = []
        while True:
            self.skip()
            char = text[self.pos : self.pos + 1]
            if char == "}":
                self.pos += 1
                return _Object(members)
            if char != '"':
                raise self.unexpected("a string key or '}'", opened_at)
            key = self._string()
            self.skip()
            if not text.startswith(":", self.pos):
                raise self.unexpected(f"':' after the key {key!r}", opened_at)
            self.pos += 1
            self.skip()
            offset = self.pos
            char = text[offset : offset + 1]
            value: _Node = (
                self._object(depth + 1)
                if char == "{"
                else self._array(depth + 1)
                if char == "["
                else self._scalar(opened_at)
            )
            members.append(_Member(key, value, offset))
            self.skip()
            char = text[self.pos : self.pos + 1]
            if char == "}":
                self.pos += 1
                return _Object(members)
            if char != ",":
                raise self.unexpected("',' or '}'", opened_at)
            # After a comma the loop accepts '}' as well: hujson allows one trailing comma.
            self.pos += 1

    def _array(self, depth: int) -> list[_Node]:
        self._check_depth(depth)
        text = self.text
        opened_at = self.pos
        self.pos += 1
        items: list[_Node] = []
        while True:
            self.skip()
            char = text[self.pos : self.pos + 1]
            if char == "]":
                self.pos += 1
                return items
            items.append(
                self._object(depth + 1)
                if char == "{"
                else self._array(depth + 1)
                if char == "["
                else self._scalar(opened_at)
            )
            self.skip()
            char = text[self.pos : self.pos + 1]
            if char == "]":
                self.pos += 1
                return items
            if char != ",":
                raise self.unexpected("',' or ']'", opened_at)
            self.pos += 1

    def _scalar(self, opened_at: int | None = None) -> bool | int | float | str | None:
        text = self.text
        char = text[self.pos : self.pos + 1]
        if char == '"':
            return self._string()
        if char == "-" or "0" <= char <= "9":
            return self._number()
        word = _WORD.match(text, self.pos)
        if word is not None:
            if word.group() in _LITERALS:
                self.pos = word.end()
                return _LITERALS[word.group()]
            raise self.error(f"unexpected word {word.group()!r}, expected a value", self.pos)
        if char == "'":
            raise self.error("strings must be in double quotes", self.pos)
        raise self.unexpected("a value", opened_at)

    def _string(self) -> str:
        text = self.text
        start = self.pos
        pos = start + 1
        parts: list[str] = []
        while True:
            run = _STRING_RUN.match(text, pos)
            if run is not None:
                parts.append(run.group())
                pos = run.end()
            char = text[pos : pos + 1]
            if char == '"':
                self.pos = pos + 1
                return "".join(parts)
            if char == "\\":
                escape = text[pos + 1 : pos + 2]
                if escape in _ESCAPES:
                    parts.append(_ESCAPES[escape])
                    pos += 2
                elif escape == "u":
                    char, pos = self._unicode_escape(pos)
                    parts.append(char)
                elif escape == "":
                    raise self.error("unterminated string", start)
                else:
                    raise self.error(f"invalid escape \\{escape} in string", pos)
            elif char in ("", "\n", "\r"):
                # A raw line break almost always means a missing closing quote, so point at
                # where the string began rather than where the line ended.
                raise self.error("unterminated string", start)
            else:
                raise self.error(
                    f"control character {_describe(char)} in string must be escaped", pos
                )

    def _unicode_escape(self, pos: int) -> tuple[str, int]:
        """Decode the ``\\uXXXX`` at ``pos`` (and its low surrogate, if any); returns the
        character and the offset after what was consumed."""
        code = self._hex4(pos)
        pos += 6
        if 0xD800 <= code <= 0xDBFF and self.text.startswith("\\u", pos):
            low = self._hex4(pos)
            if 0xDC00 <= low <= 0xDFFF:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), pos + 6
        if 0xD800 <= code <= 0xDFFF:
            # Go's decoder turns an unpaired surrogate into U+FFFD; a lone surrogate would
            # also make the string impossible to encode as UTF-8 later on.
            return "\ufffd", pos
        return chr(code), pos

    def _hex4(self, pos: int) -> int:
        digits = _HEX4.match(self.text, pos + 2)
        if digits is None:
            raise self.error("invalid \\u escape in string (expected 4 hex digits)", pos)
        return int(digits.group(), 16)

    def _number(self) -> int | float:
        start = self.pos
        match = _NUMBER.match(self.text, start)
        if match is None:  # pragma: no cover - every group is optional, so it always matches
            raise self.unexpected("a number")
        sign, digits, fraction, exponent = match.groups()
        if not digits:
            raise self.error("invalid number (expected a digit)", start + len(sign))
        if len(digits) > 1 and digits[0] == "0":
            raise self.error("invalid number (leading zeros are not allowed)", start + len(sign))
        if fraction == ".":
            raise self.error("invalid number (expected a digit after '.')", match.end(3))
        if exponent is not None and exponent[-1] not in "0123456789":
            raise self.error("invalid number (expected a digit in the exponent)", match.end(4))
        self.pos = match.end()
        literal = match.group()
        if fraction is None and exponent is None:
            try:
                return int(literal)
            except ValueError:
                # Python refuses to convert integers of more than a few thousand digits; keep
                # the magnitude as a float, as Go's json does for untyped numbers.
                return float(literal)
        return float(literal)


def _describe(char: str) -> str:
    """How an error message shows one character of the input."""
    if not char:
        return "end of input"
    if char.isprintable() and not char.isspace():
        return repr(char)
    return f"U+{ord(char):04X}"


def _type_name(node: _Node) -> str:
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "boolean"
    if isinstance(node, (int, float)):
        return "number"
    if isinstance(node, str):
        return "string"
    if isinstance(node, list):
        return "array"
    return "object"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _to_python(node: _Node) -> JSONValue:
    # Plain loops, not comprehensions: before Python 3.12 a comprehension is a frame of its
    # own, and two frames per nesting level would not fit MAX_NESTING_DEPTH in the stack.
    if isinstance(node, _Object):
        mapping: dict[str, JSONValue] = {}
        for member in node.members:
            mapping[member.key] = _to_python(member.value)
        return mapping
    if isinstance(node, list):
        items: list[JSONValue] = []
        for item in node:
            items.append(_to_python(item))
        return items
    return node


# --------------------------------------------------------------------------------------------
# Reading the app.json keys, with Go's encoding/json semantics
# --------------------------------------------------------------------------------------------


def _go_fold(key: str) -> str:
    """``key`` folded the way Go's encoding/json folds names before comparing them."""
    return "".join(
        char.upper() if char < "\x80" else _GO_FOLD_TO_ASCII.get(char, char) for char in key
    )


class _AppJsonReader:
    """Decodes the parsed tree into Dokku's ``AppJSON`` struct, as ``json.Unmarshal`` would.

    Struct fields (``scripts``, ``dokku``, the script strings, ``quantity``) are matched with
    :func:`_go_fold`; ``formation`` is a map, so its process types match exactly.
    """

    def __init__(self, parser: _Parser) -> None:
        self.parser = parser
        self.predeploy: str | None = None
        self.postdeploy: str | None = None
        self.heroku_postdeploy: str | None = None
        self.formation: dict[str, int | None] = {}

    def read(self, root: _Object) -> AppJson:
        for member in root.members:
            name = _go_fold(member.key)
            if name == "SCRIPTS":
                self._scripts(member)
            elif name == "FORMATION":
                self._formation(member)
        return AppJson(
            predeploy=_script_or_none(self.predeploy),
            postdeploy=_script_or_none(self.postdeploy),
            heroku_postdeploy=_script_or_none(self.heroku_postdeploy),
            formation={
                process: quantity
                for process, quantity in self.formation.items()
                if quantity is not None
            },
        )

    def _type_error(self, path: str, expected: str, member: _Member) -> ParseError:
        found = _a(_type_name(member.value))
        return self.parser.error(f"{path} must be {expected}, not {found}", member.offset)

    def _object(self, path: str, member: _Member) -> _Object | None:
        # Go: null leaves a struct as it was; anything but an object is a type error.
        if member.value is None:
            return None
        if not isinstance(member.value, _Object):
            raise self._type_error(path, "an object", member)
        return member.value

    def _string(self, path: str, member: _Member, current: str | None) -> str | None:
        # Go: null leaves a string field as it was, so an earlier duplicate survives it.
        if member.value is None:
            return current
        if not isinstance(member.value, str):
            raise self._type_error(path, "a string", member)
        if "\x00" in member.value:
            # No command line can carry it: refused here rather than by the container's exec.
            raise self.parser.error(f"{path} contains a NUL character", member.offset)
        return member.value

    def _scripts(self, member: _Member) -> None:
        scripts = self._object("scripts", member)
        if scripts is None:
            return
        for child in scripts.members:
            name = _go_fold(child.key)
            if name == "DOKKU":
                self._dokku(child)
            elif name == "POSTDEPLOY":
                self.heroku_postdeploy = self._string(
                    "scripts.postdeploy", child, self.heroku_postdeploy
                )

    def _dokku(self, member: _Member) -> None:
        dokku = self._object("scripts.dokku", member)
        if dokku is None:
            return
        for child in dokku.members:
            name = _go_fold(child.key)
            if name == "PREDEPLOY":
                self.predeploy = self._string("scripts.dokku.predeploy", child, self.predeploy)
            elif name == "POSTDEPLOY":
                self.postdeploy = self._string("scripts.dokku.postdeploy", child, self.postdeploy)

    def _formation(self, member: _Member) -> None:
        formation = self._object("formation", member)
        if formation is None:
            # Go sets a map to nil on null, dropping what an earlier "formation" put there.
            self.formation = {}
            return
        for entry in formation.members:
            # Each map value is decoded into a fresh struct: a repeated type replaces the
            # earlier one entirely, and a null one has no quantity.
            self.formation[entry.key] = self._quantity(entry)

    def _quantity(self, entry: _Member) -> int | None:
        # A process type is any string: quote one that would garble the one-line message.
        name = entry.key if _PLAIN_KEY.fullmatch(entry.key) else repr(entry.key)
        process = self._object(f"formation.{name}", entry)
        quantity: int | None = None
        if process is None:
            return quantity
        path = f"formation.{name}.quantity"
        for child in process.members:
            if _go_fold(child.key) != "QUANTITY":
                continue
            value = child.value
            if value is None:
                quantity = None  # Quantity is a Go *int: null resets it
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._type_error(path, "a non-negative integer", child)
            else:
                quantity = self._integer(path, child)
        return quantity

    def _integer(self, path: str, member: _Member) -> int:
        value = member.value
        # Quote the number as written: Go's int decoding refuses 1.0 and 1e2 as well.
        match = _NUMBER.match(self.parser.text, member.offset)
        literal = match.group() if match is not None else str(value)
        shown = literal if len(literal) <= 24 else literal[:20] + "..."
        if isinstance(value, int):
            if value < 0:
                detail = f"{path} must be a non-negative integer, not {shown}"
                raise self.parser.error(detail, member.offset)
            if value > _MAX_GO_INT:
                raise self.parser.error(f"{path} is too large ({shown})", member.offset)
            return value
        # A float: written with a fraction or an exponent, or an integer too long for int().
        if literal.isdigit():
            raise self.parser.error(f"{path} is too large ({shown})", member.offset)
        detail = f"{path} must be a non-negative integer, not {shown}"
        raise self.parser.error(detail, member.offset)


def _script_or_none(script: str | None) -> str | None:
    # Kept exactly as written, except that nothing but whitespace is no script at all.
    if script is None or not script.strip():
        return None
    return script
