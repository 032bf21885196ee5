#!/usr/bin/env bash
# popek's four benchmark tables, in one command:
#   1. every `compute` workload (sieve, crc32, sort, matmul, string, div64, and all six): popek's
#      JIT, QEMU's TCG (qemu-system-i386 -accel tcg -kernel, the very same ELF) and a native
#      build of the same compute.c (gcc -m32 -O2; benches/native/ stands in for the guest
#      runtime, whose own string and 64-bit division routines it links: benches/lib.sh);
#   2. nanobench's syscall, portin, cr3, pagefault and callret loops: the JIT, QEMU and
#      popek's interpreter;
#   3. a code-size sweep: the `codesize` guest calling its first N of 8,192 distinct small
#      functions, N = 1 to 8192, per call: the JIT and QEMU;
#   4. start-up and host code: `popek run hello` against QEMU on the same ELF (whole process),
#      popek's peak RSS with the default code cache and with --code-cache 1G, and host code
#      bytes per guest instruction translated (`popek run compute --stats`).
#
# Usage: benches/tables.sh [rounds=R] [stat=median|min] [quick=1] [cpu=N] [iters=N] [n=N] [calls=N] [qemu=0] [native=0]
#   rounds  interleaved rounds (default 5; 1 with quick=1); every figure is a median over them
#   stat    median (the default) or min: the statistic over the rounds. On a shared machine,
#           where other work only ever adds time, the minimum of each series is the steadier
#           estimate of what a run costs
#   quick=1 small sizes, for a smoke test that every runner works (figures then mean little)
#   cpu     the core every runner is pinned to with `taskset -c` (default 1)
#   iters   compute's iterations in the big run (default 20; quick 2); the small run is 1
#   n       nanobench's iterations in the big run (default 100000; quick 1000); small: n/10
#   calls   codesize's calls in the big run (default 4194304; quick 65536): iters = calls/N,
#           at least 2; the small run is iters=1
#   qemu=0, native=0   leave that runner out
#
# Every runner is timed as a whole process, pinned to one core, and its output and exit status
# are checked against the guest's expected output (the native program's too). Rounds are
# interleaved: each round runs every runner on every row once, small then big. Start-up (QEMU's
# firmware, popek's boot, the first translation, exec) is cancelled by difference: per unit =
# (t(big) - t(small)) / (units between them). Ratios are time(JIT) / time(other): below 1 the
# JIT is faster, above 1 slower.
#
# Needs cargo (it builds popek in release mode; CARGO_TARGET_DIR is honoured), taskset, and, as
# root, installs qemu-system-x86 and gcc-multilib with apt-get if they are missing (otherwise
# that runner is left out with a note). Output: progress on stderr, Markdown on stdout.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
rounds=""
quick=0
cpu=1
iters=""
n=""
calls=""
want_qemu=1
want_native=1
stat=median
for arg in "$@"; do
    case "$arg" in
    rounds=*) rounds="${arg#rounds=}" ;;
    quick=*) quick="${arg#quick=}" ;;
    cpu=*) cpu="${arg#cpu=}" ;;
    iters=*) iters="${arg#iters=}" ;;
    n=*) n="${arg#n=}" ;;
    calls=*) calls="${arg#calls=}" ;;
    qemu=*) want_qemu="${arg#qemu=}" ;;
    native=*) want_native="${arg#native=}" ;;
    stat=*) stat="${arg#stat=}" ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "tables: unknown argument \`$arg\` (try --help)" >&2
        exit 2
        ;;
    esac
done
if [ "$quick" != 0 ]; then
    : "${rounds:=1}" "${iters:=2}" "${n:=1000}" "${calls:=65536}"
else
    : "${rounds:=5}" "${iters:=20}" "${n:=100000}" "${calls:=4194304}"
fi
for v in rounds iters n calls cpu; do
    case "${!v}" in '' | *[!0-9]*) echo "tables: $v must be a whole number" >&2; exit 2 ;; esac
