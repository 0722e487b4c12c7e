//! Fused network kernels: batch norm, dropout, losses.

use crate::prelude::*;

/// Batch normalization of a (N, C) input (updates running stats in place when training);
/// `activation="relu"` applies relu, and `dropout` > 0 then inverted dropout with that
/// probability, in the same kernels (the mask `dropout` would draw next); `residual` (a
/// residual block's shortcut, (N, C)) is added last: `residual + y`.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5, activation=None, dropout=0.0, residual=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm(
    py: Python<'_>,
    x: &PyTensor,
    weight: Option<PyTensor>,
    bias: Option<PyTensor>,
    running_mean: Option<PyTensor>,
    running_var: Option<PyTensor>,
    training: bool,
    momentum: f64,
    eps: f64,
    activation: Option<&str>,
    dropout: f64,
    residual: Option<PyTensor>,
) -> PyResult<PyTensor> {
    let relu = match activation {
        None => false,
        Some("relu") => true,
        Some(other) => {
            return Err(ArgumentError::new_err(format!(
                "batch_norm: activation must be None or 'relu', got {other:?}"
            )))
        }
    };
    let o = |t: &Option<PyTensor>| t.as_ref().map(|t| t.t.clone());
    let (w, b, rm, rv) = (o(&weight), o(&bias), o(&running_mean), o(&running_var));
    let r = o(&residual);
    run(py, heavy(&x.t), || {
        x.t.batch_norm_act(
            w.as_ref(),
            b.as_ref(),
            rm.as_ref(),
            rv.as_ref(),
            training,
            momentum,
            eps,
            relu,
            dropout,
            r.as_ref(),
        )
    })
    .map(wrap)
}

/// Inverted dropout with probability `p` (identity when not training).
#[pyfunction]
#[pyo3(signature = (x, p=0.5, training=true))]
pub(crate) fn dropout(py: Python<'_>, x: &PyTensor, p: f64, training: bool) -> PyResult<PyTensor> {
    run(py, heavy(&x.t), || x.t.dropout(p, training)).map(wrap)
}

/// Alpha dropout for SELU networks (identity when not training).
#[pyfunction]
#[pyo3(signature = (x, p=0.5, training=true))]
pub(crate) fn alpha_dropout(
    py: Python<'_>,
    x: &PyTensor,
    p: f64,
    training: bool,
) -> PyResult<PyTensor> {
    run(py, heavy(&x.t), || x.t.alpha_dropout(p, training)).map(wrap)
}

/// Fused log-softmax + negative log-likelihood of int64 class targets.
#[pyfunction]
#[pyo3(signature = (logits, target, label_smoothing=0.0, reduction="mean"))]
pub(crate) fn cross_entropy(
    py: Python<'_>,
    logits: &PyTensor,
    target: &PyTensor,
    label_smoothing: f64,
    reduction: &str,
) -> PyResult<PyTensor> {
    let r = Reduction::parse("cross_entropy", reduction).map_err(err)?;
    run(py, heavy(&logits.t), || {
        logits.t.cross_entropy(&target.t, label_smoothing, r)
    })
    .map(wrap)
}

/// Rows of (N, C) scores whose argmax equals the int64 label: an f32 scalar on the
/// scores' device (accuracy without a read-back per batch).
#[pyfunction]
pub(crate) fn correct_count(
    py: Python<'_>,
    scores: &PyTensor,
    labels: &PyTensor,
) -> PyResult<PyTensor> {
    run(py, heavy(&scores.t), || scores.t.correct_count(&labels.t)).map(wrap)
}

/// Binary cross-entropy computed stably from logits.
#[pyfunction]
#[pyo3(signature = (logits, target, reduction="mean"))]
pub(crate) fn binary_cross_entropy_with_logits(
    py: Python<'_>,
    logits: &PyTensor,
    target: &PyTensor,
    reduction: &str,
) -> PyResult<PyTensor> {
    let r = Reduction::parse("binary_cross_entropy", reduction).map_err(err)?;
    run(py, heavy(&logits.t), || {
        logits.t.binary_cross_entropy_with_logits(&target.t, r)
    })
    .map(wrap)
}
