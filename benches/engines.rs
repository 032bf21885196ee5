//! The `compute` guest under each engine, side by side in one run:
//! `cargo bench --bench engines`. Throughput is in guest instructions.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use popek::devices::sink::NullSink;
use popek::machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};

fn boot(engine: EngineKind) -> Machine {
    let g = popek::guests::find("compute").expect("built-in guest");
    let config = MachineConfig {
        ram_size: 128 << 20,
        cmdline: "iters=2".into(),
        serial: Box::new(NullSink),
        engine,
        code_cache: popek::jit::DEFAULT_CODE_CACHE,
        ..MachineConfig::default()
    };
    Machine::boot(config, g.elf).expect("boots")
}

fn engines(c: &mut Criterion) {
    let mut probe = boot(EngineKind::Interp);
    assert_eq!(probe.run(&RunConfig::default()), StopReason::Exit(1));
    let insns = probe.stats.retired;
    let mut g = c.benchmark_group("compute");
    g.throughput(Throughput::Elements(insns));
    g.sample_size(10);
    for (name, engine) in [("interp", EngineKind::Interp), ("jit", EngineKind::Jit)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut m = boot(engine);
                assert_eq!(m.run(&RunConfig::default()), StopReason::Exit(1));
                assert_eq!(m.stats.retired, insns);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, engines);
criterion_main!(benches);
