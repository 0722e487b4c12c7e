//! ferrograd-py: the thin PyO3 layer over ferrograd-core.
//!
//! One short method per tensor operation: convert arguments, call the core, map its error
//! to a Python exception. Heavy kernels run with the GIL released; tiny ones keep it,
//! since releasing costs more than the op.

mod elementwise;

use ferrograd_core::autograd::Node;
use ferrograd_core::ops::nn::Reduction;
use ferrograd_core::ops::{CmpOp, IndexItem, LogicOp, UnaryOp};
use ferrograd_core::{optim, random, threads, DType, Error, Tensor};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::basic::CompareOp;
use pyo3::create_exception;
use pyo3::exceptions::{PyIndexError, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyEllipsis, PyList, PySlice, PyTuple};
use std::sync::Arc;

create_exception!(
    ferrograd,
    ShapeError,
    PyValueError,
    "Shapes that do not fit an operation."
);
create_exception!(
    ferrograd,
    DTypeError,
    PyTypeError,
    "A dtype an operation does not accept."
);
create_exception!(
    ferrograd,
    DeviceError,
    PyRuntimeError,
    "A device that is missing or cannot be used."
);

/// Elements above which an op releases the GIL while it computes.
const GIL_RELEASE_MIN: usize = 1 << 15;

fn err(e: Error) -> PyErr {
    match e {
        Error::Shape(m) => ShapeError::new_err(m),
        Error::DType(m) => DTypeError::new_err(m),
        Error::Device(m) => DeviceError::new_err(m),
        Error::Index(m) => PyIndexError::new_err(m),
        Error::Value(m) => PyValueError::new_err(m),
        Error::Memory(m) => PyMemoryError::new_err(m),
        Error::Autograd(m) => PyRuntimeError::new_err(m),
        Error::Interrupted(m) => pyo3::exceptions::PyKeyboardInterrupt::new_err(m),
    }
}

type CoreResult<T> = ferrograd_core::Result<T>;

