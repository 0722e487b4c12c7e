//! Vectorized CPU loops. Each hot loop is compiled for several instruction sets and the
//! best one is picked at run time (multiversion), so one wheel is fast on every CPU.

use crate::dtype::Float;
use multiversion::multiversion;
use std::mem::MaybeUninit;

// The elementwise kernels write into `MaybeUninit` outputs, so a fresh output vector needs
// no zero fill before they overwrite it (that fill was a whole extra pass per op); they
// write every element they are given, and only initialized values.

/// An initialized slice as an output of the kernels below.
///
/// # Safety
/// Only initialized values may be written through the result (the kernels here do so).
pub(crate) unsafe fn as_out<U: Copy>(s: &mut [U]) -> &mut [MaybeUninit<U>] {
    // SAFETY: MaybeUninit<U> has U's layout; the caller writes only initialized values
    unsafe { &mut *(s as *mut [U] as *mut [MaybeUninit<U>]) }
}

/// `out[i] = f(a[i], b[i])`
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn zip_map<T: Copy, U: Copy, F: Fn(T, T) -> U>(
    a: &[T],
    b: &[T],
    out: &mut [MaybeUninit<U>],
    f: F,
) {
    let n = out.len();
    let (a, b) = (&a[..n], &b[..n]);
    for i in 0..n {
        out[i] = MaybeUninit::new(f(a[i], b[i]));
    }
}

/// `out[i] = f(a[i], s)`: one operand broadcast as a scalar.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn map_scalar<T: Copy, U: Copy, F: Fn(T, T) -> U>(
    a: &[T],
    s: T,
    out: &mut [MaybeUninit<U>],
    f: F,
) {
    let n = out.len();
    let a = &a[..n];
    for i in 0..n {
        out[i] = MaybeUninit::new(f(a[i], s));
    }
}

/// `out[i] = f(a[i])`
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn map<T: Copy, U: Copy, F: Fn(T) -> U>(a: &[T], out: &mut [MaybeUninit<U>], f: F) {
    let n = out.len();
    let a = &a[..n];
    for i in 0..n {
        out[i] = MaybeUninit::new(f(a[i]));
    }
}

/// Dropout's affine on a block of at most 256 values: where `u[i] >= th` (kept) `o[i] = x[i]
/// ka + kb`, else `o[i] = x[i] 0 + db` (so a NaN input stays NaN); the mask packed 8 to a
/// byte into `bits` (`o.len().div_ceil(8)` bytes) for the backward (`scale_by_bits`).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
#[allow(clippy::too_many_arguments)]
pub fn masked_affine<T: Float>(
    x: &[T],
    u: &[u32],
    th: u32,
    ka: T,
    kb: T,
    db: T,
    o: &mut [MaybeUninit<T>],
    bits: &mut [u8],
) {
    let n = o.len();
    assert!(n <= 256 && x.len() >= n && u.len() >= n);
    let mut kept = [0u8; 256];
    for i in 0..n {
        let keep = u[i] >= th;
        kept[i] = keep as u8;
        let a = if keep { ka } else { T::zero() };
        o[i] = MaybeUninit::new(x[i] * a + if keep { kb } else { db });
    }
    pack_mask(&kept, bits);
}

/// Bit i of a byte spread to byte i of a word (the inverse of `pack_bytes`' multiply).
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            t[b] |= (((b >> i) & 1) as u64) << (8 * i);
            i += 1;
        }
        b += 1;
    }
    t
};

/// Eight bytes of 0 or 1 (byte i of `x`) to the bits of one byte (bit i): the multiply
/// sums each byte into the top byte at its bit position, without carries.
#[inline(always)]
fn pack_bytes(x: u64) -> u8 {
    (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

/// A fused dropout on a block of at most 256 values, in place: `v[i] = v[i] * (u[i] >= th ?
/// keep : 0) + 0` (dropout's own arithmetic), and the mask packed 8 to a byte into `bits`
/// (`v.len().div_ceil(8)` bytes) for the backward (`scale_by_bits`). Packing from a byte
/// mask by multiplication runs at vector speed; a shift-and-or fold per bit did not (the
/// fused batch norm's dropout cost 29 us for 128 x 256 values, Philox included).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn mask_to_bits<T: Float>(v: &mut [T], u: &[u32], th: u32, keep: T, bits: &mut [u8]) {
    let n = v.len();
    assert!(n <= 256 && u.len() >= n && bits.len() == n.div_ceil(8));
    let mut kept = [0u8; 256];
    let zero = T::zero();
    for i in 0..n {
        let k = u[i] >= th;
        kept[i] = k as u8;
        v[i] = v[i] * if k { keep } else { zero } + zero;
    }
    pack_mask(&kept, bits);
}

/// Bytes of 0 or 1 to bits, 8 to a byte (all of `bits`, from the front of `kept`).
#[inline(always)]
fn pack_mask(kept: &[u8; 256], bits: &mut [u8]) {
    for (j, b) in bits.iter_mut().enumerate() {
        let word: [u8; 8] = kept[8 * j..8 * j + 8].try_into().expect("8 bytes");
        *b = pack_bytes(u64::from_le_bytes(word));
    }
}

/// The backward of `mask_to_bits` on a block of at most 256 values: `out[i] = g[i] * (bit i
/// ? keep : 0)` (a product by zero, as dropout's own backward).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn scale_by_bits<T: Float>(g: &[T], bits: &[u8], keep: T, out: &mut [MaybeUninit<T>]) {
    let n = out.len();
    assert!(n <= 256 && g.len() >= n && bits.len() >= n.div_ceil(8));
    let mut kept = [0u8; 256];
    for (j, &b) in bits[..n.div_ceil(8)].iter().enumerate() {
        kept[8 * j..8 * j + 8].copy_from_slice(&SPREAD[b as usize].to_le_bytes());
    }
    for i in 0..n {
        out[i] = MaybeUninit::new(g[i] * if kept[i] != 0 { keep } else { T::zero() });
    }
}

