//! Fused optimizer updates: one call updates every parameter in place, so a training step
//! pays one Python -> Rust crossing for the optimizer, not one per tensor per formula.
//! The formulas are PyTorch's (torch.optim), including where weight decay enters.

use crate::dtype::{Element, Float};
use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::storage::BufferElement;
use crate::tensor::Tensor;
use crate::{float_dispatch, value_err};

/// SGD hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct Sgd {
    /// learning rate
    pub lr: f64,
    /// momentum factor (0 disables the buffer)
    pub momentum: f64,
    /// dampening of the gradient entering the buffer
    pub dampening: f64,
    /// Nesterov momentum
    pub nesterov: bool,
    /// L2 penalty added to the gradient
    pub weight_decay: f64,
}

/// Adam / AdamW hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct Adam {
    /// learning rate
    pub lr: f64,
    /// decay of the first moment
    pub beta1: f64,
    /// decay of the second moment
    pub beta2: f64,
    /// added to the denominator
    pub eps: f64,
    /// weight decay (L2 into the gradient for Adam; decoupled for AdamW)
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay
    pub decoupled: bool,
}

/// RMSprop hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct RmsProp {
    /// learning rate
    pub lr: f64,
    /// smoothing constant of the squared-gradient average
    pub alpha: f64,
    /// added to the denominator
    pub eps: f64,
    /// L2 penalty added to the gradient
    pub weight_decay: f64,
    /// momentum factor
    pub momentum: f64,
    /// normalize by the estimated variance instead of the raw second moment
    pub centered: bool,
}

/// Runs a fused update over GPU parameters on the CPU (no gpu optimizer kernels yet):
/// each tensor is downloaded, updated in place, and written back.
fn via_cpu(groups: &[&[Tensor]], f: impl FnOnce(&[Vec<Tensor>]) -> Result<()>) -> Result<bool> {
    if !groups.iter().any(|g| g.iter().any(|t| t.is_gpu())) {
        return Ok(false);
    }
    let cpu: Vec<Vec<Tensor>> = groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|t| t.detach().to_device(crate::tensor::Device::Cpu))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    f(&cpu)?;
    let _g = crate::autograd::NoGradGuard::new();
    for (g, c) in groups.iter().zip(&cpu) {
        for (t, h) in g.iter().zip(c) {
            if t.is_gpu() {
                t.copy_(h)?;
            }
        }
    }
    Ok(true)
}

/// Whether every tensor of every group lives on the GPU (then the update runs there).
#[cfg(feature = "gpu")]
fn all_gpu(groups: &[&[Tensor]]) -> bool {
    groups.iter().all(|g| g.iter().all(|t| t.is_gpu())) && groups.iter().any(|g| !g.is_empty())
}

/// The GPU updates: one fused kernel per parameter (shaders/optim.wgsl), same formulas as
/// the CPU loops below, computed in float32.
#[cfg(feature = "gpu")]
mod gpu_kernels {
    use super::*;
    use crate::gpu::OptParams;
    use crate::ops::gpu_ops::{optimizer_update, OptKernel};

    pub(super) fn sgd(
        p: &Tensor,
        g: &Tensor,
        buf: Option<&Tensor>,
        first: bool,
        h: Sgd,
    ) -> Result<()> {
        let flags = (buf.is_some() as u32) | ((first as u32) << 1) | ((h.nesterov as u32) << 2);
        let params = OptParams {
            flags,
            lr: h.lr as f32,
            a: h.momentum as f32,
            b: (1.0 - h.dampening) as f32,
            wd: h.weight_decay as f32,
            ..Default::default()
        };
        optimizer_update(OptKernel::Sgd, p, g, None, [buf, None], params)
    }

    pub(super) fn adam(
        p: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        step: u64,
        h: Adam,
    ) -> Result<()> {
        let bc1 = 1.0 - h.beta1.powi(step as i32);
        let bc2 = 1.0 - h.beta2.powi(step as i32);
        let params = OptParams {
            lr: h.lr as f32,
            a: h.beta1 as f32,
            b: h.beta2 as f32,
            eps: h.eps as f32,
            wd: if h.decoupled {
                0.0
            } else {
                h.weight_decay as f32
            },
            decay: if h.decoupled {
                (1.0 - h.lr * h.weight_decay) as f32
            } else {
                1.0
            },
            step_size: (h.lr / bc1) as f32,
            sqrt_bc2: bc2.sqrt() as f32,
            ..Default::default()
        };
        optimizer_update(OptKernel::Adam, p, g, None, [Some(m), Some(v)], params)
    }