/// Runs `f`, turning a panic into a RuntimeError rather than PyO3's PanicException (a
/// BaseException that `except Exception` misses). A panic is a bug in ferrograd, never the
/// user's fault; PanicException itself is rebased onto RuntimeError at import, for entry
/// points that do not come through here.
fn guarded<T>(f: impl FnOnce() -> CoreResult<T>) -> CoreResult<T> {
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
fn run<T: Send>(
    py: Python<'_>,
    heavy: bool,
    f: impl FnOnce() -> CoreResult<T> + Send,
) -> PyResult<T> {
    let r = if heavy {
        let grad = ferrograd_core::is_grad_enabled();
        py.detach(move || {
            // grad mode is per thread; carry it into the closure explicitly
            let prev = ferrograd_core::set_grad_enabled(grad);
            let r = guarded(f);
            ferrograd_core::set_grad_enabled(prev);
            r
        })
    } else {
        guarded(f)
    };
    r.map_err(err)
}

/// Work (multiply-adds, or elements for a sort) from which a kernel may run for tens of
/// milliseconds or more: such a call listens for Ctrl-C while it computes.
const LONG_WORK: usize = 1 << 31;

/// How often a long kernel's caller looks for a pending signal.
const SIGNAL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// `run` for kernels that may be long (matmul, sort): with `work` of `LONG_WORK` or more,
/// `f` runs on a helper thread while this one checks for signals every 50 ms. Python runs
/// signal handlers only on its main thread and only with the GIL, so a kernel in a
/// released section would otherwise finish before Ctrl-C arrived (1.5 s for a large
/// matmul). On a signal whose handler raises (KeyboardInterrupt), the kernel is told to
/// stop (it checks between chunks of its work) and the handler's exception is raised.
fn run_long<T: Send>(
    py: Python<'_>,
    work: usize,
    f: impl FnOnce() -> CoreResult<T> + Send,
) -> PyResult<T> {
    if work < LONG_WORK {
        return run(py, work >= GIL_RELEASE_MIN, f);
    }
    let grad = ferrograd_core::is_grad_enabled();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let worker_cancel = cancel.clone();
    let (result, raised) = py.detach(move || {
        std::thread::scope(|s| {
            s.spawn(move || {
                ferrograd_core::set_grad_enabled(grad);
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

/// Element types, exposed as `ferrograd.float32` and friends.
#[pyclass(eq, frozen, hash, from_py_object, name = "dtype", module = "ferrograd")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
enum PyDType {
    bool,
    int64,
    float32,
    float64,
}

impl From<PyDType> for DType {
    fn from(d: PyDType) -> DType {
        match d {
            PyDType::bool => DType::Bool,
            PyDType::int64 => DType::I64,
            PyDType::float32 => DType::F32,
            PyDType::float64 => DType::F64,
        }
    }
}

impl From<DType> for PyDType {
    fn from(d: DType) -> PyDType {
        match d {
            DType::Bool => PyDType::bool,
            DType::I64 => PyDType::int64,
            DType::F32 => PyDType::float32,
            DType::F64 => PyDType::float64,
        }
    }
}

#[pymethods]
impl PyDType {
    fn __repr__(&self) -> String {
        format!("ferrograd.{}", DType::from(*self).name())
    }
    /// Whether this is float32 or float64.
    #[getter]
    fn is_floating_point(&self) -> bool {
        DType::from(*self).is_float()
    }
    /// Bytes per element.
    #[getter]
    fn itemsize(&self) -> usize {
        DType::from(*self).size()
    }
    /// Pickling: the class attribute of the same name (`dtype.float32`).
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyAny>, &'static str))> {
        let name = match self {
            PyDType::bool => "bool",
            PyDType::int64 => "int64",
            PyDType::float32 => "float32",
            PyDType::float64 => "float64",
        };
        let getattr = py.import("builtins")?.getattr("getattr")?;
        Ok((getattr, (py.get_type::<PyDType>().into_any(), name)))
    }
}

/// A node of the autograd graph (`tensor.grad_fn`).
#[pyclass(frozen, name = "GradFn", module = "ferrograd")]
struct PyGradFn {
    node: Arc<Node>,
}

#[pymethods]
impl PyGradFn {
    /// The op's name, e.g. `MulBackward`.
    fn name(&self) -> &'static str {
        self.node.name()
    }
    fn __repr__(&self) -> String {
        format!("<{}>", self.node.name())
    }
}

/// An n-dimensional array with reverse-mode autograd.
#[pyclass(frozen, from_py_object, name = "Tensor", module = "ferrograd")]
#[derive(Clone)]
struct PyTensor {
    t: Tensor,
}

fn wrap(t: Tensor) -> PyTensor {
    PyTensor { t }
}

/// A Python operand of an arithmetic op: another tensor or a number.
fn operand(other: &Bound<'_, PyAny>, like: &Tensor) -> PyResult<Option<Tensor>> {
    if let Ok(t) = other.cast::<PyTensor>() {
        return Ok(Some(t.get().t.clone()));
    }
    if let Ok(b) = other.cast::<pyo3::types::PyBool>() {
        let v = if b.is_true() { 1.0 } else { 0.0 };
        return Ok(Some(Tensor::scalar(v, like.dtype())));
    }
    if let Ok(i) = other.cast::<pyo3::types::PyInt>() {
        if like.dtype().is_float() {
            // a float tensor takes any int, as a float (2**70 included)
            return Ok(Some(Tensor::scalar(i.extract::<f64>()?, like.dtype())));
        }
        // int64 exactly (through f64 it would lose the low bits past 2**53); beyond int64,
        // PyTorch's OverflowError rather than a wrapped value
        let v: i64 = i.extract().map_err(|_| {
            pyo3::exceptions::PyOverflowError::new_err(format!(
                "{i} does not fit in int64, the dtype of integer operands"
            ))
        })?;
        return Ok(Some(Tensor::from_vec(vec![v], &[]).map_err(err)?));
    }
    if let Ok(v) = other.extract::<f64>() {
        // a Python float keeps a float tensor's dtype; int/bool tensors become float32
        let dt = if like.dtype().is_float() {
            like.dtype()
        } else {
            DType::F32
        };
        return Ok(Some(Tensor::scalar(v, dt)));
    }
    Ok(None)
}

fn isize_shape(t: &Tensor) -> Vec<isize> {
    t.shape().iter().map(|&d| d as isize).collect()
}

fn tuple_of(py: Python<'_>, parts: Vec<Tensor>) -> PyResult<Bound<'_, PyTuple>> {
    PyTuple::new(py, parts.into_iter().map(wrap))
}

fn heavy(t: &Tensor) -> bool {
    t.numel() >= GIL_RELEASE_MIN
}

/// Multiply-adds of a matrix product, roughly (the numel of `a` times `b`'s last dim).
fn mm_work(a: &Tensor, b: &Tensor) -> usize {
    a.numel()
        .saturating_mul(b.shape().last().copied().unwrap_or(1))
}

/// The work of a sort, scaled so a sort of 2**22 elements (tens of milliseconds) counts
/// as long.
fn sort_work(t: &Tensor) -> usize {
    t.numel().saturating_mul(1 << 9)
}

/// Shape arguments given as `f(2, 3)` or `f((2, 3))`.
fn shape_args(args: &Bound<'_, PyTuple>) -> PyResult<Vec<isize>> {
    if args.len() == 1 {
        let a = args.get_item(0)?;
        if a.cast::<PyTuple>().is_ok() || a.cast::<PyList>().is_ok() {
            return a.extract::<Vec<isize>>();
        }
    }
    args.extract::<Vec<isize>>()
}

/// A dims argument: `None`, an int, or a sequence of ints.
fn dims_arg(dim: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<isize>>> {
    match dim {
        None => Ok(None),
        Some(d) if d.is_none() => Ok(None),
        Some(d) => match d.extract::<isize>() {
            Ok(i) => Ok(Some(vec![i])),
            Err(_) => Ok(Some(d.extract::<Vec<isize>>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "dim must be an int or a sequence of ints, got {}",
                    d
                ))
            })?)),
        },
    }
}

/// A count argument (a length, a number of pieces, k): taken as a signed int so a negative
/// one is a ValueError naming the op, not PyO3's bare OverflowError.
fn count(op: &str, what: &str, n: isize) -> PyResult<usize> {
    usize::try_from(n)
        .map_err(|_| PyValueError::new_err(format!("{op}: {what} must be non-negative, got {n}")))
}

/// Sizes for creation functions: negative sizes are refused by name.
fn sizes(op: &str, shape: &[isize]) -> PyResult<Vec<usize>> {
    shape
        .iter()
        .map(|&d| {
            if d < 0 {
                Err(PyValueError::new_err(format!(
                    "{op}: negative dimension {d} in shape {shape:?}"
                )))
            } else {
                Ok(d as usize)
            }
        })
        .collect()
}

fn index_items(key: &Bound<'_, PyAny>) -> PyResult<Vec<IndexItem>> {
    let items: Vec<Bound<'_, PyAny>> = match key.cast::<PyTuple>() {
        Ok(t) => t.iter().collect(),
        Err(_) => vec![key.clone()],
    };
    items
        .iter()
        .map(|it| {
            if it.is_none() {
                Ok(IndexItem::NewAxis)
            } else if it.cast::<PyEllipsis>().is_ok() {
                Ok(IndexItem::Ellipsis)
            } else if let Ok(b) = it.cast::<pyo3::types::PyBool>() {
                // NumPy's and PyTorch's scalar bool index: True adds a dim of size 1 (as
                // None); False would add one of size 0, which the items cannot express
                if b.is_true() {
                    Ok(IndexItem::NewAxis)
                } else {
                    Err(PyIndexError::new_err(
                        "index: a False scalar index (an empty selection) is not supported; use x[None][:0]",
                    ))
                }
            } else if let Ok(s) = it.cast::<PySlice>() {
                let get = |name: &str| -> PyResult<Option<isize>> { s.getattr(name)?.extract() };
                let step = get("step")?.unwrap_or(1);
                Ok(IndexItem::Slice(get("start")?, get("stop")?, step))
            } else if let Ok(i) = it.extract::<isize>() {
                Ok(IndexItem::Int(i))
            } else {
                Err(PyIndexError::new_err(format!(
                    "index: only integers, slices, None, ..., or an int64 tensor/list for the first dim are \
                     supported, got {}",
                    it.get_type().name()?
                )))
            }
        })
        .collect()
}

fn to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let shape = IxDyn(t.shape());
    let bad = |_| PyRuntimeError::new_err("numpy: shape mismatch");
    Ok(match t.dtype() {
        DType::F32 => ArrayD::from_shape_vec(shape, t.to_vec::<f32>().map_err(err)?)
            .map_err(bad)?
            .into_pyarray(py)
            .into_any(),
        DType::F64 => ArrayD::from_shape_vec(shape, t.to_vec::<f64>().map_err(err)?)
            .map_err(bad)?
            .into_pyarray(py)
            .into_any(),
        DType::I64 => ArrayD::from_shape_vec(shape, t.to_vec::<i64>().map_err(err)?)
            .map_err(bad)?
            .into_pyarray(py)
            .into_any(),
        DType::Bool => ArrayD::from_shape_vec(shape, t.to_vec::<bool>().map_err(err)?)
            .map_err(bad)?
            .into_pyarray(py)
            .into_any(),
    })
}

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

    // ------------------------------------------------------------ conversion
    /// A NumPy copy of the data.
    fn numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
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
            return Err(PyValueError::new_err(
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
    fn item<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self.t.item().map_err(err)?;
        Ok(match self.t.dtype() {
            DType::F32 | DType::F64 => v.into_pyobject(py)?.into_any(),
            // exact, not through f64 (values past 2**53)
            DType::I64 => self.t.to_vec::<i64>().map_err(err)?[0]
                .into_pyobject(py)?
                .into_any(),
            DType::Bool => pyo3::types::PyBool::new(py, v != 0.0).to_owned().into_any(),
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
    fn __bool__(&self) -> PyResult<bool> {
        if self.t.numel() != 1 {
            return Err(PyValueError::new_err(format!(
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
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        py.import("ferrograd._format")?
            .call_method1("tensor_repr", (wrap(self.t.clone()),))?
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
        let unchanged = dt.is_none_or(|d| d == t.dtype()) && dev.is_none_or(|d| d == t.device());
        if unchanged {
            return if copy {
                t.clone_tensor().map(wrap).map_err(err)
            } else {
                Ok(wrap(t.clone()))
            };
        }
        // cast where the source dtype is supported: on the host before an upload (an int64
        // moved to the gpu stays on the host), on the gpu only for what it holds
        let to_cpu = matches!(dev, Some(ferrograd_core::Device::Cpu));
        run(py, heavy(t), || {
            let mut x = t.clone();
            if !to_cpu {
                if let Some(d) = dt {
                    x = x.cast(d)?;
                }
            }
            if let Some(d) = dev {
                x = x.to_device(d)?;
            }
            if to_cpu {
                if let Some(d) = dt {
                    x = x.cast(d)?;
                }
            }
            Ok(x)
        })
        .map(wrap)
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

    // ------------------------------------------------------------ autograd
    /// Computes gradients of this tensor with respect to the leaves that require them.
    #[pyo3(signature = (gradient=None, retain_graph=false))]
    fn backward(
        &self,
        py: Python<'_>,
        gradient: Option<PyTensor>,
        retain_graph: bool,
    ) -> PyResult<()> {
        let t = &self.t;
        run(py, t.numel() >= GIL_RELEASE_MIN, || {
            t.backward(gradient.map(|g| g.t), retain_graph)
        })
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
                return Err(PyValueError::new_err(format!(
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
            n => Err(PyValueError::new_err(format!(
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
    #[pyo3(signature = (split_size_or_sections, dim=0))]
    fn split<'py>(
        &self,
        py: Python<'py>,
        split_size_or_sections: &Bound<'py, PyAny>,
        dim: isize,
    ) -> PyResult<Bound<'py, PyTuple>> {
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
    #[pyo3(signature = (chunks, dim=0))]
    fn chunk<'py>(
        &self,
        py: Python<'py>,
        chunks: isize,
        dim: isize,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let chunks = count("chunk", "the number of chunks", chunks)?;
        tuple_of(py, self.t.chunk(chunks, dim).map_err(err)?)
    }
    /// The slices along `dim`, each without that dim.
    #[pyo3(signature = (dim=0))]
    fn unbind<'py>(&self, py: Python<'py>, dim: isize) -> PyResult<Bound<'py, PyTuple>> {
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
    /// Removes size-1 dims (all, or just `dim`).
    #[pyo3(signature = (dim=None))]
    fn squeeze(&self, dim: Option<isize>) -> PyResult<PyTensor> {
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
            return Err(PyIndexError::new_err(format!(
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
        let rebuild = py.import("ferrograd")?.getattr("tensor")?;
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
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        // integer-array indexing along the first dim: mini-batch gathers
        let idx: Option<Tensor> = if let Ok(t) = key.cast::<PyTensor>() {
            Some(t.get().t.clone())
        } else if key.cast::<PyList>().is_ok_and(|l| l.is_empty()) {
            // x[[]]: no indices (an empty list has no dtype to go by), as NumPy and PyTorch
            Some(Tensor::from_vec(Vec::<i64>::new(), &[0]).map_err(err)?)
        } else if key.cast::<PyList>().is_ok() || key.hasattr("__array_interface__")? {
            let f = py.import("ferrograd")?.getattr("tensor")?;
            Some(f.call1((key,))?.cast::<PyTensor>()?.get().t.clone())
        } else {
            None
        };
        match idx {
            Some(m) if m.dtype() == DType::Bool => {
                let t = &self.t;
                run(py, heavy(t), || t.index_mask(&m)).map(wrap)
            }
            Some(i) if i.dtype() == DType::I64 => {
                let t = &self.t;
                run(py, heavy(t), || {
                    t.index_select(0, &i.reshape(&[-1])?)?
                        .reshape(&index_shape(&i, t))
                })
                .map(wrap)
            }
            Some(i) => Err(PyIndexError::new_err(format!(
                "index: tensors used as indices must be int64 or bool, got {}",
                i.dtype()
            ))),
            None => self.t.index(&index_items(key)?).map(wrap).map_err(err),
        }
    }

    /// `x[key] = value`, as PyTorch: basic indices (ints, slices, None, ...) write into the
    /// view; a bool mask sets the entries where it is true; an int64 index tensor or list
    /// sets those rows. `value` is a number or a tensor broadcast to the selected shape.
    /// In place, so refused on a tensor that requires grad while grad mode is on.
    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let t = &self.t;
        let v = match operand(value, t)? {
            Some(v) => v,
            None => {
                let f = py.import("ferrograd")?.getattr("tensor")?;
                f.call1((value,))?.cast::<PyTensor>()?.get().t.clone()
            }
        };
        let idx: Option<Tensor> = if let Ok(k) = key.cast::<PyTensor>() {
            Some(k.get().t.clone())
        } else if key.cast::<PyList>().is_ok_and(|l| l.is_empty()) {
            // an empty list selects no rows (NumPy reads it as an empty integer index)
            Some(Tensor::from_vec(Vec::<i64>::new(), &[0]).map_err(err)?)
        } else if key.cast::<PyList>().is_ok() || key.hasattr("__array_interface__")? {
            let f = py.import("ferrograd")?.getattr("tensor")?;
            Some(f.call1((key,))?.cast::<PyTensor>()?.get().t.clone())
        } else {
            None
        };
        let items = if idx.is_none() {
            Some(index_items(key)?)
        } else {
            None
        };
        run(py, heavy(t), || {
            // an expanded view shares memory among its elements: refuse it for every key
            t.check_writable("index assignment")?;
            match idx {
                Some(m) if m.dtype() == DType::Bool => t.mask_put_(&m, &v),
                Some(i) if i.dtype() == DType::I64 => {
                    if t.ndim() == 0 {
                        return Err(Error::Index(
                            "index assignment: a 0-d tensor has no dim for an index tensor to select"
                                .into(),
                        ));
                    }
                    let rows: Vec<i64> = i.reshape(&[-1])?.to_vec()?;
                    // the value fits the selection's shape (index shape, then the rest), as
                    // in NumPy; then one row per index, in order
                    let mut sel: Vec<usize> = i.shape().to_vec();
                    sel.extend(&t.shape()[1..]);
                    let mut shape: Vec<isize> = vec![rows.len() as isize];
                    shape.extend(t.shape()[1..].iter().map(|&d| d as isize));
                    let v = v.broadcast_to(&sel)?.reshape(&shape)?;
                    for (k, &r) in rows.iter().enumerate() {
                        let dst = t.index(&[IndexItem::Int(r as isize)])?;
                        dst.copy_(&v.index(&[IndexItem::Int(k as isize)])?)?;
                    }
                    Ok(())
                }
                Some(i) => Err(Error::Index(format!(
                    "index assignment: tensors used as indices must be int64 or bool, got {}",
                    i.dtype()
                ))),
                None => {
                    let items = items.as_deref().unwrap_or(&[]);
                    t.index(items)?.copy_(&v)
                }
            }
        })
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

    // ------------------------------------------------------------ arithmetic
    fn __add__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.add(b))
    }
    fn __radd__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.add(b))
    }
    fn __sub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.sub(b))
    }
    fn __rsub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.sub(b))
    }
    fn __mul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.mul(b))
    }
    fn __rmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.mul(b))
    }
    fn __truediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.div(b))
    }
    fn __rtruediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.div(b))
    }
    fn __pow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if modulo.is_some_and(|m| !m.is_none()) {
            return Err(PyTypeError::new_err(
                "pow: a modulo argument is not supported for tensors",
            ));
        }
        self.bin(py, o, false, |a, b| a.pow(b))
    }
    fn __rpow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if modulo.is_some_and(|m| !m.is_none()) {
            return Err(PyTypeError::new_err(
                "pow: a modulo argument is not supported for tensors",
            ));
        }
        self.bin(py, o, true, |a, b| a.pow(b))
    }
    fn __matmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.matmul_any(py, o, false)
    }
    fn __rmatmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.matmul_any(py, o, true)
    }
    fn __neg__(&self) -> PyResult<PyTensor> {
        self.t.neg().map(wrap).map_err(err)
    }
    fn __pos__(&self) -> PyTensor {
        wrap(self.t.clone())
    }
    fn __abs__(&self) -> PyResult<PyTensor> {
        self.t.abs().map(wrap).map_err(err)
    }
    fn __richcmp__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let Some(b) = operand(o, &self.t)? else {
            return Ok(py.NotImplemented());
        };
        let c = match op {
            CompareOp::Eq => CmpOp::Eq,
            CompareOp::Ne => CmpOp::Ne,
            CompareOp::Lt => CmpOp::Lt,
            CompareOp::Le => CmpOp::Le,
            CompareOp::Gt => CmpOp::Gt,
            CompareOp::Ge => CmpOp::Ge,
        };
        let t = &self.t;
        Ok(wrap(run(py, heavy(t), || t.compare(c, &b))?)
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }
    /// Elementwise sum with another tensor or number.
    fn add(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "add", other, self.__add__(py, other))
    }
    /// Elementwise difference.
    fn sub(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "sub", other, self.__sub__(py, other))
    }
    /// Elementwise product.
    fn mul(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "mul", other, self.__mul__(py, other))
    }
    /// Elementwise true division.
    fn div(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "div", other, self.__truediv__(py, other))
    }
    /// Elementwise power.
    fn pow(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(
            py,
            "pow",
            other,
            self.bin(py, other, false, |a, b| a.pow(b)),
        )
    }
    /// Elementwise maximum (NaN propagates).
    fn maximum(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(
            py,
            "maximum",
            other,
            self.bin(py, other, false, |a, b| a.maximum(b)),
        )
    }
    /// Elementwise minimum (NaN propagates).
    fn minimum(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(
            py,
            "minimum",
            other,
            self.bin(py, other, false, |a, b| a.minimum(b)),
        )
    }
    /// `self == other` elementwise: a bool tensor.
    fn eq(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "eq", other, CmpOp::Eq)
    }
    /// `self != other` elementwise: a bool tensor.
    fn ne(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "ne", other, CmpOp::Ne)
    }
    /// `self < other` elementwise: a bool tensor.
    fn lt(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "lt", other, CmpOp::Lt)
    }
    /// `self <= other` elementwise: a bool tensor.
    fn le(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "le", other, CmpOp::Le)
    }
    /// `self > other` elementwise: a bool tensor.
    fn gt(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "gt", other, CmpOp::Gt)
    }
    /// `self >= other` elementwise: a bool tensor.
    fn ge(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "ge", other, CmpOp::Ge)
    }
    /// Logical and of truth values (nonzero is true): a bool tensor.
    fn logical_and(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let r = self.bin(py, other, false, |a, b| a.logical(LogicOp::And, b));
        method_result(py, "logical_and", other, r)
    }
    /// Logical or of truth values: a bool tensor.
    fn logical_or(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let r = self.bin(py, other, false, |a, b| a.logical(LogicOp::Or, b));
        method_result(py, "logical_or", other, r)
    }
    /// Logical xor of truth values: a bool tensor.
    fn logical_xor(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let r = self.bin(py, other, false, |a, b| a.logical(LogicOp::Xor, b));
        method_result(py, "logical_xor", other, r)
    }
    /// Logical not (zero is true): a bool tensor.
    fn logical_not(&self) -> PyResult<PyTensor> {
        self.t.logical_not().map(wrap).map_err(err)
    }
    fn __invert__(&self) -> PyResult<PyTensor> {
        self.t.bitwise_not().map(wrap).map_err(err)
    }
    fn __and__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.bitwise(LogicOp::And, b))
    }
    fn __rand__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.bitwise(LogicOp::And, b))
    }
    fn __or__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.bitwise(LogicOp::Or, b))
    }
    fn __ror__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.bitwise(LogicOp::Or, b))
    }
    fn __xor__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.bitwise(LogicOp::Xor, b))
    }
    fn __rxor__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.bitwise(LogicOp::Xor, b))
    }
    /// `value` where the bool `mask` (broadcast to this shape) is true, this tensor elsewhere.
    fn masked_fill(
        &self,
        py: Python<'_>,
        mask: &PyTensor,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        let v = operand(value, &self.t)?.ok_or_else(|| {
            PyTypeError::new_err(format!(
                "masked_fill: the value must be a number or a 0-dim tensor, got {}",
                value
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let (t, m) = (&self.t, &mask.t);
        run(py, heavy(t), || t.masked_fill(m, &v)).map(wrap)
    }
    /// Matrix product (NumPy's matmul rules).
    fn matmul(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "matmul", other, self.matmul_any(py, other, false))
    }
    /// e ** x, elementwise.
    fn exp(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Exp)
    }
    /// Natural logarithm, elementwise.
    fn log(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Log)
    }
    /// Square root, elementwise.
    fn sqrt(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Sqrt)
    }
    /// Absolute value, elementwise.
    fn abs(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Abs)
    }
    /// x * x, elementwise.
    fn square(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.mul(t)).map(wrap)
    }
    /// 1 / x, elementwise (float32 for integer tensors).
    fn reciprocal(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        let one = Tensor::scalar(
            1.0,
            if t.dtype().is_float() {
                t.dtype()
            } else {
                DType::F32
            },
        );
        run(py, heavy(t), || one.div(t)).map(wrap)
    }
    /// 1 / sqrt(x), elementwise.
    fn rsqrt(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || {
            let r = t.unary(UnaryOp::Sqrt)?;
            Tensor::scalar(1.0, r.dtype()).div(&r)
        })
        .map(wrap)
    }
    /// -1, 0 or 1 by each element's sign (NaN stays NaN); not differentiable.
    fn sign(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.sign()).map(wrap)
    }
    /// Whether each element is NaN: a bool tensor.
    fn isnan(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.isnan()).map(wrap)
    }
    /// Whether each element is +-infinity: a bool tensor.
    fn isinf(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.isinf()).map(wrap)
    }
    /// Whether each element is finite: a bool tensor.
    fn isfinite(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.isfinite()).map(wrap)
    }
    /// Matrix times matrix (both 2-D).
    fn mm(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run_long(py, mm_work(a, b), || a.mm(b)).map(wrap)
    }
    /// Batched matrix product of (b, n, k) and (b, k, m).
    fn bmm(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run_long(py, mm_work(a, b), || a.bmm(b)).map(wrap)
    }
    /// Matrix times vector.
    fn mv(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run(py, heavy(a) || heavy(b), || a.mv(b)).map(wrap)
    }
    /// Inner product of two 1-D tensors.
    fn dot(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run(py, heavy(a) || heavy(b), || a.dot(b)).map(wrap)
    }
    /// Outer product of two 1-D tensors.
    fn outer(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run(py, heavy(a) || heavy(b), || a.outer(b)).map(wrap)
    }
    /// Hyperbolic tangent, elementwise.
    fn tanh(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Tanh)
    }
    /// Logistic sigmoid 1 / (1 + e ** -x), elementwise.
    fn sigmoid(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Sigmoid)
    }
    /// max(x, 0), elementwise.
    fn relu(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Relu)
    }
    /// Scaled exponential linear unit (Klambauer et al.), elementwise.
    fn selu(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Selu)
    }
    /// -x, elementwise.
    fn neg(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Neg)
    }
    /// ELU: x if x > 0 else alpha * (exp(x) - 1).
    #[pyo3(signature = (alpha=1.0))]
    fn elu(&self, py: Python<'_>, alpha: f64) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.unary(UnaryOp::Elu(alpha))).map(wrap)
    }
    /// Leaky ReLU: x if x > 0 else negative_slope * x.
    #[pyo3(signature = (negative_slope=0.01))]
    fn leaky_relu(&self, py: Python<'_>, negative_slope: f64) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.unary(UnaryOp::LeakyRelu(negative_slope))).map(wrap)
    }
    /// GELU, exact (`approximate="none"`) or with the tanh approximation (`"tanh"`).
    #[pyo3(signature = (approximate="none"))]
    fn gelu(&self, py: Python<'_>, approximate: &str) -> PyResult<PyTensor> {
        let op = match approximate {
            "none" => UnaryOp::Gelu,
            "tanh" => UnaryOp::GeluTanh,
            o => {
                return Err(PyValueError::new_err(format!(
                    "gelu: approximate must be 'none' or 'tanh', got '{o}'"
                )))
            }
        };
        let t = &self.t;
        run(py, heavy(t), || t.unary(op)).map(wrap)
    }
    /// Clamps into [min, max] (either bound may be None).
    #[pyo3(signature = (min=None, max=None))]
    fn clamp(&self, py: Python<'_>, min: Option<f64>, max: Option<f64>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.clamp(min, max)).map(wrap)
    }

    // ------------------------------------------------------------ reductions
    /// Sum over `dim` (an int, a sequence, or None for all).
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn sum(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.sum(d.as_deref(), keepdim)).map(wrap)
    }
    /// The p-norm over `dim` (all when None): p = 2 or "fro", 1, inf, -inf, 0, or any p.
    #[pyo3(signature = (p=None, dim=None, keepdim=false))]
    fn norm(
        &self,
        py: Python<'_>,
        p: Option<&Bound<'_, PyAny>>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let order = match p {
            None => 2.0,
            Some(v) if v.extract::<String>().is_ok_and(|s| s == "fro") => 2.0,
            Some(v) => v.extract::<f64>().map_err(|_| {
                PyValueError::new_err(format!(
                    "norm: p must be a number or \"fro\", got {}",
                    v.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?,
        };
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.norm(order, d.as_deref(), keepdim)).map(wrap)
    }
    /// Whether any element over `dim` (all when None) is true: a bool tensor.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn any(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.any(d.as_deref(), keepdim)).map(wrap)
    }
    /// Whether every element over `dim` (all when None) is true: a bool tensor.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn all(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.all(d.as_deref(), keepdim)).map(wrap)
    }
    /// Mean over `dim`.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn mean(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.mean(d.as_deref(), keepdim)).map(wrap)
    }
    /// Variance over `dim` with `correction` (1 = unbiased, as PyTorch's default).
    #[pyo3(signature = (dim=None, correction=1.0, keepdim=false))]
    fn var(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        correction: f64,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.var(d.as_deref(), correction, keepdim)).map(wrap)
    }
    /// Standard deviation over `dim`.
    #[pyo3(signature = (dim=None, correction=1.0, keepdim=false))]
    fn std(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        correction: f64,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || {
            t.var(d.as_deref(), correction, keepdim)?.sqrt()
        })
        .map(wrap)
    }
    /// The maximum: of all elements without `dim` (a 0-d tensor); with an int `dim`, as
    /// PyTorch, the named tuple `(values, indices)` along it; with a tuple of dims, the
    /// values over them (as `amax`).
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn max<'py>(
        &self,
        py: Python<'py>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.extreme(py, "max", dim, keepdim)
    }
    /// The minimum, as `max`: `(values, indices)` along an int `dim`.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn min<'py>(
        &self,
        py: Python<'py>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.extreme(py, "min", dim, keepdim)
    }
    /// Maximum values over `dim`.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amax(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.amax(d.as_deref(), keepdim)).map(wrap)
    }
    /// Minimum values over `dim`.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amin(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.amin(d.as_deref(), keepdim)).map(wrap)
    }
    /// Index of the maximum along `dim` (of the flattened tensor when None); int64, no grad.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmax(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        self.t.argmax(dim, keepdim).map(wrap).map_err(err)
    }
    /// `(values, indices)` sorted along `dim`, as PyTorch's: ascending unless `descending`;
    /// stable (equal values keep their order); NaN above every number. The indices are
    /// int64 on the host (a GPU tensor is read back to sort); the values are differentiable.
    #[pyo3(signature = (dim=-1, descending=false, stable=false))]
    fn sort<'py>(
        &self,
        py: Python<'py>,
        dim: isize,
        descending: bool,
        stable: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = stable; // always stable
        let t = &self.t;
        let (v, i) = run_long(py, sort_work(t), || t.sort(dim, descending))?;
        values_indices(py, "sort", v, i)
    }
    /// The indices that sort along `dim` (int64; see `sort`).
    #[pyo3(signature = (dim=-1, descending=false, stable=false))]
    fn argsort(
        &self,
        py: Python<'_>,
        dim: isize,
        descending: bool,
        stable: bool,
    ) -> PyResult<PyTensor> {
        let _ = stable;
        let t = &self.t;
        run_long(py, sort_work(t), || t.argsort(dim, descending)).map(wrap)
    }
    /// `(values, indices)` of the `k` largest (or, with `largest=False`, smallest) entries
    /// along `dim`, in order (`sorted=False` is accepted; they come sorted anyway).
    #[pyo3(signature = (k, dim=-1, largest=true, sorted=true))]
    fn topk<'py>(
        &self,
        py: Python<'py>,
        k: isize,
        dim: isize,
        largest: bool,
        sorted: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
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
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmin(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        self.t.argmin(dim, keepdim).map(wrap).map_err(err)
    }
    /// log(sum(exp(x))) over `dim`, computed stably.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn logsumexp(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?;
        let t = &self.t;
        run(py, heavy(t), || t.logsumexp(d.as_deref(), keepdim)).map(wrap)
    }
    /// Softmax along `dim`, computed stably.
    #[pyo3(signature = (dim=-1))]
    fn softmax(&self, py: Python<'_>, dim: isize) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.softmax(dim)).map(wrap)
    }
    /// log(softmax(x)) along `dim`, computed stably.
    #[pyo3(signature = (dim=-1))]
    fn log_softmax(&self, py: Python<'_>, dim: isize) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.log_softmax(dim)).map(wrap)
    }
    /// Entries `index` (int64, 1-D) along `dim`.
    fn index_select(&self, py: Python<'_>, dim: isize, index: &PyTensor) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.index_select(dim, &index.t)).map(wrap)
    }

    // ------------------------------------------------------------ in place (no autograd)
    /// Sets every element to zero; returns the tensor.
    fn zero_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().t.fill_(0.0).map_err(err)?;
        Ok(slf)
    }
    /// Sets every element to `value` (a number or a one-element tensor); returns the tensor.
    fn fill_<'py>(slf: Bound<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let t = slf.get().t.clone();
        let v = operand(value, &t)?
            .ok_or_else(|| PyTypeError::new_err("fill_: expected a number or a tensor"))?;
        t.fill_with_(&v).map_err(err)?;
        Ok(slf)
    }
    /// Copies `src` (broadcast) into this tensor; returns the tensor.
    fn copy_<'py>(slf: Bound<'py, Self>, src: &PyTensor) -> PyResult<Bound<'py, Self>> {
        slf.get().t.copy_(&src.t).map_err(err)?;
        Ok(slf)
    }
    /// `self += alpha * other` in place; returns the tensor.
    #[pyo3(signature = (other, alpha=1.0))]
    fn add_<'py>(
        slf: Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: f64,
    ) -> PyResult<Bound<'py, Self>> {
        let t = slf.get().t.clone();
        let o = operand(other, &t)?
            .ok_or_else(|| PyTypeError::new_err("add_: expected a tensor or a number"))?;
        run(slf.py(), heavy(&t), || t.add_(&o, alpha))?;
        Ok(slf)
    }
    /// `self -= alpha * other` in place; returns the tensor.
    #[pyo3(signature = (other, alpha=1.0))]
    fn sub_<'py>(
        slf: Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: f64,
    ) -> PyResult<Bound<'py, Self>> {
        let t = slf.get().t.clone();
        let o = operand(other, &t)?
            .ok_or_else(|| PyTypeError::new_err("sub_: expected a tensor or a number"))?;
        run(slf.py(), heavy(&t), || t.sub_(&o, alpha))?;
        Ok(slf)
    }
    /// `self /= value` in place; returns the tensor.
    fn div_<'py>(slf: Bound<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let t = slf.get().t.clone();
        let o = operand(value, &t)?
            .ok_or_else(|| PyTypeError::new_err("div_: expected a tensor or a number"))?;
        run(slf.py(), heavy(&t), || t.div_(&o))?;
        Ok(slf)
    }
    /// Clamps in place; returns the tensor.
    #[pyo3(signature = (min=None, max=None))]
    fn clamp_<'py>(
        slf: Bound<'py, Self>,
        min: Option<f64>,
        max: Option<f64>,
    ) -> PyResult<Bound<'py, Self>> {
        let t = slf.get().t.clone();
        run(slf.py(), heavy(&t), || {
            t.apply_("clamp_", |x| x.clamp(min, max))
        })?;
        Ok(slf)
    }
    /// `masked_fill` in place; returns the tensor.
    fn masked_fill_<'py>(
        slf: Bound<'py, Self>,
        mask: &PyTensor,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let filled = slf.get().masked_fill(slf.py(), mask, value)?;
        let t = slf.get().t.clone();
        run(slf.py(), heavy(&t), || {
            t.apply_("masked_fill_", |_| Ok(filled.t))
        })?;
        Ok(slf)
    }
    /// `self *= value` in place; returns the tensor.
    fn mul_<'py>(slf: Bound<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let t = slf.get().t.clone();
        let o = operand(value, &t)?
            .ok_or_else(|| PyTypeError::new_err("mul_: expected a tensor or a number"))?;
        run(slf.py(), heavy(&t), || t.mul_(&o))?;
        Ok(slf)
    }
}

