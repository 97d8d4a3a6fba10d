"""The Docker engine.  The only module of the core that imports ``docker`` (the SDK), and only
for what it does not call itself: a build's context tar and :attr:`Engine.api`.

One :class:`Engine` (one API client, :class:`dokku_tasks.engine_api.EngineApi`) serves a
whole deploy.  Everything the core needs from the
engine (containers and images) is a method here, taking and returning our own records, so the
pipeline and the ``docker-local`` scheduler never see SDK objects.  A scheduler plugin that
owns its engine calls makes them through :attr:`Engine.api`, with :func:`engine_errors` and
:class:`LineSplitter`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import os
import posixpath
import queue
import re
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, cast

from .engine_api import Address, EngineApi, HijackedStream, tls_from_environment
from .errors import (
    BuildError,
    EngineCallError,
    EngineError,
    EngineImageNotFoundError,
    EngineNotFoundError,
    EngineRefusedError,
    EngineTimeoutError,
    SourceError,
)
from .models import ImageInfo
from .specs import (
    APP_LABEL,
    TASK_LABEL,
    ContainerInfo,
    ContainerSpec,
    ExecOutcome,
    ImageFile,
    Interruption,
    RunOutcome,
)

if TYPE_CHECKING:
    import docker

#: Longest piece of a line held before it is passed on; longer lines arrive in pieces.
MAX_LINE_BYTES = 64 * 1024

LineSink = Callable[[str], None]

#: How long one API request may take.  Generous: committing a large predeploy container takes
#: minutes; waits on a task carry their own timeout.
REQUEST_TIMEOUT = 600

#: How long one request may take once a signal has stopped the deploy (the clean-up).
CLEANUP_REQUEST_TIMEOUT = 2
#: How often a wait without a bound looks at whether a signal has bounded it.
WAIT_SLICE = 0.2


def _engine_failures() -> tuple[type[BaseException], ...]:
    """What a failed engine call raises: our client's errors, and the SDK's once a scheduler
    plugin has loaded it (through :attr:`Engine.api`)."""
    found: list[type[BaseException]] = [EngineCallError]
    sdk_errors = sys.modules.get("docker.errors")
    if sdk_errors is not None:
        found.append(sdk_errors.APIError)
    transport = sys.modules.get("requests.exceptions")
    if transport is not None:
        found.append(transport.RequestException)
    return tuple(found)


#: How many times in all a build is tried when its cache probe loses a race (see
#: :meth:`Engine.build`): each retry needs another removal in the same fraction of a second.
BUILD_ATTEMPTS = 3

_CACHE_PROBE_RACE = re.compile(r'unable to find image "sha256:[0-9a-f]{64}"')


def is_cache_probe_race(message: str) -> bool:
    """Whether a build failed because an image vanished while the engine probed its cache.

    Only the cache probe names a missing image by its full ``sha256:`` id; a ``FROM`` image
    that is missing is named as written, and the engine tries to pull it.
    """
    return _CACHE_PROBE_RACE.search(message) is not None


@contextlib.contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Turn a failed engine call into one :class:`EngineError` line: ``what: why``.

    For scheduler plugins that call the SDK themselves (through :attr:`Engine.api`) too.
    """
    try:
        yield
    except _engine_failures() as exc:
        raise EngineError(f"{what}: {_why(exc)}") from exc


