//! Module-level functions: creation, joining, selection, grad mode, threads.

use crate::prelude::*;

/// A tensor copied from a NumPy array of float16, float32, float64, uint8, int32, int64 or
/// bool.
#[pyfunction]
pub(crate) fn from_numpy(py: Python<'_>, a: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    fn take<T: numpy::Element + Copy + Send + Sync>(
        a: &Bound<'_, PyAny>,
    ) -> Option<(Vec<T>, Vec<usize>)> {
        let arr: PyReadonlyArrayDyn<'_, T> = a.extract().ok()?;
        let shape = arr.shape().to_vec();
        let v = match arr.as_slice() {
            Ok(s) => s.to_vec(),
            Err(_) => arr.as_array().iter().copied().collect(),
        };
        Some((v, shape))
    }
    let _ = py;
    let t = if let Some((v, s)) = take::<f32>(a) {
        Tensor::from_vec(v, &s)
    } else if let Some((v, s)) = take::<f64>(a) {
        Tensor::from_vec(v, &s)
    } else if let Some((v, s)) = take::<i64>(a) {
        Tensor::from_vec(v, &s)
    } else if let Some((v, s)) = take::<bool>(a) {
        Tensor::from_vec(v, &s)
    } else if let Some((v, s)) = take::<u8>(a) {
        Tensor::from_vec(v, &s)
    } else if let Some((v, s)) = take::<i32>(a) {
        Tensor::from_vec(v, &s)
    } else if let Some((v, s)) = take::<half::f16>(a) {
        Tensor::from_vec(v, &s)
    } else {
        return Err(DTypeError::new_err(format!(
            "from_numpy: unsupported array dtype {}; use float16, float32, float64, uint8, int32, \
             int64 or bool",
            a.getattr("dtype")?
        )));
    };
    t.map(wrap).map_err(err)
}

