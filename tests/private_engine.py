"""A private Docker engine per test, for fault-injection tests (an engine that hangs, dies or
restarts during a deploy).

Use it from a test module (run the tests with ``python -m pytest``, as scripts/test.sh does, so
that ``tests.`` imports resolve); importing a fixture function makes it a fixture of the module::

    from tests.private_engine import PrivateEngine, private_engine_fixture  # noqa: F401

    @pytest.mark.private_engine
    def test_engine_dies(private_engine: PrivateEngine) -> None:
        client = private_engine.client()
        ...                       # DOCKER_HOST=private_engine.url for a subprocess
        private_engine.kill()     # a crash: SIGKILL dockerd (its containers' shims survive)
        private_engine.start()    # back on the same data-root

Each engine is a second ``dockerd`` (with its own managed ``containerd``) that runs in namespaces
of its own, made by one *holder* process: ``unshare --net --mount --pid --fork`` whose forked child
is the namespaces' init (a tiny zombie reaper).  ``dockerd`` joins them with ``nsenter``, so
``kill()``/``start()`` keep the same network, mount and pid namespaces and the shims that
survive a crash stay reachable.  Everything the engine makes lives under one short directory
``/tmp/dt-eng-XXXXXXXX`` (socket, data-root, exec-root, pid file, config file, log):

* its own network namespace: ``--bridge=none`` cannot delete the host's ``docker0`` there
  (engine pitfall 9), and ``nsenter`` keeps the host's ``/sys`` cgroup mounts (pitfall 10);
* its own mount namespace (private propagation): the engine's overlay and netns mounts never
  show in the host, and ``/run/containerd`` is a tmpfs in there, so the shims' sockets
  (``/run/containerd/s/…``, a path containerd hard-codes) never pile up in the host's directory;
* its own pid namespace: killing the holder (its init) makes the kernel kill every process of
  the engine, containers included.  The holder dies with pytest too (``setpriv --pdeathsig``
  on ``unshare``, and ``unshare --kill-child`` on the init), so even a hard-killed test run
  leaves no engine behind (only its directory and empty cgroups, which the next run's first
  fixture sweeps away: ``sweep_stale_engines()``);
* containers go to the cgroup parent ``/dt-eng-XXXXXXXX``, which the teardown removes.

Storage driver: overlay2 (the default; the data-root is on the host's ext4 ``/tmp`` and the
mounts stay in the engine's mount namespace).  ``vfs`` works too but copies every layer per
container.  A fresh engine answers in about 0.4 s and has its images after about 1.3 s.
With ``kill()``, dockerd's managed containerd dies too (parent-death signal) and a restarted
dockerd stops (not live-restores) the containers that survived: a container that ignores
SIGTERM delays ``start()`` by its 10 s stop timeout; give it ``stop_signal="SIGKILL"``, or pass
``extra_args=["--live-restore"]``.

Other fixtures: ``private_engine_factory`` (``private_engine_factory_fixture``) makes engines
with other arguments, or several.  ``sdk_connect_leaks()`` wraps code that makes the Docker SDK
talk to a killed engine: the SDK leaks a socket on every failed connect, which would otherwise
fail some later test with a ResourceWarning (pytest runs with warnings as errors).

Teardown (``close()``, run by the fixtures pass or fail) kills the holder, waits until no
process has the engine's directory in its command line or sits in its cgroups, kills any that
do, removes the cgroups, lazily unmounts anything left below the directory and removes it.
Processes are only ever found by that directory / cgroup name, never by a program name, so the
main engine (``/var/run/docker.sock``) is never touched.

Needs root, ``dockerd``/``containerd`` (Debian's docker.io), util-linux (``unshare``,
``nsenter``, ``setpriv``) and the offline base images in the main engine (scripts/setup.sh).
Create engines from the main thread: the pdeath signal fires when the *thread* that started
the holder exits.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import docker
import pytest
from docker.constants import MINIMUM_DOCKER_API_VERSION

# The offline base images (the same names as tests/conftest.py's BASE_IMAGE and TINI_IMAGE).
DEFAULT_IMAGES: tuple[str, ...] = ("dokku-tasks/busybox:latest", "dokku-tasks/busybox-tini:latest")

# The main engine, read at import time: a test may point DOCKER_HOST at a private engine later.
_MAIN_DOCKER_HOST = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

# Images saved from the main engine, by name: saved once per test run, loaded into each engine.
_IMAGE_TARS: dict[str, bytes] = {}

# Whether this test run has swept the leftovers of killed runs yet (see sweep_stale_engines).
_swept = False

# The namespaces' init: reaps the orphans (shims of a crashed dockerd) that the kernel hands it,
# at once: a new dockerd takes the zombie of its crashed predecessor's containerd (pid still in
# the pid file) for a live one and waits for it in vain.
# As a pid namespace's init it ignores every signal it has no handler for; SIGKILL from the
# host still works.  It runs ``python -I -S -c CODE DIR``: DIR in its command line marks it.
_REAPER = """\
# dokku-tasks private engine: namespace init
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    signal.sigtimedwait({signal.SIGCHLD}, 1.0)
"""

# Run by the holder before it becomes the reaper: loopback up, a private /run/containerd.
_HOLDER_SCRIPT = (
    "ip link set lo up >/dev/null 2>&1 || true; "
    "mkdir -p /run/containerd && mount -t tmpfs -o mode=0711 dt-eng /run/containerd && "
    'exec "$0" -I -S -c "$1" "$2"'
)

# A pid namespace, mount namespace (private) and network namespace.  ``setpriv --pdeathsig``
# kills unshare when pytest goes; ``--kill-child`` then kills the init, and with it everything.
_HOLDER_COMMAND = (
    "setpriv",
    "--pdeathsig",
    "KILL",
    "--",
    "unshare",
    "--net",
    "--mount",
    "--propagation",
    "private",
    "--pid",
    "--fork",
    "--mount-proc",
    "--kill-child=SIGKILL",
    "--",
    "/bin/sh",
    "-c",
    _HOLDER_SCRIPT,
)

# Unix socket paths must fit in sun_path (108 bytes, NUL included).
_MAX_SOCKET_PATH = 100


class PrivateEngineError(RuntimeError):
    """The private engine did not start, or its teardown left something behind."""


# --- /proc helpers -----------------------------------------------------------------------------


def _read_proc(pid: int, name: str) -> bytes | None:
    """The contents of /proc/PID/NAME, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as stream:
            return stream.read()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...)."""
    raw = _read_proc(pid, "stat")
    if raw is None:
        return None
    return raw[raw.rfind(b")") + 2 :].decode().split()


def _state(pid: int) -> str | None:
    """The process state letter (R, S, T, Z, ...), or None when it is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _ppid(pid: int) -> int | None:
    """The parent pid, or None when the process is gone."""
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _all_pids() -> list[int]:
    """Every pid in the host's /proc."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _children(pid: int) -> list[int]:
    """The pids whose parent is PID."""
    return [child for child in _all_pids() if _ppid(child) == pid]


def _wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll CHECK until it is true; PrivateEngineError after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise PrivateEngineError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


class _Pid:
    """A process we signal through a pidfd, so a recycled pid is never hit."""

    def __init__(self, pid: int, parent: int) -> None:
        self.pid = pid
        try:
            self.fd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise PrivateEngineError(f"process {pid} exited during start-up") from None
        if _ppid(pid) != parent:  # it died and the pid was reused before we got the fd
            os.close(self.fd)
            raise PrivateEngineError(f"process {pid} exited during start-up")

    def signal(self, sig: int) -> None:
        """Send SIG; a process that has already exited is no error."""
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.fd, sig)

    def close(self) -> None:
        """Release the pidfd."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _find_child(parent: int, what: str, ready: Callable[[int], bool] | None = None) -> _Pid:
    """The (single) child of PARENT, once READY(pid) holds; PrivateEngineError when PARENT exits."""
    found: list[int] = []

    def check() -> bool:
        if _state(parent) in (None, "Z"):
            raise PrivateEngineError(f"{what}: its parent (pid {parent}) exited")
        found[:] = [pid for pid in _children(parent) if ready is None or ready(pid)]
        return bool(found)

    _wait_for(what, check, 15.0)
    return _Pid(found[0], parent)


