//! Interpreter throughput on a simple loop, in guest instructions per second.
//!
//! `cargo bench --bench interp` reports time per run and, through criterion's
//! throughput support, guest MIPS (elements/s = instructions/s).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use popek::demo;
use popek::interp::testing::TestBox;

const ITERATIONS: u32 = 250_000;

fn interp_loop(c: &mut Criterion) {
    let code = demo::counting_loop(ITERATIONS).expect("assembles");
    let insns = 4 * ITERATIONS as u64 + 3;
    let mut g = c.benchmark_group("interp");
    g.throughput(Throughput::Elements(insns));
    g.sample_size(20);
    g.bench_function("counting_loop", |b| {
        b.iter(|| {
            let mut t = TestBox::new(&code);
            let n = t.run(usize::MAX).expect("runs");
            assert_eq!(n, insns);
        })
    });
    g.finish();
}

criterion_group!(benches, interp_loop);
criterion_main!(benches);
