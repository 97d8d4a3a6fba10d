"""app.json parsing: the JSONC syntax Dokku accepts, Go's decoding rules, and error positions."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dokku_tasks.appjson import (
    MAX_APP_JSON_BYTES,
    MAX_NESTING_DEPTH,
    decode_utf8,
    parse_app_json,
    parse_jsonc,
)
from dokku_tasks.errors import ParseError
from dokku_tasks.models import AppJson

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(text: str) -> AppJson:
    return parse_app_json(text.encode("utf-8"))


def error_of(data: str | bytes, filename: str = "app.json") -> ParseError:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with pytest.raises(ParseError) as info:
        parse_app_json(raw, filename)
    return info.value


# --- what Dokku's own fixtures look like ---------------------------------------------------


def test_dokku_fixture_style_jsonc() -> None:
    # tests/apps/python/app.json in Dokku is JSONC with // comments.
    app = parse(
        """{
          // runs before the containers are scheduled
          "scripts": {
            "dokku": {
              "predeploy": "touch /app/predeploy.test",
              "postdeploy": "touch /app/postdeploy.test"  // after
            },
            "postdeploy": "touch /app/heroku-postdeploy.test"
          }
        }"""
    )
    assert app == AppJson(
        predeploy="touch /app/predeploy.test",
        postdeploy="touch /app/postdeploy.test",
        heroku_postdeploy="touch /app/heroku-postdeploy.test",
    )
    assert app.script("predeploy") == "touch /app/predeploy.test"


def test_block_comments_and_trailing_commas() -> None:
    app = parse(
        """/* header
        spanning lines */ {
          "scripts": {"dokku": {"predeploy": /* inline */ "a",},},
          "other": [1, 2, [3,],],
        } // done"""
    )
    assert app.predeploy == "a"


def test_comment_markers_inside_strings_are_text() -> None:
    app = parse('{"scripts": {"dokku": {"predeploy": "echo // not /* a comment */"}}}')
    assert app.predeploy == "echo // not /* a comment */"


def test_line_comment_at_end_of_input_without_newline() -> None:
    assert parse('{"scripts": {"postdeploy": "x"}} // the end').heroku_postdeploy == "x"


# --- empty, null and top-level types -------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t\r\n", "\u00a0", "\u3000\n"])
def test_empty_or_whitespace_only_is_empty(text: str) -> None:
    assert parse(text) == AppJson()


def test_bom_is_accepted() -> None:
    data = b"\xef\xbb\xbf" + b'{"scripts": {"dokku": {"predeploy": "x"}}}'
    assert parse_app_json(data).predeploy == "x"
    assert parse_app_json(b"\xef\xbb\xbf \n") == AppJson()


def test_bom_does_not_count_as_a_column() -> None:
    err = error_of(b"\xef\xbb\xbf{x}")
    assert (err.line, err.column) == (1, 2)


@pytest.mark.parametrize("text", ["null", " null ", "/* c */ null // c"])
def test_top_level_null_is_empty(text: str) -> None:
    assert parse(text) == AppJson()


def test_empty_object_is_empty() -> None:
    assert parse("{}") == AppJson()


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[]", "an array"), ('"x"', "a string"), ("1", "a number"), ("true", "a boolean")],
)
def test_top_level_must_be_an_object(text: str, kind: str) -> None:
    err = error_of(f"\n  {text}")
    assert "top level must be an object" in err.detail
    assert kind in err.detail
    assert (err.line, err.column) == (2, 3)


def test_comments_only_is_an_error_as_in_hujson() -> None:
    err = error_of("// nothing here\n")
    assert "expected a value" in err.detail
    assert (err.line, err.column) == (2, 1)


# --- Go's decoding rules -------------------------------------------------------------------


def test_keys_are_case_insensitive() -> None:
    app = parse(
        '{"SCRIPTS": {"Dokku": {"PreDeploy": "a", "POSTDEPLOY": "b"}, "PostDeploy": "c"},'
        ' "Formation": {"web": {"Quantity": 2}}}'
    )
    assert app == AppJson(
        predeploy="a", postdeploy="b", heroku_postdeploy="c", formation={"web": 2}
    )


def test_go_folds_kelvin_sign_long_s_and_dotless_i() -> None:
    # Go's encoding/json folds U+212A to K, U+017F to S and U+0131/U+0130 to I.
    app = parse('{"\u017fcr\u0131pts": {"do\u212a\u212au": {"predeploy": "a"}}}')
    assert app.predeploy == "a"
    # ... but not other look-alikes, such as a fullwidth letter.
    assert parse('{"\uff53cripts": {"dokku": {"predeploy": "a"}}}') == AppJson()


def test_process_types_in_formation_are_case_sensitive() -> None:
    app = parse('{"formation": {"web": {"quantity": 1}, "WEB": {"quantity": 2}}}')
    assert app.formation == {"web": 1, "WEB": 2}


def test_duplicate_string_keys_last_wins() -> None:
    app = parse('{"scripts": {"dokku": {"predeploy": "a", "predeploy": "b"}}}')
    assert app.predeploy == "b"


def test_keys_differing_by_case_last_wins() -> None:
    app = parse('{"scripts": {"dokku": {"predeploy": "a", "PREDEPLOY": "b", "PreDeploy": "c"}}}')
    assert app.predeploy == "c"


