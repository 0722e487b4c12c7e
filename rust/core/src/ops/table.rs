//! The op table: every elementwise unary op and activation, named once.
//!
//! Each row gives the op's variant (with its parameters and their defaults), its code in
//! the WGSL kernels, its user-facing name, and its formulas side by side: the forward and
//! the derivative for the CPU (Rust, generic over f32/f64) and for the GPU (WGSL). Both
//! derivatives are the same rule, written from the same values: the input `x`, the output
//! `y` and the incoming gradient `g`, so a rule may use whichever is cheaper and the two
//! devices cannot drift apart. `gx` returns the whole `g * f'(x)`, not `f'(x)`, so a
//! piecewise rule can return 0 where PyTorch's does (even for a NaN `g`).
//!
//! From this table come: the `UnaryOp` enum, its names and parsing, the CPU kernels
//! (`cpu_forward`/`cpu_backward`, one vectorizable loop per op), and
//! `shaders/generated/elementwise_ops.wgsl` (named constants, `unary_fwd`, `unary_grad`),
//! which a test keeps current (`FERROGRAD_BLESS=1 cargo test -p ferrograd-core` rewrites
//! it). Adding an op is one row here; see CONTRIBUTING.md for the rest (binding, stub,
//! test row).

use crate::dtype::Float;
use crate::error::Result;
use crate::kernels;
use crate::value_err;

/// SELU's alpha (Klambauer et al. 2017).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's scale.
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
pub(crate) const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
pub(crate) const INV_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
pub(crate) const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
pub(crate) const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// A constant in the element type (the table's formulas are generic over f32/f64).
#[inline(always)]
fn c<T: Float>(v: f64) -> T {
    T::from_f64(v)
}

/// Logistic sigmoid from e^-|x|, so that exp never overflows; one exp and two selects,
/// so the loop vectorizes (two exp branches did not: 15 ns an element).
#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    let one = T::one();
    let e = (-x.abs()).exp();
    let d = one + e;
    if x >= T::zero() {
        one / d
    } else {
        e / d
    }
}

/// log(1 + e^x) with PyTorch's threshold: x itself once beta x passes it.
#[inline(always)]
fn softplus<T: Float>(x: T, beta: T, threshold: T) -> T {
    if x * beta > threshold {
        x
    } else {
        (x * beta).exp().ln_1p() / beta
    }
}

/// x clamped into [lo, hi], NaN kept.
#[inline(always)]
fn clip<T: Float>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

