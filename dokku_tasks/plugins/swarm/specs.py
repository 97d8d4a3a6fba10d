"""The swarm scheduler's records of a service, free of the Docker SDK.

The scheduler builds these and hands them to :class:`~dokku_tasks.plugins.swarm.services.SwarmEngine`;
keeping them here means loading the plugin does not import ``docker`` (``report`` and
``--help`` stay fast).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ...converters import mount_tuple, optional_string_tuple, string_map
from ...models import Mount


@attrs.frozen
class ServiceSpec:
    """A swarm service: a one-shot job (``job=True``) or ``replicas`` long-running tasks.

    ``args`` replaces the image's CMD (``None`` keeps it); the ENTRYPOINT always stays.
    """

    name: str
    image: str
    args: tuple[str, ...] | None = attrs.field(default=None, converter=optional_string_tuple)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    mounts: tuple[Mount, ...] = attrs.field(default=(), converter=mount_tuple)
    network: str | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=string_map)
    job: bool = False
    replicas: int = 1


@attrs.frozen
class ServiceInfo:
    """A service as a listing shows it; ``version`` is needed to update it."""

    id: str
    name: str
    labels: Mapping[str, str]
    version: int
    image: str
