#!/bin/sh
# Guest stage 2 (PID 1 of the VM, /sbin/vm-guest): mounts a pure cgroup v2 system, runs the
# cgroups crate's test binaries and a jaula-oci smoke test, prints one "VMTEST PASS|FAIL name"
# line per step and a final "VMTEST RESULT", then powers off. scripts/vm-test.sh reads these
# lines from the serial console; it knows which steps to expect from the "VMTEST PLAN" line.
#
# No `set -e`: PID 1 must survive failing steps so that every step reports and the VM powers off.

export PATH=/bin:/sbin HOME=/root RUST_BACKTRACE=1 TERM=dumb
CG=/sys/fs/cgroup
ROOT=/run/jaula
PASSED=0
FAILED=0

# Steps before the cgroups tests: the environment they need.
SETUP_STEPS="vm-disk"

# The jaula-oci steps, in order. Later steps reuse the containers of earlier ones.
OCI_STEPS="oci-run oci-run-cgroupns oci-create oci-limits-v2 oci-start oci-delete
oci-pause oci-resume oci-update oci-delete-force"

oci() {
    timeout 60 jaula-oci --root "$ROOT" "$@"
}

mount_system() {
    mount -t proc proc /proc &&
        mount -t sysfs sysfs /sys &&
        # Stage 1 moved its devtmpfs here already.
        { grep -q "^devtmpfs /dev " /proc/mounts || mount -t devtmpfs devtmpfs /dev; } &&
        mkdir -p /dev/pts /dev/shm &&
        mount -t devpts devpts /dev/pts &&
        mount -t tmpfs tmpfs /dev/shm &&
        # The options systemd uses on pure v2 hosts. The root's cgroup.subtree_control is left
        # empty on purpose: the cgroups crate must enable controllers in every ancestor itself.
        mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 "$CG" &&
        mount -t tmpfs tmpfs /tmp &&
        mount -t tmpfs tmpfs /run
}

# step NAME FUNCTION: runs FUNCTION, prints its verdict and duration.
step() {
    name=$1
    shift
    echo "=== $name"
    # A fresh kernel log per step, so a failure shows only its own messages.
    dmesg -c >/dev/null
    t0=$(date +%s)
    if "$@"; then
        verdict=PASS
        PASSED=$((PASSED + 1))
    else
        verdict=FAIL
        FAILED=$((FAILED + 1))
        echo "kernel messages during $name:"
        dmesg | tail -n 20
    fi
    echo "VMTEST $verdict $name ($(($(date +%s) - t0)) s)"
}

# Prints a file indented, so that container output is easy to tell from verdicts.
show() {
    sed 's/^/  | /' "$1"
}

# expect_file PATH VALUE: the file holds exactly VALUE.
expect_file() {
    got=$(cat "$1" 2>&1)
    [ "$got" = "$2" ] && return 0
    echo "$1: expected '$2', got '$got'"
    return 1
}

status_of() {
    oci state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p' | head -n 1
}

# want_status ID STATUS: polls for up to 30 s, because a container's status follows its init.
want_status() {
    i=0
    while [ $i -lt 150 ]; do
        [ "$(status_of "$1")" = "$2" ] && return 0
        sleep 0.2
        i=$((i + 1))
    done
    echo "$1: status is '$(status_of "$1")', expected '$2'; state:"
    oci state "$1" 2>&1 | sed 's/^/  | /'
    return 1
}

# gone ID: neither the cgroup nor the state of the container is left.
gone() {
    if [ -e "$CG/jaula/$1" ]; then
        echo "$CG/jaula/$1 left behind"
        return 1
    fi
    if oci state "$1" >/dev/null 2>&1; then
        echo "state of $1 still present after delete"
        return 1
    fi
}

# run_cmd OUT ARGS...: runs jaula-oci ARGS with output to OUT; shows OUT if it fails.
run_cmd() {
    out=$1
    shift
    oci "$@" >"$out" 2>&1 </dev/null
    rc=$?
    [ $rc -eq 0 ] && return 0
    echo "jaula-oci $* exited $rc:"
    show "$out"
    return 1
}

# The virtio disk's driver is a module; the cgroups tests throttle I/O on a real disk.
vm_disk() {
    while read -r m; do
        insmod "/modules/$m" || { echo "insmod $m failed"; return 1; }
    done </modules/order
    i=0
    while [ ! -e /sys/block/vda ]; do
        [ $i -ge 50 ] && { echo "no /sys/block/vda after loading $(cat /modules/order)"; return 1; }
        sleep 0.1
        i=$((i + 1))
    done
    echo "guest: disk vda is $(cat /sys/block/vda/dev)"
}

cgroups_test() {
    "/tests/$1" --test-threads=1
}

