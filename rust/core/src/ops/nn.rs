//! Fused layers for feed-forward networks: batch norm, dropout, alpha dropout, and the
//! losses whose composed forms would be slow or unstable (cross-entropy, BCE with logits).
//! The composed versions remain the tests' oracle.

use crate::autograd::record;
use crate::dtype::{DType, Element, Float};
use crate::error::{Error, Result};
use crate::kernels;
use crate::layout::fmt_shape;
use crate::ops::unary::{SELU_ALPHA, SELU_SCALE};
use crate::random;
use crate::storage::BufferElement;
use crate::tensor::Tensor;
use crate::{float_dispatch, shape_err, value_err};

/// How a loss combines its per-sample values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// the mean over samples
    Mean,
    /// the sum over samples
    Sum,
    /// one value per sample
    None,
}

impl Reduction {
    /// Parses `"mean" | "sum" | "none"`.
    pub fn parse(op: &str, s: &str) -> Result<Reduction> {
        match s {
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            "none" => Ok(Reduction::None),
            o => Err(value_err!(
                "{op}: reduction must be 'mean', 'sum' or 'none', got '{o}'"
            )),
        }
    }
}

/// Writes `f(slice)` into a contiguous float tensor's storage in place.
pub(crate) fn write_in_place<T: BufferElement>(t: &Tensor, f: impl FnOnce(&mut [T])) -> Result<()> {
    if !t.is_contiguous() {
        return Err(value_err!(
            "in-place update: tensor of shape {} is not contiguous",
            fmt_shape(t.shape())
        ));
    }
    t.write_contig(f);
    Ok(())
}

fn bn_train<T: Float + BufferElement>(
    x: &[T],
    n: usize,
    c: usize,
    gamma: &[T],
    beta: &[T],
    eps: f64,
) -> (Vec<T>, Vec<T>, Vec<T>, Vec<T>) {
    // two passes (mean, then centred squares) for accuracy; every loop runs along a row of
    // features, so it vectorizes
    let mut mean = vec![T::zero(); c];
    for row in x.chunks_exact(c) {
        kernels::add_assign(&mut mean, row);
    }
    let inv_n = T::from_f64(1.0 / n as f64);
    mean.iter_mut().for_each(|m| *m *= inv_n);
    let mut var = vec![T::zero(); c];
    for row in x.chunks_exact(c) {
        for ((v, &xv), &m) in var.iter_mut().zip(row).zip(&mean) {
            let d = xv - m;
            *v += d * d;
        }
    }
    var.iter_mut().for_each(|v| *v *= inv_n);
    let invstd: Vec<T> = var
        .iter()
        .map(|&v| T::one() / (v + T::from_f64(eps)).sqrt())
        .collect();
    let mut xhat = vec![T::zero(); n * c];
    let mut y = vec![T::zero(); n * c];
    for ((row, xh), yr) in x
        .chunks_exact(c)
        .zip(xhat.chunks_exact_mut(c))
        .zip(y.chunks_exact_mut(c))
    {
        for j in 0..c {
            let h = (row[j] - mean[j]) * invstd[j];
            xh[j] = h;
            yr[j] = h * gamma[j] + beta[j];
        }
    }
    (y, xhat, mean, var)
}

fn bn_backward<T: Float + BufferElement>(
    g: &[T],
    xhat: &[T],
    invstd: &[T],
    gamma: &[T],
    n: usize,
    c: usize,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let mut sum_g = vec![T::zero(); c];
    let mut sum_gx = vec![T::zero(); c];
    for (gr, xr) in g.chunks_exact(c).zip(xhat.chunks_exact(c)) {
        for j in 0..c {
            sum_g[j] += gr[j];
            sum_gx[j] += gr[j] * xr[j];
        }
    }
    // dx = gamma * invstd / N * (N g - sum(g) - xhat * sum(g xhat))
    let nn = T::from_f64(n as f64);
    let k: Vec<T> = (0..c).map(|j| gamma[j] * invstd[j] / nn).collect();
    let mut dx = vec![T::zero(); n * c];
    for ((gr, xr), d) in g
        .chunks_exact(c)
        .zip(xhat.chunks_exact(c))
        .zip(dx.chunks_exact_mut(c))
    {
        for j in 0..c {
            d[j] = k[j] * (nn * gr[j] - sum_g[j] - xr[j] * sum_gx[j]);
        }
    }
    (dx, sum_gx, sum_g)
}

