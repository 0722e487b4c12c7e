//! Elementwise unary ops and activations, each with a fused backward kernel.

use crate::autograd::record;
use crate::dtype::{DType, Float};
use crate::error::Result;
use crate::kernels;
use crate::storage::{try_vec, BufferElement};
use crate::tensor::Tensor;
use crate::threads;
use crate::{float_dispatch, value_err};

/// SELU's alpha (Klambauer et al. 2017).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's scale.
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const INV_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Unary ops with their parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// -x
    Neg,
    /// e^x
    Exp,
    /// ln x
    Log,
    /// sqrt x
    Sqrt,
    /// |x|
    Abs,
    /// tanh x
    Tanh,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// max(x, 0)
    Relu,
    /// scale * (x if x > 0 else alpha (e^x - 1))
    Selu,
    /// x if x > 0 else alpha (e^x - 1)
    Elu(f64),
    /// x if x > 0 else slope x
    LeakyRelu(f64),
    /// x Phi(x), exact (erf)
    Gelu,
    /// GELU's tanh approximation
    GeluTanh,
    /// min(max(x, lo), hi)
    Clamp(f64, f64),
}

impl UnaryOp {
    fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Selu => "selu",
            UnaryOp::Elu(_) => "elu",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Gelu | UnaryOp::GeluTanh => "gelu",
            UnaryOp::Clamp(..) => "clamp",
        }
    }

    fn backward_name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "NegBackward",
            UnaryOp::Exp => "ExpBackward",
            UnaryOp::Log => "LogBackward",
            UnaryOp::Sqrt => "SqrtBackward",
            UnaryOp::Abs => "AbsBackward",
            UnaryOp::Tanh => "TanhBackward",
            UnaryOp::Sigmoid => "SigmoidBackward",
            UnaryOp::Relu => "ReluBackward",
            UnaryOp::Selu => "SeluBackward",
            UnaryOp::Elu(_) => "EluBackward",
            UnaryOp::LeakyRelu(_) => "LeakyReluBackward",
            UnaryOp::Gelu | UnaryOp::GeluTanh => "GeluBackward",
            UnaryOp::Clamp(..) => "ClampBackward",
        }
    }
}

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    // two branches so that exp never overflows
    let one = T::one();
    if x >= T::zero() {
        one / (one + (-x).exp())
    } else {
        let e = x.exp();
        e / (one + e)
    }
}

fn forward<T: Float + BufferElement>(op: UnaryOp, x: &[T], out: &mut [T]) {
    let c = T::from_f64;
    match op {
        UnaryOp::Neg => kernels::map(x, out, |v: T| -v),
        UnaryOp::Exp => kernels::map(x, out, |v: T| v.exp()),
        UnaryOp::Log => kernels::map(x, out, |v: T| v.ln()),
        UnaryOp::Sqrt => kernels::map(x, out, |v: T| v.sqrt()),
        UnaryOp::Abs => kernels::map(x, out, |v: T| v.abs()),
        UnaryOp::Tanh => kernels::map(x, out, |v: T| v.tanh()),
        UnaryOp::Sigmoid => kernels::map(x, out, sigmoid::<T>),
        UnaryOp::Relu => kernels::map(x, out, |v: T| {
            if v > T::zero() || v.is_nan() {
                v
            } else {
                T::zero()
            }
        }),
        UnaryOp::Selu => {
            let (a, s) = (c(SELU_ALPHA), c(SELU_SCALE));
            kernels::map(x, out, move |v: T| {
                if v > T::zero() {
                    s * v
                } else {
                    s * a * (v.exp() - T::one())
                }
            })
        }
        UnaryOp::Elu(alpha) => {
            let a = c(alpha);
            kernels::map(x, out, move |v: T| {
                if v > T::zero() {
                    v
                } else {
                    a * (v.exp() - T::one())
                }
            })
        }
        UnaryOp::LeakyRelu(slope) => {
            let s = c(slope);
            kernels::map(x, out, move |v: T| if v > T::zero() { v } else { s * v })
        }
        UnaryOp::Gelu => {
            let (h, k) = (c(0.5), c(INV_SQRT_2));
            kernels::map(x, out, move |v: T| h * v * (T::one() + (v * k).erf()))
        }
        UnaryOp::GeluTanh => {
            let (h, k, q) = (c(0.5), c(SQRT_2_OVER_PI), c(0.044715));
            kernels::map(x, out, move |v: T| {
                h * v * (T::one() + (k * (v + q * v * v * v)).tanh())
            })
        }
        // PyTorch's clamp: min(max(x, lo), hi), so lo > hi gives hi; NaN propagates,
        // from x or from either bound
        UnaryOp::Clamp(lo, hi) if lo.is_nan() || hi.is_nan() => {
            let nan = c(f64::NAN);
            kernels::map(x, out, move |_: T| nan)
        }
        UnaryOp::Clamp(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            kernels::map(x, out, move |v: T| {
                let a = if v < lo { lo } else { v };
                if a > hi {
                    hi
                } else {
                    a
                }
            })
        }
    }
}

