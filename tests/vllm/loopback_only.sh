#!/usr/bin/env bash
# Run a command in a new network namespace whose only interface is loopback (up): verl's vLLM server
# binds to Ray's node address, which is then 127.0.0.1, and nothing can reach out or in.
# Root: `unshare --net`; otherwise a user namespace maps us to root inside it.
#   tests/vllm/loopback_only.sh python -m pytest tests/vllm
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 command [args...]" >&2; exit 2; }
if [ "$(id -u)" = 0 ]; then ns=(--net); else ns=(--user --map-root-user --net); fi
exec unshare "${ns[@]}" -- bash -c 'ip link set lo up && exec "$@"' loopback_only "$@"
