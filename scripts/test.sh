#!/usr/bin/env bash
# Set the machine up (scripts/setup.sh), then run every check, stopping at the first failure:
#   ruff check, ruff format --check, mypy (strict, config in setup.cfg), the test suite under
#   coverage (arguments are passed to pytest), a coverage summary, and each plugin's own tests.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"

bash scripts/setup.sh

VENV="${DOKKU_TASKS_VENV:-.venv}"
case "$VENV" in
/*) ;;
*) VENV="$REPO_ROOT/$VENV" ;;
esac
export PATH="$VENV/bin:$PATH"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# pytest-xdist workers for the main suite (DOKKU_TASKS_TEST_WORKERS; 1 = no parallelism).
PYTEST_WORKERS="${DOKKU_TASKS_TEST_WORKERS:-4}"

step() { printf '\n==> %s\n' "$*"; }
fail() {
    printf '\ntest.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

step "ruff check"
ruff check . || fail "ruff check"

step "ruff format --check"
ruff format --check . || fail "ruff format --check (run: $VENV/bin/ruff format .)"

step "mypy"
mypy || fail "mypy"

# The cluster tests bring up scripts/cluster.sh's multi-node swarm themselves (tests/cluster.py)
# and take it down at the end; should pytest die first, this takes down what they left.  A
# cluster that was up before this script started is left alone.
if [ -f /var/lib/dokku-tasks-cluster/made ]; then
    cluster_was_up=1
else
    cluster_was_up=0
fi
cluster_down_if_left() {
    if [ "$cluster_was_up" = 0 ] && [ -f /var/lib/dokku-tasks-cluster/made ]; then
        printf '\ntest.sh: taking down the cluster the tests left\n' >&2
        bash scripts/cluster.sh down || true
    fi
}
# A build that fails keeps the images of the steps before the failure as cache, without the
# app's label, so no test's clean-up finds them.  Every test tree's Dockerfile carries the label
# com.dokku-tasks.test-tree (tests/conftest.py): once no test runs, what is left of those goes.
prune_test_build_cache() {
    if command -v docker >/dev/null 2>&1; then
        docker image prune --force --filter label=com.dokku-tasks.test-tree >/dev/null 2>&1 || true
    fi
}
on_exit() {
    cluster_down_if_left
    prune_test_build_cache
}
trap on_exit EXIT

rm -f .coverage .coverage.*
if [ "$#" -gt 0 ]; then
    step "pytest $* (under coverage, $PYTEST_WORKERS workers)"
    rc=0
    python -m pytest -n "$PYTEST_WORKERS" --cov --cov-report= "$@" || rc=$?
    case "$rc" in
    0) ;;
    5) fail "pytest collected no tests" ;;
    *) fail "pytest (exit $rc)" ;;
    esac
else
    # Most engine tests wait on the engine, not the CPU: several pytest-xdist workers overlap
    # those waits.  Two groups run beside them, each in a pytest process of its own, one test
    # after another: the tests that use the main engine's swarm (markers swarm and cluster;
    # the engine is in one swarm at a time), and those that time signals and deadlines or run
    # private engines (markers serial and private_engine), which a loaded machine would make
    # flaky.  (pytest-xdist's --dist loadgroup would group tests in one run, but it does not
    # with pytest 9.2: it renames an attribute that pytest no longer reads.)
    step "pytest (under coverage): $PYTEST_WORKERS workers, with two one-at-a-time groups beside them"
    lanes=(
        "swarm or cluster"
        "(serial or private_engine) and not swarm and not cluster"
    )
    pids=()
    logs=()
    for index in "${!lanes[@]}"; do
        logs+=("$(mktemp)")
        COVERAGE_FILE=".coverage.lane$index" python -m pytest -p no:xdist -m "${lanes[$index]}" \
            --cov --cov-report= >"${logs[$index]}" 2>&1 &
        pids+=("$!")
    done
    rc=0
    COVERAGE_FILE=.coverage.main python -m pytest -n "$PYTEST_WORKERS" \
        -m "not swarm and not cluster and not serial and not private_engine" \
        --cov --cov-report= || rc=$?
    codes="$rc"
    for index in "${!lanes[@]}"; do
        lane_rc=0
        wait "${pids[$index]}" || lane_rc=$?
        step "pytest -m '${lanes[$index]}' (ran beside the above)"
        cat "${logs[$index]}"
        rm -f "${logs[$index]}"
        codes="$codes/$lane_rc"
    done
    case "$codes" in
    0/0/0) ;;
    *5*) fail "pytest collected no tests in a group (exit codes $codes)" ;;
    *) fail "pytest (exit codes $codes: parallel run, swarm and cluster, serial)" ;;
    esac
    coverage combine .coverage.main .coverage.lane0 .coverage.lane1 >/dev/null
fi

step "coverage summary"
coverage report --skip-covered --skip-empty ||
    printf 'test.sh: warning: no coverage report (exit %d)\n' "$?" >&2

plugin_suites=0
for tests in plugins/*/tests; do
    [ -d "$tests" ] || continue
    if [ "$#" -gt 0 ]; then
        printf '\n(skipping %s: test.sh was given pytest arguments)\n' "$tests"
        continue
    fi
    step "pytest $tests"
    rc=0
    python -m pytest "$tests" || rc=$?
    case "$rc" in
    0) plugin_suites=$((plugin_suites + 1)) ;;
    5) fail "pytest collected no tests in $tests" ;;
    *) fail "pytest $tests (exit $rc)" ;;
    esac
done

printf '\ntest.sh: all checks passed (ruff, ruff format, mypy, pytest, %d plugin suite(s))\n' \
    "$plugin_suites"
