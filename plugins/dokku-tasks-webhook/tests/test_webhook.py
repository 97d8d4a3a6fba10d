"""Tests for the webhook plugin.  They only talk to a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import dokku_tasks_webhook as webhook
import pytest

from dokku_tasks.errors import DokkuTasksError, PluginError
from dokku_tasks.hooks import Hooks
from dokku_tasks.manager import BUILTIN_PLUGINS, get_plugin_manager, plugin_infos
from dokku_tasks.models import DeployResult, TaskResult

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@attrs.define
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    status = 200
    delay = 0.0
    location = ""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Captured] = []
        self.release = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout test) is expected

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/deploy?token=s3cret"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.requests.append(
            Captured(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        if self.server.delay:
            self.server.release.wait(self.server.delay)
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No webhook settings and no proxy from the calling environment."""
    for name in (webhook.URL_ENV, webhook.TIMEOUT_ENV, "DOKKU_TASKS_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def hook_url(server: _Server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(webhook.URL_ENV, server.url)
    return server.url


def _task(phase: str, command: str, plugin: str, exit_code: int = 0) -> TaskResult:
    return TaskResult(
        phase=phase,
        command=command,
        plugin=plugin,
        image="dokku/web:latest",
        container_id=f"{phase}-container",
        exit_code=exit_code,
        duration=1.5,
    )


SUCCESS = DeployResult(
    app="web",
    image="dokku/web:latest",
    tasks=(
        _task("predeploy", "python manage.py migrate", "app-json"),
        _task("release", "echo release", "procfile"),
    ),
    containers=("web.web.1",),
    duration=12.25,
)

FAILURE = DeployResult(
    app="web",
    image="dokku/web:previous",
    tasks=(_task("predeploy", "exit 3", "app-json", exit_code=3),),
    error="Execution of predeploy task failed: exit 3 (exit status 3)",
    duration=2,
)


# -- payloads --------------------------------------------------------------------------------


def test_success_posts_json_summary(server: _Server, hook_url: str) -> None:
    webhook.deploy_finished(app="web", result=SUCCESS)

    assert len(server.requests) == 1
    req = server.requests[0]
    assert req.method == "POST"
    assert req.path == "/hooks/deploy?token=s3cret"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == webhook.USER_AGENT
    assert json.loads(req.body) == {
        "app": "web",
        "ok": True,
        "error": None,
        "image": "dokku/web:latest",
        "duration": 12.25,
        "tasks": [
            {
                "phase": "predeploy",
                "command": "python manage.py migrate",
                "plugin": "app-json",
                "exit_code": 0,
                "duration": 1.5,
                "container_id": "predeploy-container",
            },
            {
                "phase": "release",
                "command": "echo release",
                "plugin": "procfile",
                "exit_code": 0,
                "duration": 1.5,
                "container_id": "release-container",
            },
        ],
    }


def test_failure_posts_error_and_exit_code(server: _Server, hook_url: str) -> None:
    webhook.deploy_finished(app="web", result=FAILURE)

    body = json.loads(server.requests[0].body)
    assert body["ok"] is False
    assert body["error"] == "Execution of predeploy task failed: exit 3 (exit status 3)"
    assert body["image"] == "dokku/web:previous"
    assert body["duration"] == 2.0 and isinstance(body["duration"], float)
    assert [(t["phase"], t["exit_code"]) for t in body["tasks"]] == [("predeploy", 3)]


def test_deploy_without_tasks_or_image(server: _Server, hook_url: str) -> None:
    result = DeployResult(app="new", image=None, tasks=(), error="Dockerfile not found")
    webhook.deploy_finished(app="new", result=result)

    body = json.loads(server.requests[0].body)
    assert body == {
        "app": "new",
        "ok": False,
        "error": "Dockerfile not found",
        "image": None,
        "duration": 0.0,
        "tasks": [],
    }


def test_payload_holds_only_the_summary_fields() -> None:
    payload = webhook.build_payload("web", SUCCESS)
    assert set(payload) == {"app", "ok", "error", "image", "duration", "tasks"}
    assert all(
        set(task) == {"phase", "command", "plugin", "exit_code", "duration", "container_id"}
        for task in payload["tasks"]
    )


def test_non_ascii_command_round_trips(server: _Server, hook_url: str) -> None:
    result = attrs.evolve(SUCCESS, tasks=(_task("release", "echo 'déployé ✓'", "procfile"),))
    webhook.deploy_finished(app="web", result=result)
    assert json.loads(server.requests[0].body)["tasks"][0]["command"] == "echo 'déployé ✓'"


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_url_sends_nothing(
    server: _Server, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv(webhook.URL_ENV, value)
    webhook.deploy_finished(app="web", result=SUCCESS)
    assert server.requests == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://127.0.0.1/hook", "it has scheme 'ftp'"),
        ("file:///etc/passwd", "it has scheme 'file'"),
        ("127.0.0.1/hook", "it has no scheme"),
        ("http://", "must name a host"),
        ("http://127.0.0.1:notaport/", "not a valid URL"),
        ("http://127.0.0.1/a b", "without spaces"),
    ],
)
def test_bad_url_raises_value_error(
    server: _Server, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    monkeypatch.setenv(webhook.URL_ENV, url)
    with pytest.raises(ValueError, match=webhook.URL_ENV) as info:
        webhook.deploy_finished(app="web", result=SUCCESS)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, DokkuTasksError)
    assert server.requests == []


