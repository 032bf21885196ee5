#!/usr/bin/env bash
# Long runs stay flat: runs guests under popek's JIT for a while and samples the process's
# resident set size (VmRSS in /proc/PID/status) once a second. Prints start, peak and end
# RSS per workload.
#
# Usage: benches/soak.sh [secs=S]
#   secs  wall-clock seconds per workload (default 60); each run is stopped by --timeout
#
# Workloads: `compute` (the integer benchmark, many iterations), nanobench's `patch` loop
# (a store into code, then a call of it: one invalidation and one retranslation per
# iteration) and its `datacode` loop (stores beside code). Needs a release build.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
secs=60
for arg in "$@"; do
    case "$arg" in
    secs=*) secs="${arg#secs=}" ;;
    *) echo "soak: unknown argument \`$arg\`" >&2; exit 2 ;;
    esac
done
case "$secs" in '' | *[!0-9]*) echo "soak: secs is a whole number" >&2; exit 2 ;; esac
[ "$secs" -ge 2 ] || { echo "soak: secs must be at least 2" >&2; exit 2; }
popek="${CARGO_TARGET_DIR:-$root/target}/release/popek"
[ -x "$popek" ] || (cd "$root" && cargo build -q --release)

echo "| workload | seconds | start RSS | peak RSS | end RSS |"
echo "|---|---:|---:|---:|---:|"
soak() {
    local name="$1" cmdline="$2" guest="$3"
    "$popek" run "$guest" --cmdline "$cmdline" --timeout "$secs" >/dev/null 2>&1 &
    local pid=$! start="" peak=0 last=0 rss
    while kill -0 "$pid" 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        if [ -n "$rss" ]; then
            [ -n "$start" ] || start=$rss
            [ "$rss" -gt "$peak" ] && peak=$rss
            last=$rss
        fi
        sleep 1
    done
    wait "$pid" || true
    echo "| $name | $secs | $((start / 1024)) MiB | $((peak / 1024)) MiB | $((last / 1024)) MiB |"
}
soak compute "iters=100000" compute
soak "nanobench patch" "only=patch n=4000000000" nanobench
soak "nanobench datacode" "only=datacode n=4000000000" nanobench