/// The iterator of `iter(tensor)`: the views `t[0]`, `t[1]`, ... along dim 0.
#[pyclass(frozen, name = "TensorIterator", module = "ferrograd")]
struct PyTensorIter {
    t: Tensor,
    next: std::sync::atomic::AtomicUsize,
}

#[pymethods]
impl PyTensorIter {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    fn __next__(&self) -> PyResult<Option<PyTensor>> {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if i >= self.t.shape()[0] {
            return Ok(None);
        }
        self.t
            .index(&[IndexItem::Int(i as isize)])
            .map(|v| Some(wrap(v)))
            .map_err(err)
    }
}

/// The module of the (values, indices) named tuples (python/ferrograd/return_types.py).
static RETURN_TYPES: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

/// `ferrograd.return_types.<name>(values, indices)`, as PyTorch's `torch.return_types`.
fn values_indices<'py>(
    py: Python<'py>,
    name: &str,
    values: Tensor,
    indices: Tensor,
) -> PyResult<Bound<'py, PyAny>> {
    let module = RETURN_TYPES.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("ferrograd.return_types")?.into_any().unbind())
    })?;
    module
        .bind(py)
        .getattr(name)?
        .call1((wrap(values), wrap(indices)))
}

impl PyTensor {
    /// max/min: the reduction of all elements, of a tuple of dims, or (values, indices)
    /// along one int dim, as PyTorch gives (`_, pred = out.max(1)` is the common idiom; a
    /// values-only result would unpack along the batch instead).
    fn extreme<'py>(
        &self,
        py: Python<'py>,
        op: &'static str,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let is_max = op == "max";
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
        let values = run(py, heavy(t), || {
            if is_max {
                t.amax(d.as_deref(), keepdim)
            } else {
                t.amin(d.as_deref(), keepdim)
            }
        })?;
        let Some(axis) = one else {
            return Ok(Bound::new(py, wrap(values))?.into_any());
        };
        let indices = if is_max {
            t.argmax(Some(axis), keepdim)
        } else {
            t.argmin(Some(axis), keepdim)
        }
        .map_err(err)?;
        values_indices(py, op, values, indices)
    }
}

