//! Host matrix products through the `gemm` crate (BLIS-style SIMD kernels, runtime
//! dispatch), batched with broadcast batch dims, the bias pre-filled into the output.

use super::contig;
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::ops::matmul::BatchPlan;
use crate::storage::{try_vec, CpuStorage};
use crate::threads;
use gemm::Parallelism;
use std::mem::MaybeUninit;

/// m*n*k below which gemm runs on the calling thread (threads cost more than they save).
pub const GEMM_PAR_MIN: usize = 96 * 96 * 96;

/// A strided matrix operand: the address of its first element and its row and column
/// strides (in elements). An address, not a pointer, so blocks of one product can be
/// handed to other threads.
#[derive(Clone, Copy)]
struct Mat {
    addr: usize,
    rs: isize,
    cs: isize,
}

impl Mat {
    fn new<T>(ptr: *const T, rs: isize, cs: isize) -> Mat {
        Mat {
            addr: ptr as usize,
            rs,
            cs,
        }
    }

    /// The operand starting at row `r`, column `c` of this one (elements of `T`).
    ///
    /// # Safety
    /// That element must lie inside the allocation this operand addresses.
    unsafe fn at<T>(self, r: usize, c: usize) -> Mat {
        let off = r as isize * self.rs + c as isize * self.cs;
        // SAFETY: the caller keeps the element inside the allocation
        let p = unsafe { (self.addr as *const T).offset(off) };
        Mat {
            addr: p as usize,
            ..self
        }
    }
}

/// `dst[m x n] = (read_dst ? dst : 0) + lhs[m x k] @ rhs[k x n]` on strided operands.
///
/// # Safety
/// The operands must address valid elements of `T` for the given sizes, and `dst` must
/// be writable and not overlap the others.
unsafe fn gemm_raw<T: 'static + Float>(
    (m, n, k): (usize, usize, usize),
    dst: Mat,
    read_dst: bool,
    lhs: Mat,
    rhs: Mat,
    par: Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst.addr as *mut T,
        dst.cs,
        dst.rs,
        read_dst,
        lhs.addr as *const T,
        lhs.cs,
        lhs.rs,
        rhs.addr as *const T,
        rhs.cs,
        rhs.rs,
        T::one(),
        T::one(),
        false,
        false,
        false,
        par,
    );
}

/// `dst = (accumulate ? dst : 0) + a @ b` on the calling thread, for a row-major m x n
/// `dst` and operands given as slices with their (row, column) strides: the per-image
/// products of a convolution, which its callers run one image (or group) per thread.
/// Panics if an operand's last element lies outside its slice.
pub(super) fn gemm_rows<T: 'static + Float>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [MaybeUninit<T>],
    accumulate: bool,
    (a, a_rs, a_cs): (&[T], usize, usize),
    (b, b_rs, b_cs): (&[T], usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(dst.len() >= m * n, "gemm_rows: the output is too short");
    if k > 0 {
        assert!(last(m, k, a_rs, a_cs) < a.len() && last(k, n, b_rs, b_cs) < b.len());
    }
    let d = Mat::new(dst.as_mut_ptr() as *const T, n as isize, 1);
    let (l, r) = (
        Mat::new(a.as_ptr(), a_rs as isize, a_cs as isize),
        Mat::new(b.as_ptr(), b_rs as isize, b_cs as isize),
    );
    // SAFETY: the operands' extents were checked against their slices above; dst is a
    // distinct, writable slice of at least m * n elements, initialized where accumulated
    unsafe { gemm_raw::<T>((m, n, k), d, accumulate, l, r, Parallelism::None) };
}

/// m*n*k from which a product is left to gemm's own threading (it shares the packed
/// operands between threads, which pays off only on large products); below it, and from
/// `GEMM_PAR_MIN`, the output is split into one block per thread (`gemm_split`).
const GEMM_OWN_THREADS_MIN: usize = 1 << 28;

