#!/usr/bin/env bash
# Install everything netx needs on Debian 12, as root: Debian packages, a virtualenv in .venv made from
# Debian's Python (with system site-packages, so Debian-only bindings such as bcc import), and netx.
#   bash scripts/install.sh          # netx itself
#   bash scripts/install.sh --test   # plus what the test suite and the benchmarks need
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
# wireguard-go: netx's WireGuard driver where the kernel has no WireGuard (as on these VMs)
packages=(iproute2 python3-venv python3-pip util-linux mount procps wireguard-go
          gcc python3-dev    # pip install builds the C fill of Maglev tables (setup.py; without it, a slower one)
          libyaml-dev        # and the loader's fast path, which reads YAML with libyaml (without it, ruamel's composer)
          git openssh-client    # netx pull: fetch, and verify SSH-signed commits (git calls ssh-keygen)
          golang-github-osrg-gobgp-dev    # GoBGP's .proto files: the gRPC stubs are generated from them
          python3-bpfcc linux-headers-amd64 bpftool    # the eBPF datapath: bcc compiles bpf/ at apply
          haproxy nftables)                            # L7 policy rules: the node's proxy and its tproxy table
if [ "${1:-}" = "--test" ]; then
    extras="[test,bench]"
    packages+=(iputils-ping tcpdump wireguard-tools gobgpd bird2 iptables ethtool   # traffic, captures, keys, BGP peers, baselines
               curl wrk                                                         # HTTP through the L7 proxy, its benchmark
               python3-matplotlib)   # benchmarks/plot.py and fleet.py --plot draw docs/benchmarks/*.png
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
# byte-compile now: netx is a short-lived command, and PYTHONDONTWRITEBYTECODE would keep it compiling
.venv/bin/python -m compileall -q netplanx

# bcc compiles against /lib/modules/$(uname -r)/build; on kernels without a Debian package for that
# exact release, point it at Debian's headers (networking programs use only UAPI structures)
modules="/lib/modules/$(uname -r)"
if [ ! -e "$modules/build" ]; then
    headers=$(ls -d /usr/src/linux-headers-*-amd64 | sort -V | tail -1)
    mkdir -p "$modules"
    ln -sfn "$headers" "$modules/build"
    ln -sfn "${headers%-amd64}-common" "$modules/source"
fi
# netx pins its BPF maps and programs under /sys/fs/bpf/netx
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# "ip route" shows netx's routes as "proto netx" instead of "proto 78"
mkdir -p /etc/iproute2/rt_protos.d
printf "78 netx\n79 netx-bgp\n" > /etc/iproute2/rt_protos.d/netx.conf
if [ "${1:-}" = "--test" ]; then
    # the stock-kernel VM for the tests that need link kinds this kernel lacks: qemu, busybox, Debian's kernel
    # unpacked in /var/cache/netx-vm (not /boot), the virtualenv's image (docs/testing.md)
    bash scripts/vm.sh --prepare
fi
echo "netx installed: $(.venv/bin/netx --version) in $(pwd)/.venv (run .venv/bin/netx)"