# --- image cache -------------------------------------------------------------------------------


def _image_tar(name: str) -> bytes:
    """``docker save NAME`` from the main engine, cached for the test run."""
    if name not in _IMAGE_TARS:
        client = docker.DockerClient(base_url=_MAIN_DOCKER_HOST)
        try:
            # By name (not Image.save()), so that the tarball carries this very tag.
            _IMAGE_TARS[name] = b"".join(client.api.get_image(name))
        finally:
            client.close()
    return _IMAGE_TARS[name]


# --- the engine --------------------------------------------------------------------------------


class PrivateEngine:
    """A second Docker engine in namespaces of its own (see the module docstring).

    Construction only makes the directory; ``start()`` (or ``with PrivateEngine() as e``) brings
    the engine up and loads IMAGES into it (once per engine: the data-root persists across
    ``kill()``/``stop()`` and ``start()``).  ``close()`` tears everything down.
    """

    def __init__(
        self,
        *,
        storage_driver: str = "overlay2",
        images: Sequence[str] = DEFAULT_IMAGES,
        start_timeout: float = 60.0,
        shutdown_timeout: int = 5,
        extra_args: Sequence[str] = (),
        parent_dir: str = "/tmp",
    ) -> None:
        """STORAGE_DRIVER: dockerd's ``--storage-driver``; IMAGES: loaded from the main engine;
        START_TIMEOUT: seconds ``start()`` waits for the engine to answer; SHUTDOWN_TIMEOUT:
        dockerd's ``--shutdown-timeout`` (seconds ``stop()`` lets containers stop); EXTRA_ARGS:
        more dockerd arguments; PARENT_DIR: where the engine's directory is made (keep it short).
        """
        self.storage_driver = storage_driver
        self.images = tuple(images)
        self.start_timeout = start_timeout
        self.shutdown_timeout = shutdown_timeout
        self.extra_args = tuple(extra_args)
        self.dir = Path(tempfile.mkdtemp(prefix="dt-eng-", dir=parent_dir))
        self.name = self.dir.name
        self.socket_path = self.dir / "docker.sock"
        self.url = f"unix://{self.socket_path}"
        self.data_root = self.dir / "data"
        self.exec_root = self.dir / "exec"
        self.pidfile = self.dir / "docker.pid"
        self.config_file = self.dir / "daemon.json"
        self.log_path = self.dir / "dockerd.log"
        self.cgroup_parent = f"/{self.name}"
        #: The API version the engine speaks, known once it has answered.
        self.api_version: str | None = None
        #: Seconds the last ``start()`` took until the engine answered (images not included).
        self.last_start_seconds: float | None = None
        #: Seconds loading the images took (once per engine).
        self.image_load_seconds: float | None = None

        self._holder: subprocess.Popen[bytes] | None = None  # setpriv/unshare
        self._init: _Pid | None = None  # the namespaces' init (reaper)
        self._launcher: subprocess.Popen[bytes] | None = None  # nsenter
        self._dockerd: _Pid | None = None
        self._paused = False
        self._images_loaded = False
        self._clients: list[docker.DockerClient] = []
        self._closed = False

        containerd_socket = self.exec_root / "containerd" / "containerd.sock"
        if len(str(containerd_socket)) > _MAX_SOCKET_PATH:
            self._remove_dir()
            raise PrivateEngineError(f"{parent_dir} is too long a path for the engine's sockets")
        self.data_root.mkdir()
        self.exec_root.mkdir()
        self.config_file.write_text("{}\n")

    # -- context manager ------------------------------------------------------------------------

    def __enter__(self) -> PrivateEngine:
        """Start the engine; tear everything down again when that fails."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Tear everything down."""
        self.close()

    def __repr__(self) -> str:
        return f"<PrivateEngine {self.url} pid={self._dockerd.pid if self._dockerd else None}>"

    # -- state ----------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The host pid of the running dockerd."""
        if self._dockerd is None:
            raise PrivateEngineError("the private engine's dockerd is not running")
        return self._dockerd.pid

    @property
    def init_pid(self) -> int | None:
        """The host pid of the namespaces' init (None before the first start)."""
        return self._init.pid if self._init else None

    @property
    def running(self) -> bool:
        """True while dockerd is alive (paused or not)."""
        return self._launcher is not None and self._launcher.poll() is None

    @property
    def paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""
        return self._paused

    def environ(self) -> dict[str, str]:
        """os.environ with DOCKER_HOST pointing at this engine (for a subprocess)."""
        return {**os.environ, "DOCKER_HOST": self.url}

    def log_tail(self, lines: int = 40) -> str:
        """The last LINES lines of dockerd's log (all starts append to one file)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def processes(self) -> dict[int, str]:
        """Host processes of this engine, pid -> command line: those whose command line names
        the engine's directory (holder, init, nsenter, dockerd, containerd, shims) and those in
        its cgroups (containers).  Never a process of the main engine."""
        marker = str(self.dir).encode()
        me = os.getpid()
        found: dict[int, str] = {}
        for pid in _all_pids():
            if pid == me:
                continue
            cmdline = _read_proc(pid, "cmdline") or b""
            if marker in cmdline or self._in_our_cgroups(pid):
                found[pid] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        return found

    def containerd_pids(self) -> list[int]:
        """Host pids of the engine's managed containerd (normally one; none while it is down)."""
        config = f"{self.exec_root}/containerd/containerd.toml"
        return [pid for pid, cmdline in self.processes().items() if config in cmdline]

    def _in_our_cgroups(self, pid: int) -> bool:
        raw = _read_proc(pid, "cgroup")
        if raw is None:
            return False
        for line in raw.decode(errors="replace").splitlines():
            path = line.split(":", 2)[-1]
            if path == self.cgroup_parent or path.startswith(self.cgroup_parent + "/"):
                return True
        return False

    # -- clients --------------------------------------------------------------------------------

    def client(self, timeout: int = 60) -> docker.DockerClient:
        """A Docker SDK client of this engine (per-request TIMEOUT seconds).  Closed at teardown
        (closing it earlier is fine).  It does not ask the engine for its version, so it can be
        made while the engine is paused or down."""
        client = docker.DockerClient(
            base_url=self.url,
            version=self.api_version or MINIMUM_DOCKER_API_VERSION,
            timeout=timeout,
        )
        self._clients.append(client)
        return client

    def ping(self, timeout: int = 5) -> bool:
        """True when the engine answers within TIMEOUT seconds."""
        # The SDK leaks its socket when the connect fails (docker 7.x UnixHTTPConnection.connect
        # does not close it): probe with a socket of our own first.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(timeout)
            try:
                probe.connect(str(self.socket_path))
            except OSError:
                return False
        client = docker.DockerClient(
            base_url=self.url, version=MINIMUM_DOCKER_API_VERSION, timeout=timeout
        )
        try:
            return bool(client.ping())
        except Exception:  # any transport error or API error means "not answering"
            return False
        finally:
            client.close()

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Start dockerd (first call: make the namespaces too) and wait until it answers; load
        the images on the first start.  After a crash (``kill()``) the stale pid file is removed
        first (engine pitfall 5)."""
        if self._closed:
            raise PrivateEngineError("the private engine was closed")
        if self.running:
            raise PrivateEngineError("the private engine is already running")
        if self._init is None:
            self._start_holder()
        assert self._init is not None
        self._reap_launcher()
        # No dockerd of ours runs (its launcher has exited), so a pid file is stale.
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        begin = time.monotonic()
        command = [
            "nsenter",
            f"--target={self._init.pid}",
            "--net",
            "--mount",
            "--pid",
            "--",
            "dockerd",
            f"--host={self.url}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.pidfile}",
            f"--config-file={self.config_file}",
            f"--storage-driver={self.storage_driver}",
            f"--cgroup-parent={self.cgroup_parent}",
            f"--shutdown-timeout={self.shutdown_timeout}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"--- private engine: starting {' '.join(command)}\n".encode())
            log.flush()
            # Its own session: a Ctrl-C meant for pytest never reaches the engine.
            self._launcher = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
            )
        try:
            self._dockerd = _find_child(self._launcher.pid, "dockerd to be forked by nsenter")
        except PrivateEngineError as exc:
            raise PrivateEngineError(
                f"{exc}; last lines of {self.log_path}:\n{self.log_tail()}"
            ) from None
        self._paused = False
        self._wait_ready(self.start_timeout if timeout is None else timeout)
        self.last_start_seconds = time.monotonic() - begin
        if not self._images_loaded:
            self.load_images()

    def _start_holder(self) -> None:
        """Make the namespaces: unshare, whose forked child (the init) runs the reaper."""
        marker = _REAPER.splitlines()[0].encode()
        with open(self.dir / "holder.log", "ab") as log:
            self._holder = subprocess.Popen(
                [*_HOLDER_COMMAND, sys.executable, _REAPER, str(self.dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
            )
        try:
            # Ready once the child has exec'd the reaper (so /run/containerd is mounted).
            self._init = _find_child(
                self._holder.pid,
                "the namespace holder",
                lambda pid: marker in (_read_proc(pid, "cmdline") or b""),
            )
        except PrivateEngineError as exc:
            log_text = (self.dir / "holder.log").read_text(errors="replace")
            raise PrivateEngineError(f"{exc}; holder output:\n{log_text}") from None

    def _wait_ready(self, timeout: float) -> None:
        """Ping until the engine answers; on a dockerd exit or the deadline, show its log."""
        deadline = time.monotonic() + timeout
        while not self.ping(timeout=2):
            if not self.running:
                assert self._launcher is not None
                raise PrivateEngineError(
                    f"dockerd exited (status {self._launcher.returncode}) during start-up; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise PrivateEngineError(
                    f"the private engine did not answer within {timeout:g} s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        client = docker.DockerClient(
            base_url=self.url, version=MINIMUM_DOCKER_API_VERSION, timeout=10
        )
        try:
            self.api_version = str(client.version()["ApiVersion"])
        finally:
            client.close()

    def load_images(self) -> None:
        """Load the images from the main engine (each saved once per test run)."""
        begin = time.monotonic()
        client = self.client(timeout=120)
        try:
            for name in self.images:
                client.images.load(_image_tar(name))
        finally:
            client.close()
        self._images_loaded = True
        self.image_load_seconds = time.monotonic() - begin

    def _reap_launcher(self, timeout: float = 30.0) -> None:
        """Wait for nsenter (it exits once dockerd has) and forget dockerd."""
        if self._launcher is not None:
            # nsenter stops itself when its child is stopped (pause()) and resumes the child on
            # SIGCONT: it must be running to notice that dockerd exited.
            if self._launcher.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._launcher.pid, signal.SIGCONT)
            self._launcher.wait(timeout)
        if self._dockerd is not None:
            self._dockerd.close()
            self._dockerd = None
        self._paused = False

    def stop(self, timeout: float = 60.0) -> None:
        """Stop dockerd cleanly (SIGTERM, then wait; SIGKILL after TIMEOUT seconds).  It stops
        its containers and its containerd; the namespaces stay for the next ``start()``."""
        if not self.running:
            self._reap_launcher()
            return
        assert self._dockerd is not None and self._launcher is not None
        self.resume()
        self._dockerd.signal(signal.SIGTERM)
        try:
            self._launcher.wait(timeout)
        except subprocess.TimeoutExpired:
            self._dockerd.signal(signal.SIGKILL)
        self._reap_launcher()

    def kill(self) -> None:
        """Crash dockerd: SIGKILL, no clean-up.  Its managed containerd dies with it (dockerd
        starts it with a parent-death signal); the shims, and so the containers, survive, and
        the pid file stays (``start()`` removes it), as after a real crash."""
        containerd = self.containerd_pids()
        if self._dockerd is not None and self.running:
            self._dockerd.signal(signal.SIGKILL)
        self._reap_launcher()
        # Until the init has reaped containerd, its zombie holds the pid in containerd.pid.
        with contextlib.suppress(PrivateEngineError):
            _wait_for(
                "containerd to be reaped",
                lambda: all(_state(pid) is None for pid in containerd),
                5.0,
            )

    def restart(self, timeout: float | None = None) -> None:
        """``kill()`` then ``start()``: a crashed engine that comes back, healthy."""
        self.kill()
        self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP dockerd: a hung engine (its socket accepts connections, nothing answers).
        containerd, the shims and the containers keep running."""
        if self._dockerd is None or not self.running:
            raise PrivateEngineError("the private engine's dockerd is not running")
        self._dockerd.signal(signal.SIGSTOP)
        dockerd = self._dockerd.pid
        _wait_for("dockerd to stop", lambda: _state(dockerd) in ("T", "t", None), 10.0)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT dockerd (and nsenter, which stops itself when dockerd does)."""
        if self._launcher is not None and self._launcher.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._launcher.pid, signal.SIGCONT)
        if self._dockerd is not None:
            self._dockerd.signal(signal.SIGCONT)
            dockerd = self._dockerd.pid
            _wait_for("dockerd to continue", lambda: _state(dockerd) not in ("T", "t"), 10.0)
        self._paused = False

    # -- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        """Tear everything down, whatever state the engine is in: every process of the engine
        (by pid, directory and cgroup; never the main engine's), its cgroups, any mount below
        its directory, the directory.  PrivateEngineError lists what could not be removed."""
        if self._closed:
            return
        self._closed = True
        problems: list[str] = []
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()

        # The init's death makes the kernel kill every process in the pid namespace.
        if self._init is not None:
            self._init.signal(signal.SIGKILL)
        if self._holder is not None and self._holder.poll() is None:
            self._holder.kill()
        if self._launcher is not None and self._launcher.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._launcher.pid, signal.SIGCONT)
        for proc in (self._holder, self._launcher):
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        for handle in (self._init, self._dockerd):
            if handle is not None:
                handle.close()
        self._init = self._dockerd = None

        # Anything still alive (there should be nothing): kill by pid, found by directory/cgroup.
        try:
            _wait_for("the engine's processes to exit", lambda: not self.processes(), 10.0)
        except PrivateEngineError:
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                _wait_for("the engine's processes to die", lambda: not self.processes(), 10.0)
            except PrivateEngineError:
                problems.append(f"processes survived: {self.processes()}")

        problems += _remove_cgroups(self.name)
        problems += _unmount_below(self.dir)
        try:
            self._remove_dir()
        except OSError as exc:
            problems.append(f"could not remove {self.dir}: {exc}")
        if problems:
            raise PrivateEngineError("private engine teardown: " + "; ".join(problems))

    def _remove_dir(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)


def _remove_cgroups(name: str, wait: float = 5.0) -> list[str]:
    """Remove the cgroups /NAME (leaves first) of every hierarchy; the problems, if any."""
    leftovers: list[str] = []
    for mount in _cgroup_mounts():
        root = Path(mount) / name
        if not root.is_dir():
            continue
        directories = sorted(
            (Path(dirpath) for dirpath, _, _ in os.walk(root)),
            key=lambda path: len(path.parts),
            reverse=True,
        )
        for directory in directories:
            try:
                # A cgroup of a process that just died can stay busy for a moment.
                _wait_for(
                    f"{directory} to be removable", functools.partial(_rmdir, directory), wait
                )
            except PrivateEngineError:
                leftovers.append(str(directory))
    return [f"cgroups left: {', '.join(leftovers)}"] if leftovers else []


def _unmount_below(directory: Path) -> list[str]:
    """Lazily unmount whatever is mounted at or below DIRECTORY (deepest first) in the host's
    mount namespace; the problems, if any.  (The engine's own mounts live in its mount
    namespace and vanish with it: this is a safety net.)"""
    for mount in sorted(_mounts_below(directory), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)
    left = _mounts_below(directory)
    return [f"mounts left: {', '.join(left)}"] if left else []


def sweep_stale_engines(parent_dir: str = "/tmp", min_age: float = 120.0) -> list[str]:
    """Remove what private engines of killed test runs left: directories PARENT_DIR/dt-eng-*
    and cgroups /dt-eng-* that no process uses (none names the directory in its command line
    or sits in the cgroups) and that have not changed for MIN_AGE seconds (an engine being set
    up has no process for a few milliseconds).  Engines of other, running, test sessions are
    left alone.  Returns the names removed."""
    names = {path.name for path in Path(parent_dir).glob("dt-eng-*") if path.is_dir()}
    for mount in _cgroup_mounts():
        names.update(path.name for path in Path(mount).glob("dt-eng-*") if path.is_dir())
    if not names:
        return []
    in_use: set[str] = set()
    for pid in _all_pids():
        text = (_read_proc(pid, "cmdline") or b"").decode(errors="replace")
        text += (_read_proc(pid, "cgroup") or b"").decode(errors="replace")
        in_use.update(name for name in names if name in text)
    removed = []
    now = time.time()
    for name in sorted(names - in_use):
        directory = Path(parent_dir) / name
        changed = [
            path.stat().st_mtime
            for path in (directory, directory / "dockerd.log", directory / "holder.log")
            if path.exists()
        ]
        if changed and now - max(changed) < min_age:
            continue
        if _remove_cgroups(name, wait=0.1) or _unmount_below(directory):
            continue
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(name)
    return removed


def _rmdir(path: Path) -> bool:
    """Remove a cgroup directory; True when it is gone."""
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _cgroup_mounts() -> list[str]:
    """The host's cgroup (v1 and v2) mount points."""
    return [fields[4] for fields in _mountinfo() if fields[-3] in ("cgroup", "cgroup2")]


def _mounts_below(directory: Path) -> list[str]:
    """The host's mount points at or below DIRECTORY."""
    prefix = str(directory)
    return [
        fields[4]
        for fields in _mountinfo()
        if fields[4] == prefix or fields[4].startswith(prefix + "/")
    ]


def _mountinfo() -> list[list[str]]:
    """/proc/self/mountinfo as fields, with the octal escapes (\\040 ...) decoded."""
    rows = []
    with open("/proc/self/mountinfo") as stream:
        for line in stream:
            fields = [_unescape(field) for field in line.split()]
            rows.append(fields)
    return rows


def _unescape(field: str) -> str:
    """Decode mountinfo's octal escapes."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")


@contextlib.contextmanager
def sdk_connect_leaks() -> Iterator[list[str]]:
    """Swallow (and collect) the ResourceWarnings of unix sockets that the Docker SDK leaks when
    it cannot connect (docker 7.x ``UnixHTTPConnection.connect`` never closes a socket whose
    ``connect()`` failed): wrap the part of a fault test that talks to a killed engine, or the
    garbage collector reports the leak later, as an error of whichever test runs it.  Every
    other unraisable exception goes to the previous hook.  Yields the swallowed messages."""
    swallowed: list[str] = []
    previous = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        text = repr(unraisable.object)
        if isinstance(unraisable.exc_value, ResourceWarning) and "family=1," in text:
            swallowed.append(str(unraisable.exc_value))
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield swallowed
        gc.collect()
    finally:
        sys.unraisablehook = previous


# --- fixtures ----------------------------------------------------------------------------------


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("a private Docker engine needs root")
    missing = [
        tool for tool in ("dockerd", "nsenter", "unshare", "setpriv") if not shutil.which(tool)
    ]
    if missing:
        pytest.fail(f"a private Docker engine needs {', '.join(missing)} (run scripts/setup.sh)")
    global _swept
    if not _swept:
        _swept = True
        sweep_stale_engines()


# The fixtures are named with ``name=``: a test module imports ``private_engine_fixture`` and
# asks for ``private_engine`` (a parameter with the imported name would trip ruff's F811).  Do not
# list this module in ``pytest_plugins``: a test module that also imports it at run time would be
# warned (an error here) that it cannot be assertion-rewritten.


@pytest.fixture(name="private_engine")
def private_engine_fixture() -> Iterator[PrivateEngine]:
    """A fresh private Docker engine, started, with the base images; torn down pass or fail."""
    _require_root()
    with PrivateEngine() as engine:
        yield engine


@pytest.fixture(name="private_engine_factory")
def private_engine_factory_fixture() -> Iterator[Callable[..., PrivateEngine]]:
    """Make started private engines with PrivateEngine's keyword arguments (another storage
    driver, extra dockerd arguments, several engines); all are torn down after the test."""
    _require_root()
    engines: list[PrivateEngine] = []

    def make(**kwargs: Any) -> PrivateEngine:
        engine = PrivateEngine(**kwargs)
        engines.append(engine)
        engine.start()
        return engine

    yield make
    _close_all(engines)


def _close_all(engines: Iterable[PrivateEngine]) -> None:
    """Close every engine; raise the first teardown error after trying them all."""
    errors: list[BaseException] = []
    for engine in engines:
        try:
            engine.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
