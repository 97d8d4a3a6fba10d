"""The stored config (``config:set``): its files, modes, atomic writes, and what it refuses."""

from __future__ import annotations

import os
import stat
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dokku_tasks import config_store
from dokku_tasks.config_store import (
    MAX_VALUE_BYTES,
    ConfigStore,
    check_key,
    check_value,
    render,
)
from dokku_tasks.errors import ConfigError, FileTooLargeError
from dokku_tasks.options import _double_quoted, parse_env_file
from dokku_tasks.properties import GLOBAL, PropertyStore

KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
#: Any text a value can hold: every character but NUL and the lone surrogates UTF-8 refuses.
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_values_are_stored_in_one_private_file_per_app(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.set("web", {"SECRET_KEY": "s3cret", "DEBUG": "0"})

    path = tmp_path / "config" / "config" / "web" / "ENV"
    assert store.path("web") == path
    assert path.read_text() == 'DEBUG="0"\nSECRET_KEY="s3cret"\n'
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(path.parent.parent) == 0o700


def test_directories_made_before_are_made_private(tmp_path: Path) -> None:
    loose = tmp_path / "config" / "config" / "web"
    loose.mkdir(parents=True, mode=0o755)
    os.chmod(loose, 0o755)
    ConfigStore(tmp_path).set("web", {"A": "1"})
    assert mode(loose) == 0o700


def test_a_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    for number in range(3):
        store.set("web", {f"K{number}": "v"})
    assert sorted(p.name for p in store.path("web").parent.iterdir()) == [".ENV.lock", "ENV"]


def test_set_keeps_other_keys_and_replaces_given_ones(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.set("web", {"A": "1", "B": "2"})
    store.set("web", {"B": "two", "C": "3"})
    assert store.get_all("web") == {"A": "1", "B": "two", "C": "3"}


def test_unset_removes_only_what_was_set_and_says_which(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.set("web", {"A": "1", "B": "2"})
    assert store.unset("web", ["B", "Z", "B"]) == ["B"]
    assert store.get_all("web") == {"A": "1"}
    assert store.unset("other", ["A"]) == []


def test_an_app_without_values_has_none(tmp_path: Path) -> None:
    assert ConfigStore(tmp_path).get_all("web") == {}
    assert ConfigStore(tmp_path).merged("web") == {}


def test_merged_lays_the_app_over_the_global_values(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.set(GLOBAL, {"A": "global", "G": "only global"})
    store.set("web", {"A": "app"})
    assert store.merged("web") == {"A": "app", "G": "only global"}
    assert store.get_all(GLOBAL) == {"A": "global", "G": "only global"}
    assert store.path(GLOBAL) == tmp_path / "config" / "config" / "--global" / "ENV"


def test_the_file_is_an_env_file_that_deploy_can_read(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    values = {"MOTD": 'two\nlines and a "quote"', "PATHS": "C:\\dir\\n", "EMPTY": ""}
    store.set("web", values)
    assert parse_env_file(store.path("web").read_bytes(), "ENV") == values


def test_apps_destroy_removes_the_apps_values(tmp_path: Path) -> None:
    ConfigStore(tmp_path).set("web", {"A": "1"})
    PropertyStore(tmp_path).destroy_app("web")
    assert not (tmp_path / "config" / "config" / "web").exists()


# -- refused input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "shown"),
    [("", "''"), ("A=B", "'A=B'"), ("A\x00B", "'A\\x00B'"), ("1A", "'1A'"), ("A-B", "'A-B'")],
)
def test_a_bad_key_stores_nothing(tmp_path: Path, key: str, shown: str) -> None:
    store = ConfigStore(tmp_path)
    with pytest.raises(ConfigError) as info:
        store.set("web", {"GOOD": "1", key: "value"})
    assert info.value.message == (f"Invalid key name {shown}: it must match [A-Za-z_][A-Za-z0-9_]*")
    assert info.value.exit_code == 1
    assert not store.path("web").exists()


def test_a_value_with_a_nul_stores_nothing_and_is_not_shown(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.set("web", {"KEEP": "1"})
    with pytest.raises(ConfigError) as info:
        store.set("web", {"GOOD": "1", "BAD": "sec\x00ret"})
    assert info.value.message == "Invalid value for BAD: it contains a NUL byte"
    assert store.get_all("web") == {"KEEP": "1"}


def test_a_value_over_one_mebibyte_stores_nothing(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    with pytest.raises(ConfigError) as info:
        store.set("web", {"BIG": "é" * (MAX_VALUE_BYTES // 2 + 1)})
    assert info.value.message == (
        "Invalid value for BIG: it is 1048578 bytes, over the limit of 1048576 bytes (1 MiB)"
    )
    assert not store.path("web").exists()
    # A value of exactly the limit is kept.
    store.set("web", {"BIG": "x" * MAX_VALUE_BYTES})
    assert len(store.get_all("web")["BIG"]) == MAX_VALUE_BYTES


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^Invalid value for K: it is not valid Unicode text$"):
        check_value("K", "\udcff")


def test_a_hand_broken_file_is_one_line_without_its_content(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.set("web", {"A": "1"})
    store.path("web").write_text('A="1"\nthis line holds a secret\n')
    with pytest.raises(ConfigError) as info:
        store.get_all("web")
    message = info.value.message
    assert message.startswith(f"Config file {store.path('web')} does not parse at line 2")
    assert "secret" not in message


def test_a_directory_in_the_files_place_is_one_line(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.path("web").mkdir(parents=True)
    with pytest.raises(ConfigError, match="Is a directory"):
        store.get_all("web")


def test_a_directory_in_the_files_place_says_so_and_where(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.path("web").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        store.get_all("web")
    assert info.value.message == f"Cannot read config file {store.path('web')}: Is a directory"


def test_a_fifo_in_the_files_place_is_refused_without_waiting_for_a_writer(
    tmp_path: Path,
) -> None:
    store = ConfigStore(tmp_path)
    store.path("web").parent.mkdir(parents=True)
    os.mkfifo(store.path("web"))
    with pytest.raises(ConfigError) as info:
        store.get_all("web")
    assert info.value.message == f"Cannot read config file {store.path('web')}: not a file"


def test_a_file_where_the_apps_directory_belongs_is_one_line(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    app_directory = store.path("web").parent
    app_directory.parent.mkdir(parents=True)
    app_directory.write_text("")
    with pytest.raises(ConfigError) as info:
        store.get_all("web")
    assert info.value.message == f"Cannot read config file {store.path('web')}: Not a directory"
    with pytest.raises(ConfigError) as info:
        store.set("web", {"A": "1"})
    assert info.value.message == (f"Cannot write config directory {app_directory}: File exists")


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A config file limit of 100 bytes instead of 64 MiB."""
    monkeypatch.setattr(config_store, "MAX_CONFIG_BYTES", 100)
    return 100


def test_a_file_at_the_limit_is_read_and_one_byte_over_is_refused(
    tmp_path: Path, small_limit: int
) -> None:
    store = ConfigStore(tmp_path)
    store.set("web", {"A": "1"})
    line = 'A="' + "x" * (small_limit - 5) + '"\n'
    store.path("web").write_text(line)
    assert store.get_all("web") == {"A": "x" * (small_limit - 5)}
    store.path("web").write_text(line + "\n")
    with pytest.raises(FileTooLargeError) as info:
        store.get_all("web")
    assert info.value.message == (
        f"Invalid config file: {store.path('web')} is 101 bytes, over the limit of 100 bytes"
        " (100 bytes)"
    )


def linked_config_file(root: Path, target: str) -> ConfigStore:
    """A store whose app ``web`` has, in its config file's place, a symlink to ``target``."""
    store = ConfigStore(root)
    store.path("web").parent.mkdir(parents=True)
    store.path("web").symlink_to(target)
    return store


def test_a_file_that_hides_its_size_is_refused_after_the_limit(
    tmp_path: Path, small_limit: int
) -> None:
    # /proc files say they are empty: only reading tells how large they are.
    store = linked_config_file(tmp_path, "/proc/self/status")
    with pytest.raises(FileTooLargeError) as info:
        store.get_all("web")
    assert info.value.message == (
        f"Invalid config file: {store.path('web')} is over the limit of 100 bytes (100 bytes)"
    )


def test_a_file_that_fails_to_read_is_one_line(tmp_path: Path) -> None:
    # /proc/self/mem is a regular file whose first page cannot be read: EIO.
    store = linked_config_file(tmp_path, "/proc/self/mem")
    with pytest.raises(ConfigError) as info:
        store.get_all("web")
    assert info.value.message == (
        f"Cannot read config file {store.path('web')}: Input/output error"
    )


def test_a_write_at_the_limit_is_stored_and_one_byte_over_is_refused(
    tmp_path: Path, small_limit: int
) -> None:
    store = ConfigStore(tmp_path)
    value = "x" * (small_limit - 5)  # A="x…x" and a newline: exactly the limit
    store.set("web", {"A": value})
    assert store.get_all("web") == {"A": value}
    with pytest.raises(ConfigError) as info:
        store.set("web", {"A": value + "x"})
    assert info.value.message == (
        "Cannot store the config of web: it would be 101 bytes, over the limit of 100 bytes"
        " (100 bytes)"
    )
    assert store.get_all("web") == {"A": value}


def test_a_file_that_is_not_utf8_is_one_line_with_its_line_number(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.set("web", {"A": "1"})
    store.path("web").write_bytes(b'A="1"\nB="\xff"\n')
    with pytest.raises(ConfigError) as info:
        store.get_all("web")
    assert info.value.message == (
        f"Config file {store.path('web')} does not parse at line 2: fix it, or unset and set"
        " its values"
    )


def test_the_temporary_file_is_written_beside_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ConfigStore(tmp_path)
    # Anywhere else, os.replace could cross file systems: no other temporary directory works.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(source: str, target: Path) -> None:
        replaced.append((source, str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    store.set("web", {"A": "1"})
    [(source, target)] = replaced
    assert target == str(store.path("web"))
    assert Path(source).parent == store.path("web").parent
    assert Path(source).name.startswith(".ENV.")


def test_a_failed_write_keeps_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ConfigStore(tmp_path)
    store.set("web", {"A": "1"})

    def replace(source: str, target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ConfigError) as info:
        store.set("web", {"B": "2"})
    assert info.value.message == (
        f"Cannot write config file {store.path('web')}: No space left on device"
    )
    monkeypatch.undo()
    assert store.get_all("web") == {"A": "1"}
    assert sorted(p.name for p in store.path("web").parent.iterdir()) == [".ENV.lock", "ENV"]


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("-" * 64, repr("-" * 64)),
        ("-" * 65, repr("-" * 61 + "...")),
    ],
)
def test_a_bad_key_is_shown_whole_up_to_64_characters(key: str, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_key(key)
    assert info.value.message == (f"Invalid key name {shown}: it must match [A-Za-z_][A-Za-z0-9_]*")


# -- the format, property-tested ------------------------------------------------------------------


@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_every_value_survives_the_file(values: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = ConfigStore(directory)
        store.set("web", values)
        assert store.get_all("web") == values


@given(VALUES)
def test_render_and_parse_are_inverse(value: str) -> None:
    assert parse_env_file(render({"K": value}), "ENV") == {"K": value}


def _reference_double_quoted(rest: str) -> tuple[str, str] | None:
    """The character loop the env-file parser used before its regular expression."""
    out: list[str] = []
    index = 1
    while index < len(rest):
        char = rest[index]
        if char == '"':
            return "".join(out), rest[index + 1 :]
        if char == "\\" and index + 1 < len(rest):
            escaped = {"\\": "\\", '"': '"', "n": "\n"}.get(rest[index + 1])
            if escaped is not None:
                out.append(escaped)
                index += 2
                continue
        out.append(char)
        index += 1
    return None


@given(st.text(alphabet=st.sampled_from('ab"\\n\n x#')))
def test_double_quoted_values_parse_as_before(text: str) -> None:
    assert _double_quoted('"' + text) == _reference_double_quoted('"' + text)


@given(st.text(max_size=30))
def test_check_key_accepts_exactly_the_env_rule(key: str) -> None:
    valid = (
        bool(key)
        and key[0] in string.ascii_letters + "_"
        and all(c in string.ascii_letters + string.digits + "_" for c in key)
    )
    if valid:
        assert check_key(key) == key
    else:
        with pytest.raises(ConfigError):
            check_key(key)
