#!/usr/bin/env bash
# netx's main job on the bundled example, safely: in throwaway namespaces, plan -> apply -> plan.
set -euo pipefail
cd "$(dirname "$0")/.."
ns=netx-demo
client=netx-demo-client
state=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; ip netns del "$client" 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
cleanup; state=$(mktemp -d)
ip netns add "$ns"
ip netns add "$client"   # examples/host.yaml puts a veth peer there
export NETX_STATE_DIR="$state"
echo "== netx plan (namespace $ns)"
.venv/bin/netx plan examples/host.yaml --netns "$ns"
echo; echo "== netx apply"
.venv/bin/netx apply examples/host.yaml --netns "$ns" --auto-approve
echo; echo "== netx plan again"
.venv/bin/netx plan examples/host.yaml --netns "$ns" --detailed-exitcode
