"""``deploys:retry``: run a failed deploy again from its failed phase, on the image it made.

As Heroku's ``releases:retry`` does for the release phase: no rebuild and no second predeploy
commit.  The retry is a deploy of the failed deploy's newest image (``dokku/APP:failed``, the
predeploy commit or the build) with every phase before the failed one skipped, and the failed
deploy's source tree (for app.json and the Procfile, when it is still there), mounts, network,
task timeout and scheduler.  The app's stored config (``config:set``) applies as to any deploy,
as it stands when the retry starts; values given with ``-e`` are never recorded: give them
again.

Only the app's newest deploy can be retried, and only when it failed in a phase: a later deploy
has moved the tags a retry would need.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from . import history
from .errors import UsageError
from .models import HEROKU_POSTDEPLOY, PHASES, Mount

if TYPE_CHECKING:
    import pluggy

    from .models import DeployResult
    from .output import Output
    from .pipeline import DeployRequest


def retry_request(
    root: str | os.PathLike[str],
    app: str,
    deploy_id: str | int | None = None,
    *,
    env: Mapping[str, str] | None = None,
    failed_image: str | None = None,
) -> tuple[DeployRequest, history.DeployRecord]:
    """The request that retries deploy ``deploy_id`` of ``app`` (the newest when None).

    :param failed_image: the image the failed deploy made (``dokku/APP:failed`` when None).
    :raises UsageError: the deploy cannot be retried (one line saying why).
    """
    from .pipeline import DEPLOYED_IMAGE_REPO, FAILED_TAG, DeployRequest

    root = Path(root)
    record = history.get_deploy(root, app, deploy_id)
    newest = history.get_deploy(root, app, None)
    if record.request.get("kind") == "run":
        raise UsageError(f"Deploy {record.id} of {app} is a one-off run, not a deploy")
    if record.status not in ("failed", "interrupted") or record.failed_phase not in PHASES:
        raise UsageError(
            f"Deploy {record.id} of {app} did not fail in a phase ({record.status}): "
            "nothing to retry"
        )
    if record.failed_phase == HEROKU_POSTDEPLOY:
        raise UsageError(
            f"Deploy {record.id} of {app} failed in heroku.postdeploy, which runs once only "
            "(as Dokku): nothing to retry"
        )
    if record.id != newest.id:
        raise UsageError(
            f"Deploy {record.id} of {app} is not the newest (deploy {newest.id} is): "
            "only the newest deploy can be retried"
        )
    request = record.request
    image = failed_image or f"{DEPLOYED_IMAGE_REPO.format(app=app)}:{FAILED_TAG}"
    source = request.get("source")
    mounts = tuple(Mount(str(m[0]), str(m[1]), bool(m[2])) for m in request.get("mounts") or ())
    timeout = request.get("task_timeout")
    phases = PHASES[: PHASES.index(record.failed_phase)]
    return (
        DeployRequest(
            app=app,
            source=Path(source) if source and Path(source).is_dir() else None,
            image=image,
            env=dict(env or {}),
            mounts=mounts,
            network=request.get("network"),
            task_timeout=float(timeout) if isinstance(timeout, (int, float)) else None,
            scheduler=request.get("scheduler"),
            skip=tuple(dict.fromkeys([*phases, *(request.get("skip") or ())])),
        ),
        record,
    )


def retry(
    app: str,
    deploy_id: str | int | None = None,
    *,
    root: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    output: Output | None = None,
    pm: pluggy.PluginManager | None = None,
) -> DeployResult:
    """Retry the failed deploy ``deploy_id`` of ``app`` (the newest when None); see the module.

    :raises UsageError: it cannot be retried.
    :raises DokkuTasksError: the retry failed, as a deploy fails.
    """
    from .output import Output
    from .pipeline import deploy

    output = output or Output()
    request, record = retry_request(root, app, deploy_id, env=env)
    output.step(
        f"Retrying deploy {record.id} of {app} from its {record.failed_phase} phase "
        f"on image {request.image}"
    )
    return deploy(request, root=root, output=output, pm=pm)
