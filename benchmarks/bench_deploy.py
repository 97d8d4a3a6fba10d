#!/usr/bin/env python3
"""Benchmarks for dokku-tasks (issue 5): a deploy against the docker CLI and the SDK floor,
CLI start-up, memory under 200 MB of task output, ``app-json:report`` over 1,000 apps, and
reading app.json/Procfile from an image without running it.

Run after the README's setup (a Docker engine, the base images, dokku-tasks installed in the
python that runs this script)::

    python benchmarks/bench_deploy.py [--rounds N] [--json OUT] [--only deploy,help,...]

Contestants of the deploy benchmark, alternated every round (the order rotates):

``ours``
    ``dokku-tasks --root R deploy APP --source S --image IMG`` as a subprocess (the console
    script installed next to ``sys.executable``), the whole process timed from the outside.
``cli``
    the same container steps with the docker CLI, one command per step, the way Dokku's shell
    plugins do them: per task ``image inspect``, ``container create``, ``start``, ``wait``,
    ``logs``, ``commit`` (predeploy), ``rm -f``; then the web container replaced (create with
    ``--init``, ``--restart on-failure:10``, ``DYNO`` and ``PORT`` and the Procfile command's
    words, start, stop + rm the old one, rename) and ``dokku/APP:latest`` tagged.  It has no
    checks, so ``ours`` runs with ``checks:skip``; its ``stop`` waits for the old container
    (10 s for a PID 1 that ignores SIGTERM, as with ``--no-tini``), where ours and Dokku retire
    it in the background.
``floor``
    the same steps through ``docker.APIClient`` in this process, one client made before the
    clock starts, doing nothing else.
``ours-lib`` (skip with ``--no-library``)
    ``dokku_tasks.pipeline.deploy`` in this warm process: ``ours - ours-lib`` is the cost of
    starting and ending a process, ``ours-lib - floor`` what the library adds to the API calls.
``ours-base`` (only with ``--baseline DIR``)
    ours with ``PYTHONPATH=DIR``: another copy of the package (``git archive REV dokku_tasks |
    tar -x -C DIR``) in the same rounds, so a change is measured against what it changes under
    the same load, on its own state root.
``floor-overlap`` (skip with ``--no-overlap``)
    the floor with the steps that do not depend on the previous one moved off the critical path:
    finished task containers removed in the background, the release, web and postdeploy
    containers created while the predeploy commit is known, the old web container stopped,
    removed and the new one renamed/tagged while postdeploy runs.  How far under the floor the
    engine lets a deploy go.

Every contestant deploys its own app (same image, same tasks), redeployed each round after one
warm-up deploy, so each round replaces a running web container, as a real redeploy does.

Everything this script creates carries the label ``com.dokku-tasks.bench-run=<run id>``
(inherited from the benchmark image by every container and committed image made from it) and
is removed at the end, also on Ctrl-C or SIGTERM.  These are measurements, not tests: nothing
here asserts a timing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_LABEL = "com.dokku-tasks.bench"
RUN_LABEL = "com.dokku-tasks.bench-run"
APP_LABEL = "com.dokku.app-name"
PROCESS_LABEL = "com.dokku.process-type"
TASK_LABEL = "dokku_phase_script"
PREDEPLOY_LABEL = "com.dokku.predeploy-phase"

PREDEPLOY_CMD = "echo predeploy-ran"
RELEASE_CMD = "echo release-ran"
POSTDEPLOY_CMD = "echo postdeploy-ran"
WEB_CMD = "sleep 3600"

#: One line of the 200 MB test: 49 characters and a newline, so 200,000,000 bytes = 4,000,000 lines.
BIG_LINE = "0123456789abcdef0123456789abcdef0123456789abcdefg"
BIG_BYTES = 200_000_000

TARGETS = {
    "ours_over_cli": 1.0,
    "ours_minus_floor_ms": 200.0,
    "help_ms": 150.0,
    "rss_mb": 100.0,
    "report_1000_s": 1.0,
    "image_read_container_starts": 0,
}

SECTIONS = ("deploy", "help", "rss", "report", "image-read", "profile", "whatif")


# -- small helpers ----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run(
    argv: Sequence[str], *, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:6])}... exited {result.returncode}: {result.stderr.strip()[-2000:]}"
        )
    return result


def console_script() -> str:
    """The ``dokku-tasks`` script of the python running this file (not a pyenv shim)."""
    beside = Path(sys.executable).parent / "dokku-tasks"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("dokku-tasks")
    if not found:
        sys.exit("dokku-tasks is not installed next to this python nor on PATH")
    return found


def child_env() -> dict[str, str]:
    """This environment without coverage start-up hooks, a plugin block list, or
    ``PYTHONDONTWRITEBYTECODE``: an installed package has its bytecode compiled (pip does it),
    and a command that compiles every module from source on each start measures the compiler.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COVERAGE_")
        and k not in ("DOKKU_TASKS_DISABLE_PLUGINS", "PYTHONDONTWRITEBYTECODE")
    }
    env.pop("DOKKU_TASKS_WEBHOOK_URL", None)
    return env


def compile_bytecode(baseline: Path | None = None) -> None:
    """Compile the package, its plugins and their dependencies, as an install would."""
    import compileall
    import site

    roots = [Path(__file__).resolve().parents[1] / "dokku_tasks"]
    if baseline is not None:
        roots.append(baseline / "dokku_tasks")
    roots += [p for p in (Path(__file__).resolve().parents[1] / "plugins").glob("*/dokku_tasks_*")]
    roots += [Path(p) for p in site.getsitepackages()]
    for root in roots:
        compileall.compile_dir(str(root), quiet=2, force=False)