done
case "$stat" in
median) pick() { median; } && stat_name=medians ;;
min) pick() { minimum; } && stat_name="minimums (each series' smallest)" ;;
*) echo "tables: stat must be median or min" >&2; exit 2 ;;
esac
if [ "$rounds" -lt 1 ] || [ "$iters" -lt 2 ] || [ "$n" -lt 10 ] || [ "$calls" -lt 2 ]; then
    echo "tables: need rounds >= 1, iters >= 2, n >= 10, calls >= 2" >&2
    exit 2
fi

prog=tables
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=benches/lib.sh
. "$here/lib.sh"

if ! taskset -c "$cpu" true 2>/dev/null; then
    echo "tables: cannot pin to core $cpu (taskset -c $cpu); try cpu=0" >&2
    exit 2
fi
pin=(taskset -c "$cpu")

build_popek
qemu=""
[ "$want_qemu" != 0 ] && find_qemu
native=""
[ "$want_native" != 0 ] && build_native compute
img="$work/img"

# ---- one timed run, checked
#
# run_checked LABEL WANT_STATUS EXPECTED_FILE COMMAND...: runs COMMAND (pinned) with its
# stdout to $work/out, times it (nanoseconds into $elapsed) and checks its exit status and its
# output against EXPECTED_FILE. A QEMU run's COMMAND is `qemu ELF CMDLINE`: its banner is
# stripped before the comparison.
run_checked() {
    local label="$1" want="$2" expected="$3" status=0 start end
    shift 3
    start="$(date +%s%N)"
    if [ "$1" = qemu ]; then
        qemu_boot "$2" "$3" "$work/raw" "${pin[@]}" 2>"$work/err" || status=$?
        end="$(date +%s%N)"
        strip_banner "$work/raw" >"$work/out"
    else
        "${pin[@]}" "$@" >"$work/out" 2>"$work/err" || status=$?
        end="$(date +%s%N)"
    fi
    if [ "$status" -ne "$want" ] || ! cmp -s "$work/out" "$expected"; then
        log "$label: exit status $status (want $want), or the output is not the guest's:"
        diff "$expected" "$work/out" | sed 's/^/    /' | head -20 >&2 || true
        sed 's/^/    /' "$work/err" | head -5 >&2
        exit 1
    fi
    elapsed=$((end - start))
}

# Guests end through the debug-exit port: status 1 is the guest's exit(0); a native program's 0.
status_of() { if [ "$1" = native ]; then echo 0; else echo 1; fi; }

label() {
    case "$1" in
    jit) echo "popek JIT" ;;
    interp) echo "popek interpreter" ;;
    qemu) echo "QEMU TCG $(qemu_version)" ;;
    native) echo "native (gcc -m32 -O2)" ;;
    esac
}

# ---- 1. compute, per workload
workloads=(sieve crc32 sort matmul string div64 all)
compute_runners=(jit)
[ -n "$qemu" ] && compute_runners+=(qemu)
[ -n "$native" ] && compute_runners+=(native)

# compute's expected output at iters=$2 for workload $1 (all: the whole set) into a file; prints its name.
compute_expected() {
    local w="$1" it="$2" f="$work/compute.$1.$2.want" prefix
    if [ ! -e "$f" ]; then
        if [ "$w" = all ]; then
            { echo "compute: iters=$it"; tail -n +2 "$img/compute.expected"; } >"$f"
        else
            prefix="$w:"
            { echo "compute: iters=$it only=$w"; grep "^$prefix" "$img/compute.expected"; echo "compute: PASS"; } >"$f"
            [ "$(wc -l <"$f")" -eq 3 ] || { log "no line for $w in compute's expected output"; exit 1; }
        fi
    fi
    echo "$f"
}

compute_run() {
    local runner="$1" w="$2" it="$3" args
    args="iters=$it"
    [ "$w" != all ] && args+=" only=$w"
    local want
    want="$(compute_expected "$w" "$it")"
    case "$runner" in
    jit) run_checked "compute $w jit iters=$it" 1 "$want" "$popek" run "$img/compute.elf" --cmdline "$args" ;;
    qemu) run_checked "compute $w qemu iters=$it" 1 "$want" qemu "$img/compute.elf" "$args" ;;
    native) # shellcheck disable=SC2086 # the arguments are words on purpose
        run_checked "compute $w native iters=$it" 0 "$want" "$native" $args ;;
    esac
}