/// Zeros of `shape`.
#[pyfunction]
#[pyo3(signature = (shape, dtype=None))]
pub(crate) fn zeros(shape: Vec<isize>, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    Tensor::zeros(&sizes("zeros", &shape)?, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// `shape` filled with `value`.
#[pyfunction]
#[pyo3(signature = (shape, value, dtype=None))]
pub(crate) fn full(shape: Vec<isize>, value: f64, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    Tensor::full(&sizes("full", &shape)?, value, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// Evenly spaced values in [start, end).
#[pyfunction]
#[pyo3(signature = (start, end, step, dtype=None))]
pub(crate) fn arange(
    start: f64,
    end: f64,
    step: f64,
    dtype: Option<PyDType>,
) -> PyResult<PyTensor> {
    Tensor::arange(start, end, step, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// The identity matrix (n x m).
#[pyfunction]
#[pyo3(signature = (n, m, dtype=None))]
pub(crate) fn eye(n: isize, m: isize, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    let s = sizes("eye", &[n, m])?;
    Tensor::eye(s[0], s[1], dt(dtype)).map(wrap).map_err(err)
}

/// Joins tensors along an existing dim.
#[pyfunction]
#[pyo3(signature = (tensors, dim=0, *, axis=None))]
pub(crate) fn cat(
    py: Python<'_>,
    tensors: Vec<PyTensor>,
    dim: isize,
    axis: Option<isize>,
) -> PyResult<PyTensor> {
    let dim = axis_alias_int("cat", dim, 0, axis)?;
    let ts: Vec<Tensor> = tensors.into_iter().map(|t| t.t).collect();
    let big = ts.iter().map(|t| t.numel()).sum::<usize>() >= GIL_RELEASE_MIN;
    run(py, big, || Tensor::cat(&ts, dim)).map(wrap)
}

/// Joins same-shaped tensors along a new dim.
#[pyfunction]
#[pyo3(signature = (tensors, dim=0, *, axis=None))]
pub(crate) fn stack(
    py: Python<'_>,
    tensors: Vec<PyTensor>,
    dim: isize,
    axis: Option<isize>,
) -> PyResult<PyTensor> {
    let dim = axis_alias_int("stack", dim, 0, axis)?;
    let ts: Vec<Tensor> = tensors.into_iter().map(|t| t.t).collect();
    let big = ts.iter().map(|t| t.numel()).sum::<usize>() >= GIL_RELEASE_MIN;
    run(py, big, || Tensor::stack(&ts, dim)).map(wrap)
}

/// Elementwise choice: `a` where `cond`, else `b`.
#[pyfunction]
#[pyo3(name = "where")]
pub(crate) fn where_(cond: &PyTensor, a: &PyTensor, b: &PyTensor) -> PyResult<PyTensor> {
    Tensor::where_(&cond.t, &a.t, &b.t).map(wrap).map_err(err)
}

/// `x @ w.T + b`, with the bias fused into the matrix product; `activation` ("relu" or
/// "selu") is applied in the same kernel on the GPU. `dropout` (a probability; SELU's
/// alpha dropout with `alpha_dropout`) follows in training, as its own op would.
#[pyfunction]
#[pyo3(signature = (x, w, b=None, activation=None, alpha=None, *, dropout=None, alpha_dropout=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear(
    py: Python<'_>,
    x: &PyTensor,
    w: &PyTensor,
    b: Option<PyTensor>,
    activation: Option<&str>,
    alpha: Option<f64>,
    dropout: Option<f64>,
    alpha_dropout: bool,
) -> PyResult<PyTensor> {
    use ferrograd_core::ops::nn::Dropout;
    let drop = dropout.map(|p| match alpha_dropout {
        true => Dropout::Alpha(p),
        false => Dropout::Plain(p),
    });
    let act = match activation {
        None => None,
        Some("relu") => Some(UnaryOp::Relu),
        Some("selu") => Some(UnaryOp::Selu),
        Some("tanh") => Some(UnaryOp::Tanh),
        Some("sigmoid") => Some(UnaryOp::Sigmoid),
        Some("elu") => Some(UnaryOp::Elu(alpha.unwrap_or(1.0))),
        Some("leaky_relu") => Some(UnaryOp::LeakyRelu(alpha.unwrap_or(0.01))),
        Some(other) => {
            return Err(ArgumentError::new_err(format!(
                "linear: activation must be None, 'relu', 'selu', 'tanh', 'sigmoid', 'elu' or \
                 'leaky_relu', got {other:?}"
            )))
        }
    };
    let work =
        x.t.numel()
            .saturating_mul(w.t.shape().first().copied().unwrap_or(1));
    run_long(py, work, || {
        x.t.linear_act(&w.t, b.as_ref().map(|b| &b.t), act, drop)
    })
    .map(wrap)
}

/// One-hot encoding of int64 labels (num_classes=-1: max label + 1).
#[pyfunction]
#[pyo3(signature = (labels, num_classes=-1))]
pub(crate) fn one_hot(labels: &PyTensor, num_classes: isize) -> PyResult<PyTensor> {
    let c = if num_classes < 0 {
        None
    } else {
        Some(num_classes as usize)
    };
    labels.t.one_hot(c).map(wrap).map_err(err)
}

/// Turns graph recording on or off on this thread; returns the previous setting.
#[pyfunction]
pub(crate) fn set_grad_enabled(on: bool) -> bool {
    ferrograd_core::set_grad_enabled(on)
}

/// Whether ops record the autograd graph on this thread.
#[pyfunction]
pub(crate) fn is_grad_enabled() -> bool {
    ferrograd_core::is_grad_enabled()
}

/// The device kind an autocast setting is for: a name, not a probe (autocast may be set
/// where no GPU is present, as PyTorch allows).
fn autocast_device(name: &str) -> PyResult<ferrograd_core::Device> {
    match name {
        "cpu" => Ok(ferrograd_core::Device::Cpu),
        "gpu" | "cuda" | "wgpu" => Ok(ferrograd_core::Device::Gpu),
        other => Err(ArgumentError::new_err(format!(
            "autocast: device must be 'cpu' or 'gpu', got {other:?}"
        ))),
    }
}

/// Turns autocast on for a device ("cpu", or "gpu"/"cuda") with `dtype` (float16 or
/// bfloat16), or off with None, on this thread; returns the previous dtype (None: off).
#[pyfunction]
#[pyo3(signature = (device, dtype))]
pub(crate) fn set_autocast(device: &str, dtype: Option<PyDType>) -> PyResult<Option<PyDType>> {
    let dev = autocast_device(device)?;
    ferrograd_core::set_autocast(dev, dtype.map(DType::from))
        .map(|p| p.map(PyDType::from))
        .map_err(err)
}

/// The autocast dtype of a device on this thread, or None when autocast is off there.
#[pyfunction]
pub(crate) fn autocast_dtype(device: &str) -> PyResult<Option<PyDType>> {
    let dev = autocast_device(device)?;
    Ok(ferrograd_core::autocast_dtype(dev).map(PyDType::from))
}

/// Sets the number of threads kernels use.
#[pyfunction]
pub(crate) fn set_num_threads(n: isize) -> PyResult<()> {
    if n < 1 {
        return Err(ArgumentError::new_err(format!(
            "set_num_threads: expected a positive count, got {n}"
        )));
    }
    let most = threads::max_threads();
    if n as usize > most {
        return Err(ArgumentError::new_err(format!(
            "set_num_threads: {n} threads is more than this machine can use (at most {most}: \
             8 per core, at least 64); starting that many would take seconds and gain nothing"
        )));
    }
    threads::set_num_threads(n as usize);
    Ok(())
}

/// The number of threads kernels use.
#[pyfunction]
pub(crate) fn get_num_threads() -> usize {
    threads::num_threads()
}

/// The host buffer cache's counters: (blocks served from the cache, blocks mapped by the
/// system, bytes held in free blocks).
#[pyfunction]
pub(crate) fn host_cache_stats() -> (u64, u64, usize) {
    ferrograd_core::alloc::stats()
}

/// Returns the host buffer cache's free blocks to the system.
#[pyfunction]
pub(crate) fn host_empty_cache() {
    ferrograd_core::alloc::empty()
}

/// The most bytes the host buffer cache keeps (0: no caching); with `limit`, sets it and
/// returns the previous one.
#[pyfunction]
#[pyo3(signature = (limit=None))]
pub(crate) fn host_cache_limit(limit: Option<usize>) -> usize {
    match limit {
        Some(l) => ferrograd_core::alloc::set_limit(l),
        None => ferrograd_core::alloc::limit(),
    }
}

/// The diagonal of dims (`dim1`, `dim2`) as a new last dim: a view (`Tensor.diagonal`).
#[pyfunction]
pub(crate) fn _diagonal(
    x: &PyTensor,
    offset: isize,
    dim1: isize,
    dim2: isize,
) -> PyResult<PyTensor> {
    x.t.diagonal(offset, dim1, dim2).map(wrap).map_err(err)
}

/// Windows of `size` along `dim`, `step` apart, as a new last dim: a view (`Tensor.unfold`).
#[pyfunction]
pub(crate) fn _unfold(x: &PyTensor, dim: isize, size: usize, step: usize) -> PyResult<PyTensor> {
    x.t.unfold(dim, size, step).map(wrap).map_err(err)
}