class Bench:
    """One benchmark run: its scratch directory, names, and what must be cleaned up."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = secrets.token_hex(4)
        self.docker = shutil.which("docker") or sys.exit("the docker CLI is not on PATH")
        self.script = console_script()
        self.env = child_env()
        self.work = Path(tempfile.mkdtemp(prefix=f"dokku-tasks-bench-{self.run_id}-"))
        self.root = self.work / "root"
        self.image = f"dokku-tasks-bench/app:{self.run_id}"
        self.apps: list[str] = []
        self.results: dict[str, Any] = {}

    def app(self, role: str) -> str:
        name = f"bench-{self.run_id}-{role}"
        self.apps.append(name)
        return name

    def dt(self, *args: str, root: Path | None = None) -> list[str]:
        return [self.script, "--root", str(root or self.root), *args]

    # -- set-up -----------------------------------------------------------------------------

    def write_source(self, name: str, app_json: dict[str, Any], procfile: str) -> Path:
        source = self.work / name
        source.mkdir()
        (source / "app.json").write_text(json.dumps(app_json))
        (source / "Procfile").write_text(procfile)
        return source

    def build_image(self) -> None:
        """The app image, built once: busybox + tini as ENTRYPOINT, app.json and Procfile in
        its WORKDIR (for the image-read benchmark)."""
        base = self.args.base_image
        entrypoint = '["/usr/bin/tini", "--"]' if self.args.tini else "[]"
        self.source = self.write_source(
            "src",
            {"scripts": {"dokku": {"predeploy": PREDEPLOY_CMD, "postdeploy": POSTDEPLOY_CMD}}},
            f"release: {RELEASE_CMD}\nweb: {WEB_CMD}\n",
        )
        (self.source / "Dockerfile").write_text(
            textwrap.dedent(
                f"""\
                FROM {base}
                LABEL {BENCH_LABEL}=1 {RUN_LABEL}={self.run_id}
                WORKDIR /app
                COPY app.json Procfile /app/
                ENTRYPOINT {entrypoint}
                CMD ["sleep", "3600"]
                """
            )
        )
        log(f"building {self.image} FROM {base} (not measured)")
        run([self.docker, "build", "-q", "-t", self.image, str(self.source)])
        inspect = json.loads(run([self.docker, "image", "inspect", self.image]).stdout)[0]
        self.image_entrypoint = inspect["Config"].get("Entrypoint") or []
        self.image_cmd = inspect["Config"].get("Cmd") or []

    # -- clean-up ---------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Remove every container, image and file this run created (idempotent)."""
        log("cleaning up")
        ids: set[str] = set()
        for label in [f"{RUN_LABEL}={self.run_id}", *(f"{APP_LABEL}={a}" for a in self.apps)]:
            out = run(
                [self.docker, "ps", "-aq", "--no-trunc", "--filter", f"label={label}"], check=False
            ).stdout
            ids.update(out.split())
        if ids:
            run([self.docker, "rm", "-f", "-v", *sorted(ids)], check=False)
        for app in self.apps:
            run([self.docker, "rmi", "-f", f"dokku/{app}:latest"], check=False)
        out = run(
            [
                self.docker,
                "images",
                "-aq",
                "--no-trunc",
                "--filter",
                f"label={RUN_LABEL}={self.run_id}",
            ],
            check=False,
        ).stdout
        images = list(dict.fromkeys(out.split()))
        if images:
            run([self.docker, "rmi", "-f", *images], check=False)
        run([self.docker, "rmi", "-f", self.image], check=False)
        shutil.rmtree(self.work, ignore_errors=True)


# -- machine ----------------------------------------------------------------------------------


def machine(bench: Bench) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    version = json.loads(run([bench.docker, "version", "--format", "{{json .Server}}"]).stdout)
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_mb": int(meminfo[1]) // 1024,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "dokku_tasks_script": bench.script,
        "docker_engine": version.get("Version"),
        "docker_api": version.get("ApiVersion"),
        "storage_driver": run([bench.docker, "info", "--format", "{{.Driver}}"]).stdout.strip(),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "base_image": bench.args.base_image,
        "image_entrypoint": bench.image_entrypoint,
        "plugins": run(bench.dt("plugins"), env=bench.env).stdout.strip().splitlines(),
        "code": code_fingerprint(),
    }


def code_fingerprint() -> dict[str, Any]:
    """Which code was measured: the commit, and a hash of the package's files as they are."""
    import hashlib

    import dokku_tasks

    package = Path(dokku_tasks.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    head = run(["git", "-C", str(package.parent), "rev-parse", "--short", "HEAD"], check=False)
    dirty = run(
        ["git", "-C", str(package.parent), "status", "--porcelain", "--", "dokku_tasks"],
        check=False,
    )
    return {
        "package": str(package),
        "git_head": head.stdout.strip(),
        "package_files_changed_since_head": len(dirty.stdout.splitlines()),
        "package_sha256": digest.hexdigest()[:16],
    }


# -- the deploy contestants -------------------------------------------------------------------


def shell_argv(command: str) -> list[str]:
    """How Dokku runs a task command in an image without an ENTRYPOINT (or with tini)."""
    return ["/bin/sh", "-c", f"set -e; set -o pipefail || true; {command}"]


#: How Dokku's docker-local starts a web process: the Procfile command's words under the
#: image's ENTRYPOINT, the engine's init, restart on-failure:10, DYNO and PORT.
WEB_ENV = {"DYNO": "web.1", "PORT": "5000"}


def commit_changes(app: str, cmd: list[str], entrypoint: list[str]) -> list[str]:
    return [
        f"CMD {json.dumps(cmd)}",
        f"ENTRYPOINT {json.dumps(entrypoint)}",
        f"LABEL {APP_LABEL}={json.dumps(app)}",
        f"LABEL {PREDEPLOY_LABEL}=true",
        f'LABEL {TASK_LABEL}=""',
    ]


def skip_checks(bench: Bench, app: str) -> None:
    """``checks:skip APP``: the docker CLI sequence has no checks to compare them with."""
    run(bench.dt("apps:create", app), env=bench.env)
    run(bench.dt("checks:skip", app), env=bench.env)


class Ours:
    name = "ours"

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.app = bench.app("ours")
        skip_checks(bench, self.app)

    def deploy(self) -> float:
        b = self.bench
        argv = b.dt("deploy", self.app, "--source", str(b.source), "--image", b.image)
        began = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, env=b.env)
        elapsed = time.perf_counter() - began
        if result.returncode != 0 or "postdeploy-ran" not in result.stdout:
            raise RuntimeError(f"ours failed ({result.returncode}): {result.stderr.strip()}")
        return elapsed


class OursBaseline(Ours):
    """``ours`` with another copy of the package first on ``PYTHONPATH`` (``--baseline``)."""

    name = "ours-base"

    def __init__(self, bench: Bench, package_parent: Path) -> None:
        self.bench = bench
        self.app = bench.app("base")
        self.root = bench.work / "root-base"
        self.env = {**bench.env, "PYTHONPATH": str(package_parent)}
        for args in (["apps:create", self.app], ["checks:skip", self.app]):
            run(bench.dt(*args, root=self.root), env=self.env)

    def deploy(self) -> float:
        b = self.bench
        argv = b.dt(
            "deploy", self.app, "--source", str(b.source), "--image", b.image, root=self.root
        )
        began = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, env=self.env)
        elapsed = time.perf_counter() - began
        if result.returncode != 0 or "postdeploy-ran" not in result.stdout:
            raise RuntimeError(f"ours-base failed ({result.returncode}): {result.stderr.strip()}")
        return elapsed


