//! Fused network kernels: dropout masks, log-softmax, batch norm, cross-entropy.

use super::*;

/// y = x * A + B with A, B from the dropout mask of stream `seed` at `start` (the numbers
/// the CPU would draw), x a dense run of n elements from element 0; returns (y, A) so the
/// backward is g * A.
pub(crate) fn launch_masked_affine(
    x: &GpuBuffer,
    n: usize,
    mask: &crate::backend::MaskSpec,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let ctx = gpu::context()?;
    check_u32("dropout", n)?;
    let scale = ctx.alloc(n)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (groups, row) = ctx.grid(n, 64)?;
        let p = DropParams {
            n: n as u32,
            threshold: mask.threshold,
            seed_lo: mask.seed as u32,
            seed_hi: (mask.seed >> 32) as u32,
            start_lo: mask.start as u32,
            start_hi: (mask.start >> 32) as u32,
            row,
            _pad: 0,
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
            _pad: 0,
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

/// Batch norm of a (n, c) GPU tensor in fused kernels: statistics (batch ones in training,
/// updating the running ones in place; the running ones in eval), then the normalization,
/// then `relu` if asked (BatchNorm1d -> ReLU in one pass). The backward is two more kernels.
/// Shapes are checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm(
    x_in: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f64,
    eps: f64,
    relu: bool,
) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let (n, c) = (x_in.shape()[0], x_in.shape()[1]);
    check_u32("batch_norm", n * c)?;
    if let Some((rm, rv)) = running {
        in_place_target("batch_norm", rm)?;
        in_place_target("batch_norm", rv)?;
    }
    let x = dense(x_in)?;
    let w = weight.map(dense).transpose()?;
    let b = bias.map(dense).transpose()?;
    let mut flags = (w.is_some() as u32) | ((b.is_some() as u32) << 1);
    if training && running.is_some() {
        flags |= 4;
    }
    if !training {
        flags |= 8;
    }
    if relu {
        flags |= 16;
    }
    // per-feature kernels: one 16 x 16 workgroup per 16 features; `row` counts workgroups
    let (groups_c, row_c) = ctx.grid(c.div_ceil(16).max(1), 1)?;
    let (groups_nc, row_nc) = ctx.grid((n * c).max(1), 64)?;
    let params = move |row| gpu::BnParams {
        n: n as u32,
        c: c as u32,
        flags,
        row,
        eps: eps as f32,
        momentum: momentum as f32,
        unbias: if n > 1 {
            (n as f64 / (n as f64 - 1.0)) as f32
        } else {
            1.0
        },
        _pad: 0.0,
    };
    let stats = ctx.alloc(4 * c)?;
    let y = ctx.alloc(n * c)?;
    if n * c > 0 {
        let mut ts: Vec<&Tensor> = vec![&x];
        let iw = w.as_ref().map(|t| {
            ts.push(t);
            ts.len() - 1
        });
        let ib = b.as_ref().map(|t| {
            ts.push(t);
            ts.len() - 1
        });
        let ir = running.map(|(rm, rv)| {
            ts.push(rm);
            ts.push(rv);
            ts.len() - 2
        });
        Tensor::with_gpus(&ts, |bufs| {
            ctx.run(
                &BN_STATS,
                &params(row_c),
                gpu::Binds {
                    inputs: [Some(bufs[0]), iw.map(|i| bufs[i])],
                    output: &stats,
                    extra: ib.map_or(gpu::Extra::None, |i| gpu::Extra::Buffer(bufs[i])),
                    rw: [ir.map(|i| bufs[i]), ir.map(|i| bufs[i + 1])],
                },
                groups_c,
            )?;
            ctx.run(
                &BN_NORM,
                &params(row_nc),
                gpu::Binds {
                    inputs: [Some(bufs[0]), Some(&stats)],
                    output: &y,
                    extra: gpu::Extra::None,
                    rw: [None, None],
                },
                groups_nc,
            )
        })??;
    }
    let y = new_tensor(y, &[n, c])?;
    let stats = new_tensor(stats, &[4 * c])?;
    let mut inputs = vec![x_in];
    inputs.extend(weight);
    inputs.extend(bias);
    let (nx, has_w, has_b) = (x_in.requires_grad(), weight.is_some(), bias.is_some());
    let (nw, nb) = (
        weight.is_some_and(|t| t.requires_grad()),
        bias.is_some_and(|t| t.requires_grad()),
    );
    Ok(crate::autograd::record(
        y,
        "BatchNormBackward",
        &inputs,
        move |g| {
            let ctx = gpu::context()?;
            let g = dense(&to_gpu_like(g)?)?;
            let coef = ctx.alloc(6 * c)?;
            let dgamma = ctx.alloc(c)?;
            let dbeta = ctx.alloc(c)?;
            let dx = ctx.alloc(n * c)?;
            if n * c > 0 {
                Tensor::with_gpus(&[&g, &x, &stats], |b| {
                    ctx.run(
                        &BN_GRAD_REDUCE,
                        &params(row_c),
                        gpu::Binds {
                            inputs: [Some(b[0]), Some(b[1])],
                            output: &coef,
                            extra: gpu::Extra::Buffer(b[2]),
                            rw: [Some(&dgamma), Some(&dbeta)],
                        },
                        groups_c,
                    )?;
                    ctx.run(
                        &BN_GRAD_X,
                        &params(row_nc),
                        gpu::Binds {
                            inputs: [Some(b[0]), Some(b[1])],
                            output: &dx,
                            extra: gpu::Extra::Buffer(&coef),
                            rw: [None, None],
                        },
                        groups_nc,
                    )
                })??;
            }
            let mut grads = vec![if nx {
                Some(new_tensor(dx, &[n, c])?)
            } else {
                None
            }];
            if has_w {
                grads.push(if nw {
                    Some(new_tensor(dgamma, &[c])?)
                } else {
                    None
                });
            }
            if has_b {
                grads.push(if nb {
                    Some(new_tensor(dbeta, &[c])?)
                } else {
                    None
                });
            }
            Ok(grads)
        },
    ))
}

