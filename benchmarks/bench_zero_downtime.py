#!/usr/bin/env python3
"""Zero downtime of the swarm scheduler, measured: failed requests during redeploys.

An app whose web process is busybox ``httpd -f -p 5000 -h /www`` (each image writes
``/www/index.html`` with its own version string) and an app.json ``startup`` HTTP healthcheck
(``path: /``, ``content: version N``) is deployed with ``--scheduler swarm --network NET`` on
an attachable overlay network ``NET``; a client container on ``NET`` requests
``http://APP-web:5000/`` (the service's DNS name, its virtual IP) every ``--interval``
seconds with busybox ``wget`` under a 1 s ``timeout``, and logs one ``ok``/``fail`` line per
request.  Then the app is redeployed ``--redeploys`` times, each time with a new version, and
the failed requests are counted.

Run after the README's setup (a Docker engine, the base images, dokku-tasks installed in the
python that runs this script)::

    python benchmarks/bench_zero_downtime.py [--redeploys 5] [--replicas 1] [--interval 0.1]
                                             [--json OUT]

The engine is made a one-node swarm (``docker swarm init --advertise-addr 127.0.0.1``) when
it is not one, and leaves it again at the end.  Everything this script creates carries the
label ``com.dokku-tasks.bench-run=<run id>`` (and the app's ``com.dokku.app-name``) and is
removed at the end, also on Ctrl-C or SIGTERM.  The tests reuse :func:`measure`
(``tests/test_swarm_checks_engine.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BASE_IMAGE = "dokku-tasks/busybox:latest"
APP_LABEL = "com.dokku.app-name"
RUN_LABEL = "com.dokku-tasks.bench-run"
PORT = 5000

#: The web process: httpd in the background, so that the shell's trap ends it at once on
#: SIGTERM (a PID 1 without a handler ignores SIGTERM, and would wait out the 10 s grace).
#: It starts serving ``START_DELAY`` seconds after the container starts, as a real app that
#: loads before it listens.
WEB_SH = """#!/bin/sh
trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
sleep START_DELAY & pid=$!
wait "$pid"
httpd -f -p "${PORT:-5000}" -h /www & pid=$!
wait "$pid"
"""

#: The client: one request every INTERVAL seconds, one line each: ``ok|fail UPTIME BODY``.
CLIENT_SH = """
while true; do
  t=$(cut -d' ' -f1 /proc/uptime)
  if body=$(timeout 1 wget -q -O - "$URL" 2>&1); then
    echo "ok $t $body"
  else
    echo "fail $t $body"
  fi
  sleep "$INTERVAL"
done
"""

_LINE = re.compile(r"(ok|fail) ([0-9.]+) ?(.*)")


def dockerfile(version: str) -> str:
    """The app's Dockerfile: app.json, Procfile and web.sh under /app, the page in /www."""
    return (
        f"FROM {BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\n"
        f'RUN mkdir -p /www && echo "version {version}" > /www/index.html\n'
    )


def app_files(
    version: str, replicas: int = 1, healthcheck: bool = True, start_delay: float = 0
) -> dict[str, str]:
    """app.json (the HTTP startup healthcheck, the formation), the Procfile and web.sh
    (serving ``start_delay`` seconds after it starts)."""
    app_json: dict[str, Any] = {
        "healthchecks": {}
        if not healthcheck
        else {
            "web": [
                {
                    "type": "startup",
                    "name": "home page",
                    "path": "/",
                    "content": f"version {version}",
                    "wait": 1,
                    "timeout": 2,
                    "attempts": 10,
                }
            ]
        },
        "formation": {"web": {"quantity": replicas}},
    }
    return {
        "app.json": json.dumps(app_json),
        "Procfile": "web: /app/web.sh\n",
        "web.sh": WEB_SH.replace("START_DELAY", f"{start_delay:g}"),
    }


@dataclass
class Measurement:
    """What one run saw: requests and failures while redeploying, and each redeploy's time."""

    url: str = ""
    requests: int = 0
    failures: int = 0
    redeploy_seconds: list[float] = field(default_factory=list)
    versions_seen: list[str] = field(default_factory=list)
    failure_lines: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        times = ", ".join(f"{s:.1f}" for s in self.redeploy_seconds)
        return (
            f"{self.requests} requests, {self.failures} failed, "
            f"{len(self.redeploy_seconds)} redeploys ({times} s)"
        )


def start_client(
    client: Any, network: str, url: str, labels: dict[str, str], interval: float
) -> Any:
    """The polling container on ``network`` (busybox, detached)."""
    return client.containers.run(
        BASE_IMAGE,
        ["sh", "-c", CLIENT_SH],
        environment={"URL": url, "INTERVAL": str(interval)},
        network=network,
        labels=labels,
        detach=True,
    )