class OursLibrary:
    """``dokku_tasks.pipeline.deploy`` called in this (warm) process: ours without the start-up
    of a fresh interpreter, so ``ours - ours-lib`` is the process's start-up and teardown and
    ``ours-lib - floor`` what the library does beyond the bare API calls."""

    name = "ours-lib"

    def __init__(self, bench: Bench) -> None:
        from dokku_tasks import pipeline
        from dokku_tasks.manager import get_plugin_manager

        self.bench = bench
        self.app = bench.app("lib")
        skip_checks(bench, self.app)
        self.pipeline = pipeline
        self.pm = get_plugin_manager()
        self.request = pipeline.DeployRequest(app=self.app, source=bench.source, image=bench.image)

    def deploy(self) -> float:
        from dokku_tasks.output import Output

        output = Output(out=io.StringIO(), err=io.StringIO())
        began = time.perf_counter()
        self.pipeline.deploy(self.request, root=self.bench.root, output=output, pm=self.pm)
        return time.perf_counter() - began


class Cli:
    """The docker CLI, one command per step, as Dokku's shell plugins run them."""

    name = "cli"

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.app = bench.app("cli")
        self.web: str | None = None

    def docker(self, *args: str) -> str:
        result = subprocess.run([self.bench.docker, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])}: {result.stderr.strip()}")
        return result.stdout

    def task(self, phase: str, image: str, command: str, commit: bool = False) -> str:
        self.docker("image", "inspect", image)
        cid = self.docker(
            "container",
            "create",
            "--label",
            f"{APP_LABEL}={self.app}",
            "--label",
            f"{TASK_LABEL}={phase}",
            image,
            *shell_argv(command),
        ).strip()
        try:
            self.docker("container", "start", cid)
            status = self.docker("container", "wait", cid).strip()
            if status != "0":
                raise RuntimeError(f"{phase} exited {status}")
            self.docker("container", "logs", cid)
            if commit:
                b = self.bench
                changes = commit_changes(self.app, b.image_cmd, b.image_entrypoint)
                args = [a for change in changes for a in ("--change", change)]
                return self.docker("commit", *args, cid).strip()
            return image
        finally:
            self.docker("container", "rm", "-f", cid)

    def deploy(self) -> float:
        began = time.perf_counter()
        image = self.task("predeploy", self.bench.image, PREDEPLOY_CMD, commit=True)
        self.task("release", image, RELEASE_CMD)
        name = f"{self.app}.web.1"
        new = self.docker(
            "container",
            "create",
            "--name",
            f"{name}.{secrets.token_hex(4)}",
            "--label",
            f"{APP_LABEL}={self.app}",
            "--label",
            f"{PROCESS_LABEL}=web",
            "--label",
            f"{TASK_LABEL}=",
            "--restart",
            "on-failure:10",
            "--init",
            *[arg for key, value in WEB_ENV.items() for arg in ("--env", f"{key}={value}")],
            image,
            *WEB_CMD.split(),
        ).strip()
        self.docker("container", "start", new)
        if self.web:
            self.docker("container", "stop", self.web)
            self.docker("container", "rm", "-f", self.web)
        self.docker("container", "rename", new, name)
        self.web = new
        self.docker("image", "tag", image, f"dokku/{self.app}:latest")
        self.task("postdeploy", image, POSTDEPLOY_CMD)
        return time.perf_counter() - began


class Floor:
    """The same steps through one docker.APIClient in this process."""

    name = "floor"

    def __init__(self, bench: Bench, api: Any, role: str = "floor") -> None:
        self.bench = bench
        self.api = api
        self.app = bench.app(role)
        self.web: str | None = None

    def create_task(self, phase: str, image: str, command: str) -> str:
        return str(
            self.api.create_container(
                image,
                command=shell_argv(command),
                labels={APP_LABEL: self.app, TASK_LABEL: phase},
                host_config=self.api.create_host_config(),
            )["Id"]
        )

    def run_task(self, cid: str, phase: str) -> None:
        self.api.start(cid)
        status = self.api.wait(cid)["StatusCode"]
        if status != 0:
            raise RuntimeError(f"{phase} exited {status}")
        self.api.logs(cid)

    def create_web(self, image: str) -> str:
        return str(
            self.api.create_container(
                image,
                command=WEB_CMD.split(),
                environment=[f"{key}={value}" for key, value in WEB_ENV.items()],
                labels={APP_LABEL: self.app, PROCESS_LABEL: "web", TASK_LABEL: ""},
                name=f"{self.app}.web.1.{secrets.token_hex(4)}",
                host_config=self.api.create_host_config(
                    restart_policy={"Name": "on-failure", "MaximumRetryCount": 10}, init=True
                ),
            )["Id"]
        )

    def commit(self, cid: str) -> str:
        b = self.bench
        changes = commit_changes(self.app, b.image_cmd, b.image_entrypoint)
        return str(self.api.commit(cid, changes=changes)["Id"])

    def task(self, phase: str, image: str, command: str, commit: bool = False) -> str:
        self.api.inspect_image(image)
        cid = self.create_task(phase, image, command)
        try:
            self.run_task(cid, phase)
            return self.commit(cid) if commit else image
        finally:
            self.api.remove_container(cid, force=True)

    def deploy(self) -> float:
        began = time.perf_counter()
        image = self.task("predeploy", self.bench.image, PREDEPLOY_CMD, commit=True)
        self.task("release", image, RELEASE_CMD)
        new = self.create_web(image)
        self.api.start(new)
        if self.web:
            self.api.stop(self.web)
            self.api.remove_container(self.web, force=True)
        self.api.rename(new, f"{self.app}.web.1")
        self.web = new
        self.api.tag(image, f"dokku/{self.app}", "latest", force=True)
        self.task("postdeploy", image, POSTDEPLOY_CMD)
        return time.perf_counter() - began


