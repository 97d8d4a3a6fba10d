#!/usr/bin/env bash
# A multi-node Docker swarm on this one machine, for the cluster tests (tests/cluster.py).
#
#   scripts/cluster.sh up [N]   N worker engines (default 2) joined to the main engine's swarm,
#                               plus a plain-HTTP registry every engine trusts; idempotent
#   scripts/cluster.sh down     removes everything `up` made, and nothing else
#   scripts/cluster.sh status   what `up` made and whether it still runs
#   scripts/cluster.sh env      the cluster's facts as shell assignments (for tests and humans)
#
# Layout, all on addresses this script creates (no traffic leaves the machine):
#   - bridge dtc-br0 on the host with $NET.1/24: the swarm manager's address (the main engine)
#     and the registry's ($NET.1:5000, Debian's docker-registry, data under the state dir);
#   - worker K: network namespace dtc-wK, veth dtc-wKh (host end, on the bridge) / dtc-wKn
#     ($NET.(K+1), default route via $NET.1), its own UTS namespace (hostname dtc-wK, so swarm
#     node names tell the nodes apart), and a dockerd started with nsenter (engine pitfall 10:
#     `ip netns exec` hides the cgroup mounts), its socket, data, exec root and log under
#     $STATE_DIR/wK;
#   - one iptables rule in DOCKER-USER letting the bridge's members talk to each other: the
#     host's FORWARD policy is DROP (set by the main engine) and bridged frames go through it.
# Every item made is written to $STATE_DIR/made as it is made; `down` undoes exactly those
# items, newest first, so a swarm, a daemon.json or a registry entry that existed before `up`
# is left as it was.
#
# Environment: DOKKU_TASKS_CLUSTER_DIR (state dir, default /var/lib/dokku-tasks-cluster),
# DOKKU_TASKS_CLUSTER_NET (first three octets of the /24, default 10.213.77).
set -euo pipefail

STATE_DIR="${DOKKU_TASKS_CLUSTER_DIR:-/var/lib/dokku-tasks-cluster}"
NET="${DOKKU_TASKS_CLUSTER_NET:-10.213.77}"
BRIDGE=dtc-br0
HOST_IP="$NET.1"
REGISTRY="$HOST_IP:5000"
MADE="$STATE_DIR/made"
MAIN_DAEMON_JSON=/etc/docker/daemon.json
# The manager's overlay networks come from here, never from the cluster's own /24.
SWARM_ADDR_POOL=10.100.0.0/16

say() { printf 'cluster: %s\n' "$*"; }
die() {
    printf 'cluster: error: %s\n' "$*" >&2
    exit 1
}
record() { printf '%s\n' "$*" >>"$MADE"; }
made() { [ -f "$MADE" ] && grep -qxF "$*" "$MADE"; }
# unrecord LINE: forget one item once it is undone (so a failed `down` can be run again).
unrecord() {
    [ -f "$MADE" ] || return 0
    grep -vxF "$*" "$MADE" >"$MADE.tmp" || true
    mv "$MADE.tmp" "$MADE"
}

worker_dir() { printf '%s/w%s' "$STATE_DIR" "$1"; }
worker_sock() { printf 'unix://%s/docker.sock' "$(worker_dir "$1")"; }
worker_ip() { printf '%s.%s' "$NET" "$(($1 + 1))"; }

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.2 s until it succeeds.
wait_for() {
    local seconds="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
    [ -n "$what" ] || return 0
}

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS.
stop_pid() {
    local pid="$1" seconds="$2"
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_for "$seconds" "" sh -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
    wait_for 10 "" sh -c "! kill -0 $pid 2>/dev/null" || true
}

# pids_under DIR: processes whose command line names DIR (a worker's dockerd and containerd,
# and the containerd shims of its containers); never found by program name.
pids_under() {
    local dir="$1" proc cmdline
    for proc in /proc/[0-9]*; do
        # Captured, not piped into grep -q: under pipefail a writer that gets SIGPIPE when
        # grep exits early would turn a match into a miss.
        cmdline="$({ tr '\0' ' ' <"$proc/cmdline"; } 2>/dev/null || true)"
        case "$cmdline" in
        *"$dir/"*) printf '%s\n' "${proc#/proc/}" ;;
        esac
    done
}

main_dockerd_pid() {
    local pid
    pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    pid_alive "$pid" && printf '%s' "$pid"
}