    pub(super) fn rmsprop(
        p: &Tensor,
        g: &Tensor,
        sq: &Tensor,
        buf: Option<&Tensor>,
        gavg: Option<&Tensor>,
        h: RmsProp,
    ) -> Result<()> {
        let params = OptParams {
            flags: (buf.is_some() as u32) | ((gavg.is_some() as u32) << 1),
            lr: h.lr as f32,
            a: h.alpha as f32,
            b: h.momentum as f32,
            eps: h.eps as f32,
            wd: h.weight_decay as f32,
            ..Default::default()
        };
        if let Some(ga) = gavg {
            // the average first (it reads the parameter), then the update that reads it
            optimizer_update(
                OptKernel::RmsPropAverage,
                ga,
                g,
                Some(p),
                [None, None],
                params,
            )?;
        }
        optimizer_update(OptKernel::RmsProp, p, g, gavg, [Some(sq), buf], params)
    }
}

fn check(op: &str, p: &Tensor, others: &[&Tensor]) -> Result<()> {
    if !p.is_contiguous() {
        return Err(value_err!(
            "{op}: parameter of shape {} is not contiguous",
            fmt_shape(p.shape())
        ));
    }
    for o in others {
        if o.shape() != p.shape() || o.dtype() != p.dtype() {
            return Err(Error::Shape(format!(
                "{op}: state of shape {} ({}) does not match parameter of shape {} ({})",
                fmt_shape(o.shape()),
                o.dtype(),
                fmt_shape(p.shape()),
                p.dtype()
            )));
        }
        if o.shares_storage(p) {
            return Err(value_err!(
                "{op}: optimizer state must not share storage with the parameter"
            ));
        }
    }
    Ok(())
}

/// One SGD step over all parameters. `bufs` are the momentum buffers (ignored when
/// momentum is 0); `first` marks the first step, where PyTorch seeds each buffer with the
/// gradient itself.
pub fn sgd_step(
    params: &[Tensor],
    grads: &[Tensor],
    bufs: &[Tensor],
    first: bool,
    h: Sgd,
) -> Result<()> {
    #[cfg(feature = "gpu")]
    if all_gpu(&[params, grads]) && (h.momentum == 0.0 || all_gpu(&[bufs])) {
        let _g = crate::autograd::NoGradGuard::new();
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            gpu_kernels::sgd(
                p,
                g,
                if h.momentum != 0.0 {
                    Some(&bufs[i])
                } else {
                    None
                },
                first,
                h,
            )?;
        }
        return Ok(());
    }
    if via_cpu(&[params, grads, bufs], |c| {
        sgd_step(&c[0], &c[1], &c[2], first, h)
    })? {
        return Ok(());
    }
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        let use_buf = h.momentum != 0.0;
        if use_buf {
            check("sgd", p, &[g, &bufs[i]])?;
        } else {
            check("sgd", p, &[g])?;
        }
        float_dispatch!(p.dtype(), "sgd", T => {
            let c = |v: f64| T::from_f64(v);
            let (lr, mu, damp, wd) = (c(h.lr), c(h.momentum), c(1.0 - h.dampening), c(h.weight_decay));
            p.write_contig(|w: &mut [T]| {
                g.with_contig(|gs: &[T]| {
                    if use_buf {
                        bufs[i].write_contig(|b: &mut [T]| {
                            for ((w, &g), b) in w.iter_mut().zip(gs).zip(b.iter_mut()) {
                                // d = g + wd p; buf = mu buf + (1 - dampening) d (d on the first step)
                                let d = g + wd * *w;
                                *b = if first { d } else { mu * *b + damp * d };
                                let step = if h.nesterov { d + mu * *b } else { *b };
                                *w -= lr * step;
                            }
                        })
                    } else {
                        for (w, &g) in w.iter_mut().zip(gs) {
                            *w = *w - lr * (g + wd * *w);
                        }
                    }
                })
            })?;
        });
    }
    Ok(())
}

fn adam_one<T: Float + BufferElement>(
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    step: u64,
    h: Adam,
) -> Result<()> {
    let c = |x: f64| T::from_f64(x);
    let bc1 = 1.0 - h.beta1.powi(step as i32);
    let bc2 = 1.0 - h.beta2.powi(step as i32);
    let (b1, b2) = (c(h.beta1), c(h.beta2));
    // Adam adds wd p to the gradient; AdamW decays the weights directly (p *= 1 - lr wd)
    let l2 = if h.decoupled {
        T::zero()
    } else {
        c(h.weight_decay)
    };
    let decay = if h.decoupled {
        c(1.0 - h.lr * h.weight_decay)
    } else {
        T::one()
    };
    let step_size = c(h.lr / bc1);
    let sqrt_bc2 = c(bc2.sqrt());
    let eps = c(h.eps);
    p.write_contig(|w: &mut [T]| {
        m.write_contig(|ms: &mut [T]| {
            v.write_contig(|vs: &mut [T]| {
                g.with_contig(|gs: &[T]| {
                    for (((w, &g), mj), vj) in
                        w.iter_mut().zip(gs).zip(ms.iter_mut()).zip(vs.iter_mut())
                    {
                        let d = g + l2 * *w;
                        *w *= decay;
                        *mj = b1 * *mj + (T::one() - b1) * d;
                        *vj = b2 * *vj + (T::one() - b2) * d * d;
                        // p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
                        *w -= step_size * *mj / ((*vj).sqrt() / sqrt_bc2 + eps);
                    }
                })
            })
        })
    })
}

