#!/usr/bin/env bash
# Benchmarks jaula against its peers on this machine, in one run, and prints ratios
# (the machine is noisy: absolute numbers vary, ratios within one run are what count).
#   container lifecycle: N sequential `run` of a busybox `true` container, create to delete
#   peak memory of the runtime process (GNU time's max RSS)
#   exec latency: `jaula-oci exec` into a running container vs `nsenter` into the same namespaces
# Usage: sudo scripts/bench.sh [N]     (default N=50)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
[ "$(id -u)" -eq 0 ] || { echo "bench.sh needs root" >&2; exit 1; }
for p in busybox-static runc time; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >/dev/null
    }
done
cargo build --release -q -p jaula-cli --bin jaula-oci
JAULA=$(pwd)/target/x86_64-unknown-linux-gnu/release/jaula-oci

work=$(mktemp -d /tmp/jaula-bench.XXXXXX)
cleanup() { [ -n "${sleeper:-}" ] && "$JAULA" --root "$work/state-jaula" delete -f bench-exec >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT

# A busybox bundle whose process is `true`.
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/bundle/rootfs/bin/$a"; done
(cd "$work/bundle" && "$JAULA" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open(p, "w"))
PY

now_ns() { date +%s%N; }

# Prints milliseconds per run for `$@ run --bundle B ID` repeated N times.
time_runtime() {
    local name=$1; shift
    local root="$work/state-$name" start end i
    "$@" --root "$root" run --bundle "$work/bundle" "warm-$name" >/dev/null 2>&1 || return 1
    start=$(now_ns)
    for i in $(seq "$N"); do
        "$@" --root "$root" run --bundle "$work/bundle" "b$i" >/dev/null 2>&1 || return 1
    done
    end=$(now_ns)
    echo "scale=2; ($end - $start) / 1000000 / $N" | bc
}

peak_kb() {
    local name=$1; shift
    /usr/bin/time -f %M "$@" --root "$work/state-$name" run --bundle "$work/bundle" "mem-$name" 2>&1 >/dev/null | tail -1
}

time_cmd() {
    local start end i
    start=$(now_ns)
    for i in $(seq "$N"); do "$@" >/dev/null 2>&1 || return 1; done
    end=$(now_ns)
    echo "scale=2; ($end - $start) / 1000000 / $N" | bc
}

command -v bc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q bc >/dev/null

echo "== lifecycle: $N x run of busybox 'true' (create .. delete)"
printf "%-12s %10s %10s %10s\n" runtime "ms/run" "x jaula" "peak KiB"
base=$(time_runtime jaula "$JAULA")
printf "%-12s %10s %10s %10s\n" jaula-oci "$base" 1.00 "$(peak_kb jaula "$JAULA")"
for rt in runc crun youki; do
    bin=$(command -v "$rt" || true)
    [ -n "$bin" ] || continue
    if ms=$(time_runtime "$rt" "$bin"); then
        printf "%-12s %10s %10s %10s\n" "$rt" "$ms" "$(echo "scale=2; $ms / $base" | bc)" "$(peak_kb "$rt" "$bin")"
    else
        printf "%-12s %10s\n" "$rt" "fails here (e.g. refuses hybrid cgroups)"
    fi
done
if command -v bwrap >/dev/null; then
    ms=$(time_cmd bwrap --bind "$work/bundle/rootfs" / --proc /proc --dev /dev --unshare-all true)
    printf "%-12s %10s %10s %10s\n" bwrap "$ms" "$(echo "scale=2; $ms / $base" | bc)" "(no cgroups)"
fi
ms=$(time_cmd unshare -fpmiu --mount-proc="$work/bundle/rootfs/proc" chroot "$work/bundle/rootfs" true)
printf "%-12s %10s %10s %10s\n" unshare "$ms" "$(echo "scale=2; $ms / $base" | bc)" "(bare)"

echo
echo "== exec latency into a running container"
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["args"] = ["sleep", "3600"]
json.dump(c, open(p, "w"))
PY
"$JAULA" --root "$work/state-jaula" run -d --bundle "$work/bundle" bench-exec
sleeper=1
pid=$("$JAULA" --root "$work/state-jaula" state bench-exec | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
ns=$(time_cmd nsenter -t "$pid" -a true)
ex=$(time_cmd "$JAULA" --root "$work/state-jaula" exec bench-exec true)
printf "%-14s %10s ms\n" nsenter "$ns"
printf "%-14s %10s ms  (%sx nsenter; budget 2x)\n" "jaula-oci exec" "$ex" "$(echo "scale=2; $ex / $ns" | bc)"

echo
echo "== TCP throughput: host loopback vs an isolated server vs a veth server"
cargo build --release -q -p jaula-cli --bin jaula
JAULA_SRV=$(pwd)/target/x86_64-unknown-linux-gnu/release/jaula
MB=${BENCH_MB:-1000}
SINK='while true; do nc -l -p 9000 > /dev/null; done'
home=$(mktemp -d /tmp/jaula-bench-home.XXXXXX)
chmod 700 "$home"
ns=jaula-bench-$$
sinks=()
srv() { JAULA_HOME=$home "$JAULA_SRV" --root "$work/state-srv" "$@"; }
vsrv() { nsenter --net="/run/netns/$ns" env JAULA_HOME="$home" "$JAULA_SRV" --root "$work/state-veth" "$@"; }
net_cleanup() {
    for p in "${sinks[@]}"; do kill -- -"$p" 2>/dev/null || true; done
    srv destroy tput --yes --force >/dev/null 2>&1 || true
    srv destroy thost --yes --force >/dev/null 2>&1 || true
    if ip netns list | grep -qw "$ns"; then
        vsrv destroy tveth --yes --force >/dev/null 2>&1 || true
        ip netns del "$ns"
    fi
    rm -rf "$home"
}
trap 'net_cleanup; cleanup' EXIT

# push ADDR PORT [netns]: MiB/s of pushing $MB MiB to ADDR:PORT (best of 3).
push() {
    local run=(); [ -n "${3:-}" ] && run=(nsenter --net="/run/netns/$3")
    "${run[@]}" python3 - "$MB" "$1" "$2" <<'PY'
import socket, sys, time
mb, addr, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
buf = b"\0" * (1 << 20)
best = 0.0
for _ in range(3):
    for _ in range(100):
        try:
            s = socket.create_connection((addr, port)); break
        except OSError:
            time.sleep(0.1)
    t = time.perf_counter()
    for _ in range(mb):
        s.sendall(buf)
    s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
    best = max(best, mb / (time.perf_counter() - t))
print(f"{best:.0f}")
PY
}

# The servers' sink, run on the host side on port 9001, in its own process group so
# exactly it can be ended.
host_sink() {  # host_sink [netns]
    local run=(); [ -n "${1:-}" ] && run=(nsenter --net="/run/netns/$1")
    setsid "${run[@]}" busybox sh -c "while true; do busybox nc -l -p 9001 > /dev/null; done" </dev/null >/dev/null 2>&1 &
    sinks+=("$!")
}

srv build tput --method busybox --ip 127.0.1.250 --init command -- sh -c "$SINK" >/dev/null
srv start tput
# The same server with the host's network and no isolation: the fair baseline for what
# isolation itself costs (both pay seccomp and cgroup accounting alike).
srv build thost --method busybox --net host --init command -- sh -c "${SINK/9000/9002}" >/dev/null
srv start thost
host_sink
host=$(push 127.0.0.1 9001)
plain=$(push 127.0.0.1 9002)
iso=$(push 127.0.1.250 9000)

# veth traffic stays inside a network namespace made for this run (its own bridge and
# private addresses), never on the host's interfaces.
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
vsrv build tveth --method busybox --net veth --init command -- sh -c "$SINK" >/dev/null
vsrv start tveth
vaddr=$(vsrv list --json | python3 -c 'import json,sys; print([r for r in json.load(sys.stdin) if r["name"]=="tveth"][0]["ip"][0].split("/")[0])')
host_sink "$ns"
nhost=$(push 127.0.0.1 9001 "$ns")
veth=$(push "$vaddr" 9000 "$ns")

printf "%-24s %8s MiB/s\n" "host process" "$host"
printf "%-24s %8s MiB/s\n" "server, host network" "$plain"
printf "%-24s %8s MiB/s  (%sx the host-network server; budget: within 2%%; %sx a bare host process)\n" "server, isolated (eBPF)" "$iso" "$(echo "scale=3; $iso / $plain" | bc)" "$(echo "scale=3; $iso / $host" | bc)"
printf "%-24s %8s MiB/s  (%sx host loopback in the same netns: %s MiB/s)\n" "veth + bridge" "$veth" "$(echo "scale=3; $veth / $nhost" | bc)" "$nhost"
