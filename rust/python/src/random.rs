//! Random tensors and the global generator's state.

use crate::prelude::*;

/// Uniform samples in [0, 1) from the global generator.
#[pyfunction]
#[pyo3(signature = (shape, dtype=None))]
pub(crate) fn rand(shape: Vec<isize>, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    random::rand(&sizes("rand", &shape)?, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// Standard normal samples from the global generator.
#[pyfunction]
#[pyo3(signature = (shape, dtype=None))]
pub(crate) fn randn(shape: Vec<isize>, dtype: Option<PyDType>) -> PyResult<PyTensor> {
    random::randn(&sizes("randn", &shape)?, dt(dtype))
        .map(wrap)
        .map_err(err)
}

/// Integers uniform in [low, high).
#[pyfunction]
pub(crate) fn randint(low: i64, high: i64, shape: Vec<isize>) -> PyResult<PyTensor> {
    random::randint(low, high, &sizes("randint", &shape)?)
        .map(wrap)
        .map_err(err)
}

/// A random permutation of 0..n.
#[pyfunction]
pub(crate) fn randperm(n: isize) -> PyResult<PyTensor> {
    let s = sizes("randperm", &[n])?;
    random::randperm(s[0]).map(wrap).map_err(err)
}

/// Reseeds the global generator.
#[pyfunction]
pub(crate) fn manual_seed(seed: i128) -> PyResult<()> {
    let s = u64::try_from(seed.rem_euclid(1i128 << 64)).expect("in range");
    random::manual_seed(s);
    Ok(())
}

/// The global generator's state as (seed, offset).
#[pyfunction]
pub(crate) fn get_rng_state() -> (u64, u64) {
    random::get_state()
}

/// Restores the global generator's state from `get_rng_state()`.
#[pyfunction]
pub(crate) fn set_rng_state(state: (u64, u64)) {
    random::set_state(state.0, state.1)
}
