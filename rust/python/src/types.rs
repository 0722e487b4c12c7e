//! The Python classes: dtype, GradFn, Tensor (its methods live in the topic modules) and
//! the tensor iterator.

use crate::prelude::*;

/// Element types, exposed as `ferrograd.float32` and friends.
#[pyclass(eq, frozen, hash, from_py_object, name = "dtype", module = "ferrograd")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub(crate) enum PyDType {
    // the integer values are public (`int(dtype.float32) == 2`): new dtypes go at the end
    bool = 0,
    int64 = 1,
    float32 = 2,
    float64 = 3,
    uint8 = 4,
    int32 = 5,
    float16 = 6,
    bfloat16 = 7,
}

impl From<PyDType> for DType {
    fn from(d: PyDType) -> DType {
        match d {
            PyDType::bool => DType::Bool,
            PyDType::uint8 => DType::U8,
            PyDType::int32 => DType::I32,
            PyDType::float16 => DType::F16,
            PyDType::bfloat16 => DType::BF16,
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
            DType::U8 => PyDType::uint8,
            DType::I32 => PyDType::int32,
            DType::F16 => PyDType::float16,
            DType::BF16 => PyDType::bfloat16,
            DType::I64 => PyDType::int64,
            DType::F32 => PyDType::float32,
            DType::F64 => PyDType::float64,
        }
    }
}

#[pymethods]
impl PyDType {
    pub(crate) fn __repr__(&self) -> String {
        format!("ferrograd.{}", DType::from(*self).name())
    }
    /// Whether this is a floating-point dtype (float16, bfloat16, float32, float64).
    #[getter]
    fn is_floating_point(&self) -> bool {
        DType::from(*self).is_float()
    }
    /// Whether the dtype holds negative numbers (PyTorch's `is_signed`).
    #[getter]
    fn is_signed(&self) -> bool {
        !matches!(self, PyDType::bool | PyDType::uint8)
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
        let name = DType::from(*self).name();
        let getattr = py.import("builtins")?.getattr("getattr")?;
        Ok((getattr, (py.get_type::<PyDType>().into_any(), name)))
    }
}

/// A node of the autograd graph (`tensor.grad_fn`).
#[pyclass(frozen, name = "GradFn", module = "ferrograd")]
pub(crate) struct PyGradFn {
    pub(crate) node: Arc<Node>,
}

#[pymethods]
impl PyGradFn {
    /// The op's name, e.g. `MulBackward`.
    fn name(&self) -> &'static str {
        self.node.name()
    }
    pub(crate) fn __repr__(&self) -> String {
        format!("<{}>", self.node.name())
    }
}

/// An n-dimensional array with reverse-mode autograd.
#[pyclass(frozen, from_py_object, name = "Tensor", module = "ferrograd")]
#[derive(Clone)]
pub(crate) struct PyTensor {
    pub(crate) t: Tensor,
}

pub(crate) fn wrap(t: Tensor) -> PyTensor {
    PyTensor { t }
}

/// The iterator of `iter(tensor)`: the views `t[0]`, `t[1]`, ... along dim 0.
#[pyclass(frozen, name = "TensorIterator", module = "ferrograd")]
pub(crate) struct PyTensorIter {
    pub(crate) t: Tensor,
    pub(crate) next: std::sync::atomic::AtomicUsize,
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
