//! The op table's elementwise ops, bound once: `unary(x, name, p0, p1)` applies any row of
//! the table, and `unary_ops()` lists the rows, which the Python layer turns into
//! functions and Tensor methods and the tests into their op lists.

use crate::{err, PyTensor};
use ferrograd_core::ops::table::{UnaryOp, UNARY_OPS};
use pyo3::prelude::*;

/// Applies the op table's op `name` (parameters p0, p1 in the table's order; None takes
/// the default).
#[pyfunction]
#[pyo3(signature = (x, name, p0=None, p1=None))]
pub(crate) fn unary(
    py: Python<'_>,
    x: &PyTensor,
    name: &str,
    p0: Option<f64>,
    p1: Option<f64>,
) -> PyResult<PyTensor> {
    let op = UnaryOp::from_name(name, &[p0, p1]).map_err(err)?;
    x.un(py, op)
}

/// The op table's rows: (name, WGSL code, [(parameter, default or None)]).
#[pyfunction]
#[allow(clippy::type_complexity)]
pub(crate) fn unary_ops() -> Vec<(&'static str, u32, Vec<(&'static str, Option<f64>)>)> {
    UNARY_OPS
        .iter()
        .map(|r| (r.name, r.code, r.params.to_vec()))
        .collect()
}

/// A shader's WGSL source exactly as the runtime compiles it (prelude and generated parts
/// prepended), for the wgpu-py harness; None for an unknown name.
#[pyfunction]
pub(crate) fn _shader_source(name: &str) -> Option<&'static str> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::shaders::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = name;
        None
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(unary, m)?)?;
    m.add_function(wrap_pyfunction!(unary_ops, m)?)?;
    m.add_function(wrap_pyfunction!(_shader_source, m)?)?;
    Ok(())
}