# ---- 2. nanobench loops
loops=(syscall portin cr3 pagefault callret)
nano_runners=(jit)
[ -n "$qemu" ] && nano_runners+=(qemu)
nano_runners+=(interp)
n_small=$((n / 10))

# nanobench's expected output for loop $1 at n=$2: its line in the full output, with the count.
nano_expected() {
    local loop="$1" count="$2" f="$work/nano.$1.$2.want" k=0 i
    if [ ! -e "$f" ]; then
        for i in "${!loops[@]}"; do [ "${loops[$i]}" = "$loop" ] && k=$((i + 1)); done
        # The first lines of the full output are these loops', in this order.
        { sed -n "${k}p" "$img/nanobench.expected" | sed "s/: [0-9]* iterations$/: $count iterations/"
            echo "nanobench: PASS"; } >"$f"
    fi
    echo "$f"
}

nano_run() {
    local runner="$1" loop="$2" count="$3" want args="only=$2 n=$3"
    want="$(nano_expected "$loop" "$count")"
    case "$runner" in
    jit) run_checked "nanobench $loop jit n=$count" 1 "$want" "$popek" run "$img/nanobench.elf" --cmdline "$args" ;;
    interp) run_checked "nanobench $loop interp n=$count" 1 "$want" \
        "$popek" run "$img/nanobench.elf" --engine interp --cmdline "$args" ;;
    qemu) run_checked "nanobench $loop qemu n=$count" 1 "$want" qemu "$img/nanobench.elf" "$args" ;;
    esac
}

# ---- 3. codesize sweep
sizes=(1 16 256 1024 4096 8192)
size_runners=(jit)
[ -n "$qemu" ] && size_runners+=(qemu)
declare -A size_iters sum
for s in "${sizes[@]}"; do
    it=$((calls / s))
    [ "$it" -lt 2 ] && it=2
    size_iters[$s]=$it
    # The checksum of the first N functions, from popek's interpreter: every timed run of every
    # runner must print the same.
    "$popek" run "$img/codesize.elf" --engine interp --cmdline "funcs=$s" >"$work/ref" || true
    sum[$s]="$(sed -n 's/^checksum: //p' "$work/ref")"
    [ -n "${sum[$s]}" ] || { log "codesize funcs=$s gives no checksum under the interpreter:"; cat "$work/ref" >&2; exit 1; }
done
[ "${sum[8192]}" = "$(sed -n 's/^checksum: //p' "$img/codesize.expected")" ] ||
    { log "codesize funcs=8192: the interpreter's checksum is not the expected one"; exit 1; }

codesize_run() {
    local runner="$1" s="$2" it="$3" want="$work/codesize.$2.$3.want" args="funcs=$2 iters=$3"
    printf 'codesize: funcs=%s iters=%s\nchecksum: %s\ncodesize: PASS\n' "$s" "$it" "${sum[$s]}" >"$want"
    case "$runner" in
    jit) run_checked "codesize jit $args" 1 "$want" "$popek" run "$img/codesize.elf" --cmdline "$args" ;;
    qemu) run_checked "codesize qemu $args" 1 "$want" qemu "$img/codesize.elf" "$args" ;;
    esac
}

# ---- 4. start-up and resident set
# hello prints its command line: give both the same (an empty one).
start_runners=(jit)
[ -n "$qemu" ] && start_runners+=(qemu)
start_run() {
    case "$1" in
    jit) run_checked "hello jit" 1 "$img/hello.expected" "$popek" run hello ;;
    qemu) run_checked "hello qemu" 1 "$img/hello.expected" qemu "$img/hello.elf" "" ;;
    esac
}
# Peak RSS in KiB of `popek run hello` with extra arguments $@ (output checked).
rss_popek() {
    local status=0
    "${pin[@]}" /usr/bin/time -f %M -o "$work/rss" "$popek" run hello "$@" >"$work/out" 2>"$work/err" || status=$?
    if [ "$status" -ne 1 ] || ! cmp -s "$work/out" "$img/hello.expected"; then
        log "popek run hello $*: exit status $status or wrong output"
        exit 1
    fi
    tail -n 1 "$work/rss"
}
rss_qemu() {
    local status=0
    qemu_boot "$img/hello.elf" "" "$work/raw" "${pin[@]}" /usr/bin/time -f %M -o "$work/rss" 2>"$work/err" || status=$?
    strip_banner "$work/raw" >"$work/out"
    if [ "$status" -ne 1 ] || ! cmp -s "$work/out" "$img/hello.expected"; then
        log "QEMU hello: exit status $status or wrong output"
        exit 1
    fi
    tail -n 1 "$work/rss"
}
have_time=1
[ -x /usr/bin/time ] || { have_time=0; log "/usr/bin/time is missing (apt package time): no RSS figures"; }

