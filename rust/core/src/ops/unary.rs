//! Elementwise unary ops and activations: promotion, the device's kernel and the
//! derivative rule. The ops themselves (names, codes, formulas for both devices) are the
//! rows of the op table in `ops/table.rs`.

use crate::autograd::record_higher;
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::Tensor;
use crate::value_err;

pub use super::table::{UnaryOp, SELU_ALPHA, SELU_SCALE};
use super::table::{INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI, TWO_OVER_SQRT_PI};

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

/// Which of the input x and the output y the op's derivative reads, so a rule saves only
/// those (PyTorch's: writing into a sine's output after the sine is fine, into an
/// exponential's is not). The fusable activations read y alone (`act_backward_from_output`);
/// the others what their gradient formula in the op table names.
fn grad_reads(op: UnaryOp) -> (bool, bool) {
    if Tensor::fusable_activation(op) {
        return (false, true);
    }
    let code = op.code().0;
    let Some(info) = super::table::UNARY_OPS.iter().find(|i| i.code == code) else {
        return (true, true);
    };
    let names = |id: &str| {
        let f = info.wgsl_grad;
        f.match_indices(id).any(|(i, _)| {
            let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
            let before = f[..i].chars().next_back().is_none_or(|c| !word(c));
            let after = f[i + id.len()..].chars().next().is_none_or(|c| !word(c));
            before && after
        })
    };
    (names("x"), names("y"))
}

/// g * f'(x) for a fusable activation f in recorded ops of its output y = f(x) (which a
/// `create_graph` pass differentiates through): the derivatives read x only through x > 0,
/// which is y > 0, and the rest from y.
pub(crate) fn act_grad_from_output_recorded(op: UnaryOp, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    use crate::ops::CmpOp;
    let dt = y.dtype();
    let g = g.cast(dt)?;
    let k = |v: f64| Tensor::scalar(v, dt);
    let pos = || y.compare(CmpOp::Gt, &k(0.0));
    match op {
        UnaryOp::Relu => Tensor::where_(&pos()?, &g, &k(0.0)),
        UnaryOp::Tanh => g.mul(&k(1.0).sub(&y.square()?)?),
        UnaryOp::Sigmoid => g.mul(&y.mul(&k(1.0).sub(y)?)?),
        UnaryOp::Selu => Tensor::where_(
            &pos()?,
            &g.mul(&k(SELU_SCALE))?,
            &g.mul(&y.add(&k(SELU_SCALE * SELU_ALPHA))?)?,
        ),
        UnaryOp::Elu(a) if a > 0.0 => Tensor::where_(&pos()?, &g, &g.mul(&y.add(&k(a))?)?),
        UnaryOp::LeakyRelu(s) if s >= 0.0 => Tensor::where_(&pos()?, &g, &g.mul(&k(s))?),
        _ => Err(crate::value_err!(
            "linear: activation {} has no derivative from its output",
            op.name()
        )),
    }
}

