//! ferrograd-py: the thin PyO3 layer over ferrograd-core.
//!
//! One short method per tensor operation: convert arguments, call the core, map its error
//! to a Python exception. Heavy kernels run with the GIL released; tiny ones keep it,
//! since releasing costs more than the op.

mod args;
mod arith;
mod conv;
mod dlpack;
mod elementwise;
mod errors;
mod functional;
mod gpu;
mod grad_hooks;
mod guard;
mod hooks;
mod indexing;
mod inplace;
mod nn;
mod optim;
mod random;
mod tensor;
mod tensor_reduce;
mod tensor_unary;
mod types;
mod views;

/// What every binding module uses: the core, PyO3, NumPy, and this crate's shared helpers.
mod prelude {
    pub(crate) use crate::args::*;
    pub(crate) use crate::errors::*;
    pub(crate) use crate::guard::*;
    pub(crate) use crate::types::*;
    pub(crate) use ferrograd_core::autograd::Node;
    pub(crate) use ferrograd_core::ops::nn::Reduction;
    pub(crate) use ferrograd_core::ops::{CmpOp, IndexItem, LogicOp, UnaryOp};
    pub(crate) use ferrograd_core::{optim, random, threads, DType, Error, Tensor};
    pub(crate) use numpy::ndarray::{ArrayD, IxDyn};
    pub(crate) use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
    pub(crate) use pyo3::basic::CompareOp;
    pub(crate) use pyo3::create_exception;
    pub(crate) use pyo3::exceptions::{
        PyIndexError, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError,
    };
    pub(crate) use pyo3::prelude::*;
    pub(crate) use pyo3::types::{PyEllipsis, PyList, PySlice, PyTuple};
    pub(crate) use std::sync::Arc;
}

use crate::prelude::*;
use crate::{functional::*, gpu::*, nn::*, optim::*, random::*};

// large host buffers are cached between steps instead of being mapped afresh each time
// (see ferrograd_core::alloc)
#[global_allocator]
static ALLOC: ferrograd_core::alloc::CachingAlloc = ferrograd_core::alloc::CachingAlloc;

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
    // PyTorch raises RuntimeError for most bad input where ferrograd's contract names a
    // ValueError, TypeError or IndexError: each of these classes is both, so ported
    // `except RuntimeError` code still catches them and ferrograd's own `except` clauses too
    let runtime = py.get_type::<pyo3::exceptions::PyRuntimeError>();
    let rebased = [
        (
            py.get_type::<ShapeError>(),
            py.get_type::<pyo3::exceptions::PyValueError>(),
        ),
        (
            py.get_type::<DTypeError>(),
            py.get_type::<pyo3::exceptions::PyTypeError>(),
        ),
        (
            py.get_type::<ArgumentError>(),
            py.get_type::<pyo3::exceptions::PyValueError>(),
        ),
        (
            py.get_type::<OutOfRangeError>(),
            py.get_type::<pyo3::exceptions::PyIndexError>(),
        ),
    ];
    for (cls, base) in rebased {
        cls.setattr("__bases__", (base, runtime.clone()))?;
        m.add(cls.name()?, cls)?;
    }
    // an empty max/argmax: NumPy's ValueError (as an ArgumentError) and PyTorch's IndexError
    let empty = py.get_type::<EmptyReductionError>();
    empty.setattr(
        "__bases__",
        (
            py.get_type::<ArgumentError>(),
            py.get_type::<pyo3::exceptions::PyIndexError>(),
        ),
    )?;
    m.add(empty.name()?, empty)?;
    // PyTorch raises NotImplementedError (a RuntimeError) for an op a dtype does not
    // support ("not implemented for 'Bool'"): DTypeError is that too
    let dtype_err = py.get_type::<DTypeError>();
    dtype_err.setattr(
        "__bases__",
        (
            py.get_type::<pyo3::exceptions::PyTypeError>(),
            py.get_type::<pyo3::exceptions::PyNotImplementedError>(),
        ),
    )?;
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
    hooks::register(m)?;
    grad_hooks::register(m)?;
    dlpack::register(m)?;
    conv::register(m)?;
    m.add_function(wrap_pyfunction!(linear, m)?)?;
    m.add_function(wrap_pyfunction!(_diagonal, m)?)?;
    m.add_function(wrap_pyfunction!(_unfold, m)?)?;
    m.add_function(wrap_pyfunction!(one_hot, m)?)?;
    m.add_function(wrap_pyfunction!(set_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(set_autocast, m)?)?;
    m.add_function(wrap_pyfunction!(autocast_dtype, m)?)?;
    m.add_function(wrap_pyfunction!(is_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(host_cache_stats, m)?)?;
    m.add_function(wrap_pyfunction!(host_empty_cache, m)?)?;
    m.add_function(wrap_pyfunction!(host_cache_limit, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_info, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_buffers_created, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_stats, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul_split_k, m)?)?;
    m.add_function(wrap_pyfunction!(_gpu_matmul_split_k_fixup, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_profile, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul_kernels, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul_tuning, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_synchronize, m)?)?;
    m.add_class::<PyGpuGraph>()?;
    m.add_function(wrap_pyfunction!(gpu_flush, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_capture_begin, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_capture_end, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_capture_abort, m)?)?;
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
    m.add_function(wrap_pyfunction!(_unscale_grads, m)?)?;
    m.add_function(wrap_pyfunction!(_amp_update_scale, m)?)?;
    m.add_function(wrap_pyfunction!(rmsprop_step, m)?)?;
    m.add_function(wrap_pyfunction!(adadelta_step, m)?)?;
    Ok(())
}
