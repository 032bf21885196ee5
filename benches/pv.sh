#!/usr/bin/env bash
# Full virtualization against paravirtualization, per operation: nanobench's irq (CLI; STI),
# cr3 (MOV to CR3), invlpg (INVLPG and a load) and console (a 32-byte line to COM1) loops, run
# natively-sensitive (`only=LOOP`: the instruction, a callout to the VMM under the JIT) and
# paravirtualized (`pv=1 only=LOOP`: a VMCALL hypercall in its place), under popek's JIT and
# interpreter. The very same image (the built-in `nanobench`) in every run.
#
# Usage: benches/pv.sh [n=N] [rounds=R] [engines=jit,interp]
#   n        iterations of the timed runs (default 100000; the console loop runs n/10 lines);
#            every runner also runs n/100 (console: n/1000), and the difference is timed
#   rounds   interleaved rounds (default 5): each round runs every engine and mode once
#   engines  comma-separated subset of jit,interp (default both)
#
# "per op" = (t(N) - t(small)) / (N - small), medians over the rounds: the steady-state cost
# of one loop iteration without start-up (popek's boot, the guest's set-up). "insns" is the
# guest instructions per iteration, from --stats (exact: runs are deterministic). Needs a
# release build (cargo build --release); CARGO_TARGET_DIR is honoured.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
n=100000
rounds=5
engines=jit,interp
for arg in "$@"; do
    case "$arg" in
    n=*) n="${arg#n=}" ;;
    rounds=*) rounds="${arg#rounds=}" ;;
    engines=*) engines="${arg#engines=}" ;;
    *) echo "pv: unknown argument \`$arg\`" >&2; exit 2 ;;
    esac
done
case "$n$rounds" in *[!0-9]*) echo "pv: n and rounds are whole numbers" >&2; exit 2 ;; esac
[ "$n" -ge 10000 ] || { echo "pv: n must be at least 10000" >&2; exit 2; }
[ "$rounds" -ge 1 ] || { echo "pv: rounds must be at least 1" >&2; exit 2; }
IFS=, read -r -a engine_list <<<"$engines"
for e in "${engine_list[@]}"; do
    case "$e" in jit | interp) ;; *) echo "pv: engines are jit and interp, not \`$e\`" >&2; exit 2 ;; esac
done
popek="${CARGO_TARGET_DIR:-$root/target}/release/popek"
[ -x "$popek" ] || (cd "$root" && cargo build -q --release)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Runs engine $1, mode $2 (native|pv) of loop $3 with n=$4; prints "nanoseconds instructions".
timed() {
    local start end status=0 pv=""
    [ "$2" = pv ] && pv="pv=1 "
    start=$(date +%s%N)
    "$popek" run nanobench --engine "$1" --cmdline "${pv}only=$3 n=$4" --stats >"$work/out" 2>"$work/err" || status=$?
    end=$(date +%s%N)
    if [ "$status" -ne 1 ] || ! grep -q "nanobench: PASS" "$work/out"; then
        echo "pv: $1 $2 $3 n=$4 failed (status $status)" >&2
        cat "$work/out" "$work/err" >&2
        exit 1
    fi
    # The pv runs must have found the interface (else they would time the native loop).
    if [ "$2" = pv ] && ! grep -q "says popekpopekpv: hypercalls" "$work/out"; then
        echo "pv: $1 $3: the guest found no hypercall interface" >&2
        exit 1
    fi
    echo "$((end - start)) $(awk '/^instructions retired:/ {print $3}' "$work/err")"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Nanoseconds as a readable figure.
human() { awk -v ns="$1" 'BEGIN { if (ns >= 10000) printf "%.1f µs", ns / 1000; else printf "%d ns", ns }'; }

header="| loop |"
rule="|---|"
for e in "${engine_list[@]}"; do
    header+=" $e native | $e hypercall | $e PV/native |"
    rule+="---:|---:|---:|"
done
header+=" insns native | insns hypercall |"
rule+="---:|---:|"
echo "nanobench per operation, n=$n (console: n/10), medians of $rounds interleaved rounds" >&2
echo "$header"
echo "$rule"
for loop in irq cr3 invlpg console; do
    big=$n
    [ "$loop" = console ] && big=$((n / 10))
    small=$((big / 100))
    declare -A per=() insns=()
    for ((r = 0; r < rounds; r++)); do
        for e in "${engine_list[@]}"; do
            for mode in native pv; do
                res=$(timed "$e" "$mode" "$loop" "$small")
                read -r t_small i_small <<<"$res"
                res=$(timed "$e" "$mode" "$loop" "$big")
                read -r t_big i_big <<<"$res"
                per[$e.$mode]+="$(((t_big - t_small) / (big - small))) "
                insns[$mode]="$(awk -v a="$i_big" -v b="$i_small" -v d="$((big - small))" 'BEGIN {printf "%.1f", (a - b) / d}')"
            done
        done
    done
    row="| $loop |"
    for e in "${engine_list[@]}"; do
        nat=$(echo "${per[$e.native]}" | tr ' ' '\n' | grep . | median)
        hyp=$(echo "${per[$e.pv]}" | tr ' ' '\n' | grep . | median)
        ratio=$(awk -v a="$hyp" -v b="$nat" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        row+=" $(human "$nat") | $(human "$hyp") | $ratio |"
    done
    row+=" ${insns[native]} | ${insns[pv]} |"
    echo "$row"
    unset per insns
done