macro_rules! unary_table {
    (@ty $p:ident) => { f64 };
    ($(
        $(#[doc = $doc:literal])*
        $var:ident $(( $($p:ident $(= $def:literal)?),+ ))? => $code:literal, $name:literal,
            cpu $x:ident => $fwd:expr, ($gx:ident, $gy:ident, $gg:ident) => $der:expr;
            wgsl $wfwd:literal, $wder:literal;
    )*) => {
        /// Elementwise unary ops and activations with their parameters (the op table).
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum UnaryOp {
            $( $(#[doc = $doc])* $var $(( $(unary_table!(@ty $p)),+ ))?, )*
        }

        /// One row of the op table as data (for the bindings, the tests and the WGSL
        /// generator): name, WGSL code, parameter names with their defaults (None: required).
        #[derive(Debug, Clone, Copy)]
        pub struct UnaryInfo {
            /// the op's name, as users call it
            pub name: &'static str,
            /// the enum variant's name
            pub variant: &'static str,
            /// its code in the WGSL kernels
            pub code: u32,
            /// parameter names and defaults
            pub params: &'static [(&'static str, Option<f64>)],
            /// the WGSL forward, an expression of x (and the parameters)
            pub wgsl_forward: &'static str,
            /// the WGSL gradient, an expression of x, y, g (and the parameters)
            pub wgsl_grad: &'static str,
        }

        /// Every row of the op table, in code order.
        pub const UNARY_OPS: &[UnaryInfo] = &[
            $( UnaryInfo {
                name: $name,
                variant: stringify!($var),
                code: $code,
                params: &[$($( (stringify!($p), unary_table!(@def $($def)?)) ),+)?],
                wgsl_forward: $wfwd,
                wgsl_grad: $wder,
            }, )*
        ];

        impl UnaryOp {
            /// The op's name, as users call it.
            pub fn name(self) -> &'static str {
                match self { $( UnaryOp::$var $(( $(unary_table!(@us $p)),+ ))? => $name, )* }
            }

            /// The autograd node's name.
            pub fn backward_name(self) -> &'static str {
                match self {
                    $( UnaryOp::$var $(( $(unary_table!(@us $p)),+ ))? =>
                        concat!(stringify!($var), "Backward"), )*
                }
            }

            /// The op's code in the WGSL kernels and its two parameters.
            pub fn code(self) -> (u32, f32, f32) {
                match self {
                    $( UnaryOp::$var $(( $($p),+ ))? => {
                        #[allow(unused_mut)]
                        let mut ps = [0.0f32; 2];
                        $( let mut _i = 0; $( ps[_i] = $p as f32; _i += 1; )+ )?
                        ($code, ps[0], ps[1])
                    } )*
                }
            }

            /// The op named `name` with `params` (None takes the default). Unknown names
            /// and missing parameters are ValueErrors.
            pub fn from_name(name: &str, params: &[Option<f64>]) -> Result<UnaryOp> {
                match name {
                    $( $name => {
                        #[allow(unused_mut, unused_variables)]
                        let mut it = params.iter().copied().chain(std::iter::repeat(None));
                        Ok(UnaryOp::$var $(( $( {
                            let d: Option<f64> = unary_table!(@def $($def)?);
                            it.next().flatten().or(d).ok_or_else(|| value_err!(
                                "{}: the parameter {} is required", $name, stringify!($p)))?
                        } ),+ ))?)
                    } )*
                    other => Err(value_err!("unknown elementwise op {other:?}")),
                }
            }
        }

        /// y = op(x) over contiguous slices (one loop per op, so each vectorizes).
        pub(crate) fn cpu_forward<T: Float>(op: UnaryOp, x: &[T], out: &mut [std::mem::MaybeUninit<T>]) {
            match op {
                $( UnaryOp::$var $(( $($p),+ ))? => {
                    $($( let $p: T = c($p); )+)?
                    kernels::map(x, out, move |$x: T| -> T { $fwd })
                } )*
            }
        }

        /// dx = g f'(x) from x, y and g (contiguous slices of one length).
        pub(crate) fn cpu_backward<T: Float>(op: UnaryOp, x: &[T], y: &[T], g: &[T], out: &mut [std::mem::MaybeUninit<T>]) {
            match op {
                $( UnaryOp::$var $(( $($p),+ ))? => {
                    $($( let $p: T = c($p); )+)?
                    kernels::zip3_map(x, y, g, out, move |$gx: T, $gy: T, $gg: T| -> T {
                        let _ = ($gx, $gy, $gg);
                        $der
                    })
                } )*
            }
        }
    };
    (@def) => { None };
    (@def $e:literal) => { Some($e) };
    (@us $p:ident) => { _ };
}

