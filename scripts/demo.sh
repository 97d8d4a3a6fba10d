#!/usr/bin/env bash
# Set the machine up (scripts/setup.sh), then deploy the demo app in examples/demo with
# dokku-tasks. State goes to $DOKKU_TASKS_ROOT (default /tmp/dokku-tasks-demo).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"

bash scripts/setup.sh

VENV="${DOKKU_TASKS_VENV:-.venv}"
case "$VENV" in
/*) ;;
*) VENV="$REPO_ROOT/$VENV" ;;
esac
export DOKKU_TASKS_ROOT="${DOKKU_TASKS_ROOT:-/tmp/dokku-tasks-demo}"

echo "demo: deploying examples/demo as app 'demo' (state in $DOKKU_TASKS_ROOT)"
# A config value: it reaches every task and process, never the committed image.
exec "$VENV/bin/dokku-tasks" deploy demo --source examples/demo -e GREETING=hello
