//! Step capture (`fg.gpu.graph`, CUDA graphs' idea): while the GPU runtime records a step
//! into a graph instead of running it, the core must know, because a replay runs the
//! recorded dispatches without the host code that made them. What the host computed from
//! data at capture time would be stale on every replay, so during a capture:
//!
//! - reading the values of an integer tensor on the host (indices, labels) is refused,
//!   except where an op gives the graph a way to read them again at each replay
//!   ([`with_live_words`]: cross-entropy's class targets);
//! - the random numbers reserved are logged ([`note_reserved`]), so the runtime can check
//!   that every draw went to a kernel whose stream start it advances at each replay.
//!
//! The runtime sets [`set_active`]; nothing here depends on the GPU backend.

use crate::error::{Error, Result};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Recomputes a dispatch's metadata words from live host data at each replay.
pub type LiveWords = Box<dyn Fn() -> Result<Vec<u32>> + Send + Sync>;

static ACTIVE: AtomicBool = AtomicBool::new(false);
/// (first index, count) of each reservation of the global random stream while capturing
static RESERVED: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

thread_local! {
    static LIVE: RefCell<Option<LiveWords>> = const { RefCell::new(None) };
    static INT_READS: Cell<bool> = const { Cell::new(false) };
}

/// Whether a capture is recording.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Starts or ends a capture (the GPU runtime's `capture_begin` / `capture_end`).
pub fn set_active(on: bool) {
    RESERVED.lock().unwrap_or_else(|e| e.into_inner()).clear();
    ACTIVE.store(on, Ordering::Relaxed);
}

/// Logs a reservation of `n` numbers at `start` of the global stream (random.rs).
pub(crate) fn note_reserved(start: u64, n: u64) {
    if active() {
        RESERVED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((start, n));
    }
}

/// The reservations made since the capture began.
pub fn reserved() -> Vec<(u64, u64)> {
    RESERVED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Refuses a host read of integer values during a capture, unless an op allowed it.
pub(crate) fn check_int_read(op: &str) -> Result<()> {
    if active() && !INT_READS.with(Cell::get) {
        return Err(Error::Device(format!(
            "{op} inside a captured GPU step: a replay runs the recorded kernels without \
             the host code, so integer values (indices, labels) read on the host now would \
             never be read again; do it outside the capture (cross_entropy's class targets \
             are the exception: a replay reads them again)"
        )));
    }
    Ok(())
}

/// Runs `f` with host reads of integer values allowed (an op whose reads the graph repeats).
pub(crate) fn reading_ints<R>(f: impl FnOnce() -> R) -> R {
    let before = INT_READS.with(|c| c.replace(true));
    let out = f();
    INT_READS.with(|c| c.set(before));
    out
}

/// Runs `f`, offering `live` to the first dispatch it records whose metadata words equal
/// what `live` returns now: a replay recomputes that dispatch's words with it. Outside a
/// capture `live` is None and this is `f()`. An offer nobody took is an error (the op's
/// words would be frozen at their capture values).
pub(crate) fn with_live_words<R>(
    op: &str,
    live: Option<LiveWords>,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    let Some(live) = live else {
        return f();
    };
    LIVE.with(|l| *l.borrow_mut() = Some(live));
    let out = f();
    let left = LIVE.with(|l| l.borrow_mut().take());
    let out = out?;
    if left.is_some() {
        return Err(Error::Device(format!(
            "{op}: cannot be captured here: its host data would not be read again at replay"
        )));
    }
    Ok(out)
}

/// The runtime's side of [`with_live_words`]: takes the offer when `words` are what it
/// computes now (a dispatch whose words came from elsewhere leaves it).
pub fn take_live_words(words: &[u32]) -> Option<LiveWords> {
    LIVE.with(|l| {
        let mut l = l.borrow_mut();
        let matches = l
            .as_ref()
            .is_some_and(|f| reading_ints(f).is_ok_and(|now| now.as_slice() == words));
        if matches {
            l.take()
        } else {
            None
        }
    })
}
