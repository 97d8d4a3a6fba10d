#!/usr/bin/env python3
"""Swarm deploys on one node against three: what the registry push and the spread cost.

On the multi-node swarm of ``scripts/cluster.sh`` (the main engine as manager, two worker
engines, a registry), two apps are deployed in alternating rounds with the ``swarm`` scheduler,
each with a release task and ``--replicas`` web replicas:

* **one node**: no registry, so the deploy places everything on the manager (the image exists
  only there);
* **three nodes**: ``registry:set APP server REGISTRY``: the image is pushed, and the replicas
  spread over the three nodes, each worker pulling the image.

Every round deploys a new image of each app (a new top layer of ``--layer-kb`` random bytes,
as a new release of an app would have), so every three-node deploy pushes and pulls a layer.
The push is timed inside the deploy (the swarm plugin's ``push`` call).

Run as root after the README's setup::

    python benchmarks/bench_cluster.py [--rounds 5] [--replicas 3] [--layer-kb 1024] [--json OUT]

The cluster is brought up (``cluster.sh up 2``) when it is not up, and taken down at the end
only then.  Everything made carries the label ``com.dokku-tasks.bench-run=<run id>`` and is
removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SH = REPO / "scripts" / "cluster.sh"
BASE_IMAGE = "dokku-tasks/busybox:latest"
APP_LABEL = "com.dokku.app-name"
RUN_LABEL = "com.dokku-tasks.bench-run"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cluster(*args: str) -> str:
    done = subprocess.run(
        ["bash", str(CLUSTER_SH), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"cluster.sh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _workers_ready(client: Any) -> int:
    swarm = client.info().get("Swarm") or {}
    if not swarm.get("ControlAvailable"):
        return 0
    return sum(
        1
        for n in client.api.nodes()
        if n["Spec"].get("Role") == "worker" and n["Status"]["State"] == "ready"
    )


@contextlib.contextmanager
def cluster_up(client: Any) -> Iterator[dict[str, str]]:
    """The cluster's facts (``cluster.sh env``); brought up, and down after, when it was not."""
    made = _workers_ready(client) < 2
    if made:
        _log("bringing the cluster up (scripts/cluster.sh up 2) ...")
        _cluster("up", "2")
    try:
        yield dict(line.split("=", 1) for line in _cluster("env").splitlines() if "=" in line)
    finally:
        if made:
            _cluster("down")


@contextlib.contextmanager
def timed_pushes() -> Iterator[list[float]]:
    """Seconds of every push the swarm plugin makes in the block."""
    from dokku_tasks.plugins.swarm import services

    original = services.SwarmEngine.push
    seconds: list[float] = []

    def push(self: Any, repository: str, tag: str) -> str:
        began = time.perf_counter()
        try:
            return original(self, repository, tag)
        finally:
            seconds.append(time.perf_counter() - began)

    services.SwarmEngine.push = push  # type: ignore[method-assign]
    try:
        yield seconds
    finally:
        services.SwarmEngine.push = original  # type: ignore[method-assign]


def build(client: Any, scratch: Path, app: str, run: str, number: int, args: Any) -> str:
    context = scratch / f"{app}-{number}"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f'FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nCMD ["sleep", "3600"]\n'
    )
    (context / "app.json").write_text(
        json.dumps({"formation": {"web": {"quantity": args.replicas}}})
    )
    (context / "Procfile").write_text("release: echo migrated\nweb: sleep 3600\n")
    (context / "payload").write_bytes(os.urandom(args.layer_kb * 1024))
    tag = f"dokku-tasks-bench/{app}:v{number}"
    client.images.build(
        path=str(context), tag=tag, labels={APP_LABEL: app, RUN_LABEL: run}, rm=True
    )
    return tag


def remove_everything(client: Any, apps: Sequence[str], run: str) -> None:
    import docker.errors

    for app in apps:
        for service in client.services.list(filters={"label": f"{APP_LABEL}={app}"}):
            with contextlib.suppress(docker.errors.NotFound):
                service.remove()
        for container in client.containers.list(
            all=True, sparse=True, filters={"label": f"{APP_LABEL}={app}"}
        ):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
    for _ in range(3):
        images = client.images.list(filters={"label": f"{RUN_LABEL}={run}"})
        if not images:
            break
        for image in images:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="deploys of each app (default 5)")
    parser.add_argument("--replicas", type=int, default=3, help="web replicas (default 3)")
    parser.add_argument(
        "--layer-kb", type=int, default=1024, help="size of each new image layer (default 1024)"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    import docker

    from dokku_tasks.output import Output
    from dokku_tasks.pipeline import DeployRequest, deploy
    from dokku_tasks.properties import GLOBAL, PropertyStore

    client = docker.from_env()
    run = secrets.token_hex(4)
    one, three = f"bc1-{run}", f"bc3-{run}"
    times: dict[str, list[float]] = {one: [], three: []}
    pushes: list[float] = []
    spread: list[int] = []
    with cluster_up(client) as facts, tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "state"
        root.mkdir()
        store = PropertyStore(root)
        store.set("registry", three, "server", facts["CLUSTER_REGISTRY"])
        # Both apps are judged on the same checks: the swarm's update monitor only.
        store.set("checks", GLOBAL, "default-wait", "1")
        swarm_nodes = len(client.api.nodes())
        try:
            for number in range(1, args.rounds + 1):
                for app in (one, three) if number % 2 else (three, one):
                    image = build(client, Path(scratch), app, run, number, args)
                    with timed_pushes() as pushed:
                        began = time.perf_counter()
                        deploy(
                            DeployRequest(app=app, image=image, scheduler="swarm"),
                            root=root,
                            output=Output(quiet=True),
                        )
                        times[app].append(time.perf_counter() - began)
                    pushes += pushed
                    if app == three:
                        nodes = {
                            t["NodeID"]
                            for t in client.api.tasks(filters={"service": f"{app}-web"})
                            if t["Status"]["State"] == "running" and t["DesiredState"] == "running"
                        }
                        spread.append(len(nodes))
                _log(
                    f"round {number}: one node {times[one][-1]:.2f} s, "
                    f"three nodes {times[three][-1]:.2f} s (push {pushes[-1]:.2f} s)"
                )
        finally:
            remove_everything(client, [one, three], run)
    figures = {
        "rounds": args.rounds,
        "replicas": args.replicas,
        "layer_kb": args.layer_kb,
        "swarm_nodes": swarm_nodes,
        "one_node_seconds": [round(t, 3) for t in times[one]],
        "three_nodes_seconds": [round(t, 3) for t in times[three]],
        "push_seconds": [round(t, 3) for t in pushes],
        "nodes_running_web": spread,
        "median_one_node_s": round(statistics.median(times[one]), 3),
        "median_three_nodes_s": round(statistics.median(times[three]), 3),
        "median_push_s": round(statistics.median(pushes), 3),
    }
    print(
        f"swarm deploy (release + {args.replicas} web replicas), median of {args.rounds}: "
        f"one node {figures['median_one_node_s']} s, three nodes "
        f"{figures['median_three_nodes_s']} s; push {figures['median_push_s']} s "
        f"({args.layer_kb} KiB new layer); web tasks on {sorted(set(spread))} node(s)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
