"""The engine's own HTTP client (``dokku_tasks.engine_api``) against a scripted engine on a
unix socket of the test's own: addresses, errors, kept-alive connections that the engine
dropped, timeouts, progress streams and the framed stream of an attach or exec."""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks.engine_api import (
    Address,
    EngineApi,
    HijackedStream,
    _json_lines,
    _param,
    _refusal,
    tls_from_environment,
)
from dokku_tasks.errors import (
    EngineImageNotFoundError,
    EngineNotFoundError,
    EngineRefusedError,
    EngineTimeoutError,
    EngineTransportError,
)

# -- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "host", "port", "tls"),
    [
        ("unix:///var/run/docker.sock", "/var/run/docker.sock", "localhost", 0, False),
        ("unix://var/run/docker.sock", "/var/run/docker.sock", "localhost", 0, False),
        ("/run/other.sock", "/run/other.sock", "localhost", 0, False),
        ("tcp://127.0.0.1:2999", "", "127.0.0.1", 2999, False),
        ("tcp://engine.example", "", "engine.example", 2375, False),
        ("http://10.0.0.2:80", "", "10.0.0.2", 80, False),
        ("https://engine.example", "", "engine.example", 2376, True),
        ("TCP://[::1]:2375", "", "::1", 2375, False),
    ],
)
def test_an_address_is_read_as_the_docker_cli_reads_docker_host(
    url: str, path: str, host: str, port: int, tls: bool
) -> None:
    address = Address(url)
    assert (address.path, address.host, address.port, address.tls is not None) == (
        path,
        host,
        port,
        tls,
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ssh://me@engine", "ssh:// engines are not supported"),
        ("npipe:////./pipe/docker_engine", "npipe:// engines are not supported"),
        ("tcp://:2375", "no host in tcp://:2375"),
        ("tcp://engine:port", "bad port in tcp://engine:port"),
    ],
)
def test_an_address_the_client_cannot_use_says_why(url: str, why: str) -> None:
    with pytest.raises(EngineTransportError) as failure:
        Address(url)
    assert failure.value.explanation == why


def test_tls_comes_from_the_docker_cli_variables_only(tmp_path: Path) -> None:
    assert tls_from_environment({}) is None
    assert tls_from_environment({"DOCKER_TLS_VERIFY": ""}) is None
    unverified = tls_from_environment({"DOCKER_CERT_PATH": str(tmp_path)})
    assert unverified is not None and unverified.check_hostname is False
    verified = tls_from_environment({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)})
    assert verified is not None and verified.check_hostname is True
    # A TLS context is used on a tcp:// address as given, with the engine's TLS port.
    assert Address("tcp://engine", verified).port == 2376


# -- pure helpers --------------------------------------------------------------------------------


def test_parameters_are_sent_as_the_engine_reads_booleans() -> None:
    assert _param(True) == "1"
    assert _param(False) == "0"
    assert _param(["a", True]) == ["a", "1"]
    assert _param(10) == 10
    assert _param("x") == "x"


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (404, b'{"message":"No such image: dokku/x:latest"}', EngineImageNotFoundError, None),
        (404, b'{"message":"pull access denied, repository does not exist"}', None, None),
        (404, b'{"message":"No such container: abc"}', EngineNotFoundError, None),
        (409, b'{"message":"conflict: unable to remove"}', EngineRefusedError, None),
        (500, b"", EngineRefusedError, "HTTP 500"),
        (500, b"plain words\n", EngineRefusedError, "plain words"),
        (400, b"[1, 2]", EngineRefusedError, "[1, 2]"),
    ],
)
def test_a_refusal_keeps_the_engines_message_and_tells_what_is_missing(
    status: int, body: bytes, kind: type[Exception] | None, message: str | None
) -> None:
    error = _refusal(status, body)
    assert type(error) is (kind or EngineImageNotFoundError)
    assert error.status_code == status
    expected = message or json.loads(body)["message"]
    assert error.explanation == expected == str(error)


