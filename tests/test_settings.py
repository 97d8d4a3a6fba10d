"""The property namespaces: values, defaults, validation, set/unset and report sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy
import pytest

from dokku_tasks import hookspecs, settings
from dokku_tasks.apps import AppRegistry
from dokku_tasks.errors import (
    AppNotFoundError,
    InvalidAppNameError,
    PropertyError,
    UsageError,
)
from dokku_tasks.hooks import Hooks
from dokku_tasks.hookspecs import hookimpl
from dokku_tasks.models import ReportRow, ReportSection
from dokku_tasks.pipeline import configured_task_timeout
from dokku_tasks.plugins import app_json
from dokku_tasks.plugins import scheduler as scheduler_plugin
from dokku_tasks.plugins.app_json import APP_JSON
from dokku_tasks.plugins.scheduler import SCHEDULER
from dokku_tasks.plugins.swarm import REGISTRY
from dokku_tasks.properties import GLOBAL, PropertyStore


@pytest.fixture
def registry(root: Path) -> AppRegistry:
    registry = AppRegistry(root)
    registry.create("web")
    return registry


@pytest.fixture
def store(registry: AppRegistry) -> PropertyStore:
    return registry.properties


def _task_timeout(store: PropertyStore) -> float | None:
    """The timeout a deploy of ``web`` uses."""
    return configured_task_timeout(
        settings.computed(store, SCHEDULER, "web", "task-timeout"), "web"
    )


def _pm(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        pm.register(plugin)
    return pm


def _builtin_settings() -> settings.SettingsRegistry:
    from dokku_tasks.manager import get_plugin_manager

    return Hooks(get_plugin_manager(entrypoints=False, blocked=())).settings


def test_table() -> None:
    # Registered by the built-in plugins, in their registration order.
    namespaces = _builtin_settings()
    assert [ns.name for ns in namespaces] == [
        "deploys",
        "ps",
        "checks",
        "registry",
        "scheduler-docker-local",
        "scheduler",
        "app-json",
    ]
    assert REGISTRY.property_names == ("server",)
    assert APP_JSON.property_names == ("appjson-path",)
    assert SCHEDULER.property_names == ("selected", "shell", "task-timeout")
    # Every property may be set --global but the per-app lists of checks:disable/skip.
    per_app = [
        (ns.name, p.name) for ns in namespaces for p in ns.properties if not p.global_allowed
    ]
    assert per_app == [("checks", "disabled"), ("checks", "skipped")]
    assert SCHEDULER.get_property("task-timeout").label == "task timeout"


def test_unknown_namespace_and_property() -> None:
    with pytest.raises(UsageError, match="Unknown settings namespace 'nope'"):
        _builtin_settings().namespace("nope")
    with pytest.raises(PropertyError) as info:
        SCHEDULER.get_property("nope")
    assert info.value.message == (
        "Invalid property specified, valid properties include: selected, shell, task-timeout"
    )


def test_computed_defaults(store: PropertyStore) -> None:
    assert settings.computed(store, APP_JSON, "web", "appjson-path") == "app.json"
    assert settings.computed(store, SCHEDULER, "web", "selected") == "docker-local"
    assert settings.computed(store, SCHEDULER, "web", "shell") == ""
    assert settings.computed(store, SCHEDULER, "web", "task-timeout") == "none"
    assert settings.computed(store, SCHEDULER, "web", "selected") == "docker-local"
    assert (settings.computed(store, SCHEDULER, "web", "shell") or None) is None
    assert _task_timeout(store) is None


def test_computed_app_beats_global_beats_default(store: PropertyStore) -> None:
    store.set("scheduler", GLOBAL, "selected", "swarm")
    assert settings.computed(store, SCHEDULER, "web", "selected") == "swarm"
    store.set("scheduler", "web", "selected", "docker-local")
    assert settings.computed(store, SCHEDULER, "web", "selected") == "docker-local"
    assert settings.app_value(store, SCHEDULER, "web", "selected") == "docker-local"
    assert settings.global_value(store, SCHEDULER, "selected") == "swarm"


def test_computed_task_timeout(store: PropertyStore) -> None:
    store.set("scheduler", GLOBAL, "task-timeout", "60")
    assert _task_timeout(store) == 60.0
    # An app's "none" beats a global timeout.
    store.set("scheduler", "web", "task-timeout", "none")
    assert _task_timeout(store) is None
    store.set("scheduler", "web", "task-timeout", "2.5")
    assert _task_timeout(store) == 2.5


def test_computed_task_timeout_corrupt_file(store: PropertyStore) -> None:
    store.set("scheduler", "web", "task-timeout", "soon")
    with pytest.raises(PropertyError) as info:
        _task_timeout(store)
    assert info.value.message.startswith("Property scheduler task-timeout of web is not valid: ")


def test_computed_shell(store: PropertyStore) -> None:
    store.set("scheduler", GLOBAL, "shell", "/bin/ash")
    assert (settings.computed(store, SCHEDULER, "web", "shell") or None) == "/bin/ash"


# -- set_property ---------------------------------------------------------------------------


def test_set_and_unset(registry: AppRegistry, store: PropertyStore, root: Path) -> None:
    result = settings.set_property(registry, APP_JSON, "web", "appjson-path", "app2.json")
    assert result == settings.SetResult("app-json", "web", "appjson-path", "app2.json")
    assert result.message == "Setting appjson-path to app2.json"
    path = root / "config" / "app-json" / "web" / "appjson-path"
    assert path.read_bytes() == b"app2.json"
    result = settings.set_property(registry, APP_JSON, "web", "appjson-path", "")
    assert result.message == "Unsetting appjson-path"
    assert not path.exists()


def test_set_global(registry: AppRegistry, root: Path) -> None:
    settings.set_property(registry, SCHEDULER, GLOBAL, "shell", "/bin/sh")
    assert (root / "config" / "scheduler" / "--global" / "shell").read_text() == "/bin/sh"


def test_set_checks_app_first(registry: AppRegistry) -> None:
    with pytest.raises(AppNotFoundError):
        settings.set_property(registry, APP_JSON, "other", "nope", "x")
    with pytest.raises(InvalidAppNameError):
        settings.set_property(registry, APP_JSON, "../x", "appjson-path", "x")


def test_set_property_errors(registry: AppRegistry) -> None:
    with pytest.raises(PropertyError) as info:
        settings.set_property(registry, APP_JSON, "web", "", "x")
    assert info.value.message == "No property specified"
    with pytest.raises(PropertyError) as info:
        settings.set_property(registry, APP_JSON, GLOBAL, "nope", "x")
    assert (
        info.value.message == "Invalid property specified, valid properties include: appjson-path"
    )


def test_set_property_not_global(registry: AppRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    local_only = settings.Namespace("t", "T", (settings.Property("p", global_allowed=False),))
    with pytest.raises(PropertyError) as info:
        settings.set_property(registry, local_only, GLOBAL, "p", "x")
    assert info.value.message == "Property cannot be specified globally"
    assert settings.set_property(registry, local_only, "web", "p", "x").value == "x"


@pytest.mark.parametrize(
    "value", ["app2.json", "sub/app.json", "/sub/app.json/", "a/../b.json", "./x.json", "..x"]
)
def test_appjson_path_valid(registry: AppRegistry, store: PropertyStore, value: str) -> None:
    settings.set_property(registry, APP_JSON, "web", "appjson-path", value)
    # Stored as given: the deploy strips the slashes, the report shows what was set.
    assert settings.app_value(store, APP_JSON, "web", "appjson-path") == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("../app.json", "it must stay inside the source tree (or the image's WORKDIR)"),
        ("/../../etc/passwd", "it must stay inside the source tree (or the image's WORKDIR)"),
        ("a/../../b", "it must stay inside the source tree (or the image's WORKDIR)"),
        ("..", "it must stay inside the source tree (or the image's WORKDIR)"),
        ("/", "it must name a file"),
        (" ", "it must name a file"),
        ("a\x00b", "it must name a file"),
    ],
)
def test_appjson_path_invalid(registry: AppRegistry, value: str, reason: str) -> None:
    with pytest.raises(PropertyError) as info:
        settings.set_property(registry, APP_JSON, "web", "appjson-path", value)
    assert info.value.message == f"Invalid appjson-path {value!r}: {reason}"


def _schedulers(*names: str) -> Hooks:
    """Loaded plugins whose registered schedulers are ``names``."""

    class Schedulers:
        @hookimpl
        def register_schedulers(self, register: Any) -> None:
            for name in names:
                register(name, lambda **_: None)

    return Hooks(_pm(Schedulers()))


def test_scheduler_names_come_from_registered_schedulers() -> None:
    assert sorted(_schedulers("nomad", "docker-local").schedulers) == ["docker-local", "nomad"]
    with pytest.raises(Exception, match="Scheduler 'nomad' is registered twice"):
        _ = _schedulers("nomad", "nomad").schedulers


def test_selected_validated_against_plugins(registry: AppRegistry) -> None:
    plugins = _schedulers("nomad")
    settings.set_property(registry, SCHEDULER, "web", "selected", "nomad", plugins=plugins)
    with pytest.raises(PropertyError) as info:
        settings.set_property(registry, SCHEDULER, "web", "selected", "swarm", plugins=plugins)
    assert info.value.message == "Invalid scheduler 'swarm', valid schedulers: nomad"


@pytest.mark.parametrize("value", ["/bin/sh", "/usr/local/bin/bash", "bash", "/bin/busybox"])
def test_shell_valid(registry: AppRegistry, value: str) -> None:
    assert settings.set_property(registry, SCHEDULER, "web", "shell", value).value == value


@pytest.mark.parametrize("value", ["/bin/sh -x", "bin/sh", "/bin//sh", "/bin/", "a\tb", "/"])
def test_shell_invalid(registry: AppRegistry, value: str) -> None:
    with pytest.raises(PropertyError) as info:
        settings.set_property(registry, SCHEDULER, "web", "shell", value)
    assert info.value.message == (
        f"Invalid shell {value!r}: expected an absolute path such as /bin/sh, "
        "or a command name, without spaces"
    )


@pytest.mark.parametrize(
    ("value", "stored"), [("30", "30"), (" 1.5 ", "1.5"), ("none", "none"), ("NONE", "none")]
)
def test_task_timeout_valid(registry: AppRegistry, value: str, stored: str) -> None:
    assert settings.set_property(registry, SCHEDULER, "web", "task-timeout", value).value == stored


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf"])
def test_task_timeout_invalid(registry: AppRegistry, value: str) -> None:
    with pytest.raises(PropertyError) as info:
        settings.set_property(registry, SCHEDULER, "web", "task-timeout", value)
    assert info.value.message == (
        f"Invalid task timeout {value!r}: expected a number of seconds above 0 "
        "(or none for no timeout)"
    )


# -- report sections ------------------------------------------------------------------------


def test_app_json_section_matches_the_plugin(store: PropertyStore) -> None:
    for app_value, global_value in [("", ""), ("app2.json", ""), ("", "g.json"), ("a", "g")]:
        for app, value in (("web", app_value), (GLOBAL, global_value)):
            if value:
                store.set("app-json", app, "appjson-path", value)
            else:
                store.unset("app-json", app, "appjson-path")
        assert settings.report_section(store, APP_JSON, "web") == app_json.report(
            app="web", properties=store
        )


def test_scheduler_section(store: PropertyStore) -> None:
    store.set("scheduler", GLOBAL, "selected", "swarm")
    store.set("scheduler", "web", "task-timeout", "30")
    section = scheduler_plugin.report(app="web", properties=store)
    assert section == ReportSection(
        "scheduler",
        (
            ReportRow("computed-selected", "Scheduler computed selected", "swarm"),
            ReportRow("global-selected", "Scheduler global selected", "swarm", raw="swarm"),
            ReportRow("selected", "Scheduler selected", ""),
            ReportRow("computed-shell", "Scheduler computed shell", ""),
            ReportRow("global-shell", "Scheduler global shell", "", raw=""),
            ReportRow("shell", "Scheduler shell", ""),
            ReportRow("computed-task-timeout", "Scheduler computed task timeout", "30"),
            ReportRow("global-task-timeout", "Scheduler global task timeout", "none", raw=""),
            ReportRow("task-timeout", "Scheduler task timeout", "30"),
        ),
    )


def test_global_section(store: PropertyStore) -> None:
    store.set("scheduler", GLOBAL, "shell", "/bin/ash")
    store.set("scheduler", "web", "selected", "swarm")  # an app's value plays no part
    section = settings.global_report_section(store, SCHEDULER)
    assert section == ReportSection(
        "scheduler",
        (
            ReportRow("computed-selected", "Scheduler computed selected", "docker-local"),
            ReportRow("global-selected", "Scheduler global selected", "docker-local", raw=""),
            ReportRow("computed-shell", "Scheduler computed shell", "/bin/ash"),
            ReportRow("global-shell", "Scheduler global shell", "/bin/ash", raw="/bin/ash"),
            ReportRow("computed-task-timeout", "Scheduler computed task timeout", "none"),
            ReportRow("global-task-timeout", "Scheduler global task timeout", "none", raw=""),
        ),
    )


# -- exact messages and the registry server -------------------------------------------------


def test_unknown_namespace_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as info:
        _builtin_settings().namespace("nope")
    assert info.value.message == (
        "Unknown settings namespace 'nope', valid: deploys, ps, checks, registry, "
        "scheduler-docker-local, scheduler, app-json"
    )


def test_a_namespace_registered_twice_is_refused() -> None:
    registry = settings.SettingsRegistry()
    registry.register(APP_JSON)
    assert "app-json" in registry and registry.get("app-json") is APP_JSON
    assert registry.get("nope") is None
    with pytest.raises(UsageError) as info:
        registry.register(APP_JSON)
    assert info.value.message == "Settings namespace 'app-json' is registered twice"


def test_unset_result(registry: AppRegistry) -> None:
    settings.set_property(registry, SCHEDULER, "web", "shell", "/bin/ash")
    result = settings.set_property(registry, SCHEDULER, "web", "shell", "")
    assert result == settings.SetResult("scheduler", "web", "shell", "")
    result = settings.set_property(registry, SCHEDULER, GLOBAL, "shell", "")
    assert result == settings.SetResult("scheduler", GLOBAL, "shell", "")


@pytest.mark.parametrize("value", ["X", "..X", "X/app.json", "deploy/X"])
def test_appjson_path_names_with_other_characters(registry: AppRegistry, value: str) -> None:
    result = settings.set_property(registry, APP_JSON, "web", "appjson-path", value)
    assert result.value == value


@pytest.mark.parametrize(
    "value",
    [
        "localhost",
        "registry.example",
        "registry.example:5000",
        "registry.example:5",
        "registry.example:65535",
        "10.0.0.1:5000",
        "registry.example/team",
        "registry.example:5000/team/sub_project/app-1.0",
        "my-registry.internal",
    ],
)
def test_registry_server_valid(registry: AppRegistry, store: PropertyStore, value: str) -> None:
    result = settings.set_property(registry, REGISTRY, "web", "server", value)
    assert result == settings.SetResult("registry", "web", "server", value)
    assert store.get("registry", "web", "server") == value


@pytest.mark.parametrize(
    "value",
    [
        "Registry.Example",  # references are lower case
        "registry.example:",
        "registry.example:123456",
        "registry.example:port",
        "registry.example/",
        "registry.example/team/",
        "registry.example//team",
        "https://registry.example",
        "registry example",
        "registry.example\n",
        "user@registry.example",
    ],
)
def test_registry_server_invalid(registry: AppRegistry, store: PropertyStore, value: str) -> None:
    with pytest.raises(PropertyError) as info:
        settings.set_property(registry, REGISTRY, "web", "server", value)
    assert info.value.message == (
        f"Invalid registry {value!r}: expected HOST[:PORT][/PATH], e.g. registry.example:5000"
    )
    assert store.get("registry", "web", "server") == ""