impl Tensor {
    /// Batch normalization of a (N, C) input over the batch, as `torch.nn.BatchNorm1d`.
    ///
    /// Training normalizes with the biased batch variance and updates the running statistics
    /// in place (`running = (1 - momentum) running + momentum batch`, the variance unbiased).
    /// Evaluation normalizes with the running statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        training: bool,
        momentum: f64,
        eps: f64,
    ) -> Result<Tensor> {
        self.batch_norm_act(
            weight,
            bias,
            running_mean,
            running_var,
            training,
            momentum,
            eps,
            false,
        )
    }

    /// `batch_norm`, then relu when `relu` is set (BatchNorm1d -> ReLU): one fused kernel
    /// on the GPU, the two ops in turn elsewhere.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_act(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        training: bool,
        momentum: f64,
        eps: f64,
        relu: bool,
    ) -> Result<Tensor> {
        let then_relu = |t: Tensor| if relu { t.relu() } else { Ok(t) };
        let all_gpu = self.is_gpu()
            && [weight, bias, running_mean, running_var]
                .iter()
                .all(|t| t.is_none_or(|t| t.is_gpu()));
        let gpu_stats =
            running_mean.is_some_and(|t| t.is_gpu()) || running_var.is_some_and(|t| t.is_gpu());
        let mut inputs: Vec<&Tensor> = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        if !all_gpu && (gpu_stats || inputs.iter().any(|t| t.is_gpu())) {
            // devices mixed: run on the cpu, then write the updated running stats back
            let cpu = |t: Option<&Tensor>| {
                t.map(|t| t.detach().to_device(crate::tensor::Device::Cpu))
                    .transpose()
            };
            let (rm, rv) = (cpu(running_mean)?, cpu(running_var)?);
            let (hw, hb) = (weight.is_some(), bias.is_some());
            let out = Tensor::gpu_fallback(&inputs, |v| {
                let w = if hw { Some(&v[1]) } else { None };
                let b = if hb { Some(&v[1 + hw as usize]) } else { None };
                v[0].batch_norm(w, b, rm.as_ref(), rv.as_ref(), training, momentum, eps)
            });
            let out = match out {
                Some(r) => r?,
                None => {
                    return Err(crate::error::Error::Device(
                        "batch_norm: running stats on the gpu, input on the cpu".into(),
                    ))
                }
            };
            for (dst, src) in [(running_mean, &rm), (running_var, &rv)] {
                if let (Some(d), Some(s)) = (dst, src) {
                    let _g = crate::autograd::NoGradGuard::new();
                    d.copy_(s)?;
                }
            }
            return then_relu(out);
        }
        if self.ndim() != 2 {
            return Err(shape_err!(
                "batch_norm: expected a 2-D input (N, C), got shape {}",
                fmt_shape(self.shape())
            ));
        }
        let (n, c) = (self.shape()[0], self.shape()[1]);
        for (name, t) in [
            ("weight", weight),
            ("bias", bias),
            ("running_mean", running_mean),
            ("running_var", running_var),
        ] {
            if let Some(t) = t {
                if t.shape() != [c] {
                    return Err(shape_err!(
                        "batch_norm: {name} has shape {} but the input has {c} features",
                        fmt_shape(t.shape())
                    ));
                }
                if t.dtype() != self.dtype() {
                    return Err(Error::DType(format!(
                        "batch_norm: {name} is {} but the input is {}",
                        t.dtype(),
                        self.dtype()
                    )));
                }
            }
        }
        #[cfg(feature = "gpu")]
        if all_gpu {
            let running = match (running_mean, running_var) {
                (Some(m), Some(v)) => Some((m, v)),
                _ => None,
            };
            if running.is_none() && !training {
                // as on the cpu: eval without running stats normalizes with the batch's
                return self.batch_norm_act(weight, bias, None, None, true, momentum, eps, relu);
            }
            if training && n < 2 {
                return Err(value_err!(
                    "batch_norm: expected more than 1 value per feature when training, got input of shape {}",
                    fmt_shape(self.shape())
                ));
            }
            return super::gpu_ops::batch_norm(
                self, weight, bias, running, training, momentum, eps, relu,
            );
        }
        if !training {
            let (rm, rv) = match (running_mean, running_var) {
                (Some(m), Some(v)) => (m.clone(), v.clone()),
                _ => {
                    return self.batch_norm_act(weight, bias, None, None, true, momentum, eps, relu)
                }
            };
            // y = (x - mean) / sqrt(var + eps) * gamma + beta, composed (differentiable in x, gamma, beta)
            let scale = rv.add_scalar(eps)?.sqrt()?;
            let mut y = self.sub(&rm)?.div(&scale)?;
            if let Some(w) = weight {
                y = y.mul(w)?;
            }
            if let Some(b) = bias {
                y = y.add(b)?;
            }
            return then_relu(y);
        }
        if n < 2 {
            return Err(value_err!(
                "batch_norm: expected more than 1 value per feature when training, got input of shape {}",
                fmt_shape(self.shape())
            ));
        }
        let dt = self.dtype();
        float_dispatch!(dt, "batch_norm", T => {
            let gv: Vec<T> = match weight {
                Some(w) => w.to_vec()?,
                None => vec![T::one(); c],
            };
            let bv: Vec<T> = match bias {
                Some(b) => b.to_vec()?,
                None => vec![T::zero(); c],
            };
            let (y, xhat, mean, var) = self.with_contig(|x: &[T]| bn_train(x, n, c, &gv, &bv, eps))?;
            if let (Some(rm), Some(rv)) = (running_mean, running_var) {
                let m = T::from_f64(momentum);
                let unbias = T::from_f64(n as f64 / (n as f64 - 1.0));
                write_in_place(rm, |s: &mut [T]| {
                    s.iter_mut().zip(&mean).for_each(|(r, &b)| *r = (T::one() - m) * *r + m * b)
                })?;
                write_in_place(rv, |s: &mut [T]| {
                    s.iter_mut().zip(&var).for_each(|(r, &b)| *r = (T::one() - m) * *r + m * b * unbias)
                })?;
            }
            let invstd: Vec<T> = var.iter().map(|&v| T::one() / (v + T::from_f64(eps)).sqrt()).collect();
            let out = Tensor::from_vec(y, &[n, c])?;
            let xhat = Tensor::from_vec(xhat, &[n, c])?;
            let (nw, nb) = (weight.is_some_and(|w| w.requires_grad()), bias.is_some_and(|b| b.requires_grad()));
            let mut inputs = vec![self];
            let w_own = weight.cloned();
            if let Some(w) = weight {
                inputs.push(w);
            }
            if let Some(b) = bias {
                inputs.push(b);
            }
            let nx = self.requires_grad();
            let has_w = weight.is_some();
            then_relu(record(out, "BatchNormBackward", &inputs, move |g| {
                let gamma: Vec<T> = match w_own.as_ref() {
                    Some(w) => w.to_vec()?,
                    None => vec![T::one(); c],
                };
                let gv: Vec<T> = g.cast(T::DTYPE)?.to_vec()?;
                let (dx, dgamma, dbeta) =
                    xhat.with_contig(|xh: &[T]| bn_backward(&gv, xh, &invstd, &gamma, n, c))?;
                let mut grads = vec![if nx { Some(Tensor::from_vec(dx, &[n, c])?) } else { None }];
                if has_w {
                    grads.push(if nw { Some(Tensor::from_vec(dgamma, &[c])?) } else { None });
                }
                grads.push(if nb { Some(Tensor::from_vec(dbeta, &[c])?) } else { None });
                Ok(grads)
            }))
        })
    }

    /// Checks cross-entropy's arguments; returns the class labels.
    fn ce_labels(&self, target: &Tensor, label_smoothing: f64) -> Result<Vec<i64>> {
        if self.ndim() != 2 {
            return Err(shape_err!(
                "cross_entropy: expected logits of shape (N, C), got {}",
                fmt_shape(self.shape())
            ));
        }
        if target.dtype() != DType::I64 {
            return Err(Error::DType(format!(
                "cross_entropy: class targets must be int64, got {} (pass probabilities as a float tensor of shape (N, C))",
                target.dtype()
            )));
        }
        let (n, c) = (self.shape()[0], self.shape()[1]);
        if target.shape() != [n] {
            return Err(shape_err!(
                "cross_entropy: target has shape {} but logits have shape {} (expected ({n},))",
                fmt_shape(target.shape()),
                fmt_shape(self.shape())
            ));
        }
        if !(0.0..=1.0).contains(&label_smoothing) {
            return Err(value_err!(
                "cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}"
            ));
        }
        let labels: Vec<i64> = target.to_vec()?;
        if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= c) {
            return Err(Error::Index(format!(
                "cross_entropy: target {bad} is out of range for {c} classes"
            )));
        }
        Ok(labels)
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales the rest by
    /// 1 / (1 - p) in training; the identity otherwise. The mask comes from the global
    /// counter-based generator.
    pub fn dropout(&self, p: f64, training: bool) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&p) {
            return Err(value_err!(
                "dropout: probability must be in [0, 1], got {p}"
            ));
        }
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let scale = if p >= 1.0 { 0.0 } else { 1.0 / (1.0 - p) };
        self.masked_affine("DropoutBackward", p, scale, 0.0, 0.0)
    }

    /// Alpha dropout for SELU networks: dropped units take SELU's negative saturation value
    /// and an affine correction keeps the mean and variance (Klambauer et al. 2017).
    pub fn alpha_dropout(&self, p: f64, training: bool) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&p) {
            return Err(value_err!(
                "alpha_dropout: probability must be in [0, 1], got {p}"
            ));
        }
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        if p >= 1.0 {
            return self.mul_scalar(0.0);
        }
        let alpha_p = -SELU_SCALE * SELU_ALPHA;
        let q = 1.0 - p;
        let a = 1.0 / (q * (1.0 + p * alpha_p * alpha_p)).sqrt();
        let b = -a * alpha_p * p;
        // y = a (x m + alpha' (1 - m)) + b: kept a x + b, dropped a alpha' + b
        self.masked_affine("AlphaDropoutBackward", p, a, b, a * alpha_p + b)
    }

    /// One fused pass: y = x * A + B with (A, B) = (keep_scale, keep_shift) where the
    /// generator keeps the element (probability 1 - p), else (0, drop_shift). dx = g * A.
    fn masked_affine(
        &self,
        name: &'static str,
        p: f64,
        keep_scale: f64,
        keep_shift: f64,
        drop_shift: f64,
    ) -> Result<Tensor> {
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(DType::F32)?
        };
        // one (seed, start) reservation of the global stream: the same mask on either device
        let n = x.numel();
        let (seed, start) = random::reserve(n as u64);
        let mask = crate::backend::MaskSpec {
            seed,
            start,
            // keep when u >= p * 2^32, i.e. with probability 1 - p (to 2^-32)
            threshold: (p * 4_294_967_296.0).min(u32::MAX as f64) as u32,
            keep_scale,
            keep_shift,
            drop_shift,
        };
        let (y, a) = x.storage_guard().masked_affine(x.layout(), &mask)?;
        let out = Tensor::from_buffer(y, x.shape())?;
        let scale = Tensor::from_buffer(a, x.shape())?;
        Ok(record(out, name, &[&x], move |g| {
            Ok(vec![Some(g.mul(&scale)?)])
        }))
    }

    /// Cross-entropy of (N, C) logits against int64 class labels (N,), through a fused,
    /// stable log-softmax. `label_smoothing` mixes the one-hot target with the uniform one.
    pub fn cross_entropy(
        &self,
        target: &Tensor,
        label_smoothing: f64,
        reduction: Reduction,
    ) -> Result<Tensor> {
        let labels = self.ce_labels(target, label_smoothing)?;
        #[cfg(feature = "gpu")]
        if self.is_gpu() {
            return super::gpu_ops::cross_entropy(self, &labels, label_smoothing, reduction);
        }
        let (n, c) = (self.shape()[0], self.shape()[1]);
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(DType::F32)?
        };
        let eps = label_smoothing;
        float_dispatch!(x.dtype(), "cross_entropy", T => {
            let mut probs = vec![T::zero(); n * c];
            let mut losses = vec![T::zero(); n];
            x.with_contig(|v: &[T]| {
                for r in 0..n {
                    let row = &v[r * c..(r + 1) * c];
                    let m = kernels::max(row);
                    let m = if m.to_f64().is_finite() { m } else { T::zero() };
                    let pr = &mut probs[r * c..(r + 1) * c];
                    kernels::map(row, pr, |z: T| (z - m).exp());
                    let s = kernels::sum(pr);
                    // lse = m + ln s, kept apart: with large logits m + ln s rounds ln s away
                    let ln_s = s.ln();
                    let inv = T::one() / s;
                    pr.iter_mut().for_each(|p| *p *= inv);
                    let y = labels[r] as usize;
                    let mut loss = (T::one() - T::from_f64(eps)) * (ln_s - (row[y] - m));
                    if eps > 0.0 {
                        let mean_logp = (kernels::sum(row) / T::from_f64(c as f64) - m) - ln_s;
                        loss -= T::from_f64(eps) * mean_logp;
                    }
                    losses[r] = loss;
                }
            })?;
            let out = match reduction {
                Reduction::None => Tensor::from_vec(losses, &[n])?,
                Reduction::Sum => Tensor::from_vec(vec![losses.iter().copied().sum::<T>()], &[])?,
                Reduction::Mean => {
                    let s: T = losses.iter().copied().sum();
                    Tensor::from_vec(vec![s / T::from_f64(n as f64)], &[])?
                }
            };
            Ok(record(out, "CrossEntropyBackward", &[&x], move |g| {
                // d loss_i / d z = softmax(z) - ((1 - eps) onehot(y) + eps / C), times g_i
                let gv: Vec<f64> = g.to_f64_vec()?;
                let mut d = probs.clone();
                let on = T::from_f64(1.0 - eps);
                let uni = T::from_f64(eps / c as f64);
                for r in 0..n {
                    let gi = match reduction {
                        Reduction::None => gv[r],
                        Reduction::Sum => gv[0],
                        Reduction::Mean => gv[0] / n as f64,
                    };
                    let gi = T::from_f64(gi);
                    let row = &mut d[r * c..(r + 1) * c];
                    row[labels[r] as usize] -= on;
                    row.iter_mut().for_each(|v| *v = (*v - uni) * gi);
                }
                Ok(vec![Some(Tensor::from_vec(d, &[n, c])?)])
            }))
        })
    }

    /// Binary cross-entropy between logits and targets in [0, 1] (same shape), computed
    /// stably as max(x, 0) - x t + log(1 + e^-|x|).
    pub fn binary_cross_entropy_with_logits(
        &self,
        target: &Tensor,
        reduction: Reduction,
    ) -> Result<Tensor> {
        if self.shape() != target.shape() {
            return Err(shape_err!(
                "binary_cross_entropy: logits have shape {} but targets have shape {}",
                fmt_shape(self.shape()),
                fmt_shape(target.shape())
            ));
        }
        // one formula for both devices, from elementwise ops, and the exact gradient
        // (sigmoid(x) - t) g as its rule (the composition's own would be off at x = 0,
        // where |x| and max(x, 0) have kinks)
        let dt = if self.dtype().is_float() {
            self.dtype()
        } else {
            DType::F32
        };
        let x = self.cast(dt)?;
        let (xd, t) = {
            let _g = crate::autograd::NoGradGuard::new();
            (x.detach(), target.placed(x.dtype(), x.device())?)
        };
        let n = x.numel();
        let out = {
            let _g = crate::autograd::NoGradGuard::new();
            let soft = xd.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?;
            let per = xd.relu()?.sub(&xd.mul(&t)?)?.add(&soft)?;
            match reduction {
                Reduction::None => per,
                Reduction::Sum => per.sum(None, false)?,
                // the mean of no losses is 0/0 = NaN, as NumPy's and PyTorch's
                Reduction::Mean => per.mean(None, false)?,
            }
        };
        Ok(record(out, "BinaryCrossEntropyBackward", &[&x], move |g| {
            // d/dx = sigmoid(x) - t
            let d = xd.sigmoid()?.sub(&t)?.mul(g)?;
            Ok(vec![Some(match reduction {
                Reduction::Mean => d.mul_scalar(1.0 / n.max(1) as f64)?,
                Reduction::None | Reduction::Sum => d,
            })])
        }))
    }
}