/// Which of gemm's code paths a product of an m x n output takes: it picks dot-product
/// kernels for outputs of at most 256 elements, vector kernels for a single row or column,
/// and a fixed k blocking when both sides are at most 64 (else one from k and the caches);
/// each path sums in its own order.
fn gemm_regime(m: usize, n: usize) -> (bool, bool, bool) {
    (m * n <= 256, m.min(n) <= 1, m.max(n) <= 64)
}

/// The block length (a multiple of 48, a multiple of the kernels' register tiles) that
/// splits `len` into up to `parts` blocks each taking the same gemm path as the whole
/// product (`gemm_regime`), so the split is bit-identical to one call; None when no split
/// into two or more blocks does.
fn split_block(len: usize, other: usize, parts: usize) -> Option<usize> {
    let whole = gemm_regime(len, other);
    (2..=parts).rev().find_map(|p| {
        let block = len.div_ceil(p).div_ceil(48) * 48;
        let blocks = len.div_ceil(block);
        let last = len - (blocks - 1) * block;
        (blocks >= 2 && gemm_regime(block, other) == whole && gemm_regime(last, other) == whole)
            .then_some(block)
    })
}

/// `gemm_raw` on `parts` threads, each computing one block of output columns (of rows
/// when the output is taller than wide, so the operand packed twice is the smaller one).
/// Each block takes the same gemm path as the whole (`split_block`), so each element's sum
/// runs over k in the same blocks and order: the result is bit-identical to one call.
///
/// # Safety
/// As `gemm_raw`.
unsafe fn gemm_split<T: 'static + Float>(
    parts: usize,
    (m, n, k): (usize, usize, usize),
    dst: Mat,
    read_dst: bool,
    lhs: Mat,
    rhs: Mat,
) {
    let by_cols = n >= m;
    let (len, other) = if by_cols { (n, m) } else { (m, n) };
    let Some(block) = split_block(len, other, parts) else {
        // SAFETY: as the caller's
        return unsafe { gemm_raw::<T>((m, n, k), dst, read_dst, lhs, rhs, Parallelism::None) };
    };
    crate::threads::split(len.div_ceil(block), |i| {
        let (s, e) = (i * block, ((i + 1) * block).min(len));
        // SAFETY: block i of the output and its operands lie inside the caller's ranges,
        // and the blocks write disjoint parts of dst
        unsafe {
            if by_cols {
                let (d, r) = (dst.at::<T>(0, s), rhs.at::<T>(0, s));
                gemm_raw::<T>((m, e - s, k), d, read_dst, lhs, r, Parallelism::None);
            } else {
                let (d, l) = (dst.at::<T>(s, 0), lhs.at::<T>(s, 0));
                gemm_raw::<T>((e - s, n, k), d, read_dst, l, rhs, Parallelism::None);
            }
        }
    });
}

/// Strides gemm can use directly: positive on the matrix dims (a copy fixes the rest).
fn usable(l: &Layout) -> bool {
    let nd = l.ndim();
    l.strides[nd - 1] > 0 && l.strides[nd - 2] > 0
}

/// Whether `mm_forward` computes the product column-major into a scratch buffer and then
/// transposes it into the row-major output. For `x @ w.T` (the Linear forward: both
/// operands contiguous along k) gemm would pack (transpose) all of B, k x n, on each call;
/// the column-major product packs A, m x k, instead, and then pays a tiled transpose of the
/// m x n result: worth it when the packing saved, k (n - m), is at least twice the
/// transpose (this VM, one thread, 128 x k x n: 784x512 142 -> 158 GFLOP/s, 512x512 123 ->
/// 150, 512x784 115 -> 157; 256x256 is even and stays, and 512 x 128 x 784 lost 145 -> 122).
/// Only where gemm's regime is the ordinary one on both orientations (m >= 16, m < n) and
/// gemm's own threading is not used.
fn by_columns(m: usize, n: usize, k: usize, a_cs: isize, b_rs: isize) -> bool {
    a_cs == 1
        && b_rs == 1
        && m >= 16
        && m < n
        && k * (n - m) >= 2 * m * n
        && m * n * k < GEMM_OWN_THREADS_MIN
}