/// The method forms (`t.add(x)`) raise where the operators return NotImplemented.
impl PyTensor {
    fn new_full_of(&self, size: &Bound<'_, PyTuple>, value: f64) -> PyResult<PyTensor> {
        let shape: Vec<usize> = shape_args(size)?
            .into_iter()
            .map(|d| {
                usize::try_from(d).map_err(|_| {
                    PyValueError::new_err(format!("new_full: sizes must be >= 0, got {d}"))
                })
            })
            .collect::<PyResult<_>>()?;
        Tensor::full(&shape, value, self.t.dtype())
            .and_then(|t| t.to_device(self.t.device()))
            .map(wrap)
            .map_err(err)
    }

    fn cmp_method(
        &self,
        py: Python<'_>,
        op: &str,
        other: &Bound<'_, PyAny>,
        c: CmpOp,
    ) -> PyResult<Py<PyAny>> {
        let r = self.bin(py, other, false, |a, b| a.compare(c, b));
        method_result(py, op, other, r)
    }
}

fn method_result(
    py: Python<'_>,
    op: &str,
    other: &Bound<'_, PyAny>,
    r: PyResult<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let r = r?;
    if r.is(py.NotImplemented()) {
        return Err(PyTypeError::new_err(format!(
            "{op}: expected a tensor or a number, got {}",
            other.get_type().name()?
        )));
    }
    Ok(r)
}