def test_duplicate_objects_merge_as_go_decodes_into_one_struct() -> None:
    app = parse(
        '{"scripts": {"dokku": {"predeploy": "a"}},'
        ' "Scripts": {"postdeploy": "h", "dokku": {"postdeploy": "b"}}}'
    )
    assert app == AppJson(predeploy="a", postdeploy="b", heroku_postdeploy="h")


def test_null_leaves_an_earlier_value_as_go_does() -> None:
    app = parse(
        '{"scripts": {"dokku": {"predeploy": "a", "predeploy": null}}, "scripts": null,'
        ' "scripts": {"dokku": null}}'
    )
    assert app.predeploy == "a"


@pytest.mark.parametrize(
    "text",
    [
        '{"scripts": null}',
        '{"scripts": {"dokku": null, "postdeploy": null}}',
        '{"scripts": {"dokku": {"predeploy": null, "postdeploy": null}}}',
    ],
)
def test_null_is_absent(text: str) -> None:
    assert parse(text) == AppJson()


def test_unknown_keys_are_ignored_whatever_their_type() -> None:
    app = parse(
        '{"name": "x", "cron": 5, "addons": [], "buildpacks": {},'
        ' "scripts": {"dokku": {"predeploy": "a", "prebuild": 7}, "test": []},'
        ' "formation": {"web": {"quantity": 1, "max_parallel": "x", "size": "free"}}}'
    )
    assert app == AppJson(predeploy="a", formation={"web": 1})


@pytest.mark.parametrize(
    ("text", "path", "kind"),
    [
        ('{"scripts": {"dokku": {"predeploy": 1}}}', "scripts.dokku.predeploy", "a number"),
        ('{"scripts": {"dokku": {"postdeploy": true}}}', "scripts.dokku.postdeploy", "a boolean"),
        ('{"scripts": {"postdeploy": ["a"]}}', "scripts.postdeploy", "an array"),
        ('{"scripts": {"dokku": {"PREDEPLOY": {}}}}', "scripts.dokku.predeploy", "an object"),
    ],
)
def test_scripts_must_be_strings(text: str, path: str, kind: str) -> None:
    err = error_of(text)
    assert err.detail == f"{path} must be a string, not {kind}"
    assert err.line == 1
    assert err.column is not None
    assert text[err.column - 1] in "1t[{"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"scripts": "echo"}', "scripts must be an object"),
        ('{"scripts": []}', "scripts must be an object"),
        ('{"scripts": {"dokku": "echo"}}', "scripts.dokku must be an object"),
        ('{"scripts": {"dokku": 3}}', "scripts.dokku must be an object"),
        ('{"formation": []}', "formation must be an object"),
        ('{"formation": {"web": 1}}', "formation.web must be an object"),
    ],
)
def test_containers_must_be_objects(text: str, path: str) -> None:
    assert error_of(text).detail.startswith(path)


def test_script_strings_are_kept_as_written() -> None:
    app = parse(r'{"scripts": {"dokku": {"predeploy": "  echo \"hi\"\n\tdone  "}}}')
    assert app.predeploy == '  echo "hi"\n\tdone  '


@pytest.mark.parametrize("script", ["", " ", "\\n\\t", "\\u00a0"])
def test_empty_or_blank_script_is_absent(script: str) -> None:
    app = parse(
        f'{{"scripts": {{"dokku": {{"predeploy": "{script}"}}, "postdeploy": "{script}"}}}}'
    )
    assert app == AppJson()


def test_empty_script_after_a_real_one_still_replaces_it() -> None:
    app = parse('{"scripts": {"dokku": {"predeploy": "a", "predeploy": ""}}}')
    assert app.predeploy is None


# --- formation -----------------------------------------------------------------------------


def test_formation_quantities() -> None:
    app = parse(
        '{"formation": {"web": {"quantity": 1}, "worker": {"quantity": 0},'
        ' "release": {}, "cron": null, "clock": {"quantity": null}, "z": {"quantity": -0}}}'
    )
    assert app.formation == {"web": 1, "worker": 0, "z": 0}


def test_formation_repeated_type_is_replaced_not_merged() -> None:
    app = parse('{"formation": {"web": {"quantity": 1}, "web": {"max_parallel": 2}}}')
    assert app.formation == {}


def test_formation_repeated_key_merges_maps_and_null_clears() -> None:
    merged = parse(
        '{"formation": {"web": {"quantity": 1}}, "FORMATION": {"worker": {"quantity": 2}}}'
    )
    assert merged.formation == {"web": 1, "worker": 2}
    cleared = parse('{"formation": {"web": {"quantity": 1}}, "formation": null}')
    assert cleared.formation == {}