class FloorOverlap(Floor):
    """The floor with independent steps taken off the critical path (threads, one client each).

    Critical path: create+start+wait predeploy, commit, start+wait release, start web,
    start+wait postdeploy.  Off it: inspecting the image (overlaps creating the predeploy
    container), removing each finished task container, creating the release, web and
    postdeploy containers (all from the committed image, in parallel, as soon as it exists),
    stopping and removing the old web container, renaming the new one and tagging.
    """

    name = "floor-overlap"

    def __init__(self, bench: Bench, api_factory: Callable[[], Any]) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        # requests' connection pool is thread-safe; one client per worker avoids its lock-step.
        self.api_factory = api_factory
        super().__init__(bench, api_factory(), role="overlap")

    def deploy(self) -> float:
        api, pool = self.api, self.pool
        began = time.perf_counter()
        background: list[concurrent.futures.Future[Any]] = []
        inspected = pool.submit(api.inspect_image, self.bench.image)
        pre = self.create_task("predeploy", self.bench.image, PREDEPLOY_CMD)
        inspected.result()
        self.run_task(pre, "predeploy")
        image = self.commit(pre)
        background.append(pool.submit(api.remove_container, pre, force=True))
        release_f = pool.submit(self.create_task, "release", image, RELEASE_CMD)
        web_f = pool.submit(self.create_web, image)
        post_f = pool.submit(self.create_task, "postdeploy", image, POSTDEPLOY_CMD)
        release = release_f.result()
        self.run_task(release, "release")
        background.append(pool.submit(api.remove_container, release, force=True))
        new = web_f.result()
        api.start(new)
        old = self.web

        def replace() -> None:
            if old:
                api.stop(old)
                api.remove_container(old, force=True)
            api.rename(new, f"{self.app}.web.1")
            api.tag(image, f"dokku/{self.app}", "latest", force=True)

        background.append(pool.submit(replace))
        self.web = new
        post = post_f.result()
        self.run_task(post, "postdeploy")
        background.append(pool.submit(api.remove_container, post, force=True))
        for future in background:
            future.result()
        return time.perf_counter() - began


def foreign_starts(bench: Bench, since: float) -> int:
    """Containers that something other than this run started since ``since``: a sign that the
    engine was shared while we measured (the figures are then noisier)."""
    time.sleep(1.0)
    events = run(
        [
            bench.docker,
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{time.time():.3f}",
            "--filter",
            "type=container",
            "--filter",
            "event=start",
            "--format",
            "{{json .Actor.Attributes}}",
        ],
        check=False,
    ).stdout
    return sum(1 for line in events.splitlines() if json.loads(line).get(RUN_LABEL) != bench.run_id)


def bench_deploy(bench: Bench) -> dict[str, Any]:
    import docker

    api = docker.APIClient(version="auto", timeout=120)

    def api_factory() -> Any:
        return api

    contestants: list[Any] = [Ours(bench), Cli(bench), Floor(bench, api)]
    if bench.args.baseline is not None:
        contestants.append(OursBaseline(bench, bench.args.baseline.resolve()))
    if bench.args.library:
        contestants.append(OursLibrary(bench))
    if bench.args.overlap:
        contestants.append(FloorOverlap(bench, api_factory))
    since = time.time()
    log("warm-up deploy of each contestant")
    for c in contestants:
        c.deploy()
    times: dict[str, list[float]] = {c.name: [] for c in contestants}
    rounds = bench.args.rounds
    for r in range(rounds):
        order = contestants[r % len(contestants) :] + contestants[: r % len(contestants)]
        for c in order:
            times[c.name].append(c.deploy())
        log(
            f"round {r + 1}/{rounds}: "
            + ", ".join(f"{c.name} {times[c.name][-1] * 1000:.0f} ms" for c in contestants)
        )
    ratios = {
        f"{c.name}/cli": median([x / y for x, y in zip(times[c.name], times["cli"], strict=True)])
        for c in contestants
        if c.name != "cli"
    }
    diffs = {
        f"{c.name}-floor_ms": median(
            [(x - y) * 1000 for x, y in zip(times[c.name], times["floor"], strict=True)]
        )
        for c in contestants
        if c.name != "floor"
    }
    # What the process adds to the library deploy, and a change against its baseline.
    for other in ("ours-lib", "ours-base"):
        if other in times:
            diffs[f"ours-{other}_ms"] = median(
                [(x - y) * 1000 for x, y in zip(times["ours"], times[other], strict=True)]
            )
    return {
        "foreign_container_starts": foreign_starts(bench, since),
        "rounds": rounds,
        "times_ms": {k: [round(v * 1000, 1) for v in vs] for k, vs in times.items()},
        "median_ms": {k: round(median(vs) * 1000, 1) for k, vs in times.items()},
        "ratio_median_of_pairs": {k: round(v, 3) for k, v in ratios.items()},
        "diff_median_of_pairs_ms": {k: round(v, 1) for k, v in diffs.items()},
        "ours_minus_floor_of_medians_ms": round(
            (median(times["ours"]) - median(times["floor"])) * 1000, 1
        ),
    }


# -- start-up ---------------------------------------------------------------------------------


def bench_help(bench: Bench) -> dict[str, Any]:
    cache = Path(tempfile.mkdtemp(prefix="dokku-tasks-bench-cache-"))
    with_index = {**bench.env, "XDG_CACHE_HOME": str(cache)}

    def timed(argv: list[str], env: dict[str, str]) -> float:
        began = time.perf_counter()
        subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True
        )
        return (time.perf_counter() - began) * 1000

    def without_index() -> dict[str, str]:
        # A cache directory of its own each time: the plugins are loaded and the index written.
        return {**bench.env, "XDG_CACHE_HOME": tempfile.mkdtemp(dir=cache)}

    n = bench.args.help_runs
    runs = {
        "dokku-tasks --help": ([bench.script, "--help"], lambda: with_index),
        "dokku-tasks --help (no command index: loads the plugins)": (
            [bench.script, "--help"],
            without_index,
        ),
        "python -c pass (interpreter + site)": ([sys.executable, "-c", "pass"], lambda: bench.env),
        "python -S -c pass (bare interpreter)": (
            [sys.executable, "-S", "-c", "pass"],
            lambda: bench.env,
        ),
        "python -c 'import click'": ([sys.executable, "-c", "import click"], lambda: bench.env),
        "python -c 'import dokku_tasks.cli'": (
            [sys.executable, "-c", "import dokku_tasks.cli"],
            lambda: bench.env,
        ),
    }
    for argv, env in runs.values():  # warm the page cache (and write the index)
        timed(argv, env())
    medians = {
        label: round(median([timed(argv, env()) for _ in range(n)]), 1)
        for label, (argv, env) in runs.items()
    }
    shutil.rmtree(cache, ignore_errors=True)
    imports = importtime(bench, "import dokku_tasks.cli", bench.args.importtime_top)
    return {"runs": n, "median_ms": medians, "importtime_cli": imports}