need_tools() {
    [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, bridges, iptables, dockerd)"
    local missing=()
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >"$STATE_DIR/apt.log" 2>&1 ||
            die "apt-get install ${missing[*]} failed (see $STATE_DIR/apt.log)"
    fi
    docker info >/dev/null 2>&1 || die "the main Docker engine does not answer (run scripts/setup.sh)"
}

# --- up ----------------------------------------------------------------------------------------

up_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        record "bridge $BRIDGE"
        ip addr add "$HOST_IP/24" dev "$BRIDGE"
        ip link set "$BRIDGE" up
    elif ! made "bridge $BRIDGE"; then
        die "a bridge $BRIDGE exists that this script did not make; remove it or set DOKKU_TASKS_CLUSTER_NET"
    fi
    local rule=(DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT)
    if ! iptables -C "${rule[@]}" 2>/dev/null; then
        iptables -I "${rule[@]}"
        made "iptables" || record "iptables"
    fi
}

up_registry() {
    local dir="$STATE_DIR/registry" pid
    pid="$(cat "$dir/pid" 2>/dev/null || true)"
    if ! pid_alive "$pid"; then
        mkdir -p "$dir/data"
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
        # 9>&-: the registry must not hold this script's lock (see the end) for its lifetime.
        (cd / && exec setsid docker-registry serve "$dir/config.yml" </dev/null >"$dir/log" 2>&1 9>&-) &
        printf '%s\n' "$!" >"$dir/pid"
        made "registry" || record "registry"
    fi
    wait_for 20 registry curl -fsS "http://$REGISTRY/v2/" ||
        die "the registry did not answer on $REGISTRY (log: $dir/log)"
}

# The main engine trusts the plain-HTTP registry: an entry in daemon.json and a SIGHUP (dockerd
# reloads insecure-registries without a restart).
up_main_trust() {
    local trusted
    trusted="$(docker info --format '{{json .RegistryConfig.IndexConfigs}}')"
    case "$trusted" in *"\"$REGISTRY\""*) return 0 ;; esac
    local existed=0
    [ -f "$MAIN_DAEMON_JSON" ] && existed=1
    mkdir -p "$(dirname "$MAIN_DAEMON_JSON")"
    python3 - "$MAIN_DAEMON_JSON" "$REGISTRY" <<'EOF'
import json, os, sys
path, registry = sys.argv[1], sys.argv[2]
config = json.load(open(path)) if os.path.exists(path) else {}
entries = config.setdefault("insecure-registries", [])
if registry not in entries:
    entries.append(registry)
with open(path + ".tmp", "w") as f:
    json.dump(config, f, indent=2)
os.replace(path + ".tmp", path)
EOF
    if [ "$existed" = 1 ]; then record "trust-entry"; else record "trust-file"; fi
    local pid
    pid="$(main_dockerd_pid)" || die "cannot find the main dockerd's pid (/var/run/docker.pid)"
    kill -HUP "$pid"
    wait_for 20 "" sh -c "docker info --format '{{json .RegistryConfig.IndexConfigs}}' | grep -qF '\"$REGISTRY\"'" ||
        die "the main engine did not take $REGISTRY as an insecure registry after SIGHUP"
}

up_swarm() {
    local state addr services
    state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
    addr="$(docker info --format '{{.Swarm.NodeAddr}}')"
    if [ "$state" = active ] && [ "$addr" = "$HOST_IP" ]; then
        return 0
    fi
    if [ "$state" = active ]; then
        services="$(docker service ls -q | wc -l)"
        [ "$services" -eq 0 ] ||
            die "the main engine is in a swarm at $addr with $services service(s); leave it first"
        # An empty one-node swarm on another address (the swarm tests make one on 127.0.0.1):
        # workers cannot reach it there, so it is made again on the cluster's address.
        say "leaving the empty swarm at $addr"
        docker swarm leave --force >/dev/null
    fi
    docker swarm init --advertise-addr "$HOST_IP" --listen-addr "$HOST_IP:2377" \
        --default-addr-pool "$SWARM_ADDR_POOL" >/dev/null
    made "swarm" || record "swarm"
}