def test_quantity_null_after_a_number_resets_it() -> None:
    app = parse('{"formation": {"web": {"quantity": 3, "Quantity": null}}}')
    assert app.formation == {}


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("-1", "must be a non-negative integer, not -1"),
        ("1.0", "must be a non-negative integer, not 1.0"),
        ("1e2", "must be a non-negative integer, not 1e2"),
        ('"2"', "must be a non-negative integer, not a string"),
        ("true", "must be a non-negative integer, not a boolean"),
        ("[1]", "must be a non-negative integer, not an array"),
        ("9223372036854775808", "is too large"),
        ("9" * 5000, "is too large"),
        ("-" + "9" * 5000, "must be a non-negative integer"),
    ],
)
def test_bad_quantity(value: str, detail: str) -> None:
    err = error_of(f'{{"formation": {{"web": {{"quantity": {value}}}}}}}')
    assert err.detail.startswith("formation.web.quantity ")
    assert detail in err.detail
    assert (err.line, err.column) == (1, 36)


@pytest.mark.parametrize(
    ("process", "shown"),
    [("web", "formation.web."), ("web.1", "formation.'web.1'."), ("a\\nb", "formation.'a\\nb'.")],
)
def test_odd_process_types_are_quoted_in_errors(process: str, shown: str) -> None:
    err = error_of(f'{{"formation": {{"{process}": {{"quantity": -1}}}}}}')
    assert err.detail.startswith(shown)
    assert "\n" not in err.detail


def test_largest_quantity() -> None:
    assert parse('{"formation": {"web": {"quantity": 9223372036854775807}}}').formation == {
        "web": 2**63 - 1
    }


# --- limits and encoding -------------------------------------------------------------------


def test_size_limit() -> None:
    body = b'{"scripts": {"dokku": {"predeploy": "x"}}}'
    at_limit = body + b" " * (MAX_APP_JSON_BYTES - len(body))
    assert parse_app_json(at_limit).predeploy == "x"
    err = error_of(at_limit + b" ")
    assert "1 MiB" in err.detail
    assert str(MAX_APP_JSON_BYTES) in err.detail
    assert err.line is None


def test_a_large_file_parses() -> None:
    items = ",".join(json.dumps({"k": i, "s": "x" * 20}) for i in range(10_000))
    data = ('{"scripts": {"dokku": {"predeploy": "p"}}, "junk": [' + items + "]}").encode()
    assert len(data) < MAX_APP_JSON_BYTES
    assert parse_app_json(data).predeploy == "p"


@pytest.mark.parametrize(
    ("data", "line", "column"),
    [
        (b'{"a": "\xff"}', 1, 8),
        (b'{\n  "\xc3\xa9\xc3\xa9": "\xe2\x82"\n}', 2, 10),
        (b'{"a": "\xed\xa0\x80"}', 1, 8),  # an encoded surrogate is not UTF-8
        (b"\xef\xbb\xbf\n\n\x80", 3, 1),
    ],
)
def test_invalid_utf8(data: bytes, line: int, column: int) -> None:
    err = error_of(data)
    assert err.detail.startswith("invalid UTF-8")
    assert (err.line, err.column) == (line, column)


def test_decode_utf8_names_the_file() -> None:
    with pytest.raises(ParseError, match=r"^Invalid Procfile at line 1, column 1: invalid UTF-8"):
        decode_utf8(b"\xfe", "Procfile")


def test_error_message_shape_and_filename() -> None:
    err = error_of("{\n  x\n}", filename="custom/app2.json")
    assert str(err) == (
        "Invalid custom/app2.json at line 2, column 3: unexpected 'x', expected a string key or '}'"
    )
    assert err.filename == "custom/app2.json"


# --- syntax errors point at the offending character ----------------------------------------


