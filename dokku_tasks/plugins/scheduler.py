"""Built-in plugin: the ``scheduler`` report section.

Shows, for each of the scheduler properties (``selected``, ``shell``, ``task-timeout``), the
computed, global and app value, as ``scheduler:report`` and ``report`` print them.  The
properties themselves are described in :mod:`dokku_tasks.settings`; the schedulers are
provided by other plugins through the ``scheduler`` and ``scheduler_names`` hooks.
"""

from __future__ import annotations

from .. import settings
from ..hookspecs import hookimpl
from ..models import ReportSection
from ..properties import PropertyStore

PLUGIN = settings.SCHEDULER.name


@hookimpl
def report(app: str, properties: PropertyStore) -> ReportSection:
    """The ``scheduler`` section: computed, global and app rows for every scheduler property."""
    return settings.report_section(properties, PLUGIN, app)
