//! Tensor reductions, sorting, softmax and gathers.

use crate::prelude::*;

#[pymethods]
impl PyTensor {
    // ------------------------------------------------------------ reductions
    /// Sum over `dim` (an int, a sequence, or None for all); with `dtype`, the tensor is
    /// cast to it first (as PyTorch's, e.g. an int64 sum of bools or a float64 sum).
    #[pyo3(signature = (dim=None, keepdim=false, *, dtype=None, axis=None, keepdims=None))]
    fn sum(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        dtype: Option<PyDType>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("sum", dim, axis)?)?;
        let keepdim = keepdims_alias("sum", keepdim, keepdims)?;
        let cast;
        let t = match dtype {
            Some(dt) => {
                cast = self.t.cast(dt.into()).map_err(err)?;
                &cast
            }
            None => &self.t,
        };
        run(py, heavy(t), || t.sum(d.as_deref(), keepdim)).map(wrap)
    }
    /// The p-norm over `dim` (all when None): p = 2 or "fro", 1, inf, -inf, 0, or any p.
    #[pyo3(signature = (p=None, dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn norm(
        &self,
        py: Python<'_>,
        p: Option<&Bound<'_, PyAny>>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let order = match p {
            None => 2.0,
            Some(v) if v.extract::<String>().is_ok_and(|s| s == "fro") => 2.0,
            Some(v) => v.extract::<f64>().map_err(|_| {
                ArgumentError::new_err(format!(
                    "norm: p must be a number or \"fro\", got {}",
                    v.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?,
        };
        let d = dims_arg(axis_alias("norm", dim, axis)?)?;
        let keepdim = keepdims_alias("norm", keepdim, keepdims)?;
        let t = &self.t;
        run(py, heavy(t), || t.norm(order, d.as_deref(), keepdim)).map(wrap)
    }
    /// Whether any element over `dim` (all when None) is true: a bool tensor.
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn any(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("any", dim, axis)?)?;
        let keepdim = keepdims_alias("any", keepdim, keepdims)?;
        let t = &self.t;
        run(py, heavy(t), || t.any(d.as_deref(), keepdim)).map(wrap)
    }
    /// Whether every element over `dim` (all when None) is true: a bool tensor.
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn all(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("all", dim, axis)?)?;
        let keepdim = keepdims_alias("all", keepdim, keepdims)?;
        let t = &self.t;
        run(py, heavy(t), || t.all(d.as_deref(), keepdim)).map(wrap)
    }
    /// Mean over `dim`; with `dtype`, the tensor is cast to it first (as PyTorch's).
    #[pyo3(signature = (dim=None, keepdim=false, *, dtype=None, axis=None, keepdims=None))]
    fn mean(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        dtype: Option<PyDType>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("mean", dim, axis)?)?;
        let keepdim = keepdims_alias("mean", keepdim, keepdims)?;
        let cast;
        let t = match dtype {
            Some(dt) => {
                cast = self.t.cast(dt.into()).map_err(err)?;
                &cast
            }
            None => &self.t,
        };
        run(py, heavy(t), || t.mean(d.as_deref(), keepdim)).map(wrap)
    }
    /// Variance over `dim` with `correction` (1 = unbiased, as PyTorch's default).
    #[pyo3(signature = (dim=None, correction=1.0, keepdim=false, *, axis=None, keepdims=None))]
    fn var(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        correction: f64,
        keepdim: bool,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("var", dim, axis)?)?;
        let keepdim = keepdims_alias("var", keepdim, keepdims)?;
        let t = &self.t;
        run(py, heavy(t), || t.var(d.as_deref(), correction, keepdim)).map(wrap)
    }
    /// Standard deviation over `dim`.
    #[pyo3(signature = (dim=None, correction=1.0, keepdim=false, *, axis=None, keepdims=None))]
    fn std(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        correction: f64,
        keepdim: bool,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("std", dim, axis)?)?;
        let keepdim = keepdims_alias("std", keepdim, keepdims)?;
        let t = &self.t;
        run(py, heavy(t), || t.std(d.as_deref(), correction, keepdim)).map(wrap)
    }
    /// The maximum: of all elements without `dim` (a 0-d tensor); with an int `dim`, as
    /// PyTorch, the named tuple `(values, indices)` along it; with a tuple of dims, the
    /// values over them (as `amax`).
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn max<'py>(
        &self,
        py: Python<'py>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
        axis: Option<&Bound<'py, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dim = axis_alias("max", dim, axis)?;
        self.extreme(py, "max", dim, keepdims_alias("max", keepdim, keepdims)?)
    }
    /// The minimum, as `max`: `(values, indices)` along an int `dim`.
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn min<'py>(
        &self,
        py: Python<'py>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
        axis: Option<&Bound<'py, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dim = axis_alias("min", dim, axis)?;
        self.extreme(py, "min", dim, keepdims_alias("min", keepdim, keepdims)?)
    }
    /// Maximum values over `dim`.
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn amax(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("amax", dim, axis)?)?;
        let keepdim = keepdims_alias("amax", keepdim, keepdims)?;
        let t = &self.t;
        run(py, heavy(t), || t.amax(d.as_deref(), keepdim)).map(wrap)
    }
    /// Minimum values over `dim`.
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn amin(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("amin", dim, axis)?)?;
        let keepdim = keepdims_alias("amin", keepdim, keepdims)?;
        let t = &self.t;
        run(py, heavy(t), || t.amin(d.as_deref(), keepdim)).map(wrap)
    }
    /// Index of the maximum along `dim` (of the flattened tensor when None); int64, no grad.
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn argmax(
        &self,
        dim: Option<isize>,
        keepdim: bool,
        axis: Option<isize>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let dim = axis_alias_opt("argmax", dim, axis)?;
        let keepdim = keepdims_alias("argmax", keepdim, keepdims)?;
        self.t.argmax(dim, keepdim).map(wrap).map_err(err)
    }
    /// `(values, indices)` sorted along `dim`, as PyTorch's: ascending unless `descending`;
    /// stable (equal values keep their order); NaN above every number. The indices are
    /// int64 on the host (a GPU tensor is read back to sort); the values are differentiable.
    #[pyo3(signature = (dim=-1, descending=false, stable=false, *, axis=None))]
    fn sort<'py>(
        &self,
        py: Python<'py>,
        dim: isize,
        descending: bool,
        stable: bool,
        axis: Option<isize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dim = axis_alias_int("sort", dim, -1, axis)?;
        let _ = stable; // always stable
        let t = &self.t;
        let (v, i) = run_long(py, sort_work(t), || t.sort(dim, descending))?;
        values_indices(py, "sort", v, i)
    }
    /// The indices that sort along `dim` (int64; see `sort`).
    #[pyo3(signature = (dim=-1, descending=false, stable=false, *, axis=None))]
    fn argsort(
        &self,
        py: Python<'_>,
        dim: isize,
        descending: bool,
        stable: bool,
        axis: Option<isize>,
    ) -> PyResult<PyTensor> {
        let dim = axis_alias_int("argsort", dim, -1, axis)?;
        let _ = stable;
        let t = &self.t;
        run_long(py, sort_work(t), || t.argsort(dim, descending)).map(wrap)
    }
    /// `(values, indices)` of the `k` largest (or, with `largest=False`, smallest) entries
    /// along `dim`, in order (`sorted=False` is accepted; they come sorted anyway).
    #[pyo3(signature = (k, dim=-1, largest=true, sorted=true, *, axis=None))]
    fn topk<'py>(
        &self,
        py: Python<'py>,
        k: isize,
        dim: isize,
        largest: bool,
        sorted: bool,
        axis: Option<isize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dim = axis_alias_int("topk", dim, -1, axis)?;
        let _ = sorted;
        let k = count("topk", "k", k)?;
        let t = &self.t;
        let (v, i) = run_long(py, sort_work(t), || t.topk(k, dim, largest))?;
        values_indices(py, "topk", v, i)
    }
    /// The entries at `indices` (int64, this tensor's shape except along `dim`) along `dim`,
    /// as `torch.take_along_dim` / `gather`; differentiable.
    fn take_along_dim(&self, py: Python<'_>, indices: &PyTensor, dim: isize) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.take_along_dim(&indices.t, dim)).map(wrap)
    }
    /// PyTorch's `gather(dim, index)`: `out[i][j] = self[i][index[i][j]]` along `dim` 1
    /// (`log_probs.gather(1, y.unsqueeze(1))`); differentiable.
    fn gather(&self, py: Python<'_>, dim: isize, index: &PyTensor) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.gather_dim(dim, &index.t)).map(wrap)
    }
    /// Index of the minimum along `dim`; int64, no grad.
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn argmin(
        &self,
        dim: Option<isize>,
        keepdim: bool,
        axis: Option<isize>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let dim = axis_alias_opt("argmin", dim, axis)?;
        let keepdim = keepdims_alias("argmin", keepdim, keepdims)?;
        self.t.argmin(dim, keepdim).map(wrap).map_err(err)
    }
    /// log(sum(exp(x))) over `dim`, computed stably.
    #[pyo3(signature = (dim=None, keepdim=false, *, axis=None, keepdims=None))]
    fn logsumexp(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: Option<bool>,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(axis_alias("logsumexp", dim, axis)?)?;
        let keepdim = keepdims_alias("logsumexp", keepdim, keepdims)?;
        let t = &self.t;
        run(py, heavy(t), || t.logsumexp(d.as_deref(), keepdim)).map(wrap)
    }
    /// Softmax along `dim`, computed stably.
    #[pyo3(signature = (dim=-1, *, axis=None))]
    fn softmax(&self, py: Python<'_>, dim: isize, axis: Option<isize>) -> PyResult<PyTensor> {
        let dim = axis_alias_int("softmax", dim, -1, axis)?;
        let t = &self.t;
        run(py, heavy(t), || t.softmax(dim)).map(wrap)
    }
    /// log(softmax(x)) along `dim`, computed stably.
    #[pyo3(signature = (dim=-1, *, axis=None))]
    fn log_softmax(&self, py: Python<'_>, dim: isize, axis: Option<isize>) -> PyResult<PyTensor> {
        let dim = axis_alias_int("log_softmax", dim, -1, axis)?;
        let t = &self.t;
        run(py, heavy(t), || t.log_softmax(dim)).map(wrap)
    }
    /// Entries `index` (int64, 1-D) along `dim`.
    fn index_select(&self, py: Python<'_>, dim: isize, index: &PyTensor) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.index_select(dim, &index.t)).map(wrap)
    }
    /// index_select's adjoint: a zero tensor with dim `dim` of length `size`, each slice k
    /// of this tensor added into slice `index[k]` (the scatter-add behind index_add).
    fn _index_add_rows(
        &self,
        py: Python<'_>,
        dim: isize,
        index: &PyTensor,
        size: usize,
    ) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.index_add_rows(dim, &index.t, size)).map(wrap)
    }
}

