//! What the Python layer hands the bindings when it is imported (`_core._set_hooks`), so
//! the bindings never import the package back: the tensor constructor (NumPy-style list
//! keys, pickling), the repr formatter, the module of PyTorch-style return types, and
//! NumPy's advanced indexing beyond the first dim.

use crate::prelude::*;

pub(crate) struct Hooks {
    pub tensor: Py<PyAny>,
    pub repr: Py<PyAny>,
    pub return_types: Py<PyAny>,
    /// NumPy's advanced indexing beyond the first dim: `advanced(tensor, key)` reads,
    /// `advanced(tensor, key, value)` writes
    pub advanced: Py<PyAny>,
}

static HOOKS: pyo3::sync::PyOnceLock<Hooks> = pyo3::sync::PyOnceLock::new();

/// Registers the Python layer's callables (once; `import ferrograd` does it).
#[pyfunction]
pub(crate) fn _set_hooks(
    py: Python<'_>,
    tensor: Py<PyAny>,
    repr: Py<PyAny>,
    return_types: Py<PyAny>,
    advanced: Py<PyAny>,
) -> PyResult<()> {
    let _ = HOOKS.get_or_init(py, || Hooks {
        tensor,
        repr,
        return_types,
        advanced,
    });
    Ok(())
}

/// The registered hooks, or a clear error when `_core` is used without the package.
pub(crate) fn hooks(py: Python<'_>) -> PyResult<&Hooks> {
    HOOKS.get(py).ok_or_else(|| {
        PyRuntimeError::new_err(
            "ferrograd._core is used without the ferrograd package: import ferrograd first",
        )
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_set_hooks, m)?)
}
