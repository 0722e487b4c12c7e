//! Element types and the traits kernels are generic over.

use std::fmt;

/// The element type of a tensor.
///
/// A word wide, not a byte: the GPU storage holds one beside its buffer, and a one-byte
/// field there made LLVM move every `Buffer` (and each `Result` around one) as a tag byte
/// plus unaligned 8-byte pieces, which stalled on store forwarding in every op
/// (benches/README.md, stop 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u64)]
pub enum DType {
    /// Booleans, the result of comparisons.
    Bool,
    /// 8-bit unsigned integers (images), stored only: arithmetic runs in int64 and wraps
    /// back, as PyTorch's does.
    U8,
    /// 32-bit integers, stored only (computed in int64, wrapped back).
    I32,
    /// 64-bit integers, for labels and indices.
    I64,
    /// IEEE half precision, stored only: arithmetic runs in float32 and rounds back.
    F16,
    /// bfloat16 (float32's range, 8 bits of mantissa), stored only like float16.
    BF16,
    /// 32-bit floats, the default.
    F32,
    /// 64-bit floats, for gradient checks and precise work.
    F64,
}

impl DType {
    /// The name users see (`float32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 => 1,
            DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// Whether the dtype is a floating-point type (and so can carry gradients).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// Whether the dtype is an integer type (not bool).
    pub fn is_int(self) -> bool {
        matches!(self, DType::U8 | DType::I32 | DType::I64)
    }

    /// The dtype kernels compute a storage-only dtype in: int64 for uint8 and int32,
    /// float32 for float16 and bfloat16; every other dtype is its own. Results are
    /// converted back (integers wrap, halves round to nearest even), which is what
    /// PyTorch's CPU kernels give for these dtypes.
    pub fn compute(self) -> DType {
        match self {
            DType::U8 | DType::I32 => DType::I64,
            DType::F16 | DType::BF16 => DType::F32,
            d => d,
        }
    }

    /// Whether the dtype is stored only (see [`DType::compute`]).
    pub fn is_narrow(self) -> bool {
        self.compute() != self
    }

    /// The promotion rule for binary ops, PyTorch's: bool < uint8 < int32 < int64 <
    /// float16, bfloat16 < float32 < float64, the wider wins; float16 with bfloat16 is
    /// float32 (neither holds the other).
    pub fn promote(self, other: DType) -> DType {
        match (self, other) {
            (DType::F16, DType::BF16) | (DType::BF16, DType::F16) => DType::F32,
            (a, b) => a.max(b),
        }
    }

    /// 0 for bool, 1 for integers, 2 for floats: PyTorch's categories, which decide
    /// whether a 0-d operand may widen a dimensioned one.
    pub fn category(self) -> u8 {
        if self.is_float() {
            2
        } else if self.is_int() {
            1
        } else {
            0
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An element that a storage buffer can hold.
pub trait Element: Copy + Send + Sync + 'static + PartialEq + fmt::Debug {
    /// The dtype tag of this element type.
    const DTYPE: DType;
    /// Converts from f64 (saturating/truncating as `as` does).
    fn from_f64(v: f64) -> Self;
    /// Converts to f64.
    fn to_f64(self) -> f64;
    /// The zero value.
    fn zero() -> Self;
    /// Converts from i64, wrapping for narrower integers (two's complement, as `as` and
    /// PyTorch's integer casts do).
    fn from_i64(v: i64) -> Self {
        Self::from_f64(v as f64)
    }
    /// Converts to i64: integers exactly, floats truncated toward zero (saturating; NaN
    /// gives 0).
    fn to_i64(self) -> i64 {
        self.to_f64() as i64
    }
}

macro_rules! impl_element {
    ($t:ty, $d:expr, $zero:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn zero() -> Self {
                $zero
            }
        }
    };
}
impl_element!(f32, DType::F32, 0.0);
impl_element!(f64, DType::F64, 0.0);

macro_rules! impl_int_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                // through int64 so an out-of-range float wraps as an integer would
                (v as i64) as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn zero() -> Self {
                0
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
        }
    };
}
impl_int_element!(i64, DType::I64);
impl_int_element!(i32, DType::I32);
impl_int_element!(u8, DType::U8);

macro_rules! impl_half_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                // through float32, as PyTorch converts a double to a half (and exact
                // for the float32 values that nearly all conversions start from)
                <$t>::from_f32(v as f32)
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                <$t>::to_f64(self)
            }
            #[inline(always)]
            fn zero() -> Self {
                <$t>::ZERO
            }
        }
    };
}
impl_half_element!(half::f16, DType::F16);
impl_half_element!(half::bf16, DType::BF16);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
    #[inline(always)]
    fn zero() -> Self {
        false
    }
}

