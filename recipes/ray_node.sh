#!/usr/bin/env bash
# Start or stop the Ray node of *this* machine (used by make ray-head / ray-worker / stop).
#
#   recipes/ray_node.sh head   [ray start flags...]   ray start --head <flags>
#   recipes/ray_node.sh worker [ray start flags...]   ray start <flags> (flags must include --address=HOST:PORT)
#   recipes/ray_node.sh stop   [ray stop flags...]    see below
#
# Environment:
#   RAY           the ray executable (default: ray)
#   RAY_TEMP_DIR  optional, absolute path. When set, the node is started with --temp-dir=$RAY_TEMP_DIR
#                 and tagged: its processes carry R4B_RAY_NODE=$RAY_TEMP_DIR in their environment
#                 (Ray passes it on to its workers and job drivers) and the process group of the
#                 node's daemons is recorded in $RAY_TEMP_DIR/r4b_ray_node.pgid.
#                 `stop` then stops only that node: every process of that group or carrying that
#                 tag (SIGTERM, then SIGKILL after RAY_STOP_GRACE seconds), and leaves any other
#                 Ray instance on the machine alone.
#                 Unset, `stop` is plain `ray stop`, which stops EVERY Ray process of this machine
#                 (Ray finds them by process name), including other users' local-mode runs.
#   RAY_STOP_GRACE  seconds between SIGTERM and SIGKILL for the scoped stop (default 10)
set -euo pipefail

RAY=${RAY:-ray}
RAY_TEMP_DIR=${RAY_TEMP_DIR:-}
RAY_STOP_GRACE=${RAY_STOP_GRACE:-10}
TAG_VAR=R4B_RAY_NODE

die() { echo "ray_node.sh: $*" >&2; exit 2; }
usage() { die "usage: $0 head|worker|stop [flags...]"; }

[[ $# -ge 1 ]] || usage
action=$1
shift

pgid_file() { echo "$RAY_TEMP_DIR/r4b_ray_node.pgid"; }

check_temp_dir() {
    [[ -z $RAY_TEMP_DIR ]] && return 0
    [[ $RAY_TEMP_DIR == /* ]] || die "RAY_TEMP_DIR must be an absolute path (Ray requires it), got '$RAY_TEMP_DIR'"
    # Ray puts unix sockets under $RAY_TEMP_DIR/session_<date>_<pid>/sockets/: keep it short.
    [[ $action == stop ]] || (( ${#RAY_TEMP_DIR} <= 40 )) || die "RAY_TEMP_DIR is ${#RAY_TEMP_DIR} characters long; keep it under 40 (unix socket paths are limited to 107)"
}

start_node() {  # start_node <ray start args...>
    local cmd=("$RAY" start "$@")
    if [[ -z $RAY_TEMP_DIR ]]; then
        echo "+ ${cmd[*]}"
        exec "${cmd[@]}"
    fi
    mkdir -p "$RAY_TEMP_DIR"
    cmd+=("--temp-dir=$RAY_TEMP_DIR")
    echo "+ $TAG_VAR=$RAY_TEMP_DIR setsid ${cmd[*]}"
    # setsid: the node's daemons (gcs_server, raylet, dashboard, ...) inherit one fresh process
    # group, recorded for `stop`; Ray's workers and job drivers make their own groups but inherit
    # the tag variable.
    export "$TAG_VAR=$RAY_TEMP_DIR"
    setsid --wait bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$(pgid_file)" "${cmd[@]}"
}

tagged_pids() {  # pids (other than this script's) whose environment has R4B_RAY_NODE=$RAY_TEMP_DIR
    local file pid
    { grep -lzxF "$TAG_VAR=$RAY_TEMP_DIR" /proc/[0-9]*/environ || true; } 2>/dev/null |
        while IFS= read -r file; do
            pid=${file#/proc/}
            pid=${pid%/environ}
            [[ $pid == "$$" || $pid == "$BASHPID" ]] || echo "$pid"
        done
}

node_pgid=""
find_node_pgid() {  # the recorded process group, if it still holds a tagged process (not a reused id)
    local pgid tagged
    [[ -f $(pgid_file) ]] || return 0
    pgid=$(<"$(pgid_file)")
    [[ $pgid =~ ^[0-9]+$ ]] || return 0
    tagged=$(tagged_pids)
    [[ -n $tagged ]] || return 0
    # shellcheck disable=SC2086
    if ps -o pgid= -p "$(echo $tagged | tr ' ' ',')" 2>/dev/null | grep -qx " *$pgid"; then
        node_pgid=$pgid
    fi
}

group_pids() {  # members of the node's process group (found by find_node_pgid)
    [[ -n $node_pgid ]] || return 0
    ps -e -o pid= -o pgid= -o stat= | awk -v g="$node_pgid" '$2 == g && $3 !~ /^Z/ { print $1 }'
}

stop_scoped() {
    local pids waited=0
    find_node_pgid
    pids=$( { group_pids; tagged_pids; } | sort -un)
    if [[ -z $pids ]]; then
        echo "ray_node.sh: no Ray process of the node in $RAY_TEMP_DIR is running"
        rm -f "$(pgid_file)"
        return 0
    fi
    echo "ray_node.sh: stopping the Ray node in $RAY_TEMP_DIR: $(echo "$pids" | wc -w) processes (SIGTERM)"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    while (( waited < RAY_STOP_GRACE * 2 )); do
        pids=$( { group_pids; tagged_pids; } | sort -un)
        [[ -z $pids ]] && break
        sleep 0.5
        waited=$((waited + 1))
    done
    if [[ -n $pids ]]; then
        echo "ray_node.sh: $(echo "$pids" | wc -w) processes still alive after ${RAY_STOP_GRACE}s: SIGKILL"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.5
    fi
    pids=$( { group_pids; tagged_pids; } | sort -un)
    # Zombies (already dead, waiting for their parent) cannot be killed and hold nothing.
    local alive=()
    for pid in $pids; do
        [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] || alive+=("$pid")
    done
    if (( ${#alive[@]} )); then
        echo "ray_node.sh: could not stop: ${alive[*]}" >&2
        return 1
    fi
    rm -f "$(pgid_file)"
    echo "ray_node.sh: stopped"
}

check_temp_dir
case $action in
    head)
        start_node --head "$@"
        ;;
    worker)
        [[ " $* " == *" --address="* || " $* " == *" --address "* ]] \
            || die "worker needs --address=HOST:PORT of the head (make ray-worker HEAD=host:port)"
        start_node "$@"
        ;;
    stop)
        if [[ -n $RAY_TEMP_DIR ]]; then
            stop_scoped
        else
            echo "+ $RAY stop $*   (stops every Ray process on this machine)"
            exec "$RAY" stop "$@"
        fi
        ;;
    *)
        usage
        ;;
esac
