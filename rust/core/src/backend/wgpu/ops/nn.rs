//! Fused network kernels: dropout masks, log-softmax, batch norm, cross-entropy.

use super::*;
use crate::backend::{BnSpec, XentGradSpec};

/// y = x * A + B with A, B from the dropout mask of stream `seed` at `start` (the numbers
/// the CPU would draw), x a dense run of n elements from element 0; returns (y, A) so the
/// backward is g * A.
pub(crate) fn launch_masked_affine(
    x: &GpuBuffer,
    n: usize,
    mask: &crate::backend::MaskSpec,
    half: u32,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let ctx = gpu::context()?;
    check_u32("dropout", n)?;
    let scale = ctx.alloc(n)?;
    // x and the output packed alike (`half`, the kernels' half code): a word, two elements,
    // a thread
    let words = if half == 0 { n } else { n.div_ceil(2) };
    let out = ctx.alloc(words)?;
    if n > 0 {
        let (groups, row) = ctx.grid(words, 64)?;
        let p = DropParams {
            n: n as u32,
            threshold: mask.threshold,
            seed_lo: mask.seed as u32,
            seed_hi: (mask.seed >> 32) as u32,
            start_lo: mask.start as u32,
            start_hi: (mask.start >> 32) as u32,
            row,
            halves: half | (half << 2),
            keep_scale: mask.keep_scale as f32,
            keep_shift: mask.keep_shift as f32,
            drop_shift: mask.drop_shift as f32,
            _pad2: 0.0,
        };
        const DROPOUT: gpu::Kernel = gpu::Kernel::new("dropout", gpu::shaders::DROPOUT, "main");
        // one pass: the mask (kept for the backward) and the masked affine output
        ctx.run(
            &DROPOUT,
            &p,
            gpu::Binds {
                inputs: [Some(x), None],
                output: &out,
                extra: gpu::Extra::None,
                rw: [Some(&scale), None],
            },
            groups,
        )?;
    }
    Ok((out, scale))
}

/// log_softmax over the last dim of a dense (rows, cols) block at `offset`, one workgroup
/// per row.
pub(crate) fn launch_log_softmax(
    x: &GpuBuffer,
    offset: usize,
    rows: usize,
    cols: usize,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    check_u32("log_softmax", rows * cols)?;
    let out = ctx.alloc(rows * cols)?;
    if rows > 0 {
        let (groups, row) = ctx.grid(rows, 1)?;
        let p = SmParams {
            rows: rows as u32,
            cols: cols as u32,
            row,
            x_offset: offset as u32,
            smoothing: 0.0,
            g_scale: 1.0,
            g_per_row: 0,
            halves: 0,
        };
        ctx.dispatch(
            "log_softmax",
            gpu::shaders::SOFTMAX,
            "log_softmax_main",
            &p,
            [Some(x), None],
            &out,
            None,
            groups,
        )?;
    }
    Ok(out)
}

pub(crate) const BN_STATS: gpu::Kernel =
    gpu::Kernel::new("bn_stats", gpu::shaders::BATCHNORM, "stats_main");
pub(crate) const BN_FORWARD: gpu::Kernel =
    gpu::Kernel::new("bn_forward", gpu::shaders::BATCHNORM_FUSED, "forward_main");
pub(crate) const BN_NORM: gpu::Kernel =
    gpu::Kernel::new("bn_norm", gpu::shaders::BATCHNORM, "norm_main");
pub(crate) const BN_GRAD_REDUCE: gpu::Kernel = gpu::Kernel::new(
    "bn_grad_reduce",
    gpu::shaders::BATCHNORM,
    "grad_reduce_main",
);
pub(crate) const BN_GRAD_X: gpu::Kernel =
    gpu::Kernel::new("bn_grad_x", gpu::shaders::BATCHNORM, "grad_x_main");
pub(crate) const BN_GRAD: gpu::Kernel =
    gpu::Kernel::new("bn_grad", gpu::shaders::BATCHNORM, "grad_main");

/// Rows up to which batch norm's forward and backward each run as one dispatch
/// (`forward_main`, `grad_main`: a workgroup per 16 features walks every row a few times).
/// A training batch is well under it, and a host that records fewer dispatches keeps up
/// with the GPU (issue 18); a larger one runs two kernels each way, whose second spreads
/// the rows over the whole GPU.
const BN_ONE_PASS_ROWS: usize = 2048;