// The rows. `cpu x => forward, (x, y, g) => gradient; wgsl "forward", "gradient";` WGSL
// formulas see x, y, g, the parameters by name, and the helpers of common.wgsl. NaN must
// propagate as on the CPU: WGSL lets a compiler assume floats are never NaN, so the
// clamping ops test is_nan explicitly.
unary_table! {
    /// -x
    Neg => 0, "neg",
        cpu x => -x, (x, y, g) => -g;
        wgsl "-x", "-g";
    /// e^x
    Exp => 1, "exp",
        cpu x => x.exp(), (x, y, g) => g * y;
        wgsl "exp(x)", "g * y";
    /// natural log
    Log => 2, "log",
        cpu x => x.ln(), (x, y, g) => g / x;
        wgsl "log(x)", "g / x";
    /// square root
    Sqrt => 3, "sqrt",
        cpu x => x.sqrt(), (x, y, g) => g / (y + y);
        wgsl "sqrt(x)", "g / (y + y)";
    /// |x|; the gradient is sign(x) (0 at 0)
    Abs => 4, "abs",
        cpu x => x.abs(), (x, y, g) => if x > c(0.0) { g } else if x < c(0.0) { -g } else { c(0.0) };
        wgsl "abs(x)", "select(select(0.0, -g, x < 0.0), g, x > 0.0)";
    /// hyperbolic tangent
    Tanh => 5, "tanh",
        cpu x => x.tanh(), (x, y, g) => g * (c::<T>(1.0) - y * y);
        wgsl "safe_tanh(x)", "g * (1.0 - y * y)";
    /// 1 / (1 + e^-x)
    Sigmoid => 6, "sigmoid",
        cpu x => sigmoid(x), (x, y, g) => g * y * (c::<T>(1.0) - y);
        wgsl "sigmoid(x)", "g * y * (1.0 - y)";
    /// max(x, 0), NaN kept; the gradient reads x only through x > 0
    Relu => 7, "relu",
        cpu x => if x > c(0.0) || x.is_nan() { x } else { c(0.0) }, (x, y, g) => if x > c(0.0) { g } else { c(0.0) };
        wgsl "select(0.0, x, x > 0.0 || is_nan(x))", "select(0.0, g, x > 0.0)";
    /// scale (x if x > 0 else alpha (e^x - 1))
    Selu => 8, "selu",
        cpu x => if x > c(0.0) { c::<T>(SELU_SCALE) * x } else { c::<T>(SELU_SCALE * SELU_ALPHA) * (x.exp() - c(1.0)) },
            (x, y, g) => if x > c(0.0) { g * c(SELU_SCALE) } else { g * (y + c(SELU_SCALE * SELU_ALPHA)) };
        wgsl "select(SELU_SCALE * SELU_ALPHA * (exp(x) - 1.0), SELU_SCALE * x, x > 0.0)",
            "select(g * (y + SELU_SCALE * SELU_ALPHA), g * SELU_SCALE, x > 0.0)";
    /// x if x > 0 else alpha (e^x - 1)
    Elu(alpha = 1.0) => 9, "elu",
        cpu x => if x > c(0.0) { x } else { alpha * (x.exp() - c(1.0)) }, (x, y, g) => if x > c(0.0) { g } else { g * (y + alpha) };
        wgsl "select(alpha * (exp(x) - 1.0), x, x > 0.0)", "select(g * (y + alpha), g, x > 0.0)";
    /// x if x > 0 else slope x
    LeakyRelu(slope = 0.01) => 10, "leaky_relu",
        cpu x => if x > c(0.0) { x } else { slope * x }, (x, y, g) => if x > c(0.0) { g } else { g * slope };
        wgsl "select(slope * x, x, x > 0.0)", "select(g * slope, g, x > 0.0)";
    /// GELU's tanh approximation
    GeluTanh => 11, "gelu_tanh",
        cpu x => c::<T>(0.5) * x * (c::<T>(1.0) + (c::<T>(SQRT_2_OVER_PI) * (x + c::<T>(0.044715) * x * x * x)).tanh()),
            (x, y, g) => {
                let (k, q) = (c::<T>(SQRT_2_OVER_PI), c::<T>(0.044715));
                let t = (k * (x + q * x * x * x)).tanh();
                g * (c::<T>(0.5) * (c::<T>(1.0) + t)
                    + c::<T>(0.5) * x * (c::<T>(1.0) - t * t) * k * (c::<T>(1.0) + c::<T>(3.0) * q * x * x))
            };
        wgsl "0.5 * x * (1.0 + safe_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
            "g * gelu_tanh_grad(x)";
    /// min(max(x, min), max) as PyTorch's clamp: min > max gives max; a NaN bound gives NaN
    Clamp(lo, hi) => 12, "clamp",
        cpu x => if lo.is_nan() || hi.is_nan() { lo + hi } else {
                let a = if x < lo { lo } else { x };
                if a > hi { hi } else { a }
            },
            (x, y, g) => if x >= lo && x <= hi { g } else { c(0.0) };
        wgsl "clamp_f(x, lo, hi)", "select(0.0, g, x >= lo && x <= hi)";
    /// x Phi(x), exact (erf)
    Gelu => 13, "gelu",
        cpu x => c::<T>(0.5) * x * (c::<T>(1.0) + (x * c::<T>(INV_SQRT_2)).erf()),
            (x, y, g) => g * (c::<T>(0.5) * (c::<T>(1.0) + (x * c::<T>(INV_SQRT_2)).erf())
                + x * c::<T>(INV_SQRT_2PI) * (-(c::<T>(0.5) * x * x)).exp());
        wgsl "0.5 * x * (1.0 + erf_f(x * 0.7071067811865476))",
            "g * (0.5 * (1.0 + erf_f(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x))";
    /// sine
    Sin => 20, "sin",
        cpu x => x.sin(), (x, y, g) => g * x.cos();
        wgsl "sin(x)", "g * cos(x)";
    /// cosine
    Cos => 21, "cos",
        cpu x => x.cos(), (x, y, g) => -g * x.sin();
        wgsl "cos(x)", "-g * sin(x)";
    /// tangent
    Tan => 22, "tan",
        cpu x => x.tan(), (x, y, g) => g * (c::<T>(1.0) + y * y);
        wgsl "tan(x)", "g * (1.0 + y * y)";
    /// arcsine
    Asin => 23, "asin",
        cpu x => x.asin(), (x, y, g) => g / (c::<T>(1.0) - x * x).sqrt();
        wgsl "asin_f(x)", "g / sqrt(1.0 - x * x)";
    /// arccosine
    Acos => 24, "acos",
        cpu x => x.acos(), (x, y, g) => -g / (c::<T>(1.0) - x * x).sqrt();
        wgsl "acos_f(x)", "-g / sqrt(1.0 - x * x)";
    /// arctangent
    Atan => 25, "atan",
        cpu x => x.atan(), (x, y, g) => g / (c::<T>(1.0) + x * x);
        wgsl "atan_f(x)", "g / (1.0 + x * x)";
    /// hyperbolic sine
    Sinh => 26, "sinh",
        cpu x => x.sinh(), (x, y, g) => g * x.cosh();
        wgsl "sinh_f(x)", "g * cosh_f(x)";
    /// hyperbolic cosine
    Cosh => 27, "cosh",
        cpu x => x.cosh(), (x, y, g) => g * x.sinh();
        wgsl "cosh_f(x)", "g * sinh_f(x)";
    /// inverse hyperbolic sine
    Asinh => 28, "asinh",
        cpu x => x.asinh(), (x, y, g) => g / (x * x + c(1.0)).sqrt();
        wgsl "asinh_f(x)", "g / sqrt(x * x + 1.0)";
    /// inverse hyperbolic cosine
    Acosh => 29, "acosh",
        cpu x => x.acosh(), (x, y, g) => g / ((x - c(1.0)) * (x + c(1.0))).sqrt();
        wgsl "acosh_f(x)", "g / sqrt((x - 1.0) * (x + 1.0))";
    /// inverse hyperbolic tangent
    Atanh => 30, "atanh",
        cpu x => x.atanh(), (x, y, g) => g / (c::<T>(1.0) - x * x);
        wgsl "atanh_f(x)", "g / (1.0 - x * x)";
    /// the error function
    Erf => 31, "erf",
        cpu x => x.erf(), (x, y, g) => g * c::<T>(TWO_OVER_SQRT_PI) * (-(x * x)).exp();
        wgsl "erf_f(x)", "g * 1.1283791670955126 * exp(-x * x)";
    /// 2^x
    Exp2 => 32, "exp2",
        cpu x => x.exp2(), (x, y, g) => g * y * c(std::f64::consts::LN_2);
        wgsl "exp2(x)", "g * y * 0.6931471805599453";
    /// log base 2
    Log2 => 33, "log2",
        cpu x => x.log2(), (x, y, g) => g / (x * c(std::f64::consts::LN_2));
        wgsl "log2(x)", "g / (x * 0.6931471805599453)";
    /// log base 10
    Log10 => 34, "log10",
        cpu x => x.log10(), (x, y, g) => g / (x * c(std::f64::consts::LN_10));
        wgsl "log2(x) * 0.30102999566398120", "g / (x * 2.302585092994046)";
    /// log(1 + x), accurate near 0
    Log1p => 35, "log1p",
        cpu x => x.ln_1p(), (x, y, g) => g / (x + c(1.0));
        wgsl "log1p_f(x)", "g / (x + 1.0)";
    /// e^x - 1, accurate near 0
    Expm1 => 36, "expm1",
        cpu x => x.exp_m1(), (x, y, g) => g * (y + c(1.0));
        wgsl "expm1_f(x)", "g * (y + 1.0)";
    /// round down (zero gradient, as PyTorch)
    Floor => 37, "floor",
        cpu x => x.floor(), (x, y, g) => c(0.0);
        wgsl "floor(x)", "0.0";
    /// round up (zero gradient)
    Ceil => 38, "ceil",
        cpu x => x.ceil(), (x, y, g) => c(0.0);
        wgsl "ceil(x)", "0.0";
    /// round half to even (zero gradient)
    Round => 39, "round",
        cpu x => x.round_even(), (x, y, g) => c(0.0);
        wgsl "round(x)", "0.0";
    /// round toward zero (zero gradient)
    Trunc => 40, "trunc",
        cpu x => x.trunc(), (x, y, g) => c(0.0);
        wgsl "trunc(x)", "0.0";
    /// x - trunc(x)
    Frac => 41, "frac",
        cpu x => x - x.trunc(), (x, y, g) => g;
        wgsl "x - trunc(x)", "g";
    /// log(1 + e^(beta x)) / beta, x itself where beta x > threshold
    Softplus(beta = 1.0, threshold = 20.0) => 42, "softplus",
        cpu x => softplus(x, beta, threshold),
            (x, y, g) => if x * beta > threshold { g } else { g * sigmoid(x * beta) };
        wgsl "softplus_f(x, beta, threshold)", "select(g * sigmoid(x * beta), g, x * beta > threshold)";
    /// x sigmoid(x)
    Silu => 43, "silu",
        cpu x => x * sigmoid(x), (x, y, g) => { let s = sigmoid(x); g * s * (c::<T>(1.0) + x * (c::<T>(1.0) - s)) };
        wgsl "x * sigmoid(x)", "g * sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x)))";
    /// x tanh(softplus(x))
    Mish => 44, "mish",
        cpu x => x * softplus(x, c(1.0), c(20.0)).tanh(),
            (x, y, g) => {
                let t = softplus(x, c(1.0), c(20.0)).tanh();
                g * (t + x * sigmoid(x) * (c::<T>(1.0) - t * t))
            };
        wgsl "x * safe_tanh(softplus_f(x, 1.0, 20.0))", "g * mish_grad(x)";
    /// x relu6(x + 3) / 6
    Hardswish => 45, "hardswish",
        cpu x => x * clip(x + c(3.0), c(0.0), c(6.0)) / c(6.0),
            (x, y, g) => if x <= c(-3.0) { c(0.0) } else if x < c(3.0) { g * (x / c(3.0) + c(0.5)) } else { g };
        wgsl "x * clamp_f(x + 3.0, 0.0, 6.0) / 6.0",
            "select(select(g, g * (x / 3.0 + 0.5), x < 3.0), 0.0, x <= -3.0)";
    /// relu6(x + 3) / 6
    Hardsigmoid => 46, "hardsigmoid",
        cpu x => clip(x + c(3.0), c(0.0), c(6.0)) / c(6.0),
            (x, y, g) => if x > c(-3.0) && x < c(3.0) { g / c(6.0) } else { c(0.0) };
        wgsl "clamp_f(x + 3.0, 0.0, 6.0) / 6.0", "select(0.0, g / 6.0, x > -3.0 && x < 3.0)";
    /// min(max(x, 0), 6)
    Relu6 => 47, "relu6",
        cpu x => clip(x, c(0.0), c(6.0)), (x, y, g) => if x <= c(0.0) || x >= c(6.0) { c(0.0) } else { g };
        wgsl "clamp_f(x, 0.0, 6.0)", "select(g, 0.0, x <= 0.0 || x >= 6.0)";
    /// x clamped into [min_val, max_val]
    Hardtanh(min_val = -1.0, max_val = 1.0) => 48, "hardtanh",
        cpu x => clip(x, min_val, max_val), (x, y, g) => if x <= min_val || x >= max_val { c(0.0) } else { g };
        wgsl "clamp_f(x, min_val, max_val)", "select(g, 0.0, x <= min_val || x >= max_val)";
    /// log sigmoid(x) = min(x, 0) - log(1 + e^-|x|)
    Logsigmoid => 49, "logsigmoid",
        cpu x => (if x < c(0.0) { x } else { c(0.0) }) - (-x.abs()).exp().ln_1p(),
            (x, y, g) => {
                let z = (-x.abs()).exp();
                if x < c(0.0) { g * (c::<T>(1.0) - z / (c::<T>(1.0) + z)) } else { g * z / (c::<T>(1.0) + z) }
            };
        wgsl "min(x, 0.0) - log1p_f(exp(-abs(x)))", "g * sigmoid(-x)";
    /// x / (1 + |x|)
    Softsign => 50, "softsign",
        cpu x => x / (c::<T>(1.0) + x.abs()),
            (x, y, g) => { let d = c::<T>(1.0) + x.abs(); g / (d * d) };
        wgsl "x / (1.0 + abs(x))", "g / ((1.0 + abs(x)) * (1.0 + abs(x)))";
    /// x if x > 0 else alpha (e^(x / alpha) - 1)
    Celu(alpha = 1.0) => 51, "celu",
        cpu x => if x > c(0.0) { x } else { alpha * (x / alpha).exp_m1() },
            (x, y, g) => if x > c(0.0) { g } else { g * (x / alpha).exp() };
        wgsl "select(alpha * expm1_f(x / alpha), x, x > 0.0)", "select(g * exp(x / alpha), g, x > 0.0)";
    /// the truth value as 0/1 (nonzero, NaN included): a float's cast to bool; internal
    Truth => 60, "_truth",
        cpu x => if x != c(0.0) || x.is_nan() { c(1.0) } else { c(0.0) }, (x, y, g) => c(0.0);
        wgsl "select(0.0, 1.0, truthy(x))", "0.0";
    /// x rounded to float16 (nearest, ties to even; inf past 65504): a cast to float16 where
    /// the storage keeps float32 words (the GPU); internal
    ToHalf => 61, "_to_float16",
        cpu x => c(half::f16::from_f32(x.to_f64() as f32).to_f64()), (x, y, g) => g;
        wgsl "round_f16(x)", "g";
    /// x rounded to bfloat16 (nearest, ties to even), as ToHalf; internal
    ToBfloat16 => 62, "_to_bfloat16",
        cpu x => c(half::bf16::from_f32(x.to_f64() as f32).to_f64()), (x, y, g) => g;
        wgsl "round_bf16(x)", "g";
}

