"""Retirement records, the retirer's lock and loop, without Docker (a fake engine)."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks import retirement
from dokku_tasks.errors import EngineError, InvalidAppNameError, StateError
from dokku_tasks.retirement import Record

CID_A = "a" * 64
CID_B = "b" * 64
CID_C = "c" * 64


class FakeEngine:
    """Records the calls :mod:`dokku_tasks.retirement` makes; ``fail`` names ids whose calls
    raise, ``down`` makes every call raise."""

    def __init__(self, where: str = "unix:///fake.sock") -> None:
        self.where = where
        self.calls: list[tuple[Any, ...]] = []
        self.fail: set[str] = set()
        self.down = False
        self.later_steps: list[tuple[Callable[[], None], str]] = []
        self.pruned: list[tuple[str, tuple[str, ...]]] = []
        self.closed = False
        self._lock = threading.Lock()

    def _call(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)
        if self.down or call[1] in self.fail:
            raise EngineError(f"{call[0]} {call[1][:12]} failed")

    def update_restart_policy(self, cid: str, name: str, retries: int = 0) -> None:
        self._call("update", cid, name)

    def stop(self, cid: str, timeout: int = 10) -> None:
        self._call("stop", cid, timeout)

    def remove(self, cid: str) -> None:
        self._call("remove", cid)

    def prune_images(self, app: str, keep: list[str]) -> int:
        with self._lock:
            self.pruned.append((app, tuple(keep)))
        return 0

    def kill(self, cid: str, signal: str = "SIGKILL") -> None:
        self._call("kill", cid, signal)

    def remove_later(self, cid: str, stop_first: bool = False) -> None:
        self.calls.append(("remove_later", cid, stop_first))

    def later(self, step: Callable[[], None], lane: str = "containers") -> None:
        self.later_steps.append((step, lane))

    def close(self) -> None:
        self.closed = True

    def for_id(self, cid: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[1] == cid]


def files_under(root: Path) -> list[str]:
    base = retirement.records_dir(root)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


# -- records ---------------------------------------------------------------------------------


def test_register_round_trips(root: Path) -> None:
    retirement.register(
        root, "shop", [(CID_A, "shop.web.1.retired-x")], wait=60, stop_timeout=30, now=1000.0
    )
    assert retirement.pending(root) == [
        Record(
            app="shop",
            container_id=CID_A,
            name="shop.web.1.retired-x",
            deadline=1060.0,
            stop_timeout=30,
            registered=1000.0,
        )
    ]
    path = retirement.record_path(root, "shop", CID_A)
    assert path == root / "retirements" / "shop" / f"{CID_A}.json"
    data = json.loads(path.read_text())
    assert data["app"] == "shop" and data["id"] == CID_A and data["deadline"] == 1060.0
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(retirement.records_dir(root).stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_atomic_write_leaves_no_temporary_file(root: Path) -> None:
    retirement.register(root, "shop", [(CID_A, "a"), (CID_B, "b")], wait=5, stop_timeout=1)
    retirement.register(root, "shop", [(CID_A, "a")], wait=5, stop_timeout=1)
    assert files_under(root) == [f"shop/{CID_A}.json", f"shop/{CID_B}.json"]


def test_a_failed_write_leaves_no_temporary_file(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(retirement.os, "replace", broken)
    with pytest.raises(StateError, match="No space left on device"):
        retirement.register(root, "shop", [(CID_A, "a")], wait=5, stop_timeout=1)
    assert files_under(root) == []


def test_other_apps_and_a_second_deploy_add_records(root: Path) -> None:
    retirement.register(root, "shop", [(CID_A, "a")], wait=60, stop_timeout=1, now=100.0)
    retirement.register(root, "blog", [(CID_B, "b")], wait=60, stop_timeout=1, now=110.0)
    # A second deploy of shop inside the window: its old container, and the first one again.
    retirement.register(
        root, "shop", [(CID_C, "c"), (CID_A, "a")], wait=60, stop_timeout=5, now=120.0
    )
    found = {r.container_id: r for r in retirement.pending(root)}
    assert set(found) == {CID_A, CID_B, CID_C}
    assert found[CID_A].deadline == 160.0  # the earlier deadline is kept
    assert found[CID_A].stop_timeout == 5
    assert found[CID_C].deadline == 180.0
    assert [r.container_id for r in retirement.pending(root)] == [CID_A, CID_B, CID_C]


def test_register_refuses_names_that_could_be_paths(root: Path) -> None:
    with pytest.raises(InvalidAppNameError):
        retirement.register(root, "../x", [(CID_A, "a")], wait=1, stop_timeout=1)
    with pytest.raises(ValueError, match="container id"):
        retirement.register(root, "shop", [("../../etc", "a")], wait=1, stop_timeout=1)
    assert not retirement.records_dir(root).exists()


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"app": "shop"}',
        json.dumps(
            {"app": "shop", "id": CID_B, "name": "x", "deadline": 1, "stop_timeout": 1}
        ).encode(),  # the id does not match the file name
        json.dumps(
            {"app": "shop", "id": CID_A, "name": "x", "deadline": "soon", "stop_timeout": 1}
        ).encode(),
    ],
)
def test_a_garbage_record_is_skipped_and_removed(root: Path, content: bytes) -> None:
    retirement.register(root, "shop", [(CID_C, "c")], wait=0, stop_timeout=1, now=5.0)
    bad = retirement.record_path(root, "shop", CID_A)
    bad.write_bytes(content)
    assert [r.container_id for r in retirement.pending(root)] == [CID_C]
    assert retirement.due(root, now=10.0)
    assert not bad.exists()


def test_an_unreadable_record_is_skipped_and_kept(root: Path) -> None:
    retirement.register(root, "shop", [(CID_B, "b")], wait=0, stop_timeout=1)
    path = retirement.record_path(root, "shop", CID_A)
    path.mkdir()  # reading it fails, as a file without permission would (we may be root)
    assert [r.container_id for r in retirement.pending(root)] == [CID_B]
    assert path.exists()


def test_stale_temporary_files_are_cleaned_up(root: Path) -> None:
    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1)
    fresh = retirement.records_dir(root) / "shop" / f".{CID_B}.fresh"
    stale = retirement.records_dir(root) / "shop" / f".{CID_B}.stale"
    fresh.write_text("{")
    stale.write_text("{")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert len(retirement.pending(root)) == 1
    assert fresh.exists() and not stale.exists()


def test_pending_and_due_of_a_missing_or_broken_root(tmp_path: Path) -> None:
    assert retirement.pending(tmp_path / "nothing") == []
    assert not retirement.due(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    assert retirement.pending(tmp_path / "file") == []
    root = tmp_path / "r"
    retirement.records_dir(root).mkdir(parents=True)
    (retirement.records_dir(root) / "stray-file").write_text("x")
    assert retirement.pending(root) == []


def test_due_and_pending_with_an_injected_clock(root: Path) -> None:
    retirement.register(root, "shop", [(CID_A, "a")], wait=60, stop_timeout=1, now=1000.0)
    retirement.register(root, "shop", [(CID_B, "b")], wait=10, stop_timeout=1, now=1000.0)
    assert [r.container_id for r in retirement.pending(root)] == [CID_B, CID_A]
    assert not retirement.due(root, now=1009.9)
    assert retirement.due(root, now=1010.0)
    assert retirement.due(root, now=2000.0)


def test_forget_drops_the_records_of_one_app(root: Path) -> None:
    retirement.register(root, "shop", [(CID_A, "a"), (CID_B, "b")], wait=1, stop_timeout=1)
    retirement.register(root, "blog", [(CID_C, "c")], wait=1, stop_timeout=1)
    assert retirement.forget(root, "shop") == 2
    assert [r.app for r in retirement.pending(root)] == ["blog"]
    assert not (retirement.records_dir(root) / "shop").exists()


def test_the_module_and_the_cheap_checks_import_no_docker(root: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from dokku_tasks import retirement as r; "
        f"root = Path({str(root)!r}); "
        "r.register(root, 'shop', [('abc', 'x')], wait=60, stop_timeout=1); "
        "assert r.pending(root) and not r.due(root) and not r.reap_if_due(root); "
        "assert 'docker' not in sys.modules, sorted(m for m in sys.modules if 'docker' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


# -- retire_due --------------------------------------------------------------------------------


def test_retire_due_updates_stops_removes_then_drops_the_record(root: Path) -> None:
    engine = FakeEngine()
    retirement.register(root, "shop", [(CID_A, "a")], wait=10, stop_timeout=7, now=100.0)
    assert retirement.retire_due(root, engine, now=105.0) == 0  # type: ignore[arg-type]
    assert engine.calls == []
    assert retirement.retire_due(root, engine, now=111.0) == 1  # type: ignore[arg-type]
    assert engine.calls == [("update", CID_A, "no"), ("stop", CID_A, 7), ("remove", CID_A)]
    assert retirement.pending(root) == []
    assert not (retirement.records_dir(root) / "shop").exists()
    # The images the old container kept in use are pruned now, as a deploy prunes the rest.
    assert engine.pruned == [
        ("shop", ("dokku/shop:latest", "dokku/shop:previous", "dokku/shop:failed"))
    ]


def test_images_are_not_pruned_while_a_deploy_of_the_app_holds_its_images_lock(
    root: Path,
) -> None:
    """A running deploy's build may use the old images' layers as cache: removing them would
    fail it with "unable to find image".  The containers are still retired."""
    from dokku_tasks.locks import images_lock

    engine = FakeEngine()
    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1)
    retirement.register(root, "blog", [(CID_C, "c")], wait=0, stop_timeout=1)
    with images_lock(root, "shop") as held:
        assert held
        assert retirement.retire_due(root, engine) == 2  # type: ignore[arg-type]
    assert [app for app, _ in engine.pruned] == ["blog"]
    with images_lock(root, "shop", wait=False) as held:
        assert held  # released: the next deploy, or retirer, may take it


def test_retire_due_force_takes_records_that_are_not_due(root: Path) -> None:
    engine = FakeEngine()
    retirement.register(root, "shop", [(CID_A, "a"), (CID_B, "b")], wait=60, stop_timeout=2)
    retirement.register(root, "blog", [(CID_C, "c")], wait=60, stop_timeout=3)
    assert retirement.retire_due(root, engine, force=True) == 3  # type: ignore[arg-type]
    for cid, timeout in ((CID_A, 2), (CID_B, 2), (CID_C, 3)):
        assert engine.for_id(cid) == [
            ("update", cid, "no"),
            ("stop", cid, timeout),
            ("remove", cid),
        ]
    assert retirement.pending(root) == []


def test_a_failure_keeps_the_record_and_notes_it(root: Path) -> None:
    engine = FakeEngine()
    engine.fail.add(CID_A)
    retirement.register(root, "shop", [(CID_A, "a"), (CID_B, "b")], wait=0, stop_timeout=1)
    assert retirement.retire_due(root, engine) == 1  # type: ignore[arg-type]
    (left,) = retirement.pending(root)
    assert left.container_id == CID_A
    assert left.attempts == 1 and "update" in left.last_error
    # The first call failed: no stop or remove of it was attempted.
    assert engine.for_id(CID_A) == [("update", CID_A, "no")]
    # An image the failed one still uses is not pruned from under it.
    assert engine.pruned == []
    engine.fail.clear()
    assert retirement.retire_due(root, engine) == 1  # type: ignore[arg-type]
    assert retirement.pending(root) == []
    assert [app for app, _ in engine.pruned] == ["shop"]


def test_a_failed_removal_keeps_the_record(root: Path) -> None:
    class RemovalFails(FakeEngine):
        def remove(self, cid: str) -> None:
            self.calls.append(("remove", cid))
            raise EngineError("Cannot remove container: engine restarting")

    engine = RemovalFails()
    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=4)
    assert retirement.retire_due(root, engine) == 0  # type: ignore[arg-type]
    assert engine.calls == [("update", CID_A, "no"), ("stop", CID_A, 4), ("remove", CID_A)]
    assert retirement.pending(root)[0].last_error.endswith("engine restarting")


def test_retire_due_leaves_records_of_another_engine(root: Path) -> None:
    engine = FakeEngine(where="unix:///here.sock")
    retirement.register(
        root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1, docker_host="tcp://elsewhere:2375"
    )
    retirement.register(
        root, "shop", [(CID_B, "b")], wait=0, stop_timeout=1, docker_host="unix:///here.sock"
    )
    retirement.register(root, "shop", [(CID_C, "c")], wait=0, stop_timeout=1)
    assert retirement.retire_due(root, engine) == 2  # type: ignore[arg-type]
    assert [r.container_id for r in retirement.pending(root)] == [CID_A]


# -- begin ---------------------------------------------------------------------------------------


def test_begin_registers_queues_signals_and_spawns(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[Path] = []
    monkeypatch.setattr(retirement, "spawn_retirer", spawned.append)
    engine = FakeEngine()
    started = time.monotonic()
    retirement.begin(
        engine,  # type: ignore[arg-type]
        root,
        "shop",
        [(CID_A, "shop.web.1.retired-1"), (CID_B, "shop.worker.1.retired-1")],
        wait=0,
        stop_timeout=9,
    )
    assert time.monotonic() - started < 0.5
    assert spawned == [root]
    assert engine.calls == []  # nothing in line: only queued
    assert [lane for _, lane in engine.later_steps] == ["containers", "containers"]
    records = retirement.pending(root)
    assert {r.container_id for r in records} == {CID_A, CID_B}
    assert all(r.stop_timeout == 9 and r.docker_host == engine.where for r in records)
    for step, _ in engine.later_steps:
        step()
    assert engine.calls == [
        ("update", CID_A, "no"),
        ("kill", CID_A, "SIGTERM"),
        ("update", CID_B, "no"),
        ("kill", CID_B, "SIGTERM"),
    ]


def test_the_signal_step_sends_sigterm_even_when_the_update_fails(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retirement, "spawn_retirer", lambda root: None)

    class UpdateFails(FakeEngine):
        def update_restart_policy(self, cid: str, name: str, retries: int = 0) -> None:
            self.calls.append(("update", cid, name))
            raise EngineError("no")

    engine = UpdateFails()
    retirement.begin(engine, root, "shop", [(CID_A, "a")], wait=5, stop_timeout=1)  # type: ignore[arg-type]
    ((step, _),) = engine.later_steps
    step()
    assert engine.calls == [("update", CID_A, "no"), ("kill", CID_A, "SIGTERM")]


def test_begin_without_containers_does_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[Path] = []
    monkeypatch.setattr(retirement, "spawn_retirer", spawned.append)
    engine = FakeEngine()
    retirement.begin(engine, root, "shop", [], wait=5, stop_timeout=1)  # type: ignore[arg-type]
    assert spawned == [] and engine.later_steps == [] and retirement.pending(root) == []


def test_begin_falls_back_to_the_deploy_when_records_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[Path] = []
    monkeypatch.setattr(retirement, "spawn_retirer", spawned.append)
    root = tmp_path / "root"
    root.write_text("a file where the state root belongs")
    engine = FakeEngine()
    retirement.begin(engine, root, "shop", [(CID_A, "a")], wait=5, stop_timeout=1)  # type: ignore[arg-type]
    assert engine.calls == [("remove_later", CID_A, True)]
    assert spawned == []


# -- the lock and reap_if_due ------------------------------------------------------------------


def test_the_lock_admits_one_retirer(root: Path) -> None:
    assert not retirement.retirer_running(root)
    assert retirement.retirer_pid(root) is None
    first = retirement.acquire_retirer_lock(root)
    assert first is not None
    try:
        assert retirement.acquire_retirer_lock(root, tries=2) is None
        assert retirement.retirer_running(root)
        assert retirement.retirer_pid(root) == os.getpid()
        assert stat.S_IMODE(retirement.lock_path(root).stat().st_mode) == 0o600
    finally:
        retirement.release_retirer_lock(first)
    assert not retirement.retirer_running(root)
    assert retirement.retirer_pid(root) is None
    second = retirement.acquire_retirer_lock(root)
    assert second is not None
    retirement.release_retirer_lock(second)


def test_a_probe_does_not_make_a_starting_retirer_give_up(root: Path) -> None:
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            retirement.retirer_running(root)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        for _ in range(20):
            fd = retirement.acquire_retirer_lock(root)
            assert fd is not None
            retirement.release_retirer_lock(fd)
    finally:
        stop.set()
        thread.join()


def _hold_like_a_probe(root: Path, pid: int | None = None) -> int:
    """Hold the retirer lock without ``acquire_retirer_lock``: the way a ``retirer_running``
    probe does (no pid in the file), or with the ``pid`` of a retirer that was killed."""
    path = retirement.lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, 0)
    if pid is not None:
        os.pwrite(fd, f"{pid}\n".encode(), 0)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_deploy_does_not_wait_for_a_running_retirer(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock of a live retirer (its pid in the file) is given up on at once: a deploy
    within ``wait-to-retire`` of the last one used to sleep through every retry."""
    slept: list[float] = []
    monkeypatch.setattr(retirement.time, "sleep", slept.append)
    held = retirement.acquire_retirer_lock(root)
    assert held is not None
    try:
        assert retirement.acquire_retirer_lock(root) is None
        spawned: list[Any] = []
        monkeypatch.setattr(retirement.subprocess, "Popen", lambda *a, **k: spawned.append(a))
        retirement.spawn_retirer(root)
        assert spawned == []
    finally:
        retirement.release_retirer_lock(held)
    assert slept == []