/// dx from the input x, the output y and the incoming gradient g.
fn backward<T: Float + BufferElement>(op: UnaryOp, x: &[T], y: &[T], g: &[T], out: &mut [T]) {
    let c = T::from_f64;
    let z = T::zero();
    match op {
        // d(-x) = -1
        UnaryOp::Neg => kernels::zip3_map(x, y, g, out, |_, _, g| -g),
        // d e^x = e^x
        UnaryOp::Exp => kernels::zip3_map(x, y, g, out, |_, y, g| g * y),
        // d ln x = 1/x
        UnaryOp::Log => kernels::zip3_map(x, y, g, out, |x, _, g| g / x),
        // d sqrt x = 1 / (2 sqrt x)
        UnaryOp::Sqrt => kernels::zip3_map(x, y, g, out, move |_, y, g| g / (y + y)),
        // d|x| = sign(x)
        UnaryOp::Abs => kernels::zip3_map(x, y, g, out, move |x, _, g| {
            if x > z {
                g
            } else if x < z {
                -g
            } else {
                z
            }
        }),
        // d tanh = 1 - tanh^2
        UnaryOp::Tanh => kernels::zip3_map(x, y, g, out, |_, y, g| g * (T::one() - y * y)),
        // d sigmoid = s (1 - s)
        UnaryOp::Sigmoid => kernels::zip3_map(x, y, g, out, |_, y, g| g * y * (T::one() - y)),
        // d relu = [x > 0]
        UnaryOp::Relu => kernels::zip3_map(x, y, g, out, move |x, _, g| if x > z { g } else { z }),
        // d selu = scale if x > 0 else y + scale alpha
        UnaryOp::Selu => {
            let (s, sa) = (c(SELU_SCALE), c(SELU_SCALE * SELU_ALPHA));
            kernels::zip3_map(
                x,
                y,
                g,
                out,
                move |x, y, g| if x > z { g * s } else { g * (y + sa) },
            )
        }
        // d elu = 1 if x > 0 else y + alpha
        UnaryOp::Elu(alpha) => {
            let a = c(alpha);
            kernels::zip3_map(
                x,
                y,
                g,
                out,
                move |x, y, g| if x > z { g } else { g * (y + a) },
            )
        }
        // d leaky = 1 if x > 0 else slope
        UnaryOp::LeakyRelu(slope) => {
            let s = c(slope);
            kernels::zip3_map(x, y, g, out, move |x, _, g| if x > z { g } else { g * s })
        }
        // d x Phi(x) = Phi(x) + x phi(x)
        UnaryOp::Gelu => {
            let (h, k, p) = (c(0.5), c(INV_SQRT_2), c(INV_SQRT_2PI));
            kernels::zip3_map(x, y, g, out, move |x, _, g| {
                g * (h * (T::one() + (x * k).erf()) + x * p * (-(h * x * x)).exp())
            })
        }
        // d 0.5 x (1 + tanh u) = 0.5 (1 + t) + 0.5 x (1 - t^2) u'
        UnaryOp::GeluTanh => {
            let (h, k, q, q3) = (c(0.5), c(SQRT_2_OVER_PI), c(0.044715), c(3.0 * 0.044715));
            kernels::zip3_map(x, y, g, out, move |x, _, g| {
                let t = (k * (x + q * x * x * x)).tanh();
                g * (h * (T::one() + t) + h * x * (T::one() - t * t) * k * (T::one() + q3 * x * x))
            })
        }
        // d clamp = [lo <= x <= hi]
        UnaryOp::Clamp(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            kernels::zip3_map(
                x,
                y,
                g,
                out,
                move |x, _, g| if x >= lo && x <= hi { g } else { z },
            )
        }
    }
}

pub(crate) fn run_forward<T: Float + BufferElement>(op: UnaryOp, t: &Tensor) -> Result<Tensor> {
    let n = t.numel();
    let mut out: Vec<T> = try_vec(n)?;
    out.resize(n, T::zero());
    t.with_contig(|x: &[T]| {
        threads::for_chunks(&mut out, |s, o| forward(op, &x[s..s + o.len()], o))
    })?;
    Tensor::from_vec(out, t.shape())
}

