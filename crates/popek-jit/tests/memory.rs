//! The code cache takes host memory only where it is used: a 1 GiB cache (the largest
//! `--code-cache`) costs no more resident memory than a small one until code is
//! translated into it. (A test binary of its own: other tests' allocations would blur
//! the measurement.)

use popek_interp::testing::TestBox;
use popek_jit::Jit;

/// Resident memory of this process, in bytes (`/proc/self/statm`: pages).
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|w| w.parse().ok()).expect("resident pages");
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).expect("a page size")
}

#[test]
fn a_large_code_cache_costs_no_memory_until_it_is_used() {
    // mov ecx, 1000 ; L: add eax, ecx ; dec ecx ; jnz L ; hlt
    let code = [0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4];
    let mut t = TestBox::new(&code);
    let before = resident();
    let mut jit = Jit::new(1 << 30).expect("a 1 GiB code cache");
    let made = resident();
    while !t.cpu.state.halted {
        jit.run(&mut t.cpu, &mut t.bus, 1 << 20, &|_| 0).expect("runs");
    }
    let ran = resident();
    assert_eq!(t.cpu.state.gpr[0], (1..=1000).sum::<u32>());
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    assert!(
        made.saturating_sub(before) < 4 << 20 && ran.saturating_sub(before) < 8 << 20,
        "resident memory grew by {:.1} MiB making the cache, {:.1} MiB after running",
        mib(made.saturating_sub(before)),
        mib(ran.saturating_sub(before))
    );
}