SYNTAX_ERRORS = [
    # (text, line, column, part of the detail)
    ('{"a": "abc', 1, 7, "unterminated string"),
    ('{"a": "abc\n"}', 1, 7, "unterminated string"),
    ('{"a": "abc\r\n"}', 1, 7, "unterminated string"),
    ('{"a": "ab\\', 1, 7, "unterminated string"),
    ('{\n  "scripts" {}', 2, 13, "expected ':'"),
    ('{"a" 1}', 1, 6, "unexpected '1', expected ':'"),
    ('{"a": 1} x', 1, 10, "after the end of the top-level value"),
    ('{"a": 1}}', 1, 9, "after the end of the top-level value"),
    ("{}\n\n  /* never closed", 3, 3, "unterminated /* comment"),
    ("/*/ {}", 1, 1, "unterminated /* comment"),
    ("{} / x", 1, 4, "a comment starts with // or /*"),
    # A malformed number is reported whole, where it starts.
    ('{"a": 01}', 1, 7, "invalid number '01'"),
    ('{"a": -01}', 1, 7, "invalid number '-01'"),
    ('{"a": 1.}', 1, 7, "invalid number '1.'"),
    ('{"a": 1.e5}', 1, 7, "invalid number '1.e5'"),
    ('{"a": 1e}', 1, 7, "invalid number '1e'"),
    ('{"a": 1e+}', 1, 7, "invalid number '1e+'"),
    ('{"a": -}', 1, 7, "invalid number '-'"),
    ('{"a": -Infinity}', 1, 8, "unexpected word 'Infinity'"),
    ('{"a": .5}', 1, 7, "unexpected '.'"),
    ('{"a": +1}', 1, 7, "unexpected '+'"),
    ('{"a": NaN}', 1, 7, "unexpected word 'NaN'"),
    ('{"a": Infinity}', 1, 7, "unexpected word 'Infinity'"),
    ('{"a": True}', 1, 7, "unexpected word 'True'"),
    ('{"a": nul}', 1, 7, "unexpected word 'nul'"),
    ('{"a": "\\x"}', 1, 8, "invalid escape \\x"),
    ('{"a": "\\u12G4"}', 1, 8, "expected 4 hex digits"),
    ('{"a": "\\ud800\\u12"}', 1, 14, "expected 4 hex digits"),
    ('{"a": "x\ty"}', 1, 9, "control character U+0009"),
    ('{"a": "\x00"}', 1, 8, "control character U+0000"),
    ("{'a': 1}", 1, 2, "expected a string key or '}'"),
    ("{\"a\": 'x'}", 1, 7, 'unexpected "\'", expected a value'),
    ("{a: 1}", 1, 2, "expected a string key or '}'"),
    ("{,}", 1, 2, "expected a string key or '}'"),
    ('{"a": 1,,}', 1, 9, "expected a string key or '}'"),
    ("[1,,]", 1, 4, "expected a value"),
    ("[,]", 1, 2, "expected a value"),
    ('{"a": [1 2]}', 1, 10, "expected ',' or ']'"),
    ('{"a": 1 "b": 2}', 1, 9, "expected ',' or '}'"),
    ('{"a": }', 1, 7, "unexpected '}', expected a value"),
    ('{"a": ]', 1, 7, "unexpected ']', expected a value"),
    ('{"a" : 1', 1, 9, "unexpected end of input, expected ',' or '}'"),
    ('{"a":', 1, 6, "unexpected end of input, expected a value"),
    ('{"a"', 1, 5, "unexpected end of input, expected ':'"),
    ("{", 1, 2, "unexpected end of input, expected a string key or '}'"),
    ("[1,\n", 2, 1, "unexpected end of input, expected a value"),
    ('{\n  "a": [\n    1,\n', 4, 1, "opened at line 2, column 8"),
    ('{"\u00e9\u00e9": x}', 1, 8, "unexpected word 'x'"),  # columns count characters
    ('{"\U0001f600": @}', 1, 7, "unexpected '@'"),
    ("\r\n{\r\n  @", 3, 3, "unexpected '@'"),
    ('{"a": 1}\u00a0', 1, 9, "unexpected U+00A0 after the end"),
]


@pytest.mark.parametrize(("text", "line", "column", "detail"), SYNTAX_ERRORS)
def test_syntax_error_positions(text: str, line: int, column: int, detail: str) -> None:
    err = error_of(text)
    assert detail in err.detail
    assert (err.line, err.column) == (line, column), err.detail


def test_nesting_limit() -> None:
    at_limit = "[" * MAX_NESTING_DEPTH + "]" * MAX_NESTING_DEPTH
    assert parse_jsonc(at_limit) is not None
    deep = '{"a": ' + "[" * MAX_NESTING_DEPTH + "]" * MAX_NESTING_DEPTH + "}"
    err = error_of(deep)
    assert "nested more than 512 levels" in err.detail
    assert (err.line, err.column) == (1, 7 + MAX_NESTING_DEPTH - 1)


@pytest.mark.parametrize("opener", ["[", '{"a":', '[{"a":'])
def test_pathological_nesting_is_a_parse_error(opener: str) -> None:
    err = error_of(opener * 100_000)
    assert "nested" in err.detail


# Nesting within MAX_NESTING_DEPTH, which only a caller that has used most of the stack cannot
# afford.  From Python 3.12 on, the json module's C recursion no longer counts against
# sys.getrecursionlimit(), so these levels never run out of stack there.
WITHIN_LIMIT = b'{"a": ' + b"[" * (MAX_NESTING_DEPTH - 1) + b"]" * (MAX_NESTING_DEPTH - 1) + b"}"
C_RECURSION_IS_SEPARATE = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="json's C recursion has its own limit from Python 3.12"
)


def _at_stack_depth(depth: int, call: Callable[[], object]) -> object:
    return call() if depth == 0 else _at_stack_depth(depth - 1, call)


@C_RECURSION_IS_SEPARATE
@pytest.mark.parametrize("parse_function", [parse_app_json, parse_jsonc])
def test_deep_nesting_from_a_deep_caller_is_still_a_parse_error(
    parse_function: Callable[[bytes], object],
) -> None:
    # The parser stays within MAX_NESTING_DEPTH frames, but a caller may have used most of the
    # stack already: the RecursionError that causes must still come out as a ParseError.
    data = WITHIN_LIMIT
    budget = sys.getrecursionlimit() - len(inspect.stack()) - MAX_NESTING_DEPTH // 2
    with pytest.raises(ParseError, match="nested too deeply"):
        _at_stack_depth(budget, lambda: parse_function(data))


# --- full JSON ------------------------------------------------------------------------------


