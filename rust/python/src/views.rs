//! Tensor methods: views and shape changes, copies, pickling and formatting.

use crate::prelude::*;

#[pymethods]
impl PyTensor {
    // ------------------------------------------------------------ views and copies
    /// A tensor with a new shape (a view when possible); one dim may be -1.
    #[pyo3(signature = (*shape))]
    fn reshape(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        self.t.reshape(&shape_args(shape)?).map(wrap).map_err(err)
    }
    /// A view with a new shape; refuses when the strides do not allow one.
    #[pyo3(signature = (*shape))]
    fn view(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        self.t.view(&shape_args(shape)?).map(wrap).map_err(err)
    }
    /// The transpose of a matrix (a view); 0-D and 1-D tensors come back as they are.
    fn t(&self) -> PyResult<PyTensor> {
        match self.t.ndim() {
            0 | 1 => Ok(wrap(self.t.clone())),
            2 => self.t.transpose(0, 1).map(wrap).map_err(err),
            n => Err(ArgumentError::new_err(format!(
                "t: expects a tensor with at most 2 dims, got {n}; use transpose(dim0, dim1) or permute"
            ))),
        }
    }
    /// `view(other.shape)`.
    fn view_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        self.t.view(&isize_shape(&other.t)).map(wrap).map_err(err)
    }
    /// `reshape(other.shape)`.
    fn reshape_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        self.t
            .reshape(&isize_shape(&other.t))
            .map(wrap)
            .map_err(err)
    }
    /// `expand(other.shape)`.
    fn expand_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        self.t.expand(&isize_shape(&other.t)).map(wrap).map_err(err)
    }
    /// This tensor with `other`'s dtype, on `other`'s device (as PyTorch's, whose tensor
    /// types carry the device).
    fn type_as(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (t, o) = (&self.t, &other.t);
        run(py, heavy(t), || t.cast(o.dtype())?.to_device(o.device())).map(wrap)
    }
    /// Views of `split_size` entries along `dim` (the last may be shorter), or of the
    /// given sizes when a list is passed.
    #[pyo3(signature = (split_size_or_sections, dim=0, *, axis=None))]
    fn split<'py>(
        &self,
        py: Python<'py>,
        split_size_or_sections: &Bound<'py, PyAny>,
        dim: isize,
        axis: Option<isize>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let dim = axis_alias_int("split", dim, 0, axis)?;
        let parts = if let Ok(n) = split_size_or_sections.extract::<isize>() {
            self.t.split(count("split", "the piece size", n)?, dim)
        } else {
            let sizes: Vec<isize> = split_size_or_sections.extract().map_err(|_| {
                PyTypeError::new_err("split: expected a piece size (int) or a list of sizes")
            })?;
            let sizes = sizes
                .into_iter()
                .map(|n| count("split", "each size", n))
                .collect::<PyResult<Vec<usize>>>()?;
            self.t.split_sizes(&sizes, dim)
        };
        tuple_of(py, parts.map_err(err)?)
    }
    /// At most `chunks` equal views along `dim` (the last may be shorter).
    #[pyo3(signature = (chunks, dim=0, *, axis=None))]
    fn chunk<'py>(
        &self,
        py: Python<'py>,
        chunks: isize,
        dim: isize,
        axis: Option<isize>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let dim = axis_alias_int("chunk", dim, 0, axis)?;
        let chunks = count("chunk", "the number of chunks", chunks)?;
        tuple_of(py, self.t.chunk(chunks, dim).map_err(err)?)
    }
    /// The slices along `dim`, each without that dim.
    #[pyo3(signature = (dim=0, *, axis=None))]
    fn unbind<'py>(
        &self,
        py: Python<'py>,
        dim: isize,
        axis: Option<isize>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let dim = axis_alias_int("unbind", dim, 0, axis)?;
        tuple_of(py, self.t.unbind(dim).map_err(err)?)
    }
    /// Swaps two dims (a view).
    fn transpose(&self, dim0: isize, dim1: isize) -> PyResult<PyTensor> {
        self.t.transpose(dim0, dim1).map(wrap).map_err(err)
    }
    /// Reorders the dims (a view).
    #[pyo3(signature = (*dims))]
    fn permute(&self, dims: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        self.t.permute(&shape_args(dims)?).map(wrap).map_err(err)
    }
    /// The transpose of a matrix (all dims reversed for other ranks, as NumPy's `.T`).
    #[getter(T)]
    fn t_prop(&self) -> PyResult<PyTensor> {
        let dims: Vec<isize> = (0..self.t.ndim() as isize).rev().collect();
        self.t.permute(&dims).map(wrap).map_err(err)
    }
    /// Broadcasts to a larger shape without copying; -1 keeps a dim.
    #[pyo3(signature = (*shape))]
    fn expand(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        self.t.expand(&shape_args(shape)?).map(wrap).map_err(err)
    }
    /// The tensor tiled: `repeat(2, 3)` repeats it twice along dim 0 and three times along
    /// dim 1 (a copy, as PyTorch's; `expand` is the view).
    #[pyo3(signature = (*sizes))]
    fn repeat(&self, py: Python<'_>, sizes: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let reps = shape_args(sizes)?;
        let t = &self.t;
        run(py, heavy(t), || t.repeat(&reps)).map(wrap)
    }
    /// Inserts a size-1 dim.
    fn unsqueeze(&self, dim: isize) -> PyResult<PyTensor> {
        self.t.unsqueeze(dim).map(wrap).map_err(err)
    }
    /// Removes size-1 dims (all, just `dim`, or those of a tuple of dims that have size 1).
    #[pyo3(signature = (dim=None, *, axis=None))]
    fn squeeze(&self, dim: Option<&Bound<'_, PyAny>>, axis: Option<isize>) -> PyResult<PyTensor> {
        if let Some(d) =
            dim.filter(|d| d.is_instance_of::<PyTuple>() || d.is_instance_of::<PyList>())
        {
            if axis.is_some() {
                return Err(PyTypeError::new_err("squeeze: give dim or axis, not both"));
            }
            let n = self.t.ndim();
            let mut dims = d
                .extract::<Vec<isize>>()?
                .into_iter()
                .map(|x| ferrograd_core::layout::normalize_dim("squeeze", x, n.max(1)))
                .collect::<ferrograd_core::Result<Vec<usize>>>()
                .map_err(err)?;
            dims.sort_unstable();
            dims.dedup();
            let mut t = self.t.clone();
            for &x in dims.iter().rev() {
                if x < t.ndim() && t.shape()[x] == 1 {
                    t = t.squeeze(Some(x as isize)).map_err(err)?;
                }
            }
            return Ok(wrap(t));
        }
        let dim = dim.map(|d| d.extract::<isize>()).transpose()?;
        let dim = axis_alias_opt("squeeze", dim, axis)?;
        self.t.squeeze(dim).map(wrap).map_err(err)
    }
    /// Flattens dims start_dim..=end_dim into one.
    #[pyo3(signature = (start_dim=0, end_dim=-1))]
    fn flatten(&self, start_dim: isize, end_dim: isize) -> PyResult<PyTensor> {
        self.t.flatten(start_dim, end_dim).map(wrap).map_err(err)
    }
    /// `length` entries of `dim` from `start` (a view).
    fn narrow(&self, dim: isize, start: isize, length: isize) -> PyResult<PyTensor> {
        let length = count("narrow", "length", length)?;
        let d = ferrograd_core::layout::normalize_dim("narrow", dim, self.t.ndim()).map_err(err)?;
        let size = self.t.shape().get(d).copied().unwrap_or(0) as isize;
        let s = if start < 0 { start + size } else { start };
        if s < 0 {
            return Err(OutOfRangeError::new_err(format!(
                "narrow: start {start} is out of range for a dim of size {size}"
            )));
        }
        self.t
            .narrow(dim, s as usize, length)
            .map(wrap)
            .map_err(err)
    }
    /// A C-contiguous tensor (itself when already contiguous).
    fn contiguous(&self) -> PyResult<PyTensor> {
        self.t.contiguous().map(wrap).map_err(err)
    }
    /// A copy with its own storage; gradients flow back to the source.
    fn clone(&self) -> PyResult<PyTensor> {
        self.t.clone_tensor().map(wrap).map_err(err)
    }
    /// `copy.deepcopy` (of a tensor, a state dict, a whole model): a leaf with its own copy
    /// of the data and of its grad, on the same device, with the same `requires_grad`.
    /// Tensors of the graph are refused, as PyTorch does. Distinct views of one storage
    /// become distinct copies; the same tensor reached twice stays one (deepcopy's memo).
    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        if !self.t.is_leaf() {
            return Err(PyRuntimeError::new_err(
                "deepcopy: only leaf tensors (made by the user, not by an op of the graph) can be \
                 deep-copied; copy t.detach() instead",
            ));
        }
        let c = self.t.detach().clone_tensor().map_err(err)?;
        if self.t.requires_grad() {
            c.set_requires_grad(true).map_err(err)?;
        }
        if let Some(g) = self.t.grad() {
            c.set_grad(Some(g.detach().clone_tensor().map_err(err)?))
                .map_err(err)?;
        }
        Ok(wrap(c))
    }
    /// Pickling (and `copy.copy`): rebuilt by `ferrograd.tensor` from a NumPy copy of the
    /// data, with the dtype, `requires_grad` and device; the grad is not kept.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        if !self.t.is_leaf() && self.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "pickle: a tensor computed by an op of the graph cannot be pickled; pickle \
                 t.detach()",
            ));
        }
        let rebuild = crate::hooks::hooks(py)?.tensor.bind(py).clone();
        let dtype: PyDType = self.t.dtype().into();
        let args = (
            to_numpy(py, &self.t)?,
            dtype,
            self.t.requires_grad(),
            self.t.device().name(),
        )
            .into_pyobject(py)?;
        Ok((rebuild, args))
    }
    /// `format(t, spec)`: a one-element tensor formats its value (`f"{loss:.4f}"`); others
    /// format their repr.
    fn __format__(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        let builtins = py.import("builtins")?;
        if !spec.is_empty() && self.t.numel() == 1 {
            let v = self.item(py)?;
            return builtins.getattr("format")?.call1((v, spec))?.extract();
        }
        let r = self.__repr__(py)?;
        builtins.getattr("format")?.call1((r, spec))?.extract()
    }
    /// The number of dimensions (PyTorch's older name for `ndim`).
    fn ndimension(&self) -> usize {
        self.t.ndim()
    }
    /// PyTorch's name for "lives on the GPU".
    #[getter]
    fn is_cuda(&self) -> bool {
        self.t.is_gpu()
    }
}