fn run_backward<T: Float + BufferElement>(
    op: UnaryOp,
    x: &Tensor,
    y: &Tensor,
    g: &Tensor,
) -> Result<Tensor> {
    let n = x.numel();
    let mut out: Vec<T> = try_vec(n)?;
    out.resize(n, T::zero());
    let g = g.cast(x.dtype())?;
    x.with_contig(|xs: &[T]| {
        y.with_contig(|ys: &[T]| {
            g.with_contig(|gs: &[T]| {
                threads::for_chunks(&mut out, |s, o| {
                    let e = s + o.len();
                    backward(op, &xs[s..e], &ys[s..e], &gs[s..e], o)
                })
            })
        })
    })???;
    Tensor::from_vec(out, x.shape())
}

/// The op's code and parameters in elementwise.wgsl.
#[cfg(feature = "gpu")]
pub(crate) fn gpu_code(op: UnaryOp) -> (u32, f32, f32) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::Exp => (1, 0.0, 0.0),
        UnaryOp::Log => (2, 0.0, 0.0),
        UnaryOp::Sqrt => (3, 0.0, 0.0),
        UnaryOp::Abs => (4, 0.0, 0.0),
        UnaryOp::Tanh => (5, 0.0, 0.0),
        UnaryOp::Sigmoid => (6, 0.0, 0.0),
        UnaryOp::Relu => (7, 0.0, 0.0),
        UnaryOp::Selu => (8, 0.0, 0.0),
        UnaryOp::Elu(a) => (9, a as f32, 0.0),
        UnaryOp::LeakyRelu(s) => (10, s as f32, 0.0),
        UnaryOp::GeluTanh => (11, 0.0, 0.0),
        UnaryOp::Clamp(lo, hi) => (12, lo as f32, hi as f32),
        UnaryOp::Gelu => (13, 0.0, 0.0),
    }
}

impl Tensor {
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

    /// Applies a unary op; integer inputs are promoted to float32 (except `neg`/`abs`).
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let x = match (op, self.dtype()) {
            (UnaryOp::Neg | UnaryOp::Abs, DType::I64) => {
                let v: Vec<i64> = self.to_vec()?;
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
                return Tensor::from_vec(v, self.shape());
            }
            (_, DType::I64 | DType::Bool) => self.cast(DType::F32)?,
            _ => self.clone(),
        };
        #[cfg(feature = "gpu")]
        if x.is_gpu() {
            let (code, a, b) = gpu_code(op);
            let out = super::gpu_ops::unary_code(op.name(), code, a, b, &x)?;
            let xs = x.detach();
            return Ok(record(out, op.backward_name(), &[&x], move |g| {
                Ok(vec![Some(super::gpu_ops::unary_backward_code(
                    code, a, b, &xs, g,
                )?)])
            }));
        }
        let out = float_dispatch!(x.dtype(), op.name(), T => run_forward::<T>(op, &x)?);
        if !(crate::autograd::is_grad_enabled() && x.requires_grad()) {
            return Ok(out);
        }
        let xs = x.detach();
        let ys = out.detach();
        Ok(record(out, op.backward_name(), &[&x], move |g| {
            let dx =
                float_dispatch!(xs.dtype(), op.name(), T => run_backward::<T>(op, &xs, &ys, g)?);
            Ok(vec![Some(dx)])
        }))
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
        #[cfg(feature = "gpu")]
        if y.is_gpu() {
            // the codes of unary_backward_main that read y: relu and leaky relu test y > 0
            // as x > 0; selu, tanh, sigmoid and elu have their own from-output forms
            let (code, alpha) = match op {
                UnaryOp::Relu => (7, 0.0),
                UnaryOp::LeakyRelu(s) => (10, s as f32),
                UnaryOp::Selu => (14, 0.0),
                UnaryOp::Tanh => (15, 0.0),
                UnaryOp::Sigmoid => (16, 0.0),
                UnaryOp::Elu(a) => (17, a as f32),
                _ => unreachable!("checked by fusable_activation"),
            };
            return super::gpu_ops::unary_backward_code(code, alpha, 0.0, y, g);
        }
        // the cpu kernels read x only through x > 0, which is y > 0 for these, and take the
        // rest from y
        float_dispatch!(y.dtype(), op.name(), T => run_backward::<T>(op, y, y, g))
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