/// Floating-point elements: what differentiable kernels are generic over.
pub trait Float:
    Element
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::MulAssign
    + std::ops::SubAssign
    + std::iter::Sum
{
    /// exp(x)
    fn exp(self) -> Self;
    /// natural log
    fn ln(self) -> Self;
    /// square root
    fn sqrt(self) -> Self;
    /// hyperbolic tangent
    fn tanh(self) -> Self;
    /// absolute value
    fn abs(self) -> Self;
    /// self ** p
    fn powf(self, p: Self) -> Self;
    /// error function
    fn erf(self) -> Self;
    /// is NaN
    fn is_nan(self) -> bool;
    /// the constant 1
    fn one() -> Self;
    /// sin(x)
    fn sin(self) -> Self;
    /// cos(x)
    fn cos(self) -> Self;
    /// tan(x)
    fn tan(self) -> Self;
    /// asin(x)
    fn asin(self) -> Self;
    /// acos(x)
    fn acos(self) -> Self;
    /// atan(x)
    fn atan(self) -> Self;
    /// sinh(x)
    fn sinh(self) -> Self;
    /// cosh(x)
    fn cosh(self) -> Self;
    /// asinh(x)
    fn asinh(self) -> Self;
    /// acosh(x)
    fn acosh(self) -> Self;
    /// atanh(x)
    fn atanh(self) -> Self;
    /// exp2(x)
    fn exp2(self) -> Self;
    /// log2(x)
    fn log2(self) -> Self;
    /// log10(x)
    fn log10(self) -> Self;
    /// ln_1p(x)
    fn ln_1p(self) -> Self;
    /// exp_m1(x)
    fn exp_m1(self) -> Self;
    /// floor(x)
    fn floor(self) -> Self;
    /// ceil(x)
    fn ceil(self) -> Self;
    /// trunc(x)
    fn trunc(self) -> Self;
    /// round half to even
    fn round_even(self) -> Self;
}

/// e^x for f32, branch-free so loops over it vectorize (libm's expf is a scalar call).
///
/// Cephes' method: x = n ln2 + r with |r| <= ln2/2, a degree-7 polynomial for e^r, then
/// a scale by 2^n applied in two halves so results down in the subnormal range and up to
/// overflow (inf) come out right. Within 2 ulp of the exact value.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes coefficients, kept as published
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-104.0, 89.0); // NaN stays NaN
    let n = (xc * LOG2E + 0.5).floor();
    let r = xc - n * C1 - n * C2;
    let z = r * r;
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 0.166_666_65)
        * r
        + 0.5)
        * z
        + r
        + 1.0;
    // n is an integer in [-150, 129]: read it from the bits of n + 1.5 * 2^23, where it
    // sits in the mantissa; an `as i32` cast (saturating) would not vectorize
    let ni = (n + 12_582_912.0).to_bits() as i32 - 0x4B40_0000;
    let h = ni >> 1;
    let s1 = f32::from_bits(((h + 127) as u32) << 23);
    let s2 = f32::from_bits(((ni - h + 127) as u32) << 23);
    let y = p * s1 * s2;
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// tanh for f32, branch-free (Cephes tanhf): an odd polynomial near zero, else
/// 1 - 2 / (e^(2|x|) + 1) with the sign restored; saturates to +-1 without overflow.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes coefficients, kept as published
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let s = x * x;
    let small =
        ((((-5.704_988_7e-3 * s + 2.063_908_9e-2) * s - 5.373_971_6e-2) * s + 0.133_314_42) * s
            - 0.333_332_82)
            * s
            * x
            + x;
    let big = 1.0 - 2.0 / (exp_f32(a + a) + 1.0);
    let big = if x < 0.0 { -big } else { big };
    if a == 0.0 {
        x // keeps -0.0 (the polynomial's x + (...) x gives +0.0)
    } else if a < 0.625 {
        small
    } else {
        big
    }
}