up_worker() {
    local k="$1" ns="dtc-w$1" dir ip pid token node
    dir="$(worker_dir "$k")"
    ip="$(worker_ip "$k")"
    if [ ! -e "/run/netns/$ns" ]; then
        ip netns add "$ns"
        record "netns $ns"
    fi
    if ! ip link show "${ns}h" >/dev/null 2>&1; then
        ip link add "${ns}h" type veth peer name "${ns}n"
        ip link set "${ns}n" netns "$ns"
        ip link set "${ns}h" master "$BRIDGE" up
        ip -n "$ns" addr add "$ip/24" dev "${ns}n"
        ip -n "$ns" link set "${ns}n" up
        ip -n "$ns" link set lo up
        ip -n "$ns" route add default via "$HOST_IP"
    fi
    mkdir -p "$dir"
    pid="$(cat "$dir/docker.pid" 2>/dev/null || true)"
    if ! pid_alive "$pid"; then
        rm -f "$dir/docker.pid"
        cat >"$dir/daemon.json" <<EOF
{
  "insecure-registries": ["$REGISTRY"],
  "cgroup-parent": "/$ns",
  "log-level": "warn"
}
EOF
        # setsid + streams redirected: the engine outlives this script and holds none of its
        # pipes.  unshare --uts gives the engine its own hostname (the swarm node's name).
        (cd / && exec setsid nsenter --net="/run/netns/$ns" -- unshare --uts -- sh -c \
            'hostname "$0" && exec "$@"' "$ns" dockerd -H "$(worker_sock "$k")" \
            --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
            --config-file "$dir/daemon.json" </dev/null >"$dir/dockerd.log" 2>&1 9>&-) &
        made "engine $k" || record "engine $k"
        wait_for 60 "" docker -H "$(worker_sock "$k")" info ||
            die "worker $k's engine did not answer (log: $dir/dockerd.log)"
    fi
    # A restarted engine rejoins by itself (its swarm state is in its data root): wait until
    # it is done ("pending" meanwhile) before deciding whether it must join.
    local state
    for _ in $(seq 1 300); do
        state="$(docker -H "$(worker_sock "$k")" info --format '{{.Swarm.LocalNodeState}}')"
        case "$state" in active | inactive) break ;; esac
        sleep 0.2
    done
    if [ "$state" != active ]; then
        token="$(docker swarm join-token -q worker)"
        docker -H "$(worker_sock "$k")" swarm join --token "$token" --advertise-addr "$ip" \
            --listen-addr "$ip:2377" "$HOST_IP:2377" >/dev/null
        node="$(docker -H "$(worker_sock "$k")" info --format '{{.Swarm.NodeID}}')"
        record "node $k $node"
    fi
}

cmd_up() {
    local workers="${1:-2}" k
    case "$workers" in
    '' | *[!0-9]*) die "up takes a number of workers, not '$workers'" ;;
    esac
    [ "$workers" -ge 1 ] && [ "$workers" -le 50 ] || die "between 1 and 50 workers, not $workers"
    mkdir -p "$STATE_DIR"
    chmod 0700 "$STATE_DIR"
    touch "$MADE"
    need_tools
    up_bridge
    up_registry
    up_main_trust
    up_swarm
    for k in $(seq 1 "$workers"); do
        up_worker "$k"
    done
    # Every worker is Ready before the tests place anything on it.
    wait_for 60 "" sh -c "[ \"\$(docker node ls --filter role=worker --format '{{.Status}}' | grep -c '^Ready$')\" -ge $workers ]" ||
        die "the workers did not become Ready (docker node ls)"
    cmd_env >"$STATE_DIR/cluster.env"
    say "up: manager $HOST_IP (the main engine), registry $REGISTRY, $workers worker(s):"
    docker node ls --format '  {{.Hostname}}  {{.Status}}  {{.Availability}}  {{.ManagerStatus}}' |
        sed 's/ *$//'
    say "facts for tests: $STATE_DIR/cluster.env; remove it all with: scripts/cluster.sh down"
}

# --- down --------------------------------------------------------------------------------------