# ---- the rounds
declare -A small big
# One runner on one row, small then big: `pair KEY RUN_FUNCTION RUNNER ROW SMALL BIG` appends
# the two times to small[KEY] and big[KEY].
pair() {
    "$2" "$3" "$4" "$5"
    small[$1]+="$elapsed "
    "$2" "$3" "$4" "$6"
    big[$1]+="$elapsed "
}
log "pinned to core $cpu; rounds: $rounds, interleaved; compute iters=1/$iters, nanobench n=$n_small/$n," \
    "codesize calls=$calls; runners: ${compute_runners[*]} (compute), ${nano_runners[*]} (nanobench)"
for ((r = 1; r <= rounds; r++)); do
    for w in "${workloads[@]}"; do
        for runner in "${compute_runners[@]}"; do pair "c.$w.$runner" compute_run "$runner" "$w" 1 "$iters"; done
    done
    log "round $r: compute done"
    for loop in "${loops[@]}"; do
        for runner in "${nano_runners[@]}"; do pair "n.$loop.$runner" nano_run "$runner" "$loop" "$n_small" "$n"; done
    done
    log "round $r: nanobench done"
    for s in "${sizes[@]}"; do
        for runner in "${size_runners[@]}"; do pair "s.$s.$runner" codesize_run "$runner" "$s" 1 "${size_iters[$s]}"; done
    done
    log "round $r: codesize done"
    for runner in "${start_runners[@]}"; do
        start_run "$runner"
        small[h.$runner]+="$elapsed "
    done
    if [ "$have_time" = 1 ]; then
        # (Assignments, so that a failed run stops the script.)
        v="$(rss_popek)"
        small[rss.default]+="$v "
        v="$(rss_popek --code-cache 1G)"
        small[rss.1g]+="$v "
        if [ -n "$qemu" ]; then
            v="$(rss_qemu)"
            small[rss.qemu]+="$v "
        fi
    fi
    log "round $r of $rounds done"
done

# Per-unit cost, nanoseconds: (stat t(big) - stat t(small)) / units.
per() { echo $((($(echo "${big[$1]}" | pick) - $(echo "${small[$1]}" | pick)) / $2)); }

# ---- the report
echo "## popek's benchmark tables"
echo
echo "$(machine_line) Rounds: $rounds, interleaved; figures are ${stat_name}; every run pinned to core $cpu" \
    "(\`taskset -c $cpu\`) and its output checked.$([ "$quick" != 0 ] && echo ' Quick mode: sizes too small for the figures to mean much.')"
[ -n "$qemu" ] && echo "QEMU: \`qemu-system-i386 -accel tcg\` $(qemu_version), the very same ELF images."
echo
echo "Ratios are time(JIT) / time(other): **below 1 the JIT is faster**, above 1 slower."
echo

# A runner table's header and rule: the given first columns, popek's JIT, each other runner,
# and the JIT's ratio to each. table_head RUNNERS_ARRAY_NAME FIRST_HEADER FIRST_RULE
table_head() {
    local -n runners_in=$1
    local header="$2 $(label jit) |" rule="$3---:|" runner
    for runner in "${runners_in[@]:1}"; do header+=" $(label "$runner") |"; rule+="---:|"; done
    for runner in "${runners_in[@]:1}"; do header+=" JIT/$runner |"; rule+="---:|"; done
    echo "$header"
    echo "$rule"
}

