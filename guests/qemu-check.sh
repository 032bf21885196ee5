#!/usr/bin/env bash
# Boots every built-in guest under QEMU and compares its serial output and exit status with
# guests/expected/NAME.txt -- the same images and expectations the popek tests use (or with
# guests/expected/NAME.qemu.txt, where a guest documents that QEMU is wrong).
#
# Usage: guests/qemu-check.sh [NAME...]     (default: all guests)
# Needs qemu-system-i386 (Debian/Ubuntu: apt-get install qemu-system-x86); skips without it.
# Environment: QEMU (default qemu-system-i386), QEMU_TIMEOUT seconds per guest (default 60),
# BLESS=1 rewrites guests/expected/NAME.txt from QEMU's output instead of comparing (and
# creates it first if a named guest does not have it yet).
#
# A guest with a disk (`disk`) gets the image that `extract` wrote as NAME.img as the primary
# IDE master (-drive file=NAME.img,format=raw,if=ide,index=0).
#
# A guest that QEMU cannot run at all has expected/NAME.qemu-skip, whose first line says why:
# the script prints it as a SKIP line instead of running QEMU.
#
# With -nographic, SeaBIOS prints its banner on the serial port before the kernel runs; the
# script drops everything up to and including SeaBIOS's "Booting from ROM.." line, so what is
# compared is exactly what the guest wrote to COM1.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
qemu="${QEMU:-qemu-system-i386}"
limit="${QEMU_TIMEOUT:-60}"

if ! command -v "$qemu" >/dev/null 2>&1; then
    echo "qemu-check: SKIP: $qemu is not installed (apt-get install qemu-system-x86)"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A new guest's `guest!` line embeds expected/NAME.txt, so the build needs the file before
# QEMU can say what goes in it: when blessing named guests that have sources, create the
# missing files (empty) first.
if [ -n "${BLESS:-}" ]; then
    for name in "$@"; do
        if [ ! -e "$here/expected/$name.txt" ] && { [ -f "$here/kernels/$name.c" ] || [ -f "$here/kernels/$name.S" ]; }; then
            echo "qemu-check: $name: creating expected/$name.txt (empty) for the build"
            : >"$here/expected/$name.txt"
        fi
    done
fi

echo "qemu-check: building guests (cargo build -p popek-guests)"
(cd "$root" && cargo build -q -p popek-guests --example extract)
target="${CARGO_TARGET_DIR:-$root/target}"
names=("$@")
while read -r name; do
    if [ $# -eq 0 ]; then names+=("$name"); fi
done < <("$target/debug/examples/extract" "$work/img")

failed=0
for name in "${names[@]}"; do
    elf="$work/img/$name.elf"
    if [ ! -f "$elf" ]; then
        echo "qemu-check: $name: no such guest"
        failed=1
        continue
    fi
    if [ -f "$here/expected/$name.qemu-skip" ]; then
        echo "qemu-check: $name: SKIP: $(head -n 1 "$here/expected/$name.qemu-skip")"
        continue
    fi
    cmdline="$(cat "$work/img/$name.cmdline")"
    args=(-nographic -serial stdio -display none -monitor none -nic none -no-reboot -m 128
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$elf")
    if [ -n "$cmdline" ]; then args+=(-append "$cmdline"); fi
    # A guest with a disk gets it (a fresh copy: the guest writes to it) as the IDE master.
    if [ -f "$work/img/$name.img" ]; then
        args+=(-drive "file=$work/img/$name.img,format=raw,if=ide,index=0")
    fi
    status=0
    timeout "$limit" "$qemu" "${args[@]}" >"$work/$name.raw" 2>"$work/$name.err" </dev/null || status=$?
    # Drop the SeaBIOS banner (everything through the last "Booting from ROM..").
    marker="Booting from ROM.."
    off="$(grep -a -b -o "$marker" "$work/$name.raw" | tail -n 1 | cut -d: -f1 || true)"
    if [ -n "$off" ]; then
        tail -c +"$((off + ${#marker} + 1))" "$work/$name.raw" >"$work/$name.out"
    else
        cp "$work/$name.raw" "$work/$name.out"
    fi
    # Where QEMU is wrong, expected/NAME.qemu.txt holds what QEMU prints (the guest's
    # source and guests/src/tests.rs say which lines differ and why); popek's own
    # expectation stays in expected/NAME.txt.
    want="$here/expected/$name.txt"
    if [ -f "$here/expected/$name.qemu.txt" ]; then
        want="$here/expected/$name.qemu.txt"
    fi
    if [ -n "${BLESS:-}" ]; then
        cp "$work/$name.out" "$want"
    fi
    if [ "$status" -ne 1 ]; then
        echo "qemu-check: $name: FAIL: exit status $status, expected 1"
        sed 's/^/    /' "$work/$name.err"
        failed=1
    elif ! cmp -s "$work/$name.out" "$want"; then
        echo "qemu-check: $name: FAIL: output differs from ${want#"$root/"}"
        diff -u "$want" "$work/$name.out" | sed 's/^/    /' || true
        failed=1
    else
        echo "qemu-check: $name: ok (exit status 1, $(wc -c <"$work/$name.out") bytes match)"
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "qemu-check: FAILED"
    exit 1
fi
echo "qemu-check: all ${#names[@]} guests match"
