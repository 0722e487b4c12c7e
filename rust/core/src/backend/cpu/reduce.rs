//! Host reductions: sums, maxima and minima over a (outer, r, inner) block, argmax/argmin
//! along one dim, and the count of correct predictions.

use crate::backend::{ReduceOp, ReducePlan};
use crate::dtype::{Element, Float};
use crate::error::Result;
use crate::kernels;
use crate::layout::Layout;
use crate::storage::{try_collect, try_vec, CpuStorage};
use std::borrow::Cow;

/// The plan's input as one contiguous (outer, r, inner) block.
fn block<'a, T: Copy>(v: &'a [T], plan: &ReducePlan) -> Result<Cow<'a, [T]>> {
    super::contig(v, &plan.layout)
}

fn float_reduce<T: Float>(v: &[T], plan: &ReducePlan, op: ReduceOp) -> Result<Vec<T>> {
    let data = block(v, plan)?;
    let (outer, r, inner) = (plan.outer, plan.r, plan.inner);
    let mut out: Vec<T> = try_vec(outer * inner)?;
    out.resize(outer * inner, T::zero());
    for o in 0..outer {
        let src = &data[o * r * inner..(o + 1) * r * inner];
        let dst = &mut out[o * inner..(o + 1) * inner];
        if inner == 1 {
            dst[0] = match op {
                ReduceOp::Sum => kernels::sum(src),
                ReduceOp::Max => kernels::max(src),
                ReduceOp::Min => kernels::min(src),
            };
        } else {
            dst.copy_from_slice(&src[..inner]);
            for k in 1..r {
                let row = &src[k * inner..(k + 1) * inner];
                match op {
                    ReduceOp::Sum => kernels::add_assign(dst, row),
                    ReduceOp::Max => kernels::fold_assign(dst, row, kernels::nan_max::<T>),
                    ReduceOp::Min => kernels::fold_assign(dst, row, kernels::nan_min::<T>),
                }
            }
        }
    }
    Ok(out)
}

/// Integer reductions in i64, exactly (sums wrap, as PyTorch's do).
fn int_reduce<T: Element>(v: &[T], plan: &ReducePlan, op: ReduceOp) -> Result<Vec<T>> {
    let data = block(v, plan)?;
    let (outer, r, inner) = (plan.outer, plan.r, plan.inner);
    let at = |o: usize, k: usize, i: usize| data[(o * r + k) * inner + i].to_f64() as i64;
    let fold = |o: usize, i: usize| -> i64 {
        let it = (0..r).map(|k| at(o, k, i));
        match op {
            ReduceOp::Sum => it.fold(0i64, |a, b| a.wrapping_add(b)),
            ReduceOp::Max => it.max().unwrap_or(0),
            ReduceOp::Min => it.min().unwrap_or(0),
        }
    };
    try_collect(
        outer * inner,
        (0..outer)
            .flat_map(|o| (0..inner).map(move |i| (o, i)))
            .map(|(o, i)| T::from_f64(fold(o, i) as f64)),
    )
}

/// i64 values exactly (to_f64 above keeps 53 bits): the int64 path folds raw values.
fn i64_reduce(v: &[i64], plan: &ReducePlan, op: ReduceOp) -> Result<Vec<i64>> {
    let data = block(v, plan)?;
    let (outer, r, inner) = (plan.outer, plan.r, plan.inner);
    let fold = |o: usize, i: usize| -> i64 {
        let it = (0..r).map(|k| data[(o * r + k) * inner + i]);
        match op {
            ReduceOp::Sum => it.fold(0i64, |a, b| a.wrapping_add(b)),
            ReduceOp::Max => it.max().unwrap_or(0),
            ReduceOp::Min => it.min().unwrap_or(0),
        }
    };
    try_collect(
        outer * inner,
        (0..outer)
            .flat_map(|o| (0..inner).map(move |i| (o, i)))
            .map(|(o, i)| fold(o, i)),
    )
}

#[inline(always)]
pub(crate) fn reduce(s: &CpuStorage, plan: &ReducePlan, op: ReduceOp) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(v) => CpuStorage::F32(float_reduce(v, plan, op)?),
        CpuStorage::F64(v) => CpuStorage::F64(float_reduce(v, plan, op)?),
        CpuStorage::I64(v) => CpuStorage::I64(i64_reduce(v, plan, op)?),
        CpuStorage::Bool(v) => CpuStorage::Bool(int_reduce(v, plan, op)?),
        other => return Err(crate::backend::float_only("reduce", other.dtype())),
    })
}

/// Index of the max (min) along the middle dim of (outer, r, inner), NaN winning at its
/// first place as NumPy's argmax.
pub(crate) fn arg_reduce(
    s: &CpuStorage,
    l: &Layout,
    (outer, r, inner): (usize, usize, usize),
    want_max: bool,
) -> Result<Vec<i64>> {
    // in the elements' own type: converting a large tensor to f64 first cost more than
    // the search (NaN is the value unequal to itself; integers and bools have none)
    #[allow(clippy::eq_op)]
    fn search<T: Copy + PartialOrd>(
        vals: &[T],
        (outer, r, inner): (usize, usize, usize),
        want_max: bool,
    ) -> Result<Vec<i64>> {
        let mut idx = try_vec(outer * inner)?;
        for o in 0..outer {
            for i in 0..inner {
                let mut best = vals[o * r * inner + i];
                let mut bi = 0i64;
                if best == best {
                    for k in 1..r {
                        let v = vals[(o * r + k) * inner + i];
                        if v != v {
                            bi = k as i64;
                            break;
                        }
                        if (want_max && v > best) || (!want_max && v < best) {
                            best = v;
                            bi = k as i64;
                        }
                    }
                }
                idx.push(bi);
            }
        }
        Ok(idx)
    }
    crate::with_storage!(s, v => search(&super::contig(v, l)?, (outer, r, inner), want_max))
}
