"""The entrypoint plugin: Dokku's ENTRYPOINT and tini rules, as pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from dokku_tasks.errors import CommandError
from dokku_tasks.models import DeployContext, ImageInfo, Task
from dokku_tasks.plugins.entrypoint import TINI_ENTRYPOINTS, shell_argv, task_argv
from dokku_tasks.properties import PropertyStore


def context(shell: str | None = None) -> DeployContext:
    return DeployContext(
        app="web", image="i", properties=PropertyStore(Path("/nonexistent")), shell=shell
    )


def image(entrypoint: list[str] | None) -> ImageInfo:
    return ImageInfo(ref="r", id="sha256:1", entrypoint=entrypoint)


@pytest.mark.parametrize("entrypoint", [None, *map(list, TINI_ENTRYPOINTS)])
def test_no_or_tini_entrypoint_runs_through_a_shell(entrypoint: list[str] | None) -> None:
    task = Task(phase="release", command="a && b", source="Procfile")
    argv = task_argv(task=task, image=image(entrypoint), context=context())
    assert argv == shell_argv("a && b", None)
    assert argv[-1] == "set -e; set -o pipefail || true; a && b"


def test_a_configured_shell_is_used_as_is() -> None:
    task = Task(phase="release", command="true", source="Procfile")
    assert task_argv(task=task, image=image(None), context=context("/bin/ash")) == (
        "/bin/ash",
        "-c",
        "set -e; set -o pipefail || true; true",
    )


@pytest.mark.parametrize(
    "entrypoint", [["tini", "--"], ["/sbin/tini", "--"], ["/tini", "-g", "--"], ["/app/run"]]
)
def test_other_entrypoints_get_the_words(entrypoint: list[str]) -> None:
    task = Task(phase="release", command="touch '/app/a file'", source="Procfile")
    assert task_argv(task=task, image=image(entrypoint), context=context()) == (
        "touch",
        "/app/a file",
    )


def test_unbalanced_quotes_quote_the_command_as_written_not_expanded() -> None:
    task = Task(
        phase="release", command='echo "hunter2', source="Procfile", display='echo "$SECRET'
    )
    with pytest.raises(CommandError) as failure:
        task_argv(task=task, image=image(["/app/run"]), context=context())
    assert "hunter2" not in failure.value.message
    assert 'echo "$SECRET' in failure.value.message