down_worker() {
    local k="$1" dir pid p
    dir="$(worker_dir "$k")"
    pid="$(cat "$dir/docker.pid" 2>/dev/null || true)"
    if pid_alive "$pid"; then
        timeout 20 docker -H "$(worker_sock "$k")" swarm leave --force >/dev/null 2>&1 || true
        stop_pid "$pid" 20
    fi
    # A hard-killed engine leaves its containerd and shims: found by the directory only.
    for p in $(pids_under "$dir"); do kill -KILL "$p" 2>/dev/null || true; done
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
    local cg
    for cg in /sys/fs/cgroup/*/"dtc-w$k" /sys/fs/cgroup/"dtc-w$k"; do
        [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    rm -rf "$dir"
}

cmd_down() {
    need_root_only
    [ -f "$MADE" ] || {
        say "nothing to remove ($MADE does not exist)"
        return 0
    }
    local line kind rest
    # Nodes first (while the manager still runs), then the rest, newest first.
    while read -r kind rest; do
        [ "$kind" = node ] || continue
        set -- $rest
        down_worker "$1"
        timeout 20 docker node rm --force "$2" >/dev/null 2>&1 || true
        unrecord "node $rest"
    done < <(tac "$MADE")
    while read -r line; do
        kind="${line%% *}"
        rest="${line#* }"
        case "$kind" in
        engine) down_worker "$rest" ;;
        netns) ip netns del "$rest" 2>/dev/null || true ;;
        registry)
            stop_pid "$(cat "$STATE_DIR/registry/pid" 2>/dev/null || true)" 10
            rm -rf "$STATE_DIR/registry"
            ;;
        trust-entry | trust-file) down_main_trust "$kind" ;;
        swarm) timeout 60 docker swarm leave --force >/dev/null 2>&1 || true ;;
        iptables)
            while iptables -D DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
            ;;
        bridge) ip link del "$rest" 2>/dev/null || true ;;
        esac
        unrecord "$line"
    done < <(tac "$MADE")
    rm -rf "$STATE_DIR"
    say "down: removed everything scripts/cluster.sh up had made"
}

down_main_trust() {
    python3 - "$MAIN_DAEMON_JSON" "$REGISTRY" "$1" <<'EOF'
import json, os, sys
path, registry, kind = sys.argv[1:]
if os.path.exists(path):
    config = json.load(open(path))
    entries = [e for e in config.get("insecure-registries", []) if e != registry]
    if entries:
        config["insecure-registries"] = entries
    else:
        config.pop("insecure-registries", None)
    # An explicit empty list: a reload without the key (or without the file) keeps the
    # registries dockerd has in memory.
    config.setdefault("insecure-registries", [])
    with open(path + ".tmp", "w") as f:
        json.dump(config, f, indent=2)
    os.replace(path + ".tmp", path)
EOF
    local pid
    if pid="$(main_dockerd_pid)"; then
        kill -HUP "$pid"
        wait_for 20 "" sh -c "! docker info --format '{{json .RegistryConfig.IndexConfigs}}' | grep -qF '\"$REGISTRY\"'" ||
            say "warning: the main engine still trusts $REGISTRY (it forgets it at its next restart)"
    fi
    if [ "$1" = trust-file ]; then
        python3 - "$MAIN_DAEMON_JSON" <<'EOF'
import json, os, sys
path = sys.argv[1]
config = json.load(open(path))
if config == {"insecure-registries": []}:
    os.remove(path)
EOF
    fi
}

need_root_only() { [ "$(id -u)" -eq 0 ] || die "needs root"; }

# --- status / env ------------------------------------------------------------------------------

cmd_env() {
    local k workers=() sockets=()
    if [ -f "$MADE" ]; then
        while read -r kind k _; do
            [ "$kind" = node ] || continue
            workers+=("dtc-w$k")
            sockets+=("$(worker_sock "$k")")
        done <"$MADE"
    fi
    printf 'CLUSTER_MANAGER_ADDR=%s\n' "$HOST_IP"
    printf 'CLUSTER_REGISTRY=%s\n' "$REGISTRY"
    printf 'CLUSTER_WORKERS=%s\n' "${workers[*]-}"
    printf 'CLUSTER_WORKER_SOCKETS=%s\n' "${sockets[*]-}"
    printf 'CLUSTER_STATE_DIR=%s\n' "$STATE_DIR"
}

cmd_status() {
    [ -f "$MADE" ] || {
        say "down (nothing made)"
        return 0
    }
    say "made (oldest first):"
    sed 's/^/  /' "$MADE"
    docker node ls 2>/dev/null | sed 's/^/  /' || true
}

# One cluster.sh at a time changes the cluster (two test processes may ask for it at once).
if [ "${1:-}" = up ] || [ "${1:-}" = down ]; then
    exec 9>/run/dokku-tasks-cluster.lock
    flock 9
fi

case "${1:-}" in
up) cmd_up "${2:-2}" ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
*)
    printf 'usage: %s up [N] | down | status | env\n' "$0" >&2
    exit 2
    ;;
esac
