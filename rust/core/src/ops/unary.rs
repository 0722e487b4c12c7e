//! Elementwise unary ops and activations: promotion, the device's kernel and the
//! derivative rule. The ops themselves (names, codes, formulas for both devices) are the
//! rows of the op table in `ops/table.rs`.

use crate::autograd::record_saving;
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::Tensor;
use crate::value_err;

pub use super::table::{UnaryOp, SELU_ALPHA, SELU_SCALE};

/// g * op'(x) for x, its output y (None: y is x) and the incoming gradient, on their
/// device; g is cast to x's dtype first.
fn unary_grad(op: UnaryOp, x: &Tensor, y: Option<&Tensor>, g: &Tensor) -> Result<Tensor> {
    let g = g.cast(x.dtype())?;
    let y = y.map(|y| (y.storage_guard(), y.layout().clone()));
    let gg = g.storage_guard();
    x.map_storage(|b, l| {
        let yb = y.as_ref().map(|(guard, yl)| (&**guard, yl));
        b.unary_grad(l, yb, (&gg, g.layout()), op)
    })
}

impl Tensor {
    /// 1 / sqrt(x), elementwise (float32 for integer tensors).
    pub fn rsqrt(&self) -> Result<Tensor> {
        let r = self.unary(UnaryOp::Sqrt)?;
        Tensor::scalar(1.0, r.dtype()).div(&r)
    }

    /// 1 / x, elementwise (float32 for integer tensors).
    pub fn reciprocal(&self) -> Result<Tensor> {
        let dt = if self.dtype().is_float() {
            self.dtype()
        } else {
            DType::F32
        };
        Tensor::scalar(1.0, dt).div(self)
    }

    /// x * x, elementwise (in the tensor's own dtype, as PyTorch).
    pub fn square(&self) -> Result<Tensor> {
        self.mul(self)
    }

    /// Clamps into [min, max] given as tensors (broadcast against this one), as PyTorch's
    /// `clamp` with tensor or integer bounds: max(x, min) then min(., max), with the
    /// dtype the operands promote to (an integer tensor and integer bounds stay integers,
    /// exactly; a bool tensor becomes int64), so min > max gives max and NaN propagates.
    pub fn clamp_tensors(&self, min: Option<&Tensor>, max: Option<&Tensor>) -> Result<Tensor> {
        if min.is_none() && max.is_none() {
            return Err(value_err!(
                "clamp: at least one of min and max must be given"
            ));
        }
        let mut y = self.clone();
        if y.dtype() == DType::Bool {
            // a float bound decides a float result (kept on the tensor's device); integer
            // bounds an int64 one
            let float = [min, max]
                .into_iter()
                .flatten()
                .find(|t| t.dtype().is_float());
            y = y.cast(float.map_or(DType::I64, |t| t.dtype()))?;
        }
        if let Some(lo) = min {
            y = y.maximum(lo)?;
        }
        if let Some(hi) = max {
            y = y.minimum(hi)?;
        }
        Ok(y)
    }

    /// Clamps into [min, max] as PyTorch does: either bound may be absent (not both), min >
    /// max gives max everywhere, and a NaN bound or element gives NaN.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        if min.is_none() && max.is_none() {
            return Err(value_err!(
                "clamp: at least one of min and max must be given"
            ));
        }
        self.unary(UnaryOp::Clamp(
            min.unwrap_or(f64::NEG_INFINITY),
            max.unwrap_or(f64::INFINITY),
        ))
    }

    /// Applies a unary op; integer inputs are promoted to float32 (except `neg`/`abs`,
    /// and the rounding ops, which keep integers as they are).
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let promoted;
        let x: &Tensor = match (op, self.dtype()) {
            (UnaryOp::Neg | UnaryOp::Abs, d) if d.is_int() => {
                let v: Vec<i64> = self.cast(DType::I64)?.to_vec()?;
                let v: Vec<i64> = v
                    .into_iter()
                    .map(|a| {
                        if op == UnaryOp::Neg {
                            a.wrapping_neg()
                        } else {
                            a.wrapping_abs()
                        }
                    })
                    .collect();
                // wrapped back: -x of a uint8 is 256 - x, as PyTorch's
                return Tensor::from_vec(v, self.shape())?.cast(d);
            }
            // relu of integers is their max with 0, in their dtype (PyTorch's)
            (UnaryOp::Relu, d) if d.is_int() => {
                return self.maximum(&Tensor::from_vec(vec![0i64], &[])?);
            }
            // integer-valued ops keep integers as they are (a copy, as PyTorch's)
            (UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round | UnaryOp::Trunc, d) if d.is_int() => {
                return self.copy_data()
            }
            (_, d) if !d.is_float() => {
                promoted = self.cast(DType::F32)?;
                &promoted
            }
            // borrowed, not cloned: a handle's clone and drop are two atomics per op
            _ => self,
        };
        let out = x.map_storage(|b, l| b.unary(l, op))?;
        if !(crate::autograd::is_grad_enabled() && x.requires_grad()) {
            return Ok(out);
        }
        let (xs, ys) = (x.detach(), out.detach());
        // the derivative kernels read both the input and the output
        Ok(record_saving(
            out,
            op.backward_name(),
            &[x],
            smallvec::smallvec![xs.clone(), ys.clone()],
            move |g| Ok(vec![Some(unary_grad(op, &xs, Some(&ys), g)?)]),
        ))
    }

    /// Whether `op` can be fused into a matrix product's epilogue: its derivative must be a
    /// function of its output (no pre-activation is kept). True for relu, selu, tanh,
    /// sigmoid, elu with alpha > 0 and leaky relu with a slope >= 0 (for those, x > 0 iff
    /// y > 0); gelu's derivative needs x.
    pub fn fusable_activation(op: UnaryOp) -> bool {
        match op {
            UnaryOp::Relu | UnaryOp::Selu | UnaryOp::Tanh | UnaryOp::Sigmoid => true,
            UnaryOp::Elu(a) => a > 0.0,
            UnaryOp::LeakyRelu(s) => s >= 0.0,
            _ => false,
        }
    }

    /// g * f'(x) for a fusable activation, computed from the output y = f(x) alone (the
    /// backward of an activation fused into a matrix product, which keeps no pre-activation).
    pub(crate) fn act_backward_from_output(op: UnaryOp, y: &Tensor, g: &Tensor) -> Result<Tensor> {
        if !Tensor::fusable_activation(op) {
            return Err(value_err!(
                "linear: activation {} cannot be fused",
                op.name()
            ));
        }
        // the table's rules for these read x only through x > 0, which is y > 0, and take
        // the rest from y: the rule of the unfused op, with x = y
        unary_grad(op, y, None, g)
    }

    /// -x
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    /// e^x
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    /// natural log
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    /// square root
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    /// absolute value
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    /// hyperbolic tangent
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    /// logistic sigmoid
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    /// rectified linear unit
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    /// scaled exponential linear unit
    pub fn selu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Selu)
    }
}
