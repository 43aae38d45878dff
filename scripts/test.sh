#!/usr/bin/env bash
# Installs what the test suite needs, then runs every tier:
#   1. unit tests (no root), 2. integration tests (root: namespaces, cgroups, netlink, eBPF),
#   3. kernel variant: pure cgroup v2 inside a qemu VM (scripts/vm-test.sh).
# Usage: sudo scripts/test.sh            (CI runs it as root from .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: the integration tests need root (namespaces, cgroups, mounts)" >&2
    exit 1
fi

# Debian packages the tests use: busybox for fixture rootfs, nftables/iproute2 for
# networking, qemu + a Debian kernel for the cgroup v2 VM, runc/crun/bubblewrap as
# peers, debootstrap for the Debian server test, strace for diagnostics.
PKGS=(busybox-static jq nftables iproute2 qemu-system-x86 linux-image-amd64 debootstrap runc crun bubblewrap cpio ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

log=$(mktemp /tmp/jaula-test.XXXXXX)
trap 'rm -f "$log"' EXIT

echo "== cargo test (unit + integration)"
set +e
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee "$log"
cargo_rc=${PIPESTATUS[0]}
set -e

echo "== pure cgroup v2 in a VM"
set +e
scripts/vm-test.sh 2>&1 | tee -a "$log"
vm_rc=${PIPESTATUS[0]}
set -e

# One closing line for the whole run, summing every tier.
# (awk does the filtering: a grep that matches nothing would end the script under pipefail)
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}' || true)
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}' || true)
vm_passed=$(grep -Eo 'VMTEST RESULT [0-9]+ passed' "$log" | awk '{s+=$3} END {print s+0}' || true)
passed=$((passed + vm_passed))
if [ "$cargo_rc" -ne 0 ] || [ "$vm_rc" -ne 0 ]; then
    [ "$failed" -eq 0 ] && failed=1
fi
echo "total: $passed passed, $failed failed"
[ "$cargo_rc" -eq 0 ] && [ "$vm_rc" -eq 0 ]