class _Chunks:
    """A response read in the pieces given, as an engine's progress arrives."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    def read1(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


class _Closing:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_progress_stream_gives_each_object_whole_however_it_is_cut() -> None:
    connection = _Closing()
    response = _Chunks(b'{"stream":"Step 1/2\\n"}\r\n{"str', b'eam":"\xc3', b'\xa9"}\r\n', b"[1]")
    found = list(_json_lines(response, connection))  # type: ignore[arg-type]
    assert found == [{"stream": "Step 1/2\n"}, {"stream": "\u00e9"}]  # a list is not a message
    assert connection.closed


def test_a_progress_stream_that_ends_inside_an_object_is_a_failure() -> None:
    connection = _Closing()
    stream = _json_lines(_Chunks(b'{"aux": {"ID": "sha'), connection)  # type: ignore[arg-type]
    with pytest.raises(EngineTransportError, match="ended inside an object"):
        list(stream)
    assert connection.closed


def _frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def test_frames_are_split_by_their_headers_across_reads() -> None:
    ours, engine = socket.socketpair()
    data = _frame(1, b"out\n") + _frame(2, b"err") + _frame(1, b"") + _frame(1, b"x" * 70000)
    stream = HijackedStream(ours, data[:3])
    sender = threading.Thread(target=lambda: (engine.sendall(data[3:]), engine.close()))
    sender.start()
    frames = list(stream.frames())
    sender.join()
    stream.close()
    assert frames == [(b"out\n", None), (None, b"err"), (b"", None), (b"x" * 70000, None)]


def test_a_stream_cut_inside_a_frame_ends_without_it() -> None:
    ours, engine = socket.socketpair()
    engine.sendall(_frame(1, b"whole") + _frame(2, b"cut short")[:10])
    engine.close()
    stream = HijackedStream(ours, b"")
    assert list(stream.frames()) == [(b"whole", None)]
    stream.close()


def test_raw_reads_give_what_came_with_the_headers_first_and_time_out() -> None:
    ours, engine = socket.socketpair()
    stream = HijackedStream(ours, b"early")
    assert stream.recv(0.1) == b"early"
    with pytest.raises(TimeoutError):
        stream.recv(0.05)
    engine.sendall(b"later")
    assert stream.recv(1) == b"later"
    engine.close()
    assert stream.recv(1) == b""
    stream.close()
    stream.close()  # twice is fine


def test_close_from_another_thread_ends_a_blocked_read() -> None:
    ours, engine = socket.socketpair()
    stream = HijackedStream(ours, b"")
    done: list[Any] = []
    reader = threading.Thread(target=lambda: done.append(list(stream.frames())))
    reader.start()
    time.sleep(0.1)
    stream.close()
    reader.join(timeout=5)
    assert done == [[]]
    engine.close()


# -- a scripted engine ---------------------------------------------------------------------------

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class ScriptedEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers each ``METHOD /path`` (without the version and the query) with its script."""

    daemon_threads = True

    def __init__(self, path: Path, api_version: str | None = "1.43") -> None:
        self.scripts: dict[str, Handler] = {}
        self.requests: list[str] = []
        self.accepted = 0
        self.api_version = api_version
        super().__init__(str(path), _RequestHandler)

    def get_request(self) -> tuple[Any, Any]:
        self.accepted += 1
        return super().get_request()


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedEngine

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        route = self.path.split("?")[0]
        if route.startswith("/v1."):
            route = "/" + route.split("/", 2)[2]
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        script = self.server.scripts.get(f"{self.command} {route}")
        if route == "/_ping" and script is None:
            self.send_response(200)
            if self.server.api_version:
                self.send_header("Api-Version", self.server.api_version)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
        elif script is None:
            reply(self, 404, {"message": f"page not found: {route}"})
        else:
            script(self)

    do_GET = do_POST = do_DELETE = do_HEAD = _handle


def reply(handler: http.server.BaseHTTPRequestHandler, status: int, body: Any) -> None:
    """Answer with ``body`` as JSON; ``None``: no body at all (as a 204 must be)."""
    data = b"" if body is None else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[ScriptedEngine]:
    server = ScriptedEngine(tmp_path / "engine.sock")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _connect(server: ScriptedEngine, timeout: float = 5) -> EngineApi:
    return EngineApi.connect(Address(f"unix://{server.server_address}"), timeout)


def test_the_client_speaks_the_version_the_engine_names(scripted: ScriptedEngine) -> None:
    scripted.scripts["GET /containers/abc/json"] = lambda h: reply(h, 200, {"Id": "abc"})
    api = _connect(scripted)
    assert api.version == "1.43"
    assert api.inspect_container("abc") == {"Id": "abc"}
    assert scripted.requests == ["GET /_ping", "GET /v1.43/containers/abc/json"]
    api.close()


def test_an_engine_that_names_no_version_is_asked_for_it(tmp_path: Path) -> None:
    server = ScriptedEngine(tmp_path / "old.sock", api_version=None)
    server.scripts["GET /version"] = lambda h: reply(h, 200, {"ApiVersion": "1.40"})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = _connect(server)
        assert api.version == "1.40"
        api.close()
    finally:
        server.shutdown()
        server.server_close()


def test_one_connection_serves_requests_one_after_another(scripted: ScriptedEngine) -> None:
    scripted.scripts["POST /containers/abc/start"] = lambda h: reply(h, 204, None)
    api = _connect(scripted)
    for _ in range(5):
        api.start("abc")
    assert scripted.accepted == 1
    api.close()


