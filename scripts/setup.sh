#!/usr/bin/env bash
# Prepare this machine for dokku-tasks development, tests and the demo.
#
#   1. apt packages: docker.io, busybox-static (/bin/busybox), tini (/usr/bin/tini-static)
#   2. a running Docker engine (starts dockerd in the background when none answers)
#   3. the offline base images dokku-tasks/busybox:latest and dokku-tasks/busybox-tini:latest
#   4. a virtualenv (${DOKKU_TASKS_VENV:-.venv}) with the project and its plugins installed editable
#
# Idempotent and quiet: it prints one line for each step it actually performs and stays silent
# otherwise. When a step fails, its captured output is shown and the script exits non-zero.
#
# Environment:
#   DOKKU_TASKS_VENV         virtualenv path, relative to the repo root unless absolute (.venv)
#   DOKKU_TASKS_DOCKERD_LOG  where a dockerd started here logs (/var/log/dokku-tasks-dockerd.log)
#   DOKKU_TASKS_DOCKERD_ARGS extra arguments for a dockerd started here (word-split)
#   DOKKU_TASKS_SETUP_FORCE  1: reinstall the virtualenv and rebuild the base images
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"

VENV="${DOKKU_TASKS_VENV:-.venv}"
case "$VENV" in
/*) ;;
*) VENV="$REPO_ROOT/$VENV" ;;
esac
DOCKERD_LOG="${DOKKU_TASKS_DOCKERD_LOG:-/var/log/dokku-tasks-dockerd.log}"
FORCE="${DOKKU_TASKS_SETUP_FORCE:-0}"

BASE_IMAGE=dokku-tasks/busybox:latest
TINI_IMAGE=dokku-tasks/busybox-tini:latest
BASE_LABEL=com.dokku-tasks.base
VERSION_LABEL=com.dokku-tasks.base-version
# Bump when the image recipes below change in a way the content hash cannot see.
RECIPE_VERSION=1

say() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}

# run_quiet DESCRIPTION CMD...: run CMD with its output captured; show it only on failure.
run_quiet() {
    local desc="$1" out rc=0
    shift
    out="$(mktemp)"
    "$@" >"$out" 2>&1 </dev/null || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf 'setup: error: %s failed (exit %d); its output:\n' "$desc" "$rc" >&2
        tail -n 60 "$out" >&2
        rm -f "$out"
        exit "$rc"
    fi
    rm -f "$out"
}

# Serialise concurrent runs (two shells running the tests at once must not race on apt,
# image builds or pip).
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/dokku-tasks-setup.lock"
    flock -w 900 9 || die "another scripts/setup.sh has held its lock for 15 minutes"
fi

# --- 1. system packages -------------------------------------------------------------------------

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
    missing+=(docker.io)
fi
# A dynamically linked busybox (package "busybox") cannot run in a FROM-scratch image.
if [ ! -x /bin/busybox ] || ! pkg_installed busybox-static; then
    missing+=(busybox-static)
fi
if [ ! -x /usr/bin/tini-static ]; then
    missing+=(tini)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: run this script as root to install them"
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    run_quiet "apt-get update" apt-get update -q
    run_quiet "apt-get install ${missing[*]}" \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    hash -r
fi
[ -x /bin/busybox ] || die "/bin/busybox is missing after installing busybox-static"
[ -x /usr/bin/tini-static ] || die "/usr/bin/tini-static is missing after installing tini"

# --- 2. a Docker engine -------------------------------------------------------------------------

engine_answers() {
    timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# dockerd_pids: the pids of running dockerd processes (reads /proc: procps may be absent).
dockerd_pids() {
    local comm pid
    for comm in /proc/[0-9]*/comm; do
        pid="${comm#/proc/}"
        pid="${pid%/comm}"
        if [ "$(cat "$comm" 2>/dev/null || true)" = dockerd ]; then
            printf '%s\n' "$pid"
        fi
    done
}

if ! engine_answers; then
    case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
    unix:///var/run/docker.sock | unix:///run/docker.sock) ;;
    *) die "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST" ;;
    esac
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found (install docker.io)"

    started_pid=""
    if [ -n "$(dockerd_pids)" ]; then
        # A dockerd exists but does not answer yet (still starting?): wait for it below.
        say "waiting for the running dockerd (pid $(dockerd_pids | paste -sd' '))"
    else
        # A hard-killed dockerd leaves its pid file behind, and a new one refuses to start.
        for pidfile in /var/run/docker.pid /run/docker.pid; do
            if [ -e "$pidfile" ]; then
                say "removing stale $pidfile"
                rm -f "$pidfile"
            fi
        done
        [ "$(id -u)" -eq 0 ] || die "no Docker engine answers; run this script as root to start dockerd"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        say "starting dockerd in the background (log: $DOCKERD_LOG)"
        # setsid + every stream redirected: dockerd outlives this script and holds none of its
        # pipes open (a CI runner reading our output must not wait for dockerd).
        # It runs from / so that it keeps no work tree busy, and without fd 9 (the setup lock).
        # shellcheck disable=SC2086
        (cd / && exec setsid dockerd ${DOKKU_TASKS_DOCKERD_ARGS:-} \
            >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&-) &
        started_pid=$!
    fi

    deadline=$((SECONDS + 60))
    until engine_answers; do
        if [ -n "$started_pid" ] && ! kill -0 "$started_pid" 2>/dev/null &&
            [ -z "$(dockerd_pids)" ]; then
            printf 'setup: error: dockerd exited during start-up; last lines of %s:\n' \
                "$DOCKERD_LOG" >&2
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            printf 'setup: error: the Docker engine did not answer "docker info" within 60 s\n' >&2
            if [ -n "$started_pid" ]; then
                printf 'setup: last lines of %s:\n' "$DOCKERD_LOG" >&2
                tail -n 30 "$DOCKERD_LOG" >&2 || true
            fi
            exit 1
        fi
        sleep 1
    done
    say "docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