def importtime(bench: Bench, code: str, top: int) -> dict[str, Any]:
    """``python -X importtime -c CODE``: the biggest cumulative and self import times (µs)."""
    samples: list[list[tuple[str, int, int]]] = []
    for _ in range(5):
        err = run([sys.executable, "-X", "importtime", "-c", code], env=bench.env).stderr
        rows = []
        for line in err.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cum_us, name = line[len("import time:") :].split("|", 2)
            rows.append((name.rstrip(), int(self_us), int(cum_us)))
        samples.append(rows)
    # median over the 5 runs, per module
    per: dict[str, list[tuple[int, int]]] = {}
    for rows in samples:
        for name, s, c in rows:
            per.setdefault(name, []).append((s, c))
    agg = {n: (median([s for s, _ in v]), median([c for _, c in v])) for n, v in per.items()}
    by_cum = sorted(agg.items(), key=lambda kv: -kv[1][1])[:top]
    by_self = sorted(agg.items(), key=lambda kv: -kv[1][0])[:top]
    return {
        "code": code,
        "top_cumulative_us": [[n, int(c)] for n, (_, c) in by_cum],
        "top_self_us": [[n, int(s)] for n, (s, _) in by_self],
        "modules": len(agg),
        "packages_cumulative_us": {
            n.strip(): int(c)
            for n, (_, c) in agg.items()
            if n.strip()
            in (
                "click",
                "attrs",
                "attr",
                "pluggy",
                "docker",
                "requests",
                "urllib3",
                "certifi",
                "dokku_tasks",
                "dokku_tasks.settings",
                "site",
                "dokku_tasks.cli",
            )
        },
    }


# -- 200 MB of task output ---------------------------------------------------------------------


def bench_rss(bench: Bench) -> dict[str, Any]:
    """Deploy an app whose predeploy prints 200 MB; the CLI process's peak RSS, and whether its
    stdout arrived line by line while the task ran."""
    app = bench.app("rss")
    total = bench.args.rss_bytes
    command = f"yes {BIG_LINE} | head -c {total}"
    source = bench.write_source(
        "src-rss", {"scripts": {"dokku": {"predeploy": command}}}, f"web: {WEB_CMD}\n"
    )
    expected = total // (len(BIG_LINE) + 1)
    argv = bench.dt("deploy", app, "--source", str(source), "--image", bench.image)
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bench.env)
    assert proc.stdout is not None
    first_task_line = None
    end_marker = None
    task_lines = 0
    other_lines = 0
    checkpoints: list[tuple[float, int]] = []
    indented = b"       " + BIG_LINE.encode()
    for raw in proc.stdout:
        now = time.perf_counter() - began
        if raw.startswith(indented):
            task_lines += 1
            if first_task_line is None:
                first_task_line = now
            if task_lines % 500_000 == 0:
                checkpoints.append((round(now, 2), task_lines))
        else:
            other_lines += 1
            if b"End of" in raw and b"predeploy" in raw:
                end_marker = now
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"rss deploy failed: {stderr.decode()[-2000:]}")
    # The same deploy with stdout to /dev/null: no reader competing for the CPUs.
    began = time.perf_counter()
    quiet = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=bench.env)
    quiet_err = quiet.stderr.read() if quiet.stderr else b""
    _, quiet_status, quiet_usage = os.wait4(quiet.pid, 0)
    quiet_wall = time.perf_counter() - began
    quiet.returncode = os.waitstatus_to_exitcode(quiet_status)
    if quiet.returncode != 0:
        raise RuntimeError(f"rss deploy failed: {quiet_err.decode()[-2000:]}")
    return {
        "bytes": total,
        "expected_lines": expected,
        "task_lines_received": task_lines,
        "other_lines": other_lines,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "wall_s": round(elapsed, 2),
        "time_to_first_task_line_s": round(first_task_line or -1, 3),
        "time_to_end_of_task_s": round(end_marker or -1, 2),
        "throughput_mb_s": round(
            total / 1e6 / ((end_marker or elapsed) - (first_task_line or 0)), 1
        ),
        "lines_seen_at": checkpoints,
        "devnull_wall_s": round(quiet_wall, 2),
        "devnull_peak_rss_mb": round(quiet_usage.ru_maxrss / 1024, 1),
        "devnull_cpu_s": round(quiet_usage.ru_utime + quiet_usage.ru_stime, 2),
        "floor_drain": floor_drain(bench, command),
    }


def floor_drain(bench: Bench, command: str) -> dict[str, Any]:
    """The engine's own pace: the same task through the SDK's attach stream, bytes only."""
    import docker

    api = docker.APIClient(version="auto", timeout=300)
    cid = api.create_container(
        bench.image, command=shell_argv(command), host_config=api.create_host_config()
    )["Id"]
    try:
        stream = api.attach(cid, stdout=True, stderr=True, stream=True, demux=True)
        began = time.perf_counter()
        api.start(cid)
        received = sum(len(out) for out, _ in stream if out)
        api.wait(cid)
        elapsed = time.perf_counter() - began
    finally:
        api.remove_container(cid, force=True)
        api.close()
    return {
        "bytes": received,
        "task_s": round(elapsed, 2),
        "mb_s": round(received / 1e6 / elapsed, 1),
    }


# -- app-json:report over 1,000 apps -----------------------------------------------------------


def bench_report(bench: Bench) -> dict[str, Any]:
    root = bench.work / "root-report"
    n = bench.args.apps
    for i in range(n):
        (root / "apps" / f"app-{i:04d}").mkdir(parents=True)
    # one app in ten with its own appjson-path, and a global one, as a real host might have
    for i in range(0, n, 10):
        prop = root / "config" / "app-json" / f"app-{i:04d}" / "appjson-path"
        prop.parent.mkdir(parents=True)
        prop.write_text("deploy/app.json")
    glob = root / "config" / "app-json" / "--global" / "appjson-path"
    glob.parent.mkdir(parents=True)
    glob.write_text("app.json")

    def timed(*args: str) -> tuple[float, int]:
        began = time.perf_counter()
        out = run(bench.dt(*args, root=root), env=bench.env).stdout
        return time.perf_counter() - began, out.count("\n")

    result: dict[str, Any] = {"apps": n}
    for label, args in {
        "app-json:report": ("app-json:report",),
        "app-json:report --format json": ("app-json:report", "--format", "json"),
        "app-json:report ONE-APP": ("app-json:report", "app-0001"),
    }.items():
        timed(*args)
        samples = [timed(*args) for _ in range(bench.args.report_runs)]
        result[label] = {
            "median_s": round(median([s for s, _ in samples]), 3),
            "lines": samples[0][1],
        }
    # where the time goes, in-process (after imports): listing, plugin manager, sections
    code = textwrap.dedent(
        f"""
        import time, io, contextlib
        t0 = time.perf_counter()
        from dokku_tasks import cli, report, settings
        from dokku_tasks.apps import AppRegistry
        from dokku_tasks.properties import PropertyStore
        from dokku_tasks.manager import get_plugin_manager
        t1 = time.perf_counter()
        apps = AppRegistry({str(root)!r}).list()
        t2 = time.perf_counter()
        from dokku_tasks.hooks import Hooks
        ns = Hooks(get_plugin_manager()).settings.namespace("app-json")
        t3 = time.perf_counter()
        store = PropertyStore({str(root)!r})
        args = report.parse_report_args("app-json:report", [])
        lines = []
        shared = settings.global_values(store, ns)
        for app in apps:
            lines += report.render(app, settings.report_section(store, ns, app, shared), args)
        t4 = time.perf_counter()
        print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, len(lines))
        """
    )
    parts = [
        list(map(float, run([sys.executable, "-c", code], env=bench.env).stdout.split()))
        for _ in range(5)
    ]
    result["in_process_ms"] = {
        name: round(median([p[i] for p in parts]) * 1000, 1)
        for i, name in enumerate(
            ["import cli", "list apps", "get_plugin_manager", "sections + render"]
        )
    }
    return result


