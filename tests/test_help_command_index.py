"""``--help`` lists the plugins' commands from a cached index while it is current."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dokku_tasks import command_index

REPO = Path(__file__).resolve().parents[1]

ENTRY = {"name": "x:y", "help": "Do y.", "short_help": None, "deprecated": False}


def _write_plugin(site: Path, command: str) -> Path:
    """A distribution with one ``dokku_tasks`` entry point whose plugin adds ``command``."""
    info = site / "helpindex_probe-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: helpindex-probe\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dokku_tasks]\nprobe = helpindex_probe\n")
    module = site / "helpindex_probe.py"
    module.write_text(
        textwrap.dedent(
            f"""
            import click
            from dokku_tasks import hookimpl

            @hookimpl
            def register_commands(cli):
                @cli.command({command!r})
                def probe():
                    "The probe's command."
            """
        )
    )
    return module


def _help(site: Path, cache: Path) -> tuple[str, list[str]]:
    """``--help``'s output, and which of the library's heavier modules it imported."""
    probe = (
        "import sys\n"
        "from dokku_tasks.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='dokku-tasks')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('dokku_tasks.manager', 'pluggy', 'dokku_tasks.plugins')\n"
        "print('IMPORTED', sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    return _run_probe(site, cache, probe)


def _run_probe(site: Path, cache: Path, probe: str, **extra: str) -> tuple[str, list[str]]:
    """Run ``probe`` in a fresh interpreter that sees the plugin in ``site`` and the cache in
    ``cache``; return what it printed before its ``IMPORTED`` list, and that list."""
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(cache),
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        **extra,
    }
    env.pop("DOKKU_TASKS_DISABLE_PLUGINS", None)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text, _, imported = done.stdout.rpartition("IMPORTED ")
    return text, json.loads(imported.replace("'", '"'))


def test_second_help_lists_the_same_commands_without_loading_plugins(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    _write_plugin(site, "probe:hello")
    first, loaded = _help(site, cache)
    assert "probe:hello" in first
    assert "The probe's command." in first
    assert "app-json:set" in first
    assert "dokku_tasks.manager" in loaded
    second, loaded_again = _help(site, cache)
    assert second == first
    assert loaded_again == []


def test_an_edited_plugin_is_listed_as_it_now_is(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    module = _write_plugin(site, "probe:hello")
    _help(site, cache)
    _write_plugin(site, "probe:goodbye")
    # The same second as the first write on a coarse clock: move the mtime on explicitly.
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    text, loaded = _help(site, cache)
    assert "probe:goodbye" in text
    assert "probe:hello" not in text
    assert "dokku_tasks.manager" in loaded


def test_an_uninstalled_plugin_leaves_the_listing(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    _write_plugin(site, "probe:hello")
    _help(site, cache)
    info = site / "helpindex_probe-1.0.dist-info"
    for path in info.iterdir():
        path.unlink()
    info.rmdir()
    text, _ = _help(site, cache)
    assert "probe:hello" not in text
    assert "app-json:set" in text


def test_help_works_when_the_cache_cannot_be_written(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _write_plugin(site, "probe:hello")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    for _ in range(2):
        text, loaded = _help(site, blocked)
        assert "probe:hello" in text
        assert "dokku_tasks.manager" in loaded
    assert blocked.read_text() == ""


# -- the index file ------------------------------------------------------------------------


@pytest.fixture
def watched(tmp_path: Path) -> Path:
    path = tmp_path / "plugin.py"
    path.write_text("")
    return path


def test_round_trip(tmp_path: Path, watched: Path) -> None:
    index = tmp_path / "c" / "index.json"
    command_index.write(index, ["k"], [str(watched)], [ENTRY])
    assert command_index.read(index, ["k"]) == [ENTRY]
    assert [p.name for p in index.parent.iterdir()] == ["index.json"]


def test_another_key_is_a_miss(tmp_path: Path, watched: Path) -> None:
    index = tmp_path / "index.json"
    command_index.write(index, ["k"], [str(watched)], [ENTRY])
    assert command_index.read(index, ["other"]) is None


def test_a_changed_file_is_a_miss(tmp_path: Path, watched: Path) -> None:
    index = tmp_path / "index.json"
    command_index.write(index, ["k"], [str(watched)], [ENTRY])
    stat = watched.stat()
    os.utime(watched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert command_index.read(index, ["k"]) is None


def test_a_removed_file_is_a_miss(tmp_path: Path, watched: Path) -> None:
    index = tmp_path / "index.json"
    command_index.write(index, ["k"], [str(watched)], [ENTRY])
    watched.unlink()
    assert command_index.read(index, ["k"]) is None


def test_nothing_watched_is_a_miss(tmp_path: Path) -> None:
    index = tmp_path / "index.json"
    command_index.write(index, ["k"], [str(tmp_path / "gone")], [ENTRY])
    assert command_index.read(index, ["k"]) is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"format": 2, "key": ["k"], "stamps": {"S": 0}, "commands": []}',
        '{"format": 1, "key": ["k"], "stamps": [], "commands": []}',
        '{"format": 1, "key": ["k"], "stamps": {"S": 0}, "commands": {}}',
        '{"format": 1, "key": ["k"], "stamps": {"S": 0}, "commands": ["x"]}',
        '{"format": 1, "key": ["k"], "stamps": {"S": 0}, "commands": [{"name": 1}]}',
        '{"format": 1, "key": ["k"], "stamps": {"S": 0}, "commands": [{}]}',
    ],
)
def test_a_malformed_index_is_a_miss(tmp_path: Path, watched: Path, content: str) -> None:
    index = tmp_path / "index.json"
    stamp = str(command_index.stamps([str(watched)])[str(watched)])
    index.write_text(content.replace('"S": 0', json.dumps(str(watched)) + ": " + stamp))
    assert command_index.read(index, ["k"]) is None


def test_a_well_formed_index_is_a_hit(tmp_path: Path, watched: Path) -> None:
    index = tmp_path / "index.json"
    stamp = command_index.stamps([str(watched)])[str(watched)]
    data = {"format": 1, "key": ["k"], "stamps": {str(watched): stamp}, "commands": [ENTRY]}
    index.write_text(json.dumps(data))
    assert command_index.read(index, ["k"]) == [ENTRY]


def test_a_failed_write_leaves_nothing(tmp_path: Path, watched: Path) -> None:
    parent = tmp_path / "file"
    parent.write_text("")
    command_index.write(parent / "index.json", ["k"], [str(watched)], [ENTRY])
    assert parent.read_text() == ""
    index = tmp_path / "dir" / "index.json"
    index.mkdir(parents=True)  # os.replace onto a directory fails
    command_index.write(index, ["k"], [str(watched)], [ENTRY])
    assert sorted(p.name for p in index.parent.iterdir()) == ["index.json"]


def test_cache_file_location() -> None:
    assert command_index.cache_file({"XDG_CACHE_HOME": "/c"}) == Path(
        "/c/dokku-tasks/plugin-commands.json"
    )
    home = Path(os.path.expanduser("~"))
    assert command_index.cache_file({}) == home / ".cache/dokku-tasks/plugin-commands.json"
    assert command_index.cache_file({"XDG_CACHE_HOME": ""}) == command_index.cache_file({})


def test_context_key_names_interpreter_path_and_disabled_plugins() -> None:
    key = command_index.context_key({"DOKKU_TASKS_DISABLE_PLUGINS": "swarm"})
    assert key == [sys.executable, "swarm", *sys.path]
    assert command_index.context_key({})[1] == ""


def test_watched_paths_leave_out_the_standard_library(tmp_path: Path) -> None:
    stdlib_file = json.__file__
    site_file = pytest.__file__
    ours = str(tmp_path / "x.py")
    paths = command_index.watched_paths([stdlib_file, site_file, ours, ours])
    assert stdlib_file not in paths
    assert site_file in paths
    assert paths.count(ours) == 1
    directories = [entry for entry in sys.path if entry and os.path.isdir(entry)]
    assert paths[: len(directories)] == directories


def test_stamps_skip_missing_paths(tmp_path: Path, watched: Path) -> None:
    assert command_index.stamps([str(watched), str(tmp_path / "gone")]) == {
        str(watched): watched.stat().st_mtime_ns
    }


def test_loaded_module_files_include_this_test() -> None:
    assert __file__ in command_index.loaded_module_files()


# -- the whole help text, answered before click is imported -----------------------------------


def _console_help(site: Path, cache: Path, columns: str = "80") -> tuple[str, list[str]]:
    """What the console script prints for ``--help``, and whether it imported click."""
    probe = (
        "import sys\n"
        "sys.argv = ['dokku-tasks', '--help']\n"
        "from dokku_tasks.console import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('IMPORTED', sorted(m for m in sys.modules if m in ('click', 'dokku_tasks.cli')))\n"
    )
    return _run_probe(site, cache, probe, COLUMNS=columns)


def test_the_second_help_is_printed_without_importing_click(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    _write_plugin(site, "probe:hello")
    first, imported = _console_help(site, cache)
    assert imported == ["click", "dokku_tasks.cli"]
    assert first.startswith("Usage: dokku-tasks [OPTIONS] COMMAND [ARGS]...")
    assert "probe:hello" in first
    second, imported_again = _console_help(site, cache)
    assert (second, imported_again) == (first, [])


def test_the_help_text_is_kept_per_terminal_width(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    _write_plugin(site, "probe:hello")
    narrow, _ = _console_help(site, cache, columns="60")
    wide, imported = _console_help(site, cache, columns="120")
    # Another width is laid out by click (and kept); the first one is still answered.
    assert imported == ["click", "dokku_tasks.cli"]
    assert narrow != wide
    assert _console_help(site, cache, columns="60") == (narrow, [])
    assert _console_help(site, cache, columns="120") == (wide, [])


def test_an_edited_plugin_is_not_answered_from_the_old_help_text(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    module = _write_plugin(site, "probe:hello")
    _console_help(site, cache)
    _console_help(site, cache)
    _write_plugin(site, "probe:goodbye")
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    text, imported = _console_help(site, cache)
    assert "probe:goodbye" in text and "probe:hello" not in text
    assert imported == ["click", "dokku_tasks.cli"]


def test_help_text_is_stored_only_in_a_current_index(tmp_path: Path, watched: Path) -> None:
    index = tmp_path / "index.json"
    command_index.store_help("text", index, ["k"])
    assert not index.exists()
    command_index.write(index, ["k"], [str(watched)], [ENTRY])
    command_index.store_help("text", index, ["k"])
    assert command_index.cached_help(index, ["k"]) == "text"
    assert command_index.cached_help(index, ["other"]) is None
    assert command_index.read(index, ["k"]) == [ENTRY]
    stat = watched.stat()
    os.utime(watched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert command_index.cached_help(index, ["k"]) is None
    command_index.store_help("newer", index, ["k"])
    assert command_index.cached_help(index, ["k"]) is None


@pytest.mark.parametrize("texts", ['"x"', "[]", '{"80": 5}', "{}"])
def test_a_malformed_help_entry_is_a_miss(
    tmp_path: Path, watched: Path, texts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(command_index, "terminal_columns", lambda: 80)
    index = tmp_path / "index.json"
    command_index.write(index, ["k"], [str(watched)], [ENTRY])
    data = json.loads(index.read_text())
    data["help"] = json.loads(texts)
    index.write_text(json.dumps(data))
    assert command_index.cached_help(index, ["k"]) is None
    command_index.store_help("text", index, ["k"])
    assert command_index.cached_help(index, ["k"]) == "text"
