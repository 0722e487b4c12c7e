//! Argument parsing: Python operands, shapes, dims and index keys into core values;
//! results back into Python objects.

use crate::prelude::*;

/// A Python operand of an arithmetic op: another tensor or a number.
pub(crate) fn operand(other: &Bound<'_, PyAny>, like: &Tensor) -> PyResult<Option<Tensor>> {
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

pub(crate) fn isize_shape(t: &Tensor) -> Vec<isize> {
    t.shape().iter().map(|&d| d as isize).collect()
}

pub(crate) fn tuple_of(py: Python<'_>, parts: Vec<Tensor>) -> PyResult<Bound<'_, PyTuple>> {
    PyTuple::new(py, parts.into_iter().map(wrap))
}

/// Shape arguments given as `f(2, 3)` or `f((2, 3))`.
pub(crate) fn shape_args(args: &Bound<'_, PyTuple>) -> PyResult<Vec<isize>> {
    if args.len() == 1 {
        let a = args.get_item(0)?;
        if a.cast::<PyTuple>().is_ok() || a.cast::<PyList>().is_ok() {
            return a.extract::<Vec<isize>>();
        }
    }
    args.extract::<Vec<isize>>()
}

/// A dims argument: `None`, an int, or a sequence of ints.
pub(crate) fn dims_arg(dim: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<isize>>> {
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

/// PyTorch's NumPy-style name `axis` for `dim` (as `x.sum(axis=1)`): the one given, and a
/// TypeError naming the op when both are.
pub(crate) fn axis_alias<'a, 'py>(
    op: &str,
    dim: Option<&'a Bound<'py, PyAny>>,
    axis: Option<&'a Bound<'py, PyAny>>,
) -> PyResult<Option<&'a Bound<'py, PyAny>>> {
    let given = |v: Option<&Bound<'py, PyAny>>| v.is_some_and(|v| !v.is_none());
    match (given(dim), given(axis)) {
        (true, true) => Err(both(op, "dim", "axis")),
        (false, true) => Ok(axis),
        _ => Ok(dim),
    }
}

/// `axis` for an optional int `dim`.
pub(crate) fn axis_alias_opt(
    op: &str,
    dim: Option<isize>,
    axis: Option<isize>,
) -> PyResult<Option<isize>> {
    match (dim, axis) {
        (Some(_), Some(_)) => Err(both(op, "dim", "axis")),
        (None, a) => Ok(a),
        (d, None) => Ok(d),
    }
}

/// `axis` for an int `dim` with a default: a `dim` other than the default given with `axis`
/// is an error (the default cannot be told from an explicit equal value).
pub(crate) fn axis_alias_int(
    op: &str,
    dim: isize,
    default: isize,
    axis: Option<isize>,
) -> PyResult<isize> {
    match axis {
        None => Ok(dim),
        Some(a) if dim == default => Ok(a),
        Some(_) => Err(both(op, "dim", "axis")),
    }
}

/// PyTorch's NumPy-style name `keepdims` for `keepdim`.
pub(crate) fn keepdims_alias(op: &str, keepdim: bool, keepdims: Option<bool>) -> PyResult<bool> {
    match keepdims {
        None => Ok(keepdim),
        Some(k) if keepdim && !k => Err(both(op, "keepdim", "keepdims")),
        Some(k) => Ok(k || keepdim),
    }
}

fn both(op: &str, name: &str, alias: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{op}() got both {name} and {alias} ({alias} is NumPy's name for {name}); give one"
    ))
}

/// A count argument (a length, a number of pieces, k): taken as a signed int so a negative
/// one is a ValueError naming the op, not PyO3's bare OverflowError.
pub(crate) fn count(op: &str, what: &str, n: isize) -> PyResult<usize> {
    usize::try_from(n)
        .map_err(|_| ArgumentError::new_err(format!("{op}: {what} must be non-negative, got {n}")))
}

/// Sizes for creation functions: negative sizes are refused by name.
pub(crate) fn sizes(op: &str, shape: &[isize]) -> PyResult<Vec<usize>> {
    shape
        .iter()
        .map(|&d| {
            if d < 0 {
                Err(ArgumentError::new_err(format!(
                    "{op}: negative dimension {d} in shape {shape:?}"
                )))
            } else {
                Ok(d as usize)
            }
        })
        .collect()
}

pub(crate) fn index_items(key: &Bound<'_, PyAny>) -> PyResult<Vec<IndexItem>> {
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
                    Err(OutOfRangeError::new_err(
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
                Err(OutOfRangeError::new_err(format!(
                    "index: only integers, slices, None, ..., or an int64 tensor/list for the first dim are \
                     supported, got {}",
                    it.get_type().name()?
                )))
            }
        })
        .collect()
}

pub(crate) fn to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    fn arr<'py, T: numpy::Element + ferrograd_core::storage::BufferElement>(
        py: Python<'py>,
        t: &Tensor,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = t.to_vec::<T>().map_err(err)?;
        Ok(ArrayD::from_shape_vec(IxDyn(t.shape()), v)
            .map_err(|_| PyRuntimeError::new_err("numpy: shape mismatch"))?
            .into_pyarray(py)
            .into_any())
    }
    match t.dtype() {
        DType::F32 => arr::<f32>(py, t),
        DType::F64 => arr::<f64>(py, t),
        DType::I64 => arr::<i64>(py, t),
        DType::Bool => arr::<bool>(py, t),
        DType::U8 => arr::<u8>(py, t),
        DType::I32 => arr::<i32>(py, t),
        DType::F16 => arr::<half::f16>(py, t),
        // NumPy has no bfloat16, and PyTorch's numpy() refuses it the same way
        DType::BF16 => Err(PyTypeError::new_err(
            "numpy: NumPy has no bfloat16; convert with .float() first",
        )),
    }
}

/// `ferrograd.return_types.<name>(values, indices)`, as PyTorch's `torch.return_types`.
pub(crate) fn values_indices<'py>(
    py: Python<'py>,
    name: &str,
    values: Tensor,
    indices: Tensor,
) -> PyResult<Bound<'py, PyAny>> {
    crate::hooks::hooks(py)?
        .return_types
        .bind(py)
        .getattr(name)?
        .call1((wrap(values), wrap(indices)))
}

pub(crate) fn method_result(
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

// ---------------------------------------------------------------- module functions

pub(crate) fn dt(d: Option<PyDType>) -> DType {
    d.map(DType::from).unwrap_or(DType::F32)
}

pub(crate) fn ts(v: &[PyTensor]) -> Vec<Tensor> {
    v.iter().map(|t| t.t.clone()).collect()
}