/// Result shape of `x[idx]` for an integer tensor `idx`: idx's shape, then x's other dims.
fn index_shape(idx: &Tensor, x: &Tensor) -> Vec<isize> {
    idx.shape()
        .iter()
        .chain(x.shape().iter().skip(1))
        .map(|&d| d as isize)
        .collect()
}

impl PyTensor {
    fn un(&self, py: Python<'_>, op: UnaryOp) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.unary(op)).map(wrap)
    }

    fn bin(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        reflected: bool,
        f: impl FnOnce(&Tensor, &Tensor) -> CoreResult<Tensor> + Send,
    ) -> PyResult<Py<PyAny>> {
        let Some(b) = operand(o, &self.t)? else {
            return Ok(py.NotImplemented());
        };
        let a = &self.t;
        let big = heavy(a) || heavy(&b);
        let out = run(py, big, || if reflected { f(&b, a) } else { f(a, &b) })?;
        Ok(Py::new(py, wrap(out))?.into_any())
    }

    fn matmul_any(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        reflected: bool,
    ) -> PyResult<Py<PyAny>> {
        let Ok(b) = o.cast::<PyTensor>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (&self.t, &b.get().t);
        let (a, b) = if reflected { (b, a) } else { (a, b) };
        let work = a
            .numel()
            .saturating_mul(b.shape().last().copied().unwrap_or(1));
        let out = run_long(py, work, || a.matmul(b))?;
        Ok(Py::new(py, wrap(out))?.into_any())
    }
}

