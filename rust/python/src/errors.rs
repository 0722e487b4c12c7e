//! Python exceptions for the core's errors, and the panic probe the tests use.

use crate::prelude::*;

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
    ArgumentError,
    PyValueError,
    "A value an operation does not accept."
);
create_exception!(
    ferrograd,
    OutOfRangeError,
    PyIndexError,
    "An index or count outside the range of a dimension."
);
create_exception!(
    ferrograd,
    EmptyReductionError,
    ArgumentError,
    "A max, min or arg-reduction over a zero-size dimension (no identity): a ValueError as \
     NumPy's and an IndexError as PyTorch's."
);
create_exception!(
    ferrograd,
    DeviceError,
    PyRuntimeError,
    "A device that is missing or cannot be used."
);

pub(crate) fn err(e: Error) -> PyErr {
    match e {
        Error::Shape(m) => ShapeError::new_err(m),
        Error::DType(m) => DTypeError::new_err(m),
        Error::Device(m) => DeviceError::new_err(m),
        Error::Index(m) => OutOfRangeError::new_err(m),
        Error::Value(m) => ArgumentError::new_err(m),
        Error::EmptyReduction(m) => EmptyReductionError::new_err(m),
        Error::Memory(m) => PyMemoryError::new_err(m),
        Error::Autograd(m) => PyRuntimeError::new_err(m),
        Error::Interrupted(m) => pyo3::exceptions::PyKeyboardInterrupt::new_err(m),
    }
}

/// Test-only: each entry point family (method, getter, number/sequence/mapping protocol,
/// iterator, a GIL-released kernel) panics on purpose, so a test can check that every
/// panic reaches Python as `InternalError`, a RuntimeError.
#[pyclass(frozen, name = "_PanicProbe", module = "ferrograd")]
pub(crate) struct PyPanicProbe;

pub(crate) fn deliberate_panic(family: &str) -> ! {
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
    pub(crate) fn __repr__(&self) -> String {
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
pub(crate) fn _panic_probe() -> PyResult<()> {
    deliberate_panic("a module function")
}
