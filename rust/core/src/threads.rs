//! The thread pool behind large kernels, sized by `set_num_threads`.
//!
//! rayon's global pool cannot be resized, so we keep our own pool and rebuild it when the
//! user changes the count. Small work never enters the pool: entering it costs microseconds.

use crate::error::{Error, Result};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

/// The threads the process may run on, asked of the OS once: on Linux
/// `available_parallelism` reads the cgroup quota files, about 14 us a call, and
/// `num_threads` asks on every kernel until a pool exists (an 86-tensor Adam step took
/// 1.2 ms instead of 40 us).
pub(crate) fn default_threads() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
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
    // the old team's helpers end once its last caller lets go of it (Drop stops them)
    *TEAM.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Team::start(n - 1)));
}

/// Runs `f` inside the pool (so nested rayon work, e.g. gemm's, uses our threads).
pub fn install<R: Send>(f: impl FnOnce(usize) -> R + Send) -> R {
    let (n, p) = pool();
    if n == 1 {
        return f(1);
    }
    p.install(|| f(n))
}

/// Runs `f(0)`, ..., `f(parts - 1)`, the calling thread taking its share, and returns when
/// all are done; parts run on the spinning team (`Team`), or all on the calling thread when
/// the team is busy (another caller, or a nested `split`). Each part must not depend on
/// which thread runs it: results are then the same at any thread count.
pub fn split(parts: usize, f: impl Fn(usize) + Sync) {
    if parts <= 1 {
        if parts == 1 {
            f(0);
        }
        return;
    }
    let team = || TEAM.read().unwrap_or_else(|e| e.into_inner()).clone();
    let team = team().or_else(|| {
        pool(); // the first use starts the pool and the team
        team()
    });
    match team {
        Some(t) if !t.helpers.is_empty() => t.shared.run(parts, &f),
        _ => (0..parts).for_each(f),
    }
}

/// How long an idle helper spins before it sleeps. A training step runs kernels tens of
/// microseconds apart, with Python between them; a sleeping thread takes about as long to
/// wake (more on a virtual machine), which made two threads slower than one on small
/// products. OpenMP runtimes spin for the same reason (libgomp about 0.3 ms, Intel's 200 ms).
const SPIN: std::time::Duration = std::time::Duration::from_millis(2);

type Job = *const (dyn Fn(usize) + Sync);

/// A fork-join team of `num_threads() - 1` helper threads for `split`: short kernels are
/// split between the caller and helpers that are already awake, with no queue or wake-up.
struct Team {
    shared: Arc<Shared>,
    helpers: Vec<Helper>,
}

struct Helper {
    thread: std::thread::Thread,
    sleeping: Arc<AtomicBool>,
}

/// What the caller and the helpers share.
struct Shared {
    /// serializes jobs; a caller that finds it taken runs its job alone
    busy: std::sync::Mutex<()>,
    /// bumped for each job; helpers watch it
    epoch: AtomicU64,
    /// non-null while a job runs; the job's function is then in `job_fn`
    job: AtomicBool,
    job_fn: std::cell::UnsafeCell<Option<Job>>,
    parts: AtomicUsize,
    /// the next unclaimed part, and how many parts are finished
    next: AtomicUsize,
    done: AtomicUsize,
    /// helpers inside a job (the caller returns only when none is)
    active: AtomicUsize,
    stop: AtomicBool,
    panic: std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// the helpers' sleeping flags, to wake those that sleep
    sleepers: std::sync::OnceLock<Vec<(std::thread::Thread, Arc<AtomicBool>)>>,
}

// job_fn is written only by the caller holding `busy` while `job` is false and no helper is
// active, and read only by helpers counted active that saw `job` true, while the caller
// waits for them
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

static TEAM: RwLock<Option<Arc<Team>>> = RwLock::new(None);

