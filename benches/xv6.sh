#!/usr/bin/env bash
# xv6 under popek's JIT and under QEMU TCG, side by side: time to the shell's first `$ `
# prompt, and time of `usertests` (from that prompt to `ALL TESTS PASSED`).
#
# Usage: benches/xv6.sh XV6_DIR [rounds=R] [mem=M]
#   XV6_DIR  a built xv6-public checkout (`make kernel fs.img`); popek holds no xv6 code,
#            see the book's "A real PC" chapter for how to fetch and build it
#   rounds   interleaved rounds (default 3): each round runs popek, then QEMU, once each
#   mem      guest RAM in MiB (default 256)
#
# Both boot the Multiboot `kernel` directly (`popek run kernel`, `qemu-system-i386 -kernel
# kernel`) with a fresh copy of `fs.img` as the IDE primary slave; `usertests` is typed
# at the first prompt. "to xv6..." is the time to the kernel's first line, which is almost
# all start-up: QEMU runs SeaBIOS (and iPXE's option ROM) first, popek starts the kernel
# directly. Times are wall-clock seconds from
# process start, medians over the rounds; each run is killed once it has printed
# `ALL TESTS PASSED` (xv6 never halts). Needs a release build (cargo build --release);
# CARGO_TARGET_DIR is honoured, POPEK overrides the binary, QEMU the emulator.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: benches/xv6.sh XV6_DIR [rounds=R] [mem=M]" >&2; exit 2; }
xv6="$(cd "$1" && pwd)"
shift
rounds=3
mem=256
for arg in "$@"; do
    case "$arg" in
    rounds=*) rounds="${arg#rounds=}" ;;
    mem=*) mem="${arg#mem=}" ;;
    *) echo "xv6: unknown argument \`$arg\`" >&2; exit 2 ;;
    esac
done
case "$rounds$mem" in *[!0-9]*) echo "xv6: rounds and mem are whole numbers" >&2; exit 2 ;; esac
for f in kernel fs.img; do
    [ -f "$xv6/$f" ] || { echo "xv6: no $xv6/$f (run \`make kernel fs.img\` there)" >&2; exit 2; }
done
popek="${POPEK:-${CARGO_TARGET_DIR:-$root/target}/release/popek}"
[ -x "$popek" ] || (cd "$root" && cargo build -q --release)
qemu="${QEMU:-qemu-system-i386}"
command -v "$qemu" >/dev/null || { echo "xv6: $qemu not found" >&2; exit 2; }
command -v python3 >/dev/null || { echo "xv6: needs python3 (to timestamp the console)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf 'usertests\n' >"$work/input"

# time_run NAME MODE CMD...: runs CMD and prints "NAME XV6 PROMPT DONE" (seconds since
# start; "-" for a marker never seen). MODE `upfront`: `usertests\n` is CMD's whole stdin
# (popek's --input - reads it before the guest starts and hands it over as the guest
# listens); MODE `at-prompt`: it is typed once the first prompt is out (QEMU's serial
# port takes input at once, and what arrives during the firmware is lost).
time_run() {
    local name="$1" mode="$2"
    shift 2
    python3 - "$name" "$mode" "$work/input" "$@" <<'EOF'
import os, subprocess, sys, time
name, mode, input_path, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
line = open(input_path, "rb").read()
start = time.monotonic()
stdin = open(input_path, "rb") if mode == "upfront" else subprocess.PIPE
p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
seen, marks = b"", {}
deadline = start + 1800
while time.monotonic() < deadline:
    chunk = os.read(p.stdout.fileno(), 4096)
    if not chunk:
        break
    now = time.monotonic() - start
    seen += chunk
    if b"xv6..." in seen:
        marks.setdefault("xv6", now)
    if b"$ " in seen and "prompt" not in marks:
        marks["prompt"] = now
        if mode == "at-prompt":
            p.stdin.write(line)
            p.stdin.flush()
    if b"ALL TESTS PASSED" in seen:
        marks["done"] = now
        break
    if seen.count(b"$ ") >= 2 or b"panic" in seen:
        break  # usertests ended (the shell prompts again) without passing, or xv6 panicked
p.kill()
p.wait()
f = lambda k: f"{marks[k]:.3f}" if k in marks else "-"
print(name, f("xv6"), f("prompt"), f("done"), flush=True)
EOF
}

for r in $(seq 1 "$rounds"); do
    cp "$xv6/fs.img" "$work/fs-popek.img"
    time_run popek upfront "$popek" run "$xv6/kernel" --mem "${mem}M" --disk "$work/fs-popek.img,index=1" --input - --timeout 1800
    cp "$xv6/fs.img" "$work/fs-qemu.img"
    time_run qemu at-prompt "$qemu" -nographic -no-reboot -kernel "$xv6/kernel" -m "$mem" \
        -drive "file=$work/fs-qemu.img,index=1,media=disk,format=raw"
done | tee "$work/times" >&2

# Medians: boot = PROMPT, usertests = DONE - PROMPT.
python3 - "$work/times" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, first, prompt, done = line.split()
    if "-" in (first, prompt, done):
        sys.exit(f"xv6: a {name} run did not reach ALL TESTS PASSED: {line.strip()}")
    rows.setdefault(name, []).append((float(first), float(prompt), float(done) - float(prompt)))
print("| | to `xv6...` (s) | to `$` (s) | usertests (s) |")
print("|---|---|---|---|")
for name in ("popek", "qemu"):
    cols = list(zip(*rows[name]))
    label = "popek JIT" if name == "popek" else "QEMU TCG"
    print(f"| {label} | " + " | ".join(f"{statistics.median(c):.2f}" for c in cols) + " |")
p, q = (statistics.median(list(zip(*rows[n]))[2]) for n in ("popek", "qemu"))
print(f"\nusertests: popek takes {p / q:.2f}x QEMU's time ({len(rows['popek'])} rounds, medians)")
EOF
