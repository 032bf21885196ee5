#!/usr/bin/env bash
# Stores next to code and into it: nanobench's `datacode` loop (a counter in the loop's own
# 4 KiB page) and `patch` loop (patch an imm32 in a function in another page, then call it),
# under popek's JIT, popek's interpreter and QEMU's TCG (the very same ELF).
#
# Usage: benches/smc.sh [n=N] [rounds=R]
#   n       iterations of the timed runs (default 200000); every runner also runs n=1000
#   rounds  interleaved rounds of every runner (default 5)
#
# "per iteration" = (t(N) - t(1000)) / (N - 1000), medians over the rounds: the steady-state
# cost of one loop iteration without start-up (QEMU's firmware, popek's boot). Needs a
# release build (cargo build --release) and, for the QEMU column, qemu-system-i386.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
n=200000
rounds=5
for arg in "$@"; do
    case "$arg" in
    n=*) n="${arg#n=}" ;;
    rounds=*) rounds="${arg#rounds=}" ;;
    *) echo "smc: unknown argument \`$arg\`" >&2; exit 2 ;;
    esac
done
case "$n$rounds" in *[!0-9]*) echo "smc: n and rounds are whole numbers" >&2; exit 2 ;; esac
[ "$n" -gt 1000 ] || { echo "smc: n must be above 1000" >&2; exit 2; }
popek="${CARGO_TARGET_DIR:-$root/target}/release/popek"
[ -x "$popek" ] || (cd "$root" && cargo build -q --release)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo run -q -p popek-guests --example extract -- "$work" >/dev/null)
elf="$work/nanobench.elf"
runners=(jit interp)
if command -v qemu-system-i386 >/dev/null 2>&1; then runners+=(qemu); fi

# Runs runner $1 on loop $2 with n=$3; prints the wall time in nanoseconds.
timed() {
    local start end status=0
    start=$(date +%s%N)
    case "$1" in
    qemu) qemu-system-i386 -nographic -serial stdio -display none -monitor none -nic none -no-reboot -m 128 \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$elf" -append "nanobench only=$2 n=$3" \
        >"$work/out" </dev/null 2>&1 || status=$? ;;
    *) "$popek" run "$elf" --engine "$1" --cmdline "only=$2 n=$3" >"$work/out" 2>&1 || status=$? ;;
    esac
    end=$(date +%s%N)
    if [ "$status" -ne 1 ] || ! grep -q "nanobench: PASS" "$work/out"; then
        echo "smc: $1 $2 n=$3 failed (status $status)" >&2
        cat "$work/out" >&2
        exit 1
    fi
    echo $((end - start))
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| loop | $(printf '%s | ' "${runners[@]}")"
echo "|---|$(printf -- '---:|%.0s' "${runners[@]}")"
for loop in datacode patch; do
    declare -A per=()
    for ((r = 0; r < rounds; r++)); do
        for runner in "${runners[@]}"; do
            small=$(timed "$runner" "$loop" 1000)
            big=$(timed "$runner" "$loop" "$n")
            per[$runner]+="$(( (big - small) / (n - 1000) )) "
        done
    done
    row="| $loop |"
    for runner in "${runners[@]}"; do
        row+=" $(echo "${per[$runner]}" | tr ' ' '\n' | grep . | median) ns |"
    done
    echo "$row"
    unset per
done