/// One panel of `by_columns`: `out_rows` (rows x n, row-major) = bias + lhs @ rhs, computed
/// as a column-major product in scratch and transposed by tiles. Threads take the column
/// blocks `gemm_split` would (rows < n, so it splits columns), so the bits do not depend
/// on the thread count, and each transposes its own block (a serial transpose took a tenth
/// of a 128x512x512 product at two threads).
///
/// # Safety
/// As `gemm_raw` for `lhs` and `rhs` of the given sizes.
unsafe fn product_by_columns<T: 'static + Float>(
    (rows, n, k): (usize, usize, usize),
    out_rows: &mut [MaybeUninit<T>],
    bias: Option<&[T]>,
    lhs: Mat,
    rhs: Mat,
) -> Result<()> {
    assert!(out_rows.len() == rows * n && rows < n);
    let mut scratch: Vec<T> = try_vec(rows * n)?;
    let parts = if rows * n * k < GEMM_PAR_MIN {
        1
    } else {
        threads::num_threads()
    };
    let block = split_block(n, rows, parts).unwrap_or(n);
    // addresses: the closure runs on other threads
    let (sp, op) = (
        scratch.as_mut_ptr() as usize,
        out_rows.as_mut_ptr() as usize,
    );
    threads::split(n.div_ceil(block), |i| {
        let (s, e) = (i * block, ((i + 1) * block).min(n));
        // SAFETY: columns s..e of the scratch (capacity rows * n, column-major) and of the
        // output are this part's alone; the operands are the caller's
        unsafe {
            let sc = (sp as *mut T).add(s * rows);
            if let Some(bias) = bias {
                for (j, &b) in bias[s..e].iter().enumerate() {
                    for r in 0..rows {
                        sc.add(j * rows + r).write(b);
                    }
                }
            }
            let dst = Mat::new(sc as *const T, 1, rows as isize);
            let r = rhs.at::<T>(0, s);
            gemm_raw::<T>(
                (rows, e - s, k),
                dst,
                bias.is_some(),
                lhs,
                r,
                Parallelism::None,
            );
            let out = (op as *mut T).add(s);
            crate::layout::copy_transposed((sc as *const T, rows as isize), (out, n), rows, e - s);
        }
    });
    Ok(())
}

/// Multiply-adds per panel of a long product (see `mm_forward`).
const CANCEL_PANEL_FLOPS: usize = 1 << 33;

