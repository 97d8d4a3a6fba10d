"""Oversized input is refused after reading at most its limit and one byte (issue 9, item A).

app.json and the Procfile from a source tree or an image, and ``--env-file``, each have a size
limit (1 MiB).  A file over it ends in one line naming the file, its path and the limit, and
never in memory that grows with the file: the CLI tests measure the peak RSS of the deploy in
a child process and hold it to a generous bound, far below the sizes involved.

The Docker-free tests drive the bounded readers directly and the CLI in process; a source
deploy contacts the engine before it reads its files, so those cases are ``engine`` tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dokku_tasks import locate
from dokku_tasks.appjson import MAX_APP_JSON_BYTES
from dokku_tasks.cli import cli
from dokku_tasks.engine import Engine
from dokku_tasks.errors import FileTooLargeError, ParseError, SourceError
from dokku_tasks.options import MAX_ENV_FILE_BYTES
from dokku_tasks.procfile import MAX_PROCFILE_BYTES
from tests.conftest import BASE_IMAGE, write_app

MIB = 1024 * 1024
#: Peak RSS a refused deploy may reach, in KiB.  It needs about 35 MB; reading the files whole
#: took 1 to 2 GB (and --env-file /dev/zero all the memory there was).
RSS_BOUND_KIB = 150 * 1024
DOCKERFILE = f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n'


def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space (``truncate -s``)."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def dokku(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--root", str(root), *args], env=env)


def assert_one_line(result: Result, line: str, exit_code: int = 1) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == exit_code, result.output
    assert result.stderr.splitlines() == [f" !     {line}"]


def peak_rss_kib(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, int]:
    """Run ``python -m dokku_tasks ARGS`` from a small parent that reports the child's peak
    RSS (``RUSAGE_CHILDREN``, KiB on Linux); return it, the child's stderr and exit code."""
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "sys.stderr.buffer.write(done.stderr)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "dokku_tasks", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    code, rss = done.stdout.split()
    return int(rss), done.stderr, int(code)


# -- the bounded reader ------------------------------------------------------------------------


def test_read_limited_reads_a_file_up_to_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert locate.read_limited(path, 100, "f") == b"x" * 100


def test_read_limited_refuses_a_regular_file_by_its_size(tmp_path: Path) -> None:
    path = sparse(tmp_path / "app.json", 2 * 1024 * MIB)
    with pytest.raises(FileTooLargeError) as info:
        locate.read_limited(path, MIB, "app.json")
    assert info.value.message == (
        f"Invalid app.json: {path} is 2147483648 bytes, over the limit of 1048576 bytes (1 MiB)"
    )
    assert (info.value.size, info.value.limit, info.value.exit_code) == (2 * 1024 * MIB, MIB, 1)
    assert isinstance(info.value, ParseError)


def test_read_limited_one_byte_over(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileTooLargeError, match=r"is 101 bytes, over the limit of 100 bytes"):
        locate.read_limited(path, 100, "f")


def test_read_limited_stops_reading_a_device_after_the_limit() -> None:
    with pytest.raises(FileTooLargeError) as info:
        locate.read_limited(Path("/dev/zero"), MIB, "env file")
    assert info.value.message == (
        "Invalid env file: /dev/zero is over the limit of 1048576 bytes (1 MiB)"
    )
    assert info.value.size is None


