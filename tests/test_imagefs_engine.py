"""The layer read a plan makes against the container read a deploy makes, on the real engine:
for every kind of path (a file in a lower layer, one deleted in an upper layer, an opaque
directory, symlinks in and out of the WORKDIR, a loop, a FIFO, a file too large, the
container's init layer) both give the same result or the same error."""

from __future__ import annotations

from typing import Any

import pytest

from dokku_tasks.engine import Engine
from dokku_tasks.errors import DokkuTasksError
from tests.conftest import APP_LABEL, BASE_IMAGE

pytestmark = pytest.mark.engine

LAYERS = f"""FROM {BASE_IMAGE}
WORKDIR /app
RUN echo '{{}}' > app.json && echo 'web: x' > Procfile && mkdir config /srv /srv/cfg \\
 && echo old > config/old && echo cfg > /srv/cfg/app.json \\
 && ln -s app.json link.json && ln -s ../../../../etc/hostname escape && ln -s /srv/cfg cfgdir \\
 && ln -s /nowhere/x dangling && ln -s loop2 loop1 && ln -s loop1 loop2 && mkfifo fifo \\
 && dd if=/dev/zero of=big bs=1024 count=1100 2>/dev/null && ln -s /.dockerenv env \\
 && ln -s /etc etc && ln -s /etc/mtab mtab && mkdir gone && echo g > gone/f && ln -s gone gonelink
RUN rm app.json && rm -rf config && mkdir config && echo new > config/new \\
 && rm -rf gone && echo file > gone
"""

PATHS = [
    "app.json",  # deleted in the upper layer
    "Procfile",  # in the lower layer
    "link.json",  # a symlink to the deleted file
    "escape",  # .. past / stays in the image: the init layer's /etc/hostname
    "cfgdir/app.json",  # through a symlinked directory, outside the WORKDIR
    "cfgdir/nothere",
    "dangling",
    "loop1",
    "Procfile/x",  # under a file
    "fifo",
    "config",  # a directory
    "config/old",  # hidden by the opaque directory
    "config/new",
    "big",  # over the limit
    "env",
    "etc/hosts",
    "etc/mtab",
    "mtab",
    "gone/f",  # a directory replaced by a file
    "gonelink/f",
    "nothere/x",
]


def outcome(read: Any, path: str) -> tuple[Any, ...]:
    try:
        found = read(path)
    except DokkuTasksError as exc:
        return (type(exc).__name__, exc.message)
    return (found.kind, found.data, found.resolved)


def test_the_layer_read_gives_what_the_container_read_gives(
    docker_client: Any, engine_app: str, build_image: Any
) -> None:
    image = build_image(LAYERS)
    engine = Engine.connect()
    labels = {APP_LABEL: engine_app}
    try:
        for path in PATHS:
            in_container = outcome(
                lambda p: engine.read_image_files(image, "/app", [p], labels)[p], path
            )
            in_place = outcome(
                lambda p: engine.read_image_files_in_place(image, "/app", [p])[p], path
            )
            assert in_place == in_container, path
        both = engine.read_image_files_in_place(image, "/app", ["Procfile", "config/new"])
        assert [f.data for f in both.values()] == [b"web: x\n", b"new\n"]
    finally:
        engine.close()