/// Batched `a @ b` with broadcast batch dims; `bias` (length n) pre-fills each output row.
fn mm_forward<T: Float>(
    (a, la): (&[T], &Layout),
    (b, lb): (&[T], &Layout),
    bias: Option<(&[T], &Layout)>,
) -> Result<Vec<T>> {
    // strides gemm cannot take (negative or zero on the matrix dims) are compacted first
    let fixed = |v: &[T], l: &Layout| -> Result<Option<(Vec<T>, Layout)>> {
        if usable(l) {
            Ok(None)
        } else {
            Ok(Some((l.gather(v)?, Layout::contiguous(&l.shape))))
        }
    };
    let (ca, cb) = (fixed(a, la)?, fixed(b, lb)?);
    let (sa, la) = ca.as_ref().map_or((a, la), |(v, l)| (&v[..], l));
    let (sb, lb) = cb.as_ref().map_or((b, lb), |(v, l)| (&v[..], l));
    let plan = BatchPlan::new(la, lb)?;
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let total = plan.total();
    let offsets = plan.offsets();
    let ((a_rs, a_cs), (b_rs, b_cs)) = plan.matrix_strides();
    let flops = m * n * k;
    let via_cols = by_columns(m, n, k, a_cs, b_rs);
    let bias = bias.map(|(bv, bl)| contig(bv, bl)).transpose()?;
    let mut out: Vec<T> = try_vec(total)?;
    match &bias {
        // the column-major path fills its scratch with the bias instead
        Some(_) if via_cols && k > 0 => {}
        Some(bias) => {
            for _ in 0..offsets.len() * m {
                out.extend_from_slice(bias);
            }
        }
        // without a bias gemm overwrites every element (read_dst false): no zero fill,
        // which was a pass over the output before each product; the length is set below
        None if total > 0 && k > 0 => {}
        None => out.resize(total, T::zero()),
    }
    if total == 0 || k == 0 {
        return Ok(out);
    }
    // an address: the closure may cross threads
    let base = out.as_mut_ptr() as usize;
    // a long product runs in panels of output rows of about 2**33 multiply-adds (under a
    // tenth of a second), so a cancel request (Ctrl-C) is seen between them; each panel
    // re-packs B, which costs a few percent (benches/README.md), so shorter products stay
    // one call
    let panel = (CANCEL_PANEL_FLOPS / (n * k).max(1)).clamp(64, m.max(64));
    {
        {
            let run = |par: Option<Parallelism>| -> Result<()> {
                for (bi, &(oa, ob)) in offsets.iter().enumerate() {
                    for r0 in (0..m).step_by(panel) {
                        crate::threads::check_cancel("matmul")?;
                        let rows = panel.min(m - r0);
                        let read = bias.is_some();
                        // SAFETY: offsets and strides come from layouts validated against the
                        // storage; rows r0..r0+rows of A and of the fresh m*n output (inside
                        // the allocation of `out`) exist.
                        unsafe {
                            let lhs = Mat::new(sa.as_ptr().offset(oa), a_rs, a_cs).at::<T>(r0, 0);
                            let rhs = Mat::new(sb.as_ptr().offset(ob), b_rs, b_cs);
                            let dims = (rows, n, k);
                            if via_cols {
                                let out_rows = std::slice::from_raw_parts_mut(
                                    (base as *mut MaybeUninit<T>).add((bi * m + r0) * n),
                                    rows * n,
                                );
                                product_by_columns::<T>(dims, out_rows, bias.as_deref(), lhs, rhs)?;
                                continue;
                            }
                            let dst =
                                Mat::new(base as *const T, n as isize, 1).at::<T>(bi * m + r0, 0);
                            match par {
                                Some(par) => gemm_raw::<T>(dims, dst, read, lhs, rhs, par),
                                None => gemm_split::<T>(
                                    threads::num_threads(),
                                    dims,
                                    dst,
                                    read,
                                    lhs,
                                    rhs,
                                ),
                            }
                        }
                    }
                }
                Ok(())
            };
            // small products run on the calling thread: handing them to the pool (waking a
            // worker and waiting for it) cost about 20 us, more than the product itself
            if flops < GEMM_PAR_MIN || threads::num_threads() == 1 {
                run(Some(Parallelism::None))
            } else if flops < GEMM_OWN_THREADS_MIN {
                run(None)
            } else {
                threads::install(|nt| run(Some(Parallelism::Rayon(nt))))
            }
        }
    }?;
    // SAFETY: the products wrote all `total` elements (or the bias rows filled them)
    unsafe { out.set_len(total) };
    Ok(out)
}

