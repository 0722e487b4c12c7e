//! Optimizer steps: every parameter updated in one call.

use crate::prelude::*;

/// The gate of a step gated on the device (`found` and `skipped` both or neither).
fn gate<'a>(
    op: &str,
    found: &'a Option<PyTensor>,
    skipped: &'a Option<PyTensor>,
    count: bool,
) -> PyResult<Option<optim::Gate<'a>>> {
    match (found, skipped) {
        (Some(f), Some(s)) => Ok(Some(optim::Gate {
            found: &f.t,
            skipped: &s.t,
            count,
        })),
        (None, None) => Ok(None),
        _ => Err(ArgumentError::new_err(format!(
            "{op}: found and skipped go together"
        ))),
    }
}

/// One fused SGD step over all parameters (PyTorch's formulas). With `found` and `skipped`
/// the step is gated on the device (see `adam_step`); returns False where it cannot be.
#[pyfunction]
#[pyo3(signature = (params, grads, bufs, first, lr, momentum=0.0, dampening=0.0, nesterov=false, weight_decay=0.0, found=None, skipped=None, count=true))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd_step(
    py: Python<'_>,
    params: Vec<PyTensor>,
    grads: Vec<PyTensor>,
    bufs: Vec<PyTensor>,
    first: bool,
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    found: Option<PyTensor>,
    skipped: Option<PyTensor>,
    count: bool,
) -> PyResult<bool> {
    let gate = gate("sgd_step", &found, &skipped, count)?;
    let (p, g, b) = (ts(&params), ts(&grads), ts(&bufs));
    if g.len() != p.len() || (momentum != 0.0 && b.len() != p.len()) {
        return Err(ArgumentError::new_err(
            "sgd_step: params, grads and buffers must have the same length",
        ));
    }
    let h = optim::Sgd {
        lr,
        momentum,
        dampening,
        nesterov,
        weight_decay,
    };
    run(py, true, || optim::sgd_step(&p, &g, &b, first, h, gate))
}

/// Mixed precision's unscaling of `grads` in place in a few passes (the GPU's multi-tensor
/// kernel): a 0-d tensor, 1.0 if any element was inf or NaN before, else 0.0; None where
/// the gradients are not all whole float32 GPU tensors of their own (go one by one).
/// `scale`: a scale state kept on the device (float32 (scale, inverse scale, ...)), whose
/// inverse is used instead of `inv`.
#[pyfunction]
#[pyo3(signature = (grads, inv, scale=None))]
pub(crate) fn _unscale_grads(
    py: Python<'_>,
    grads: Vec<PyTensor>,
    inv: f32,
    scale: Option<PyTensor>,
) -> PyResult<Option<PyTensor>> {
    let g = ts(&grads);
    let r = run(py, true, || {
        optim::unscale_grads(&g, inv, scale.as_ref().map(|s| &s.t))
    })?;
    Ok(r.map(wrap))
}

/// GradScaler's update of a scale state kept on the device (float32 (scale, inverse scale,
/// clean steps in a row, unused)) from the iteration's found-inf flag, in one kernel:
/// False (nothing done) where the device has none (the caller composes it).
#[pyfunction]
pub(crate) fn _amp_update_scale(
    py: Python<'_>,
    state: PyTensor,
    found: PyTensor,
    growth: f64,
    backoff: f64,
    interval: u32,
) -> PyResult<bool> {
    let h = optim::ScaleUpdate {
        growth,
        backoff,
        interval,
    };
    run(py, true, || optim::amp_update_scale(&state.t, &found.t, h))
}

/// One fused Adam/AdamW step over all parameters; `step` counts from 1. With `found` (a
/// GradScaler's found-inf flag) and `skipped` (the count of steps skipped so far, one
/// float32 element each, on the GPU) the step is gated on the device: nothing moves where
/// `found` is nonzero, and the bias corrections count `step - skipped`; with `count` a
/// skipped step adds itself to `skipped` (set it on one call of each step). Returns False
/// (nothing done) where it cannot be gated, else True.
#[pyfunction]
#[pyo3(signature = (params, grads, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=false, found=None, skipped=None, count=true))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam_step(
    py: Python<'_>,
    params: Vec<PyTensor>,
    grads: Vec<PyTensor>,
    m: Vec<PyTensor>,
    v: Vec<PyTensor>,
    step: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    found: Option<PyTensor>,
    skipped: Option<PyTensor>,
    count: bool,
) -> PyResult<bool> {
    let gate = gate("adam_step", &found, &skipped, count)?;
    let (p, g, m, v) = (ts(&params), ts(&grads), ts(&m), ts(&v));
    if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
        return Err(ArgumentError::new_err(
            "adam_step: params, grads and moments must have the same length",
        ));
    }
    let h = optim::Adam {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        decoupled,
    };
    run(py, true, || optim::adam_step(&p, &g, &m, &v, step, h, gate))
}

/// One fused RMSprop step over all parameters.
#[pyfunction]
#[pyo3(signature = (params, grads, square_avg, momentum_buf, grad_avg, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn rmsprop_step(
    py: Python<'_>,
    params: Vec<PyTensor>,
    grads: Vec<PyTensor>,
    square_avg: Vec<PyTensor>,
    momentum_buf: Vec<PyTensor>,
    grad_avg: Vec<PyTensor>,
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
) -> PyResult<()> {
    let (p, g, sq, b, ga) = (
        ts(&params),
        ts(&grads),
        ts(&square_avg),
        ts(&momentum_buf),
        ts(&grad_avg),
    );
    let n = p.len();
    if g.len() != n
        || sq.len() != n
        || (momentum > 0.0 && b.len() != n)
        || (centered && ga.len() != n)
    {
        return Err(ArgumentError::new_err(
            "rmsprop_step: params, grads and state must have the same length",
        ));
    }
    let h = optim::RmsProp {
        lr,
        alpha,
        eps,
        weight_decay,
        momentum,
        centered,
    };
    run(py, true, || optim::rmsprop_step(&p, &g, &sq, &b, &ga, h))
}

/// One fused Adadelta step over all parameters. With `found` and `skipped` the step is
/// gated on the device (see `adam_step`); returns False where it cannot be.
#[pyfunction]
#[pyo3(signature = (params, grads, square_avg, acc_delta, lr, rho=0.9, eps=1e-6, weight_decay=0.0, found=None, skipped=None, count=true))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn adadelta_step(
    py: Python<'_>,
    params: Vec<PyTensor>,
    grads: Vec<PyTensor>,
    square_avg: Vec<PyTensor>,
    acc_delta: Vec<PyTensor>,
    lr: f64,
    rho: f64,
    eps: f64,
    weight_decay: f64,
    found: Option<PyTensor>,
    skipped: Option<PyTensor>,
    count: bool,
) -> PyResult<bool> {
    let gate = gate("adadelta_step", &found, &skipped, count)?;
    let (p, g, sq, acc) = (ts(&params), ts(&grads), ts(&square_avg), ts(&acc_delta));
    let n = p.len();
    if g.len() != n || sq.len() != n || acc.len() != n {
        return Err(ArgumentError::new_err(
            "adadelta_step: params, grads and state must have the same length",
        ));
    }
    let h = optim::Adadelta {
        lr,
        rho,
        eps,
        weight_decay,
    };
    run(py, true, || {
        optim::adadelta_step(&p, &g, &sq, &acc, h, gate)
    })
}
