//! Times `popek::fuzzing::engines` on one input (a development aid).
fn main() {
    let data = std::fs::read(std::env::args().nth(1).expect("an input file")).expect("readable");
    let n: u32 = std::env::args().nth(2).map_or(100, |s| s.parse().expect("a count"));
    let t = std::time::Instant::now();
    for _ in 0..n {
        popek::fuzzing::engines(&data);
    }
    println!("{:?} per input", t.elapsed() / n);
}