def test_read_limited_stops_reading_a_fifo_after_the_limit(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    written = [0]

    def feed() -> None:  # writes until the reader goes away
        try:
            with fifo.open("wb") as handle:
                while written[0] < 64 * MIB:
                    handle.write(b"A=1\n" * 16384)
                    written[0] += 4 * 16384
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(FileTooLargeError, match="over the limit of 1048576 bytes"):
        locate.read_limited(fifo, MIB, "env file")
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert written[0] < 64 * MIB  # the reader stopped early; the writer saw a broken pipe


def test_read_limited_shows_the_path_it_is_given(tmp_path: Path) -> None:
    path = sparse(tmp_path / "real", MIB + 1)
    with pytest.raises(FileTooLargeError, match=r"Invalid Procfile: SHOWN is 1048577 bytes"):
        locate.read_limited(path, MIB, "Procfile", shown="SHOWN")


def test_limits_are_one_mib() -> None:
    assert MAX_APP_JSON_BYTES == MAX_PROCFILE_BYTES == MAX_ENV_FILE_BYTES == MIB
    assert locate.MAX_IMAGE_FILE_BYTES == MIB


# -- app.json and Procfile in a source tree ------------------------------------------------------


def test_source_app_json_over_the_limit(tmp_path: Path) -> None:
    sparse(tmp_path / "app.json", 2 * 1024 * MIB)
    with pytest.raises(FileTooLargeError) as info:
        locate.read_source_file(tmp_path, "app.json")
    assert info.value.message == (
        f"Invalid app.json: {tmp_path.resolve()}/app.json is 2147483648 bytes, "
        "over the limit of 1048576 bytes (1 MiB)"
    )


def test_source_procfile_over_the_limit(tmp_path: Path) -> None:
    sparse(tmp_path / "Procfile", 500 * MIB)
    with pytest.raises(FileTooLargeError) as info:
        locate.read_source_file(tmp_path, locate.PROCFILE, "Procfile path")
    assert info.value.message == (
        f"Invalid Procfile: {tmp_path.resolve()}/Procfile is 524288000 bytes, "
        "over the limit of 1048576 bytes (1 MiB)"
    )


def test_source_file_at_the_limit_is_read(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_bytes(b"#" * (MIB - 1) + b"\n")
    data = locate.read_source_file(tmp_path, locate.PROCFILE, "Procfile path")
    assert data is not None and len(data) == MIB


def test_source_file_through_a_symlink_shows_the_path_given(tmp_path: Path) -> None:
    sparse(tmp_path / "big.json", MIB + 1)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "app.json").symlink_to("../big.json")
    with pytest.raises(FileTooLargeError) as info:
        locate.read_source_file(tmp_path, "deploy/app.json")
    assert f"{tmp_path.resolve()}/deploy/app.json is 1048577 bytes" in info.value.message


def test_source_file_limit_can_be_given(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_bytes(b"{}    ")
    with pytest.raises(FileTooLargeError, match=r"Invalid x: .* is 6 bytes, over the limit of 5"):
        locate.read_source_file(tmp_path, "app.json", limit=5, filename="x")


# -- files read out of an image ----------------------------------------------------------------


def test_image_file_over_the_limit_is_refused() -> None:
    def read(path: str) -> tuple[str, bytes, str]:
        return "file", b" " * (MIB + 1), "/app/" + path

    with pytest.raises(FileTooLargeError) as info:
        locate.read_image_file("/app", "Procfile", read, "Procfile path")
    assert info.value.message == (
        "Invalid Procfile: /app/Procfile in the image is 1048577 bytes, "
        "over the limit of 1048576 bytes (1 MiB)"
    )


class _Archive:
    """A streamed archive, as EngineApi.get_archive gives it."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def iter_content(self, size: int) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed = True


class _FakeApi:
    """Just enough of EngineApi for Engine._read_file: the stat (HEAD) and the archive (GET)."""

    timeout = 60

    def __init__(self, stat: dict[str, Any], chunks: list[bytes]) -> None:
        self.stat = stat
        self.archive = _Archive(chunks)
        self.gets = 0

    def archive_stat(self, container: str, path: str) -> dict[str, Any]:
        return self.stat

    def get_archive(self, container: str, path: str) -> _Archive:
        self.gets += 1
        return self.archive


def _engine(api: _FakeApi) -> Engine:
    engine = object.__new__(Engine)
    engine._api = api  # type: ignore[assignment]
    return engine


def test_engine_refuses_an_image_file_by_its_stat_before_reading_it() -> None:
    api = _FakeApi({"name": "app.json", "size": 1024 * MIB, "mode": 0o644}, [])
    with pytest.raises(FileTooLargeError) as info:
        _engine(api)._read_file("c0ffee", "/app/app.json")
    assert info.value.message == (
        "Invalid app.json: /app/app.json in the image is 1073741824 bytes, "
        "over the limit of 1048576 bytes (1 MiB)"
    )
    assert api.gets == 0  # not one byte of the archive was asked for


def test_engine_bounds_the_archive_it_streams() -> None:
    # The stat says the file is small; the archive keeps coming.
    endless = [b"\0" * MIB] * 64
    api = _FakeApi({"name": "Procfile", "size": 10, "mode": 0o644}, endless)
    with pytest.raises(FileTooLargeError, match=r"/app/Procfile in the image is over the limit"):
        _engine(api)._read_file("c0ffee", "/app/Procfile")
    assert api.archive.closed


def test_engine_never_fetches_a_directory() -> None:
    api = _FakeApi({"name": "app.json", "size": 4096, "mode": (1 << 31) | 0o755}, [])
    assert _engine(api)._read_file("c0ffee", "/app/app.json").kind == "other"
    assert api.gets == 0


# -- the CLI -------------------------------------------------------------------------------------


def test_env_file_from_dev_zero(tmp_path: Path) -> None:
    result = dokku(tmp_path, "deploy", "myapp", "--image", "x", "--env-file", "/dev/zero")
    assert_one_line(
        result, "Invalid env file: /dev/zero is over the limit of 1048576 bytes (1 MiB)"
    )
    assert not (tmp_path / "apps").exists()


def test_env_file_over_the_limit(tmp_path: Path) -> None:
    env_file = sparse(tmp_path / "env", 3 * 1024 * MIB)
    result = dokku(tmp_path, "deploy", "myapp", "--image", "x", "--env-file", str(env_file))
    assert_one_line(
        result,
        f"Invalid env file: {env_file} is 3221225472 bytes, over the limit of 1048576 bytes "
        "(1 MiB)",
    )


def test_env_file_from_dev_zero_keeps_memory_bounded(tmp_path: Path) -> None:
    rss, stderr, code = peak_rss_kib(
        ["--root", str(tmp_path), "deploy", "myapp", "--image", "x", "--env-file", "/dev/zero"]
    )
    assert code == 1
    assert (
        stderr == " !     Invalid env file: /dev/zero is over the limit of 1048576 bytes (1 MiB)\n"
    )
    assert rss < RSS_BOUND_KIB, f"peak RSS {rss} KiB"


@pytest.mark.engine
@pytest.mark.parametrize(
    ("name", "size", "line"),
    [
        pytest.param(
            "app.json",
            2 * 1024 * MIB,
            "Invalid app.json: {src}/app.json is 2147483648 bytes, over the limit of 1048576 "
            "bytes (1 MiB)",
            id="app.json-2GiB",
        ),
        pytest.param(
            "Procfile",
            500 * MIB,
            "Invalid Procfile: {src}/Procfile is 524288000 bytes, over the limit of 1048576 "
            "bytes (1 MiB)",
            id="Procfile-500MiB",
        ),
    ],
)
def test_source_deploy_refuses_a_huge_file_in_bounded_memory(
    engine_app: str, tmp_path: Path, name: str, size: int, line: str
) -> None:
    source = write_app(tmp_path / "src", {"Dockerfile": DOCKERFILE})
    sparse(source / name, size)
    root = tmp_path / "state"
    rss, stderr, code = peak_rss_kib(
        ["--root", str(root), "deploy", engine_app, "--source", str(source)]
    )
    assert code == 1
    assert stderr == f" !     {line.format(src=source.resolve())}\n"
    assert rss < RSS_BOUND_KIB, f"peak RSS {rss} KiB"


@pytest.mark.engine
def test_image_deploy_refuses_a_1gib_app_json_in_bounded_memory(
    docker_client: Any, engine_app: str, tmp_path: Path
) -> None:
    # Built with the real engine; the label makes the engine_app clean-up remove it.
    context = tmp_path / "image"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nWORKDIR /app\n"
        "RUN dd if=/dev/zero of=/app/app.json bs=1048576 count=1024 2>/dev/null\n"
        'CMD ["sleep", "3600"]\n'
    )
    tag = f"dokku-tasks-test/{engine_app}:{uuid.uuid4().hex[:8]}"
    docker_client.images.build(
        path=str(context), tag=tag, labels={"com.dokku.app-name": engine_app}, rm=True
    )
    rss, stderr, code = peak_rss_kib(
        ["--root", str(tmp_path / "state"), "deploy", engine_app, "--image", tag]
    )
    assert code == 1
    assert stderr == (
        " !     Invalid app.json: /app/app.json in the image is 1073741824 bytes, "
        "over the limit of 1048576 bytes (1 MiB)\n"
    )
    assert rss < RSS_BOUND_KIB, f"peak RSS {rss} KiB"
    # The container that read the file is gone; nothing of the app was started.
    left = docker_client.containers.list(
        all=True, filters={"label": f"com.dokku.app-name={engine_app}"}
    )
    assert left == []


def test_source_tree_limit_is_checked_before_parsing(tmp_path: Path) -> None:
    # Just over the limit, with content that would not parse: the size is what is reported.
    (tmp_path / "app.json").write_bytes(b"[" * (MIB + 1))
    with pytest.raises(FileTooLargeError):
        locate.read_source_file(tmp_path, "app.json")


def test_source_file_that_is_not_regular_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "app.json")  # opening it would block until a writer came
    with pytest.raises(SourceError, match="is not a regular file"):
        locate.read_source_file(tmp_path, "app.json")