# -- reading app.json and the Procfile from an image -------------------------------------------


def bench_image_read(bench: Bench) -> dict[str, Any]:
    """Deploy with --image only; count container creates and starts of the app by docker events."""
    app = bench.app("imgread")
    since = time.time()
    began = time.perf_counter()
    result = run(bench.dt("deploy", app, "--image", bench.image), env=bench.env)
    wall = time.perf_counter() - began
    time.sleep(1.0)  # so that --until lies in the past and the events query returns at once
    until = time.time()
    events = run(
        [
            bench.docker,
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{until:.3f}",
            "--filter",
            "type=container",
            "--filter",
            f"label={APP_LABEL}={app}",
            "--filter",
            "event=create",
            "--filter",
            "event=start",
            "--format",
            "{{json .}}",
        ]
    ).stdout
    created: dict[str, dict[str, str]] = {}
    started: list[str] = []
    for line in events.splitlines():
        event = json.loads(line)
        attrs = event.get("Actor", {}).get("Attributes", {})
        if event.get("Action") == "create":
            created[event["id"]] = attrs
        elif event.get("Action") == "start":
            started.append(event["id"])
    # the read container is the one that is neither a task nor a process container
    readers = [
        cid for cid, a in created.items() if not a.get(TASK_LABEL) and not a.get(PROCESS_LABEL)
    ]
    tasks = [cid for cid, a in created.items() if a.get(TASK_LABEL)]
    processes = [cid for cid, a in created.items() if a.get(PROCESS_LABEL)]
    ran_tasks = result.stdout.count("Executing ")

    # What the read costs: the same redeploy with --image only (files read from the image) and
    # with --source too (files read from the source tree), alternated; median of the pairs.
    from_image = bench.dt("deploy", app, "--image", bench.image)
    from_source = bench.dt("deploy", app, "--source", str(bench.source), "--image", bench.image)
    pairs = []
    for i in range(bench.args.image_read_runs):
        order = [from_image, from_source] if i % 2 == 0 else [from_source, from_image]
        walls = {}
        for argv in order:
            began = time.perf_counter()
            run(argv, env=bench.env)
            walls[id(argv)] = time.perf_counter() - began
        pairs.append((walls[id(from_image)], walls[id(from_source)]))
    return {
        "deploy_wall_s": round(wall, 3),
        "tasks_run": ran_tasks,
        "containers_created": len(created),
        "reader_containers": len(readers),
        "task_containers": len(tasks),
        "process_containers": len(processes),
        "start_events": len(started),
        "reader_starts": sum(1 for cid in started if cid in readers),
        "starts_match_tasks_plus_processes": len(started) == ran_tasks + len(processes),
        "redeploy_image_only_median_s": round(median([a for a, _ in pairs]), 3),
        "redeploy_with_source_median_s": round(median([b for _, b in pairs]), 3),
        "read_cost_median_of_pairs_ms": round(median([(a - b) * 1000 for a, b in pairs]), 1),
    }


# -- where ours spends its time beyond the floor ------------------------------------------------