def parse_log(text: str) -> list[tuple[bool, float, str]]:
    """``(ok, uptime, body or error)`` of each request the client logged."""
    found = []
    for line in text.splitlines():
        match = _LINE.fullmatch(line.strip())
        if match:
            found.append((match.group(1) == "ok", float(match.group(2)), match.group(3).strip()))
    return found


def reachable(client: Any, network: str, url: str, labels: dict[str, str]) -> bool:
    """Whether one request to ``url`` from a container on ``network`` succeeds (3 tries)."""
    import docker.errors

    script = 'for i in 1 2 3; do timeout 2 wget -q -O - "$URL" && exit 0; sleep 0.5; done; exit 1'
    try:
        client.containers.run(
            BASE_IMAGE,
            ["sh", "-c", script],
            environment={"URL": url},
            network=network,
            labels=labels,
            remove=True,
        )
    except docker.errors.ContainerError:
        return False
    return True


def service_url(client: Any, network: str, service: str, labels: dict[str, str]) -> str:
    """``http://SERVICE:5000/`` (the service's virtual IP), else ``http://tasks.SERVICE:5000/``.

    The virtual IP needs IPVS in the kernel (the ``ip_vs`` module); where it is missing the
    virtual IP answers nothing, and the client uses ``tasks.SERVICE``, the DNS round robin of
    the service's tasks.  The swarm keeps both through the same service binding: a task joins
    once it is healthy and leaves 2 s before it gets SIGTERM.
    """
    vip = f"http://{service}:{PORT}/"
    if reachable(client, network, vip, labels):
        return vip
    return f"http://tasks.{service}:{PORT}/"


def measure(
    client: Any,
    deploy_image: Callable[[str], None],
    images: Sequence[str],
    network: str,
    service: str,
    labels: dict[str, str],
    interval: float = 0.1,
    settle: float = 2.0,
) -> Measurement:
    """Deploy ``images[0]``, start polling ``service``, redeploy each later image, and count.

    ``deploy_image`` deploys one image (and raises when the deploy fails).  Requests are
    counted from the first successful one until ``settle`` seconds after the last redeploy.
    """
    deploy_image(images[0])
    url = service_url(client, network, service, labels)
    poller = start_client(client, network, url, labels, interval)
    try:
        deadline = time.monotonic() + 60
        while not any(ok for ok, _, _ in parse_log(_logs(poller))):
            if time.monotonic() > deadline:
                raise RuntimeError(f"The client never reached {url}: {_logs(poller)[-500:]}")
            time.sleep(0.2)
        result = Measurement(url=url)
        for image in images[1:]:
            began = time.monotonic()
            deploy_image(image)
            result.redeploy_seconds.append(round(time.monotonic() - began, 2))
        time.sleep(settle)
        lines = parse_log(_logs(poller))
    finally:
        with contextlib.suppress(Exception):
            poller.remove(force=True)
    first_ok = next(i for i, (ok, _, _) in enumerate(lines) if ok)
    counted = lines[first_ok:]
    result.requests = len(counted)
    result.failures = sum(1 for ok, _, _ in counted if not ok)
    result.failure_lines = [f"{t:.1f} {body}" for ok, t, body in counted if not ok]
    for ok, _, body in counted:
        if ok and body not in result.versions_seen:
            result.versions_seen.append(body)
    return result


#: Filled while a run deploys: the node names of the web service's running tasks.
_NODES_USED: dict[str, set[str]] = {}


def _record_nodes(client: Any, app: str) -> None:
    """Note the nodes the web service's running tasks are on, after each deploy."""
    names = {n["ID"]: n["Description"]["Hostname"] for n in client.api.nodes()}
    for task in client.api.tasks(filters={"service": f"{app}-web"}):
        if task["Status"]["State"] == "running" and task.get("NodeID") in names:
            _NODES_USED.setdefault(app, set()).add(names[task["NodeID"]])


def _logs(container: Any) -> str:
    return bytes(container.logs(stdout=True, stderr=True)).decode("utf-8", "replace")


# -- the stand-alone run --------------------------------------------------------------------


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def one_node_swarm(client: Any) -> Iterator[None]:
    """This engine as a swarm manager for the block (initialised and left when it was not)."""
    created = (client.info().get("Swarm") or {}).get("LocalNodeState") != "active"
    if created:
        client.swarm.init(advertise_addr="127.0.0.1")
    try:
        yield
    finally:
        if created:
            client.swarm.leave(force=True)


