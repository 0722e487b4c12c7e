//! Host kernels of the binary family: arithmetic, comparisons, logical/bitwise ops and
//! where, over operands read through layouts broadcast to the output's shape.

use crate::dtype::{Element, Float};
use crate::error::{Error, Result};
use crate::kernels;
use crate::layout::Layout;
use crate::ops::{BinaryOp, CmpOp, LogicOp};
use crate::storage::{try_vec, CpuStorage};
use crate::threads;

/// Applies `f` over `a` and `b` (layouts broadcast to one shape) into a fresh vector.
pub(crate) fn apply<T, U, F>(sa: &[T], la: &Layout, sb: &[T], lb: &Layout, f: F) -> Result<Vec<U>>
where
    T: Copy + Send + Sync,
    U: Element,
    F: Fn(T, T) -> U + Copy + Send + Sync,
{
    let n = la.numel();
    let mut out: Vec<U> = try_vec(n)?;
    // a one-element operand broadcast everywhere has only zero strides
    let scalar = |l: &Layout| l.strides.iter().all(|&s| s == 0);
    apply_layouts(
        sa,
        la,
        sb,
        lb,
        out.spare_capacity_mut(),
        scalar(la),
        scalar(lb),
        f,
    );
    // SAFETY: apply_layouts writes every one of the n elements
    unsafe { out.set_len(n) };
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn apply_layouts<T, U, F>(
    sa: &[T],
    la: &Layout,
    sb: &[T],
    lb: &Layout,
    out: &mut [std::mem::MaybeUninit<U>],
    a_scalar: bool,
    b_scalar: bool,
    f: F,
) where
    T: Copy + Send + Sync,
    U: Copy + Send,
    F: Fn(T, T) -> U + Copy + Send + Sync,
{
    let n = out.len();
    if n == 0 {
        return;
    }
    let (ca, cb) = (la.is_contiguous(), lb.is_contiguous());
    if ca && cb {
        let (xa, xb) = (&sa[la.contiguous_range()], &sb[lb.contiguous_range()]);
        threads::for_chunks(out, |s, o| {
            kernels::zip_map(&xa[s..s + o.len()], &xb[s..s + o.len()], o, f)
        });
        return;
    }
    if ca && b_scalar {
        let (xa, v) = (&sa[la.contiguous_range()], sb[lb.offset]);
        threads::for_chunks(out, |s, o| {
            kernels::map_scalar(&xa[s..s + o.len()], v, o, f)
        });
        return;
    }
    if cb && a_scalar {
        let (xb, v) = (&sb[lb.contiguous_range()], sa[la.offset]);
        threads::for_chunks(out, |s, o| {
            kernels::map_scalar(&xb[s..s + o.len()], v, o, move |x, y| f(y, x))
        });
        return;
    }
    // General case: walk the outer dims, run the innermost dim as a strided (often unit) row.
    let nd = la.ndim();
    let inner = la.shape[nd - 1];
    let (ia, ib) = (la.strides[nd - 1], lb.strides[nd - 1]);
    let mut idx = vec![0usize; nd];
    let (mut pa, mut pb) = (la.offset as isize, lb.offset as isize);
    let mut row = 0;
    loop {
        let o = &mut out[row * inner..(row + 1) * inner];
        if ia == 1 && ib == 1 {
            kernels::zip_map(
                &sa[pa as usize..pa as usize + inner],
                &sb[pb as usize..pb as usize + inner],
                o,
                f,
            );
        } else if ia == 1 && ib == 0 {
            kernels::map_scalar(&sa[pa as usize..pa as usize + inner], sb[pb as usize], o, f);
        } else if ia == 0 && ib == 1 {
            kernels::map_scalar(
                &sb[pb as usize..pb as usize + inner],
                sa[pa as usize],
                o,
                move |x, y| f(y, x),
            );
        } else {
            for (j, slot) in o.iter_mut().enumerate() {
                slot.write(f(
                    sa[(pa + j as isize * ia) as usize],
                    sb[(pb + j as isize * ib) as usize],
                ));
            }
        }
        row += 1;
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            pa += la.strides[d];
            pb += lb.strides[d];
            if idx[d] < la.shape[d] {
                break;
            }
            pa -= la.strides[d] * la.shape[d] as isize;
            pb -= lb.strides[d] * lb.shape[d] as isize;
            idx[d] = 0;
        }
    }
}

