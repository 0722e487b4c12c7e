//! Tensor arithmetic: operators, comparisons, logical ops and matrix products.

use crate::prelude::*;

/// PyTorch refuses an integer tensor raised to a negative Python integer (an exponent
/// tensor gives integer powers' truncated values instead, 0 for |x| > 1).
fn check_int_power(t: &Tensor, o: &Bound<'_, PyAny>) -> PyResult<()> {
    // a Python int only: a one-element tensor would extract through __index__
    let is_int =
        o.is_instance_of::<pyo3::types::PyInt>() && !o.is_instance_of::<pyo3::types::PyBool>();
    if t.dtype().is_float() || !is_int {
        return Ok(());
    }
    match o.extract::<i64>() {
        Ok(v) if v < 0 => Err(ArgumentError::new_err(
            "pow: integers to negative integer powers are not allowed (as in PyTorch); use a \
             float base or exponent",
        )),
        _ => Ok(()),
    }
}

#[pymethods]
impl PyTensor {
    // ------------------------------------------------------------ arithmetic
    fn __add__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.add(b))
    }
    fn __radd__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.add(b))
    }
    fn __sub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.sub(b))
    }
    fn __rsub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.sub(b))
    }
    fn __mul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.mul(b))
    }
    fn __rmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.mul(b))
    }
    fn __truediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.div(b))
    }
    fn __rtruediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.div(b))
    }
    fn __pow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if modulo.is_some_and(|m| !m.is_none()) {
            return Err(PyTypeError::new_err(
                "pow: a modulo argument is not supported for tensors",
            ));
        }
        check_int_power(&self.t, o)?;
        self.bin(py, o, false, |a, b| a.pow(b))
    }
    fn __rpow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if modulo.is_some_and(|m| !m.is_none()) {
            return Err(PyTypeError::new_err(
                "pow: a modulo argument is not supported for tensors",
            ));
        }
        self.bin(py, o, true, |a, b| a.pow(b))
    }
    fn __matmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.matmul_any(py, o, false)
    }
    fn __rmatmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.matmul_any(py, o, true)
    }
    fn __neg__(&self) -> PyResult<PyTensor> {
        self.t.neg().map(wrap).map_err(err)
    }
    fn __pos__(&self) -> PyTensor {
        wrap(self.t.clone())
    }
    fn __abs__(&self) -> PyResult<PyTensor> {
        self.t.abs().map(wrap).map_err(err)
    }
    fn __richcmp__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let Some(b) = operand(o, &self.t)? else {
            return Ok(py.NotImplemented());
        };
        let c = match op {
            CompareOp::Eq => CmpOp::Eq,
            CompareOp::Ne => CmpOp::Ne,
            CompareOp::Lt => CmpOp::Lt,
            CompareOp::Le => CmpOp::Le,
            CompareOp::Gt => CmpOp::Gt,
            CompareOp::Ge => CmpOp::Ge,
        };
        let t = &self.t;
        Ok(wrap(run(py, heavy(t), || t.compare(c, &b))?)
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }
    /// Elementwise sum with another tensor or number.
    fn add(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "add", other, self.__add__(py, other))
    }
    /// Elementwise difference.
    fn sub(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "sub", other, self.__sub__(py, other))
    }
    /// Elementwise product.
    fn mul(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "mul", other, self.__mul__(py, other))
    }
    /// Elementwise true division.
    fn div(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "div", other, self.__truediv__(py, other))
    }
    /// Elementwise power.
    fn pow(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        check_int_power(&self.t, other)?;
        method_result(
            py,
            "pow",
            other,
            self.bin(py, other, false, |a, b| a.pow(b)),
        )
    }
    /// Elementwise maximum (NaN propagates).
    fn maximum(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(
            py,
            "maximum",
            other,
            self.bin(py, other, false, |a, b| a.maximum(b)),
        )
    }
    /// Elementwise minimum (NaN propagates).
    fn minimum(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(
            py,
            "minimum",
            other,
            self.bin(py, other, false, |a, b| a.minimum(b)),
        )
    }
    /// `self == other` elementwise: a bool tensor.
    fn eq(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "eq", other, CmpOp::Eq)
    }
    /// `self != other` elementwise: a bool tensor.
    fn ne(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "ne", other, CmpOp::Ne)
    }
    /// `self < other` elementwise: a bool tensor.
    fn lt(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "lt", other, CmpOp::Lt)
    }
    /// `self <= other` elementwise: a bool tensor.
    fn le(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "le", other, CmpOp::Le)
    }
    /// `self > other` elementwise: a bool tensor.
    fn gt(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "gt", other, CmpOp::Gt)
    }
    /// `self >= other` elementwise: a bool tensor.
    fn ge(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.cmp_method(py, "ge", other, CmpOp::Ge)
    }
    /// Logical and of truth values (nonzero is true): a bool tensor.
    fn logical_and(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let r = self.bin(py, other, false, |a, b| a.logical(LogicOp::And, b));
        method_result(py, "logical_and", other, r)
    }
    /// Logical or of truth values: a bool tensor.
    fn logical_or(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let r = self.bin(py, other, false, |a, b| a.logical(LogicOp::Or, b));
        method_result(py, "logical_or", other, r)
    }
    /// Logical xor of truth values: a bool tensor.
    fn logical_xor(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let r = self.bin(py, other, false, |a, b| a.logical(LogicOp::Xor, b));
        method_result(py, "logical_xor", other, r)
    }
    /// Logical not (zero is true): a bool tensor.
    fn logical_not(&self) -> PyResult<PyTensor> {
        self.t.logical_not().map(wrap).map_err(err)
    }
    fn __invert__(&self) -> PyResult<PyTensor> {
        self.t.bitwise_not().map(wrap).map_err(err)
    }
    fn __and__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.bitwise(LogicOp::And, b))
    }
    fn __rand__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.bitwise(LogicOp::And, b))
    }
    fn __or__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.bitwise(LogicOp::Or, b))
    }
    fn __ror__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.bitwise(LogicOp::Or, b))
    }
    fn __xor__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, false, |a, b| a.bitwise(LogicOp::Xor, b))
    }
    fn __rxor__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.bin(py, o, true, |a, b| a.bitwise(LogicOp::Xor, b))
    }
    /// `value` where the bool `mask` (broadcast to this shape) is true, this tensor elsewhere.
    pub(crate) fn masked_fill(
        &self,
        py: Python<'_>,
        mask: &PyTensor,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        let v = operand(value, &self.t)?.ok_or_else(|| {
            PyTypeError::new_err(format!(
                "masked_fill: the value must be a number or a 0-dim tensor, got {}",
                value
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let (t, m) = (&self.t, &mask.t);
        run(py, heavy(t), || t.masked_fill(m, &v)).map(wrap)
    }
    /// Matrix product (NumPy's matmul rules).
    fn matmul(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        method_result(py, "matmul", other, self.matmul_any(py, other, false))
    }
    /// Matrix times matrix (both 2-D).
    fn mm(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run_long(py, mm_work(a, b), || a.mm(b)).map(wrap)
    }
    /// Batched matrix product of (b, n, k) and (b, k, m).
    fn bmm(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run_long(py, mm_work(a, b), || a.bmm(b)).map(wrap)
    }
    /// Matrix times vector.
    fn mv(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run(py, heavy(a) || heavy(b), || a.mv(b)).map(wrap)
    }
    /// Inner product of two 1-D tensors.
    fn dot(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run(py, heavy(a) || heavy(b), || a.dot(b)).map(wrap)
    }
    /// Outer product of two 1-D tensors.
    fn outer(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (&self.t, &other.t);
        run(py, heavy(a) || heavy(b), || a.outer(b)).map(wrap)
    }
}

/// The method forms (`t.add(x)`) raise where the operators return NotImplemented.
impl PyTensor {
    pub(crate) fn new_full_of(&self, size: &Bound<'_, PyTuple>, value: f64) -> PyResult<PyTensor> {
        let shape: Vec<usize> = shape_args(size)?
            .into_iter()
            .map(|d| {
                usize::try_from(d).map_err(|_| {
                    ArgumentError::new_err(format!("new_full: sizes must be >= 0, got {d}"))
                })
            })
            .collect::<PyResult<_>>()?;
        Tensor::full(&shape, value, self.t.dtype())
            .and_then(|t| t.to_device(self.t.device()))
            .map(wrap)
            .map_err(err)
    }

    pub(crate) fn cmp_method(
        &self,
        py: Python<'_>,
        op: &str,
        other: &Bound<'_, PyAny>,
        c: CmpOp,
    ) -> PyResult<Py<PyAny>> {
        let r = self.bin(py, other, false, |a, b| a.compare(c, b));
        method_result(py, op, other, r)
    }
}

impl PyTensor {
    pub(crate) fn un(&self, py: Python<'_>, op: UnaryOp) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.unary(op)).map(wrap)
    }

    pub(crate) fn bin(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        reflected: bool,
        f: impl FnOnce(&Tensor, &Tensor) -> CoreResult<Tensor> + Send,
    ) -> PyResult<Py<PyAny>> {
        let Some(b) = operand(o, &self.t)? else {
            return Ok(py.NotImplemented());
        };
        let a = &self.t;
        let big = heavy(a) || heavy(&b);
        let out = run(py, big, || if reflected { f(&b, a) } else { f(a, &b) })?;
        Ok(Py::new(py, wrap(out))?.into_any())
    }

    pub(crate) fn matmul_any(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        reflected: bool,
    ) -> PyResult<Py<PyAny>> {
        let Ok(b) = o.cast::<PyTensor>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (&self.t, &b.get().t);
        let (a, b) = if reflected { (b, a) } else { (a, b) };
        let work = a
            .numel()
            .saturating_mul(b.shape().last().copied().unwrap_or(1));
        let out = run_long(py, work, || a.matmul(b))?;
        Ok(Py::new(py, wrap(out))?.into_any())
    }
}