// ---------------------------------------------------------------- module functions

fn dt(d: Option<PyDType>) -> DType {
    d.map(DType::from).unwrap_or(DType::F32)
}

/// A tensor copied from a NumPy array of float32, float64, int64 or bool.
#[pyfunction]
fn from_numpy(py: Python<'_>, a: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
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
    } else {
        return Err(DTypeError::new_err(format!(
            "from_numpy: unsupported array dtype {}; use float32, float64, int64 or bool",
            a.getattr("dtype")?
        )));
    };
    t.map(wrap).map_err(err)
}

/// Zeros of `shape`.
#[pyfunction]
#[pyo3(signature = (shape, dtype=None))]
fn zeros(shape: Vec<isize>, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    Tensor::zeros(&sizes("zeros", &shape)?, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// `shape` filled with `value`.
#[pyfunction]
#[pyo3(signature = (shape, value, dtype=None))]
fn full(shape: Vec<isize>, value: f64, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    Tensor::full(&sizes("full", &shape)?, value, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// Evenly spaced values in [start, end).
#[pyfunction]
#[pyo3(signature = (start, end, step, dtype=None))]
fn arange(start: f64, end: f64, step: f64, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    Tensor::arange(start, end, step, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// The identity matrix (n x m).
#[pyfunction]
#[pyo3(signature = (n, m, dtype=None))]
fn eye(n: isize, m: isize, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    let s = sizes("eye", &[n, m])?;
    Tensor::eye(s[0], s[1], dt(dtype)).map(wrap).map_err(err)
}

/// Uniform samples in [0, 1) from the global generator.
#[pyfunction]
#[pyo3(signature = (shape, dtype=None))]
fn rand(shape: Vec<isize>, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    random::rand(&sizes("rand", &shape)?, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// Standard normal samples from the global generator.
#[pyfunction]
#[pyo3(signature = (shape, dtype=None))]
fn randn(shape: Vec<isize>, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    random::randn(&sizes("randn", &shape)?, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// Integers uniform in [low, high).
#[pyfunction]
fn randint(low: i64, high: i64, shape: Vec<isize>) -> PyResult<PyTensor> {
    random::randint(low, high, &sizes("randint", &shape)?)
        .map(wrap)
        .map_err(err)
}

/// A random permutation of 0..n.
#[pyfunction]
fn randperm(n: isize) -> PyResult<PyTensor> {
    let s = sizes("randperm", &[n])?;
    random::randperm(s[0]).map(wrap).map_err(err)
}

/// Reseeds the global generator.
#[pyfunction]
fn manual_seed(seed: i128) -> PyResult<()> {
    let s = u64::try_from(seed.rem_euclid(1i128 << 64)).expect("in range");
    random::manual_seed(s);
    Ok(())
}

/// The global generator's state as (seed, offset).
#[pyfunction]
fn get_rng_state() -> (u64, u64) {
    random::get_state()
}

/// Restores the global generator's state from `get_rng_state()`.
#[pyfunction]
fn set_rng_state(state: (u64, u64)) {
    random::set_state(state.0, state.1)
}

/// Joins tensors along an existing dim.
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
fn cat(py: Python<'_>, tensors: Vec<PyTensor>, dim: isize) -> PyResult<PyTensor> {
    let ts: Vec<Tensor> = tensors.into_iter().map(|t| t.t).collect();
    let big = ts.iter().map(|t| t.numel()).sum::<usize>() >= GIL_RELEASE_MIN;
    run(py, big, || Tensor::cat(&ts, dim)).map(wrap)
}

/// Joins same-shaped tensors along a new dim.
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
fn stack(py: Python<'_>, tensors: Vec<PyTensor>, dim: isize) -> PyResult<PyTensor> {
    let ts: Vec<Tensor> = tensors.into_iter().map(|t| t.t).collect();
    let big = ts.iter().map(|t| t.numel()).sum::<usize>() >= GIL_RELEASE_MIN;
    run(py, big, || Tensor::stack(&ts, dim)).map(wrap)
}

/// Elementwise choice: `a` where `cond`, else `b`.
#[pyfunction]
#[pyo3(name = "where")]
fn where_(cond: &PyTensor, a: &PyTensor, b: &PyTensor) -> PyResult<PyTensor> {
    Tensor::where_(&cond.t, &a.t, &b.t).map(wrap).map_err(err)
}

/// `x @ w.T + b`, with the bias fused into the matrix product; `activation` ("relu" or
/// "selu") is applied in the same kernel on the GPU.
#[pyfunction]
#[pyo3(signature = (x, w, b=None, activation=None, alpha=None))]
fn linear(
    py: Python<'_>,
    x: &PyTensor,
    w: &PyTensor,
    b: Option<PyTensor>,
    activation: Option<&str>,
    alpha: Option<f64>,
) -> PyResult<PyTensor> {
    let act = match activation {
        None => None,
        Some("relu") => Some(UnaryOp::Relu),
        Some("selu") => Some(UnaryOp::Selu),
        Some("tanh") => Some(UnaryOp::Tanh),
        Some("sigmoid") => Some(UnaryOp::Sigmoid),
        Some("elu") => Some(UnaryOp::Elu(alpha.unwrap_or(1.0))),
        Some("leaky_relu") => Some(UnaryOp::LeakyRelu(alpha.unwrap_or(0.01))),
        Some(other) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "linear: activation must be None, 'relu', 'selu', 'tanh', 'sigmoid', 'elu' or \
                 'leaky_relu', got {other:?}"
            )))
        }
    };
    let work =
        x.t.numel()
            .saturating_mul(w.t.shape().first().copied().unwrap_or(1));
    run_long(py, work, || {
        x.t.linear_act(&w.t, b.as_ref().map(|b| &b.t), act)
    })
    .map(wrap)
}

/// One-hot encoding of int64 labels (num_classes=-1: max label + 1).
#[pyfunction]
#[pyo3(signature = (labels, num_classes=-1))]
fn one_hot(labels: &PyTensor, num_classes: isize) -> PyResult<PyTensor> {
    let c = if num_classes < 0 {
        None
    } else {
        Some(num_classes as usize)
    };
    labels.t.one_hot(c).map(wrap).map_err(err)
}

/// Turns graph recording on or off on this thread; returns the previous setting.
#[pyfunction]
fn set_grad_enabled(on: bool) -> bool {
    ferrograd_core::set_grad_enabled(on)
}

/// Whether ops record the autograd graph on this thread.
#[pyfunction]
fn is_grad_enabled() -> bool {
    ferrograd_core::is_grad_enabled()
}

/// The compute devices: the CPU, then every GPU adapter wgpu finds (name, backend, type).
#[pyfunction]
fn devices() -> Vec<(String, String, String)> {
    let mut out = vec![("cpu".to_string(), "cpu".to_string(), "Cpu".to_string())];
    #[cfg(feature = "gpu")]
    for a in ferrograd_core::gpu::adapters() {
        out.push((a.name, a.backend, a.device_type));
    }
    out
}

/// The GPU adapter tensors on "gpu" use, as (name, backend, type); DeviceError when none.
#[pyfunction]
fn gpu_info() -> PyResult<(String, String, String)> {
    #[cfg(feature = "gpu")]
    {
        let ctx = ferrograd_core::gpu::context().map_err(err)?;
        let i = ctx.info();
        Ok((i.name.clone(), i.backend.clone(), i.device_type.clone()))
    }
    #[cfg(not(feature = "gpu"))]
    Err(DeviceError::new_err(
        "this build of ferrograd has no gpu backend",
    ))
}

/// The GPU runtime's counters: buffers created, dispatches recorded, submissions made,
/// bytes read back to the host, and the compiled kernel variants (for tests and benchmarks).
#[pyfunction]
fn gpu_stats(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    #[cfg(feature = "gpu")]
    {
        let ctx = ferrograd_core::gpu::context().map_err(err)?;
        let d = pyo3::types::PyDict::new(py);
        let (dispatches, submits) = ctx.counters();
        d.set_item("buffers_created", ctx.buffers_created())?;
        d.set_item("dispatches", dispatches)?;
        d.set_item("submits", submits)?;
        d.set_item("bytes_read", ctx.bytes_read())?;
        d.set_item("bind_groups_created", ctx.bind_groups_created())?;
        d.set_item("pipelines", ctx.pipeline_keys())?;
        d.set_item("max_binding", ctx.max_binding())?;
        Ok(d)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = py;
        Err(DeviceError::new_err(
            "this build of ferrograd has no gpu backend",
        ))
    }
}

/// Per-kernel GPU time, when the process started with `FERROGRAD_GPU_PROFILE=1`: a list of
/// (kernel, dispatches, total microseconds), slowest first, with "(gaps)" the idle time
/// between kernels; `None` when profiling is off. `reset` clears the totals.
#[pyfunction]
#[pyo3(signature = (reset = true))]
fn gpu_profile(reset: bool) -> PyResult<Option<Vec<(String, usize, f64)>>> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::context().map_err(err)?.profile(reset))
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = reset;
        Err(DeviceError::new_err(
            "this build of ferrograd has no gpu backend",
        ))
    }
}

#[cfg(not(feature = "gpu"))]
fn no_gpu<T>() -> PyResult<T> {
    Err(DeviceError::new_err(
        "this build of ferrograd has no gpu backend",
    ))
}

/// How the GPU matmul kernel is chosen: with `name` (a kernel from `gpu_matmul_kernels()`
/// or "auto", which times every kernel on the first product of each shape of at least
/// `tune_min_flops` (2mnk; default a 1024-cube) and keeps the fastest), sets it. Returns the
/// setting in force before the call.
#[pyfunction]
#[pyo3(signature = (name = None, tune_min_flops = None))]
fn gpu_matmul_kernel(name: Option<&str>, tune_min_flops: Option<f64>) -> PyResult<String> {
    #[cfg(feature = "gpu")]
    {
        use ferrograd_core::gpu as gpu_ops;
        if let Some(f) = tune_min_flops {
            gpu_ops::set_matmul_tune_min_flops(f).map_err(err)?;
        }
        match name {
            Some(n) => gpu_ops::set_matmul_kernel(n).map_err(err),
            None => Ok(gpu_ops::matmul_kernel()),
        }
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (name, tune_min_flops);
        no_gpu()
    }
}

/// The most parts a GPU matmul may split its inner dimension into when its output has too
/// few tiles to fill the GPU (1: never split; default 16). With `max_splits`, sets it.
/// Returns the setting in force before the call.
#[pyfunction]
#[pyo3(signature = (max_splits = None))]
fn gpu_matmul_split_k(max_splits: Option<usize>) -> PyResult<usize> {
    #[cfg(feature = "gpu")]
    {
        use ferrograd_core::gpu as gpu_ops;
        match max_splits {
            Some(n) => gpu_ops::set_matmul_split_k(n).map_err(err),
            None => Ok(gpu_ops::matmul_split_k()),
        }
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = max_splits;
        no_gpu()
    }
}

/// The GPU matmul kernels by name, the default first.
#[pyfunction]
fn gpu_matmul_kernels() -> PyResult<Vec<&'static str>> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::matmul_kernel_names())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// What "auto" measured: ((layout, m, n, k), chosen kernel, [(kernel, seconds per product)]);
/// NaN seconds mark a kernel rejected because its output differed from the default's.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn gpu_matmul_tuning() -> PyResult<
    Vec<(
        (&'static str, usize, usize, usize),
        &'static str,
        Vec<(&'static str, f64)>,
    )>,
> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::matmul_tuning())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// Test hook: records a command the GPU must reject, so a test can check that the error
/// comes back from the next wait as a DeviceError (never a panic).
#[pyfunction]
fn _gpu_record_invalid_command() -> PyResult<()> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::context()
            .map_err(err)?
            .record_invalid_command_for_tests();
        Ok(())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// Submits the queued GPU work and waits for it to finish (for timing).
#[pyfunction]
fn gpu_synchronize(py: Python<'_>) -> PyResult<()> {
    #[cfg(feature = "gpu")]
    {
        let ctx = ferrograd_core::gpu::context().map_err(err)?;
        py.detach(|| ctx.synchronize()).map_err(err)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = py;
        no_gpu()
    }
}

/// (bytes held by GPU tensors, bytes of all GPU tensor buffers incl. the free pool).
#[pyfunction]
fn gpu_memory() -> PyResult<(u64, u64)> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::context().map_err(err)?.memory())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// Releases the GPU buffer pool's free buffers.
#[pyfunction]
fn gpu_empty_cache() -> PyResult<()> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::context().map_err(err)?.empty_cache();
        Ok(())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// The cap on free pooled GPU bytes (set when `limit` is given).
#[pyfunction]
#[pyo3(signature = (limit=None))]
fn gpu_pool_limit(limit: Option<u64>) -> PyResult<u64> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::context()
            .map_err(err)?
            .pool_limit(limit))
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = limit;
        no_gpu()
    }
}