impl PyTensor {
    /// max/min: the reduction of all elements, of a tuple of dims, or (values, indices)
    /// along one int dim, as PyTorch gives (`_, pred = out.max(1)` is the common idiom; a
    /// values-only result would unpack along the batch instead).
    pub(crate) fn extreme<'py>(
        &self,
        py: Python<'py>,
        op: &'static str,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let is_max = op == "max";
        // x.max(other): the elementwise maximum, as PyTorch's overload
        if let Some(o) = dim.and_then(|d| d.cast::<PyTensor>().ok()) {
            let o = o.get().t.clone();
            let t = &self.t;
            let r = run(py, heavy(t), || {
                if is_max {
                    t.maximum(&o)
                } else {
                    t.minimum(&o)
                }
            })?;
            return Ok(Bound::new(py, wrap(r))?.into_any());
        }
        let one = match dim {
            Some(d)
                if !d.is_none()
                    && !d.is_instance_of::<PyTuple>()
                    && !d.is_instance_of::<PyList>() =>
            {
                Some(d.extract::<isize>()?)
            }
            _ => None,
        };
        let d = dims_arg(dim)?;
        let t = &self.t;
        let reduce = || {
            if is_max {
                t.amax(d.as_deref(), keepdim)
            } else {
                t.amin(d.as_deref(), keepdim)
            }
        };
        let Some(axis) = one else {
            return Ok(Bound::new(py, wrap(run(py, heavy(t), reduce)?))?.into_any());
        };
        let indices = if is_max {
            t.argmax(Some(axis), true)
        } else {
            t.argmin(Some(axis), true)
        }
        .map_err(err)?;
        // with a gradient to carry, the values are taken at the indices, so the gradient
        // goes to that entry alone (PyTorch's rule: at a tie or a NaN, amax's would split
        // it or make it NaN); otherwise the reduction, the same values
        let values = if ferrograd_core::is_grad_enabled() && t.requires_grad() {
            let v = t.take_along_dim(&indices, axis).map_err(err)?;
            if keepdim {
                v
            } else {
                v.squeeze(Some(axis)).map_err(err)?
            }
        } else {
            run(py, heavy(t), reduce)?
        };
        let indices = if keepdim {
            indices
        } else {
            indices.squeeze(Some(axis)).map_err(err)?
        };
        values_indices(py, op, values, indices)
    }
}
