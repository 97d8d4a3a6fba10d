"""The hook specifications: the public contract between dokku-tasks and its plugins.

Plugins implement these with the :data:`hookimpl` marker (``from dokku_tasks import hookimpl``)
and may accept any subset of a hook's arguments.  The core always calls hooks with keyword
arguments.  Every exception a hook implementation raises fails the command with one line that
names the plugin (:class:`dokku_tasks.errors.PluginError`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .models import (
        AppFile,
        ContainerOptions,
        DeployContext,
        DeployResult,
        ImageInfo,
        ReportSection,
        Task,
    )
    from .output import Output
    from .pipeline import DeployRequest
    from .properties import PropertyStore
    from .scheduling import ProcessProbe, SchedulerFactory, StartedProcess
    from .settings import Namespace

PROJECT_NAME = "dokku_tasks"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations: ``@hookimpl`` or ``@hookimpl(wrapper=True, tryfirst=True)``."""

# -- deploy phases -------------------------------------------------------------------------
# Each phase hook is called once when its phase starts, after the previous phase has finished.
# Host-side steps run right there; tasks to run in a container are returned as data.


@hookspec
def pre_deploy(app: str, context: DeployContext) -> Task | Sequence[Task] | None:
    """Called when the predeploy phase starts: the image is built, nothing is scheduled yet.

    :param app: the app's name.
    :param context: the deploy so far; ``context.image`` is the freshly built image.
    :return: tasks to run in containers of ``context.image`` (a task with ``commit=True`` is
        committed into the image that later phases and the processes use), or ``None``.
        Results of all implementations run in hook-call order.
    """


@hookspec
def release(app: str, context: DeployContext) -> Task | Sequence[Task] | None:
    """Called when the release phase starts: predeploy has succeeded, nothing is scheduled yet.

    :param app: the app's name.
    :param context: the deploy so far; ``context.image`` includes the predeploy commit.
    :return: tasks to run in containers of ``context.image``, or ``None``.  Only predeploy
        commits: a task with ``commit=True`` here fails the deploy, naming the plugin.
    """


@hookspec
def post_deploy(app: str, context: DeployContext) -> Task | Sequence[Task] | None:
    """Called once the app's new containers run under their names and ``latest`` has moved.

    The new containers passed their checks (``check_processes``).  The old ones have stepped
    aside (renamed ``….retired-…``) and got SIGTERM; a detached retirer stops and removes them
    after ``wait-to-retire``, and the deploy never waits for them.

    :param app: the app's name.
    :param context: the deploy so far; ``context.image`` is the deployed image, and
        ``context.first_deploy`` tells whether this is the app's first scheduled deploy.
    :return: tasks to run in containers of the deployed image, or ``None`` (never committing,
        as in ``release``).  A failure here fails the deploy but leaves the new containers
        running; the app is marked deployed only after this phase succeeds.
    """


@hookspec
def deploy_finished(app: str, result: DeployResult) -> None:
    """Called once at the end of every deploy that reached the engine, success or not.

    Not called for a deploy refused before that (bad arguments, the app's lock held, a
    refusal in ``deploy_started``, no engine).

    :param app: the app's name.
    :param result: the deploy record; ``result.ok`` is false and ``result.error`` holds the
        failure line when the deploy failed.
    :return: nothing.  An exception here turns a successful deploy into a failed command.
    """


# -- containers ----------------------------------------------------------------------------


@hookspec
def check_processes(
    app: str,
    context: DeployContext,
    processes: Sequence[StartedProcess],
    probe: ProcessProbe,
) -> None:
    """Called after the scheduler started the new process containers and before they replace
    the old ones, to check that they work (the built-in ``checks`` plugin: Dokku's
    ``default-wait`` and app.json ``healthchecks``).

    :param app: the app's name.
    :param context: the deploy so far (``context.app_json`` holds the healthchecks).
    :param processes: the new containers, each with the name it takes at the switch.
    :param probe: inspects a container's state and runs a command in it.
    :return: nothing; raise :class:`~dokku_tasks.errors.ChecksFailedError` (one line) to fail
        the deploy: the new containers are removed and the old ones keep serving.
    """


@hookspec
def plan_tasks(app: str, context: DeployContext, hook: str) -> Task | Sequence[Task] | None:
    """Called by a plan (``deploy --plan``), in place of the phase hook ``hook``
    (``pre_deploy``, ``release``, ``post_deploy``), for a plugin that implements both.

    A plan changes nothing, so it never calls a phase hook (whose host-side steps are ordinary
    Python).  A plugin tells the plan here which tasks its phase hook would return, without
    running any step.  A plugin that implements a phase hook but not this one is listed in the
    plan as one whose tasks are known only when the deploy runs.

    :param app: the app's name.
    :param context: the deploy as the plan resolves it (``context.image`` is empty when the
        image is built at deploy time).
    :param hook: the phase hook the plan asks about.
    :return: the tasks, or ``None``.
    """


@hookspec
def app_files(app: str, properties: PropertyStore) -> Sequence[AppFile] | None:
    """Called once per deploy, after ``deploy_started`` and before the build, to name the files
    of the app that the plugin reads (app.json, the Procfile).

    The deploy reads every file named, parses it with the file's own ``parse`` and hands the
    results to the phase hooks as ``context.files[name]``; a file that does not exist is left
    out.  Files from the source tree are read and parsed before the build spends any time.

    :param app: the app's name.
    :param properties: the app's properties (where a path setting such as ``appjson-path`` is).
    :return: the plugin's files, or ``None``.  Two plugins naming the same file is an error.
    """


