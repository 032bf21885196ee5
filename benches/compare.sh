#!/usr/bin/env bash
# Compares popek with its peers on the `compute` guest: popek's JIT, popek's interpreter,
# QEMU's TCG (qemu-system-i386 -accel tcg -kernel, the very same ELF) and a native build of the very same
# compute.c as a 32-bit Linux program (gcc -m32 -O2, with benches/native/ standing in for the
# guest runtime, and the guest runtime's own string and 64-bit division routines: benches/lib.sh).
# Every runner must print the guest's exact output (the same checksums).
#
# Usage: benches/compare.sh [iters=N] [rounds=R] [qemu=0] [native=0]
#   iters   compute's iteration count for the timed runs (default 20; also env ITERS)
#   rounds  interleaved rounds of every runner (default 5; also env ROUNDS)
#   qemu=0, native=0   leave that runner out
#
# Each round runs every runner once at iters=1 and once at iters=N, in turn, timing the whole
# process; the table shows medians. "per iteration" = (t(N) - t(1)) / (N - 1): the steady-state
# cost of one more round of the workload, without start-up (QEMU's firmware, popek's boot and
# first translation, the native process's exec). Ratios are speed ratios: JIT/X = time(X) /
# time(JIT), so above 1 the JIT is faster than X, below 1 slower.
#
# Missing tools: as root, qemu-system-i386 (apt package qemu-system-x86) and the 32-bit C
# library for gcc -m32 host programs (gcc-multilib) are installed with apt-get; otherwise that
# runner is left out with a note. Output: progress on stderr, the Markdown report on stdout.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
iters="${ITERS:-20}"
rounds="${ROUNDS:-5}"
want_qemu=1
want_native=1
for arg in "$@"; do
    case "$arg" in
    iters=*) iters="${arg#iters=}" ;;
    rounds=*) rounds="${arg#rounds=}" ;;
    qemu=*) want_qemu="${arg#qemu=}" ;;
    native=*) want_native="${arg#native=}" ;;
    -h | --help)
        sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "compare: unknown argument \`$arg\` (try --help)" >&2
        exit 2
        ;;
    esac
done
case "$iters" in '' | *[!0-9]*) echo "compare: iters must be a whole number >= 2" >&2; exit 2 ;; esac
case "$rounds" in '' | *[!0-9]*) echo "compare: rounds must be a whole number >= 1" >&2; exit 2 ;; esac
if [ "$iters" -lt 2 ] || [ "$rounds" -lt 1 ]; then
    echo "compare: need iters >= 2 and rounds >= 1" >&2
    exit 2
fi

prog=compare
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=benches/lib.sh
. "$here/lib.sh"

# ---- popek, QEMU and a native build of the same compute.c (benches/lib.sh)
build_popek
elf="$work/img/compute.elf"
qemu=""
[ "$want_qemu" != 0 ] && find_qemu
native=""
[ "$want_native" != 0 ] && build_native compute

# ---- runners: each prints the guest's COM1 output on stdout
run_jit() { "$popek" run "$elf" --cmdline "iters=$1"; }
run_interp() { "$popek" run "$elf" --engine interp --cmdline "iters=$1"; }
run_qemu() { qemu_boot "$elf" "iters=$1" "$work/qemu.raw"; }
run_native() { "$native" "iters=$1"; }

runners=(jit interp)
[ -n "$qemu" ] && runners+=(qemu)
[ -n "$native" ] && runners+=(native)

# The guest's expected output at iters=N: its own expected text with the first line changed.
expected() { { echo "compute: iters=$1"; tail -n +2 "$work/img/compute.expected"; }; }

# Times one run (nanoseconds into $elapsed) and checks its output and exit status.
time_run() {
    local runner="$1" n="$2" status=0 start end want=1
    start="$(date +%s%N)"
    "run_$runner" "$n" >"$work/out" 2>"$work/err" || status=$?
    end="$(date +%s%N)"
    [ "$runner" = qemu ] && strip_banner "$work/qemu.raw" >"$work/out"
    # Guests end through the debug-exit port: status 1 is the guest's exit(0); native returns 0.
    [ "$runner" = native ] && want=0
    if [ "$status" -ne "$want" ] || ! cmp -s "$work/out" <(expected "$n"); then
        log "$runner iters=$n: exit status $status (want $want), or the output is not the guest's:"
        diff <(expected "$n") "$work/out" | sed 's/^/    /' | head -20 >&2 || true
        sed 's/^/    /' "$work/err" | head -5 >&2
        exit 1
    fi
    elapsed=$((end - start))
}

declare -A t1 tn
log "runners: ${runners[*]}; $rounds rounds of iters=1 and iters=$iters, interleaved"
for ((r = 1; r <= rounds; r++)); do
    for runner in "${runners[@]}"; do
        time_run "$runner" 1
        t1[$runner]+="$elapsed "
        time_run "$runner" "$iters"
        tn[$runner]+="$elapsed "
    done
    log "round $r of $rounds done"
done

declare -A m1 mn per
for runner in "${runners[@]}"; do
    m1[$runner]="$(echo "${t1[$runner]}" | median)"
    mn[$runner]="$(echo "${tn[$runner]}" | median)"
    per[$runner]=$(((mn[$runner] - m1[$runner]) / (iters - 1)))
done

label() {
    case "$1" in
    jit) echo "popek JIT" ;;
    interp) echo "popek interpreter" ;;
    qemu) echo "QEMU TCG ($(qemu_version))" ;;
    native) echo "native (gcc -m32 -O2)" ;;
    esac
}

"$popek" run "$elf" --cmdline "iters=$iters" --stats >/dev/null 2>"$work/stats" || true
insns="$(awk '/instructions retired/ { print $3 }' "$work/stats")"
cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
commit="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"

echo "### popek vs its peers: \`compute\`, iters=$iters"
echo
echo "Machine: $cpu, $(nproc) cores, Linux $(uname -r); popek $commit; $rounds interleaved rounds, medians."
echo "At iters=$iters the guest retires $insns instructions."
echo
echo "| runner | iters=1 | iters=$iters | per iteration | JIT/X (iters=$iters) | JIT/X (per iteration) |"
echo "|---|---:|---:|---:|---:|---:|"
for runner in "${runners[@]}"; do
    echo "| $(label "$runner") | $(ms "${m1[$runner]}") | $(ms "${mn[$runner]}") | $(ms "${per[$runner]}") |" \
        "$(ratio "${mn[$runner]}" "${mn[jit]}") | $(ratio "${per[$runner]}" "${per[jit]}") |"
done
echo
echo "Whole-process wall time. JIT/X = time(X) / time(JIT): above 1 the JIT is that many times faster"
echo "than X, below 1 slower. \"per iteration\" = (t(iters=$iters) - t(iters=1)) / $((iters - 1)): start-up excluded."
summary="JIT/interp $(ratio "${per[interp]}" "${per[jit]}")"
[ -n "$qemu" ] && summary+=", JIT/QEMU $(ratio "${per[qemu]}" "${per[jit]}")"
[ -n "$native" ] && summary+=", JIT/native $(ratio "${per[native]}" "${per[jit]}")"
echo
echo "Per iteration: $summary."
