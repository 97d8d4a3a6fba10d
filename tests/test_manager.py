"""The plugin manager: built-ins, entry points, check_pending, blocking, naming failures."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks import manager
from dokku_tasks.errors import DeployRefusedError, PluginError, PluginLoadError, UsageError
from dokku_tasks.hooks import Hooks
from dokku_tasks.hookspecs import hookimpl
from dokku_tasks.models import DeployContext, Task
from dokku_tasks.properties import PropertyStore
from tests.fakes import FakeDistribution, FakeEntryPoint

#: The built-ins these tests register: the ones whose behaviour they look at.
BUILTINS = (
    ("app-json", "dokku_tasks.plugins.app_json"),
    ("scheduler", "dokku_tasks.plugins.scheduler"),
)


def install(monkeypatch: pytest.MonkeyPatch, *dists: FakeDistribution) -> None:
    """Make ``importlib.metadata.distributions()`` return exactly ``dists``."""
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(dists))


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Only known built-ins, no installed third-party plugin, nothing blocked from outside.
    monkeypatch.setattr(manager, "BUILTIN_PLUGINS", BUILTINS)
    monkeypatch.delenv(manager.DISABLE_ENV, raising=False)
    install(monkeypatch)
    yield


class Greeter:
    """A well-formed third-party plugin."""

    @hookimpl
    def release(self, app: str) -> Task:
        return Task(phase="release", command=f"echo {app}", source="greeter")

    @hookimpl
    def register_schedulers(self, register: Any) -> None:
        register("greeter", lambda **_: None)


class Typo:
    @hookimpl
    def pre_deploi(self, app: str) -> None:
        """Misspelt: pre_deploy."""


class Raises:
    @hookimpl
    def report(self, app: str) -> None:
        raise RuntimeError("boom\nsecond line")

    @hookimpl
    def release(self, app: str) -> None:
        raise UsageError("bad release setting")


class ReturnsJunk:
    @hookimpl
    def pre_deploy(self, app: str) -> object:
        return "not a task"


class Wrapper:
    @hookimpl(wrapper=True)
    def report(self) -> Iterator[None]:
        yield
        raise KeyError("wrapped")


def _context(tmp_path: Path) -> DeployContext:
    return DeployContext(app="web", image="img", properties=PropertyStore(tmp_path))


def _loaded(pm: Any) -> list[str]:
    """The names of the plugins registered (a blocked name is listed with ``None``)."""
    return [name for name, plugin in pm.list_name_plugin() if plugin is not None]


def test_builtins_registered_in_order() -> None:
    pm = manager.get_plugin_manager()
    assert _loaded(pm) == ["app-json", "scheduler"]


def test_entry_point_plugin_loaded_and_described(monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        monkeypatch,
        FakeDistribution(
            "dokku-tasks-greeter",
            "1.2.3",
            FakeEntryPoint("greeter", Greeter()),
            FakeEntryPoint("ignored", error=AssertionError("other group"), group="other"),
        ),
    )
    pm = manager.get_plugin_manager()
    assert pm.get_plugin("greeter") is not None
    infos = manager.plugin_infos(pm)
    assert infos == [
        manager.PluginInfo(
            "app-json",
            "built-in",
            (
                "app_files",
                "config_values",
                "plan_tasks",
                "post_deploy",
                "pre_deploy",
                "register_settings",
                "report",
            ),
        ),
        manager.PluginInfo("scheduler", "built-in", ("register_settings", "report")),
        manager.PluginInfo(
            "greeter", "dokku-tasks-greeter 1.2.3", ("register_schedulers", "release")
        ),
    ]


def test_entrypoints_false_skips_third_party(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeDistribution("d", "1", FakeEntryPoint("greeter", Greeter())))
    pm = manager.get_plugin_manager(entrypoints=False)
    assert pm.get_plugin("greeter") is None


def test_same_entry_point_name_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        monkeypatch,
        FakeDistribution("first", "1", FakeEntryPoint("greeter", Greeter())),
        FakeDistribution("second", "2", FakeEntryPoint("greeter", error=ImportError("no"))),
    )
    pm = manager.get_plugin_manager()
    assert [i.origin for i in manager.plugin_infos(pm) if i.name == "greeter"] == ["first 1"]


def test_entry_point_cannot_shadow_a_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeDistribution("evil", "1", FakeEntryPoint("app-json", Greeter())))
    pm = manager.get_plugin_manager()
    assert manager.plugin_infos(pm)[0] == manager.PluginInfo(
        "app-json",
        "built-in",
        (
            "app_files",
            "config_values",
            "plan_tasks",
            "post_deploy",
            "pre_deploy",
            "register_settings",
            "report",
        ),
    )


def test_misspelt_hook_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeDistribution("typo-dist", "0.1", FakeEntryPoint("typo", Typo())))
    with pytest.raises(PluginLoadError) as info:
        manager.get_plugin_manager()
    message = info.value.message
    assert message.startswith("Plugin 'typo' could not be loaded: ")
    assert "pre_deploi" in message
    assert "\n" not in message
    assert info.value.plugin_name == "typo"
    assert info.value.exit_code == 1


def test_import_failure_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    error = ModuleNotFoundError("No module named 'missing_dep'")
    install(monkeypatch, FakeDistribution("broken", "1", FakeEntryPoint("broken", error=error)))
    with pytest.raises(PluginLoadError) as info:
        manager.get_plugin_manager()
    assert info.value.message == (
        "Plugin 'broken' could not be loaded: ModuleNotFoundError: No module named 'missing_dep'"
    )
    assert info.value.exit_code == 1


def test_blocked_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert manager.blocked_from_env({}) == ()
    assert manager.blocked_from_env({manager.DISABLE_ENV: " a, ,b ,"}) == ("a", "b")
    install(
        monkeypatch,
        FakeDistribution("d", "1", FakeEntryPoint("broken", error=ImportError("never loaded"))),
    )
    monkeypatch.setenv(manager.DISABLE_ENV, "scheduler,broken")
    pm = manager.get_plugin_manager()
    assert _loaded(pm) == ["app-json"]
    assert pm.is_blocked("scheduler")
    assert pm.is_blocked("broken")


def test_blocked_argument_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(manager.DISABLE_ENV, "scheduler")
    pm = manager.get_plugin_manager(blocked=["app-json"])
    assert _loaded(pm) == ["scheduler"]


def _with(monkeypatch: pytest.MonkeyPatch, name: str, plugin: object) -> Any:
    install(monkeypatch, FakeDistribution(f"{name}-dist", "1", FakeEntryPoint(name, plugin)))
    return manager.get_plugin_manager()


def test_hook_exception_becomes_plugin_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pm = _with(monkeypatch, "raises", Raises())
    with pytest.raises(PluginError) as info:
        Hooks(pm).report(app="web", properties=PropertyStore(tmp_path))
    assert info.value.message == "Plugin 'raises' failed in hook report: RuntimeError: boom"
    assert info.value.plugin_name == "raises"
    assert info.value.hook == "report"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_our_error_in_a_hook_is_named_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pm = _with(monkeypatch, "raises", Raises())
    with pytest.raises(PluginError) as info:
        Hooks(pm).release(app="web", context=_context(tmp_path))
    assert info.value.message == "Plugin 'raises' failed in hook release: bad release setting"


def test_phase_tasks_stamped_with_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pm = _with(monkeypatch, "greeter", Greeter())
    results = Hooks(pm).release(app="web", context=_context(tmp_path))
    assert results == [Task("release", "echo web", "greeter", plugin="greeter")]


def test_phase_hook_returning_junk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pm = _with(monkeypatch, "junk", ReturnsJunk())
    with pytest.raises(PluginError) as info:
        Hooks(pm).pre_deploy(app="web", context=_context(tmp_path))
    assert info.value.message.startswith("Plugin 'junk' failed in hook pre_deploy: returned ")


def test_wrapper_exception_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pm = _with(monkeypatch, "wrapper", Wrapper())
    with pytest.raises(PluginError) as info:
        Hooks(pm).report(app="web", properties=PropertyStore(tmp_path))
    assert info.value.message == "Plugin 'wrapper' failed in hook report: KeyError: 'wrapped'"


def test_every_call_builds_a_fresh_manager() -> None:
    assert manager.get_plugin_manager() is not manager.get_plugin_manager()


def test_old_style_hookwrappers_can_be_registered(tmp_path: Path) -> None:
    from collections.abc import Generator

    from dokku_tasks.properties import PropertyStore

    calls: list[str] = []

    class Wrapper:
        @hookimpl(hookwrapper=True)
        def report(self) -> Generator[None, Any, None]:
            calls.append("before")
            yield
            calls.append("after")

    pm = manager.get_plugin_manager(entrypoints=False, blocked=())
    pm.register(Wrapper(), "wrapper")
    Hooks(pm).report(app="web", properties=PropertyStore(tmp_path))
    assert calls == ["before", "after"]


class Refuses:
    @hookimpl
    def deploy_started(self, app: str) -> None:
        raise DeployRefusedError(f"{app} is frozen")


class Fails:
    @hookimpl
    def report(self) -> None:
        raise ValueError("plain register")


def test_plugins_are_registered_as_they_are(tmp_path: Path) -> None:
    pm = manager.get_plugin_manager(entrypoints=False, blocked=())
    plugin = Fails()
    pm.register(plugin, "plain")  # plain pluggy registration, no helper
    assert pm.get_plugin("plain") is plugin
    with pytest.raises(PluginError) as info:
        Hooks(pm).report(app="web", properties=PropertyStore(tmp_path))
    assert info.value.message == "Plugin 'plain' failed in hook report: ValueError: plain register"
    pm.unregister(plugin)
    assert pm.get_plugin("plain") is None
    Hooks(pm).report(app="web", properties=PropertyStore(tmp_path))


def test_a_refusal_names_the_plugin_and_is_recorded(tmp_path: Path) -> None:
    from dokku_tasks.output import Output
    from dokku_tasks.pipeline import DeployRequest

    pm = manager.get_plugin_manager(entrypoints=False, blocked=())
    pm.register(Refuses(), "freeze")
    hooks = Hooks(pm)
    with pytest.raises(DeployRefusedError) as info:
        hooks.deploy_started(
            app="web",
            request=DeployRequest(app="web", image="x"),
            properties=PropertyStore(tmp_path),
            output=Output(),
        )
    assert info.value.message == "Deploy refused by plugin 'freeze': web is frozen"
    [step] = hooks.steps
    assert (step.plugin, step.hook, step.ok) == ("freeze", "deploy_started", False)
    assert step.error == info.value.message


def test_a_wrapper_around_a_phase_hook_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    class WrapsRelease:
        @hookimpl(wrapper=True)
        def release(self) -> Iterator[None]:
            return (yield)

    with pytest.raises(PluginLoadError) as info:
        _with(monkeypatch, "wraps", WrapsRelease())
    assert info.value.message == (
        "Plugin 'wraps' could not be loaded: hook release is called one implementation at a "
        "time and cannot be a wrapper"
    )


def test_phase_steps_are_recorded_in_calling_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pm = _with(monkeypatch, "greeter", Greeter())
    hooks = Hooks(pm)
    hooks.release(app="web", context=_context(tmp_path))
    assert [(s.plugin, s.hook, s.ok) for s in hooks.steps] == [("greeter", "release", True)]
    assert hooks.steps[0].duration >= 0
