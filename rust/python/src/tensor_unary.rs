//! Tensor methods for the elementwise unary ops and activations.

use crate::prelude::*;

#[pymethods]
impl PyTensor {
    /// e ** x, elementwise.
    fn exp(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Exp)
    }
    /// Natural logarithm, elementwise.
    fn log(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Log)
    }
    /// Square root, elementwise.
    fn sqrt(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Sqrt)
    }
    /// Absolute value, elementwise.
    fn abs(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Abs)
    }
    /// x * x, elementwise.
    fn square(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.square()).map(wrap)
    }
    /// 1 / x, elementwise (float32 for integer tensors).
    fn reciprocal(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.reciprocal()).map(wrap)
    }
    /// 1 / sqrt(x), elementwise.
    fn rsqrt(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.rsqrt()).map(wrap)
    }
    /// -1, 0 or 1 by each element's sign (NaN stays NaN); not differentiable.
    fn sign(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.sign()).map(wrap)
    }
    /// Whether each element is NaN: a bool tensor.
    fn isnan(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.isnan()).map(wrap)
    }
    /// Whether each element is +-infinity: a bool tensor.
    fn isinf(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.isinf()).map(wrap)
    }
    /// Whether each element is finite: a bool tensor.
    fn isfinite(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.isfinite()).map(wrap)
    }
    /// Hyperbolic tangent, elementwise.
    fn tanh(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Tanh)
    }
    /// Logistic sigmoid 1 / (1 + e ** -x), elementwise.
    fn sigmoid(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Sigmoid)
    }
    /// max(x, 0), elementwise.
    fn relu(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Relu)
    }
    /// Scaled exponential linear unit (Klambauer et al.), elementwise.
    fn selu(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Selu)
    }
    /// -x, elementwise.
    fn neg(&self, py: Python<'_>) -> PyResult<PyTensor> {
        self.un(py, UnaryOp::Neg)
    }
    /// ELU: x if x > 0 else alpha * (exp(x) - 1).
    #[pyo3(signature = (alpha=1.0))]
    fn elu(&self, py: Python<'_>, alpha: f64) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.unary(UnaryOp::Elu(alpha))).map(wrap)
    }
    /// Leaky ReLU: x if x > 0 else negative_slope * x.
    #[pyo3(signature = (negative_slope=0.01))]
    fn leaky_relu(&self, py: Python<'_>, negative_slope: f64) -> PyResult<PyTensor> {
        let t = &self.t;
        run(py, heavy(t), || t.unary(UnaryOp::LeakyRelu(negative_slope))).map(wrap)
    }
    /// GELU, exact (`approximate="none"`) or with the tanh approximation (`"tanh"`).
    #[pyo3(signature = (approximate="none"))]
    fn gelu(&self, py: Python<'_>, approximate: &str) -> PyResult<PyTensor> {
        let op = match approximate {
            "none" => UnaryOp::Gelu,
            "tanh" => UnaryOp::GeluTanh,
            o => {
                return Err(ArgumentError::new_err(format!(
                    "gelu: approximate must be 'none' or 'tanh', got '{o}'"
                )))
            }
        };
        let t = &self.t;
        run(py, heavy(t), || t.unary(op)).map(wrap)
    }
    /// Clamps into [min, max] (either bound may be None).
    #[pyo3(signature = (min=None, max=None))]
    pub(crate) fn clamp(
        &self,
        py: Python<'_>,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let t = &self.t;
        let (min, max) = (min.filter(|o| !o.is_none()), max.filter(|o| !o.is_none()));
        // numbers around a float tensor: the fused op (PyTorch's gradient at the bounds);
        // tensors, or an integer or bool tensor: max/min of the operands, so integers stay
        // exact and the dtype is the operands' promotion
        let number = |o: Option<&Bound<'_, PyAny>>| match o {
            None => Some(None),
            Some(o) if o.cast::<PyTensor>().is_err() => o.extract::<f64>().ok().map(Some),
            _ => None,
        };
        if t.dtype().is_float() {
            if let (Some(lo), Some(hi)) = (number(min), number(max)) {
                return run(py, heavy(t), || t.clamp(lo, hi)).map(wrap);
            }
        }
        let bound = |o: Option<&Bound<'_, PyAny>>| -> PyResult<Option<Tensor>> {
            match o {
                None => Ok(None),
                Some(o) => operand(o, t)?.map(Some).ok_or_else(|| {
                    PyTypeError::new_err(format!(
                        "clamp: bounds must be numbers or tensors, got {}",
                        o.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))
                }),
            }
        };
        let (lo, hi) = (bound(min)?, bound(max)?);
        run(py, heavy(t), || t.clamp_tensors(lo.as_ref(), hi.as_ref())).map(wrap)
    }
    /// `clamp`'s other name (PyTorch's and NumPy's).
    #[pyo3(signature = (min=None, max=None))]
    fn clip(
        &self,
        py: Python<'_>,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        self.clamp(py, min, max)
    }
}