def test_https_and_uppercase_scheme_accepted() -> None:
    assert webhook.webhook_url({webhook.URL_ENV: "https://example.com/x"}) == (
        "https://example.com/x"
    )
    assert webhook.webhook_url({webhook.URL_ENV: " HTTP://example.com/x\n"}) == (
        "HTTP://example.com/x"
    )


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 5.0), ("", 5.0), ("0.5", 0.5), ("30", 30.0)]
)
def test_timeout_setting(value: str | None, expected: float) -> None:
    environ = {} if value is None else {webhook.TIMEOUT_ENV: value}
    assert webhook.webhook_timeout(environ) == expected


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf"])
def test_bad_timeout_raises_value_error(value: str) -> None:
    with pytest.raises(ValueError, match=f"{webhook.TIMEOUT_ENV} must be a positive number"):
        webhook.webhook_timeout({webhook.TIMEOUT_ENV: value})


# -- delivery failures -----------------------------------------------------------------------


def test_server_error_raises_one_line_without_secrets(server: _Server, hook_url: str) -> None:
    server.status = 500
    with pytest.raises(webhook.WebhookError) as info:
        webhook.deploy_finished(app="web", result=SUCCESS)
    message = str(info.value)
    port = server.server_address[1]
    assert message == (
        f"webhook POST to http://127.0.0.1:{port} failed: HTTP 500 Internal Server Error"
    )
    assert "s3cret" not in message
    assert len(server.requests) == 1


def test_credentials_sent_as_basic_auth_never_shown(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.status = 403
    port = server.server_address[1]
    monkeypatch.setenv(webhook.URL_ENV, f"http://us%40er:pa%3A55@127.0.0.1:{port}/hook")
    with pytest.raises(webhook.WebhookError, match="HTTP 403") as info:
        webhook.deploy_finished(app="web", result=SUCCESS)
    assert str(info.value) == f"webhook POST to http://127.0.0.1:{port} failed: HTTP 403 Forbidden"
    # the credentials went as HTTP Basic auth, not in the request line
    req = server.requests[0]
    assert req.path == "/hook"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"us@er:pa:55").decode()


def test_redirect_is_not_followed(server: _Server, hook_url: str) -> None:
    server.status = 302
    server.location = "/elsewhere"
    with pytest.raises(
        webhook.WebhookError, match="HTTP 302 Found \\(redirects are not followed\\)"
    ):
        webhook.deploy_finished(app="web", result=SUCCESS)
    assert [r.path for r in server.requests] == ["/hooks/deploy?token=s3cret"]


def test_unreachable_server_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(webhook.URL_ENV, f"http://127.0.0.1:{port}/hook")
    with pytest.raises(webhook.WebhookError) as info:
        webhook.deploy_finished(app="web", result=SUCCESS)
    message = str(info.value)
    assert message.startswith(f"webhook POST to http://127.0.0.1:{port} failed: ")
    assert "refused" in message.lower()
    assert "\n" not in message


def test_slow_server_times_out(
    server: _Server, hook_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.delay = 5.0
    monkeypatch.setenv(webhook.TIMEOUT_ENV, "0.2")
    with pytest.raises(webhook.WebhookError, match=r"failed: no answer within 0\.2 seconds"):
        webhook.deploy_finished(app="web", result=SUCCESS)


# -- through the plugin manager (needs `pip install -e plugins/dokku-tasks-webhook`) -----------


def test_entry_point_registers_webhook_plugin() -> None:
    pm = get_plugin_manager(blocked=[name for name, _ in BUILTIN_PLUGINS])
    infos = {info.name: info for info in plugin_infos(pm)}
    assert "webhook" in infos
    assert infos["webhook"].hooks == ("deploy_finished",)
    assert infos["webhook"].origin == f"dokku-tasks-webhook {webhook.__version__}"


def test_default_manager_loads_webhook_plugin() -> None:
    pm = get_plugin_manager(blocked=())
    infos = {info.name: info for info in plugin_infos(pm)}
    assert "deploy_finished" in infos["webhook"].hooks


def test_core_names_the_plugin_on_failure(server: _Server, hook_url: str) -> None:
    server.status = 500
    pm = get_plugin_manager(blocked=[name for name, _ in BUILTIN_PLUGINS])
    with pytest.raises(PluginError) as info:
        Hooks(pm).deploy_finished(app="web", result=FAILURE)
    assert info.value.plugin_name == "webhook"
    assert str(info.value) == (
        "Plugin 'webhook' failed in hook deploy_finished: webhook POST to "
        f"http://127.0.0.1:{server.server_address[1]} failed: HTTP 500 Internal Server Error"
    )


def test_core_calls_the_hook(server: _Server, hook_url: str) -> None:
    pm = get_plugin_manager(blocked=[name for name, _ in BUILTIN_PLUGINS])
    Hooks(pm).deploy_finished(app="web", result=SUCCESS)
    assert json.loads(server.requests[0].body)["app"] == "web"
