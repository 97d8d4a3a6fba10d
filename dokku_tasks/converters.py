"""attrs converters with concrete types, so mypy's attrs plugin can check the records' callers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Mount


def string_map(value: Mapping[str, str] | None) -> dict[str, str]:
    """A fresh dict of ``value`` (``None`` gives an empty one)."""
    return dict(value or {})


def string_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def optional_string_tuple(value: Iterable[str] | None) -> tuple[str, ...] | None:
    """``None`` stays ``None`` (keep the image's own); anything else, even empty, a tuple."""
    return None if value is None else tuple(value)


def mount_tuple(value: Iterable[Mount]) -> tuple[Mount, ...]:
    return tuple(value)
