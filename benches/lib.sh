# Shell functions shared by benches/compare.sh and benches/tables.sh; source it after setting
#   prog   the script's name, for messages (log, fail)
#   root   the repository
#   work   a scratch directory the caller removes
# It defines no runner of its own: each script times what it needs with these pieces.

log() { echo "$prog: $*" >&2; }

# Installs apt packages when running as root with apt-get; returns 1 otherwise.
apt_updated=0
apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2 || return 1
        apt_updated=1
    fi
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Builds popek (release; CARGO_TARGET_DIR is honoured), sets $popek and writes every built-in
# guest to $work/img (NAME.elf, NAME.expected, NAME.cmdline).
build_popek() {
    log "building popek (cargo build --release)"
    (cd "$root" && cargo build --release -q)
    popek="${CARGO_TARGET_DIR:-$root/target}/release/popek"
    "$popek" guests --extract "$work/img" 2>/dev/null
}

# Sets $qemu to qemu-system-i386 (installing it if it can), or to "" with a note.
find_qemu() {
    qemu=""
    if ! command -v qemu-system-i386 >/dev/null 2>&1; then
        apt_install qemu-system-x86 || true
    fi
    if command -v qemu-system-i386 >/dev/null 2>&1; then
        qemu="$(command -v qemu-system-i386)"
    else
        log "qemu-system-i386 is not installed and cannot be (not root): QEMU left out"
    fi
}

# QEMU's version, e.g. 7.2.22.
qemu_version() { "$qemu" --version | head -n 1 | sed 's/.*version \([^ ]*\).*/\1/'; }

# Runs ELF $1 under QEMU's TCG with command line $2 as guests/qemu-check.sh does; COM1 (with
# SeaBIOS's banner in front) goes to $3. Any further arguments go before the command (a
# `taskset -c N`, a `/usr/bin/time ...`). Returns QEMU's exit status.
qemu_boot() {
    local elf="$1" append="$2" out="$3"
    shift 3
    "$@" "$qemu" -accel tcg -nographic -serial stdio -display none -monitor none -nic none -no-reboot -m 128 \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$elf" -append "$append" </dev/null >"$out"
}

# SeaBIOS's banner comes first on the serial port: keep what follows its "Booting from ROM.." line.
strip_banner() {
    local marker="Booting from ROM.." off
    off="$(grep -a -b -o "$marker" "$1" | tail -n 1 | cut -d: -f1 || true)"
    if [ -n "$off" ]; then tail -c +"$((off + ${#marker} + 1))" "$1"; else cat "$1"; fi
}

# Builds guests/kernels/$1.c as a 32-bit Linux program, $work/$1-native (gcc -m32 -O2, with
# benches/native/ standing in for the guest runtime), installing gcc-multilib if it must; sets
# $native to the program or to "" with a note. The program links the guest runtime's own
# string routines and 64-bit division helpers (guests/runtime/strings.c, div64.c), so that it
# does the guest's work: not the host C library's memcpy, not libgcc's __udivdi3.
build_native() {
    local name="$1"
    native=""
    # The guest's code-generation flags, minus the freestanding link (see guests/cflags.rs).
    local cflags=(-m32 -march=i686 -O2 -fno-pic -fno-pie -fno-stack-protector -fno-tree-loop-distribute-patterns
        -fcf-protection=none -mgeneral-regs-only -ffreestanding -Wall -Wextra -std=gnu11)
    local hostflags=(-m32 -march=i686 -O2 -fno-builtin -fno-tree-loop-distribute-patterns -Wall -Wextra)
    local out="$work/$name-native"
    compile_native() {
        gcc "${cflags[@]}" -I "$root/benches/native" -c "$root/guests/kernels/$name.c" -o "$work/$name.o" &&
            gcc "${hostflags[@]}" -c "$root/benches/native/host.c" -o "$work/host.o" &&
            gcc "${hostflags[@]}" -c "$root/guests/runtime/strings.c" -o "$work/strings.o" &&
            gcc "${hostflags[@]}" -c "$root/guests/runtime/div64.c" -o "$work/div64.o" &&
            gcc -m32 -no-pie "$work/$name.o" "$work/host.o" "$work/strings.o" "$work/div64.o" -o "$out" \
                -Wl,--trace-symbol=__udivdi3 -Wl,--trace-symbol=__umoddi3 \
                -Wl,--trace-symbol=__divdi3 -Wl,--trace-symbol=__moddi3 -Wl,--trace-symbol=__udivmoddi4 \
                -Wl,--trace-symbol=__divmoddi4 2>"$work/native.trace" ||
            { cat "$work/native.trace" >&2 && false; }
    }
    if ! compile_native 2>"$work/native.err"; then
        apt_install gcc-multilib || true
        if ! compile_native 2>"$work/native.err"; then
            log "cannot build 32-bit host programs (gcc -m32 needs gcc-multilib): native left out"
            sed 's/^/    /' "$work/native.err" | head -5 >&2
            return 0
        fi
    fi
    # Every 64-bit division helper the program refers to must be defined by div64.o (ld's
    # --trace-symbol lines: "FILE: reference to SYM", "FILE: definition of SYM"). A regular
    # object's definition wins over the C library's shared libgcc_s, and libgcc.a's members
    # are pulled in only for symbols still undefined, so then div64.c's routines are the ones run.
    local sym
    for sym in $(sed -n 's/.*: reference to \(__[a-z0-9]*\)$/\1/p' "$work/native.trace" | sort -u); do
        if ! grep -q "div64\.o: definition of $sym\$" "$work/native.trace"; then
            log "the native build of $name would take $sym from elsewhere than guests/runtime/div64.c:"
            sed 's/^/    /' "$work/native.trace" >&2
            exit 1
        fi
    done
    native="$out"
}

# The median of whole numbers, one per word on stdin (the mean of the middle two for an even count).
median() {
    tr ' ' '\n' | grep -v '^$' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# The smallest of whole numbers, one per word on stdin.
minimum() {
    tr ' ' '\n' | grep -v '^$' | sort -n | head -n 1
}

# Nanoseconds as milliseconds.
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f ms", ns / 1e6 }'; }

# Nanoseconds as ns, µs or ms, three significant figures or so.
human() {
    awk -v ns="$1" 'BEGIN {
        if (ns < 0) { print "< 0 (noise)"; exit }
        if (ns >= 1e6) printf "%.2f ms", ns / 1e6
        else if (ns >= 1e4) printf "%.1f µs", ns / 1e3
        else if (ns >= 100) printf "%.0f ns", ns
        else printf "%.1f ns", ns
    }'
}

# a / b to two places, or n/a unless both are positive.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a > 0) printf "%.2f", a / b; else print "n/a" }'; }

# One line about the machine and the build, for a report's header.
machine_line() {
    local cpu commit
    cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    commit="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "Machine: $cpu, $(nproc) cores, Linux $(uname -r); popek $commit."
}