/// g * op'(x) in recorded tensor ops (for a `create_graph` pass, where the derivative must
/// itself be differentiable): the op table's gradient formulas, written with the ops.
/// Equal to the kernel's `unary_grad` up to rounding.
pub(crate) fn unary_grad_recorded(op: UnaryOp, x: &Tensor, g: &Tensor) -> Result<Tensor> {
    use crate::ops::CmpOp;
    use UnaryOp as U;
    let g = g.cast(x.dtype())?;
    let dt = x.dtype();
    let k = |v: f64| Tensor::scalar(v, dt);
    let u = |o: UnaryOp| x.unary(o);
    let cmp = |o: CmpOp, v: f64| x.compare(o, &k(v));
    let zero = k(0.0);
    // g where `keep`, 0 elsewhere (the mask is not differentiated)
    let gate = |keep: Tensor, v: &Tensor| Tensor::where_(&keep, v, &zero);
    let pos = || cmp(CmpOp::Gt, 0.0);
    let d = match op {
        U::Neg => return g.neg(),
        U::Frac | U::ToHalf | U::ToBfloat16 => return Ok(g),
        U::Floor | U::Ceil | U::Round | U::Trunc | U::Truth => {
            return Tensor::full(g.shape(), 0.0, dt)?.to_device(g.device())
        }
        U::Relu => return gate(pos()?, &g),
        U::Clamp(lo, hi) => {
            return gate(
                cmp(CmpOp::Ge, lo)?.logical(crate::ops::LogicOp::And, &cmp(CmpOp::Le, hi)?)?,
                &g,
            )
        }
        U::Relu6 => {
            return gate(
                cmp(CmpOp::Gt, 0.0)?.logical(crate::ops::LogicOp::And, &cmp(CmpOp::Lt, 6.0)?)?,
                &g,
            )
        }
        U::Hardtanh(lo, hi) => {
            return gate(
                cmp(CmpOp::Gt, lo)?.logical(crate::ops::LogicOp::And, &cmp(CmpOp::Lt, hi)?)?,
                &g,
            )
        }
        U::Hardsigmoid => {
            let inside =
                cmp(CmpOp::Gt, -3.0)?.logical(crate::ops::LogicOp::And, &cmp(CmpOp::Lt, 3.0)?)?;
            return gate(inside, &g.div(&k(6.0))?);
        }
        U::Hardswish => {
            let mid = g.mul(&x.div(&k(3.0))?.add(&k(0.5))?)?;
            let upper = Tensor::where_(&cmp(CmpOp::Lt, 3.0)?, &mid, &g)?;
            return gate(cmp(CmpOp::Gt, -3.0)?, &upper);
        }
        U::LeakyRelu(slope) => return Tensor::where_(&pos()?, &g, &g.mul(&k(slope))?),
        U::Elu(alpha) => return Tensor::where_(&pos()?, &g, &g.mul(&u(U::Exp)?.mul(&k(alpha))?)?),
        U::Celu(alpha) => {
            return Tensor::where_(&pos()?, &g, &g.mul(&x.div(&k(alpha))?.unary(U::Exp)?)?)
        }
        U::Selu => {
            let neg = g.mul(&u(U::Exp)?.mul(&k(SELU_SCALE * SELU_ALPHA))?)?;
            return Tensor::where_(&pos()?, &g.mul(&k(SELU_SCALE))?, &neg);
        }
        U::Softplus(beta, threshold) => {
            let xb = x.mul(&k(beta))?;
            let soft = g.mul(&xb.unary(U::Sigmoid)?)?;
            return Tensor::where_(&xb.compare(CmpOp::Gt, &k(threshold))?, &g, &soft);
        }
        U::Abs => return gate(x.compare(CmpOp::Ne, &zero)?, &g.mul(&x.sign()?)?),
        U::Exp => u(U::Exp)?,
        U::Expm1 => u(U::Exp)?,
        U::Log => return g.div(x),
        U::Sqrt => return g.div(&u(U::Sqrt)?.mul(&k(2.0))?),
        U::Tanh => k(1.0).sub(&u(U::Tanh)?.square()?)?,
        U::Sigmoid => {
            let s = u(U::Sigmoid)?;
            s.mul(&k(1.0).sub(&s)?)?
        }
        U::GeluTanh => {
            let (kk, q) = (SQRT_2_OVER_PI, 0.044715);
            let x2 = x.square()?;
            let t = x
                .add(&x2.mul(x)?.mul(&k(q))?)?
                .mul(&k(kk))?
                .unary(U::Tanh)?;
            let left = k(1.0).add(&t)?.mul(&k(0.5))?;
            let right = x
                .mul(&k(0.5))?
                .mul(&k(1.0).sub(&t.square()?)?)?
                .mul(&k(1.0).add(&x2.mul(&k(3.0 * q))?)?.mul(&k(kk))?)?;
            left.add(&right)?
        }
        U::Gelu => {
            let cdf = k(1.0)
                .add(&x.mul(&k(INV_SQRT_2))?.unary(U::Erf)?)?
                .mul(&k(0.5))?;
            let pdf = x
                .square()?
                .mul(&k(-0.5))?
                .unary(U::Exp)?
                .mul(&k(INV_SQRT_2PI))?;
            cdf.add(&x.mul(&pdf)?)?
        }
        U::Silu => {
            let s = u(U::Sigmoid)?;
            s.mul(&k(1.0).add(&x.mul(&k(1.0).sub(&s)?)?)?)?
        }
        U::Mish => {
            let t = u(U::Softplus(1.0, 20.0))?.unary(U::Tanh)?;
            t.add(&x.mul(&u(U::Sigmoid)?)?.mul(&k(1.0).sub(&t.square()?)?)?)?
        }
        U::Logsigmoid => x.neg()?.unary(U::Sigmoid)?,
        U::Softsign => return g.div(&k(1.0).add(&u(U::Abs)?)?.square()?),
        U::Sin => u(U::Cos)?,
        U::Cos => u(U::Sin)?.neg()?,
        U::Tan => k(1.0).add(&u(U::Tan)?.square()?)?,
        U::Asin => return g.div(&k(1.0).sub(&x.square()?)?.unary(U::Sqrt)?),
        U::Acos => return g.div(&k(1.0).sub(&x.square()?)?.unary(U::Sqrt)?)?.neg(),
        U::Atan => return g.div(&k(1.0).add(&x.square()?)?),
        U::Sinh => u(U::Cosh)?,
        U::Cosh => u(U::Sinh)?,
        U::Asinh => return g.div(&x.square()?.add(&k(1.0))?.unary(U::Sqrt)?),
        U::Acosh => return g.div(&x.sub(&k(1.0))?.mul(&x.add(&k(1.0))?)?.unary(U::Sqrt)?),
        U::Atanh => return g.div(&k(1.0).sub(&x.square()?)?),
        U::Erf => x
            .square()?
            .neg()?
            .unary(U::Exp)?
            .mul(&k(TWO_OVER_SQRT_PI))?,
        U::Exp2 => u(U::Exp2)?.mul(&k(std::f64::consts::LN_2))?,
        U::Log2 => return g.div(&x.mul(&k(std::f64::consts::LN_2))?),
        U::Log10 => return g.div(&x.mul(&k(std::f64::consts::LN_10))?),
        U::Log1p => return g.div(&x.add(&k(1.0))?),
    };
    g.mul(&d)
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
        let (xs, ys) = (x.saved_input(), out.detach());
        // the version check covers what the derivative reads; a create_graph pass takes
        // the same formula in recorded ops of the input, so it checks x itself there
        let (reads_x, reads_y) = grad_reads(op);
        let mut saved = crate::autograd::Saved::new();
        if reads_x {
            saved.push(xs.clone());
        }
        if reads_y {
            saved.push(ys.clone());
        }
        let xv = x.version();
        Ok(record_higher(
            out,
            op.backward_name(),
            &[x],
            saved,
            move |g| {
                if crate::autograd::creating_graph() {
                    crate::autograd::check_saved(op.backward_name(), &xs, xv)?;
                    return Ok(vec![Some(unary_grad_recorded(op, &xs, g)?)]);
                }
                Ok(vec![Some(match reads_x {
                    // x > 0 iff y > 0 for these: the rule from the output alone
                    false if Tensor::fusable_activation(op) => {
                        Tensor::act_backward_from_output(op, &ys, g)?
                    }
                    // the kernel reads x's memory but not its values (the formula names y only)
                    _ => unary_grad(op, &xs, Some(&ys), g)?,
                })])
            },
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
