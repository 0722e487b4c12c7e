//! In-place tensor ops (`add_`, `fill_`, ...).

use crate::prelude::*;

#[pymethods]
impl PyTensor {
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
        min: Option<&Bound<'py, PyAny>>,
        max: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        // `clamp`'s result (its bounds' rules), stored back by the in-place rules; under
        // autograd computed from a copy, since clamp's rule reads the values it overwrites
        let t = slf.get().t.clone();
        let clamped = if ferrograd_core::autograd::is_grad_enabled() && t.requires_grad() {
            wrap(t.clone_tensor().map_err(err)?).clamp(slf.py(), min, max)?
        } else {
            slf.get().clamp(slf.py(), min, max)?
        };
        run(slf.py(), heavy(&t), || {
            t.apply_("clamp_", |_| Ok(clamped.t.clone()))
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
            t.apply_("masked_fill_", |_| Ok(filled.t.clone()))
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
