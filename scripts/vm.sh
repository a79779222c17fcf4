#!/usr/bin/env bash
# Run pytest (or any command) inside Debian's stock kernel under qemu: the link kinds a development
# kernel lacks (vlan, bond, vrf, IP tunnels, Geneve, WireGuard) are modules there (docs/testing.md).
#
#   bash scripts/vm.sh [--out DIR] [--timeout SECONDS] [--cmd 'SHELL COMMAND'] [PYTEST ARGS...]
#   bash scripts/vm.sh --prepare     # install and cache what a boot needs, then exit (scripts/install.sh --test)
#
# Without --cmd the guest runs, from the repository, one pytest process:
#   .venv/bin/python -m pytest -p no:cacheprovider -p tests.vm.report --junitxml=OUT/junit.xml PYTEST ARGS...
# (tests/vm/report.py writes OUT/report.json: {nodeid: {outcome, longrepr, duration}} after every test).
# It exits with the guest command's exit code, or 125 when the VM gave no result (died, timed out).
# OUT also gets rc, output.log (the command's output) and console.log (the whole serial console).
#
# What it needs is installed idempotently: qemu-system-x86 and busybox-static (Debian packages), and
# the kernel package linux-image-amd64 depends on, unpacked with its modules into $NETX_VM_CACHE
# (default /var/cache/netx-vm); nothing goes to /boot or to this host's /lib/modules. KERNEL_PKG names
# another kernel package. qemu is stopped by its PID and the image in /dev/shm removed, whatever happens.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${NETX_VM_CACHE:-/var/cache/netx-vm}
OUT=$REPO/.vm-out
TIMEOUT=1800
CMD=
PREPARE=
while [ $# -gt 0 ]; do
    case "$1" in
        --prepare) PREPARE=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --cmd) CMD=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
T0=${EPOCHREALTIME/./}
step() { local t=$(( (${EPOCHREALTIME/./} - T0) / 100000 )); printf '[vm.sh %4d.%ds] %s\n' $((t / 10)) $((t % 10)) "$*"; }

# 1. Debian packages: qemu (~18 MB download) and a static busybox for the initramfs
need=()
for package in qemu-system-x86 busybox-static e2fsprogs kmod; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    step "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi

# 2. The kernel linux-image-amd64 depends on today (a security update moves the ABI and the old package
#    leaves the mirror: never hard-code it), unpacked once; a lock keeps concurrent runs from racing.
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1
}
KERNEL_PKG=${KERNEL_PKG:-$(kernel_package)}
if [ -z "$KERNEL_PKG" ]; then
    apt-get update -qq
    KERNEL_PKG=$(kernel_package)