fi

# --- 3. offline base images ---------------------------------------------------------------------

sha_of() { sha256sum "$@" | cut -d' ' -f1; }

image_label() { # image_label IMAGE LABEL: the label's value, empty when the image is absent
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# build_image TAG VERSION CONTEXT_DIR: (re)build TAG from CONTEXT_DIR unless it carries VERSION.
build_image() {
    local tag="$1" version="$2" context="$3"
    if [ "$FORCE" != 1 ] && [ "$(image_label "$tag" "$VERSION_LABEL")" = "$version" ]; then
        return 0
    fi
    say "building $tag"
    # The classic builder resolves FROM <local tag> without a registry (setup, not the library,
    # so the docker CLI is fine here).
    run_quiet "docker build $tag" env DOCKER_BUILDKIT=0 docker build --quiet --pull=false \
        --label "$BASE_LABEL=1" --label "$VERSION_LABEL=$version" -t "$tag" "$context"
}

BUILD_DIR="$(mktemp -d)"
trap 'rm -rf "$BUILD_DIR"' EXIT

mkdir -p "$BUILD_DIR/busybox" "$BUILD_DIR/tini"
cp /bin/busybox "$BUILD_DIR/busybox/busybox"
cat >"$BUILD_DIR/busybox/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
EOF
base_version="$(printf '%s\n' "$RECIPE_VERSION" \
    "$(sha_of "$BUILD_DIR/busybox/Dockerfile" "$BUILD_DIR/busybox/busybox")" | sha256sum |
    cut -c1-16)"
build_image "$BASE_IMAGE" "$base_version" "$BUILD_DIR/busybox"

cp /usr/bin/tini-static "$BUILD_DIR/tini/tini"
cat >"$BUILD_DIR/tini/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY tini /usr/bin/tini
EOF
# The tini image is rebuilt whenever its base changes.
tini_version="$(printf '%s\n' "$RECIPE_VERSION" "$base_version" \
    "$(sha_of "$BUILD_DIR/tini/Dockerfile" "$BUILD_DIR/tini/tini")" | sha256sum | cut -c1-16)"
build_image "$TINI_IMAGE" "$tini_version" "$BUILD_DIR/tini"

# --- 4. the virtualenv --------------------------------------------------------------------------

plugin_dirs=()
for dir in plugins/*/; do
    [ -d "$dir" ] || continue
    if [ -f "$dir/setup.cfg" ] || [ -f "$dir/pyproject.toml" ]; then
        plugin_dirs+=("${dir%/}")
    fi
done

# The stamp changes whenever anything that decides what gets installed changes.
stamp_files=(setup.cfg pyproject.toml)
for dir in "${plugin_dirs[@]+"${plugin_dirs[@]}"}"; do
    for f in "$dir/setup.cfg" "$dir/pyproject.toml" "$dir/setup.py"; do
        if [ -f "$f" ]; then stamp_files+=("$f"); fi
    done
done
stamp="$(
    {
        printf '%s\n' "$REPO_ROOT" "$(python3 -c 'import sys; print(sys.version)')"
        printf '%s\n' "${plugin_dirs[@]+"${plugin_dirs[@]}"}"
        # An editable install maps the top-level packages that existed when it ran: a package
        # that appears later (or a missing __init__.py that is added) needs a reinstall.
        for f in ./*/__init__.py plugins/*/*/__init__.py plugins/*/src/*/__init__.py; do
            if [ -f "$f" ]; then printf 'package %s\n' "$f"; fi
        done
        for f in "${stamp_files[@]}"; do
            if [ -f "$f" ]; then printf '%s %s\n' "$f" "$(sha_of "$f")"; fi
        done
    } | sha256sum | cut -d' ' -f1
)"
STAMP_FILE="$VENV/.dokku-tasks-setup.stamp"

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1
}

if ! venv_ok; then
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            die "python3 cannot create virtualenvs (install python3-venv)"
        fi
        say "installing python3-venv with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        run_quiet "apt-get update" apt-get update -q
        run_quiet "apt-get install python3-venv" apt-get install -y -q python3-venv
    fi
    say "creating virtualenv $VENV"
    rm -rf "$VENV"
    run_quiet "python3 -m venv" python3 -m venv "$VENV"
    rm -f "$STAMP_FILE"
fi

if [ "$FORCE" = 1 ] || [ "$(cat "$STAMP_FILE" 2>/dev/null || true)" != "$stamp" ] ||
    [ ! -x "$VENV/bin/dokku-tasks" ]; then
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    say "upgrading pip in $VENV"
    run_quiet "pip upgrade" "$VENV/bin/python" -m pip install --quiet --upgrade pip
    pip_args=(-e ".[test]")
    for dir in "${plugin_dirs[@]+"${plugin_dirs[@]}"}"; do
        pip_args+=(-e "${dir}[test]") # pip only warns for a plugin without a "test" extra
    done
    say "installing dokku-tasks${plugin_dirs[*]:+ and ${plugin_dirs[*]}} (editable) into $VENV"
    run_quiet "pip install" "$VENV/bin/python" -m pip install --quiet "${pip_args[@]}"
    printf '%s\n' "$stamp" >"$STAMP_FILE"
fi