/// `out[i] = f(a[i], b[i], c[i])` (backward rules that need input, output and gradient).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn zip3_map<T: Copy, F: Fn(T, T, T) -> T>(
    a: &[T],
    b: &[T],
    c: &[T],
    out: &mut [MaybeUninit<T>],
    f: F,
) {
    let n = out.len();
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    for i in 0..n {
        out[i] = MaybeUninit::new(f(a[i], b[i], c[i]));
    }
}

/// Sum with eight independent accumulators, so the loop vectorizes without fast-math.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn sum<T: Float>(a: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let chunks = a.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..16 {
            acc[j] += c[j];
        }
    }
    let mut s = T::zero();
    for r in rest {
        s += *r;
    }
    for v in acc {
        s += v;
    }
    s
}

/// `out[j] += a[j]` (accumulating rows when reducing over a leading axis).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn add_assign<T: Float>(out: &mut [T], a: &[T]) {
    let n = out.len();
    let a = &a[..n];
    for j in 0..n {
        out[j] += a[j];
    }
}

/// `out[j] = reduce(out[j], a[j])` for max/min over a leading axis (NaN propagates).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn fold_assign<T: Float, F: Fn(T, T) -> T>(out: &mut [T], a: &[T], f: F) {
    let n = out.len();
    let a = &a[..n];
    for j in 0..n {
        out[j] = f(out[j], a[j]);
    }
}

/// Maximum of a slice (NaN if any element is NaN, -inf if empty).
pub fn max<T: Float>(a: &[T]) -> T {
    let mut m = T::from_f64(f64::NEG_INFINITY);
    for &v in a {
        if v > m || v.is_nan() {
            m = v;
            if v.is_nan() {
                return v;
            }
        }
    }
    m
}

/// Minimum of a slice (NaN if any element is NaN, +inf if empty).
pub fn min<T: Float>(a: &[T]) -> T {
    let mut m = T::from_f64(f64::INFINITY);
    for &v in a {
        if v < m || v.is_nan() {
            m = v;
            if v.is_nan() {
                return v;
            }
        }
    }
    m
}

/// `max` that propagates NaN (NumPy's `maximum`).
#[inline(always)]
pub fn nan_max<T: Float>(a: T, b: T) -> T {
    if a > b || a.is_nan() {
        a
    } else {
        b
    }
}

/// `min` that propagates NaN (NumPy's `minimum`).
#[inline(always)]
pub fn nan_min<T: Float>(a: T, b: T) -> T {
    if a < b || a.is_nan() {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed dropout mask: values and bits as the element-by-element definition, and
    /// the backward reads back the same mask, for every block length up to 256.
    #[test]
    fn dropout_bits_round_trip() {
        let mut seed = 3u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed
        };
        let th = u32::MAX / 3;
        for len in 1..=256usize {
            let u: Vec<u32> = (0..len).map(|_| next()).collect();
            let x: Vec<f32> = (0..len).map(|i| i as f32 - 100.5).collect();
            let mut v = x.clone();
            let mut bits = vec![0u8; len.div_ceil(8)];
            mask_to_bits(&mut v, &u, th, 1.5f32, &mut bits);
            let mut g = vec![0.0f32; len];
            // SAFETY: f32 has no invalid bit patterns to overwrite
            scale_by_bits(&vec![2.0f32; len], &bits, 1.5f32, unsafe { as_out(&mut g) });
            for i in 0..len {
                let keep = u[i] >= th;
                assert_eq!((bits[i / 8] >> (i % 8)) & 1 == 1, keep, "len {len} bit {i}");
                assert_eq!(
                    v[i],
                    if keep { x[i] * 1.5 } else { 0.0 },
                    "len {len} value {i}"
                );
                assert_eq!(g[i], if keep { 3.0 } else { 0.0 }, "len {len} grad {i}");
            }
        }
    }
}
