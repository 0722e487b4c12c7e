//! Prints how fast the Philox stream fills a buffer (a quick check, not a benchmark suite).
fn main() {
    let mut buf = vec![0u32; 1 << 20];
    let t = std::time::Instant::now();
    for i in 0..20 {
        ferrograd_core::random::fill_u32(7, i * (1 << 20), &mut buf);
    }
    let ns = t.elapsed().as_nanos() as f64 / (20.0 * (1 << 20) as f64);
    println!(
        "philox: {ns:.3} ns per u32 (checksum {})",
        buf.iter().map(|&x| x as u64).sum::<u64>()
    );
}
