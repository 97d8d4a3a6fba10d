"""The plugin manager: built-ins, entry points, check_pending, blocking, naming failures."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dokku_tasks import manager
from dokku_tasks.errors import PluginError, PluginLoadError, UsageError
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
    def scheduler_names(self) -> list[str]:
        return ["greeter"]


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
    def scheduler_names(self) -> Iterator[None]:
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
        manager.PluginInfo("app-json", "built-in", ("post_deploy", "pre_deploy", "report")),
        manager.PluginInfo("scheduler", "built-in", ("report",)),
        manager.PluginInfo("greeter", "dokku-tasks-greeter 1.2.3", ("release", "scheduler_names")),
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
        "app-json", "built-in", ("post_deploy", "pre_deploy", "report")
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
        pm.hook.report(app="web", properties=PropertyStore(tmp_path))
    assert info.value.message == "Plugin 'raises' failed in hook report: RuntimeError: boom"
    assert info.value.plugin_name == "raises"
    assert info.value.hook == "report"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_our_error_in_a_hook_is_named_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pm = _with(monkeypatch, "raises", Raises())
    with pytest.raises(PluginError) as info:
        pm.hook.release(app="web", context=_context(tmp_path))
    assert info.value.message == "Plugin 'raises' failed in hook release: bad release setting"


def test_phase_tasks_stamped_with_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pm = _with(monkeypatch, "greeter", Greeter())
    results = pm.hook.release(app="web", context=_context(tmp_path))
    assert results == [[Task("release", "echo web", "greeter", plugin="greeter")]]


def test_phase_hook_returning_junk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pm = _with(monkeypatch, "junk", ReturnsJunk())
    with pytest.raises(PluginError) as info:
        pm.hook.pre_deploy(app="web", context=_context(tmp_path))
    assert info.value.message.startswith("Plugin 'junk' failed in hook pre_deploy: returned ")


def test_wrapper_exception_named(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = _with(monkeypatch, "wrapper", Wrapper())
    with pytest.raises(PluginError) as info:
        pm.hook.scheduler_names()
    assert (
        info.value.message == "Plugin 'wrapper' failed in hook scheduler_names: KeyError: 'wrapped'"
    )


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
    manager.register_plugin(pm, Wrapper(), "wrapper")
    pm.hook.report(app="web", properties=PropertyStore(tmp_path))
    assert calls == ["before", "after"]
