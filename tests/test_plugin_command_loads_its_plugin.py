"""A plugin's command loads only the plugin that registers it, once the command index knows
which one that is; anything the index cannot vouch for loads every plugin, as before."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import click
import pytest

from dokku_tasks.cli import _indexed_command
from tests.test_help_command_index import _run_probe, _write_plugin

HEAVY = ("dokku_tasks.manager", "dokku_tasks.plugins", "dokku_tasks.hooks", "helpindex_probe")


def _command(site: Path, cache: Path, args: list[str]) -> tuple[str, list[str]]:
    """What ``dokku-tasks ARGS`` printed, and which plugin modules it imported."""
    probe = (
        "import sys\n"
        "from dokku_tasks.cli import cli\n"
        "try:\n"
        f"    cli.main({args!r}, prog_name='dokku-tasks')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('IMPORTED', sorted(m for m in sys.modules if m.startswith({HEAVY!r})))\n"
    )
    return _run_probe(site, cache, probe)


def _entries(cache: Path) -> dict[str, dict[str, object]]:
    data = json.loads((cache / "dokku-tasks" / "plugin-commands.json").read_text())
    return {entry["name"]: entry for entry in data["commands"]}


def test_a_third_party_command_runs_with_only_its_plugin_loaded(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    _write_plugin(site, "probe:hello")
    first, loaded = _command(site, cache, ["probe:hello", "--help"])
    assert "The probe's command." in first
    assert "dokku_tasks.manager" in loaded and "dokku_tasks.plugins.swarm" in loaded
    second, loaded_again = _command(site, cache, ["probe:hello", "--help"])
    assert second == first
    # The plugin's own ``from dokku_tasks import hookimpl`` brings the hook specs: no more.
    assert loaded_again == ["dokku_tasks.hookspecs", "helpindex_probe"]


def test_a_built_in_command_runs_with_only_its_plugin_loaded(tmp_path: Path) -> None:
    site, cache, root = tmp_path / "site", tmp_path / "cache", tmp_path / "root"
    site.mkdir()
    _command(site, cache, ["--root", str(root), "apps:create", "blog"])
    _command(site, cache, ["--root", str(root), "config:set", "--no-restart", "blog", "A=1"])
    shown, loaded = _command(site, cache, ["--root", str(root), "config:show", "blog"])
    assert shown.splitlines() == ["=====> blog env vars", "A:  1"]
    assert [m for m in loaded if m.startswith("dokku_tasks.plugins.")] == [
        "dokku_tasks.plugins.config"
    ]
    assert "dokku_tasks.manager" not in loaded


def test_the_index_names_the_module_of_each_command_a_plugin_registers(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    _write_plugin(site, "probe:hello")
    _command(site, cache, ["probe:hello", "--help"])
    entries = _entries(cache)
    assert entries["probe:hello"]["module"] == "helpindex_probe"
    assert entries["config:show"]["module"] == "dokku_tasks.plugins.config"
    assert entries["deploys:list"]["module"] == "dokku_tasks.plugins.deploys"
    # A settings namespace's commands are the core's, built from every plugin's settings.
    assert entries["app-json:set"]["module"] is None
    assert entries["ps:report"]["module"] is None


def test_a_namespace_command_still_loads_every_plugin(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    _command(site, cache, ["ps:report", "--help"])
    _, loaded = _command(site, cache, ["ps:report", "--help"])
    assert "dokku_tasks.manager" in loaded


def test_an_edited_plugin_is_loaded_with_all_the_others(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    module = _write_plugin(site, "probe:hello")
    _command(site, cache, ["probe:hello", "--help"])
    _write_plugin(site, "probe:goodbye")
    # The same second as the first write on a coarse clock: move the mtime on explicitly.
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    text, loaded = _command(site, cache, ["probe:goodbye", "--help"])
    assert "The probe's command." in text
    assert "dokku_tasks.manager" in loaded
    assert "probe:hello" not in _entries(cache)
    again, loaded = _command(site, cache, ["probe:goodbye", "--help"])
    assert again == text
    assert loaded == ["dokku_tasks.hookspecs", "helpindex_probe"]


# -- _indexed_command ------------------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("indexed_probe")]:
        del sys.modules[name]


def _module(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(body))


REGISTERS = """
    import click

    def register_commands(cli):
        @cli.command("probe:one")
        def one():
            "One."
"""


def test_a_named_module_builds_the_command(plugin_dir: Path) -> None:
    _module(plugin_dir, "indexed_probe_ok", REGISTERS)
    command = _indexed_command([{"name": "probe:one", "module": "indexed_probe_ok"}], "probe:one")
    assert isinstance(command, click.Command)
    assert command.name == "probe:one" and command.help == "One."


def test_what_the_index_cannot_vouch_for_is_none(plugin_dir: Path) -> None:
    _module(plugin_dir, "indexed_probe_ok", REGISTERS)
    _module(plugin_dir, "indexed_probe_broken", "raise RuntimeError('broken')\n")
    _module(plugin_dir, "indexed_probe_bare", "X = 1\n")
    entry = {"name": "probe:one", "module": "indexed_probe_ok"}
    assert _indexed_command(None, "probe:one") is None  # no current index
    assert _indexed_command([entry], "probe:two") is None  # not in the index
    assert _indexed_command([{**entry, "module": None}], "probe:one") is None
    assert _indexed_command([{"name": "probe:one"}], "probe:one") is None
    assert _indexed_command([{**entry, "name": "probe:two"}], "probe:two") is None
    for module in ("indexed_probe_broken", "indexed_probe_bare", "indexed_probe_missing"):
        assert _indexed_command([{**entry, "module": module}], "probe:one") is None
