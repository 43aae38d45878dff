#!/usr/bin/env bash
# Kernel-variant tier: runs the cgroups crate's tests and a jaula-oci smoke test on pure
# cgroup v2, inside a qemu VM (this host has hybrid cgroups). Builds the test binaries, packs
# them with busybox into an initramfs, boots Debian's kernel in software emulation, and checks
# the "VMTEST" lines the guest (scripts/vm/guest.sh) prints on the serial console.
#
# Usage: scripts/vm-test.sh   (CI installs qemu-system-x86, linux-image-amd64, busybox-static, jq)
# Environment: VM_KERNEL (default: newest /boot/vmlinuz-*), VM_TIMEOUT (seconds, default 300),
# VM_MEMORY (MiB, default 1024), VM_KEEP (set: keep the work directory and serial log),
# CARGO_TARGET_DIR (respected by cargo).
set -euo pipefail
cd "$(dirname "$0")/.."

VM_TIMEOUT=${VM_TIMEOUT:-300}
VM_MEMORY=${VM_MEMORY:-1024}
BUSYBOX=/bin/busybox
# The OCI bundle's process reports its cgroup view; guest.sh checks these lines. The $(...)
# expand inside the container, not here.
# shellcheck disable=SC2016
BUNDLE_SCRIPT='cat /proc/self/cgroup; echo memory.max=$(cat /sys/fs/cgroup/memory.max); echo pids.max=$(cat /sys/fs/cgroup/pids.max); echo ok'

fail() {
    echo "vm-test: FAIL: $*" >&2
    exit 1
}

# Everything the script needs on the host. Missing tools fail the tier: CI installs them, so a
# skip would hide a broken CI image.
check_host() {
    command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
    KERNEL=${VM_KERNEL:-$(printf '%s\n' /boot/vmlinuz-* | sort -V | tail -n 1)}
    if [ ! -r "$KERNEL" ]; then
        fail "no readable kernel at '$KERNEL' (apt-get install linux-image-amd64, or set VM_KERNEL)"
    fi
    [ -x "$BUSYBOX" ] || fail "$BUSYBOX not found (apt-get install busybox-static)"
    # A dynamically linked busybox (Debian's "busybox" package) cannot run in the bare initramfs.
    if readelf -l "$BUSYBOX" | grep -q INTERP; then
        fail "$BUSYBOX is dynamically linked; install busybox-static"
    fi
    if ! command -v jq >/dev/null; then
        echo "vm-test: installing jq (patches the bundle's config.json)"
        { apt-get update -q >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends jq >/dev/null; } ||
            fail "jq is missing and could not be installed"
    fi
}

# executables KIND: prints "name path" for every executable in cargo's JSON messages on stdin;
# KIND "test" selects test harnesses, "bin" plain binaries.
executables() {
    jq -r --arg kind "$1" '
        select(.reason == "compiler-artifact" and .executable != null
               and .profile.test == ($kind == "test"))
        | "\(.target.name) \(.executable)"'
}

