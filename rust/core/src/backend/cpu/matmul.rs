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

/// m*n*k below which gemm runs on the calling thread (threads cost more than they save).
pub const GEMM_PAR_MIN: usize = 96 * 96 * 96;

/// `dst[m x n] = (read_dst ? dst : 0) + lhs[m x k] @ rhs[k x n]` on strided operands.
///
/// # Safety
/// The pointers with their strides must address valid elements for the given sizes, and
/// `dst` must not overlap the operands.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<T: 'static + Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: isize,
    dst_cs: isize,
    read_dst: bool,
    lhs: *const T,
    lhs_rs: isize,
    lhs_cs: isize,
    rhs: *const T,
    rhs_rs: isize,
    rhs_cs: isize,
    par: Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        dst_cs,
        dst_rs,
        read_dst,
        lhs,
        lhs_cs,
        lhs_rs,
        rhs,
        rhs_cs,
        rhs_rs,
        T::one(),
        T::one(),
        false,
        false,
        false,
        par,
    );
}

/// Strides gemm can use directly: positive on the matrix dims (a copy fixes the rest).
fn usable(l: &Layout) -> bool {
    let nd = l.ndim();
    l.strides[nd - 1] > 0 && l.strides[nd - 2] > 0
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
    let mut out: Vec<T> = try_vec(total)?;
    match bias {
        Some((bv, bl)) => {
            let bias = contig(bv, bl)?;
            for _ in 0..offsets.len() * m {
                out.extend_from_slice(&bias);
            }
        }
        None => out.resize(total, T::zero()),
    }
    if total == 0 || k == 0 {
        return Ok(out);
    }
    let ((a_rs, a_cs), (b_rs, b_cs)) = plan.matrix_strides();
    let flops = m * n * k;
    // a long product runs in panels of output rows of about 2**33 multiply-adds (under a
    // tenth of a second), so a cancel request (Ctrl-C) is seen between them; each panel
    // re-packs B, which costs a few percent (benches/README.md), so shorter products stay
    // one call
    let panel = (CANCEL_PANEL_FLOPS / (n * k).max(1)).clamp(64, m.max(64));
    {
        {
            let mut run = |par: Parallelism| -> Result<()> {
                for (bi, &(oa, ob)) in offsets.iter().enumerate() {
                    for r0 in (0..m).step_by(panel) {
                        crate::threads::check_cancel("matmul")?;
                        let rows = panel.min(m - r0);
                        let dst = out[bi * m * n + r0 * n..].as_mut_ptr();
                        // SAFETY: offsets and strides come from layouts validated against the
                        // storage; rows r0..r0+rows of A and of the fresh m*n output exist.
                        unsafe {
                            gemm_raw(
                                rows,
                                n,
                                k,
                                dst,
                                n as isize,
                                1,
                                bias.is_some(),
                                sa.as_ptr().offset(oa + r0 as isize * a_rs),
                                a_rs,
                                a_cs,
                                sb.as_ptr().offset(ob),
                                b_rs,
                                b_cs,
                                par,
                            );
                        }
                    }
                }
                Ok(())
            };
            // small products run on the calling thread: handing them to the pool (waking a
            // worker and waiting for it) cost about 20 us, more than the product itself
            if flops >= GEMM_PAR_MIN && threads::num_threads() > 1 {
                threads::install(|nt| run(Parallelism::Rayon(nt)))
            } else {
                run(Parallelism::None)
            }
        }
    }?;
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