def test_string_escapes() -> None:
    text = r'"\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20AC \ud83d\ude00"'
    assert parse_jsonc(text) == json.loads(text)
    assert parse_jsonc(text) == '" \\ / \b \f \n \r \t A é € \U0001f600'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r'"\ud800"', "\ufffd"),
        (r'"\udc00x"', "\ufffdx"),
        (r'"\ud800\u0041"', "\ufffdA"),
        (r'"\ud800\ud800\udc00"', "\ufffd\U00010000"),
    ],
)
def test_lone_surrogates_become_replacement_characters(text: str, expected: str) -> None:
    assert parse_jsonc(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-0",
        "12",
        "-12.5e+3",
        "1E-2",
        "0.000",
        "1e400",
        "123456789012345678901234567890",
        "true",
        "false",
        "null",
        '""',
        "[]",
        "{}",
        '{"a": [1, {"b": null}], "a": 2}',
    ],
)
def test_json_values_match_json_loads(text: str) -> None:
    assert parse_jsonc(text) == json.loads(text)


def test_parse_jsonc_accepts_bytes() -> None:
    assert parse_jsonc(b'\xef\xbb\xbf{"a": [1,],}') == {"a": [1]}


def test_number_types() -> None:
    value = parse_jsonc("[1, 1.0, 1e0, -0]")
    assert value == [1, 1.0, 1.0, 0]
    assert isinstance(value, list)
    assert [type(v) for v in value] == [int, float, float, int]


def test_huge_integer_does_not_crash() -> None:
    assert parse_jsonc("9" * 5000) == float("inf")


# --- properties ----------------------------------------------------------------------------


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def jsonc_from(value: Any, comments: list[str], trailing: bool) -> str:
    """``value`` as indented JSON with a comment on every line and trailing commas added."""
    lines = json.dumps(value, indent=1, ensure_ascii=False).split("\n")
    out = []
    for index, line in enumerate(lines):
        following = lines[index + 1].lstrip() if index + 1 < len(lines) else ""
        if trailing and following[:1] in ("}", "]") and not line.endswith(("{", "[")):
            line += ","
        comment = comments[index % len(comments)] if comments else ""
        if index % 2:
            out.append(f"{line} // {comment}")
        else:
            indent = len(line) - len(line.lstrip())
            out.append(f"{line[:indent]}/* {comment} */{line[indent:]}")
    return "\n".join(out)


comment_text = st.text(st.characters(exclude_characters="\n", codec="utf-8")).filter(
    lambda s: "*/" not in s
)


@FAST
@given(json_values)
def test_json_round_trips_like_json_loads(value: Any) -> None:
    text = json.dumps(value)
    assert parse_jsonc(text) == json.loads(text)


@FAST
@given(json_values, st.lists(comment_text, max_size=3), st.booleans())
def test_jsonc_with_comments_and_trailing_commas_parses_like_plain_json(
    value: Any, comments: list[str], trailing: bool
) -> None:
    text = jsonc_from(value, comments, trailing)
    assert parse_jsonc(text.encode("utf-8")) == value


def _go_fold(key: str) -> str:
    special = {"\u212a": "K", "\u017f": "S", "\u0131": "I", "\u0130": "I"}
    return "".join(c.upper() if c < "\x80" else special.get(c, c) for c in key)


def spellings(name: str) -> st.SearchStrategy[str]:
    """``name`` with each letter in either case."""
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))
    )


RESERVED = {"SCRIPTS", "DOKKU", "PREDEPLOY", "POSTDEPLOY", "FORMATION", "QUANTITY"}
other_keys = st.text(max_size=10).filter(lambda k: _go_fold(k) not in RESERVED)
# No NUL: a script holding one is refused (test_a_script_with_a_nul_character_is_refused).
script_values = st.none() | st.text(st.characters(exclude_characters="\x00"))


