//! Tensor methods: attributes, autograd state, conversions to Python and NumPy, moves
//! between devices and dtypes.

use crate::prelude::*;

#[pymethods]
impl PyTensor {
    // ------------------------------------------------------------ properties
    /// Size of each dimension.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.t.shape())
    }
    /// Size of all dims, or of one.
    #[pyo3(signature = (dim=None))]
    fn size<'py>(&self, py: Python<'py>, dim: Option<isize>) -> PyResult<Bound<'py, PyAny>> {
        match dim {
            None => Ok(PyTuple::new(py, self.t.shape())?.into_any()),
            Some(d) => {
                let d =
                    ferrograd_core::layout::normalize_dim("size", d, self.t.ndim()).map_err(err)?;
                Ok(self.t.shape()[d].into_pyobject(py)?.into_any())
            }
        }
    }
    /// Element type.
    #[getter]
    fn dtype(&self) -> PyDType {
        self.t.dtype().into()
    }
    /// Device name (`cpu` or `gpu`).
    #[getter]
    fn device(&self) -> &'static str {
        self.t.device().name()
    }
    /// Whether the tensor lives in GPU memory.
    #[getter]
    fn is_gpu(&self) -> bool {
        self.t.is_gpu()
    }
    /// Number of dimensions.
    #[getter]
    fn ndim(&self) -> usize {
        self.t.ndim()
    }
    /// Number of dimensions.
    fn dim(&self) -> usize {
        self.t.ndim()
    }
    /// Number of elements.
    fn numel(&self) -> usize {
        self.t.numel()
    }
    /// Strides in elements.
    #[pyo3(signature = (dim=None))]
    fn stride<'py>(&self, py: Python<'py>, dim: Option<isize>) -> PyResult<Bound<'py, PyAny>> {
        match dim {
            None => Ok(PyTuple::new(py, self.t.strides())?.into_any()),
            Some(d) => {
                let d = ferrograd_core::layout::normalize_dim("stride", d, self.t.ndim())
                    .map_err(err)?;
                Ok(self.t.strides()[d].into_pyobject(py)?.into_any())
            }
        }
    }
    /// Offset of the first element in the shared storage.
    fn storage_offset(&self) -> usize {
        self.t.layout().offset
    }
    /// Whether the elements are laid out in C order without gaps.
    fn is_contiguous(&self) -> bool {
        self.t.is_contiguous()
    }
    /// Whether both tensors view the same storage.
    fn shares_storage(&self, other: &PyTensor) -> bool {
        self.t.shares_storage(&other.t)
    }
    /// Whether autograd tracks this tensor.
    #[getter]
    fn get_requires_grad(&self) -> bool {
        self.t.requires_grad()
    }
    #[setter]
    fn set_requires_grad(&self, on: bool) -> PyResult<()> {
        self.t.set_requires_grad(on).map_err(err)
    }
    /// Sets `requires_grad` in place and returns the tensor.
    #[pyo3(signature = (requires_grad=true))]
    fn requires_grad_(slf: Bound<'_, Self>, requires_grad: bool) -> PyResult<Bound<'_, Self>> {
        slf.get().t.set_requires_grad(requires_grad).map_err(err)?;
        Ok(slf)
    }
    /// The accumulated gradient, or None.
    #[getter]
    fn get_grad(&self) -> Option<PyTensor> {
        self.t.grad().map(wrap)
    }
    #[setter]
    fn set_grad(&self, g: Option<PyTensor>) -> PyResult<()> {
        self.t.set_grad(g.map(|g| g.t)).map_err(err)
    }
    /// The op that produced this tensor, or None for leaves.
    #[getter]
    fn grad_fn(&self) -> Option<PyGradFn> {
        self.t.grad_fn().map(|n| PyGradFn { node: n.clone() })
    }
    /// Whether the tensor is a leaf of the graph.
    #[getter]
    fn is_leaf(&self) -> bool {
        self.t.is_leaf()
    }
    /// How many in-place writes the tensor's memory has seen (shared with its views), as
    /// PyTorch's `_version`: autograd checks it for the tensors a backward rule saved.
    #[getter]
    fn _version(&self) -> u64 {
        self.t.version()
    }
    /// The tensor this one is a view of (the start of its chain of views), or None, as
    /// PyTorch's `_base`.
    #[getter]
    fn _base(&self) -> Option<PyTensor> {
        self.t.view_base().map(wrap)
    }

    // ------------------------------------------------------------ conversion
    /// The data as a NumPy array. A host tensor's array shares its memory, as PyTorch's
    /// `numpy()`: writes through either side are seen by the other (`.copy()` it to keep a
    /// snapshot). A GPU tensor's is a copy (`force` is accepted for PyTorch's signature:
    /// ferrograd copies from the GPU without it too).
    #[pyo3(signature = (*, force=false))]
    fn numpy<'py>(&self, py: Python<'py>, force: bool) -> PyResult<Bound<'py, PyAny>> {
        let _ = force;
        if self.t.device() == ferrograd_core::Device::Cpu && self.t.dtype() != DType::BF16 {
            // through DLPack, over the tensor's own memory (an alias cut from the graph)
            let alias = Bound::new(py, wrap(self.t.detach()))?;
            return py.import("numpy")?.call_method1("from_dlpack", (alias,));
        }
        to_numpy(py, &self.t)
    }
    #[pyo3(signature = (dtype=None, copy=None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if copy == Some(false) {
            // NumPy 2's protocol: refuse when a copy cannot be avoided (ours always copies)
            return Err(ArgumentError::new_err(
                "__array__: a ferrograd tensor cannot be viewed without a copy; use copy=None or True",
            ));
        }
        let a = to_numpy(py, &self.t)?;
        match dtype {
            Some(d) if !d.is_none() => a.call_method1("astype", (d,)),
            _ => Ok(a),
        }
    }
    /// The value of a one-element tensor as a Python number.
    pub(crate) fn item<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self.t.item().map_err(err)?;
        Ok(match self.t.dtype() {
            // exact, not through f64 (values past 2**53)
            DType::I64 => self.t.to_vec::<i64>().map_err(err)?[0]
                .into_pyobject(py)?
                .into_any(),
            DType::U8 | DType::I32 => (v as i64).into_pyobject(py)?.into_any(),
            DType::Bool => pyo3::types::PyBool::new(py, v != 0.0).to_owned().into_any(),
            _ => v.into_pyobject(py)?.into_any(),
        })
    }
    /// The data as nested Python lists.
    fn tolist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_numpy(py, &self.t)?.call_method0("tolist")
    }
    fn __float__(&self) -> PyResult<f64> {
        self.t.item().map_err(err)
    }
    fn __int__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // Python's int() of the item: exact for int64, ValueError for NaN, OverflowError for inf
        py.get_type::<pyo3::types::PyInt>().call1((self.item(py)?,))
    }
    /// A one-element integer (or bool) tensor as an index, as PyTorch's: `classes[y]`,
    /// `np_array[t.argmax()]`, `range(n)`; a float tensor is not an index (TypeError).
    fn __index__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.t.dtype().is_float() || self.t.numel() != 1 {
            return Err(PyTypeError::new_err(format!(
                "only integer tensors of a single element can be converted to an index (got a {} \
                 tensor of shape {:?})",
                self.t.dtype(),
                self.t.shape()
            )));
        }
        py.get_type::<pyo3::types::PyInt>().call1((self.item(py)?,))
    }
    fn __bool__(&self) -> PyResult<bool> {
        if self.t.numel() != 1 {
            return Err(ArgumentError::new_err(format!(
                "the truth value of a tensor with {} elements is ambiguous",
                self.t.numel()
            )));
        }
        Ok(self.t.item().map_err(err)? != 0.0)
    }
    /// Iterates over dim 0 (views), lazily; a 0-d tensor cannot be iterated, as in PyTorch
    /// (without this, Python's fallback through `__getitem__` gave an empty iteration).
    fn __iter__(&self) -> PyResult<PyTensorIter> {
        if self.t.ndim() == 0 {
            return Err(PyTypeError::new_err("iteration over a 0-d tensor"));
        }
        Ok(PyTensorIter {
            t: self.t.clone(),
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }
    fn __len__(&self) -> PyResult<usize> {
        self.t
            .shape()
            .first()
            .copied()
            .ok_or_else(|| PyTypeError::new_err("len() of a 0-d tensor"))
    }
    fn __hash__(&self) -> isize {
        // identity hash, as PyTorch: tensors overload == elementwise
        self as *const _ as isize
    }
    pub(crate) fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        crate::hooks::hooks(py)?
            .repr
            .bind(py)
            .call1((wrap(self.t.clone()),))?
            .extract()
    }
    /// Converts to a dtype and/or device, in PyTorch's forms: `to(device)`, `to(dtype)`,
    /// `to(device, dtype)`, `to(other)` (its dtype and device), `to(device=, dtype=)`.
    /// `non_blocking` is accepted and changes nothing (GPU work is queued anyway); `copy`
    /// returns a copy even when nothing changes.
    #[pyo3(signature = (*args, device=None, dtype=None, non_blocking=false, copy=false))]
    fn to(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        device: Option<&Bound<'_, PyAny>>,
        dtype: Option<PyDType>,
        non_blocking: bool,
        copy: bool,
    ) -> PyResult<PyTensor> {
        let _ = non_blocking;
        let mut dev: Option<ferrograd_core::Device> = None;
        let mut dt: Option<DType> = dtype.map(Into::into);
        let parse_dev = |a: &Bound<'_, PyAny>| -> PyResult<ferrograd_core::Device> {
            let name: String = a.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "to: expected a dtype, a device name or a tensor, got {}",
                    a.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            ferrograd_core::Device::parse(&name).map_err(err)
        };
        if args.len() > 2 {
            return Err(PyTypeError::new_err(format!(
                "to: takes at most 2 positional arguments (device, dtype), got {}",
                args.len()
            )));
        }
        for a in args.iter() {
            if let Ok(d) = a.extract::<PyDType>() {
                dt = Some(d.into());
            } else if let Ok(o) = a.cast::<PyTensor>() {
                dt = Some(o.get().t.dtype());
                dev = Some(o.get().t.device());
            } else if !a.is_none() {
                dev = Some(parse_dev(&a)?);
            }
        }
        if let Some(d) = device {
            if !d.is_none() {
                dev = Some(parse_dev(d)?);
            }
        }
        let t = &self.t;
        run(py, heavy(t), || t.to(dev, dt, copy)).map(wrap)
    }
    /// PyTorch's `type(dtype)`: the tensor converted to `dtype`; without one, its type name
    /// (`"ferrograd.FloatTensor"`, ...).
    #[pyo3(signature = (dtype=None))]
    fn r#type<'py>(&self, py: Python<'py>, dtype: Option<PyDType>) -> PyResult<Bound<'py, PyAny>> {
        match dtype {
            Some(d) => Ok(Bound::new(py, wrap(self.t.cast(d.into()).map_err(err)?))?.into_any()),
            None => {
                let name = match self.t.dtype() {
                    DType::F32 => "FloatTensor",
                    DType::F64 => "DoubleTensor",
                    DType::I64 => "LongTensor",
                    DType::Bool => "BoolTensor",
                    DType::U8 => "ByteTensor",
                    DType::I32 => "IntTensor",
                    DType::F16 => "HalfTensor",
                    DType::BF16 => "BFloat16Tensor",
                };
                Ok(pyo3::types::PyString::new(py, &format!("ferrograd.{name}")).into_any())
            }
        }
    }
    /// Converts to float32.
    fn float(&self) -> PyResult<PyTensor> {
        self.t.cast(DType::F32).map(wrap).map_err(err)
    }
    /// Converts to float64.
    fn double(&self) -> PyResult<PyTensor> {
        self.t.cast(DType::F64).map(wrap).map_err(err)
    }
    /// Converts to int64 (truncating toward zero).
    fn long(&self) -> PyResult<PyTensor> {
        self.t.cast(DType::I64).map(wrap).map_err(err)
    }
    /// Converts to bool (nonzero is true).
    fn bool(&self) -> PyResult<PyTensor> {
        self.t.cast(DType::Bool).map(wrap).map_err(err)
    }
    /// Converts to int32 (floats truncated toward zero; wider integers wrap).
    fn int(&self) -> PyResult<PyTensor> {
        self.t.cast(DType::I32).map(wrap).map_err(err)
    }
    /// PyTorch's int16 conversion: a DTypeError (ferrograd has no int16).
    fn short(&self) -> PyResult<PyTensor> {
        Err(no_dtype("short", "int16", "long() (int64)"))
    }
    /// Converts to uint8 (values wrap modulo 256, as PyTorch's).
    fn byte(&self) -> PyResult<PyTensor> {
        self.t.cast(DType::U8).map(wrap).map_err(err)
    }
    /// PyTorch's int8 conversion: a DTypeError (ferrograd has no int8).
    fn char(&self) -> PyResult<PyTensor> {
        Err(no_dtype("char", "int8", "long() (int64)"))
    }
    /// Converts to float16 (stored in half precision; ops compute in float32 and round).
    fn half(&self) -> PyResult<PyTensor> {
        self.t.cast(DType::F16).map(wrap).map_err(err)
    }
    /// Converts to bfloat16 (stored so; ops compute in float32 and round).
    fn bfloat16(&self) -> PyResult<PyTensor> {
        self.t.cast(DType::BF16).map(wrap).map_err(err)
    }

    // ------------------------------------------------------------ autograd
    /// Computes gradients of this tensor with respect to the leaves that require them
    /// (only into the `.grad` of `inputs` when given). With `create_graph` the gradients
    /// keep a graph of their own (higher-order derivatives); `retain_graph` then defaults
    /// to True, as PyTorch's.
    #[pyo3(signature = (gradient=None, retain_graph=None, create_graph=false, inputs=None))]
    fn backward(
        &self,
        py: Python<'_>,
        gradient: Option<PyTensor>,
        retain_graph: Option<bool>,
        create_graph: bool,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let inputs: Option<Vec<Tensor>> = match inputs {
            None => None,
            Some(i) => Some(match i.cast::<PyTensor>() {
                Ok(t) => vec![t.get().t.clone()],
                Err(_) => i
                    .extract::<Vec<PyTensor>>()?
                    .into_iter()
                    .map(|t| t.t)
                    .collect(),
            }),
        };
        if create_graph {
            create_graph_warning(py)?;
        }
        let t = &self.t;
        let retain = retain_graph.unwrap_or(create_graph);
        crate::grad_hooks::clear_raised();
        run(
            py,
            t.numel() >= GIL_RELEASE_MIN || inputs.is_some() || create_graph,
            || match (&inputs, create_graph) {
                (None, false) => t.backward(gradient.map(|g| g.t), retain),
                (i, _) => ferrograd_core::autograd::backward_many(
                    std::slice::from_ref(t),
                    vec![gradient.map(|g| g.t)],
                    retain,
                    i.as_deref(),
                    create_graph,
                ),
            },
        )
        // an exception from a Python hook or rule comes back as itself
        .map_err(|e| crate::grad_hooks::take_raised().unwrap_or(e))
    }
    /// The same data, cut from the graph.
    fn detach(&self) -> PyTensor {
        wrap(self.t.detach())
    }
    /// The same data cut from the graph (PyTorch's `.data`; prefer `detach()`).
    #[getter]
    fn data(&self) -> PyTensor {
        wrap(self.t.detach())
    }
    /// This tensor on the host (itself when already there).
    fn cpu(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.to_device(ferrograd_core::Device::Cpu)).map(wrap)
    }
    /// This tensor on the GPU (what PyTorch scripts call CUDA); `device` is accepted and
    /// must name the one GPU ferrograd uses (None, 0, "cuda", "cuda:0" or "gpu").
    #[pyo3(signature = (device=None))]
    fn cuda(&self, py: Python<'_>, device: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        if let Some(d) = device {
            let ok = d.extract::<i64>().is_ok_and(|i| i == 0)
                || d.extract::<String>()
                    .is_ok_and(|s| matches!(s.as_str(), "cuda" | "cuda:0" | "gpu" | "gpu:0"));
            if !ok {
                return Err(ArgumentError::new_err(format!(
                    "cuda: ferrograd drives one GPU; got device {}",
                    d.repr()?
                )));
            }
        }
        let dev = ferrograd_core::Device::parse("gpu").map_err(err)?;
        let t = &self.t;
        run(py, heavy(t), || t.to_device(dev)).map(wrap)
    }
    /// Bytes per element.
    fn element_size(&self) -> usize {
        self.t.dtype().size()
    }
    /// Bytes per element.
    #[getter]
    fn itemsize(&self) -> usize {
        self.t.dtype().size()
    }
    /// Bytes of all the elements.
    #[getter]
    fn nbytes(&self) -> usize {
        self.t.dtype().size() * self.t.numel()
    }
    /// Zeros of `size` with this tensor's dtype and device.
    #[pyo3(signature = (*size))]
    fn new_zeros(&self, size: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        self.new_full_of(size, 0.0)
    }
    /// Ones of `size` with this tensor's dtype and device.
    #[pyo3(signature = (*size))]
    fn new_ones(&self, size: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        self.new_full_of(size, 1.0)
    }
}

fn no_dtype(method: &str, dtype: &str, instead: &str) -> PyErr {
    DTypeError::new_err(format!(
        "{method}(): ferrograd has no {dtype} dtype (it has float16, bfloat16, float32, float64, \
         uint8, int32, int64 and bool); \
         use .{instead} instead"
    ))
}

/// PyTorch's warning for `backward(create_graph=True)`: each leaf's `.grad` then holds a
/// graph that holds the leaf, a cycle nothing frees until `.grad` is reset.
pub(crate) fn create_graph_warning(py: Python<'_>) -> PyResult<()> {
    PyErr::warn(
        py,
        &py.get_type::<pyo3::exceptions::PyUserWarning>(),
        c"backward(create_graph=True) makes each leaf's .grad hold a graph that holds the \
leaf: a reference cycle that keeps both alive until .grad is reset. Use \
fg.autograd.grad(..., create_graph=True) to take the gradients without storing them, or \
set .grad = None (e.g. optimizer.zero_grad()) after use.",
        1,
    )
}
