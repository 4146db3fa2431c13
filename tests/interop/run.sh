#!/usr/bin/env bash
# The official Runway SDKs, unmodified, against `cometapi-runway mock-server --shape plain`:
# Python (`runwayml`, in a fresh venv) and Node (`@runwayml/sdk`, in a temporary prefix) each
# create a task and wait with their own wait_for_task_output / waitForTaskOutput, then fetch the
# output. Python runs twice: against the defaults, and against a 3 s task (1 s pending, 2 s
# running), both with the default 1 s task_not_exist window. All three run at once (~7 s: the
# SDKs poll first after 6 s ± 1.5 s).
#
# Usage: tests/interop/run.sh   (from anywhere; needs python3, node and npm on PATH)
set -euo pipefail
cd "$(dirname "$0")/../.."

# Pinned: bump deliberately, after reading the SDK's changelog.
RUNWAYML_PY=5.24.0
RUNWAYML_NODE=4.20.1

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cargo build -q --features cli --bin cometapi-runway
bin="${CARGO_TARGET_DIR:-target}/debug/cometapi-runway"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "runwayml==$RUNWAYML_PY" &
pip_pid=$!
npm install -s --prefix "$work/node" --no-audit --no-fund --no-package-lock "@runwayml/sdk@$RUNWAYML_NODE"
wait "$pip_pid"

# Starts `mock-server ARGS` in the background; sets $url and $key from its JSON line.
start_server() {
    local out="$work/server-$#-$RANDOM.json"
    "$bin" --json mock-server "$@" >"$out" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 100); do
        [ -s "$out" ] && break
        sleep 0.1
    done
    url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base_url"])' "$out")
    key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_key"])' "$out")
}

start_server --shape plain
echo "mock-server --shape plain: $url"
plain_url=$url plain_key=$key
start_server --shape plain --pending-for 1s --running-for 2s
echo "mock-server --shape plain, a 3 s task: $url"
slow_url=$url slow_key=$key

"$work/venv/bin/python" tests/interop/python_sdk.py "$plain_url" "$plain_key" &
py1=$!
"$work/venv/bin/python" tests/interop/python_sdk.py "$slow_url" "$slow_key" &
py2=$!
NODE_PATH="$work/node/node_modules" node tests/interop/node_sdk.cjs "$plain_url" "$plain_key" &
node1=$!
status=0
for pid in "$py1" "$py2" "$node1"; do
    wait "$pid" || status=1
done
exit "$status"
