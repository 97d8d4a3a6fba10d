"""The private engine fixture itself: isolation, crash and restart, a hung engine, teardown."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

import docker
import pytest
import requests

from tests.private_engine import (  # noqa: F401 - the fixtures
    DEFAULT_IMAGES,
    PrivateEngine,
    private_engine_factory_fixture,
    private_engine_fixture,
    sdk_connect_leaks,
)

pytestmark = [pytest.mark.engine, pytest.mark.private_engine]

BASE_IMAGE = DEFAULT_IMAGES[0]


def _engine_processes_named(engine_dir: str) -> list[str]:
    """Command lines of every host process that names ENGINE_DIR (read from /proc directly)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as stream:
                cmdline = stream.read()
        except OSError:
            continue
        if engine_dir.encode() in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_isolated_crash_restart_and_hang(private_engine: PrivateEngine) -> None:
    engine = private_engine
    assert engine.url == f"unix://{engine.dir}/docker.sock"
    client = engine.client()
    for image in DEFAULT_IMAGES:
        client.images.get(image)

    # A container of the private engine, unseen by the main one.
    name = f"dt-eng-smoke-{uuid.uuid4().hex[:8]}"
    output = client.containers.run(BASE_IMAGE, ["echo", "hi"], name=name)
    assert output == b"hi\n"
    main = docker.from_env()
    try:
        assert main.containers.list(all=True, filters={"name": name}) == []
    finally:
        main.close()

    # A crash: a new dockerd comes up on the same data-root (despite the stale pid file).
    first_pid = engine.pid
    engine.kill()
    assert not engine.running
    assert engine.pidfile.exists()  # what a crash leaves behind
    assert not engine.ping(timeout=2)
    engine.start()
    assert engine.pid != first_pid
    client = engine.client()
    assert client.ping()
    client.images.get(BASE_IMAGE)  # the data persisted
    assert client.containers.get(name).name == name

    # A hung engine: requests time out; after resume() it answers again.
    short = engine.client(timeout=2)
    engine.pause()
    assert engine.paused
    began = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        short.ping()
    assert time.monotonic() - began < 10
    engine.resume()
    assert short.ping()
    assert short.containers.run(BASE_IMAGE, ["echo", "again"], remove=True) == b"again\n"

    # restart() brings it back, healthy.
    engine.restart()
    assert engine.client().ping()


def _ping_quietly(client: docker.DockerClient) -> bool:
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False


def test_sdk_connect_leaks_are_collected(private_engine: PrivateEngine) -> None:
    client = private_engine.client()
    private_engine.kill()
    with sdk_connect_leaks() as leaks:
        assert not _ping_quietly(client)
    # If this fails, the Docker SDK closes a socket whose connect failed: drop the helper.
    assert leaks, "the Docker SDK no longer leaks a socket when it cannot connect"


def test_teardown_leaves_nothing(private_engine_factory: Callable[..., PrivateEngine]) -> None:
    engine = private_engine_factory()
    client = engine.client()
    # A running container, then a crash (its shim survives dockerd), then a hung new dockerd:
    # the worst state to tear down.
    # (SIGKILL as its stop signal: the restarted dockerd stops it at once, not after 10 s.)
    client.containers.run(BASE_IMAGE, ["sleep", "1000"], detach=True, stop_signal="SIGKILL")
    engine.kill()
    survivors = engine.processes()
    assert any("containerd-shim" in cmdline for cmdline in survivors.values()), survivors
    engine.start()
    engine.pause()
    engine_dir = str(engine.dir)
    assert _engine_processes_named(engine_dir)

    engine.close()

    assert _engine_processes_named(engine_dir) == []
    assert engine.processes() == {}
    assert not os.path.exists(engine_dir)
    with open("/proc/self/mountinfo") as stream:
        assert engine_dir not in stream.read()
    assert not any(
        os.path.exists(os.path.join("/sys/fs/cgroup", controller, engine.name))
        for controller in os.listdir("/sys/fs/cgroup")
    )
    engine.close()  # idempotent