fi
KVER=${KERNEL_PKG#linux-image-}
KDIR=$CACHE/kernel/$KVER
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock 9
if [ ! -e "$KDIR/.done" ]; then
    step "download and unpack $KERNEL_PKG"
    rm -rf "$KDIR" "$CACHE/dl" && mkdir -p "$KDIR" "$CACHE/dl"
    (cd "$CACHE/dl" && apt-get download -qq "$KERNEL_PKG")   # the exact name: one package, ~70 MB
    dpkg-deb -x "$CACHE"/dl/"$KERNEL_PKG"_*.deb "$KDIR"
    depmod -b "$KDIR" "$KVER"
    rm -rf "$CACHE/dl"
    touch "$KDIR/.done"
fi
# 3. The initramfs: static busybox, the modules 9p, ext4 and overlayfs need, and vm/init (rebuilt when
#    init changes)
INITRD=$CACHE/initrd-$KVER-$(md5sum < "$HERE/vm/init" | cut -c1-8).cpio.gz
if [ ! -e "$INITRD" ]; then
    step "build the initramfs"
    rm -f "$CACHE"/initrd-*.cpio.gz
    staging=$(mktemp -d)
    mkdir -p "$staging"/{bin,dev,proc,sys,mod,newroot}
    cp /bin/busybox "$staging/bin/busybox"
    cp "$HERE/vm/init" "$staging/init"
    for module in $(modprobe -d "$KDIR" -S "$KVER" --show-depends -a virtio_pci 9pnet_virtio 9p virtio_blk ext4 \
                    overlay virtio_rng | awk '$1 == "insmod" && !seen[$2]++ {print $2}'); do
        cp "$module" "$staging/mod/" && basename "$module" >> "$staging/modules.list"
    done
    (cd "$staging" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$INITRD.tmp") && mv "$INITRD.tmp" "$INITRD"
    rm -rf "$staging"
fi

# 4. The Python trees as read-only ext4 images (mke2fs -d: no mount, no loop device), byte-compiled for
#    their guest paths: over 9p every stat is a round trip through the emulator, a block device lets the
#    guest cache it all. The virtualenv and the system trees it reads change rarely: their image is kept in
#    the cache under a digest of their listings. The repository's is made for each run, in /dev/shm.
PY=$REPO/.venv/bin/python
QEMU= STAGE= REPO_IMAGE=
cleanup() {
    [ -n "$QEMU" ] && kill "$QEMU" 2>/dev/null && wait "$QEMU" 2>/dev/null
    rm -rf "$STAGE" "$REPO_IMAGE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
image() {   # image FILE TREE:GUEST-PATH...: copy, byte-compile and pack the trees (staged in /dev/shm)
    local file=$1 stage bind size
    shift
    STAGE=$(mktemp -d /dev/shm/netx-vm.XXXXXX)
    stage=$STAGE
    for bind in "$@"; do
        mkdir -p "$stage/${bind%%:*}"
        if [ "${bind%%:*}" = repo ]; then   # the checkout, without its virtualenv (a tree of its own)
            tar -C "$REPO" --exclude=./.git --exclude=./.pytest_cache --exclude=./.hypothesis --exclude=./.ruff_cache \
                --exclude='./.venv/*' -cf - . | tar -C "$stage/repo" -xf -
        else
            cp -a "${bind#*:}/." "$stage/${bind%%:*}/"
        fi
        "$PY" -m compileall -q -j 0 -s "$stage/${bind%%:*}" -p "${bind#*:}" "$stage/${bind%%:*}" > /dev/null 2>&1 || true
    done
    size=$(( $(du -sm "$stage" | cut -f1) * 13 / 10 + 32 ))
    mke2fs -q -t ext4 -O ^has_journal -i 8192 -d "$stage" "$file.tmp" "${size}M" > /dev/null
    rm -rf "$stage"
    mv "$file.tmp" "$file"
}
SYSTEM=("venv:$(readlink -f "$REPO/.venv")")
for tree in $("$PY" -c 'import os, sys; print(" ".join(p for p in sys.path if p.startswith("/usr/") and os.path.isdir(p)))'); do
    case "$tree" in */lib-dynload) continue ;; esac   # inside /usr/lib/python3.X already
    SYSTEM+=("$(echo "${tree#/}" | tr / _):$tree")
done
digest=$(for bind in "${SYSTEM[@]}"; do echo "$bind"; find "${bind#*:}" -maxdepth 3 -printf '%p %T@\n'; done | md5sum | cut -c1-12)
SYSTEM_IMAGE=$CACHE/python-$digest.ext4
if [ ! -e "$SYSTEM_IMAGE" ]; then
    step "build the image of the virtualenv and the system Python"
    rm -f "$CACHE"/python-*
    image "$SYSTEM_IMAGE" "${SYSTEM[@]}"
fi
flock -u 9
[ -n "$PREPARE" ] && { step "ready: $KERNEL_PKG in $CACHE"; exit 0; }
step "build the image of the repository"
REPO_IMAGE=$(mktemp -d /dev/shm/netx-vm-repo.XXXXXX)
image "$REPO_IMAGE/repo.ext4" "repo:$REPO"

# 5. What the guest runs, and how the guest sees this host: env.sh is read by vm/init and vm/stage2.sh
rm -rf "$OUT" && mkdir -p "$OUT"
GUEST_OUT=/run/netx-vm-out   # where the guest mounts $OUT
cat > "$OUT/env.sh" <<ENV
KMODDIR=$KDIR/lib/modules
BINDS="vdb/repo:$REPO ${SYSTEM[*]/#/vda/}"
WORKDIR=$REPO
HOSTPATHS="$REPO"
GUEST_ENV="export NETX_IN_VM=1 PYTHONPATH=$REPO PYTHONDONTWRITEBYTECODE=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 NETX_VM_REPORT=$GUEST_OUT/report.json"
ENV
if [ -n "$CMD" ]; then
    printf '%s\n' "$CMD" > "$OUT/cmd.sh"
else
    { printf 'exec %q -m pytest -p no:cacheprovider -p tests.vm.report --junitxml=%q' "$PY" "$GUEST_OUT/junit.xml"
      printf ' %q' "$@"; echo; } > "$OUT/cmd.sh"
fi

# 6. Boot: software emulation (KVM does not work on these machines), one vCPU (measured faster than two
#    on a busy 2-core host), no network device (nothing can leave the guest), the host's / read-only over
#    9p with caching, the results share read-write, the Python image read-only.
#    no_timer_check: on a starved emulator the kernel's early IO-APIC timer check can time out and panic.
#    A guest that dies before it runs the command (output.log not made) is booted once more.
boot() {
    step "boot $KVER"
    : > "$OUT/console.log"
    timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
        -machine q35 -accel tcg,thread=multi -cpu max -smp 1 -m 2G \
        -nodefaults -no-user-config -display none -no-reboot -serial "file:$OUT/console.log" \
        -kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$INITRD" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 tsc=reliable no_timer_check netxvm.stage2=$HERE/vm/stage2.sh" \
        -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
        -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
        -fsdev local,id=out,path="$OUT",security_model=none,multidevs=remap \
        -device virtio-9p-pci,fsdev=out,mount_tag=netxout \
        -drive "file=$SYSTEM_IMAGE,if=virtio,format=raw,readonly=on" \
        -drive "file=$REPO_IMAGE/repo.ext4,if=virtio,format=raw,readonly=on" -device virtio-rng-pci < /dev/null &
    QEMU=$!
    tail -n +1 -f --pid="$QEMU" "$OUT/console.log" 2> /dev/null &   # the console, live
    status=0
    wait "$QEMU" || status=$?
    QEMU=
    wait
    step "VM exited (qemu $status)"
}
boot
if [ ! -e "$OUT/output.log" ] && [ ! -s "$OUT/rc" ]; then
    mv "$OUT/console.log" "$OUT/console-1.log"
    step "the guest died before it ran the command (console-1.log: $(grep -m1 -o 'Kernel panic.*' "$OUT/console-1.log" \
        | cut -c1-100)); booting again"
    boot
fi
if [ ! -s "$OUT/rc" ]; then
    echo "vm.sh: no result from the guest (qemu exit $status, timeout $TIMEOUT s); the console's end:" >&2
    tail -n 40 "$OUT/console.log" >&2 || true
    exit 125
fi
exit "$(cat "$OUT/rc")"
