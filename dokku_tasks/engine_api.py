"""The Docker Engine API over the standard library's HTTP client.

:class:`EngineApi` makes the calls :class:`dokku_tasks.engine.Engine` needs, with the Docker
SDK's method names and arguments for the same calls, so the engine module reads as it did.
It exists for start-up time: a CLI process that imports the SDK's client (``requests``,
``urllib3`` and theirs) spends about 130 ms on it before its first call, and each call
through ``requests`` costs about 0.8 ms more than through :mod:`http.client` (measured on
this project's 2-core host; ``docs/benchmarks.md``).  Scheduler plugins that own their engine
calls keep the SDK (:attr:`dokku_tasks.engine.Engine.api`).

Failures are :class:`~dokku_tasks.errors.EngineCallError` subclasses: the engine's refusal
(with its status and message), a missing object (404), a connection that cannot be made or
was dropped, and a timeout.
"""

from __future__ import annotations

import codecs
import contextlib
import http.client
import json
import os
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

from .errors import (
    EngineCallError,
    EngineImageNotFoundError,
    EngineNotFoundError,
    EngineRefusedError,
    EngineTimeoutError,
    EngineTransportError,
)

#: What a 404's message says when it is an image that is missing (the SDK's fragments).
_IMAGE_NOT_FOUND = (
    "no such image",
    "not found: does not exist or no pull access",
    "repository does not exist",
    "was found but does not match the specified platform",
)

#: The API version asked for when the engine does not say which it speaks.
FALLBACK_API_VERSION = "1.41"

_CHUNK = 64 * 1024


class _ClientTimeout:
    """The timeout of a request that brings none of its own: the client's, when it is made."""


CLIENT_TIMEOUT = _ClientTimeout()


class Address:
    """Where an engine listens: a unix socket, or a TCP host and port (with TLS or not)."""

    def __init__(self, url: str, tls: ssl.SSLContext | None = None) -> None:
        scheme, _, rest = url.partition("://")
        if not rest:
            scheme, rest = "unix", url
        scheme = scheme.lower()
        self.url = url
        self.tls = tls
        if scheme == "unix":
            self.path = "/" + rest.lstrip("/")
            self.host, self.port = "localhost", 0
        elif scheme in ("tcp", "http", "https"):
            self.path = ""
            parsed = urllib.parse.urlsplit(f"//{rest}")
            if not parsed.hostname:
                raise EngineTransportError(f"no host in {url}")
            self.host = parsed.hostname
            try:
                port = parsed.port
            except ValueError:
                raise EngineTransportError(f"bad port in {url}") from None
            if scheme == "https" and self.tls is None:
                self.tls = ssl.create_default_context()
            self.port = port or (2376 if self.tls else 2375)
        else:
            raise EngineTransportError(f"{scheme}:// engines are not supported")

    def socket(self, timeout: float | None) -> socket.socket:
        """A new connected socket to the engine."""
        if self.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(self.path)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        if self.tls is not None:
            try:
                return self.tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        return sock


