#!/usr/bin/env python3
"""Benchmark for the stored config (issue 14): ``config:show`` over 1,000 keys, through the CLI.

Run after the README's setup (dokku-tasks installed in the python that runs this script)::

    python benchmarks/bench_config.py [--keys 1000] [--rounds 15] [--json OUT]

Each round runs, as subprocesses of the installed console script, in a rotating order:

``show``
    ``dokku-tasks --root R config:show APP`` with ``--keys`` values stored (the figure).
``show-empty``
    ``config:show`` of an app with no values: the same command without the keys.
``show-cold``
    ``show`` with no command index (a cache directory of its own each run), as the first run
    after installing or changing a plugin: every plugin is loaded and the index written.
``plugin-floor``
    ``ps:report --global --ps-computed-procfile-path``: a plugin command that reads one
    property and is built from every plugin's settings, so the cost of starting the CLI and
    loading all the plugins.

``show - show-empty`` is what 1,000 keys cost; ``show-cold - show`` what loading only the config
plugin (from the command index) saves.  The medians are printed (and written with ``--json``).
As ``bench_deploy.py`` does, the package is compiled to bytecode first and the children run
without ``PYTHONDONTWRITEBYTECODE``, as an installed package would.  The state root and the
cache directory (``$XDG_CACHE_HOME``, where the command index lives) are temporary
directories, removed at the end.  A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_deploy import child_env, compile_bytecode, console_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    from dokku_tasks.config_store import ConfigStore

    compile_bytecode()
    command = console_script()
    env = child_env()
    root = Path(tempfile.mkdtemp(prefix="bench-config-"))
    cache = Path(tempfile.mkdtemp(prefix="bench-config-cache-"))
    env = {**env, "XDG_CACHE_HOME": str(cache / "warm")}
    try:
        for app in ("app", "empty"):
            (root / "apps" / app).mkdir(parents=True)
        values = {f"KEY_{i:05d}": f"value {i} " + "x" * 40 for i in range(args.keys)}
        ConfigStore(root).set("app", values)
        contestants = {
            "show": [command, "--root", str(root), "config:show", "app"],
            "show-empty": [command, "--root", str(root), "config:show", "empty"],
            "show-cold": [command, "--root", str(root), "config:show", "app"],
            "plugin-floor": [
                command,
                "--root",
                str(root),
                "ps:report",
                "--global",
                "--ps-computed-procfile-path",
            ],
        }

        def env_of(name: str) -> dict[str, str]:
            if name != "show-cold":
                return env
            return {**env, "XDG_CACHE_HOME": tempfile.mkdtemp(dir=cache)}

        # One warm-up each: the command index and the page cache.
        for name, argv in contestants.items():
            subprocess.run(argv, env=env_of(name), check=True, capture_output=True)
        times: dict[str, list[float]] = {name: [] for name in contestants}
        names = list(contestants)
        for round_number in range(args.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                run_env = env_of(name)
                began = time.perf_counter()
                done = subprocess.run(contestants[name], env=run_env, capture_output=True)
                elapsed = time.perf_counter() - began
                if done.returncode != 0:
                    sys.exit(f"{name} failed: {done.stderr.decode()}")
                times[name].append(elapsed * 1000)
        lines = subprocess.run(
            contestants["show"], env=env, check=True, capture_output=True
        ).stdout.count(b"\n")
        medians = {name: statistics.median(values) for name, values in times.items()}
        result = {
            "keys": args.keys,
            "rounds": args.rounds,
            "lines_printed": lines,
            "median_ms": {name: round(value, 1) for name, value in medians.items()},
            "min_ms": {name: round(min(values), 1) for name, values in times.items()},
            "keys_cost_ms": round(medians["show"] - medians["show-empty"], 1),
            "index_saves_ms": round(medians["show-cold"] - medians["show"], 1),
            "load_average": os.getloadavg(),
            "python": sys.version.split()[0],
        }
        print(json.dumps(result, indent=2))
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