fn float_binary<T: Float>(
    op: BinaryOp,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
) -> Result<Vec<T>> {
    match op {
        BinaryOp::Add => apply(a, la, b, lb, |x: T, y: T| x + y),
        BinaryOp::Sub => apply(a, la, b, lb, |x: T, y: T| x - y),
        BinaryOp::Mul => apply(a, la, b, lb, |x: T, y: T| x * y),
        BinaryOp::Div => apply(a, la, b, lb, |x: T, y: T| x / y),
        BinaryOp::Pow => apply(a, la, b, lb, |x: T, y: T| x.powf(y)),
        BinaryOp::Maximum => apply(a, la, b, lb, kernels::nan_max::<T>),
        BinaryOp::Minimum => apply(a, la, b, lb, kernels::nan_min::<T>),
    }
}

/// x^e in wrapping 64-bit integers, as PyTorch's integer pow: by squaring; a negative
/// exponent gives the integer part of 1 / x^|e| (1 for x = 1, +-1 for x = -1, else 0).
#[inline(always)]
fn int_pow(x: i64, e: i64) -> i64 {
    if e < 0 {
        return match x {
            1 => 1,
            -1 => {
                if e % 2 == 0 {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        };
    }
    let (mut base, mut e, mut acc) = (x, e as u64, 1i64);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        e >>= 1;
    }
    acc
}

fn int_binary(op: BinaryOp, a: &[i64], la: &Layout, b: &[i64], lb: &Layout) -> Result<Vec<i64>> {
    match op {
        BinaryOp::Add => apply(a, la, b, lb, |x: i64, y: i64| x.wrapping_add(y)),
        BinaryOp::Sub => apply(a, la, b, lb, |x: i64, y: i64| x.wrapping_sub(y)),
        BinaryOp::Mul => apply(a, la, b, lb, |x: i64, y: i64| x.wrapping_mul(y)),
        BinaryOp::Maximum => apply(a, la, b, lb, |x: i64, y: i64| x.max(y)),
        BinaryOp::Minimum => apply(a, la, b, lb, |x: i64, y: i64| x.min(y)),
        BinaryOp::Pow => apply(a, la, b, lb, int_pow),
        BinaryOp::Div => Err(Error::DType(format!(
            "{}: integer operands are promoted to float first",
            op.name()
        ))),
    }
}

fn cmp<T: Copy + PartialOrd + Send + Sync>(
    op: CmpOp,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
) -> Result<Vec<bool>> {
    match op {
        CmpOp::Eq => apply(a, la, b, lb, |x: T, y: T| x == y),
        CmpOp::Ne => apply(a, la, b, lb, |x: T, y: T| x != y),
        CmpOp::Lt => apply(a, la, b, lb, |x: T, y: T| x < y),
        CmpOp::Le => apply(a, la, b, lb, |x: T, y: T| x <= y),
        CmpOp::Gt => apply(a, la, b, lb, |x: T, y: T| x > y),
        CmpOp::Ge => apply(a, la, b, lb, |x: T, y: T| x >= y),
    }
}

fn mismatch(op: &str, a: &CpuStorage, b: &CpuStorage) -> Error {
    Error::DType(format!(
        "{op}: operands of one dtype expected, got {} and {}",
        a.dtype(),
        b.dtype()
    ))
}

#[inline(always)]
pub(crate) fn binary(
    op: BinaryOp,
    (a, la): (&CpuStorage, &Layout),
    (b, lb): (&CpuStorage, &Layout),
) -> Result<CpuStorage> {
    Ok(match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => {
            CpuStorage::F32(float_binary(op, x, la, y, lb)?)
        }
        (CpuStorage::F64(x), CpuStorage::F64(y)) => {
            CpuStorage::F64(float_binary(op, x, la, y, lb)?)
        }
        (CpuStorage::I64(x), CpuStorage::I64(y)) => CpuStorage::I64(int_binary(op, x, la, y, lb)?),
        _ => return Err(mismatch(op.name(), a, b)),
    })
}

