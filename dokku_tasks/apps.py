"""Apps: their names and their existence under the state root (``ROOT/apps/<app>/``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import attrs

from .errors import AppExistsError, AppNotFoundError, InvalidAppNameError
from .properties import PropertyStore

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def validate_app_name(name: str) -> str:
    """Return ``name`` if it is a valid app name, else raise :class:`InvalidAppNameError`.

    Valid: lowercase letters, digits and dashes, starting with a letter or digit, at most 63
    characters.  Checked before anything touches disk, so ``../x`` never becomes a path.
    """
    if not _NAME.fullmatch(name):
        raise InvalidAppNameError(
            f"Invalid app name {name!r}: use lowercase letters, digits and dashes, "
            "starting with a letter or digit, at most 63 characters"
        )
    return name


@attrs.frozen
class AppRegistry:
    """The apps that exist under a state root."""

    root: Path = attrs.field(converter=Path)

    @property
    def properties(self) -> PropertyStore:
        return PropertyStore(self.root)

    def _dir(self, app: str) -> Path:
        return self.root / "apps" / validate_app_name(app)

    def exists(self, app: str) -> bool:
        return self._dir(app).is_dir()

    def require(self, app: str) -> str:
        """``app`` if it exists; :class:`AppNotFoundError` (exit 20) otherwise."""
        if not self.exists(app):
            raise AppNotFoundError(app)
        return app

    def create(self, app: str) -> None:
        directory = self._dir(app)
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir()
        except FileExistsError:
            raise AppExistsError(f"Name is already taken: {app}") from None

    def destroy(self, app: str) -> None:
        """Remove the app and every property it has (the heroku.postdeploy marker included)."""
        directory = self._dir(self.require(app))
        self.properties.destroy_app(app)
        shutil.rmtree(directory)

    def list(self) -> list[str]:
        apps_dir = self.root / "apps"
        if not apps_dir.is_dir():
            return []
        return sorted(p.name for p in apps_dir.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))
