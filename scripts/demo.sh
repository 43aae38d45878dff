#!/usr/bin/env bash
# Builds jaula and shows Linux-VServer's chbind on a mainline kernel: two busybox web
# servers both bind 0.0.0.0:8080, yet each gets only its own address (127.0.1.1 and
# 127.0.1.2), and 127.0.0.1:8080 answers nothing. Cleans up everything it made.
# Usage: sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "demo.sh needs root (namespaces, cgroups, eBPF)" >&2; exit 1; }

need=()
for p in busybox-static curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q "${need[@]}"
fi

echo "== building jaula (release)"
cargo build --release -q -p jaula-cli
bin=$(pwd)/target/x86_64-unknown-linux-gnu/release
jaula() { "$bin/jaula" --root "$state" "$@"; }

export JAULA_HOME
JAULA_HOME=$(mktemp -d /tmp/jaula-demo-home.XXXXXX)
state=$(mktemp -d /tmp/jaula-demo-state.XXXXXX)
cleanup() {
    for s in web1 web2; do
        jaula stop "$s" --timeout 2 >/dev/null 2>&1 || true
        jaula destroy "$s" --yes >/dev/null 2>&1 || true
    done
    rm -rf "$JAULA_HOME" "$state"
}
trap cleanup EXIT

show() { echo "+ jaula $*"; jaula "$@"; }

for n in 1 2; do
    show build "web$n" --method busybox --ip "127.0.1.$n" --memory 64M --pids 64 \
        --init command -- httpd -f -p 0.0.0.0:8080 -h /www
    mkdir -p "$JAULA_HOME/web$n/rootfs/www"
    echo "hello from web$n (context $(grep -m1 '^context' "$JAULA_HOME/web$n/server.toml" | tr -dc 0-9))" \
        > "$JAULA_HOME/web$n/rootfs/www/index.html"
done
show start web1 web2
sleep 0.3
show list
echo
for a in 127.0.1.1 127.0.1.2; do
    printf 'curl http://%s:8080/  ->  ' "$a"
    curl -s --max-time 3 "http://$a:8080/"
done
printf 'curl http://127.0.0.1:8080/  ->  '
if curl -s --max-time 3 http://127.0.0.1:8080/ >/dev/null; then
    echo "answered (isolation broken!)"; exit 1
else
    echo "no answer: neither server got the wildcard address"
fi
echo
show exec web1 -- sh -c 'echo "inside web1: hostname $(hostname), processes: $(ps | tail -n +2 | wc -l)"'
show ps web1
show stop web1 web2 --timeout 5
show destroy web1 --yes
show destroy web2 --yes
echo "== demo done"
