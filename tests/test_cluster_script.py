"""scripts/cluster.sh refuses what it cannot do with one line, before it makes anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cluster import CLUSTER_SH


def cluster_sh(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(CLUSTER_SH), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOKKU_TASKS_CLUSTER_DIR": str(state)},
    )


@pytest.mark.parametrize(
    ("count", "line"),
    [
        ("two", "cluster: error: up takes a number of workers, not 'two'"),
        ("-1", "cluster: error: up takes a number of workers, not '-1'"),
        ("0", "cluster: error: between 1 and 50 workers, not 0"),
        ("51", "cluster: error: between 1 and 50 workers, not 51"),
    ],
)
def test_a_bad_worker_count_is_one_line_and_makes_nothing(
    tmp_path: Path, count: str, line: str
) -> None:
    state = tmp_path / "cluster"
    done = cluster_sh("up", count, state=state)
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (1, "", [line])
    assert not state.exists()


def test_an_unknown_command_prints_the_usage(tmp_path: Path) -> None:
    done = cluster_sh("sideways", state=tmp_path / "cluster")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"usage: {CLUSTER_SH} up [N] | down | status | env"]


def test_down_and_status_with_nothing_made_say_so(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    assert cluster_sh("down", state=state).stdout.splitlines() == [
        f"cluster: nothing to remove ({state}/made does not exist)"
    ]
    assert cluster_sh("status", state=state).stdout.splitlines() == ["cluster: down (nothing made)"]