/// batchnorm.wgsl's parameters for `spec`, with `row` threads (or workgroups) per grid row
/// and x and g resting as `halves` says (x's half code in bits 0-1, g's in 2-3).
fn bn_params(spec: &BnSpec, gamma: bool, beta: bool, row: u32, halves: u32) -> gpu::BnParams {
    let (n, c) = (spec.n, spec.c);
    let mut flags = (gamma as u32) | ((beta as u32) << 1);
    if spec.update {
        flags |= 4;
    }
    if !spec.batch_stats {
        flags |= 8;
    }
    if spec.relu {
        flags |= 16;
    }
    if spec.drop.is_some() {
        flags |= 32;
    }
    if spec.residual {
        flags |= 64;
    }
    let d = spec.drop.unwrap_or(crate::backend::MaskSpec {
        seed: 0,
        start: 0,
        threshold: 0,
        keep_scale: 1.0,
        keep_shift: 0.0,
        drop_shift: 0.0,
    });
    gpu::BnParams {
        n: n as u32,
        c: c as u32,
        flags,
        row,
        eps: spec.eps as f32,
        momentum: spec.momentum as f32,
        unbias: if n > 1 {
            (n as f64 / (n as f64 - 1.0)) as f32
        } else {
            1.0
        },
        keep_scale: d.keep_scale as f32,
        threshold: d.threshold,
        seed_lo: d.seed as u32,
        seed_hi: (d.seed >> 32) as u32,
        start_lo: d.start as u32,
        start_hi: (d.start >> 32) as u32,
        halves,
        _pad1: 0,
    }
}

/// The grids of the per-feature kernels (one 16 x 16 workgroup per 16 features; `row`
/// counts workgroups) and of the per-element ones.
fn bn_grids(ctx: &gpu::Context, n: usize, c: usize) -> Result<(([u32; 3], u32), ([u32; 3], u32))> {
    Ok((
        ctx.grid(c.div_ceil(16).max(1), 1)?,
        ctx.grid((n * c).max(1), 64)?,
    ))
}

/// Batch norm of a dense (n, c) block (x packed halves where `x_half` says so, the
/// kernels' half code): the statistics (updating the running ones in place
/// when `spec.update`), then the normalization and the optional relu and dropout. In one
/// dispatch up to `BN_ONE_PASS_ROWS` rows where the adapter has the multi-tensor layout
/// (the kernel binds seven buffers) and the buffers are distinct (read-write bindings may
/// not share one), else two. Returns (y, `[mean | invstd | scale | beta]`).
pub(crate) fn launch_batch_norm(
    x: &GpuBuffer,
    gamma: Option<&GpuBuffer>,
    beta: Option<&GpuBuffer>,
    running: Option<(&GpuBuffer, &GpuBuffer)>,
    residual: Option<&GpuBuffer>,
    spec: &BnSpec,
    x_half: u32,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let ctx = gpu::context()?;
    let (n, c) = (spec.n, spec.c);
    check_u32("batch_norm", n * c)?;
    let ((groups_c, row_c), (groups_nc, row_nc)) = bn_grids(&ctx, n, c)?;
    let params = |row| bn_params(spec, gamma.is_some(), beta.is_some(), row, x_half);
    let stats = ctx.alloc(4 * c)?;
    let y = ctx.alloc(n * c)?;
    let bufs = [
        Some(x),
        gamma,
        beta,
        Some(&y),
        Some(&stats),
        running.map(|r| r.0),
        running.map(|r| r.1),
        residual,
    ];
    let raw: Vec<_> = bufs.iter().flatten().map(|b| b.raw()).collect();
    let distinct = (1..raw.len()).all(|i| !raw[..i].contains(&raw[i]));
    if n * c > 0 && n <= BN_ONE_PASS_ROWS && distinct && ctx.multi_layout().is_some() {
        ctx.run_multi(&BN_FORWARD, &params(row_c), &bufs, groups_c)?;
    } else if n * c > 0 {
        ctx.run(
            &BN_STATS,
            &params(row_c),
            gpu::Binds {
                inputs: [Some(x), gamma],
                output: &stats,
                extra: beta.map_or(gpu::Extra::None, gpu::Extra::Buffer),
                rw: [running.map(|r| r.0), running.map(|r| r.1)],
            },
            groups_c,
        )?;
        ctx.run(
            &BN_NORM,
            &params(row_nc),
            gpu::Binds {
                inputs: [Some(x), Some(&stats)],
                output: &y,
                extra: residual.map_or(gpu::Extra::None, gpu::Extra::Buffer),
                rw: [None, None],
            },
            groups_nc,
        )?;
    }
    Ok((y, stats))
}

