//! Fused optimizer updates: one call updates every parameter in place, so a training step
//! pays one Python -> Rust crossing for the optimizer, not one per tensor per formula.
//! The formulas are PyTorch's (torch.optim), including where weight decay enters.

use crate::dtype::{Element, Float};
use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::ops::nn::write_in_place;
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
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        let use_buf = h.momentum != 0.0;
        if use_buf {
            check("sgd", p, &[g, &bufs[i]])?;
        } else {
            check("sgd", p, &[g])?;
        }
        float_dispatch!(p.dtype(), "sgd", T => {
            let gv: Vec<T> = g.to_vec()?;
            let c = |v: f64| T::from_f64(v);
            let (lr, mu, damp, wd) = (c(h.lr), c(h.momentum), c(1.0 - h.dampening), c(h.weight_decay));
            let pv: Vec<T> = p.to_vec()?;
            // d = g + wd p
            let mut d: Vec<T> = gv.iter().zip(&pv).map(|(&g, &w)| g + wd * w).collect();
            if use_buf {
                write_in_place(&bufs[i], |b: &mut [T]| {
                    for (bj, dj) in b.iter_mut().zip(d.iter_mut()) {
                        // buf = mu buf + (1 - dampening) d (buf = d on the first step)
                        *bj = if first { *dj } else { mu * *bj + damp * *dj };
                        *dj = if h.nesterov { *dj + mu * *bj } else { *bj };
                    }
                })?;
            }
            write_in_place(p, |w: &mut [T]| w.iter_mut().zip(&d).for_each(|(w, &d)| *w = *w - lr * d))?;
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
    let gv: Vec<T> = g.to_vec()?;
    let c = |x: f64| T::from_f64(x);
    let bc1 = 1.0 - h.beta1.powi(step as i32);
    let bc2 = 1.0 - h.beta2.powi(step as i32);
    let (b1, b2, wd) = (c(h.beta1), c(h.beta2), c(h.weight_decay));
    let mut pv: Vec<T> = p.to_vec()?;
    if h.decoupled {
        // AdamW: p *= 1 - lr wd
        let k = c(1.0 - h.lr * h.weight_decay);
        pv.iter_mut().for_each(|w| *w = *w * k);
    }
    let d: Vec<T> = if !h.decoupled && h.weight_decay != 0.0 {
        gv.iter().zip(&pv).map(|(&g, &w)| g + wd * w).collect()
    } else {
        gv
    };
    let step_size = c(h.lr / bc1);
    let sqrt_bc2 = c(bc2.sqrt());
    let eps = c(h.eps);
    let mut mv: Vec<T> = Vec::new();
    write_in_place(m, |ms: &mut [T]| {
        for (mj, &dj) in ms.iter_mut().zip(&d) {
            *mj = b1 * *mj + (T::one() - b1) * dj;
        }
        mv = ms.to_vec();
    })?;
    write_in_place(v, |vs: &mut [T]| {
        for ((vj, &dj), (w, &mj)) in vs.iter_mut().zip(&d).zip(pv.iter_mut().zip(&mv)) {
            *vj = b2 * *vj + (T::one() - b2) * dj * dj;
            // p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
            *w = *w - step_size * mj / ((*vj).sqrt() / sqrt_bc2 + eps);
        }
    })?;
    write_in_place(p, |w: &mut [T]| w.copy_from_slice(&pv))
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
    for i in 0..params.len() {
        check("adam", &params[i], &[&grads[i], &m[i], &v[i]])?;
        float_dispatch!(params[i].dtype(), "adam", T => adam_one::<T>(&params[i], &grads[i], &m[i], &v[i], step, h)?);
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
    for i in 0..params.len() {
        let (p, g) = (&params[i], &grads[i]);
        check("rmsprop", p, &[g, &sq[i]])?;
        float_dispatch!(p.dtype(), "rmsprop", T => {
            let c = |x: f64| T::from_f64(x);
            let (a, wd, eps, mu, lr) = (c(h.alpha), c(h.weight_decay), c(h.eps), c(h.momentum), c(h.lr));
            let pv: Vec<T> = p.to_vec()?;
            let d: Vec<T> = g.to_vec::<T>()?.iter().zip(&pv).map(|(&g, &w)| g + wd * w).collect();
            let mut sqv: Vec<T> = Vec::new();
            write_in_place(&sq[i], |s: &mut [T]| {
                s.iter_mut().zip(&d).for_each(|(s, &dj)| *s = a * *s + (T::one() - a) * dj * dj);
                sqv = s.to_vec();
            })?;
            let mut denom: Vec<T> = sqv.clone();
            if h.centered {
                check("rmsprop", p, &[&gavg[i]])?;
                write_in_place(&gavg[i], |ga: &mut [T]| {
                    for ((gj, &dj), (den, &s)) in ga.iter_mut().zip(&d).zip(denom.iter_mut().zip(&sqv)) {
                        *gj = a * *gj + (T::one() - a) * dj;
                        *den = s - *gj * *gj;
                    }
                })?;
            }
            denom.iter_mut().for_each(|x| *x = (*x).sqrt() + eps);
            let upd: Vec<T> = if h.momentum > 0.0 {
                check("rmsprop", p, &[&bufs[i]])?;
                let mut out = Vec::new();
                write_in_place(&bufs[i], |b: &mut [T]| {
                    for ((bj, &dj), &den) in b.iter_mut().zip(&d).zip(&denom) {
                        *bj = mu * *bj + dj / den;
                    }
                    out = b.to_vec();
                })?;
                out
            } else {
                d.iter().zip(&denom).map(|(&dj, &den)| dj / den).collect()
            };
            write_in_place(p, |w: &mut [T]| w.iter_mut().zip(&upd).for_each(|(w, &u)| *w = *w - lr * u))?;
        });
    }
    Ok(())
}