class Engine:
    """One connection to a Docker engine."""

    def __init__(
        self, api: EngineApi, where: str, interruption: Interruption | None = None
    ) -> None:
        self._api = api
        self._sdk: docker.APIClient | None = None
        self._sdk_lock = threading.Lock()
        # Whether DOCKER_HOST and its TLS variables chose the engine (for the SDK's client).
        self._from_environment = False
        self.where = where
        # Removing a finished container and retiring an old one need not hold up the next
        # step: one background worker does them, and close() waits for all of it.
        # Two lanes: container removals, and image pruning (which need not wait for them).
        self._janitors = {lane: _Janitor(lane) for lane in ("containers", "images")}
        self._pending: list[concurrent.futures.Future[None]] = []
        self._interruption = interruption or Interruption()
        self._interruption.listen(self._shorten_requests)

    @classmethod
    def connect(
        cls, base_url: str | None = None, interruption: Interruption | None = None
    ) -> Engine:
        """Connect to ``base_url``, else ``$DOCKER_HOST``, else the default socket.

        ``interruption``, when given, is the deploy's: once it is signalled, every request
        and wait of this engine is bounded by its clean-up budget.

        :raises EngineError: no engine answers there (one line naming where it looked).
        """
        where = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        try:
            address = Address(where, None if base_url else tls_from_environment(os.environ))
            api = EngineApi.connect(address, REQUEST_TIMEOUT)
        except EngineCallError as exc:
            raise EngineError(f"Cannot reach the Docker engine at {where}: {_why(exc)}") from exc
        except OSError as exc:  # the TLS files of DOCKER_CERT_PATH
            raise EngineError(
                f"Cannot reach the Docker engine at {where}: {exc.strerror or exc}"
            ) from exc
        engine = cls(api, where, interruption)
        engine._from_environment = base_url is None
        return engine

    @property
    def api(self) -> docker.APIClient:
        """The Docker SDK's low-level client of this engine, for scheduler plugins that own
        their engine calls; made (and the SDK imported) on first use.

        It speaks the API version this connection agreed on, and its requests share this
        connection's timeouts, including the short ones of the clean-up once the deploy's
        interruption is signalled.
        """
        with self._sdk_lock:
            if self._sdk is None:
                import docker

                tls = docker.utils.kwargs_from_env().get("tls") if self._from_environment else None
                self._sdk = docker.APIClient(
                    base_url=self.where,
                    version=self._api.version,
                    timeout=int(self._api.timeout or REQUEST_TIMEOUT),
                    tls=tls or False,
                )
            return self._sdk

    def _shorten_requests(self) -> None:
        # Runs in the signal handler: requests made from now on (the clean-up) give up soon.
        self._api.timeout = CLEANUP_REQUEST_TIMEOUT
        if self._sdk is not None:
            self._sdk.timeout = CLEANUP_REQUEST_TIMEOUT

    def close(self) -> None:
        """Finish every background removal, then close the connection.

        After an interruption the wait is bounded by its budget; what is not done by then is
        left to the next deploy (the janitor's thread is a daemon, so it never holds the
        process).

        :raises EngineError: a background removal failed or did not finish (the first one).
        """
        try:
            self.drain()
        finally:
            self._api.close()
            if self._sdk is not None:
                self._sdk.close()

    def drain(self) -> None:
        """Wait for the removals :meth:`remove_later` queued so far.

        :raises EngineError: one failed, or did not finish within the clean-up budget.
        """
        pending, self._pending = self._pending, []
        first: EngineError | None = None
        unfinished = 0
        for future in pending:
            if not self._wait(future):
                unfinished += 1
                continue
            error = future.exception()
            if error is not None and first is None:
                first = (
                    error
                    if isinstance(error, EngineError)
                    else EngineError(f"Background clean-up failed: {_why(error)}")
                )
        if unfinished:
            raise EngineError(
                f"The Docker engine did not finish {unfinished} clean-up step(s) within "
                f"{self._interruption.budget:g} s; the next deploy removes what they left"
            )
        if first is not None:
            raise first

    def _wait(self, future: concurrent.futures.Future[None]) -> bool:
        """Wait for ``future``; ``False`` when the clean-up budget ran out first."""
        while True:
            remaining = self._interruption.remaining()
            # Short slices while unbounded, so a signal that arrives meanwhile bounds the wait
            # even when its handler does not raise (a deploy that already succeeded).
            slice_ = WAIT_SLICE if remaining is None else min(WAIT_SLICE, remaining)
            try:
                future.result(timeout=slice_)
            except concurrent.futures.TimeoutError:
                if remaining is not None and remaining <= 0:
                    return False
                continue
            except BaseException:  # the caller reads future.exception()
                pass
            return True

    def remove_later(self, container_id: str, stop_first: bool = False) -> None:
        """Queue the removal of a container (after a graceful stop when ``stop_first``)."""

        def retire() -> None:
            if stop_first:
                self.stop(container_id)
            try:
                self.remove(container_id)
            except EngineError as exc:
                # Every container queued here is a task or an old process of the app.
                raise EngineError(f"{exc.message}; the next deploy removes it") from exc

        self._pending.append(self._janitors["containers"].submit(retire))

    def later(self, step: Callable[[], None], lane: str = "containers") -> None:
        """Queue a clean-up step; close() waits for it.

        Steps of one ``lane`` run in order: ``containers`` (behind the removals) or ``images``
        (beside them).
        """
        self._pending.append(self._janitors[lane].submit(step))

    # -- images -----------------------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo:
        """Inspect an image.  :raises SourceError: it does not exist on this engine."""
        data = self._inspect_image(ref)
        config = data.get("Config") or {}
        return ImageInfo(
            ref=ref,
            id=data["Id"],
            entrypoint=config.get("Entrypoint"),
            cmd=config.get("Cmd"),
            workdir=config.get("WorkingDir") or "",
            labels=config.get("Labels") or {},
        )

    def _inspect_image(self, ref: str) -> Mapping[str, Any]:
        """The engine's inspection of an image.  :raises SourceError: no such image."""
        try:
            return dict(self._api.inspect_image(ref))
        except EngineNotFoundError:
            raise SourceError(f"Image {ref} does not exist") from None
        except EngineCallError as exc:
            raise EngineError(f"Cannot inspect image {ref}: {_why(exc)}") from exc

    def image_id(self, ref: str) -> str | None:
        """The id ``ref`` names, or ``None`` when there is no such image."""
        try:
            return str(self._api.inspect_image(ref)["Id"])
        except EngineNotFoundError:
            return None
        except EngineCallError as exc:
            raise EngineError(f"Cannot inspect image {ref}: {_why(exc)}") from exc

    def build(
        self,
        context: Path,
        labels: Mapping[str, str],
        on_line: LineSink,
        on_rebuild: Callable[[str], None] | None = None,
    ) -> str:
        """Build ``context/Dockerfile`` untagged, streaming its output; return the image id.

        A build whose cache probe lost a race with the removal of an image is built again, up
        to :data:`BUILD_ATTEMPTS` times in all: the engine lists the children of the step's
        parent image and then reads each, so the removal of *any* image built on the same
        parent (another app's prune, or ``docker rmi``) between the two fails the build
        with ``unable to find image "sha256:…"`` although nothing is wrong with it.
        ``on_rebuild`` gets a line saying so before each new attempt.

        :raises BuildError: the build failed (its output was already passed to ``on_line``).
        """
        for attempt in range(1, BUILD_ATTEMPTS + 1):
            try:
                return self._build_once(context, labels, on_line)
            except BuildError as exc:
                if attempt == BUILD_ATTEMPTS or not is_cache_probe_race(exc.message):
                    raise
                if on_rebuild is not None:
                    on_rebuild(
                        "An image the build cache was looking at was removed meanwhile "
                        f"({exc.message.removeprefix('Image build failed: ')}); building again"
                    )
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _build_once(self, context: Path, labels: Mapping[str, str], on_line: LineSink) -> str:
        image_id = ""
        try:
            archive = _build_context(context)
        except OSError as exc:
            raise BuildError(
                f"Image build failed: cannot read the build context: {exc.strerror or exc}"
            ) from exc
        try:
            stream = self._api.build(
                fileobj=archive,
                custom_context=True,
                rm=True,
                forcerm=True,
                decode=True,
                labels=dict(labels),
            )
            pending = ""
            for chunk in stream:
                if "error" in chunk:
                    for _ in stream:  # read to the end: that releases the connection
                        pass
                    raise BuildError(f"Image build failed: {str(chunk['error']).strip()}")
                if "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = chunk["aux"].get("ID", image_id)
                text = pending + str(chunk.get("stream", ""))
                *lines, pending = text.split("\n")
                for line in lines:
                    on_line(line)
            if pending:
                on_line(pending)
        except EngineCallError as exc:
            raise BuildError(f"Image build failed: {_why(exc)}") from exc
        finally:
            archive.close()
        if not image_id:
            raise BuildError("Image build failed: the engine reported no image id")
        return image_id

    def tag(self, image: str, repository: str, tag: str) -> None:
        with engine_errors(f"Cannot tag {image[:19]} as {repository}:{tag}"):
            self._api.tag(image, repository, tag, force=True)

    def untag(self, ref: str) -> None:
        """Remove the tag ``ref`` (the image stays while other tags or containers use it)."""
        with engine_errors(f"Cannot untag {ref}"), contextlib.suppress(EngineNotFoundError):
            self._api.remove_image(ref, noprune=True)

    def commit(self, container_id: str, changes: Sequence[str]) -> str:
        """Commit a container to a new untagged image; return its id."""
        with engine_errors("Committing of 'predeploy' to image failed"):
            result = self._api.commit(container_id, changes=list(changes))
        return str(result["Id"])

    def read_image_files(
        self,
        image: str,
        base: str,
        paths: Sequence[str],
        labels: Mapping[str, str],
        limit: int | None = None,
    ) -> dict[str, ImageFile]:
        """Read files at ``paths`` (relative to ``base``) out of an image without running it.

        A container is created, never started, and removed.  Every symlink on the way is
        resolved by the engine in the image's scope, and :attr:`ImageFile.resolved` says where
        the path really led, so the caller can refuse one that left ``base``.

        :param limit: a file over this many bytes is refused by its size, unread (default
            :data:`~dokku_tasks.locate.MAX_IMAGE_FILE_BYTES`).
        """
        spec = ContainerSpec(
            image=image,
            command=("dokku-tasks-read",),
            entrypoint=("dokku-tasks-read",),
            # Labelled as a task so that a killed deploy's reader is cleaned up like one.
            labels={**labels, TASK_LABEL: "read"},
        )
        container_id = self.create(spec)
        try:
            return {path: self._read_under(container_id, base, path, limit) for path in paths}
        finally:
            self.remove_later(container_id)

    def read_image_files_in_place(
        self,
        image: str,
        base: str,
        paths: Sequence[str],
        limit: int | None = None,
    ) -> dict[str, ImageFile]:
        """Read files like :meth:`read_image_files`, but from the image's layers on this host,
        without a container: no write on the engine at all (``deploy --plan``).

        Gives the same :class:`ImageFile` (content, ``missing``, ``other``, resolved path) and
        the same errors as :meth:`read_image_files` for every path: the layers are merged as
        the overlay mount of a container merges them, whiteouts and opaque directories
        included, with the container's init layer on top, and symlinks are resolved in the
        image's scope the way the engine does (:mod:`dokku_tasks.imagefs`).

        Works where the engine stores the image with the ``overlay2`` driver in directories
        this process can read as root.  Every layer directory is checked against the engine's
        layer store (``image/overlay2/layerdb``: the chain id of the image's layers up to it
        names that directory), so a directory of another image, or of another host's engine
        that happens to share a path, is never read.

        :raises LayersUnreadableError: the layers cannot be read here; ``reason`` says why.
        :raises FileTooLargeError: a file is over ``limit``.
        :raises EngineError: where :meth:`read_image_files` would fail the read.
        """
        from . import imagefs
        from .locate import MAX_IMAGE_FILE_BYTES

        data = self._inspect_image(image)
        layers = _layer_directories(data)
        view = imagefs.MergedView([imagefs.INIT_LAYER, *map(imagefs.DirectoryLayer, layers)])
        workdir = (data.get("Config") or {}).get("WorkingDir") or ""
        with _layer_errors():
            imagefs.check_workdir(view, workdir)
            if not paths:
                return {}
            return imagefs.read_files(
                view, base, paths, MAX_IMAGE_FILE_BYTES if limit is None else limit
            )

    def _read_under(
        self, container_id: str, base: str, relative: str, limit: int | None
    ) -> ImageFile:
        resolved = posixpath.normpath(base or "/")
        *directories, name = PurePosixPath(relative).parts
        for part in directories:
            candidate = posixpath.join(resolved, part)
            stat = self._stat(container_id, candidate)
            if stat is None:
                return ImageFile("missing", resolved=candidate)
            resolved = str(stat.get("linkTarget") or candidate)
        return self._read_file(container_id, posixpath.join(resolved, name), limit)

    def _stat(self, container_id: str, path: str) -> Mapping[str, Any] | None:
        # HEAD on the archive endpoint answers with the path's stat alone, without its content.
        try:
            return self._api.archive_stat(container_id, path)
        except (EngineCallError, ValueError) as exc:
            raise EngineError(f"Cannot read {path} from the image: {_why(exc)}") from exc

    def _read_file(self, container_id: str, path: str, limit: int | None = None) -> ImageFile:
        """Read one file out of a container, holding at most about 1 MiB of it in memory.

        The path's stat comes first (a HEAD request): a symlink is followed, anything but a
        regular file is ``other`` without its content being fetched, and a file over
        :data:`~dokku_tasks.locate.MAX_IMAGE_FILE_BYTES` is refused by its size.  The archive
        of a file that passes is streamed with a bound as well, in case the stat was wrong.

        :raises FileTooLargeError: the file is over the limit.
        """
        from .errors import FileTooLargeError
        from .locate import MAX_IMAGE_FILE_BYTES

        if limit is None:
            limit = MAX_IMAGE_FILE_BYTES

        # Go's os.ModeType: directory, symlink, device, named pipe, socket, char device, irregular.
        not_regular = (
            (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
        )
        # What a tar archive of one file adds to it: headers (long names too) and the padding.
        archive_overhead = 64 * 1024
        for _ in range(2):  # a symlink's target comes back fully resolved: one hop is enough
            stat = self._stat(container_id, path)
            if stat is None:
                return ImageFile("missing", resolved=path)
            if stat.get("linkTarget"):
                path = str(stat["linkTarget"])
                continue
            if int(stat.get("mode", 0)) & not_regular:
                return ImageFile("other", resolved=path)
            size = int(stat.get("size", 0))
            if size > limit:
                raise FileTooLargeError(
                    posixpath.basename(path), f"{path} in the image", limit, size
                )
            buffer = io.BytesIO()
            try:
                response = self._api.get_archive(container_id, path)
            except EngineNotFoundError:
                return ImageFile("missing", resolved=path)
            except EngineCallError as exc:
                raise EngineError(f"Cannot read {path} from the image: {_why(exc)}") from exc
            try:
                for chunk in response.iter_content(64 * 1024):
                    buffer.write(chunk)
                    if buffer.tell() > limit + archive_overhead:
                        # The stat was wrong: the file's real size is not known.
                        raise FileTooLargeError(
                            posixpath.basename(path), f"{path} in the image", limit
                        )
            except EngineCallError as exc:
                raise EngineError(f"Cannot read {path} from the image: {_why(exc)}") from exc
            finally:
                response.close()
            buffer.seek(0)
            try:
                with tarfile.open(fileobj=buffer) as archive:
                    member = archive.next()
                    if member is None or not member.isfile():
                        return ImageFile("other", resolved=path)
                    if member.size > limit:
                        raise FileTooLargeError(
                            posixpath.basename(path), f"{path} in the image", limit, member.size
                        )
                    handle = archive.extractfile(member)
                    data = handle.read(limit + 1) if handle else b""
            except tarfile.TarError as exc:
                raise EngineError(f"Cannot read {path} from the image: {exc}") from exc
            return ImageFile("file", data=data, resolved=path)
        return ImageFile("other", resolved=path)

    # -- containers -------------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> str:
        """Create a container; return its id."""
        host_config: dict[str, Any] = {
            "NetworkMode": spec.network or "default",
            "Mounts": [
                {"Target": m.target, "Source": m.source, "Type": "bind", "ReadOnly": m.read_only}
                for m in spec.mounts
            ],
        }
        policy = _restart_policy(spec.restart_policy, spec.restart_retries)
        if policy is not None:
            host_config["RestartPolicy"] = policy
        if spec.init:
            host_config["Init"] = True
        kwargs: dict[str, Any] = {}
        if spec.network:
            kwargs["networking_config"] = {"EndpointsConfig": {spec.network: {}}}
        try:
            result = self._api.create_container(
                spec.image,
                command=list(spec.command) if spec.command is not None else None,
                entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
                environment=[f"{k}={v}" for k, v in spec.env.items()],
                labels=dict(spec.labels),
                name=spec.name,
                host_config=host_config,
                **kwargs,
            )
        except EngineImageNotFoundError:
            raise SourceError(f"Image {spec.image} does not exist") from None
        except EngineCallError as exc:
            raise EngineError(f"Failed to create container: {_why(exc)}") from exc
        return str(result["Id"])

    def run(
        self,
        container_id: str,
        on_stdout: LineSink,
        on_stderr: LineSink,
        timeout: float | None,
    ) -> RunOutcome:
        """Start a created container, stream its output line by line, and wait for it.

        Output is read on a separate thread because reading blocks while the container is
        silent; the wait (with the timeout) runs here.  A container past its timeout is
        killed.  The caller removes the container.
        """
        with engine_errors(f"Cannot attach to container {container_id[:12]}"):
            stream: HijackedStream = self._api.attach(container_id)
        reader = threading.Thread(
            target=_pump,
            args=(stream.frames(), on_stdout, on_stderr),
            name="task-output",
            daemon=True,
        )
        try:
            with engine_errors(f"Container {container_id[:12]} failed"):
                self._api.start(container_id)
                reader.start()
                try:
                    status = self._api.wait(container_id, timeout=timeout)
                except EngineTimeoutError:
                    if timeout is None:
                        raise
                    self.kill(container_id)
                    return RunOutcome(exit_code=-1, timed_out=True)
            reader.join()
            return RunOutcome(exit_code=int(status.get("StatusCode", -1)))
        finally:
            # Also ends a read that is blocked: the reader's loop then ends.
            stream.close()
            if reader.is_alive():
                reader.join(timeout=5)

    def start(self, container_id: str) -> None:
        with engine_errors(f"Cannot start container {container_id[:12]}"):
            self._api.start(container_id)

    def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Send ``signal`` to the container's PID 1; one that already stopped is fine."""
        with contextlib.suppress(EngineCallError):
            self._api.kill(container_id, signal=signal)

    def update_restart_policy(self, container_id: str, name: str, retries: int = 0) -> None:
        """Change a container's restart policy (``no`` before it is retired, so a stop sticks).

        A container that is already gone is fine.
        """
        try:
            self._api.update_container(container_id, restart_policy=_restart_policy(name, retries))
        except EngineNotFoundError:
            pass
        except EngineCallError as exc:
            raise EngineError(f"Cannot update container {container_id[:12]}: {_why(exc)}") from exc

    def exec(
        self, container_id: str, argv: Sequence[str], timeout: float, limit: int = 64 * 1024
    ) -> ExecOutcome:
        """Run ``argv`` in a running container and wait for it, at most ``timeout`` seconds.

        Output beyond ``limit`` bytes is dropped (a check's output is shown, never stored
        whole).  A command past its timeout is left to end with its container: the engine has
        no way to kill one exec.
        """
        with engine_errors(f"Cannot run a command in container {container_id[:12]}"):
            created = self._api.exec_create(container_id, list(argv), stdout=True, stderr=True)
            exec_id = created["Id"]
            stream = self._api.exec_start(exec_id)
        chunks: list[bytes] = []
        kept = 0
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return ExecOutcome(-1, _exec_text(chunks), timed_out=True)
                try:
                    data = stream.recv(min(remaining, WAIT_SLICE))
                except TimeoutError:
                    continue
                except OSError as exc:
                    raise EngineError(
                        f"Cannot read a command's output in container {container_id[:12]}: {exc}"
                    ) from exc
                if not data:
                    break
                if kept < limit:
                    chunks.append(data[: limit - kept])
                    kept += len(chunks[-1])
        finally:
            stream.close()
        with engine_errors(f"Cannot inspect a command in container {container_id[:12]}"):
            # The stream ends a moment before the engine records the exit status.
            for _ in range(50):
                info = self._api.exec_inspect(exec_id)
                if not info.get("Running"):
                    break
                time.sleep(0.02)
        code = info.get("ExitCode")
        return ExecOutcome(-1 if code is None else int(code), _exec_text(chunks))

    def stop(self, container_id: str, timeout: int = 10) -> None:
        """Stop gracefully; a failure here is left to :meth:`remove`, which forces it."""
        with contextlib.suppress(EngineCallError):
            self._api.stop(container_id, timeout=timeout)

    def remove(self, container_id: str) -> None:
        """Force-remove a container; a container that is already gone is fine."""
        try:
            self._api.remove_container(container_id, force=True, v=True)
        except EngineNotFoundError:
            pass
        except EngineRefusedError as exc:
            if exc.status_code != 409:  # 409: a removal is already under way
                raise EngineError(
                    f"Cannot remove container {container_id[:12]}: {_why(exc)}"
                ) from exc
        except EngineCallError as exc:
            raise EngineError(f"Cannot remove container {container_id[:12]}: {_why(exc)}") from exc

    def rename(self, container_id: str, name: str) -> None:
        with engine_errors(f"Cannot rename container {container_id[:12]} to {name}"):
            self._api.rename(container_id, name)

    def state(self, container_id: str) -> Mapping[str, Any]:
        """The container's ``State`` block (``Status``, ``Running``, ``ExitCode`` ...)."""
        with engine_errors(f"Cannot inspect container {container_id[:12]}"):
            return dict(self._api.inspect_container(container_id).get("State") or {})

    def environment(self, container_id: str) -> list[str]:
        """The container's environment, ``NAME=value`` each."""
        with engine_errors(f"Cannot inspect container {container_id[:12]}"):
            config = self._api.inspect_container(container_id).get("Config") or {}
        return [str(item) for item in config.get("Env") or ()]

    def containers(
        self, labels: Mapping[str, str] | None = None, name: str | None = None
    ) -> list[ContainerInfo]:
        """Every container (running or not) carrying all of ``labels``.

        ``name`` narrows the listing to containers whose name contains it.
        """
        filters: dict[str, list[str]] = {"label": [f"{k}={v}" for k, v in (labels or {}).items()]}
        if name is not None:
            filters["name"] = [name]
        with engine_errors("Cannot list containers"):
            found = self._api.containers(all=True, filters=filters)
        return [
            ContainerInfo(
                id=c["Id"],
                name=(c.get("Names") or ["/"])[0].lstrip("/"),
                labels=c.get("Labels") or {},
                status=c.get("State", ""),
            )
            for c in found
        ]

    def prune_images(self, app: str, keep: Sequence[str]) -> int:
        """Remove the images of ``app`` except those ``keep`` names; return how many went.

        The app's images are those labelled with it and the ``dokku/APP`` tags.  An image
        with a tag of another repository is someone else's and stays; so does one a container
        still uses or another image is built on (the engine refuses those).  Removing an image
        also removes the untagged layers it was built from that nothing else uses.
        """
        ours = f"dokku/{app}:"
        with engine_errors(f"Cannot list the images of {app}"):
            listed = self._api.images(filters={"label": f"{APP_LABEL}={app}"})
            listed += self._api.images(name=f"dokku/{app}")
        wanted = set(keep)
        kept = {str(i["Id"]) for i in listed if wanted & set(i.get("RepoTags") or ())}
        removed = 0
        seen: set[str] = set()
        # Newest first: a committed image goes before the image it was committed from.
        for image in sorted(listed, key=lambda i: i.get("Created", 0), reverse=True):
            image_id = str(image["Id"])
            if image_id in kept or image_id in seen:
                continue
            seen.add(image_id)
            tags = _real_tags(image.get("RepoTags"))
            if any(not t.startswith(ours) for t in tags):
                continue
            if self._remove_image(image_id, untag_first=tags):
                removed += 1
        return removed

    def _remove_image(self, image_id: str, untag_first: Sequence[str] = ()) -> bool:
        """Remove the tags ``untag_first``, then ``image_id`` with the untagged layers it was
        built from that nothing else uses; ``False`` when it is gone already, a container uses
        it or another image is built on it."""
        try:
            for tag in untag_first:
                self._api.remove_image(tag)
            self._api.remove_image(image_id)
        except EngineNotFoundError:
            return False
        except EngineRefusedError as exc:
            if exc.status_code == 409:  # in use, or another image is built on it
                return False
            raise EngineError(f"Cannot remove image {image_id[7:19]}: {_why(exc)}") from exc
        except EngineCallError as exc:
            raise EngineError(f"Cannot remove image {image_id[7:19]}: {_why(exc)}") from exc
        return True

    def remove_image_if_untagged(self, image_id: str) -> bool:
        """Remove ``image_id`` when no tag names it and nothing uses it; return whether it went.

        As :meth:`prune_images` does for each image: the untagged layers it was built from
        that nothing else uses go with it; one a container uses or an image is built on stays.
        """
        try:
            inspected = self._api.inspect_image(image_id)
        except EngineNotFoundError:
            return False
        except EngineCallError as exc:
            raise EngineError(f"Cannot remove image {image_id[7:19]}: {_why(exc)}") from exc
        if _real_tags(inspected.get("RepoTags")):
            return False
        return self._remove_image(image_id)

    def remove_app_images(self, app: str) -> int:
        """Remove every image of ``app``; return how many went (``apps:destroy``).

        What the app runs goes first, through its schedulers.  Images are ``dokku/APP`` tags
        and images labelled with the app; a committed image depends on the one it was made
        from, so removal goes round until nothing more can go.
        """
        removed: set[str] = set()
        for _ in range(5):
            with engine_errors(f"Cannot list the images of {app}"):
                listed = self._api.images(name=f"dokku/{app}") + self._api.images(
                    filters={"label": f"{APP_LABEL}={app}"}
                )
            images = {str(i["Id"]) for i in listed} - removed
            if not images:
                break
            for image_id in images:
                with contextlib.suppress(EngineRefusedError):  # a child still uses it
                    self._api.remove_image(image_id, force=True)
                    removed.add(image_id)
        return len(removed)


def _real_tags(repo_tags: Sequence[str] | None) -> list[str]:
    """An image's tags as the engine lists them, without its ``<none>:<none>`` placeholder."""
    return [tag for tag in repo_tags or () if tag != "<none>:<none>"]


def _layer_directories(data: Mapping[str, Any]) -> list[str]:
    """The overlay2 directories of an inspected image's layers, the top layer first, each
    checked against the engine's layer store.

    :raises LayersUnreadableError: the engine does not use overlay2, this process is not root,
        or the directories are not this image's layers on this host.
    """
    import hashlib

    from .errors import LayersUnreadableError

    driver = data.get("GraphDriver") or {}
    name = driver.get("Name") or "unknown"
    if name != "overlay2":
        raise LayersUnreadableError(
            f"the engine stores images with the {name} driver (only overlay2 is read in place)"
        )
    if os.geteuid() != 0:
        raise LayersUnreadableError("reading the engine's layers needs root")
    details = driver.get("Data") or {}
    upper = str(details.get("UpperDir") or "")
    lower = [path for path in str(details.get("LowerDir") or "").split(":") if path]
    directories = [upper, *lower] if upper else lower
    diff_ids = [str(layer) for layer in (data.get("RootFS") or {}).get("Layers") or ()]
    if not directories or len(directories) != len(diff_ids):
        raise LayersUnreadableError("the engine does not list the image's layer directories")
    # DATA_ROOT/overlay2/CACHE_ID/diff; the layer store is DATA_ROOT/image/overlay2/layerdb.
    store = Path(upper or lower[0]).parent.parent.parent / "image" / "overlay2" / "layerdb"
    chain = ""
    for diff_id, directory in zip(diff_ids, reversed(directories), strict=True):
        chain = (
            diff_id
            if not chain
            else "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
        )
        algorithm, _, digest = chain.partition(":")
        try:
            cache_id = (store / algorithm / digest / "cache-id").read_text().strip()
        except OSError:
            cache_id = ""
        path = Path(directory)
        if not cache_id or path.name != "diff" or path.parent.name != cache_id or not path.is_dir():
            raise LayersUnreadableError(
                "the image's layers are not on this host (a remote engine, or one in another "
                "mount namespace)"
            )
    return directories


@contextlib.contextmanager
def _layer_errors() -> Iterator[None]:
    """A layer that cannot be read (removed meanwhile, a permission) cannot be told apart
    from what the container read would see: say the layers are unreadable."""
    from .errors import LayersUnreadableError

    try:
        yield
    except OSError as exc:
        raise LayersUnreadableError(f"{exc.filename or 'a layer'}: {exc.strerror or exc}") from exc


def _guarded(sink: LineSink) -> LineSink:
    """``sink``, but once it fails (a closed pipe, an encoding error) lines are dropped.

    The reader must go on reading whatever happens to the output: a container whose output
    is not read blocks on its next write, and the deploy with it.
    """
    failed = False

    def guarded(line: str) -> None:
        nonlocal failed
        if not failed:
            try:
                sink(line)
            except Exception:
                failed = True

    return guarded


def _pump(
    stream: Iterator[tuple[bytes | None, bytes | None]], out: LineSink, err: LineSink
) -> None:
    out_split, err_split = LineSplitter(_guarded(out)), LineSplitter(_guarded(err))
    try:
        for stdout_chunk, stderr_chunk in stream:
            if stdout_chunk:
                out_split.feed(stdout_chunk)
            if stderr_chunk:
                err_split.feed(stderr_chunk)
    except (EngineCallError, OSError, ValueError):
        pass  # the stream was closed under us: the container is being torn down
    out_split.close()
    err_split.close()


class LineSplitter:
    """Turns chunks of bytes into lines as they complete; holds at most MAX_LINE_BYTES."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        *lines, self._pending = data.split(b"\n")
        for line in lines:
            self._sink(_decode(line))
        while len(self._pending) > MAX_LINE_BYTES:
            self._sink(_decode(self._pending[:MAX_LINE_BYTES]))
            self._pending = self._pending[MAX_LINE_BYTES:]

    def close(self) -> None:
        if self._pending:
            self._sink(_decode(self._pending))
            self._pending = b""


def _decode(line: bytes) -> str:
    return line.rstrip(b"\r").decode("utf-8", errors="replace")


def _why(exc: BaseException) -> str:
    """One line saying why an engine call failed (ours, or the SDK's for a scheduler plugin)."""
    if isinstance(exc, EngineTimeoutError):
        return "the Docker engine did not answer in time"
    if isinstance(exc, EngineCallError):
        return _first_line(exc.explanation or type(exc).__name__)
    explanation = getattr(exc, "explanation", None)  # the SDK's APIError
    if explanation:
        return _first_line(explanation)
    transport = sys.modules.get("requests.exceptions")
    if (
        transport is not None
        and isinstance(exc, transport.RequestException)
        # requests reports a read timeout on a streamed response as a ConnectionError.
        and (isinstance(exc, transport.ReadTimeout) or "timed out" in str(exc))
    ):
        return "the Docker engine did not answer in time"
    return _first_line(exc)


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


class _Janitor:
    """Runs clean-up steps one after another on a daemon thread.

    A daemon, so that a step stuck on an engine which stopped answering never keeps the
    process alive after the command is done with it.
    """

    def __init__(self, lane: str) -> None:
        self._name = f"engine-janitor-{lane}"
        self._queue: queue.SimpleQueue[
            tuple[Callable[[], None], concurrent.futures.Future[None]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, step: Callable[[], None]) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((step, future))
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        return future

    def _work(self) -> None:
        while True:
            step, future = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                step()
            except BaseException as exc:  # handed to whoever waits
                future.set_exception(exc)
            else:
                future.set_result(None)


def _restart_policy(name: str | None, retries: int) -> dict[str, Any] | None:
    if not name:
        return None
    policy: dict[str, Any] = {"Name": name}
    if name == "on-failure" and retries:
        policy["MaximumRetryCount"] = retries
    return policy


def _build_context(context: Path) -> IO[bytes]:
    """The build context as the docker CLI sends it: a tar of the directory, without what its
    ``.dockerignore`` excludes (the SDK's reading of that file, which the CLI's matches)."""
    import docker.utils

    exclude = None
    ignore = context / ".dockerignore"
    if ignore.exists():
        lines = (line.strip() for line in ignore.read_text().splitlines())
        exclude = [line for line in lines if line and not line.startswith("#")]
    archive = docker.utils.tar(context, exclude=exclude, dockerfile=(None, None))
    return cast("IO[bytes]", archive)


def _exec_text(chunks: list[bytes]) -> str:
    """An exec's raw output (no TTY: frames of an 8-byte header and a payload) as text."""
    data = b"".join(chunks)
    parts = []
    while len(data) >= 8:
        size = int.from_bytes(data[4:8], "big")
        parts.append(data[8 : 8 + size])
        data = data[8 + size :]
    return b"".join(parts).decode("utf-8", "replace")