/// GPU tensor buffers created so far (the pool reuses freed ones; for memory tests).
#[pyfunction]
fn gpu_buffers_created() -> PyResult<usize> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::context()
            .map_err(err)?
            .buffers_created())
    }
    #[cfg(not(feature = "gpu"))]
    Err(DeviceError::new_err(
        "this build of ferrograd has no gpu backend",
    ))
}

/// Sets the number of threads kernels use.
#[pyfunction]
fn set_num_threads(n: isize) -> PyResult<()> {
    if n < 1 {
        return Err(PyValueError::new_err(format!(
            "set_num_threads: expected a positive count, got {n}"
        )));
    }
    let most = threads::max_threads();
    if n as usize > most {
        return Err(PyValueError::new_err(format!(
            "set_num_threads: {n} threads is more than this machine can use (at most {most}: \
             8 per core, at least 64); starting that many would take seconds and gain nothing"
        )));
    }
    threads::set_num_threads(n as usize);
    Ok(())
}

/// The number of threads kernels use.
#[pyfunction]
fn get_num_threads() -> usize {
    threads::num_threads()
}

fn ts(v: &[PyTensor]) -> Vec<Tensor> {
    v.iter().map(|t| t.t.clone()).collect()
}

/// Batch normalization of a (N, C) input (updates running stats in place when training);
/// `activation="relu"` applies relu in the same GPU kernel.
#[pyfunction]
#[pyo3(signature = (x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5, activation=None))]
#[allow(clippy::too_many_arguments)]
fn batch_norm(
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
) -> PyResult<PyTensor> {
    let relu = match activation {
        None => false,
        Some("relu") => true,
        Some(other) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "batch_norm: activation must be None or 'relu', got {other:?}"
            )))
        }
    };
    let o = |t: &Option<PyTensor>| t.as_ref().map(|t| t.t.clone());
    let (w, b, rm, rv) = (o(&weight), o(&bias), o(&running_mean), o(&running_var));
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
        )
    })
    .map(wrap)
}