impl Float for f32 {
    #[inline(always)]
    fn sin(self) -> Self {
        f32::sin(self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        f32::cos(self)
    }
    #[inline(always)]
    fn tan(self) -> Self {
        f32::tan(self)
    }
    #[inline(always)]
    fn asin(self) -> Self {
        f32::asin(self)
    }
    #[inline(always)]
    fn acos(self) -> Self {
        f32::acos(self)
    }
    #[inline(always)]
    fn atan(self) -> Self {
        f32::atan(self)
    }
    #[inline(always)]
    fn sinh(self) -> Self {
        f32::sinh(self)
    }
    #[inline(always)]
    fn cosh(self) -> Self {
        f32::cosh(self)
    }
    #[inline(always)]
    fn asinh(self) -> Self {
        f32::asinh(self)
    }
    #[inline(always)]
    fn acosh(self) -> Self {
        f32::acosh(self)
    }
    #[inline(always)]
    fn atanh(self) -> Self {
        f32::atanh(self)
    }
    #[inline(always)]
    fn exp2(self) -> Self {
        f32::exp2(self)
    }
    #[inline(always)]
    fn log2(self) -> Self {
        f32::log2(self)
    }
    #[inline(always)]
    fn log10(self) -> Self {
        f32::log10(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        f32::ln_1p(self)
    }
    #[inline(always)]
    fn exp_m1(self) -> Self {
        f32::exp_m1(self)
    }
    #[inline(always)]
    fn floor(self) -> Self {
        f32::floor(self)
    }
    #[inline(always)]
    fn ceil(self) -> Self {
        f32::ceil(self)
    }
    #[inline(always)]
    fn trunc(self) -> Self {
        f32::trunc(self)
    }
    #[inline(always)]
    fn round_even(self) -> Self {
        f32::round_ties_even(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        tanh_f32(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn powf(self, p: Self) -> Self {
        f32::powf(self, p)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        libm::erff(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn one() -> Self {
        1.0
    }
}

impl Float for f64 {
    #[inline(always)]
    fn sin(self) -> Self {
        f64::sin(self)
    }
    #[inline(always)]
    fn cos(self) -> Self {
        f64::cos(self)
    }
    #[inline(always)]
    fn tan(self) -> Self {
        f64::tan(self)
    }
    #[inline(always)]
    fn asin(self) -> Self {
        f64::asin(self)
    }
    #[inline(always)]
    fn acos(self) -> Self {
        f64::acos(self)
    }
    #[inline(always)]
    fn atan(self) -> Self {
        f64::atan(self)
    }
    #[inline(always)]
    fn sinh(self) -> Self {
        f64::sinh(self)
    }
    #[inline(always)]
    fn cosh(self) -> Self {
        f64::cosh(self)
    }
    #[inline(always)]
    fn asinh(self) -> Self {
        f64::asinh(self)
    }
    #[inline(always)]
    fn acosh(self) -> Self {
        f64::acosh(self)
    }
    #[inline(always)]
    fn atanh(self) -> Self {
        f64::atanh(self)
    }
    #[inline(always)]
    fn exp2(self) -> Self {
        f64::exp2(self)
    }
    #[inline(always)]
    fn log2(self) -> Self {
        f64::log2(self)
    }
    #[inline(always)]
    fn log10(self) -> Self {
        f64::log10(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        f64::ln_1p(self)
    }
    #[inline(always)]
    fn exp_m1(self) -> Self {
        f64::exp_m1(self)
    }
    #[inline(always)]
    fn floor(self) -> Self {
        f64::floor(self)
    }
    #[inline(always)]
    fn ceil(self) -> Self {
        f64::ceil(self)
    }
    #[inline(always)]
    fn trunc(self) -> Self {
        f64::trunc(self)
    }
    #[inline(always)]
    fn round_even(self) -> Self {
        f64::round_ties_even(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn powf(self, p: Self) -> Self {
        f64::powf(self, p)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        libm::erf(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn one() -> Self {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_f32_is_accurate_everywhere() {
        let mut worst = 0;
        let mut x = -110.0f32;
        while x < 95.0 {
            let exact = (x as f64).exp() as f32;
            let got = exp_f32(x);
            if exact.is_finite() && exact > 1e-37 {
                worst = worst.max(ulps(got, exact));
            } else if exact == 0.0 || exact.is_infinite() {
                assert_eq!(got, exact, "x = {x}");
            }
            x += 0.000_37;
        }
        assert!(worst <= 2, "worst error {worst} ulp");
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn tanh_f32_is_accurate_everywhere() {
        let mut worst = 0;
        let mut x = -20.0f32;
        while x < 20.0 {
            let exact = (x as f64).tanh() as f32;
            worst = worst.max(ulps(tanh_f32(x), exact));
            x += 0.000_13;
        }
        assert!(worst <= 3, "worst error {worst} ulp");
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(0.0), 0.0);
    }
}