def test_a_connection_the_engine_dropped_while_idle_is_not_reused(
    scripted: ScriptedEngine,
) -> None:
    """As after an engine restart: the kept-alive connection is at its end, so a new one is
    made instead of failing the next request."""

    def then_close(handler: http.server.BaseHTTPRequestHandler) -> None:
        reply(handler, 200, {"Id": "abc"})
        handler.close_connection = True

    scripted.scripts["GET /containers/abc/json"] = then_close
    api = _connect(scripted)
    api.inspect_container("abc")
    time.sleep(0.2)  # the engine's side has closed by now
    assert api.inspect_container("abc") == {"Id": "abc"}
    assert scripted.accepted == 2
    api.close()


def test_parameters_and_bodies_reach_the_engine_as_the_sdk_sends_them(
    scripted: ScriptedEngine,
) -> None:
    bodies: list[Any] = []

    def created(handler: Any) -> None:
        bodies.append(json.loads(handler.body))
        reply(handler, 201, {"Id": "new"})

    scripted.scripts["POST /containers/create"] = created
    scripted.scripts["DELETE /containers/new"] = lambda h: reply(h, 204, None)
    scripted.scripts["GET /images/json"] = lambda h: reply(h, 200, [{"Id": "sha256:1"}])
    api = _connect(scripted)
    made = api.create_container("img", command=["a", "b"], labels={"k": "v"}, name="web.1")
    api.remove_container("new", v=True, force=True)
    assert api.images(name="dokku/app", filters={"label": "k=v"}, quiet=True) == ["sha256:1"]
    assert made == {"Id": "new"}
    assert bodies == [
        {
            "Image": "img",
            "Cmd": ["a", "b"],
            "Labels": {"k": "v"},
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "AttachStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "NetworkDisabled": False,
        }
    ]
    assert scripted.requests[1:] == [
        "POST /v1.43/containers/create?name=web.1",
        "DELETE /v1.43/containers/new?v=1&force=1",
        "GET /v1.43/images/json?all=0&filters=%7B%22label%22%3A+%5B%22k%3Dv%22%5D%2C+"
        "%22reference%22%3A+%5B%22dokku%2Fapp%22%5D%7D",
    ]
    api.close()


def test_refusals_are_told_apart(scripted: ScriptedEngine) -> None:
    scripted.scripts["GET /images/gone/json"] = lambda h: reply(
        h, 404, {"message": "No such image: gone:latest"}
    )
    scripted.scripts["DELETE /images/used"] = lambda h: reply(h, 409, {"message": "in use"})
    api = _connect(scripted)
    with pytest.raises(EngineImageNotFoundError):
        api.inspect_image("gone")
    with pytest.raises(EngineRefusedError) as refused:
        api.remove_image("used")
    assert (refused.value.status_code, refused.value.explanation) == (409, "in use")
    assert api.archive_stat("abc", "/app/x") is None  # 404: not there
    # The connection is still good after refusals.
    assert scripted.accepted == 1
    api.close()


def test_a_request_the_engine_does_not_answer_times_out(scripted: ScriptedEngine) -> None:
    scripted.scripts["POST /containers/abc/wait"] = lambda h: time.sleep(2)
    api = _connect(scripted)
    began = time.monotonic()
    with pytest.raises(EngineTimeoutError):
        api.wait("abc", timeout=0.3)
    assert time.monotonic() - began < 1.5
    api.timeout = 0.3  # the client's own timeout, changed later, applies from then on
    with pytest.raises(EngineTimeoutError):
        api._call("POST", "/containers/abc/wait")
    api.close()


def test_no_engine_at_the_address_is_a_transport_failure(tmp_path: Path) -> None:
    with pytest.raises(EngineTransportError) as failure:
        EngineApi.connect(Address(f"unix://{tmp_path}/none.sock"), 1)
    assert failure.value.explanation == "No such file or directory"


def _hijacked(handler: Any) -> None:
    handler.send_response(101)
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Upgrade", "tcp")
    handler.end_headers()
    handler.wfile.write(_frame(1, b"hello\n") + _frame(2, b"oops\n"))
    handler.wfile.flush()
    handler.close_connection = True


def test_an_attach_takes_the_connection_over_for_the_frames(scripted: ScriptedEngine) -> None:
    scripted.scripts["POST /containers/abc/attach"] = _hijacked
    scripted.scripts["POST /exec/e1/start"] = lambda h: (
        scripted.requests.append(h.body.decode()),
        _hijacked(h),
    )
    scripted.scripts["POST /containers/gone/attach"] = lambda h: reply(
        h, 404, {"message": "No such container: gone"}
    )
    api = _connect(scripted)
    stream = api.attach("abc")
    assert list(stream.frames()) == [(b"hello\n", None), (None, b"oops\n")]
    stream.close()
    started = api.exec_start("e1")
    assert started.recv(1)[:8] == bytes([1, 0, 0, 0, 0, 0, 0, 6])
    started.close()
    assert '{"Detach": false, "Tty": false}' in scripted.requests
    assert "POST /v1.43/containers/abc/attach?stdout=1&stderr=1&stream=1" in scripted.requests
    with pytest.raises(EngineNotFoundError, match="No such container: gone"):
        api.attach("gone")
    api.close()