def test_a_holder_naming_no_live_process_is_tried_again(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A probe holds the lock (no pid in the file): one more try, which finds it free.
    probe = _hold_like_a_probe(root)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        os.close(probe)  # the probe is over

    monkeypatch.setattr(retirement.time, "sleep", sleep)
    fd = retirement.acquire_retirer_lock(root)
    assert fd is not None
    retirement.release_retirer_lock(fd)
    assert slept == [retirement.LOCK_TRY_DELAY]


def test_a_dead_pid_in_the_lock_file_is_no_live_holder(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    holder = _hold_like_a_probe(root, pid=int(gone.stdout))
    slept: list[float] = []
    monkeypatch.setattr(retirement.time, "sleep", slept.append)
    try:
        assert retirement.acquire_retirer_lock(root, tries=3) is None
    finally:
        os.close(holder)
    assert slept == [retirement.LOCK_TRY_DELAY] * 2


def test_reap_if_due_spawns_only_when_due_and_no_retirer_runs(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[Path] = []
    monkeypatch.setattr(retirement, "spawn_retirer", spawned.append)
    assert not retirement.reap_if_due(root)
    retirement.register(root, "shop", [(CID_A, "a")], wait=60, stop_timeout=1, now=1000.0)
    assert not retirement.reap_if_due(root, now=1059.0)
    assert spawned == []
    fd = retirement.acquire_retirer_lock(root)
    assert fd is not None
    try:
        assert not retirement.reap_if_due(root, now=1061.0)
    finally:
        retirement.release_retirer_lock(fd)
    assert spawned == []
    assert retirement.reap_if_due(root, now=1061.0)
    assert spawned == [root]


def test_reap_if_due_never_raises(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(root: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(retirement, "spawn_retirer", broken)
    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1)
    assert retirement.reap_if_due(root) is False


# -- the retirer loop --------------------------------------------------------------------------


def test_the_retirer_retires_due_records_and_exits(root: Path) -> None:
    engine = FakeEngine()
    hosts: list[str | None] = []

    def connect(host: str | None) -> FakeEngine:
        hosts.append(host)
        return engine

    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1)
    retirement.register(root, "blog", [(CID_B, "b")], wait=0, stop_timeout=1, docker_host="x")
    assert retirement.run_retirer(root, connect=connect) == 0  # type: ignore[arg-type]
    assert retirement.pending(root) == []
    assert sorted(hosts, key=str) == [None, "x"]
    assert engine.closed
    assert not retirement.retirer_running(root)


def test_the_retirer_waits_for_the_deadline_and_sees_new_records(root: Path) -> None:
    started = time.time()
    retirement.register(root, "shop", [(CID_A, "a")], wait=1, stop_timeout=1, now=started)
    stamps: dict[str, float] = {}

    class Timed(FakeEngine):
        def remove(self, cid: str) -> None:
            stamps[cid] = time.time()

    engine = Timed()

    def add_later() -> None:
        time.sleep(0.3)
        retirement.register(root, "blog", [(CID_B, "b")], wait=0, stop_timeout=1)
        stamps["added"] = time.time()

    adder = threading.Thread(target=add_later)
    adder.start()
    assert retirement.run_retirer(root, connect=lambda host: engine) == 0  # type: ignore[arg-type,return-value]
    adder.join()
    # The new record (due at once) was retired while the retirer slept towards A's deadline.
    assert stamps[CID_B] - stamps["added"] < retirement.POLL + 0.5
    assert stamps[CID_B] < stamps[CID_A]
    assert stamps[CID_A] - started >= 1.0


def test_the_retirer_backs_off_and_gives_up_without_busy_looping(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retirement, "RETRY_DELAY", 0.1)
    attempts: list[float] = []

    def connect(host: str | None) -> FakeEngine:
        attempts.append(time.monotonic())
        raise EngineError("Cannot reach the Docker engine")

    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1)
    started = time.monotonic()
    assert retirement.run_retirer(root, connect=connect, give_up_after=1.0) == 1  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    # 0.1, 0.2, 0.4, 0.8 s apart: a handful of tries, not thousands.
    assert 2 <= len(attempts) <= 6
    assert 1.0 <= elapsed < 3.0
    (left,) = retirement.pending(root)
    assert left.attempts == len(attempts)
    assert "Cannot reach" in left.last_error
    assert not retirement.retirer_running(root)


def test_the_retirer_retries_after_the_engine_comes_back(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retirement, "RETRY_DELAY", 0.1)
    engine = FakeEngine()
    engine.down = True

    def connect(host: str | None) -> FakeEngine:
        if len(engine.calls) >= 2:
            engine.down = False  # the engine is back after two failed tries
        return engine

    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1)
    assert retirement.run_retirer(root, connect=connect) == 0  # type: ignore[arg-type]
    assert retirement.pending(root) == []
    assert engine.calls[-3:] == [("update", CID_A, "no"), ("stop", CID_A, 1), ("remove", CID_A)]


def test_a_second_retirer_exits_at_once(root: Path) -> None:
    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1)
    fd = retirement.acquire_retirer_lock(root)
    assert fd is not None
    try:
        started = time.monotonic()
        assert retirement.run_retirer(root, connect=lambda host: FakeEngine()) == 0  # type: ignore[arg-type,return-value]
        assert time.monotonic() - started < 1.0
    finally:
        retirement.release_retirer_lock(fd)
    assert len(retirement.pending(root)) == 1