# One table of per-unit times, a row per item: popek's JIT, each other runner, and the JIT's
# ratio to each. runner_table COLUMN KEY_PREFIX UNITS RUNNERS_ARRAY_NAME ITEM...
runner_table() {
    local column=$1 prefix=$2 units=$3 runner item row
    local -n runners_of=$4
    table_head "$4" "| $column |" "|---|"
    shift 4
    for item in "$@"; do
        local -A p=()
        for runner in "${runners_of[@]}"; do p[$runner]="$(per "$prefix.$item.$runner" "$units")"; done
        row="| $item | $(human "${p[jit]}") |"
        for runner in "${runners_of[@]:1}"; do row+=" $(human "${p[$runner]}") |"; done
        for runner in "${runners_of[@]:1}"; do row+=" $(ratio "${p[jit]}" "${p[$runner]}") |"; done
        echo "$row"
        unset p
    done
}

echo "### 1. \`compute\`, per iteration of each workload"
echo
echo "(t(iters=$iters) - t(iters=1)) / $((iters - 1)), whole processes. Native: the same compute.c built with"
echo "\`gcc -m32 -O2\`, linked with the guest runtime's own string and 64-bit division routines."
echo
runner_table workload c $((iters - 1)) compute_runners "${workloads[@]}"
echo

echo "### 2. \`nanobench\`, per loop iteration"
echo
echo "(t(n=$n) - t(n=$n_small)) / $((n - n_small)), whole processes (\`only=LOOP n=N\`)."
echo
runner_table loop n $((n - n_small)) nano_runners "${loops[@]}"
echo

echo "### 3. Code size: \`codesize\`, per call"
echo
echo "\`funcs=N iters=M\` calls the first N of 8,192 distinct small functions (about 256 KiB of guest"
echo "code in all) through a table, M times over; per call = (t(iters=M) - t(iters=1)) / ((M - 1) N)."
echo
table_head size_runners "| N (functions) | M (iters) |" "|---:|---:|"
for s in "${sizes[@]}"; do
    declare -A p=()
    units=$(((size_iters[$s] - 1) * s))
    for runner in "${size_runners[@]}"; do p[$runner]="$(per "s.$s.$runner" "$units")"; done
    row="| $s | ${size_iters[$s]} | $(human "${p[jit]}") |"
    for runner in "${size_runners[@]:1}"; do row+=" $(human "${p[$runner]}") |"; done
    for runner in "${size_runners[@]:1}"; do row+=" $(ratio "${p[jit]}" "${p[$runner]}") |"; done
    echo "$row"
    unset p
done
echo

echo "### 4. Start-up and host code"
echo
echo "| | $(label jit) |$([ -n "$qemu" ] && echo " $(label qemu) | JIT/qemu |")"
echo "|---|---:|$([ -n "$qemu" ] && echo "---:|---:|")"
t_jit="$(echo "${small[h.jit]}" | pick)"
row="| \`hello\`, whole process (wall) | $(ms "$t_jit") |"
if [ -n "$qemu" ]; then
    t_qemu="$(echo "${small[h.qemu]}" | pick)"
    row+=" $(ms "$t_qemu") | $(ratio "$t_jit" "$t_qemu") |"
fi
echo "$row"
if [ "$have_time" = 1 ]; then
    kib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
    r_def="$(echo "${small[rss.default]}" | pick)"
    r_1g="$(echo "${small[rss.1g]}" | pick)"
    row="| \`hello\`, peak RSS, default code cache (16M) | $(kib "$r_def") |"
    if [ -n "$qemu" ]; then
        r_qemu="$(echo "${small[rss.qemu]}" | pick)"
        row+=" $(kib "$r_qemu") | $(ratio "$r_def" "$r_qemu") |"
    fi
    echo "$row"
    echo "| \`hello\`, peak RSS, \`--code-cache 1G\` | $(kib "$r_1g") |$([ -n "$qemu" ] && echo " | |")"
fi
"$popek" run compute --stats >/dev/null 2>"$work/stats" || true
host_line="$(sed -n 's/^host code: *//p' "$work/stats")"
echo "| host code per guest instruction translated (\`popek run compute --stats\`) | ${host_line:-n/a} |$([ -n "$qemu" ] && echo " | |")"
echo
echo "Wall time from exec to exit: QEMU runs SeaBIOS and its Multiboot option ROM first, popek boots"
echo "the ELF directly. Peak RSS is \`/usr/bin/time -f %M\` (max resident set, KiB) of the whole process."