# Builds the cgroups test binaries and jaula-oci (debug profile); fills TESTS and OCI_BIN.
build() {
    echo "vm-test: building jaula-cgroups tests and jaula-oci"
    cargo test -p jaula-cgroups --no-run --message-format=json-render-diagnostics \
        >"$WORK/tests.json" || fail "cargo test --no-run -p jaula-cgroups failed"
    mapfile -t TESTS < <(executables test <"$WORK/tests.json")
    [ ${#TESTS[@]} -gt 0 ] || fail "cargo reported no test executables for jaula-cgroups"
    cargo build -p jaula-cli --bin jaula-oci --message-format=json-render-diagnostics \
        >"$WORK/oci.json" || fail "cargo build --bin jaula-oci failed"
    OCI_BIN=$(executables bin <"$WORK/oci.json" | awk '$1 == "jaula-oci" { print $2 }')
    [ -x "$OCI_BIN" ] || fail "cargo did not report the jaula-oci executable"
}

# Copies a binary without its debug info: a smaller initramfs boots faster under emulation.
install_stripped() {
    strip -o "$2" "$1" 2>/dev/null || cp "$1" "$2"
    chmod 0755 "$2"
}

# bin/busybox plus a link for every applet, under directory $1.
install_busybox() {
    mkdir -p "$1/bin"
    cp "$BUSYBOX" "$1/bin/busybox"
    local applet
    for applet in $("$BUSYBOX" --list); do
        # busybox lists itself; a link would replace the binary with a link to itself.
        [ "$applet" = busybox ] || ln -sf busybox "$1/bin/$applet"
    done
}

# /bundle: the busybox rootfs and a config.json from `jaula-oci spec`, with limits so that the
# v2 resource paths run; /sleep: a long-running container on the same rootfs.
make_bundles() {
    local root=$1
    mkdir -p "$root/bundle/rootfs" "$root/sleep"
    install_busybox "$root/bundle/rootfs"
    mkdir -p "$root/bundle/rootfs"/{proc,sys,dev,tmp,etc,root}
    mkdir -p "$WORK/spec"
    "$OCI_BIN" spec -b "$WORK/spec" || fail "jaula-oci spec failed"
    jq --arg script "$BUNDLE_SCRIPT" '
        .process.terminal = false
        | .process.args = ["sh", "-c", $script]
        | .linux.resources += {
            memory: {limit: 67108864},
            pids: {limit: 64},
            cpu: {quota: 50000, period: 100000}
          }' "$WORK/spec/config.json" >"$root/bundle/config.json"
    jq '.root.path = "/bundle/rootfs" | .process.args = ["sleep", "300"]' \
        "$root/bundle/config.json" >"$root/sleep/config.json"
}

make_initramfs() {
    local root=$WORK/root entry name path
    mkdir -p "$root"/{dev,proc,sys,tmp,run,root,sbin,tests} "$root/sys/fs/cgroup"
    install_busybox "$root"
    install -m 0755 scripts/vm/init "$root/init"
    install -m 0755 scripts/vm/guest.sh "$root/sbin/vm-guest"
    for entry in "${TESTS[@]}"; do
        name=${entry%% *}
        path=${entry#* }
        # The lib target's unit tests are named after the crate.
        [ "$name" = jaula_cgroups ] && name=lib
        install_stripped "$path" "$root/tests/$name"
    done
    install_stripped "$OCI_BIN" "$root/bin/jaula-oci"
    make_bundles "$root"
    install_modules "$root"
    (cd "$root" && find . | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$WORK/initramfs.gz"
    echo "vm-test: initramfs $(du -h "$WORK/initramfs.gz" | cut -f1), ${#TESTS[@]} test binaries"
}

# The modules the guest's virtio disk needs, dependencies first (Debian builds them as modules).
# The cgroups tests throttle I/O on a real disk, as a real host would have one.
DISK_MODULES=(virtio_pci virtio_blk)

# add_module PATH: appends PATH (relative to /lib/modules/KVER) after its dependencies.
add_module() {
    local dep deps
    [[ " ${MODULES[*]} " == *" $1 "* ]] && return 0
    deps=$(awk -v m="$1:" '$1 == m { $1 = ""; print }' "$MODDIR/modules.dep")
    # modprobe loads the dependencies listed in modules.dep in reverse order; so do we.
    for dep in $(echo "$deps" | tr ' ' '\n' | tac); do
        add_module "$dep"
    done
    MODULES+=("$1")
}

install_modules() {
    local root=$1 name path
    MODDIR=/lib/modules/${KERNEL##*/vmlinuz-}
    [ -r "$MODDIR/modules.dep" ] || fail "no $MODDIR/modules.dep for kernel $KERNEL"
    MODULES=()
    for name in "${DISK_MODULES[@]}"; do
        path=$(awk -v n="/$name.ko:" 'index($1, n) { print substr($1, 1, length($1) - 1) }' "$MODDIR/modules.dep")
        [ -n "$path" ] || fail "module $name not found in $MODDIR/modules.dep"
        add_module "$path"
    done
    mkdir -p "$root/modules"
    for path in "${MODULES[@]}"; do
        cp "$MODDIR/$path" "$root/modules/"
        echo "${path##*/}" >>"$root/modules/order"
    done
}

# Boots the VM; kills qemu (by its pid) if it outlives VM_TIMEOUT.
boot() {
    echo "vm-test: booting $KERNEL (software emulation, timeout ${VM_TIMEOUT} s)"
    local start=$SECONDS
    truncate -s 64M "$WORK/disk.img"
    # -accel tcg: KVM aborts on this machine's CPU, so never let qemu pick it.
    qemu-system-x86_64 -accel tcg -nodefaults -display none -no-reboot -nic none \
        -m "$VM_MEMORY" -smp 1 -serial "file:$LOG" \
        -drive "file=$WORK/disk.img,format=raw,if=virtio" \
        -kernel "$KERNEL" -initrd "$WORK/initramfs.gz" \
        -append "console=ttyS0 quiet loglevel=1 panic=-1" </dev/null &
    QEMU_PID=$!
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        if [ $((SECONDS - start)) -ge "$VM_TIMEOUT" ]; then
            kill "$QEMU_PID" 2>/dev/null || true
            wait "$QEMU_PID" 2>/dev/null || true
            QEMU_PID=
            TIMED_OUT=1
            break
        fi
        sleep 1
    done
    [ -z "$QEMU_PID" ] || wait "$QEMU_PID" || echo "vm-test: qemu exited with status $?"
    QEMU_PID=
    echo "vm-test: VM ran for $((SECONDS - start)) s"
}

# Checks the serial log: every planned step reported PASS and the result counts agree.
verdict() {
    local lines plan result s missing=() failed=()
    lines=$(tr -d '\r' <"$LOG" | grep -a '^VMTEST ' || true)
    echo "$lines" | grep -v '^VMTEST PLAN' || true
    [ -z "$TIMED_OUT" ] || fail "the VM did not power off within ${VM_TIMEOUT} s"
    plan=$(echo "$lines" | sed -n 's/^VMTEST PLAN //p' | head -n 1)
    [ -n "$plan" ] || fail "the guest printed no VMTEST PLAN line (did it boot?)"
    for entry in "${TESTS[@]}"; do
        s=${entry%% *}
        [ "$s" = jaula_cgroups ] && s=lib
        [[ " $plan " == *" cgroups:$s "* ]] || fail "the guest did not plan test binary $s"
    done
    for s in $plan; do
        if echo "$lines" | grep -q "^VMTEST FAIL $s "; then
            failed+=("$s")
        elif ! echo "$lines" | grep -q "^VMTEST PASS $s "; then
            missing+=("$s")
        fi
    done
    result=$(echo "$lines" | grep '^VMTEST RESULT' | tail -n 1)
    [ ${#missing[@]} -eq 0 ] || fail "steps that never reported: ${missing[*]}"
    [ ${#failed[@]} -eq 0 ] || fail "failed steps: ${failed[*]}"
    [ "$result" = "VMTEST RESULT $(echo "$plan" | wc -w) passed, 0 failed" ] ||
        fail "unexpected result line: '${result:-none}'"
    echo "vm-test: pure cgroup v2: all $(echo "$plan" | wc -w) steps passed"
}

cleanup() {
    if [ -n "${QEMU_PID:-}" ]; then
        kill "$QEMU_PID" 2>/dev/null || true
    fi
    if [ -n "${VM_KEEP:-}" ]; then
        echo "vm-test: kept $WORK (serial log: $LOG)"
    else
        rm -rf "$WORK"
    fi
}

main() {
    check_host
    WORK=$(mktemp -d /tmp/jaula-vm.XXXXXX)
    LOG=$WORK/serial.log
    QEMU_PID=
    TIMED_OUT=
    trap cleanup EXIT
    build
    make_initramfs
    boot
    # The whole console on failure: test output and guest diagnostics are only there.
    if ! (verdict); then
        echo "vm-test: serial console:" >&2
        tr -d '\r' <"$LOG" | sed 's/^/  serial| /' >&2
        exit 1
    fi
}

main "$@"
