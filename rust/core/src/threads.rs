//! The thread pool behind large kernels, sized by `set_num_threads`.
//!
//! rayon's global pool cannot be resized, so we keep our own pool and rebuild it when the
//! user changes the count. Small work never enters the pool: entering it costs microseconds.

use rayon::prelude::*;
use std::sync::{Arc, RwLock};

static POOL: RwLock<Option<(usize, Arc<rayon::ThreadPool>)>> = RwLock::new(None);

/// Elements below which elementwise kernels stay on the calling thread.
pub const PAR_ELEMWISE_MIN: usize = 1 << 16;

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn pool() -> (usize, Arc<rayon::ThreadPool>) {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return (p.0, p.1.clone());
    }
    set_num_threads(default_threads());
    pool()
}

/// The most threads `set_num_threads` accepts: 8 per core (at least 64). More only cost
/// start-up time (1,000 threads take about a second) and memory for their stacks.
pub fn max_threads() -> usize {
    (8 * default_threads()).max(64)
}

/// Number of threads kernels may use.
pub fn num_threads() -> usize {
    match POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(p) => p.0,
        None => default_threads(),
    }
}

/// Sets the number of threads kernels may use (at least 1).
pub fn set_num_threads(n: usize) {
    let n = n.max(1);
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    if let Some((cur, _)) = slot.as_ref() {
        if *cur == n {
            return;
        }
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("ferrograd-{i}"))
        .build();
    // If the OS refuses threads, keep working on the calling thread alone.
    let p = match built {
        Ok(p) => p,
        Err(_) => rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("one thread"),
    };
    *slot = Some((n, Arc::new(p)));
}

/// Runs `f` inside the pool (so nested rayon work, e.g. gemm's, uses our threads).
pub fn install<R: Send>(f: impl FnOnce(usize) -> R + Send) -> R {
    let (n, p) = pool();
    if n == 1 {
        return f(1);
    }
    p.install(|| f(n))
}

/// Fills `out` by calling `f(start, chunk)` over disjoint chunks, in parallel when large.
pub fn for_chunks<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Send + Sync) {
    let len = out.len();
    let threads = if len >= PAR_ELEMWISE_MIN {
        num_threads()
    } else {
        1
    };
    if threads <= 1 {
        f(0, out);
        return;
    }
    let chunk = len.div_ceil(threads * 4).max(4096);
    install(|_| {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i * chunk, c));
    });
}
