//! Tensor indexing: `t[key]` and `t[key] = value`.

use crate::prelude::*;

#[pymethods]
impl PyTensor {
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        // integer-array indexing along the first dim: mini-batch gathers
        let idx: Option<Tensor> = if let Ok(t) = key.cast::<PyTensor>() {
            Some(t.get().t.clone())
        } else if key.cast::<PyList>().is_ok_and(|l| l.is_empty()) {
            // x[[]]: no indices (an empty list has no dtype to go by), as NumPy and PyTorch
            Some(Tensor::from_vec(Vec::<i64>::new(), &[0]).map_err(err)?)
        } else if key.cast::<PyList>().is_ok() || key.hasattr("__array_interface__")? {
            let f = crate::hooks::hooks(py)?.tensor.bind(py).clone();
            Some(f.call1((key,))?.cast::<PyTensor>()?.get().t.clone())
        } else {
            None
        };
        match idx {
            Some(i) => {
                let t = &self.t;
                run(py, heavy(t), || t.index_by(&i)).map(wrap)
            }
            None if advanced(key)? => {
                let f = crate::hooks::hooks(py)?.advanced.bind(py).clone();
                let me = Bound::new(py, wrap(self.t.clone()))?;
                Ok(f.call1((me, key))?.cast::<PyTensor>()?.get().clone())
            }
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
        if key.cast::<PyTensor>().is_err() && advanced(key)? {
            let f = crate::hooks::hooks(py)?.advanced.bind(py).clone();
            let me = Bound::new(py, wrap(self.t.clone()))?;
            f.call1((me, key, value))?;
            return Ok(());
        }
        let v = match operand(value, t)? {
            Some(v) => v,
            None => {
                let f = crate::hooks::hooks(py)?.tensor.bind(py).clone();
                f.call1((value,))?.cast::<PyTensor>()?.get().t.clone()
            }
        };
        let idx: Option<Tensor> = if let Ok(k) = key.cast::<PyTensor>() {
            Some(k.get().t.clone())
        } else if key.cast::<PyList>().is_ok_and(|l| l.is_empty()) {
            // an empty list selects no rows (NumPy reads it as an empty integer index)
            Some(Tensor::from_vec(Vec::<i64>::new(), &[0]).map_err(err)?)
        } else if key.cast::<PyList>().is_ok() || key.hasattr("__array_interface__")? {
            let f = crate::hooks::hooks(py)?.tensor.bind(py).clone();
            Some(f.call1((key,))?.cast::<PyTensor>()?.get().t.clone())
        } else {
            None
        };
        let items = if idx.is_none() {
            Some(index_items(key)?)
        } else {
            None
        };
        run(py, heavy(t), || match idx {
            Some(i) => t.index_put_(&i, &v),
            None => t.index_assign_(items.as_deref().unwrap_or(&[]), &v),
        })
    }
}

/// Whether `key` is a tuple holding an index array (a list, a tensor, an array): NumPy's
/// advanced indexing beyond the first dim, which the Python layer carries out.
fn advanced(key: &Bound<'_, PyAny>) -> PyResult<bool> {
    let Ok(items) = key.cast::<PyTuple>() else {
        return Ok(false);
    };
    for it in items.iter() {
        if it.cast::<PyTensor>().is_ok()
            || it.cast::<PyList>().is_ok()
            || it.hasattr("__array_interface__")?
        {
            return Ok(true);
        }
    }
    Ok(false)
}
