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
}