impl Team {
    fn start(helpers: usize) -> Team {
        let shared = Arc::new(Shared {
            busy: std::sync::Mutex::new(()),
            epoch: AtomicU64::new(0),
            job: AtomicBool::new(false),
            job_fn: std::cell::UnsafeCell::new(None),
            parts: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            panic: std::sync::Mutex::new(None),
            sleepers: std::sync::OnceLock::new(),
        });
        let mut list = Vec::new();
        for i in 0..helpers {
            let sleeping = Arc::new(AtomicBool::new(false));
            let (sh, sl) = (shared.clone(), sleeping.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("ferrograd-team-{i}"))
                .spawn(move || helper_loop(&sh, &sl));
            match spawned {
                Ok(h) => list.push(Helper {
                    thread: h.thread().clone(),
                    sleeping,
                }),
                Err(_) => break, // the OS refused a thread: fewer helpers
            }
        }
        let _ = shared.sleepers.set(
            list.iter()
                .map(|h| (h.thread.clone(), h.sleeping.clone()))
                .collect(),
        );
        Team {
            shared,
            helpers: list,
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for h in &self.helpers {
            h.thread.unpark();
        }
    }
}

impl Shared {
    fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        // a poisoned lock only means an earlier job's panic was re-raised: still usable
        let _guard = match self.busy.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                (0..parts).for_each(f);
                return;
            }
        };
        // SAFETY: only the holder of `busy` writes job_fn, and no helper reads it now (`job`
        // is false and no helper is active: the previous job waited for that). The lifetime
        // is erased: helpers call it only before this function returns.
        unsafe {
            *self.job_fn.get() = Some(std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f));
        }
        self.parts.store(parts, Ordering::SeqCst);
        self.next.store(0, Ordering::SeqCst);
        self.done.store(0, Ordering::SeqCst);
        self.job.store(true, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for (thread, sleeping) in self.sleepers.get().into_iter().flatten() {
            if sleeping.load(Ordering::SeqCst) {
                thread.unpark();
            }
        }
        self.work(f);
        let mut spins = 0u32;
        while self.done.load(Ordering::SeqCst) < parts {
            spins = spins.saturating_add(1);
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now(); // a helper was descheduled
            }
        }
        self.job.store(false, Ordering::SeqCst);
        while self.active.load(Ordering::SeqCst) > 0 {
            std::hint::spin_loop();
        }
        let panicked = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = panicked {
            std::panic::resume_unwind(p);
        }
    }

    /// Claims and runs parts of the current job until none is left; a part that panics is
    /// counted done and its panic re-raised by the caller.
    fn work(&self, f: &(dyn Fn(usize) + Sync)) {
        let parts = self.parts.load(Ordering::SeqCst);
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= parts {
                return;
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i)));
            if let Err(p) = r {
                *self.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
            self.done.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A helper: spin on the job counter for `SPIN`, then sleep until a caller unparks it.
fn helper_loop(team: &Shared, sleeping: &AtomicBool) {
    let mut seen = 0u64;
    while !team.stop.load(Ordering::SeqCst) {
        let since = std::time::Instant::now();
        let mut spins = 0u32;
        while team.epoch.load(Ordering::SeqCst) == seen && !team.stop.load(Ordering::SeqCst) {
            spins = spins.wrapping_add(1);
            std::hint::spin_loop();
            if spins.is_multiple_of(1024) && since.elapsed() > SPIN {
                sleeping.store(true, Ordering::SeqCst);
                // re-checked after the flag is up: a job published before a caller could
                // see the flag would otherwise not wake us (an unpark before park is kept)
                if team.epoch.load(Ordering::SeqCst) == seen && !team.stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                sleeping.store(false, Ordering::SeqCst);
                break;
            }
        }
        let epoch = team.epoch.load(Ordering::SeqCst);
        if epoch == seen {
            continue; // woke without a job: spin again
        }
        seen = epoch;
        team.active.fetch_add(1, Ordering::SeqCst);
        if team.job.load(Ordering::SeqCst) {
            // SAFETY: `job` is true and we are counted active, so the caller that stored
            // job_fn has not returned and the function is alive
            if let Some(f) = unsafe { *team.job_fn.get() } {
                team.work(unsafe { &*f });
            }
        }
        team.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Calls `f(k, chunk k)` for the `size`-element chunks of `out` (the last may be shorter),
/// on up to `parts` threads' worth of work items claimed dynamically (see `split`).
pub fn for_each_chunk<T: Send>(
    out: &mut [T],
    size: usize,
    parts: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let len = out.len();
    let size = size.max(1);
    let chunks = len.div_ceil(size);
    let parts = parts.clamp(1, chunks.max(1));
    if parts <= 1 {
        out.chunks_mut(size).enumerate().for_each(|(k, c)| f(k, c));
        return;
    }
    let per = chunks.div_ceil(parts);
    let base = out.as_mut_ptr() as usize;
    split(chunks.div_ceil(per), |p| {
        for k in p * per..((p + 1) * per).min(chunks) {
            let (s, e) = (k * size, ((k + 1) * size).min(len));
            // SAFETY: the chunks [s, e) are disjoint and inside `out`, which outlives `split`
            let c = unsafe { std::slice::from_raw_parts_mut((base as *mut T).add(s), e - s) };
            f(k, c);
        }
    });
}

/// `for_each_chunk` over two outputs at once: chunk k of `a` (`size_a` elements) goes
/// with chunk k of `b` (`size_b`), for kernels that write two results in one pass.
pub fn for_each_chunk2<A: Send, B: Send>(
    (a, size_a): (&mut [A], usize),
    (b, size_b): (&mut [B], usize),
    parts: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    let size_b = size_b.max(1);
    assert_eq!(
        a.len().div_ceil(size_a.max(1)),
        b.len().div_ceil(size_b),
        "for_each_chunk2: the outputs have different numbers of chunks"
    );
    let (base, len) = (b.as_mut_ptr() as usize, b.len());
    for_each_chunk(a, size_a, parts, |k, ca| {
        let (s, e) = (k * size_b, ((k + 1) * size_b).min(len));
        // SAFETY: chunk k of `b` is disjoint from every other chunk and inside `b`, which
        // outlives the call; each k is handed out once
        let cb = unsafe { std::slice::from_raw_parts_mut((base as *mut B).add(s), e - s) };
        f(k, ca, cb);
    });
}

/// Fills `out` by calling `f(start, chunk)` over disjoint chunks, in parallel when large:
/// one chunk per thread, the first on the calling thread (see `split`); chunks start on
/// multiples of 16 elements, so SIMD loops see the same alignment in each.
pub fn for_chunks<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    let len = out.len();
    let threads = if len >= PAR_ELEMWISE_MIN {
        num_threads()
    } else {
        1
    };
    let chunk = len.div_ceil(threads).div_ceil(16).max(1) * 16;
    for_each_chunk(out, chunk, threads, |k, c| f(k * chunk, c));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_runs_every_part_once_and_reraises_a_panic() {
        set_num_threads(3);
        for parts in [1, 2, 3, 7, 64] {
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            split(parts, |i| {
                hits[i].fetch_add(1, Ordering::SeqCst);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::SeqCst) == 1),
                "{parts} parts"
            );
        }
        let r = std::panic::catch_unwind(|| {
            split(4, |i| {
                if i == 3 {
                    panic!("part 3");
                }
            })
        });
        assert!(r.is_err());
        // the team still works after a part panicked
        let sum = AtomicUsize::new(0);
        split(5, |i| {
            sum.fetch_add(i, Ordering::SeqCst);
        });
        assert_eq!(sum.load(Ordering::SeqCst), 10);
        let mut v = vec![0usize; 100_000];
        for_each_chunk(&mut v, 1000, 8, |k, c| c.iter_mut().for_each(|x| *x = k));
        assert!(v.iter().enumerate().all(|(i, &x)| x == i / 1000));
    }
}