/// The copy kernel's code (the identity, which reads a strided view into a contiguous one).
pub const IDENTITY_CODE: u32 = 99;

/// Arithmetic, comparison and logical codes of the binary kernels, in their enums' order.
pub const BINARY_CODES: &[(&str, u32)] = &[
    ("ADD", 0),
    ("SUB", 1),
    ("MUL", 2),
    ("DIV", 3),
    ("POW", 4),
    ("MAXIMUM", 5),
    ("MINIMUM", 6),
    ("EQ", 7),
    ("NE", 8),
    ("LT", 9),
    ("LE", 10),
    ("GT", 11),
    ("GE", 12),
    ("AND", 13),
    ("OR", 14),
    ("XOR", 15),
];

fn upper_snake(camel: &str) -> String {
    let mut s = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(ch.to_ascii_uppercase());
    }
    s
}

/// The WGSL generated from the table: the op constants, `unary_fwd(op, x, p0, p1)` and
/// `unary_grad(op, x, y, g, p0, p1)`. Kept in `shaders/generated/elementwise_ops.wgsl`.
pub fn generated_wgsl() -> String {
    let mut s = String::from(
        "// GENERATED from the op table in rust/core/src/ops/table.rs: edit the table, then run\n\
         // `FERROGRAD_BLESS=1 cargo test -p ferrograd-core --test shaders` (a test checks that\n\
         // this file matches the table).\n\n// unary ops\n",
    );
    for op in UNARY_OPS {
        s += &format!("const U_{}: u32 = {}u;\n", upper_snake(op.variant), op.code);
    }
    s += &format!("const U_IDENTITY: u32 = {IDENTITY_CODE}u;\n\n// binary ops\n");
    for (name, code) in BINARY_CODES {
        s += &format!("const B_{name}: u32 = {code}u;\n");
    }
    let bind = |op: &UnaryInfo| -> String {
        op.params
            .iter()
            .enumerate()
            .map(|(i, (p, _))| format!("let {p} = p{i}; "))
            .collect()
    };
    s += "\n// y = op(x); the identity for unknown codes (the strided copy)\n";
    s += "fn unary_fwd(op: u32, x: f32, p0: f32, p1: f32) -> f32 {\n    switch op {\n";
    for op in UNARY_OPS {
        s += &format!(
            "        case U_{}: {{ {}return {}; }}\n",
            upper_snake(op.variant),
            bind(op),
            op.wgsl_forward
        );
    }
    s += "        default: { return x; }\n    }\n}\n\n";
    s += "// g * f'(x), from the input x, the output y and the incoming gradient g\n";
    s += "fn unary_grad(op: u32, x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {\n    switch op {\n";
    for op in UNARY_OPS {
        s += &format!(
            "        case U_{}: {{ {}return {}; }}\n",
            upper_snake(op.variant),
            bind(op),
            op.wgsl_grad
        );
    }
    s += "        default: { return g; }\n    }\n}\n\n";
    // the matmul epilogue's activations: the rows `Tensor::fusable_activation` accepts
    // (with their default parameters), as unary_fwd computes them
    s += "// a fusable activation (the matrix product's epilogue), as unary_fwd computes it\n";
    s += "fn act_fwd(op: u32, x: f32, p0: f32) -> f32 {\n    switch op {\n";
    for op in UNARY_OPS {
        let fusable =
            UnaryOp::from_name(op.name, &[]).is_ok_and(crate::tensor::Tensor::fusable_activation);
        if fusable {
            assert!(
                op.params.len() <= 1,
                "a fusable activation has at most one parameter"
            );
            s += &format!(
                "        case U_{}: {{ {}return {}; }}\n",
                upper_snake(op.variant),
                bind(op),
                op.wgsl_forward
            );
        }
    }
    s += "        default: { return x; }\n    }\n}\n\n";
    s += "fn act_fwd4(op: u32, v: vec4<f32>, p0: f32) -> vec4<f32> {\n";
    s += "    return vec4<f32>(act_fwd(op, v.x, p0), act_fwd(op, v.y, p0), act_fwd(op, v.z, p0), act_fwd(op, v.w, p0));\n}\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_codes_are_unique() {
        let mut codes = std::collections::HashSet::new();
        for info in UNARY_OPS {
            assert!(codes.insert(info.code), "code {} is taken twice", info.code);
            let params: Vec<Option<f64>> = info.params.iter().map(|_| Some(0.5)).collect();
            let op = UnaryOp::from_name(info.name, &params).unwrap();
            assert_eq!(op.name(), info.name);
            assert_eq!(op.code().0, info.code);
        }
        assert!(UnaryOp::from_name("clamp", &[Some(1.0)]).is_err());
        assert!(UnaryOp::from_name("nope", &[]).is_err());
        assert_eq!(
            UnaryOp::from_name("elu", &[]).unwrap(),
            UnaryOp::Elu(1.0),
            "defaults fill missing parameters"
        );
    }
}