@hookspec
def config_values(app: str, context: DeployContext) -> Mapping[str, str] | None:
    """Called once per deploy, when the image is ready and the app's files are read, before the
    predeploy phase (and once per ``run``), for the app's config values.

    The built-in ``config`` plugin returns the values stored with ``config:set`` (the global
    ones with the app's laid over them).  An implementation may change what is stored first,
    as a host-side step: the ``app-json`` plugin (``tryfirst``) applies app.json ``env`` here,
    where Dokku's pre-release-builder does.

    :param app: the app's name.
    :param context: the deploy so far; ``context.env`` holds only the values given for this
        deploy (``-e``, ``--env-file``, ``DeployRequest.env``), ``context.app_json`` the app's
        app.json (``None`` in a ``run``), ``context.first_deploy`` whether the app's first
        deploy is still to finish.
    :return: config values (valid keys, no NUL), or ``None``.  Results are laid over each
        other in call order (a later one wins), and the deploy's own values over all of them.
        They reach every task and process container, as ``-e`` values do, and never an image.
        Raise :class:`~dokku_tasks.errors.DeployRefusedError` to refuse the deploy (one line).
    """


@hookspec
def container_options(app: str, context: DeployContext, phase: str) -> ContainerOptions | None:
    """Called before each task or process container is created, to add env, mounts or a network.

    :param app: the app's name.
    :param context: the deploy so far.
    :param phase: the task phase (``predeploy``, ``release``, ``postdeploy``,
        ``heroku.postdeploy``), ``run`` for a one-off ``run`` container, or ``deploy`` for a
        process container.
    :return: options to lay over the deploy's own (env values replace, mounts add, a network
        replaces), or ``None``.  All implementations are applied, first-called first.
    """


@hookspec(firstresult=True)
def task_argv(
    app: str, task: Task, image: ImageInfo, context: DeployContext
) -> Sequence[str] | None:
    """Called for each task to turn its command string into the container's argv (its CMD).

    The built-in ``entrypoint`` plugin implements Dokku's rule: an image with no ENTRYPOINT, or
    exactly one of the four tini forms, gets ``<shell> -c "set -e; <command>"``; any other
    ENTRYPOINT gets the command split with shell quoting rules, passed to it unwrapped.

    :param app: the app's name.
    :param task: the task to shape.
    :param image: the image the task runs in (its ENTRYPOINT, CMD, WORKDIR).
    :param context: the deploy so far (``context.shell`` is the configured shell, if any).
    :return: the argv, or ``None`` to leave the decision to the next implementation.
        Stops at the first non-``None`` result.
    """


# -- registries -----------------------------------------------------------------------------
# Called once per plugin manager, the first time the core needs what they register.


@hookspec
def register_settings(register: Callable[[Namespace], None]) -> None:
    """Called to collect settings namespaces; call ``register(namespace)`` for each of yours.

    Each :class:`dokku_tasks.settings.Namespace` gets ``NAME:set`` and ``NAME:report``
    commands with Dokku's behaviour (``--global``, info flags, ``--format json``, exit 20 for
    a missing app), its values under ``ROOT/config/NAME/``, and a section in ``report``.

    :param register: adds one namespace; a name registered twice is an error.
    """


@hookspec
def register_schedulers(register: Callable[[str, SchedulerFactory], None]) -> None:
    """Called to collect schedulers; call ``register(name, factory)`` for each of yours.

    :param register: adds one scheduler: ``factory(engine=..., app=..., properties=...)``
        returns a :class:`dokku_tasks.scheduling.Scheduler` for one deploy (or ``apps:destroy``).
        The names are what ``scheduler:set APP selected NAME`` accepts.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Called when the command line is built; add click commands to ``cli`` (``cli.command``).

    Only called for a command name the core does not know itself, and for ``--help``.  A
    command prints through :class:`dokku_tasks.output.Output` and raises
    :class:`dokku_tasks.errors.DokkuTasksError` for a one-line failure.
    """


# -- the deploy ----------------------------------------------------------------------------


@hookspec
def deploy_started(
    app: str, request: DeployRequest, properties: PropertyStore, output: Output
) -> None:
    """Called first in every deploy, once the app's lock is held: nothing is built or read yet.

    Raise :class:`dokku_tasks.errors.DeployRefusedError` to refuse the deploy at once (one
    line naming the plugin, exit 1); print through ``output`` (``output.step``,
    ``output.info``).

    :param app: the app's name.
    :param request: what is to be deployed (source, image, options).
    :param properties: the property store, to read the plugin's settings.
    :param output: the deploy's output.
    """


# -- reports -------------------------------------------------------------------------------


@hookspec
def report(app: str, properties: PropertyStore) -> ReportSection | None:
    """Called by ``dokku-tasks report [APP]`` for each app, once per plugin.

    :param app: the app's name.
    :param properties: the property store, to read the plugin's settings.
    :return: the plugin's section (``=====> APP TITLE information`` and aligned rows), or
        ``None`` for no section.
    """
