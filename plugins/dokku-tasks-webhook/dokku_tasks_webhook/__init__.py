"""dokku-tasks plugin: POST a JSON summary of every deploy, successful or not, to a webhook.

A host-side step on the ``deploy_finished`` hook.  The URL comes from the environment of the
``dokku-tasks`` process:

``DOKKU_TASKS_WEBHOOK_URL``
    an ``http://`` or ``https://`` URL; unset or empty means the plugin does nothing.
``DOKKU_TASKS_WEBHOOK_TIMEOUT``
    seconds to wait for the server (default 5).

The body is JSON (``Content-Type: application/json``)::

    {"app": "myapp", "ok": true, "error": null, "image": "dokku/myapp:latest",
     "duration": 12.5, "tasks": [{"phase": "predeploy", "command": "...", "plugin": "app-json",
     "exit_code": 0, "duration": 1.2, "container_id": "..."}]}

Any 2xx answer is success.  Anything else (another status, a redirect, no answer within the
timeout, a server that cannot be reached) raises :class:`WebhookError` with one line; the
dokku-tasks core reports it naming the plugin and fails the command.  Error messages show only
the URL's scheme, host and port, since webhook URLs often carry a secret in their path or query.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from dokku_tasks import hookimpl
from dokku_tasks.errors import DokkuTasksError
from dokku_tasks.models import DeployResult, TaskResult

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "TIMEOUT_ENV",
    "URL_ENV",
    "WebhookConfigError",
    "WebhookError",
    "build_payload",
    "deploy_finished",
    "post_json",
    "webhook_timeout",
    "webhook_url",
]

URL_ENV = "DOKKU_TASKS_WEBHOOK_URL"
TIMEOUT_ENV = "DOKKU_TASKS_WEBHOOK_TIMEOUT"
DEFAULT_TIMEOUT = 5.0
USER_AGENT = f"dokku-tasks-webhook/{__version__}"
_SCHEMES = ("http", "https")
#: At most this much of a response body is read (and thrown away) before closing.
_MAX_RESPONSE = 64 * 1024


class WebhookError(DokkuTasksError):
    """The webhook could not be delivered: the message is one line, fit for stderr."""


class WebhookConfigError(WebhookError, ValueError):
    """``DOKKU_TASKS_WEBHOOK_URL`` or ``DOKKU_TASKS_WEBHOOK_TIMEOUT`` holds an unusable value."""


# -- configuration ---------------------------------------------------------------------------


def webhook_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The webhook URL from ``$DOKKU_TASKS_WEBHOOK_URL``, or ``None`` when it is unset or empty.

    :raises WebhookConfigError: the value is not an ``http://`` or ``https://`` URL with a host.
    """
    value = (os.environ if environ is None else environ).get(URL_ENV, "").strip()
    if not value:
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise WebhookConfigError(f"{URL_ENV} must be a URL without spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise WebhookConfigError(f"{URL_ENV} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise WebhookConfigError(f"{URL_ENV} must be an http:// or https:// URL (it has {shown})")
    if not parts.hostname:
        raise WebhookConfigError(f"{URL_ENV} must name a host, as in https://example.com/hook")
    return value


def webhook_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds to wait for the server: ``$DOKKU_TASKS_WEBHOOK_TIMEOUT``, else 5.

    :raises WebhookConfigError: the value is not a positive, finite number.
    """
    value = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise WebhookConfigError(
            f"{TIMEOUT_ENV} must be a positive number of seconds, not {value!r}"
        )
    return seconds


# -- payload and delivery --------------------------------------------------------------------


def _task_summary(task: TaskResult) -> dict[str, Any]:
    return {
        "phase": task.phase,
        "command": task.command,
        "plugin": task.plugin,
        "exit_code": task.exit_code,
        "duration": float(task.duration),
        "container_id": task.container_id,
    }


def build_payload(app: str, result: DeployResult) -> dict[str, Any]:
    """The JSON-ready summary of a deploy.  It holds no env values: the record has none."""
    return {
        "app": app,
        "ok": result.ok,
        "error": result.error,
        "image": result.image,
        "duration": float(result.duration),
        "tasks": [_task_summary(task) for task in result.tasks],
    }


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: no credentials, path or query (they may be secret)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def _split_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without ``user:password@``, and the HTTP Basic ``Authorization`` value for it.

    urllib itself does not understand credentials in a URL (it takes them for the host name).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.netloc.rpartition("@")[2]
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would turn the POST into a GET and drop the body."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _one_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0].strip() if lines else ""


def post_json(url: str, payload: Mapping[str, Any], timeout: float = DEFAULT_TIMEOUT) -> int:
    """POST ``payload`` as JSON to ``url`` and return the HTTP status (always 2xx).

    Proxies come from the usual ``http_proxy``/``https_proxy``/``no_proxy`` variables, as with
    any urllib client.

    :raises WebhookError: a non-2xx status, a redirect, a timeout or an unreachable server.
    """
    body = json.dumps(payload).encode("utf-8")
    target, authorization = _split_credentials(url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(target, data=body, method="POST", headers=headers)
    opener = urllib.request.build_opener(_NoRedirect)
    where = f"webhook POST to {_origin(url)} failed"
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(_MAX_RESPONSE)
            status: int = response.status
    except urllib.error.HTTPError as exc:
        try:
            reason = _one_line(exc.reason)
        finally:
            exc.close()  # the error holds the open response
        extra = " (redirects are not followed)" if 300 <= exc.code < 400 else ""
        detail = f"HTTP {exc.code}" + (f" {reason}" if reason else "") + extra
        raise WebhookError(f"{where}: {detail}") from exc
    except (OSError, http.client.HTTPException, UnicodeError) as exc:  # URLError is an OSError
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(cause, TimeoutError):
            detail = f"no answer within {timeout:g} seconds"
        else:
            detail = _one_line(cause) or type(cause).__name__
        raise WebhookError(f"{where}: {detail}") from exc
    return status


# -- the hook --------------------------------------------------------------------------------


@hookimpl(trylast=True)
def deploy_finished(app: str, result: DeployResult) -> None:
    """POST the deploy's summary to ``$DOKKU_TASKS_WEBHOOK_URL``; do nothing when it is unset.

    Runs after the other ``deploy_finished`` implementations (``trylast``), so a webhook that
    cannot be reached does not keep them from running.
    """
    url = webhook_url()
    if url is None:
        return
    post_json(url, build_payload(app, result), webhook_timeout())
