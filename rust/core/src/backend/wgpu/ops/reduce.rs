//! Axis reductions (reduce.wgsl).

use super::*;

/// Reduction op codes shared with reduce.wgsl.
pub(crate) const RED_SUM: u32 = 0;
pub(crate) const RED_MAX: u32 = 1;
pub(crate) const RED_MIN: u32 = 2;
pub(crate) const RED_ARGMAX: u32 = 3;
pub(crate) const RED_MEAN: u32 = 4;
pub(crate) const RED_ARGMIN: u32 = 5;
pub(crate) const RED_CORRECT: u32 = 6;

/// Reduces a contiguous (outer, r, inner) view of `t` over r.
pub(crate) fn reduce_block(
    t: &Tensor,
    outer: usize,
    r: usize,
    inner: usize,
    op: u32,
    out_shape: &[usize],
) -> Result<Tensor> {
    reduce_block_labels(t, outer, r, inner, op, out_shape, None)
}

/// `reduce_block`, with the labels op 6 compares each row's argmax against.
pub(crate) fn reduce_block_labels(
    t: &Tensor,
    outer: usize,
    r: usize,
    inner: usize,
    op: u32,
    out_shape: &[usize],
    labels: Option<&[u32]>,
) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let n_out = outer * inner;
    let out = ctx.alloc(n_out)?;
    // sums over a non-last axis with many columns (bias gradients) take the coalesced
    // column kernel; everything else one workgroup per output
    let cols = (op == RED_SUM || op == RED_MEAN) && inner >= 16;
    if n_out > 0 {
        let (groups, row) = if cols {
            ctx.grid(outer * inner.div_ceil(16), 1)?
        } else {
            ctx.grid(n_out, 1)?
        };
        let p = RdParams {
            outer: outer as u32,
            r: r as u32,
            inner: inner as u32,
            op,
            row,
            _pad: [0; 3],
        };
        let t = t.contiguous()?;
        let off = t.layout().offset;
        if off != 0 {
            // the kernel indexes from 0; views with an offset are compacted first
            return reduce_block_labels(&copy(&t)?, outer, r, inner, op, out_shape, labels);
        }
        t.with_gpu(|x, _| {
            ctx.dispatch(
                if cols { "reduce_cols" } else { "reduce" },
                gpu::shaders::REDUCE,
                if cols { "cols_main" } else { "main" },
                &p,
                [Some(x), None],
                &out,
                labels,
                groups,
            )
        })??;
    }
    new_tensor(out, out_shape)
}