/// Inverted dropout with probability `p` (identity when not training).
#[pyfunction]
#[pyo3(signature = (x, p=0.5, training=true))]
fn dropout(py: Python<'_>, x: &PyTensor, p: f64, training: bool) -> PyResult<PyTensor> {
    run(py, heavy(&x.t), || x.t.dropout(p, training)).map(wrap)
}

/// Alpha dropout for SELU networks (identity when not training).
#[pyfunction]
#[pyo3(signature = (x, p=0.5, training=true))]
fn alpha_dropout(py: Python<'_>, x: &PyTensor, p: f64, training: bool) -> PyResult<PyTensor> {
    run(py, heavy(&x.t), || x.t.alpha_dropout(p, training)).map(wrap)
}

/// Fused log-softmax + negative log-likelihood of int64 class targets.
#[pyfunction]
#[pyo3(signature = (logits, target, label_smoothing=0.0, reduction="mean"))]
fn cross_entropy(
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
fn correct_count(py: Python<'_>, scores: &PyTensor, labels: &PyTensor) -> PyResult<PyTensor> {
    run(py, heavy(&scores.t), || scores.t.correct_count(&labels.t)).map(wrap)
}

/// Binary cross-entropy computed stably from logits.
#[pyfunction]
#[pyo3(signature = (logits, target, reduction="mean"))]
fn binary_cross_entropy_with_logits(
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

/// One fused SGD step over all parameters (PyTorch's formulas).
#[pyfunction]
#[pyo3(signature = (params, grads, bufs, first, lr, momentum=0.0, dampening=0.0, nesterov=false, weight_decay=0.0))]
#[allow(clippy::too_many_arguments)]
fn sgd_step(
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
) -> PyResult<()> {
    let (p, g, b) = (ts(&params), ts(&grads), ts(&bufs));
    if g.len() != p.len() || (momentum != 0.0 && b.len() != p.len()) {
        return Err(PyValueError::new_err(
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
    run(py, true, || optim::sgd_step(&p, &g, &b, first, h))
}

/// One fused Adam/AdamW step over all parameters; `step` counts from 1.
#[pyfunction]
#[pyo3(signature = (params, grads, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=false))]
#[allow(clippy::too_many_arguments)]
fn adam_step(
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
) -> PyResult<()> {
    let (p, g, m, v) = (ts(&params), ts(&grads), ts(&m), ts(&v));
    if g.len() != p.len() || m.len() != p.len() || v.len() != p.len() {
        return Err(PyValueError::new_err(
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
    run(py, true, || optim::adam_step(&p, &g, &m, &v, step, h))
}

/// One fused RMSprop step over all parameters.
#[pyfunction]
#[pyo3(signature = (params, grads, square_avg, momentum_buf, grad_avg, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=false))]
#[allow(clippy::too_many_arguments)]
fn rmsprop_step(
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
        return Err(PyValueError::new_err(
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

/// Test-only: each entry point family (method, getter, number/sequence/mapping protocol,
/// iterator, a GIL-released kernel) panics on purpose, so a test can check that every
/// panic reaches Python as `InternalError`, a RuntimeError.
#[pyclass(frozen, name = "_PanicProbe", module = "ferrograd")]
struct PyPanicProbe;

fn deliberate_panic(family: &str) -> ! {
    panic!("deliberate panic in {family} (a test of the panic guard)")
}

#[pymethods]
impl PyPanicProbe {
    #[new]
    fn new() -> Self {
        PyPanicProbe
    }
    fn method(&self) -> PyResult<()> {
        deliberate_panic("a method")
    }
    #[getter]
    fn getter(&self) -> usize {
        deliberate_panic("a getter")
    }
    fn released(&self, py: Python<'_>) -> PyResult<()> {
        run(py, true, || -> CoreResult<()> {
            deliberate_panic("a GIL-released run")
        })
    }
    fn __add__(&self, _other: &Bound<'_, PyAny>) -> PyResult<()> {
        deliberate_panic("a number protocol slot")
    }
    fn __getitem__(&self, _key: &Bound<'_, PyAny>) -> PyResult<()> {
        deliberate_panic("a mapping protocol slot")
    }
    fn __len__(&self) -> usize {
        deliberate_panic("a sequence protocol slot")
    }
    fn __repr__(&self) -> String {
        deliberate_panic("__repr__")
    }
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    fn __next__(&self) -> Option<usize> {
        deliberate_panic("an iterator")
    }
}

/// Test-only: a module-level function that panics.
#[pyfunction]
fn _panic_probe() -> PyResult<()> {
    deliberate_panic("a module function")
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // PyO3 turns a panic at any entry point into its PanicException, a BaseException that
    // `except Exception` misses. Rebasing that one class onto RuntimeError covers every
    // entry point at once, present and future (a RuntimeError subclass has the layout
    // BaseException has, so Python allows the assignment); exported as InternalError.
    let panic = py.get_type::<pyo3::panic::PanicException>();
    panic.setattr(
        "__bases__",
        (py.get_type::<pyo3::exceptions::PyRuntimeError>(),),
    )?;
    m.add("InternalError", panic)?;
    m.add_class::<PyPanicProbe>()?;
    m.add_function(wrap_pyfunction!(_panic_probe, m)?)?;
    m.add_class::<PyTensor>()?;
    m.add_class::<PyDType>()?;
    m.add_class::<PyGradFn>()?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("DTypeError", py.get_type::<DTypeError>())?;
    m.add("DeviceError", py.get_type::<DeviceError>())?;
    m.add_function(wrap_pyfunction!(from_numpy, m)?)?;
    m.add_function(wrap_pyfunction!(zeros, m)?)?;
    m.add_function(wrap_pyfunction!(full, m)?)?;
    m.add_function(wrap_pyfunction!(arange, m)?)?;
    m.add_function(wrap_pyfunction!(eye, m)?)?;
    m.add_function(wrap_pyfunction!(rand, m)?)?;
    m.add_function(wrap_pyfunction!(randn, m)?)?;
    m.add_function(wrap_pyfunction!(randint, m)?)?;
    m.add_function(wrap_pyfunction!(randperm, m)?)?;
    m.add_function(wrap_pyfunction!(manual_seed, m)?)?;
    m.add_function(wrap_pyfunction!(get_rng_state, m)?)?;
    m.add_function(wrap_pyfunction!(set_rng_state, m)?)?;
    m.add_function(wrap_pyfunction!(cat, m)?)?;
    m.add_function(wrap_pyfunction!(stack, m)?)?;
    m.add_function(wrap_pyfunction!(where_, m)?)?;
    elementwise::register(m)?;
    m.add_function(wrap_pyfunction!(linear, m)?)?;
    m.add_function(wrap_pyfunction!(one_hot, m)?)?;
    m.add_function(wrap_pyfunction!(set_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(is_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_info, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_buffers_created, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_stats, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul_split_k, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_profile, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul_kernels, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul_tuning, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_synchronize, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_memory, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_empty_cache, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_pool_limit, m)?)?;
    m.add_function(wrap_pyfunction!(_gpu_record_invalid_command, m)?)?;
    m.add_function(wrap_pyfunction!(batch_norm, m)?)?;
    m.add_function(wrap_pyfunction!(dropout, m)?)?;
    m.add_function(wrap_pyfunction!(alpha_dropout, m)?)?;
    m.add_function(wrap_pyfunction!(cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(correct_count, m)?)?;
    m.add_function(wrap_pyfunction!(binary_cross_entropy_with_logits, m)?)?;
    m.add_function(wrap_pyfunction!(sgd_step, m)?)?;
    m.add_function(wrap_pyfunction!(adam_step, m)?)?;
    m.add_function(wrap_pyfunction!(rmsprop_step, m)?)?;
    Ok(())
}