/// Batch norm's backward, in one kernel up to `BN_ONE_PASS_ROWS` rows, else two
/// (per-feature sums, then dx): (dx, dgamma, dbeta) from dense g and x (resting as their
/// half codes say) and the forward's statistics. dx comes packed in the half `dx_half`
/// where asked and the one kernel runs with an even c (the bool says whether it did), else
/// as float32 words.
pub(crate) fn launch_batch_norm_grad(
    g: &GpuBuffer,
    x: &GpuBuffer,
    stats: &GpuBuffer,
    spec: &BnSpec,
    [g_half, x_half, dx_half]: [u32; 3],
) -> Result<(GpuBuffer, GpuBuffer, GpuBuffer, bool)> {
    let ctx = gpu::context()?;
    let (n, c) = (spec.n, spec.c);
    let ((groups_c, row_c), (groups_nc, row_nc)) = bn_grids(&ctx, n, c)?;
    let one_pass = n * c > 0 && n <= BN_ONE_PASS_ROWS;
    let dx_half = if one_pass && c % 2 == 0 { dx_half } else { 0 };
    // gamma is already folded into the saved scale
    let halves = x_half | (g_half << 2) | (dx_half << 4);
    let params = |row| bn_params(spec, false, false, row, halves);
    let dgamma = ctx.alloc(c)?;
    let dbeta = ctx.alloc(c)?;
    let dx = ctx.alloc(if dx_half != 0 { n * c / 2 } else { n * c })?;
    if one_pass {
        ctx.run(
            &BN_GRAD,
            &params(row_c),
            gpu::Binds {
                inputs: [Some(g), Some(x)],
                output: &dx,
                extra: gpu::Extra::Buffer(stats),
                rw: [Some(&dgamma), Some(&dbeta)],
            },
            groups_c,
        )?;
        return Ok((dx, dgamma, dbeta, dx_half != 0));
    }
    let coef = ctx.alloc(6 * c)?;
    if n * c > 0 {
        ctx.run(
            &BN_GRAD_REDUCE,
            &params(row_c),
            gpu::Binds {
                inputs: [Some(g), Some(x)],
                output: &coef,
                extra: gpu::Extra::Buffer(stats),
                rw: [Some(&dgamma), Some(&dbeta)],
            },
            groups_c,
        )?;
        ctx.run(
            &BN_GRAD_X,
            &params(row_nc),
            gpu::Binds {
                inputs: [Some(g), Some(x)],
                output: &dx,
                extra: gpu::Extra::Buffer(&coef),
                rw: [None, None],
            },
            groups_nc,
        )?;
    }
    Ok((dx, dgamma, dbeta, false))
}

pub(crate) const XENT: gpu::Kernel = gpu::Kernel::new("xent", gpu::shaders::SOFTMAX, "xent_main");
pub(crate) const XENT_GRAD: gpu::Kernel =
    gpu::Kernel::new("xent_grad", gpu::shaders::SOFTMAX, "xent_grad_main");

/// Fused log-softmax + cross-entropy of dense (rows, cols) logits against checked labels:
/// the per-row losses and each row's (max, log-sum, label) for the backward.
pub(crate) fn launch_cross_entropy(
    (x, x_half): (&GpuBuffer, u32),
    rows: usize,
    cols: usize,
    labels: &[i64],
    smoothing: f64,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let ctx = gpu::context()?;
    check_u32("cross_entropy", rows * cols)?;
    let per = ctx.alloc(rows)?;
    let saved = ctx.alloc(3 * rows)?;
    if rows > 0 {
        let words: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let (groups, row) = ctx.grid(rows, 1)?;
        let p = SmParams {
            rows: rows as u32,
            cols: cols as u32,
            row,
            x_offset: 0,
            smoothing: smoothing as f32,
            g_scale: 1.0,
            g_per_row: 0,
            halves: x_half,
        };
        ctx.run(
            &XENT,
            &p,
            gpu::Binds {
                inputs: [Some(x), None],
                output: &per,
                extra: gpu::Extra::Words(&words),
                rw: [Some(&saved), None],
            },
            groups,
        )?;
    }
    Ok((per, saved))
}

/// Cross-entropy's backward, one elementwise kernel from dense logits, the saved rows and
/// the dense upstream gradient.
pub(crate) fn launch_cross_entropy_grad(
    (x, x_half): (&GpuBuffer, u32),
    rows: usize,
    cols: usize,
    saved: &GpuBuffer,
    (g, g_half): (&GpuBuffer, u32),
    spec: &XentGradSpec,
    out_half: u32,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    // packed out (a half code): a word, two elements, a thread
    let words = if out_half != 0 {
        (rows * cols).div_ceil(2)
    } else {
        rows * cols
    };
    let dx = ctx.alloc(words)?;
    if rows * cols > 0 {
        let (groups, row) = ctx.grid(words, 64)?;
        let p = SmParams {
            rows: rows as u32,
            cols: cols as u32,
            row,
            x_offset: 0,
            smoothing: spec.smoothing as f32,
            g_scale: spec.scale as f32,
            g_per_row: spec.per_row as u32,
            halves: x_half | (g_half << 2) | (out_half << 4),
        };
        ctx.run(
            &XENT_GRAD,
            &p,
            gpu::Binds {
                inputs: [Some(x), Some(g)],
                output: &dx,
                extra: gpu::Extra::Buffer(saved),
                rw: [None, None],
            },
            groups,
        )?;
    }
    Ok(dx)
}
