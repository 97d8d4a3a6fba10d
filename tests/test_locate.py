"""Locating app.json and the Procfile: relative paths that stay inside a source tree or an
image's WORKDIR, symlinks that must not lead out of it, missing files and directories.

Everything here is Docker-free: source trees are built under ``tmp_path``, and an image is a
fake reader callable that answers as the engine's would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dokku_tasks import locate
from dokku_tasks.errors import FileTooLargeError, SourceError

# -- clean_relative ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("app.json", "app.json"),
        ("/app.json", "app.json"),
        ("deploy/app.json/", "deploy/app.json"),
        ("//deploy//app.json//", "deploy/app.json"),
        ("./deploy/./app.json", "deploy/app.json"),
        ("deploy/../app.json", "app.json"),
        ("a/b/../../app.json", "app.json"),
        ("..app.json", "..app.json"),  # a name that starts with two dots is not ".."
        ("...", "..."),
        ("X", "X"),
        ("/X/", "X"),
        ("deploy/..", "."),
        (".", "."),
    ],
)
def test_clean_relative(path: str, expected: str) -> None:
    assert locate.clean_relative(path) == expected


@pytest.mark.parametrize("path", ["", "/", "///"])
def test_clean_relative_empty(path: str) -> None:
    with pytest.raises(SourceError) as info:
        locate.clean_relative(path)
    assert info.value.message == "The appjson-path is empty"


@pytest.mark.parametrize("path", ["..", "/../", "../app.json", "deploy/../../app.json", "a/../.."])
def test_clean_relative_refuses_leaving_the_base(path: str) -> None:
    with pytest.raises(SourceError) as info:
        locate.clean_relative(path)
    assert info.value.message == f"The appjson-path {path!r} leaves the base directory"


def test_clean_relative_names_what_it_checks() -> None:
    with pytest.raises(SourceError) as info:
        locate.clean_relative("", "Procfile path")
    assert info.value.message == "The Procfile path is empty"
    with pytest.raises(SourceError) as info:
        locate.clean_relative("../Procfile", "Procfile path")
    assert info.value.message == "The Procfile path '../Procfile' leaves the base directory"


# -- read_source_file -------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A source tree, with a sibling directory outside it that holds a secret."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_bytes(b'{"secret": true}')
    source = tmp_path / "src"
    (source / "deploy").mkdir(parents=True)
    (source / "app.json").write_bytes(b'{"top": 1}')
    (source / "deploy" / "app.json").write_bytes(b'{"nested": 1}')
    return source


def test_reads_a_file_at_the_top_and_below(tree: Path) -> None:
    assert locate.read_source_file(tree, "app.json") == b'{"top": 1}'
    assert locate.read_source_file(tree, "/deploy/app.json/") == b'{"nested": 1}'
    assert locate.read_source_file(tree, "deploy/../app.json") == b'{"top": 1}'


def test_a_missing_file_is_none(tree: Path) -> None:
    assert locate.read_source_file(tree, "missing.json") is None
    assert locate.read_source_file(tree, "no/such/dir/app.json") is None


def test_a_path_under_a_regular_file_is_none(tree: Path) -> None:
    assert locate.read_source_file(tree, "app.json/app.json") is None


@pytest.mark.parametrize("relative", ["deploy", "deploy/", "."])
def test_a_directory_is_not_a_regular_file(tree: Path, relative: str) -> None:
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tree, relative)
    assert info.value.message == f"The appjson-path {relative!r} is not a regular file"


def test_a_path_leaving_the_tree_is_refused_before_looking(tree: Path) -> None:
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tree, "../outside/secret.json")
    assert info.value.message == (
        "The appjson-path '../outside/secret.json' leaves the base directory"
    )


def test_a_symlink_inside_the_tree_is_followed(tree: Path) -> None:
    (tree / "app-link.json").symlink_to("deploy/app.json")
    (tree / "deploy" / "up.json").symlink_to("../app.json")
    assert locate.read_source_file(tree, "app-link.json") == b'{"nested": 1}'
    assert locate.read_source_file(tree, "deploy/up.json") == b'{"top": 1}'


@pytest.mark.parametrize("absolute", [False, True])
def test_a_symlink_leading_out_of_the_tree_is_refused(tree: Path, absolute: bool) -> None:
    secret = tree.parent / "outside" / "secret.json"
    (tree / "deploy" / "evil.json").symlink_to(secret if absolute else "../../outside/secret.json")
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tree, "deploy/evil.json")
    assert info.value.message == (
        f"The appjson-path 'deploy/evil.json' leads outside the source tree ({secret.resolve()})"
    )


def test_a_directory_symlink_leading_out_of_the_tree_is_refused(tree: Path) -> None:
    (tree / "config").symlink_to(tree.parent / "outside", target_is_directory=True)
    with pytest.raises(SourceError, match=r"^The appjson-path 'config/secret\.json' leads outside"):
        locate.read_source_file(tree, "config/secret.json")


def test_a_dangling_symlink_out_of_the_tree_is_refused_not_missing(tree: Path) -> None:
    # Where the link points is checked before whether anything is there.
    (tree / "app.json").unlink()
    (tree / "app.json").symlink_to("/nonexistent/app.json")
    with pytest.raises(SourceError, match="leads outside the source tree"):
        locate.read_source_file(tree, "app.json")


def test_a_dangling_symlink_inside_the_tree_is_missing(tree: Path) -> None:
    (tree / "gone.json").symlink_to("deploy/not-there.json")
    assert locate.read_source_file(tree, "gone.json") is None


def test_the_tree_itself_may_be_reached_through_a_symlink(tree: Path, tmp_path: Path) -> None:
    # The base is resolved too, so a file in it is inside, whatever path led to the tree.
    link = tmp_path / "current"
    link.symlink_to(tree, target_is_directory=True)
    assert locate.read_source_file(link, "deploy/app.json") == b'{"nested": 1}'
    (tree / "deploy" / "evil.json").symlink_to("../../outside/secret.json")
    with pytest.raises(SourceError, match="leads outside the source tree"):
        locate.read_source_file(link, "deploy/evil.json")


def test_a_path_the_system_cannot_look_up_is_a_source_error(tree: Path) -> None:
    name = "a" * 300  # longer than any file name may be
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tree, name)
    assert info.value.message == f"Cannot read {tree.resolve() / name}: File name too long"


def test_source_errors_name_what_was_asked_for(tree: Path) -> None:
    (tree / "Procfile").mkdir()
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tree, locate.PROCFILE, "Procfile path")
    assert info.value.message == "The Procfile path 'Procfile' is not a regular file"
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tree, "/", "Procfile path")
    assert info.value.message == "The Procfile path is empty"


# -- read_image_file --------------------------------------------------------------------------


class FakeImage:
    """An image's file system as the engine's reader reports it: path -> (kind, data, resolved).

    Paths it is asked for are relative to the WORKDIR; it records them.
    """

    def __init__(self, workdir: str, files: dict[str, tuple[str, bytes, str]]) -> None:
        self.workdir = workdir
        self.files = files
        self.asked: list[str] = []

    def read(self, relative: str) -> tuple[str, bytes, str]:
        self.asked.append(relative)
        default = ("missing", b"", f"{self.workdir.rstrip('/')}/{relative}")
        return self.files.get(relative, default)


def test_image_file_is_read_by_its_cleaned_path() -> None:
    image = FakeImage("/app", {"deploy/app.json": ("file", b"{}", "/app/deploy/app.json")})
    assert locate.read_image_file("/app", "/deploy/./app.json/", image.read) == b"{}"
    assert image.asked == ["deploy/app.json"]


def test_image_file_missing_is_none() -> None:
    image = FakeImage("/app", {})
    assert locate.read_image_file("/app", "app.json", image.read) is None


def test_image_path_leaving_the_workdir_is_refused_before_reading() -> None:
    image = FakeImage("/app", {})
    with pytest.raises(SourceError) as info:
        locate.read_image_file("/app", "../etc/passwd", image.read)
    assert info.value.message == "The appjson-path '../etc/passwd' leaves the base directory"
    assert image.asked == []


@pytest.mark.parametrize(
    ("workdir", "resolved"),
    [
        ("/app", "/app/app.json"),
        ("/app", "/app/deploy/../app.json"),
        ("/app", "/app"),  # the WORKDIR itself (then its kind decides)
        ("/app/", "/app/x"),
        ("/app/./", "/app/x"),
        ("/", "/etc/app.json"),
        ("", "/etc/app.json"),  # no WORKDIR is /
        ("//", "/etc/app.json"),
    ],
)
def test_image_symlinks_inside_the_workdir_are_followed(workdir: str, resolved: str) -> None:
    image = FakeImage(workdir, {"app.json": ("file", b"data", resolved)})
    assert locate.read_image_file(workdir, "app.json", image.read) == b"data"


@pytest.mark.parametrize(
    ("workdir", "resolved", "base"),
    [
        ("/app", "/etc/passwd", "/app"),
        ("/app", "/application/app.json", "/app"),  # a sibling that shares the prefix
        ("/app", "/app/../etc/passwd", "/app"),
        ("/app", "/", "/app"),
        ("/app/", "/ap", "/app"),
        ("/srv/app", "/srv/other/app.json", "/srv/app"),
        ("/srv//app/", "/srv/app2", "/srv/app"),
        ("/srvX", "/srv/app.json", "/srvX"),
    ],
)
def test_image_symlinks_leading_out_of_the_workdir_are_refused(
    workdir: str, resolved: str, base: str
) -> None:
    image = FakeImage(workdir, {"app.json": ("file", b"data", resolved)})
    with pytest.raises(SourceError) as info:
        locate.read_image_file(workdir, "app.json", image.read)
    assert info.value.message == (
        f"The appjson-path 'app.json' leads outside {base} in the image (to {resolved})"
    )


def test_image_missing_file_behind_an_escaping_symlink_is_refused() -> None:
    image = FakeImage("/app", {"app.json": ("missing", b"", "/etc/app.json")})
    with pytest.raises(SourceError, match="leads outside /app in the image"):
        locate.read_image_file("/app", "app.json", image.read)


@pytest.mark.parametrize("kind", ["directory", "other", ""])
def test_image_path_that_is_not_a_file_is_refused(kind: str) -> None:
    image = FakeImage("/app", {"app.json": (kind, b"", "/app/app.json")})
    with pytest.raises(SourceError) as info:
        locate.read_image_file("/app", "app.json", image.read)
    assert info.value.message == "The appjson-path 'app.json' is not a regular file in the image"


def test_image_errors_name_what_was_asked_for() -> None:
    image = FakeImage(
        "/app",
        {
            "Procfile": ("directory", b"", "/app/Procfile"),
            "deploy/Procfile": ("file", b"web: x", "/srv/Procfile"),
        },
    )
    with pytest.raises(SourceError) as info:
        locate.read_image_file("/app", "Procfile", image.read, "Procfile path")
    assert info.value.message == "The Procfile path 'Procfile' is not a regular file in the image"
    with pytest.raises(SourceError) as info:
        locate.read_image_file("/app", "deploy/Procfile", image.read, "Procfile path")
    assert info.value.message == (
        "The Procfile path 'deploy/Procfile' leads outside /app in the image (to /srv/Procfile)"
    )
    with pytest.raises(SourceError) as info:
        locate.read_image_file("/app", "", image.read, "Procfile path")
    assert info.value.message == "The Procfile path is empty"


def test_a_tree_that_cannot_be_resolved_is_a_source_error(tmp_path: Path) -> None:
    base = tmp_path / "loop"
    base.symlink_to(base)
    with pytest.raises(SourceError) as info:
        locate.read_source_file(base, "app.json")
    assert info.value.message == f"Cannot read {base}/app.json: Too many levels of symbolic links"


def test_a_read_failure_names_the_path_as_given(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path, limit: int, filename: str, shown: object = None) -> bytes:
        raise PermissionError(13, "Permission denied", str(path))

    (tree / "link.json").symlink_to("deploy/app.json")
    monkeypatch.setattr(locate, "read_limited", refuse)
    with pytest.raises(SourceError) as info:
        locate.read_source_file(tree, "link.json")
    assert info.value.message == f"Cannot read {tree.resolve()}/link.json: Permission denied"


def test_image_file_limit_and_name_can_be_given() -> None:
    image = FakeImage("/app", {"app.json": ("file", b"123456", "/app/app.json")})
    assert locate.read_image_file("/app", "app.json", image.read, limit=6) == b"123456"
    with pytest.raises(FileTooLargeError) as info:
        locate.read_image_file("/app", "app.json", image.read, limit=5, filename="x.json")
    assert info.value.message == (
        "Invalid x.json: /app/app.json in the image is 6 bytes, over the limit of 5 bytes (5 bytes)"
    )


def test_procfile_limit_can_be_given(tree: Path) -> None:
    (tree / "Procfile").write_bytes(b"web: x")
    assert locate.read_source_file(tree, "Procfile", "Procfile path", limit=6) == b"web: x"
    with pytest.raises(
        FileTooLargeError, match=r"^Invalid Procfile: .* is 6 bytes, over the limit of 5"
    ):
        locate.read_source_file(tree, "Procfile", "Procfile path", limit=5)


def test_a_relative_tree_from_a_deleted_directory_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the working directory no longer exists, so "src" cannot be resolved
    with pytest.raises(SourceError) as info:
        locate.read_source_file(Path("src"), "app.json")
    assert info.value.message == "Cannot read src/app.json: No such file or directory"