/// The product of two float storages of one dtype (see `BackendStorage::matmul`).
pub(crate) fn matmul(
    (a, la): (&CpuStorage, &Layout),
    (b, lb): (&CpuStorage, &Layout),
    bias: Option<(&CpuStorage, &Layout)>,
) -> Result<CpuStorage> {
    match (a, b, bias) {
        (CpuStorage::F32(x), CpuStorage::F32(y), None) => {
            Ok(CpuStorage::F32(mm_forward((x, la), (y, lb), None)?))
        }
        (CpuStorage::F32(x), CpuStorage::F32(y), Some((CpuStorage::F32(z), lz))) => Ok(
            CpuStorage::F32(mm_forward((x, la), (y, lb), Some((z, lz)))?),
        ),
        (CpuStorage::F64(x), CpuStorage::F64(y), None) => {
            Ok(CpuStorage::F64(mm_forward((x, la), (y, lb), None)?))
        }
        (CpuStorage::F64(x), CpuStorage::F64(y), Some((CpuStorage::F64(z), lz))) => Ok(
            CpuStorage::F64(mm_forward((x, la), (y, lb), Some((z, lz)))?),
        ),
        _ => Err(Error::DType(format!(
            "matmul: float operands of one dtype expected, got {} and {}",
            a.dtype(),
            b.dtype()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splitting a product between threads gives the bits of one call, for shapes that
    /// straddle gemm's paths (`gemm_regime`) and for each operand layout.
    #[test]
    fn split_products_are_bit_identical_to_one_call() {
        let shapes = [
            (128, 1352, 10),
            (100, 200, 64),
            (64, 300, 100),
            (128, 256, 256),
            (130, 70, 65),
            (8, 4000, 9),
            (300, 5, 1),
            (49, 600, 97),
        ];
        let mut seed = 1u32;
        let mut rand = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(m, k, n) in &shapes {
            let a: Vec<f32> = (0..m * k).map(|_| rand()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rand()).collect();
            // row-major, and each operand read transposed
            for (a_rs, a_cs, b_rs, b_cs) in [
                (k as isize, 1, n as isize, 1),
                (1, m as isize, n as isize, 1),
                (k as isize, 1, 1, k as isize),
            ] {
                let run = |parts: usize| {
                    let mut out = vec![0f32; m * n];
                    // SAFETY: the strides address the m*k and k*n elements of a and b
                    unsafe {
                        gemm_split::<f32>(
                            parts,
                            (m, n, k),
                            Mat::new(out.as_mut_ptr(), n as isize, 1),
                            false,
                            Mat::new(a.as_ptr(), a_rs, a_cs),
                            Mat::new(b.as_ptr(), b_rs, b_cs),
                        );
                    }
                    out
                };
                let one = run(1);
                for parts in 2..=4 {
                    let got = run(parts);
                    let same = one
                        .iter()
                        .zip(&got)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "{m}x{k}x{n} strides {a_rs},{a_cs},{b_rs},{b_cs}: {parts} parts differ"
                    );
                }
            }
        }
    }
    /// `x @ w.T` through `mm_forward`, on the column-major path (`by_columns`) and beside it:
    /// the f64 reference within rounding, with and without a bias and over a batch, and the
    /// same bits at 1, 2 and 3 threads.
    #[test]
    fn products_by_columns_match_the_reference_at_any_thread_count() {
        let mut seed = 7u32;
        let mut rand = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        // (batch, m, k, n, takes the column-major path)
        for &(batch, m, k, n, cols) in &[
            (1, 128, 784, 512, true),
            (2, 40, 300, 200, true),
            (1, 64, 100, 70, false),
            (1, 128, 256, 256, false),
        ] {
            assert_eq!(by_columns(m, n, k, 1, 1), cols, "{m}x{k}x{n}");
            let x: Vec<f32> = (0..batch * m * k).map(|_| rand()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rand()).collect();
            let bias: Vec<f32> = (0..n).map(|_| rand()).collect();
            let lx = Layout::contiguous(&[batch, m, k]);
            let lw = Layout::contiguous(&[n, k]).transpose(0, 1);
            let lb = Layout::contiguous(&[n]);
            for with_bias in [false, true] {
                let run = |threads: usize| {
                    threads::set_num_threads(threads);
                    let b = with_bias.then_some((&bias[..], &lb));
                    mm_forward((&x[..], &lx), (&w[..], &lw), b).unwrap()
                };
                let one = run(1);
                for i in 0..batch * m {
                    for j in 0..n {
                        let mut r = if with_bias { bias[j] as f64 } else { 0.0 };
                        for p in 0..k {
                            r += x[i * k + p] as f64 * w[j * k + p] as f64;
                        }
                        let got = one[i * n + j] as f64;
                        assert!(
                            (got - r).abs() < 1e-4,
                            "{m}x{k}x{n} [{i},{j}]: {got} vs {r}"
                        );
                    }
                }
                for t in [2, 3] {
                    let got = run(t);
                    assert!(
                        one.iter()
                            .zip(&got)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{m}x{k}x{n} bias {with_bias}: {t} threads differ from one"
                    );
                }
            }
        }
        threads::set_num_threads(threads::default_threads());
    }
}
