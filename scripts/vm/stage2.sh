#!/bin/bash
# Stage 2: PID 1 of the guest, from the host's root (9p, read-only, cached; vm/init mounted the rest).
# Runs OUT/cmd.sh (its output to the console and OUT/output.log), writes its exit code to OUT/rc and powers
# off. PID 1 must never exit (a kernel panic): the EXIT trap powers off whatever happens.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb
off() { sync; echo o > /proc/sysrq-trigger; sleep 30 2> /dev/null; }
trap off EXIT
OUT=/run/netx-vm-out   # the host's --out folder (mounted by vm/init)
. "$OUT/env.sh"   # WORKDIR, GUEST_ENV
say() { echo "[vm $(cut -d' ' -f1 /proc/uptime)] $*" > /dev/console; }
ip link set lo up
hostname netx-vm
say "$(uname -r): running $OUT/cmd.sh"
cd "$WORKDIR"
eval "$GUEST_ENV"
bash "$OUT/cmd.sh" 2>&1 < /dev/null | tee "$OUT/output.log" > /dev/console
rc=${PIPESTATUS[0]}
echo "$rc" > "$OUT/rc"
say "exit status $rc"
