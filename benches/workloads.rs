//! Every workload of the `compute` guest and the loops of `nanobench` listed in
//! [`NANOBENCH`], under each engine: `cargo bench --bench workloads` (add `-- sieve` or
//! `-- nanobench/cr3` to pick some). Its irq, invlpg and console loops, natively and by
//! hypercall, are `benches/pv.sh`'s.
//!
//! One criterion iteration is one unit of guest work: a round of a compute workload
//! (`only=NAME iters=N`) or one operation of a nanobench loop (`only=NAME n=N`). For a
//! sample of N iterations the guest is booted with that N — untimed — and only its run is
//! timed. Sampling is linear (samples of d, 2d, 3d… iterations) and criterion reports the
//! slope, so whatever does not grow with N — the guest's own set-up, the JIT translating
//! the code for the first time — falls into the intercept and out of the figures:
//!
//! - `time` is the steady-state time of one round (compute) or one operation (nanobench:
//!   nanoseconds per operation);
//! - `thrpt` is guest instructions per second (elements = guest instructions per
//!   iteration, counted by a run of the interpreter before measuring).
//!
//! Quick by default (10 samples, short measurement: about two minutes on two cores);
//! `POPEK_BENCH_FULL=1 cargo bench --bench workloads` for longer, steadier measurements.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use popek::machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};
use std::time::{Duration, Instant};

const ENGINES: [(&str, EngineKind); 2] = [("jit", EngineKind::Jit), ("interp", EngineKind::Interp)];
const COMPUTE: [&str; 6] = ["sieve", "crc32", "sort", "matmul", "string", "div64"];
/// The nanobench loops measured here.
const NANOBENCH: [&str; 7] = ["syscall", "portin", "cr3", "pagefault", "callret", "datacode", "patch"];

/// Boots `guest` with `cmdline` (not timed), runs it to its end (timed).
fn run(guest: &str, cmdline: &str, engine: EngineKind) -> (Duration, u64) {
    let g = popek::guests::find(guest).expect("built-in guest");
    let config = MachineConfig { cmdline: cmdline.to_string(), engine, ..MachineConfig::default() };
    let mut m = Machine::boot(config, g.elf).expect("boots");
    let started = Instant::now();
    let stop = m.run(&RunConfig::default());
    let elapsed = started.elapsed();
    assert_eq!(stop, StopReason::Exit(1), "{guest} {cmdline}: the guest failed");
    (elapsed, m.stats.retired)
}

/// Guest instructions that one more unit of `key` adds (the same under every engine).
fn per_unit(guest: &str, cmdline: impl Fn(u64) -> String) -> u64 {
    let (_, one) = run(guest, &cmdline(1), EngineKind::Interp);
    let (_, three) = run(guest, &cmdline(3), EngineKind::Interp);
    (three - one) / 2
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sampling_mode(SamplingMode::Linear);
    if std::env::var_os("POPEK_BENCH_FULL").is_some() {
        g.sample_size(20).warm_up_time(Duration::from_secs(3)).measurement_time(Duration::from_secs(10));
    } else {
        g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    }
}

/// `id/engine` for every engine: one iteration = one unit of `cmdline(n)`'s work.
fn bench_units(
    g: &mut BenchmarkGroup<'_, WallTime>,
    guest: &'static str,
    id: &str,
    insns: u64,
    cmdline: impl Fn(u64) -> String + Copy,
) {
    g.throughput(Throughput::Elements(insns));
    for (name, engine) in ENGINES {
        g.bench_function(format!("{id}/{name}"), |b| {
            b.iter_custom(|iters| {
                let (elapsed, _) = run(guest, &cmdline(iters), engine);
                elapsed
            })
        });
    }
}

fn compute(c: &mut Criterion) {
    let mut g = c.benchmark_group("compute");
    configure(&mut g);
    for w in COMPUTE {
        let cmdline = move |n| format!("only={w} iters={n}");
        bench_units(&mut g, "compute", w, per_unit("compute", cmdline), cmdline);
    }
    g.finish();
}

fn nanobench(c: &mut Criterion) {
    let mut g = c.benchmark_group("nanobench");
    configure(&mut g);
    for l in NANOBENCH {
        // The guest's counter is 32 bits: criterion's iteration counts stay far below that.
        let cmdline = move |n: u64| format!("only={l} n={}", u32::try_from(n).expect("fewer than 2^32 operations"));
        let insns = per_unit("nanobench", cmdline);
        println!("nanobench/{l}: one operation = {insns} guest instructions; the time below is per operation");
        bench_units(&mut g, "nanobench", l, insns, cmdline);
    }
    g.finish();
}

criterion_group!(benches, compute, nanobench);
criterion_main!(benches);
