"""Stand-ins for importlib.metadata objects, to load entry-point plugins without installing."""

from __future__ import annotations

from dokku_tasks import manager


class FakeEntryPoint:
    """Just what the manager uses of :class:`importlib.metadata.EntryPoint`."""

    def __init__(
        self, name: str, plugin: object = None, *, error: Exception | None = None, group: str = ""
    ) -> None:
        self.name = name
        self.group = group or manager.ENTRYPOINT_GROUP
        self._plugin = plugin
        self._error = error

    def load(self) -> object:
        if self._error is not None:
            raise self._error
        return self._plugin


class FakeDistribution:
    """Just what the manager uses of :class:`importlib.metadata.Distribution`."""

    def __init__(self, name: str, version: str, *entry_points: FakeEntryPoint) -> None:
        self.metadata = {"Name": name}
        self.version = version
        self.entry_points = list(entry_points)