def bench_profile(bench: Bench) -> dict[str, Any]:
    """Break ``ours - floor`` down.

    1. the start-up stages of a deploy process, each timed in fresh interpreters;
    2. ``python -X importtime`` of what a deploy imports;
    3. every Docker API call of a warm library-level deploy and of a floor deploy, timed;
    4. cProfile of a library-level deploy.
    """
    stages_code = textwrap.dedent(
        """
        import time
        t0 = time.perf_counter()
        import dokku_tasks.cli
        t1 = time.perf_counter()
        from dokku_tasks import pipeline
        import dokku_tasks.engine
        t2 = time.perf_counter()
        from dokku_tasks.manager import get_plugin_manager
        pm = get_plugin_manager()
        t3 = time.perf_counter()
        from dokku_tasks.engine import Engine
        e = Engine.connect(); e.close()
        t4 = time.perf_counter()
        print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
        """
    )
    stages = [
        run([sys.executable, "-c", stages_code], env=bench.env).stdout.split() for _ in range(9)
    ]
    names = [
        "import dokku_tasks.cli",
        "import pipeline + engine (docker SDK)",
        "get_plugin_manager()",
        "Engine.connect() (+ GET /version)",
    ]
    startup = {
        name: round(median([float(s[i]) for s in stages]) * 1000, 1) for i, name in enumerate(names)
    }
    deploy_imports = importtime(
        bench,
        "import dokku_tasks.cli; from dokku_tasks import pipeline, engine; "
        "from dokku_tasks.manager import get_plugin_manager; get_plugin_manager()",
        bench.args.importtime_top,
    )

    import docker
    import requests

    calls: list[tuple[str, str, float]] = []
    original = requests.Session.request

    def traced(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(self, method, url, *args, **kwargs)
        finally:
            path = url.split("localhost", 1)[-1]
            parts = [
                "{id}" if len(p) >= 40 or p.startswith("sha256:") else p
                for p in path.split("?")[0].split("/")
            ]
            if len(parts) > 2 and parts[2] == "images" and parts[-1] in ("json", "tag"):
                parts[3:-1] = ["{ref}"]
            calls.append((method, "/".join(parts[2:]) or path, time.perf_counter() - began))

    def trace(contestant: Any, runs: int = 5) -> dict[str, Any]:
        contestant.deploy()  # warm: the app has a web container to replace
        samples = []
        requests.Session.request = traced  # type: ignore[method-assign]
        try:
            for _ in range(runs):
                calls.clear()
                wall = contestant.deploy() * 1000
                samples.append((wall, list(calls)))
        finally:
            requests.Session.request = original  # type: ignore[method-assign]
        kinds: dict[str, list[list[float]]] = {}
        for _, sample in samples:
            per: dict[str, list[float]] = {}
            for method, path, secs in sample:
                per.setdefault(f"{method} {path}", []).append(secs * 1000)
            for kind, values in per.items():
                kinds.setdefault(kind, []).append([len(values), sum(values)])
        walls = [w for w, _ in samples]
        api = [sum(c for *_, c in sample) * 1000 for _, sample in samples]
        return {
            "wall_median_ms": round(median(walls), 1),
            "api_median_ms": round(median(api), 1),
            "outside_api_median_ms": round(
                median([w - a for w, a in zip(walls, api, strict=True)]), 1
            ),
            "calls": len(samples[0][1]),
            "by_call": {
                k: [int(median([n for n, _ in v])), round(median([t for _, t in v]), 1)]
                for k, v in kinds.items()
            },
            "sequence": [[m, p, round(c * 1000, 1)] for m, p, c in samples[0][1]],
        }

    api = docker.APIClient(version="auto", timeout=120)
    lib = OursLibrary(bench)
    floor = Floor(bench, api, role="pfloor")
    traces = {"ours-lib": trace(lib), "floor": trace(floor)}

    profiler = cProfile.Profile()
    profiler.enable()
    lib.deploy()
    profiler.disable()
    cumulative = io.StringIO()
    pstats.Stats(profiler, stream=cumulative).sort_stats("cumulative").print_stats(
        bench.args.profile_top
    )
    tottime = io.StringIO()
    pstats.Stats(profiler, stream=tottime).sort_stats("tottime").print_stats(15)
    return {
        "startup_ms": startup,
        "deploy_importtime": deploy_imports,
        "api_trace": traces,
        "cprofile_cumulative": _trim_pstats(cumulative.getvalue()),
        "cprofile_tottime": _trim_pstats(tottime.getvalue()),
    }


# -- what-if: the measured effect of proposed changes, emulated without editing the package ------

#: The console script, as setup.cfg's entry point runs it.
_AS_IS = """
import sys
from dokku_tasks.cli import main
sys.argv = ["dokku-tasks", *sys.argv[1:]]
main()
"""

#: Proposal: no garbage collection during start-up (imports, plugin loading), the collector back
#: on once the plugin manager exists, and every object frozen before the interpreter exits.
_GC_WRAP = """
import gc, sys
from dokku_tasks import cli
gc.disable()
_plugin_manager = cli._plugin_manager
def plugin_manager():
    try:
        return _plugin_manager()
    finally:
        gc.enable()
cli._plugin_manager = plugin_manager
try:
{body}
finally:
    gc.freeze()
"""


def _indent(code: str) -> str:
    return textwrap.indent(code.strip(), "    ")


_MAIN = """
sys.argv = ["dokku-tasks", *sys.argv[1:]]
cli.main()
"""
_GC_PATCH = _GC_WRAP.format(body=_indent(_MAIN))

#: Proposal: commands that never talk to the engine do not import the Docker SDK.  Emulated by a
#: stand-in for dokku_tasks.engine (the label constants, and names that are only ever called
#: by a deploy), which is what the plugins would see if they imported the engine lazily.
_NO_DOCKER_PATCH = """
import sys, types
class _Engine(types.ModuleType):
    APP_LABEL = "com.dokku.app-name"
    PROCESS_LABEL = "com.dokku.process-type"
    TASK_LABEL = "dokku_phase_script"
    PREDEPLOY_LABEL = "com.dokku.predeploy-phase"
    def __getattr__(self, name):
        return type(name, (), {})
sys.modules["dokku_tasks.engine"] = _Engine("dokku_tasks.engine")
from dokku_tasks.cli import main
sys.argv = ["dokku-tasks", *sys.argv[1:]]
main()
assert "docker" not in sys.modules
"""

#: What a deploy process does before its first container step, and its exit.
_DEPLOY_STARTUP = """
from dokku_tasks import cli
pm = cli._plugin_manager()
from dokku_tasks import pipeline
from dokku_tasks.engine import Engine
engine = Engine.connect()
engine.image({image!r})
engine.close()
"""


def _ab(bench: Bench, variants: dict[str, list[str]], runs: int) -> dict[str, Any]:
    """Run the variants alternately (order flipped every run); medians and median of diffs."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for i in range(runs):
        for name in names if i % 2 == 0 else names[::-1]:
            began = time.perf_counter()
            run(variants[name], env=bench.env)
            times[name].append((time.perf_counter() - began) * 1000)
    base = names[0]
    return {
        "runs": runs,
        "median_ms": {k: round(median(v), 1) for k, v in times.items()},
        "median_saving_ms": {
            k: round(median([a - b for a, b in zip(times[base], times[k], strict=True)]), 1)
            for k in names[1:]
        },
    }


def bench_whatif(bench: Bench) -> dict[str, Any]:
    py = sys.executable
    report_root = bench.work / "root-report"
    if not report_root.is_dir():
        for i in range(bench.args.apps):
            (report_root / "apps" / f"app-{i:04d}").mkdir(parents=True)
    one = sorted((report_root / "apps").iterdir())[0].name
    gc_startup = _GC_WRAP.format(body=_indent(_DEPLOY_STARTUP.format(image=bench.image)))
    runs = bench.args.whatif_runs
    return {
        "gc_deploy_startup_and_exit": _ab(
            bench,
            {
                "as is": [py, "-c", _DEPLOY_STARTUP.format(image=bench.image)],
                "gc patch": [py, "-c", gc_startup],
            },
            runs,
        ),
        "gc_help": _ab(
            bench,
            {
                "as is": [py, "-c", _AS_IS, "--help"],
                "gc patch": [py, "-c", _GC_PATCH, "--help"],
            },
            runs,
        ),
        "report_1000_apps": _ab(
            bench,
            {
                "as is": [py, "-c", _AS_IS, "--root", str(report_root), "app-json:report"],
                "gc patch": [py, "-c", _GC_PATCH, "--root", str(report_root), "app-json:report"],
                "no docker import": [
                    py,
                    "-c",
                    _NO_DOCKER_PATCH,
                    "--root",
                    str(report_root),
                    "app-json:report",
                ],
            },
            runs,
        ),
        "report_one_app": _ab(
            bench,
            {
                "as is": [py, "-c", _AS_IS, "--root", str(report_root), "app-json:report", one],
                "no docker import": [
                    py,
                    "-c",
                    _NO_DOCKER_PATCH,
                    "--root",
                    str(report_root),
                    "app-json:report",
                    one,
                ],
            },
            runs,
        ),
    }


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.replace(str(Path.cwd()) + "/", "") for line in lines[start:] if line)


# -- main -------------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruptions() -> tuple[type[BaseException], ...]:
    """Ctrl-C, and the error the library's deploy turns a SIGINT/SIGTERM into (ours-lib)."""
    try:
        from dokku_tasks.errors import InterruptedDeployError
    except ImportError:
        return (KeyboardInterrupt,)
    return (KeyboardInterrupt, InterruptedDeployError)


def summarize(results: dict[str, Any]) -> list[str]:
    lines = []
    d = results.get("deploy")
    if d:
        lines.append(
            "deploy (median ms): " + ", ".join(f"{k} {v}" for k, v in d["median_ms"].items())
        )
        ratio = d["ratio_median_of_pairs"]["ours/cli"]
        diff = d["diff_median_of_pairs_ms"]["ours-floor_ms"]
        lines.append(
            f"  ours/cli {ratio} (target <= 1.0: {'met' if ratio <= 1.0 else 'MISSED'}); "
            f"floor/cli {d['ratio_median_of_pairs']['floor/cli']}"
        )
        lines.append(
            f"  ours - floor {diff} ms (target <= 200: {'met' if diff <= 200 else 'MISSED'})"
        )
        if "ours-base/cli" in d["ratio_median_of_pairs"]:
            lines.append(
                f"  ours-base/cli {d['ratio_median_of_pairs']['ours-base/cli']}; ours - ours-base "
                f"{d['diff_median_of_pairs_ms']['ours-ours-base_ms']} ms (median of pairs)"
            )
        if "ours-lib/cli" in d["ratio_median_of_pairs"]:
            lines.append(
                f"  ours - ours-lib {d['diff_median_of_pairs_ms']['ours-ours-lib_ms']} ms "
                "(median of pairs: the process's start-up and exit)"
            )
        lines.append(f"  containers started by others meanwhile: {d['foreign_container_starts']}")
        if "floor-overlap/cli" in d["ratio_median_of_pairs"]:
            lines.append(
                f"  floor-overlap - floor "
                f"{d['diff_median_of_pairs_ms']['floor-overlap-floor_ms']} ms"
            )
    h = results.get("help")
    if h:
        v = h["median_ms"]["dokku-tasks --help"]
        floor = h["median_ms"]["python -c 'import click'"]
        lines.append(
            f"--help {v} ms (target <= 100: {'met' if v <= 100 else 'MISSED'}); "
            f"python -c 'import click' {floor} ms"
        )
    r = results.get("rss")
    if r:
        lines.append(
            f"{r['bytes'] / 1e6:.0f} MB output: peak RSS {r['peak_rss_mb']} MB (target <= 100: "
            f"{'met' if r['peak_rss_mb'] <= 100 else 'MISSED'}), lines "
            f"{r['task_lines_received']}/{r['expected_lines']}, first line at "
            f"{r['time_to_first_task_line_s']} s of {r['wall_s']} s"
        )
    p = results.get("report")
    if p:
        v = p["app-json:report"]["median_s"]
        lines.append(
            f"app-json:report x{p['apps']}: {v} s (target <= 1: {'met' if v <= 1 else 'MISSED'})"
        )
    i = results.get("image-read")
    if i:
        lines.append(
            f"image read: reader containers {i['reader_containers']}, reader starts "
            f"{i['reader_starts']} (target 0: "
            f"{'met' if i['reader_starts'] == 0 else 'MISSED'}); starts "
            f"{i['start_events']} = tasks {i['tasks_run']} + processes "
            f"{i['process_containers']}: {i['starts_match_tasks_plus_processes']}"
        )
    f = results.get("profile")
    if f:
        for name, t in f["api_trace"].items():
            lines.append(
                f"traced {name}: {t['wall_median_ms']} ms = API {t['api_median_ms']} ms "
                f"in {t['calls']} calls + {t['outside_api_median_ms']} ms outside"
            )
        lines.append("start-up stages (ms): " + json.dumps(f["startup_ms"]))
    for name, error in results.get("errors", {}).items():
        lines.append(f"section {name} FAILED: {error}")
    w = results.get("whatif")
    if w:
        for name, ab in w.items():
            lines.append(
                f"what-if {name}: "
                + ", ".join(f"{k} {v} ms" for k, v in ab["median_ms"].items())
                + "; saving "
                + ", ".join(f"{k} {v} ms" for k, v in ab["median_saving_ms"].items())
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="deploy rounds (default 7)")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument("--base-image", default="dokku-tasks/busybox-tini:latest")
    parser.add_argument(
        "--no-tini",
        dest="tini",
        action="store_false",
        help="no tini ENTRYPOINT (then `sleep` is PID 1, ignores SIGTERM, and "
        "every web replacement waits out docker stop's 10 s)",
    )
    parser.add_argument(
        "--no-overlap",
        dest="overlap",
        action="store_false",
        help="skip the floor-overlap contestant",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also measure ours-base: the console script with PYTHONPATH=DIR, a directory "
        "holding another copy of the dokku_tasks package, in the same rounds",
    )
    parser.add_argument(
        "--no-library",
        dest="library",
        action="store_false",
        help="skip the ours-lib contestant (the library deploy in this process)",
    )
    parser.add_argument("--help-runs", type=int, default=20)
    parser.add_argument("--importtime-top", type=int, default=15)
    parser.add_argument("--rss-bytes", type=int, default=BIG_BYTES)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--report-runs", type=int, default=5)
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--whatif-runs", type=int, default=15)
    parser.add_argument("--image-read-runs", type=int, default=7)
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    compile_bytecode(args.baseline)
    bench = Bench(args)
    results: dict[str, Any] = {"run_id": bench.run_id, "targets": TARGETS}
    interrupted = False
    with sigterm_as_interrupt():
        try:
            bench.build_image()
            results["machine"] = machine(bench)
            log(
                f"machine: {json.dumps({k: results['machine'][k] for k in ('nproc', 'memory_mb', 'docker_engine')})}"
            )
            jobs: dict[str, Callable[[Bench], dict[str, Any]]] = {
                "deploy": bench_deploy,
                "help": bench_help,
                "rss": bench_rss,
                "report": bench_report,
                "image-read": bench_image_read,
                "profile": bench_profile,
                "whatif": bench_whatif,
            }
            for name in sections:
                log(f"== {name}")
                try:
                    results[name] = jobs[name](bench)
                except (RuntimeError, OSError, ValueError, KeyError, TypeError) as exc:
                    # One broken section (the package changed under it, say) spoils no other.
                    log(f"{name} failed: {type(exc).__name__}: {exc}")
                    results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
            results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
        except interruptions():
            interrupted = True
            log("interrupted")
        finally:
            # A second Ctrl-C must not cut the clean-up short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            bench.cleanup()
    print("\n".join(summarize(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
