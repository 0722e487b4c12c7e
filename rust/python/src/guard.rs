//! Running core work from Python: panics caught, the GIL released for heavy kernels, and
//! Ctrl-C polled during long ones.

use crate::prelude::*;

/// Elements above which an op releases the GIL while it computes.
pub(crate) const GIL_RELEASE_MIN: usize = 1 << 15;

pub(crate) type CoreResult<T> = ferrograd_core::Result<T>;

/// Runs `f`, turning a panic into a RuntimeError rather than PyO3's PanicException (a
/// BaseException that `except Exception` misses). A panic is a bug in ferrograd, never the
/// user's fault; PanicException itself is rebased onto RuntimeError at import, for entry
/// points that do not come through here.
pub(crate) fn guarded<T>(f: impl FnOnce() -> CoreResult<T>) -> CoreResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Autograd(format!(
            "internal error in ferrograd (please report): {msg}"
        )))
    })
}

/// Runs `f` without the GIL when `heavy`, so other Python threads can run meanwhile.
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    heavy: bool,
    f: impl FnOnce() -> CoreResult<T> + Send,
) -> PyResult<T> {
    let r = if heavy {
        let modes = ferrograd_core::ThreadModes::current();
        py.detach(move || {
            // grad mode and autocast are per thread; carry them into the closure explicitly
            let prev = modes.install();
            let r = guarded(f);
            prev.install();
            r
        })
    } else {
        guarded(f)
    };
    r.map_err(err)
}

/// Work (multiply-adds, or elements for a sort) from which a kernel may run for tens of
/// milliseconds or more: such a call listens for Ctrl-C while it computes.
pub(crate) const LONG_WORK: usize = 1 << 31;

/// How often a long kernel's caller looks for a pending signal.
pub(crate) const SIGNAL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// `run` for kernels that may be long (matmul, sort): with `work` of `LONG_WORK` or more,
/// `f` runs on a helper thread while this one checks for signals every 50 ms. Python runs
/// signal handlers only on its main thread and only with the GIL, so a kernel in a
/// released section would otherwise finish before Ctrl-C arrived (1.5 s for a large
/// matmul). On a signal whose handler raises (KeyboardInterrupt), the kernel is told to
/// stop (it checks between chunks of its work) and the handler's exception is raised.
pub(crate) fn run_long<T: Send>(
    py: Python<'_>,
    work: usize,
    f: impl FnOnce() -> CoreResult<T> + Send,
) -> PyResult<T> {
    if work < LONG_WORK {
        return run(py, work >= GIL_RELEASE_MIN, f);
    }
    let modes = ferrograd_core::ThreadModes::current();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let worker_cancel = cancel.clone();
    let (result, raised) = py.detach(move || {
        std::thread::scope(|s| {
            s.spawn(move || {
                modes.install();
                let r = threads::with_cancel(worker_cancel, || guarded(f));
                let _ = tx.send(r);
            });
            loop {
                match rx.recv_timeout(SIGNAL_POLL) {
                    Ok(r) => return (r, None),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if let Err(e) = Python::attach(|py| py.check_signals()) {
                            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                            let r = rx.recv().unwrap_or_else(|_| {
                                Err(Error::Interrupted("interrupted".into()))
                            });
                            return (r, Some(e));
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        return (
                            Err(Error::Autograd(
                                "internal error in ferrograd (please report): a kernel thread ended without a result".into(),
                            )),
                            None,
                        )
                    }
                }
            }
        })
    });
    match raised {
        Some(e) => Err(e),
        None => result.map_err(err),
    }
}

pub(crate) fn heavy(t: &Tensor) -> bool {
    t.numel() >= GIL_RELEASE_MIN
}

/// Multiply-adds of a matrix product, roughly (the numel of `a` times `b`'s last dim).
pub(crate) fn mm_work(a: &Tensor, b: &Tensor) -> usize {
    a.numel()
        .saturating_mul(b.shape().last().copied().unwrap_or(1))
}

/// The work of a sort, scaled so a sort of 2**22 elements (tens of milliseconds) counts
/// as long.
pub(crate) fn sort_work(t: &Tensor) -> usize {
    t.numel().saturating_mul(1 << 9)
}
