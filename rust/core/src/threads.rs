//! The thread pool behind large kernels, sized by `set_num_threads`.
//!
//! rayon's global pool cannot be resized, so we keep our own pool and rebuild it when the
//! user changes the count. Small work never enters the pool: entering it costs microseconds.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

thread_local! {
    /// The cancel flag of the work running on this thread (see `with_cancel`).
    static CANCEL: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` with `flag` as this thread's cancel flag: long kernels call `check_cancel`
/// between chunks of their work and stop with `Error::Interrupted` once the flag is set
/// (the Python bindings set it when Ctrl-C arrives during a long kernel).
pub fn with_cancel<R>(flag: Arc<AtomicBool>, f: impl FnOnce() -> R) -> R {
    let prev = CANCEL.with(|c| c.replace(Some(flag)));
    let r = f();
    CANCEL.with(|c| *c.borrow_mut() = prev);
    r
}

/// `Err(Interrupted)` when the work on this thread has been asked to stop. Cheap (a
/// thread-local read and an atomic load), so kernels may call it every few milliseconds.
pub fn check_cancel(op: &str) -> Result<()> {
    let cancelled = CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    });
    if cancelled {
        return Err(Error::Interrupted(format!("{op}: interrupted")));
    }
    Ok(())
}

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