def test_main_refuses_a_wrong_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert retirement.main([]) == 2
    assert retirement.main(["--lock-fd", "x", "/r"]) == 2
    assert retirement.main(["a", "b"]) == 2
    assert "usage" in capsys.readouterr().err


def test_spawned_retirer_holds_the_lock_from_the_start_and_exits_when_nothing_is_left(
    root: Path,
) -> None:
    # No records: the retirer starts, finds nothing, exits; nothing remains locked.
    retirement.spawn_retirer(root)
    pid = retirement.retirer_pid(root)  # handed over by the spawner: no gap
    assert pid is not None and pid != os.getpid()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and retirement.retirer_running(root):
        time.sleep(0.05)
    assert not retirement.retirer_running(root)


def test_no_retirer_is_spawned_while_one_holds_the_lock(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("spawned a second retirer")

    fd = retirement.acquire_retirer_lock(root)
    assert fd is not None
    try:
        monkeypatch.setattr(retirement.subprocess, "Popen", refuse)
        retirement.spawn_retirer(root)
    finally:
        retirement.release_retirer_lock(fd)


def test_a_spawn_that_fails_releases_the_lock(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(retirement.subprocess, "Popen", fail)
    retirement.spawn_retirer(root)  # no exception
    assert not retirement.retirer_running(root)


def test_the_retirer_takes_a_handed_down_lock(root: Path) -> None:
    retirement.register(root, "shop", [(CID_A, "a")], wait=0, stop_timeout=1)
    fd = retirement.acquire_retirer_lock(root)
    assert fd is not None
    engine = FakeEngine()
    assert retirement.run_retirer(root, connect=lambda host: engine, lock_fd=fd) == 0  # type: ignore[arg-type,return-value]
    assert retirement.pending(root) == []
    assert not retirement.retirer_running(root)  # released (and the fd closed) at the end
    with pytest.raises(OSError):
        os.fstat(fd)


def test_a_pid_is_written_over_the_last_at_one_width(tmp_path: Path) -> None:
    # No moment with an empty file: a reader must always find the holder's pid.
    path = tmp_path / "retirer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        retirement._write_pid(fd, 4194304)
        assert path.read_text() == "   4194304\n"
        retirement._write_pid(fd, 42)
        assert path.read_text() == "        42\n"
        assert path.read_text().strip() == "42"
    finally:
        os.close(fd)
