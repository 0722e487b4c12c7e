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

/// Reduces a dense (outer, r, inner) block starting at element 0 of `x` over r; `labels`
/// are what RED_CORRECT compares each row's argmax against.
pub(crate) fn launch_reduce(
    (x, half): (&GpuBuffer, u32),
    (outer, r, inner): (usize, usize, usize),
    (op, round_out): (u32, u32),
    labels: Option<&[u32]>,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let n_out = outer * inner;
    check_u32("reduce", outer * r * inner)?;
    let out = ctx.alloc(n_out)?;
    // sums over a non-last axis with many columns (bias gradients) take the coalesced
    // column kernel; everything else one workgroup per output
    let cols = (op == RED_SUM || op == RED_MEAN) && inner >= 16;
    // short axes (pooling windows): one thread per output instead of a workgroup
    let short = !cols && r <= 32;
    if n_out > 0 {
        let (groups, row) = if cols {
            ctx.grid(outer * inner.div_ceil(16), 1)?
        } else if short {
            ctx.grid(n_out, 64)?
        } else {
            ctx.grid(n_out, 1)?
        };
        let p = RdParams {
            outer: outer as u32,
            r: r as u32,
            inner: inner as u32,
            op,
            row,
            half,
            round_out,
            _pad: 0,
        };
        ctx.dispatch(
            if cols {
                "reduce_cols"
            } else if short {
                "reduce_short"
            } else {
                "reduce"
            },
            gpu::shaders::REDUCE,
            if cols {
                "cols_main"
            } else if short {
                "short_main"
            } else {
                "main"
            },
            &p,
            [Some(x), None],
            &out,
            labels,
            groups,
        )?;
    }
    Ok(out)
}