def remove_everything(client: Any, app: str, run_label: str, network: str) -> None:
    """Services and containers of ``app``, images of the run, then the network."""
    import docker.errors

    with contextlib.suppress(docker.errors.APIError):
        for service in client.services.list(filters={"label": f"{APP_LABEL}={app}"}):
            with contextlib.suppress(docker.errors.NotFound):
                service.remove()
    for container in client.containers.list(all=True, filters={"label": f"{APP_LABEL}={app}"}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for _ in range(3):
        images = client.images.list(filters={"label": f"{RUN_LABEL}={run_label}"})
        images += client.images.list(name=f"dokku/{app}")
        if not images:
            break
        for image in images:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)
    # Tasks leave the network a moment after their service is removed.
    for _ in range(50):
        try:
            client.networks.get(network).remove()
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            time.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redeploys", type=int, default=5, help="redeploys (default 5)")
    parser.add_argument("--replicas", type=int, default=1, help="web replicas (default 1)")
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between requests (default 0.1)"
    )
    parser.add_argument(
        "--no-healthcheck",
        dest="healthcheck",
        action="store_false",
        help="no app.json healthcheck: the default check (--default-wait) only, for comparison",
    )
    parser.add_argument(
        "--default-wait", type=int, default=2, help="checks default-wait (default 2)"
    )
    parser.add_argument(
        "--start-delay",
        type=float,
        default=1.0,
        help="seconds the web process takes before it serves (default 1)",
    )
    parser.add_argument(
        "--registry",
        default="",
        metavar="HOST:PORT",
        help="push to this registry (registry:set server), so the replicas may run on every "
        "node of a multi-node swarm (scripts/cluster.sh up; its registry is 10.213.77.1:5000)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    import docker

    from dokku_tasks.output import Output
    from dokku_tasks.pipeline import DeployRequest, deploy
    from dokku_tasks.properties import GLOBAL, PropertyStore

    client = docker.from_env()
    run = secrets.token_hex(4)
    app = f"zd-{run}"
    network = f"zd-{run}-net"
    labels = {APP_LABEL: app, RUN_LABEL: run}
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with (
        tempfile.TemporaryDirectory() as scratch,
        one_node_swarm(client),
    ):
        try:
            client.networks.create(network, driver="overlay", attachable=True, labels=labels)
            images = []
            for number in range(1, args.redeploys + 2):
                context = Path(scratch) / f"v{number}"
                context.mkdir()
                (context / "Dockerfile").write_text(dockerfile(str(number)))
                files = app_files(str(number), args.replicas, args.healthcheck, args.start_delay)
                for name, text in files.items():
                    (context / name).write_text(text)
                (context / "web.sh").chmod(0o755)
                tag = f"dokku-tasks-bench/{app}:v{number}"
                client.images.build(path=str(context), tag=tag, labels=labels, rm=True)
                images.append(tag)
            root = Path(scratch) / "state"
            root.mkdir()
            PropertyStore(root).set("checks", GLOBAL, "default-wait", str(args.default_wait))
            if args.registry:
                PropertyStore(root).set("registry", app, "server", args.registry)

            def deploy_image(image: str) -> None:
                deploy(
                    DeployRequest(app=app, image=image, scheduler="swarm", network=network),
                    root=root,
                    output=Output(quiet=True),
                )
                _record_nodes(client, app)

            _log(f"deploying {app} once, then {args.redeploys} redeploys ...")
            result = measure(
                client,
                deploy_image,
                images,
                network,
                f"{app}-web",
                labels,
                interval=args.interval,
            )
        finally:
            remove_everything(client, app, run, network)
    check = "an HTTP startup healthcheck" if args.healthcheck else "no healthcheck"
    print(
        f"zero downtime on swarm ({args.replicas} web replica(s), {check}, serving "
        f"{args.start_delay:g} s after start): {result.summary}"
    )
    print(f"requests to {result.url} every {args.interval} s")
    nodes = sorted(_NODES_USED.get(app, set()))
    print(f"nodes the swarm has (web tasks ran on {len(nodes)}): {', '.join(nodes) or '-'}")
    print(f"versions served, in order: {', '.join(result.versions_seen)}")
    for line in result.failure_lines:
        print(f"  failed at uptime {line}")
    if args.json:
        figures = {
            **asdict(result),
            "replicas": args.replicas,
            "interval": args.interval,
            "healthcheck": args.healthcheck,
            "start_delay": args.start_delay,
            "registry": args.registry,
            "nodes": nodes,
            "swarm_nodes": len(client.api.nodes()),
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