oci_run() {
    oci run -b /bundle vm-run >/tmp/vm-run.out 2>&1 </dev/null
    rc=$?
    show /tmp/vm-run.out
    [ $rc -eq 0 ] || { echo "run exited $rc"; return 1; }
    grep -qx ok /tmp/vm-run.out || { echo "no 'ok' line in the output"; return 1; }
    gone vm-run
}

# The container saw itself at the root of its cgroup namespace, with its own limits mounted
# at /sys/fs/cgroup (see the bundle's args in scripts/vm-test.sh).
oci_run_cgroupns() {
    grep -qx '0::/' /tmp/vm-run.out || { echo "/proc/self/cgroup is not '0::/'"; return 1; }
    grep -qx 'memory.max=67108864' /tmp/vm-run.out || { echo "memory.max not seen inside"; return 1; }
    grep -qx 'pids.max=64' /tmp/vm-run.out || { echo "pids.max not seen inside"; return 1; }
}

oci_create() {
    run_cmd /tmp/vm-cs.out create -b /bundle vm-cs && want_status vm-cs created
}

oci_limits_v2() {
    d=$CG/jaula/vm-cs
    expect_file "$d/memory.max" 67108864 &&
        expect_file "$d/pids.max" 64 &&
        expect_file "$d/cpu.max" "50000 100000"
}

oci_start() {
    run_cmd /tmp/vm-cs.start start vm-cs || return 1
    want_status vm-cs stopped || return 1
    grep -qx ok /tmp/vm-cs.out && return 0
    echo "no 'ok' line in the container's output:"
    show /tmp/vm-cs.out
    return 1
}

oci_delete() {
    run_cmd /tmp/vm-cs.delete delete vm-cs && gone vm-cs
}

oci_pause() {
    run_cmd /tmp/vm-sleep.out create -b /sleep vm-sleep || return 1
    run_cmd /tmp/vm-sleep.start start vm-sleep || return 1
    want_status vm-sleep running || return 1
    run_cmd /tmp/vm-sleep.pause pause vm-sleep || return 1
    want_status vm-sleep paused || return 1
    grep -qx 'frozen 1' "$CG/jaula/vm-sleep/cgroup.events" && return 0
    echo "cgroup.events does not say 'frozen 1':"
    show "$CG/jaula/vm-sleep/cgroup.events"
    return 1
}

oci_resume() {
    run_cmd /tmp/vm-sleep.resume resume vm-sleep || return 1
    want_status vm-sleep running || return 1
    grep -qx 'frozen 0' "$CG/jaula/vm-sleep/cgroup.events" && return 0
    echo "cgroup.events does not say 'frozen 0':"
    show "$CG/jaula/vm-sleep/cgroup.events"
    return 1
}

oci_update() {
    run_cmd /tmp/vm-sleep.update update --memory 100m --pids-limit 99 --cpu-quota 20000 vm-sleep &&
        expect_file "$CG/jaula/vm-sleep/memory.max" 104857600 &&
        expect_file "$CG/jaula/vm-sleep/pids.max" 99 &&
        expect_file "$CG/jaula/vm-sleep/cpu.max" "20000 100000"
}

oci_delete_force() {
    pid=$(oci state vm-sleep 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n 1)
    run_cmd /tmp/vm-sleep.delete delete --force vm-sleep || return 1
    gone vm-sleep || return 1
    [ -n "$pid" ] || { echo "no pid in the state before delete"; return 1; }
    # PID 1 (this shell) reaps the orphaned init; until then it may linger as a zombie.
    i=0
    while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
        [ $i -ge 50 ] && { echo "container init $pid still alive after delete --force"; return 1; }
        sleep 0.1
        i=$((i + 1))
    done
}

power_off() {
    echo "VMTEST RESULT $PASSED passed, $FAILED failed"
    sleep 1
    echo o >/proc/sysrq-trigger
    sleep 30
}

main() {
    if ! mount_system; then
        echo "VMTEST FAIL mount-system"
        FAILED=1
        power_off
    fi
    echo "guest: kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s"
    echo "guest: v2 controllers: $(cat $CG/cgroup.controllers)"
    tests=$(ls /tests)
    plan=""
    for t in $tests; do plan="$plan cgroups:$t"; done
    # Unquoted on purpose: one line, names separated by single spaces.
    # shellcheck disable=SC2086
    echo "VMTEST PLAN" $SETUP_STEPS $plan $OCI_STEPS
    for s in $SETUP_STEPS; do
        step "$s" "$(echo "$s" | tr - _)"
    done
    for t in $tests; do
        step "cgroups:$t" cgroups_test "$t"
    done
    for s in $OCI_STEPS; do
        step "$s" "oci_$(echo "$s" | sed 's/^oci-//; s/-/_/g')"
    done
    echo "guest: done at $(cut -d' ' -f1 /proc/uptime) s"
    power_off
}

main