pub(crate) fn compare(
    op: CmpOp,
    (a, la): (&CpuStorage, &Layout),
    (b, lb): (&CpuStorage, &Layout),
) -> Result<CpuStorage> {
    Ok(CpuStorage::Bool(match (a, b) {
        (CpuStorage::Bool(x), CpuStorage::Bool(y)) => cmp(op, x, la, y, lb)?,
        (CpuStorage::I64(x), CpuStorage::I64(y)) => cmp(op, x, la, y, lb)?,
        (CpuStorage::F32(x), CpuStorage::F32(y)) => cmp(op, x, la, y, lb)?,
        (CpuStorage::F64(x), CpuStorage::F64(y)) => cmp(op, x, la, y, lb)?,
        _ => return Err(mismatch("compare", a, b)),
    }))
}

pub(crate) fn logical(
    op: LogicOp,
    (a, la): (&CpuStorage, &Layout),
    (b, lb): (&CpuStorage, &Layout),
) -> Result<CpuStorage> {
    Ok(match (a, b) {
        (CpuStorage::Bool(x), CpuStorage::Bool(y)) => CpuStorage::Bool(match op {
            LogicOp::And => apply(x, la, y, lb, |p: bool, q: bool| p && q)?,
            LogicOp::Or => apply(x, la, y, lb, |p: bool, q: bool| p || q)?,
            LogicOp::Xor => apply(x, la, y, lb, |p: bool, q: bool| p != q)?,
        }),
        // bitwise on int64 (two's complement)
        (CpuStorage::I64(x), CpuStorage::I64(y)) => CpuStorage::I64(match op {
            LogicOp::And => apply(x, la, y, lb, |p: i64, q: i64| p & q)?,
            LogicOp::Or => apply(x, la, y, lb, |p: i64, q: i64| p | q)?,
            LogicOp::Xor => apply(x, la, y, lb, |p: i64, q: i64| p ^ q)?,
        }),
        _ => return Err(mismatch("logical", a, b)),
    })
}

pub(crate) fn select(
    (c, lc): (&CpuStorage, &Layout),
    (a, la): (&CpuStorage, &Layout),
    (b, lb): (&CpuStorage, &Layout),
) -> Result<CpuStorage> {
    let CpuStorage::Bool(c) = c else {
        return Err(Error::DType(
            "where: the condition must be a bool tensor".into(),
        ));
    };
    let c = lc.gather(c)?;
    fn pick<T: Copy>(c: &[bool], a: &[T], la: &Layout, b: &[T], lb: &Layout) -> Result<Vec<T>> {
        let (a, b) = (la.gather(a)?, lb.gather(b)?);
        crate::storage::try_collect(
            c.len(),
            c.iter()
                .zip(a.iter().zip(b.iter()))
                .map(|(&c, (&x, &y))| if c { x } else { y }),
        )
    }
    Ok(match (a, b) {
        (CpuStorage::Bool(x), CpuStorage::Bool(y)) => CpuStorage::Bool(pick(&c, x, la, y, lb)?),
        (CpuStorage::I64(x), CpuStorage::I64(y)) => CpuStorage::I64(pick(&c, x, la, y, lb)?),
        (CpuStorage::F32(x), CpuStorage::F32(y)) => CpuStorage::F32(pick(&c, x, la, y, lb)?),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => CpuStorage::F64(pick(&c, x, la, y, lb)?),
        _ => return Err(mismatch("where", a, b)),
    })
}
