"""A deploy to an engine that does not answer leaves no app behind (issue 9, item C).

The deploy takes the app's lock, then contacts the engine, and only then creates a missing
app: so a new app's deploy to an unreachable engine ends in one line and exit 1, and the app
does not exist afterwards (docs/deploy.md, docs/failure-and-recovery.md).
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dokku_tasks import history
from dokku_tasks.apps import AppRegistry
from dokku_tasks.cli import cli
from tests.conftest import BASE_IMAGE, write_app


def test_unreachable_engine_does_not_create_the_app(tmp_path: Path) -> None:
    root = tmp_path / "state"
    source = write_app(tmp_path / "src", {"Dockerfile": f"FROM {BASE_IMAGE}\n"})
    result = CliRunner().invoke(
        cli,
        ["--root", str(root), "deploy", "newapp", "--source", str(source)],
        env={"DOCKER_HOST": "tcp://127.0.0.1:1"},
    )
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(" !     Cannot reach the Docker engine at tcp://127.0.0.1:1: ")
    assert result.stdout == ""  # no "-----> Creating newapp..."
    assert not AppRegistry(root).exists("newapp")
    assert not (root / "apps").exists()
    assert not (root / "config").exists()
    listed = CliRunner().invoke(cli, ["--root", str(root), "apps:list"])
    assert listed.stderr == " !     You haven't deployed any applications yet\n"


def test_unreachable_engine_keeps_an_existing_app_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "state"
    AppRegistry(root).create("web")
    before = sorted(p.relative_to(root) for p in root.rglob("*") if p.parent.name != "locks")
    result = CliRunner().invoke(
        cli,
        ["--root", str(root), "deploy", "web", "--image", "img"],
        env={"DOCKER_HOST": "tcp://127.0.0.1:1"},
    )
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    # Only the lock (ROOT/locks/web.lock) and the history's record of the failed attempt are
    # new; the app and its state are as they were.
    after = {p.relative_to(root) for p in root.rglob("*") if p.parent.name != "locks"}
    recorded = {
        Path("history"),
        Path("history/web"),
        Path("history/web/1.json"),
        Path("history/web/1.events.jsonl"),
    }
    assert after - {Path("locks")} - recorded == set(before)
    [record], _ = history.list_deploys(root, "web")
    assert record.status == "failed"
    assert f" !     {record.error}\n" == result.stderr