def tls_from_environment(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """The TLS the docker CLI would use from ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH``.

    ``None`` when neither is set.  The client certificate and CA are ``cert.pem``,
    ``key.pem`` and ``ca.pem`` in ``DOCKER_CERT_PATH`` (default ``~/.docker``).
    """
    verify = bool(environ.get("DOCKER_TLS_VERIFY"))
    cert_path = environ.get("DOCKER_CERT_PATH")
    if not verify and not cert_path:
        return None
    directory = cert_path or os.path.join(os.path.expanduser("~"), ".docker")
    ca = os.path.join(directory, "ca.pem")
    if verify:
        context = ssl.create_default_context(cafile=ca if os.path.exists(ca) else None)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    if os.path.exists(cert) and os.path.exists(key):
        context.load_cert_chain(cert, key)
    return context


class _Connection(http.client.HTTPConnection):
    """An HTTP connection made over :meth:`Address.socket`."""

    def __init__(self, address: Address, timeout: float | None) -> None:
        super().__init__(address.host, address.port or None, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = self._address.socket(self.timeout)


class HijackedStream:
    """The raw stream of an attach or exec once the engine took the connection over.

    Without a TTY the engine frames it: 8 bytes of header (stream type, then the payload's
    length) and the payload.  :meth:`close` may be called from another thread to end a read
    that is blocked.
    """

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self._sock = sock
        self._buffered = buffered

    def recv(self, timeout: float | None) -> bytes:
        """The next bytes as they come; ``b""`` at the end.

        :raises TimeoutError: nothing came within ``timeout`` seconds.
        """
        if self._buffered:
            data, self._buffered = self._buffered, b""
            return data
        self._sock.settimeout(timeout)
        return self._sock.recv(_CHUNK)

    def _read_exactly(self, size: int) -> bytes | None:
        """``size`` bytes, or ``None`` when the stream ends first."""
        while len(self._buffered) < size:
            chunk = self._sock.recv(_CHUNK)
            if not chunk:
                return None
            self._buffered += chunk
        data, self._buffered = self._buffered[:size], self._buffered[size:]
        return data

    def frames(self) -> Iterator[tuple[bytes | None, bytes | None]]:
        """``(stdout, None)`` or ``(None, stderr)`` per frame until the stream ends."""
        self._sock.settimeout(None)
        while True:
            header = self._read_exactly(8)
            if header is None:
                return
            size = int.from_bytes(header[4:8], "big")
            payload = self._read_exactly(size) if size else b""
            if payload is None:
                return
            if header[0] == 2:
                yield None, payload
            else:
                yield payload, None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


class ArchiveStream:
    """A streamed response body (``GET .../archive``); close it when done."""

    def __init__(self, response: http.client.HTTPResponse, connection: _Connection) -> None:
        self._response = response
        self._connection = connection
        self.closed = False

    def iter_content(self, size: int = _CHUNK) -> Iterator[bytes]:
        while True:
            try:
                chunk = self._response.read(size)
            except TimeoutError as exc:
                raise EngineTimeoutError("the Docker engine did not answer in time") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise EngineTransportError(_reason(exc)) from exc
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        self.closed = True
        self._response.close()
        self._connection.close()


class EngineApi:
    """One engine's API: a pool of kept-alive connections, one per concurrent request.

    ``timeout`` bounds every read of a request that does not bring its own (a task's wait
    does); it may be changed at any time and applies to requests made from then on.
    """

    def __init__(self, address: Address, timeout: float | None, version: str | None = None):
        self.address = address
        self.timeout = timeout
        self.version = version or FALLBACK_API_VERSION
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, address: Address, timeout: float | None) -> EngineApi:
        """A client speaking the API version the engine says it speaks (one ``GET /_ping``).

        :raises EngineCallError: the engine cannot be reached or does not answer.
        """
        api = cls(address, timeout)
        _status, headers, _ = api._call("GET", "/_ping", versioned=False)
        version = headers.get("Api-Version")
        if not version:
            version = str(api._json("GET", "/version", versioned=False).get("ApiVersion") or "")
        api.version = version or FALLBACK_API_VERSION
        return api

    def close(self) -> None:
        """Close the kept-alive connections (a later request opens a new one)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- transport --------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, Any] | None, versioned: bool = True) -> str:
        url = f"/v{self.version}{path}" if versioned else path
        if params:
            pairs = [(k, _param(v)) for k, v in params.items() if v is not None]
            url += "?" + urllib.parse.urlencode(pairs, doseq=True)
        return url

    def _checkout(self, timeout: float | None) -> _Connection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if _still_open(connection):
                    connection.timeout = timeout
                    if connection.sock is not None:
                        connection.sock.settimeout(timeout)
                    return connection
                connection.close()
        return _Connection(self.address, timeout)

    def _checkin(self, connection: _Connection) -> None:
        with self._lock:
            self._idle.append(connection)

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | IO[bytes] | None,
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> tuple[_Connection, http.client.HTTPResponse]:
        connection = self._checkout(timeout)
        try:
            connection.request(method, url, body=body, headers=dict(headers))
            return connection, connection.getresponse()
        except TimeoutError as exc:
            connection.close()
            raise EngineTimeoutError("the Docker engine did not answer in time") from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise EngineTransportError(_reason(exc)) from exc
        except BaseException:  # a signal's exception mid-request: the connection is unusable
            connection.close()
            raise

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | _ClientTimeout | None = CLIENT_TIMEOUT,
        versioned: bool = True,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request answered in full: ``(status, headers, body)``.

        :raises EngineRefusedError: the engine answered with an error status.
        """
        data, headers = _body(body)
        limit = self.timeout if isinstance(timeout, _ClientTimeout) else timeout
        connection, response = self._send(
            method, self._url(path, params, versioned), data, headers, limit
        )
        try:
            content = response.read()
        except TimeoutError as exc:
            connection.close()
            raise EngineTimeoutError("the Docker engine did not answer in time") from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise EngineTransportError(_reason(exc)) from exc
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._checkin(connection)
        if response.status >= 400:
            raise _refusal(response.status, content)
        return response.status, response.headers, content

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        _, _, content = self._call(method, path, **kwargs)
        if not content.strip():
            return None
        try:
            return json.loads(content)
        except ValueError as exc:
            raise EngineTransportError(f"the engine's answer is not JSON: {exc}") from exc

    def _stream(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[_Connection, http.client.HTTPResponse]:
        """A request whose body is read by the caller; the connection is not pooled."""
        connection, response = self._send(
            method, self._url(path, params), body, headers or {}, self.timeout
        )
        if response.status >= 400:
            try:
                content = response.read()
            except (OSError, http.client.HTTPException):
                content = b""
            finally:
                connection.close()
            raise _refusal(response.status, content)
        return connection, response

    def _hijack(self, path: str, body: Any) -> HijackedStream:
        """POST ``path`` and take over the connection for the raw stream that follows."""
        data, headers = _body(body)
        payload = data if isinstance(data, bytes) else b""
        headers["Content-Length"] = str(len(payload))
        request = (
            f"POST {self._url(path, None)} HTTP/1.1\r\nHost: docker\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        ).encode("latin-1") + payload
        try:
            sock = self.address.socket(self.timeout)
        except TimeoutError as exc:
            raise EngineTimeoutError("the Docker engine did not answer in time") from exc
        except OSError as exc:
            raise EngineTransportError(_reason(exc)) from exc
        try:
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(_CHUNK)
                if not chunk:
                    raise EngineTransportError("the engine closed the connection")
                received += chunk
            head, _, rest = received.partition(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            if status >= 400:
                length = 0
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length" and value.strip().isdigit():
                        length = int(value)
                while len(rest) < length:
                    chunk = sock.recv(_CHUNK)
                    if not chunk:
                        break
                    rest += chunk
                sock.close()
                raise _refusal(status, rest)
        except TimeoutError as exc:
            sock.close()
            raise EngineTimeoutError("the Docker engine did not answer in time") from exc
        except (OSError, ValueError, IndexError) as exc:
            sock.close()
            raise EngineTransportError(_reason(exc)) from exc
        except BaseException:
            sock.close()
            raise
        return HijackedStream(sock, rest)

    # -- images -----------------------------------------------------------------------------

    def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/images/{_quote(image)}/json"))

    def images(
        self,
        name: str | None = None,
        quiet: bool = False,
        all: bool = False,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        wanted = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}
        if name:
            wanted["reference"] = [name]
        params = {"all": all, "filters": json.dumps(wanted) if wanted else None}
        found = list(self._json("GET", "/images/json", params=params) or [])
        return [image["Id"] for image in found] if quiet else found

    def build(
        self,
        fileobj: IO[bytes],
        rm: bool = True,
        forcerm: bool = False,
        labels: Mapping[str, str] | None = None,
        decode: bool = True,
        custom_context: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Build from a tar of the context; the engine's progress, one JSON object at a time."""
        params = {
            "rm": rm,
            "forcerm": forcerm,
            "labels": json.dumps(dict(labels)) if labels else None,
        }
        fileobj.seek(0, os.SEEK_END)
        size = fileobj.tell()
        fileobj.seek(0)
        headers = {"Content-Type": "application/x-tar", "Content-Length": str(size)}
        connection, response = self._stream("POST", "/build", params, fileobj, headers)
        return _json_lines(response, connection)

    def tag(self, image: str, repository: str, tag: str | None = None, force: bool = False) -> bool:
        params = {"repo": repository, "tag": tag, "force": force}
        status, _, _ = self._call("POST", f"/images/{_quote(image)}/tag", params=params)
        return status == 201

    def remove_image(self, image: str, force: bool = False, noprune: bool = False) -> None:
        params = {"force": force, "noprune": noprune}
        self._call("DELETE", f"/images/{_quote(image)}", params=params)

    def commit(self, container: str, changes: Sequence[str] = ()) -> dict[str, Any]:
        params = {"container": container, "changes": list(changes), "pause": True}
        return dict(self._json("POST", "/commit", params=params, body={}))

    # -- containers -------------------------------------------------------------------------

    def create_container(
        self,
        image: str,
        command: Sequence[str] | None = None,
        entrypoint: Sequence[str] | None = None,
        environment: Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        name: str | None = None,
        host_config: Mapping[str, Any] | None = None,
        networking_config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        # As the SDK sends a container that is not detached: its output attachable.
        config = {
            "Image": image,
            "Cmd": list(command) if command is not None else None,
            "Entrypoint": list(entrypoint) if entrypoint is not None else None,
            "Env": list(environment) if environment is not None else None,
            "Labels": dict(labels) if labels is not None else None,
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "AttachStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "NetworkDisabled": False,
            "HostConfig": dict(host_config) if host_config is not None else None,
            "NetworkingConfig": networking_config,
        }
        body = {k: v for k, v in config.items() if v is not None}
        return dict(self._json("POST", "/containers/create", params={"name": name}, body=body))

    def start(self, container: str) -> None:
        self._call("POST", f"/containers/{_quote(container)}/start")

    def wait(self, container: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the container to stop; ``timeout`` (``None``: no bound) bounds the wait.

        :raises EngineTimeoutError: it did not stop within ``timeout``.
        """
        return dict(self._json("POST", f"/containers/{_quote(container)}/wait", timeout=timeout))

    def attach(self, container: str) -> HijackedStream:
        """Attach to the container's stdout and stderr as a stream (before it starts)."""
        params = {"stdout": True, "stderr": True, "stream": True}
        path = f"/containers/{_quote(container)}/attach?" + urllib.parse.urlencode(
            [(k, _param(v)) for k, v in params.items()]
        )
        return self._hijack(path, None)

    def kill(self, container: str, signal: str = "SIGKILL") -> None:
        self._call("POST", f"/containers/{_quote(container)}/kill", params={"signal": signal})

    def stop(self, container: str, timeout: int = 10) -> None:
        # The engine answers once the grace period is over: the request waits for it too.
        limit = None if self.timeout is None else self.timeout + timeout
        path = f"/containers/{_quote(container)}/stop"
        self._call("POST", path, params={"t": timeout}, timeout=limit)

    def update_container(
        self, container: str, restart_policy: Mapping[str, Any] | None = None
    ) -> None:
        body = {"RestartPolicy": dict(restart_policy)} if restart_policy is not None else {}
        self._call("POST", f"/containers/{_quote(container)}/update", body=body)

    def rename(self, container: str, name: str) -> None:
        self._call("POST", f"/containers/{_quote(container)}/rename", params={"name": name})

    def remove_container(self, container: str, v: bool = False, force: bool = False) -> None:
        params = {"v": v, "force": force}
        self._call("DELETE", f"/containers/{_quote(container)}", params=params)

    def inspect_container(self, container: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/containers/{_quote(container)}/json"))

    def containers(
        self, all: bool = False, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        wanted = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}
        params = {"all": all, "filters": json.dumps(wanted) if wanted else None}
        return list(self._json("GET", "/containers/json", params=params) or [])

    def archive_stat(self, container: str, path: str) -> dict[str, Any] | None:
        """The stat of ``path`` in the container (``HEAD .../archive``); ``None`` if missing."""
        import base64

        url = f"/containers/{_quote(container)}/archive"
        try:
            _, headers, _ = self._call("HEAD", url, params={"path": path})
        except EngineNotFoundError:
            return None
        header = headers.get("X-Docker-Container-Path-Stat", "")
        return dict(json.loads(base64.b64decode(header))) if header else {}

    def get_archive(self, container: str, path: str) -> ArchiveStream:
        """A tar of ``path`` in the container, streamed.  :raises EngineNotFoundError:"""
        url = f"/containers/{_quote(container)}/archive"
        connection, response = self._stream("GET", url, {"path": path})
        return ArchiveStream(response, connection)

    # -- exec -------------------------------------------------------------------------------

    def exec_create(
        self, container: str, cmd: Sequence[str], stdout: bool = True, stderr: bool = True
    ) -> dict[str, Any]:
        body = {
            "AttachStdin": False,
            "AttachStdout": stdout,
            "AttachStderr": stderr,
            "Tty": False,
            "Cmd": list(cmd),
            "Privileged": False,
            "User": "",
        }
        return dict(self._json("POST", f"/containers/{_quote(container)}/exec", body=body))

    def exec_start(self, exec_id: str) -> HijackedStream:
        return self._hijack(f"/exec/{_quote(exec_id)}/start", {"Detach": False, "Tty": False})

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/exec/{_quote(exec_id)}/json"))


def _json_lines(
    response: http.client.HTTPResponse, connection: _Connection
) -> Iterator[dict[str, Any]]:
    """Each JSON object of a progress stream as it comes; the connection closes at the end."""
    decoder = json.JSONDecoder()
    # A character's bytes may be split between two reads.
    text = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    try:
        while True:
            try:
                chunk = response.read1(_CHUNK)
            except TimeoutError as exc:
                raise EngineTimeoutError("the Docker engine did not answer in time") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise EngineTransportError(_reason(exc)) from exc
            if not chunk:
                break
            pending += text.decode(chunk)
            while True:
                pending = pending.lstrip()
                if not pending:
                    break
                try:
                    item, end = decoder.raw_decode(pending)
                except ValueError:
                    break  # the rest of this object is still on its way
                pending = pending[end:]
                if isinstance(item, dict):
                    yield item
        if pending.strip():
            raise EngineTransportError("the engine's progress stream ended inside an object")
    finally:
        connection.close()


def _body(body: Any) -> tuple[bytes | IO[bytes] | None, dict[str, str]]:
    if body is None:
        return None, {}
    if isinstance(body, bytes) or hasattr(body, "read"):
        return body, {}
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return [_param(item) for item in value]
    return value


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="/:@")


def _still_open(connection: _Connection) -> bool:
    """Whether a kept-alive connection is still usable: nothing to read on an idle one (an
    engine that restarted or closed it makes it readable, at its end)."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _refusal(status: int, content: bytes) -> EngineRefusedError:
    text = content.decode("utf-8", "replace").strip()
    try:
        message = json.loads(text).get("message", text) if text else ""
    except (ValueError, AttributeError):
        message = text
    message = str(message) or f"HTTP {status}"  # a HEAD's refusal has no body
    if status == 404:
        lowered = message.lower()
        if any(fragment in lowered for fragment in _IMAGE_NOT_FOUND):
            return EngineImageNotFoundError(status, message)
        return EngineNotFoundError(status, message)
    return EngineRefusedError(status, message)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EngineCallError):
        return exc.explanation
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text or type(exc).__name__