/// An upstream gradient on the GPU (autograd seeds a CPU scalar at times).
pub(crate) fn to_gpu_like(g: &Tensor) -> Result<Tensor> {
    if g.is_gpu() {
        Ok(g.clone())
    } else {
        g.cast(crate::dtype::DType::F32)?
            .to_device(crate::tensor::Device::Gpu)
    }
}

pub(crate) const XENT: gpu::Kernel = gpu::Kernel::new("xent", gpu::shaders::SOFTMAX, "xent_main");
pub(crate) const XENT_GRAD: gpu::Kernel =
    gpu::Kernel::new("xent_grad", gpu::shaders::SOFTMAX, "xent_grad_main");

/// Fused log-softmax + cross-entropy of (rows, cols) GPU logits against checked labels;
/// the backward is one elementwise kernel from the saved max and log-sum of each row.
pub(crate) fn cross_entropy(
    x_in: &Tensor,
    labels: &[i64],
    smoothing: f64,
    reduction: crate::ops::nn::Reduction,
) -> Result<Tensor> {
    use crate::ops::nn::Reduction;
    let ctx = gpu::context()?;
    let (rows, cols) = (x_in.shape()[0], x_in.shape()[1]);
    check_u32("cross_entropy", rows * cols)?;
    let x = dense(x_in)?;
    let per = ctx.alloc(rows)?;
    let saved = ctx.alloc(3 * rows)?; // each row's max, log-sum and label
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
            _pad: 0,
        };
        x.with_gpu(|xb, _| {
            ctx.run(
                &XENT,
                &p,
                gpu::Binds {
                    inputs: [Some(xb), None],
                    output: &per,
                    extra: gpu::Extra::Words(&words),
                    rw: [Some(&saved), None],
                },
                groups,
            )
        })??;
    }
    let per = new_tensor(per, &[rows])?;
    let out = {
        let _g = crate::autograd::NoGradGuard::new();
        match reduction {
            Reduction::None => per,
            Reduction::Sum => per.sum(None, false)?,
            Reduction::Mean => per.mean(None, false)?,
        }
    };
    Ok(crate::autograd::record(
        out,
        "CrossEntropyBackward",
        &[x_in],
        move |g| {
            let ctx = gpu::context()?;
            let g = dense(&to_gpu_like(g)?)?;
            let dx = ctx.alloc(rows * cols)?;
            if rows * cols > 0 {
                let (groups, row) = ctx.grid(rows * cols, 64)?;
                let p = SmParams {
                    rows: rows as u32,
                    cols: cols as u32,
                    row,
                    x_offset: 0,
                    smoothing: smoothing as f32,
                    g_scale: if reduction == Reduction::Mean {
                        1.0 / rows as f32
                    } else {
                        1.0
                    },
                    g_per_row: (reduction == Reduction::None) as u32,
                    _pad: 0,
                };
                Tensor::with_gpus(&[&x, &g], |b| {
                    ctx.run(
                        &XENT_GRAD,
                        &p,
                        gpu::Binds {
                            inputs: [Some(b[0]), Some(b[1])],
                            output: &dx,
                            extra: gpu::Extra::Buffer(&saved),
                            rw: [None, None],
                        },
                        groups,
                    )
                })??;
            }
            Ok(vec![Some(new_tensor(dx, &[rows, cols])?)])
        },
    ))
}
