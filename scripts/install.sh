#!/usr/bin/env bash
# Install everything netx needs on Debian 12, as root: Debian packages, a virtualenv in .venv made from
# Debian's Python (with system site-packages, so Debian-only bindings such as bcc import), and netx.
#   bash scripts/install.sh          # netx itself
#   bash scripts/install.sh --test   # plus what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
# wireguard-go: netx's WireGuard driver where the kernel has no WireGuard (as on these VMs)
packages=(iproute2 python3-venv python3-pip python3-dev util-linux mount procps wireguard-go
          golang-github-osrg-gobgp-dev)   # GoBGP's .proto files: the gRPC stubs are generated from them
if [ "${1:-}" = "--test" ]; then
    extras="[test]"
    packages+=(iputils-ping tcpdump wireguard-tools gobgpd)   # traffic, captures, keys, the gobgpd unit check
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
.venv/bin/python scripts/gen_gobgp_api.py

# "ip route" shows netx's routes as "proto netx" instead of "proto 78"
mkdir -p /etc/iproute2/rt_protos.d
echo "78 netx" > /etc/iproute2/rt_protos.d/netx.conf
echo "netx installed: $(.venv/bin/netx --version) in $(pwd)/.venv (run .venv/bin/netx)"