/// One Adam (or AdamW) step over all parameters; `step` counts from 1.
pub fn adam_step(
    params: &[Tensor],
    grads: &[Tensor],
    m: &[Tensor],
    v: &[Tensor],
    step: u64,
    h: Adam,
) -> Result<()> {
    if step == 0 {
        return Err(value_err!("adam: step counts from 1"));
    }
    #[cfg(feature = "gpu")]
    if all_gpu(&[params, grads, m, v]) {
        let _g = crate::autograd::NoGradGuard::new();
        for i in 0..params.len() {
            gpu_kernels::adam(&params[i], &grads[i], &m[i], &v[i], step, h)?;
        }
        return Ok(());
    }
    if via_cpu(&[params, grads, m, v], |c| {
        adam_step(&c[0], &c[1], &c[2], &c[3], step, h)
    })? {
        return Ok(());
    }
    for i in 0..params.len() {
        check("adam", &params[i], &[&grads[i], &m[i], &v[i]])?;
        float_dispatch!(params[i].dtype(), "adam", T => adam_one::<T>(&params[i], &grads[i], &m[i], &v[i], step, h))?;
    }
    Ok(())
}

/// One RMSprop step. `sq` holds the squared-gradient averages, `bufs` the momentum
/// buffers (used when momentum > 0), `gavg` the gradient averages (used when centered).
pub fn rmsprop_step(
    params: &[Tensor],
    grads: &[Tensor],
    sq: &[Tensor],
    bufs: &[Tensor],
    gavg: &[Tensor],
    h: RmsProp,
) -> Result<()> {
    #[cfg(feature = "gpu")]
    if all_gpu(&[params, grads, sq])
        && (h.momentum == 0.0 || all_gpu(&[bufs]))
        && (!h.centered || all_gpu(&[gavg]))
    {
        let _g = crate::autograd::NoGradGuard::new();
        for i in 0..params.len() {
            let b = if h.momentum > 0.0 {
                Some(&bufs[i])
            } else {
                None
            };
            let ga = if h.centered { Some(&gavg[i]) } else { None };
            gpu_kernels::rmsprop(&params[i], &grads[i], &sq[i], b, ga, h)?;
        }
        return Ok(());
    }
    if via_cpu(&[params, grads, sq, bufs, gavg], |c| {
        rmsprop_step(&c[0], &c[1], &c[2], &c[3], &c[4], h)
    })? {
        return Ok(());
    }
    for i in 0..params.len() {
        let (p, g) = (&params[i], &grads[i]);
        check("rmsprop", p, &[g, &sq[i]])?;
        if h.centered {
            check("rmsprop", p, &[&gavg[i]])?;
        }
        if h.momentum > 0.0 {
            check("rmsprop", p, &[&bufs[i]])?;
        }
        float_dispatch!(p.dtype(), "rmsprop", T => {
            let c = |x: f64| T::from_f64(x);
            let (a, wd, eps, mu, lr) = (c(h.alpha), c(h.weight_decay), c(h.eps), c(h.momentum), c(h.lr));
            let n = p.numel();
            // the optional state is borrowed through scratch slices when unused
            let mut no_ga = Vec::new();
            let mut no_buf = Vec::new();
            p.write_contig(|w: &mut [T]| {
                sq[i].write_contig(|s: &mut [T]| {
                    g.with_contig(|gs: &[T]| {
                        let mut body = |ga: &mut [T], buf: &mut [T]| {
                            for j in 0..n {
                                let d = gs[j] + wd * w[j];
                                s[j] = a * s[j] + (T::one() - a) * d * d;
                                let mut var = s[j];
                                if h.centered {
                                    ga[j] = a * ga[j] + (T::one() - a) * d;
                                    var -= ga[j] * ga[j];
                                }
                                let den = var.sqrt() + eps;
                                if h.momentum > 0.0 {
                                    buf[j] = mu * buf[j] + d / den;
                                    w[j] -= lr * buf[j];
                                } else {
                                    w[j] -= lr * d / den;
                                }
                            }
                        };
                        match (h.centered, h.momentum > 0.0) {
                            (true, true) => gavg[i].write_contig(|ga: &mut [T]| bufs[i].write_contig(|b: &mut [T]| body(ga, b))),
                            (true, false) => gavg[i].write_contig(|ga: &mut [T]| body(ga, &mut no_buf)),
                            (false, true) => bufs[i].write_contig(|b: &mut [T]| body(&mut no_ga, b)),
                            (false, false) => body(&mut no_ga, &mut no_buf),
                        }
                    })
                })
            })?;
        });
    }
    Ok(())
}
