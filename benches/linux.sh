#!/usr/bin/env bash
# Debian's Linux under popek's JIT and under QEMU TCG, side by side, on the same files
# (guests/linux/assets.sh fetches them): the kernel and the initramfs whose /init
# (guests/linux/init-boot) prints `init: start`, runs its workload, prints `init: end` and
# reboots.
#
# Usage: benches/linux.sh [rounds=R]
#   rounds  interleaved rounds (default 3): each round runs popek, then QEMU, once each
#
# Both boot the bzImage directly with 256 MiB, `-M isapc -cpu pentium2` for QEMU (the
# machine the test's expected output comes from) and the same command line. Printed, in
# wall-clock seconds from process start, medians over the rounds:
#   to `Linux version`  the kernel's first line: start-up, plus QEMU's BIOS
#   to `init: start`    the kernel's boot, up to its first user-space line
#   to `init: end`      the whole run the benchmark is about
#   /init               `init: end` - `init: start`: the user-space workload alone, with
#                       both emulators' start-up and the kernel's boot cancelled
# and the ratio popek / QEMU of the last two. Needs a release build (cargo build
# --release); CARGO_TARGET_DIR is honoured, POPEK overrides the binary, QEMU the emulator.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
rounds=3
for arg in "$@"; do
    case "$arg" in
    rounds=*) rounds="${arg#rounds=}" ;;
    *) echo "linux: unknown argument \`$arg\`" >&2; exit 2 ;;
    esac
done
case "$rounds" in '' | *[!0-9]*) echo "linux: rounds is a whole number" >&2; exit 2 ;; esac
popek="${POPEK:-${CARGO_TARGET_DIR:-$root/target}/release/popek}"
[ -x "$popek" ] || (cd "$root" && cargo build -q --release)
qemu="${QEMU:-qemu-system-i386}"
command -v "$qemu" >/dev/null || { echo "linux: $qemu not found" >&2; exit 2; }
command -v python3 >/dev/null || { echo "linux: needs python3 (to timestamp the console)" >&2; exit 2; }
assets="$(bash "$root/guests/linux/assets.sh")"
append="console=ttyS0 panic=-1 acpi=off noapic nolapic"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# time_run NAME CMD...: runs CMD and prints "NAME LINUX START END" (seconds since start;
# "-" for a marker never seen).
time_run() {
    local name="$1"
    shift
    python3 - "$name" "$@" <<'EOF'
import os, subprocess, sys, time
name, cmd = sys.argv[1], sys.argv[2:]
start = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
seen, marks = b"", {}
deadline = start + 1800
while time.monotonic() < deadline:
    chunk = os.read(p.stdout.fileno(), 4096)
    if not chunk:
        break
    now = time.monotonic() - start
    seen += chunk
    for key, text in (("linux", b"Linux version"), ("start", b"init: start"), ("end", b"init: end")):
        if text in seen:
            marks.setdefault(key, now)
    if "end" in marks or b"Kernel panic" in seen:
        break
p.kill()
p.wait()
f = lambda k: f"{marks[k]:.3f}" if k in marks else "-"
print(name, f("linux"), f("start"), f("end"), flush=True)
EOF
}

for r in $(seq 1 "$rounds"); do
    time_run popek "$popek" run "$assets/vmlinuz" --initrd "$assets/initrd-boot.gz" --mem 256M \
        --append "$append" --timeout 1800
    time_run qemu "$qemu" -M isapc -cpu pentium2 -m 256 -nographic -no-reboot \
        -kernel "$assets/vmlinuz" -initrd "$assets/initrd-boot.gz" -append "$append"
done | tee "$work/times" >&2

python3 - "$work/times" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, linux, start, end = line.split()
    if "-" in (linux, start, end):
        sys.exit(f"linux: a {name} run did not reach `init: end`: {line.strip()}")
    rows.setdefault(name, []).append((float(linux), float(start), float(end), float(end) - float(start)))
print("| | to `Linux version` (s) | to `init: start` (s) | to `init: end` (s) | /init (s) |")
print("|---|---|---|---|---|")
med = {}
for name in ("popek", "qemu"):
    cols = [statistics.median(c) for c in zip(*rows[name])]
    med[name] = cols
    label = "popek JIT" if name == "popek" else "QEMU TCG"
    print(f"| {label} | " + " | ".join(f"{c:.2f}" for c in cols) + " |")
n = len(rows["popek"])
print(f"\nto `init: end`: popek takes {med['popek'][2] / med['qemu'][2]:.2f}x QEMU's time; "
      f"/init alone {med['popek'][3] / med['qemu'][3]:.2f}x ({n} rounds, medians)")
EOF