@st.composite
def app_json_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A Python dict shaped like app.json, keys spelled in random cases, plus junk keys."""
    doc: dict[str, Any] = draw(st.dictionaries(other_keys, json_values, max_size=3))
    if draw(st.booleans()):
        scripts: dict[str, Any] = draw(st.dictionaries(other_keys, json_values, max_size=2))
        if draw(st.booleans()):
            dokku: dict[str, Any] = {}
            for name in ("predeploy", "postdeploy"):
                if draw(st.booleans()):
                    dokku[draw(spellings(name))] = draw(script_values)
            scripts[draw(spellings("dokku"))] = dokku
        if draw(st.booleans()):
            scripts[draw(spellings("postdeploy"))] = draw(script_values)
        doc[draw(spellings("scripts"))] = scripts
    return doc


def expected_scripts(doc: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """What app.json gives, worked out from ``json.loads`` output (keys fold-unique here)."""

    def field(obj: Any, name: str) -> Any:
        if not isinstance(obj, dict):
            return None
        for key, value in obj.items():
            if _go_fold(key) == name.upper():
                return value
        return None

    def script(value: Any) -> str | None:
        return value if isinstance(value, str) and value.strip() else None

    scripts = field(doc, "scripts")
    dokku = field(scripts, "dokku")
    return (
        script(field(dokku, "predeploy")),
        script(field(dokku, "postdeploy")),
        script(field(scripts, "postdeploy")),
    )


@FAST
@given(app_json_documents(), st.booleans(), st.lists(comment_text, max_size=2), st.booleans())
def test_scripts_match_json_loads(
    doc: dict[str, Any], ascii_only: bool, comments: list[str], jsonc: bool
) -> None:
    text = (
        jsonc_from(doc, comments, trailing=True)
        if jsonc
        else json.dumps(doc, ensure_ascii=ascii_only)
    )
    app = parse_app_json(text.encode("utf-8"))
    assert (app.predeploy, app.postdeploy, app.heroku_postdeploy) == expected_scripts(
        json.loads(json.dumps(doc))
    )


@FAST
@given(st.dictionaries(st.text(max_size=10), st.integers(min_value=0, max_value=2**63 - 1)))
def test_formation_quantities_round_trip(quantities: dict[str, int]) -> None:
    doc = {"formation": {name: {"quantity": count} for name, count in quantities.items()}}
    assert parse_app_json(json.dumps(doc).encode()).formation == quantities


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_parse_error(data: bytes) -> None:
    try:
        parse_app_json(data)
    except ParseError as err:
        assert err.filename == "app.json"


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_parse_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse_app_json(text.encode("utf-8"))


# Fragments that steer random text into the parser's deeper corners.
JSONC_TOKENS = [
    "{", "}", "[", "]", ":", ",", " ", "\n", '"', "\\", "\\u", "d83d", "dc00", "a", "0", "-",
    ".", "e", "+", "1", "true", "null", "//", "/*", "*/", "/", '"scripts"', '"dokku"',
    '"predeploy"', '"formation"', '"quantity"', "\t", "\r",
]  # fmt: skip


@FAST
@given(st.lists(st.sampled_from(JSONC_TOKENS), max_size=60).map("".join))
def test_token_soup_only_raises_parse_error(text: str) -> None:
    try:
        parse_app_json(text.encode("utf-8"))
    except ParseError as err:
        assert err.line is not None
        assert err.column is not None


@FAST
@given(json_values, st.data())
def test_an_unexpected_character_is_reported_where_it_is(value: Any, data: st.DataObject) -> None:
    # Every line of indented JSON starts at a token boundary, where '@' can never be valid.
    lines = json.dumps({"v": value}, indent=2, ensure_ascii=False).split("\n")
    index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    indent = len(lines[index]) - len(lines[index].lstrip())
    lines[index] = lines[index][:indent] + "@" + lines[index][indent:]
    err = error_of("\n".join(lines))
    assert "unexpected '@'" in err.detail
    assert (err.line, err.column) == (index + 1, indent + 1)


@FAST
@given(json_values, st.data())
def test_a_bad_byte_is_reported_where_it_is(value: Any, data: st.DataObject) -> None:
    raw = json.dumps({"v": value}, indent=1).encode("ascii")
    offset = data.draw(st.integers(min_value=0, max_value=len(raw)))
    err = error_of(raw[:offset] + b"\xff" + raw[offset:])
    prefix = raw[:offset].decode("ascii")
    assert err.detail == "invalid UTF-8 (byte 0xff)"
    assert err.line == prefix.count("\n") + 1
    assert err.column == len(prefix) - (prefix.rfind("\n") + 1) + 1


def test_error_detail_never_contains_a_raw_newline() -> None:
    for text, *_ in SYNTAX_ERRORS:
        assert not re.search(r"[\r\n]", error_of(text).detail)


# --- exact messages, boundaries and Go's decoding details ----------------------------------

EXACT_ERRORS = [
    # (text, the whole detail) for every message the parser words itself
    ('{"a": "abc', "unterminated string"),
    ('{"a": "ab\\', "unterminated string"),
    ("{} /* never closed", "unterminated /* comment"),
    ("{} / x", "unexpected '/' (a comment starts with // or /*)"),
    ("{\"a\": 'x'}", 'unexpected "\'", expected a value'),
    ('{"a": "\\u12G4"}', "invalid \\u escape in string (expected 4 hex digits)"),
    ('{"a": -}', "invalid number '-'"),
    ('{"a": 01}', "invalid number '01'"),
    ('{"a": 1.}', "invalid number '1.'"),
    ('{"a": 1e+}', "invalid number '1e+'"),
    ('{"a": "\\q"}', "invalid escape \\q in string"),
    ('{"a": "x\ty"}', "control character U+0009 in string must be escaped"),
    ('{"a": nul}', "unexpected word 'nul', expected a value"),
    ('{"a": 1} x', "unexpected 'x' after the end of the top-level value"),
    # At the end of the input, every "expected" names the bracket left open.
    (
        "{",
        "unexpected end of input, expected a string key or '}' to close the one opened at "
        "line 1, column 1",
    ),
    (
        '{"a"',
        "unexpected end of input, expected ':' to close the one opened at line 1, column 1",
    ),
    (
        '{"a":',
        "unexpected end of input, expected a value to close the one opened at line 1, column 1",
    ),
    (
        '{"a": 1',
        "unexpected end of input, expected ',' or '}' to close the one opened at line 1, column 1",
    ),
    (
        '{"a": 1,',
        "unexpected end of input, expected a string key or '}' to close the one opened "
        "at line 1, column 1",
    ),
    (
        '[\n {"a": [1',
        "unexpected end of input, expected ',' or ']' to close the one opened at line 2, column 8",
    ),
    ("[", "unexpected end of input, expected a value to close the one opened at line 1, column 1"),
    (
        '  {"a": {}',
        "unexpected end of input, expected ',' or '}' to close the one opened at line 1, column 3",
    ),
    # Before the end, the opening bracket is not mentioned.
    ('{"a" 1}', "unexpected '1', expected ':'"),
    ('{"a": 1 2}', "unexpected '2', expected ',' or '}'"),
    ("[1 2]", "unexpected '2', expected ',' or ']'"),
    ("{1}", "unexpected '1', expected a string key or '}'"),
]


@pytest.mark.parametrize(("text", "detail"), EXACT_ERRORS)
def test_exact_error_details(text: str, detail: str) -> None:
    assert error_of(text).detail == detail
    with pytest.raises(ParseError) as info:
        parse_jsonc(text)
    assert info.value.detail == detail


@pytest.mark.parametrize("text", ['{"a": }', "{", b'{"a": "\xff"}'])
def test_parse_jsonc_errors_name_the_file(text: str | bytes) -> None:
    with pytest.raises(ParseError, match=r"^Invalid app\.json at line 1, column \d+: "):
        parse_jsonc(text)
    with pytest.raises(ParseError, match=r"^Invalid deploy\.jsonc at line 1, column \d+: "):
        parse_jsonc(text, "deploy.jsonc")


def test_size_limit_message_names_the_file() -> None:
    with pytest.raises(ParseError) as info:
        parse_app_json(b" " * (MAX_APP_JSON_BYTES + 1), "deploy/app.json")
    assert str(info.value) == (
        "Invalid deploy/app.json: file is 1048577 bytes, over the limit of 1048576 bytes (1 MiB)"
    )


def test_invalid_utf8_after_a_leading_newline() -> None:
    err = error_of(b"\n\xff")
    assert (err.line, err.column) == (2, 1)
    err = error_of(b"\n\n  \xff")
    assert (err.line, err.column) == (3, 3)


@pytest.mark.parametrize("char", ["\x1c", "\x1d", "\x1e", "\x1f"])
def test_separators_python_calls_space_are_not_go_whitespace(char: str) -> None:
    # Python's str.strip() would strip U+001C..U+001F; Go's TrimSpace keeps them, so the file
    # is not "empty" and does not parse.
    assert error_of(char).detail == f"unexpected U+{ord(char):04X}, expected a value"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/**/ {}", {}),
        ("/***/ {}", {}),
        ("{/**/}", {}),
        ("[1 /* a */, /*b*/ 2]", [1, 2]),
        ("//\n{}", {}),
        ("{} //", {}),
    ],
)
def test_shortest_comments(text: str, expected: object) -> None:
    assert parse_jsonc(text) == expected


def test_nesting_limit_for_objects() -> None:
    def nested(depth: int) -> str:
        return '{"a": ' * depth + "1" + "}" * depth

    at_limit = parse_jsonc(nested(MAX_NESTING_DEPTH))
    for _ in range(MAX_NESTING_DEPTH - 1):
        assert isinstance(at_limit, dict)
        at_limit = at_limit["a"]
    assert at_limit == {"a": 1}
    err = error_of(nested(MAX_NESTING_DEPTH + 1))
    assert err.detail == "objects and arrays are nested more than 512 levels deep"
    assert (err.line, err.column) == (1, 6 * MAX_NESTING_DEPTH + 1)


def test_nesting_limit_for_objects_and_arrays_alternating() -> None:
    def nested(pairs: int, extra: str = "") -> str:
        return '[{"a": ' * pairs + extra + "1" + "}]" * pairs

    assert parse_jsonc(nested(MAX_NESTING_DEPTH // 2)) is not None
    err = error_of(nested(MAX_NESTING_DEPTH // 2, "["))
    assert err.detail == "objects and arrays are nested more than 512 levels deep"
    err = error_of(nested(MAX_NESTING_DEPTH // 2 - 1, '[{"a": {'))
    assert err.detail == "objects and arrays are nested more than 512 levels deep"


@C_RECURSION_IS_SEPARATE
def test_nesting_beyond_the_stack_has_its_own_message() -> None:
    data = WITHIN_LIMIT
    budget = sys.getrecursionlimit() - len(inspect.stack()) - MAX_NESTING_DEPTH // 2
    with pytest.raises(ParseError) as info:
        _at_stack_depth(budget, lambda: parse_app_json(data))
    assert info.value.detail == "objects and arrays are nested too deeply"


@pytest.mark.parametrize(
    ("escapes", "expected"),
    [
        # The edges of the high (D800..DBFF) and low (DC00..DFFF) surrogate ranges.
        (r"\ud800\udc00", "\U00010000"),
        (r"\ud800\udfff", "\U000103ff"),
        (r"\udbff\udc00", "\U0010fc00"),
        (r"\udbff\udfff", "\U0010ffff"),
        (r"\ud7ff\udc00", "\ud7ff\ufffd"),  # not a high surrogate: two characters
        (r"\ud800\udbff", "\ufffd\ufffd"),  # high, then high
        (r"\ud800\ue000", "\ufffd\ue000"),  # high, then past the low range
        (r"\udc00\udc00", "\ufffd\ufffd"),  # a low surrogate does not start a pair
        (r"\udfff", "\ufffd"),
        (r"\ue000", "\ue000"),
        (r"\ud7ff", "\ud7ff"),
    ],
)
def test_surrogate_range_edges(escapes: str, expected: str) -> None:
    assert parse_jsonc(f'"{escapes}"') == expected


def test_null_after_a_script_keeps_it_for_every_script() -> None:
    app = parse(
        '{"scripts": {"postdeploy": "heroku", "postdeploy": null, "dokku": {'
        '"predeploy": "pre", "predeploy": null, "postdeploy": "post", "postdeploy": null}}}'
    )
    assert app == AppJson(predeploy="pre", postdeploy="post", heroku_postdeploy="heroku")


def test_quantity_after_other_keys_is_found() -> None:
    app = parse('{"formation": {"web": {"size": "L", "quantity": 2, "autoscaling": {}}}}')
    assert app.formation == {"web": 2}


@pytest.mark.parametrize(
    ("literal", "shown"),
    [
        ("-1", "-1"),
        ("-12345678901234567890123", "-12345678901234567890123"),  # 24 characters: whole
        ("1.0000000000000000000000", "1.0000000000000000000000"),  # 24 characters: whole
        ("1.00000000000000000000000", "1.000000000000000000..."),  # 25: the first 20, then ...
        ("-" + "9" * 30, "-9999999999999999999..."),
    ],
)
def test_bad_quantity_literal_is_shown_shortened(literal: str, shown: str) -> None:
    err = error_of(f'{{"formation": {{"web": {{"quantity": {literal}}}}}}}')
    assert err.detail == f"formation.web.quantity must be a non-negative integer, not {shown}"


@pytest.mark.parametrize(
    ("literal", "shown"),
    [
        ("9223372036854775808", "9223372036854775808"),
        ("9" * 24, "9" * 24),
        ("9" * 25, "9" * 20 + "..."),
        ("9" * 5000, "9" * 20 + "..."),
    ],
)
def test_too_large_quantity_is_shown_shortened(literal: str, shown: str) -> None:
    err = error_of(f'{{"formation": {{"web": {{"quantity": {literal}}}}}}}')
    assert err.detail == f"formation.web.quantity is too large ({shown})"


@pytest.mark.parametrize(
    "path", ["scripts.dokku.predeploy", "scripts.dokku.postdeploy", "scripts.postdeploy"]
)
def test_a_script_with_a_nul_character_is_refused(path: str) -> None:
    *parents, name = path.split(".")
    document: dict[str, object] = {name: "echo \u0000 done"}
    for parent in reversed(parents):
        document = {parent: document}
    with pytest.raises(ParseError) as failure:
        parse_app_json(json.dumps(document).encode())
    assert failure.value.message.endswith(f": {path} contains a NUL character")
    assert "\x00" not in failure.value.message


# --- the JSONC standardizer and the json module's errors ------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',  # a constant the json module would accept
        '{"a": "x',  # found by the standardizer
        '{"a": 01}',  # a malformed number
        '{"a": 1} x',  # a json module error with a wording of its own
        '{"a" 1}',  # a json module error about what was expected
        '{"scripts": 1}',  # a type error
        '{"formation": {"web": {"quantity": 1.5}}}',  # a quantity as written
    ],
)
def test_every_error_names_the_file(text: str) -> None:
    err = error_of(text, filename="deploy/app.json")
    assert err.filename == "deploy/app.json"
    assert str(err).startswith("Invalid deploy/app.json at line 1, column ")


@C_RECURSION_IS_SEPARATE
def test_nesting_beyond_the_stack_names_the_file() -> None:
    budget = sys.getrecursionlimit() - len(inspect.stack()) - MAX_NESTING_DEPTH // 2
    with pytest.raises(ParseError) as info:
        _at_stack_depth(budget, lambda: parse_app_json(WITHIN_LIMIT, "deploy/app.json"))
    assert str(info.value) == "Invalid deploy/app.json: objects and arrays are nested too deeply"


def test_nesting_depth_goes_down_at_each_closing_bracket() -> None:
    outer = MAX_NESTING_DEPTH - 1
    # Siblings at the deepest level allowed, one after the other.
    assert parse_jsonc("[" * outer + "[], [], []" + "]" * outer) is not None
    # One level deeper, after a sibling has closed, is still too deep.
    text = "[" * outer + "[], [[]]" + "]" * outer
    with pytest.raises(ParseError) as info:
        parse_jsonc(text)
    assert info.value.detail == "objects and arrays are nested more than 512 levels deep"
    assert info.value.column == outer + len("[], [[")


@pytest.mark.parametrize(
    ("text", "line", "column", "kind"),
    [
        # No space after the colons.
        ('{"scripts":{"dokku":{"predeploy":1}}}', 1, 34, "a number"),
        # Later members, after values of every kind, comments and a trailing comma.
        (
            '{"name": "x", /* c */ "addons": {"A": [1, {"b": null}]},\n'
            ' "scripts": {"test": "t", "dokku": {\n'
            '   "postdeploy": "p", // c\n'
            '   "predeploy" :  true,\n'
            " }}}",
            4,
            19,
            "a boolean",
        ),
    ],
)
def test_type_errors_point_at_the_value(text: str, line: int, column: int, kind: str) -> None:
    err = error_of(text)
    assert err.detail == f"scripts.dokku.predeploy must be a string, not {kind}"
    assert (err.line, err.column) == (line, column)
