//! Fused layers for feed-forward networks: batch norm, dropout, alpha dropout, and the
//! losses whose composed forms would be slow or unstable (cross-entropy, BCE with logits).
//! The composed versions remain the tests' oracle.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::ops::unary::{SELU_ALPHA, SELU_SCALE};
use crate::random;
use crate::tensor::Tensor;
use crate::{shape_err, value_err};
use std::sync::Arc;

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

/// A dropout in training, with its probability: inverted dropout or SELU's alpha dropout.
/// Both draw their mask as `dropout_mask` does, so a dropout fused into another op draws
/// what the separate op would.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dropout {
    /// zero with probability p, scale the rest by 1 / (1 - p)
    Plain(f64),
    /// SELU's saturation value with probability p, then an affine correction
    Alpha(f64),
}

impl Dropout {
    /// The probability.
    pub fn p(self) -> f64 {
        match self {
            Dropout::Plain(p) | Dropout::Alpha(p) => p,
        }
    }

    /// A ValueError unless p is in [0, 1].
    pub fn check(self) -> Result<()> {
        let (name, p) = match self {
            Dropout::Plain(p) => ("dropout", p),
            Dropout::Alpha(p) => ("alpha_dropout", p),
        };
        if !(0.0..=1.0).contains(&p) {
            return Err(value_err!("{name}: probability must be in [0, 1], got {p}"));
        }
        Ok(())
    }

    /// The mask and affine of `n` elements, reserving their numbers from the generator
    /// (alpha dropout: y = a (x m + alpha' (1 - m)) + b, so kept a x + b, dropped
    /// a alpha' + b).
    pub(crate) fn mask(self, n: usize) -> crate::backend::MaskSpec {
        match self {
            Dropout::Plain(p) => dropout_mask(p, n),
            Dropout::Alpha(p) => {
                let alpha_p = -SELU_SCALE * SELU_ALPHA;
                let q = 1.0 - p;
                let a = 1.0 / (q * (1.0 + p * alpha_p * alpha_p)).sqrt();
                let b = -a * alpha_p * p;
                crate::backend::MaskSpec {
                    keep_scale: a,
                    keep_shift: b,
                    drop_shift: a * alpha_p + b,
                    ..dropout_mask(p, n)
                }
            }
        }
    }
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
            0.0,
            None,
        )
    }

    /// `batch_norm`, then relu when `relu` is set (BatchNorm1d -> ReLU), then inverted
    /// dropout with probability `dropout` when it is above 0 (-> Dropout, in training),
    /// fused: the backend's kernels compute the statistics, the normalization, the relu
    /// and the mask in one pass each way. The mask is the one `dropout` would draw next
    /// (the same stream position), so the result is the unfused chain's, bit for bit in
    /// float32 and float64 (float16/bfloat16 round once where the chain rounded twice).
    /// With `residual` (a residual block's shortcut, of the output's shape), the result is
    /// `residual + that`, the add inside the same kernels (one of another dtype is added
    /// after). All tensors must be on one device.
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
        dropout: f64,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&dropout) {
            return Err(value_err!(
                "batch_norm: dropout probability must be in [0, 1], got {dropout}"
            ));
        }
        if self.ndim() != 2 {
            return Err(shape_err!(
                "batch_norm: expected a 2-D input (N, C), got shape {}",
                fmt_shape(self.shape())
            ));
        }
        if !self.dtype().is_float() {
            return Err(crate::backend::float_only("batch_norm", self.dtype()));
        }
        // this op again on another input or without the residual
        let again = |x: &Tensor, residual: Option<&Tensor>| {
            x.batch_norm_act(
                weight,
                bias,
                running_mean,
                running_var,
                training,
                momentum,
                eps,
                relu,
                dropout,
                residual,
            )
        };
        // under autocast a half input normalizes in float32 (statistics, output, parameters),
        // read as it rests: no cast pass before, x's gradient in x's dtype after
        let wide_out =
            crate::autocast::autocast_dtype(self.device()).is_some() && self.dtype().is_narrow();
        let dt = if wide_out { DType::F32 } else { self.dtype() };
        let (n, c) = (self.shape()[0], self.shape()[1]);
        if let Some(r) = residual {
            if r.shape() != [n, c] {
                return Err(shape_err!(
                    "batch_norm: the residual has shape {} but the output has shape {}",
                    fmt_shape(r.shape()),
                    fmt_shape(&[n, c])
                ));
            }
            if r.device() != self.device() {
                return Err(Error::Device(format!(
                    "batch_norm: the residual is on {} but the input is on {}; move one with .to()",
                    r.device().name(),
                    self.device().name()
                )));
            }
            if r.dtype() != dt {
                // promotion as `skip + y` would do it: the add after the kernels
                return r.add(&again(self, None)?);
            }
        }
        let named = [
            ("weight", weight),
            ("bias", bias),
            ("running_mean", running_mean),
            ("running_var", running_var),
        ];
        for (name, t) in named {
            if let Some(t) = t {
                if t.shape() != [c] {
                    return Err(shape_err!(
                        "batch_norm: {name} has shape {} but the input has {c} features",
                        fmt_shape(t.shape())
                    ));
                }
                if t.dtype() != dt {
                    return Err(Error::DType(format!(
                        "batch_norm: {name} is {} but the input is {}{}",
                        t.dtype(),
                        self.dtype(),
                        if wide_out {
                            " (normalized in float32 under autocast)"
                        } else {
                            ""
                        }
                    )));
                }
                if t.device() != self.device() {
                    return Err(Error::Device(format!(
                        "batch_norm: {name} is on {} but the input is on {}; move one with .to()",
                        t.device().name(),
                        self.device().name()
                    )));
                }
            }
        }
        let running = match (running_mean, running_var) {
            (Some(m), Some(v)) => Some((m, v)),
            _ => None,
        };
        if let Some((m, v)) = running {
            // written in place: no view the kernel cannot write through, and nothing it
            // also reads (or writes twice)
            for (name, t) in [("running_mean", m), ("running_var", v)] {
                if !t.is_contiguous() {
                    return Err(value_err!(
                        "batch_norm: {name} is updated in place and must be contiguous, got a view of shape {}",
                        fmt_shape(t.shape())
                    ));
                }
                let others = [
                    Some(self),
                    weight,
                    bias,
                    Some(if std::ptr::eq(t, m) { v } else { m }),
                ];
                if others.iter().flatten().any(|o| o.shares_storage(t)) {
                    return Err(value_err!(
                        "batch_norm: {name} shares memory with another argument; pass a separate tensor"
                    ));
                }
            }
        }
        // eval without running statistics normalizes with the batch's, as PyTorch
        let batch_stats = training || running.is_none();
        if batch_stats && n < 2 {
            return Err(value_err!(
                "batch_norm: expected more than 1 value per feature when training, got input of shape {}",
                fmt_shape(self.shape())
            ));
        }
        let spec = crate::backend::BnSpec {
            n,
            c,
            eps,
            momentum,
            batch_stats,
            update: training && running.is_some(),
            relu,
            drop: (dropout > 0.0).then(|| dropout_mask(dropout, n * c)),
            residual: residual.is_some(),
            wide_out,
        };
        let (y, stats) = {
            let x = self.storage_guard();
            let (w, b) = (
                weight.map(|t| t.storage_guard()),
                bias.map(|t| t.storage_guard()),
            );
            let mut r = running.map(|(m, v)| (m.storage_guard_mut(), v.storage_guard_mut()));
            let running = match (&mut r, running) {
                (Some((gm, gv)), Some((m, v))) => {
                    Some([(&mut **gm, m.layout()), (&mut **gv, v.layout())])
                }
                _ => None,
            };
            let r = residual.map(|t| t.storage_guard());
            x.batch_norm(
                self.layout(),
                w.as_deref().zip(weight.map(|t| t.layout())),
                b.as_deref().zip(bias.map(|t| t.layout())),
                running,
                r.as_deref().zip(residual.map(|t| t.layout())),
                &spec,
            )?
        };
        let out = Tensor::from_buffer(y, &[n, c])?;
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        inputs.extend(residual);
        let grads_for = [
            self.requires_grad(),
            weight.is_some_and(|t| t.requires_grad()),
            bias.is_some_and(|t| t.requires_grad()),
        ];
        let has = [true, weight.is_some(), bias.is_some()];
        // the shortcut's gradient is the output's (d(skip + y) / d skip = 1)
        let residual_grad = residual.map(|t| t.requires_grad());
        let x = self.saved_input();
        let saved: crate::autograd::Saved =
            std::iter::once(x.clone()).chain(weight.cloned()).collect();
        // for a create_graph pass's recorded rule: gamma and beta with their history, and in
        // eval the running statistics with their versions (a training step updates them in
        // place; the recorded rule then refuses, as PyTorch's saved-tensor check would)
        let (gamma, beta) = (
            weight.map(Tensor::saved_input),
            bias.map(Tensor::saved_input),
        );
        let frozen = match (batch_stats, running) {
            (false, Some((m, v))) => Some((m.detach(), v.detach(), m.version(), v.version())),
            _ => None,
        };
        Ok(crate::autograd::record_higher(
            out,
            "BatchNormBackward",
            &inputs,
            saved,
            move |g| {
                if crate::autograd::creating_graph() {
                    let (gamma, beta) = (gamma.as_ref(), beta.as_ref());
                    if let Some((m, v, mv, vv)) = &frozen {
                        crate::autograd::check_saved("BatchNormBackward", m, *mv)?;
                        crate::autograd::check_saved("BatchNormBackward", v, *vv)?;
                    }
                    let stats = frozen.as_ref().map(|(m, v, _, _)| (m, v));
                    let all = batch_norm_grads_recorded(&x, gamma, beta, stats, g, &spec)?;
                    let mut grads = Vec::with_capacity(4);
                    for (i, d) in all.into_iter().enumerate() {
                        if has[i] {
                            grads.push(if grads_for[i] { d } else { None });
                        }
                    }
                    if let Some(want) = residual_grad {
                        grads.push(want.then(|| g.clone()));
                    }
                    return Ok(grads);
                }
                let g = g.placed(dt, x.device())?;
                let (dx, dw, db) = x.storage_guard().batch_norm_grad(
                    x.layout(),
                    &stats,
                    (&g.storage_guard(), g.layout()),
                    &spec,
                )?;
                let shapes: [&[usize]; 3] = [&[n, c], &[c], &[c]];
                let mut grads = Vec::with_capacity(3);
                for (((buf, shape), &want), &present) in [dx, dw, db]
                    .into_iter()
                    .zip(shapes)
                    .zip(&grads_for)
                    .zip(&has)
                {
                    if present {
                        grads.push(if want {
                            Some(Tensor::from_buffer(buf, shape)?)
                        } else {
                            None
                        });
                    }
                }
                if let Some(want) = residual_grad {
                    grads.push(want.then(|| g.clone()));
                }
                Ok(grads)
            },
        ))
    }
}

/// Batch norm's gradients (x, gamma, beta) in recorded ops (for a `create_graph` pass),
/// through the fused dropout (its factor per element, drawn again from the same mask) and
/// ReLU when there are those. Over batch statistics, with xhat = (x - mean) / sigma:
/// dx = gamma / sigma (g - mean(g) - xhat mean(g xhat)); over the fixed running
/// statistics `stats` (eval): dx = gamma / sigma g. dgamma = sum(g xhat), dbeta = sum(g),
/// each mean and sum over the batch.
fn batch_norm_grads_recorded(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    stats: Option<(&Tensor, &Tensor)>,
    g: &Tensor,
    spec: &crate::backend::BnSpec,
) -> Result<Vec<Option<Tensor>>> {
    let dt = x.dtype();
    let k = |v: f64| Tensor::scalar(v, dt);
    let (mean, var) = match stats {
        Some((m, v)) => (m.cast(dt)?, v.cast(dt)?),
        None => {
            let mean = x.mean(Some(&[0]), true)?;
            let var = x.sub(&mean)?.square()?.mean(Some(&[0]), true)?;
            (mean, var)
        }
    };
    let sigma = var.add(&k(spec.eps))?.sqrt()?;
    let xhat = x.sub(&mean)?.div(&sigma)?;
    let mut g = g.cast(dt)?;
    if let Some(mask) = &spec.drop {
        // the mask's factor per element: the fused kernel's affine map applied to ones
        let ones = Tensor::full(x.shape(), 1.0, dt)?.to_device(x.device())?;
        let (f, _) = ones.storage_guard().masked_affine(ones.layout(), mask)?;
        g = g.mul(&Tensor::from_buffer(f, x.shape())?)?;
    }
    if spec.relu {
        let mut z = match gamma {
            Some(w) => xhat.mul(w)?,
            None => xhat.clone(),
        };
        if let Some(b) = beta {
            z = z.add(b)?;
        }
        g = Tensor::where_(&z.compare(crate::ops::CmpOp::Gt, &k(0.0))?, &g, &k(0.0))?;
    }
    let dbeta = g.sum(Some(&[0]), false)?;
    let gx = g.mul(&xhat)?;
    let dgamma = gx.sum(Some(&[0]), false)?;
    let inner = match stats {
        Some(_) => g,
        None => g
            .sub(&g.mean(Some(&[0]), true)?)?
            .sub(&xhat.mul(&gx.mean(Some(&[0]), true)?)?)?,
    };
    let scale = match gamma {
        Some(w) => w.div(&sigma)?,
        None => k(1.0).div(&sigma)?,
    };
    Ok(vec![Some(inner.mul(&scale)?), Some(dgamma), Some(dbeta)])
}

impl Tensor {
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
        let labels: Vec<i64> = crate::capture::reading_ints(|| target.to_vec())?;
        check_classes(&labels, c)?;
        Ok(labels)
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales the rest by
    /// 1 / (1 - p) in training; the identity otherwise. The mask comes from the global
    /// counter-based generator.
    pub fn dropout(&self, p: f64, training: bool) -> Result<Tensor> {
        self.drop_out(Dropout::Plain(p), training)
    }

    /// Alpha dropout for SELU networks: dropped units take SELU's negative saturation value
    /// and an affine correction keeps the mean and variance (Klambauer et al. 2017).
    pub fn alpha_dropout(&self, p: f64, training: bool) -> Result<Tensor> {
        self.drop_out(Dropout::Alpha(p), training)
    }

    /// `dropout` or `alpha_dropout`, as `drop` says.
    pub fn drop_out(&self, drop: Dropout, training: bool) -> Result<Tensor> {
        drop.check()?;
        if !training || drop.p() == 0.0 {
            return Ok(self.clone());
        }
        if let Dropout::Alpha(p) = drop {
            if p >= 1.0 {
                return self.mul_scalar(0.0);
            }
        }
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(DType::F32)?
        };
        let name = match drop {
            Dropout::Plain(_) => "DropoutBackward",
            Dropout::Alpha(_) => "AlphaDropoutBackward",
        };
        x.masked_affine(name, drop.mask(x.numel()))
    }

    /// One fused pass: y = x * A + B with (A, B) = (keep_scale, keep_shift) where the
    /// mask keeps the element (probability 1 - p), else (0, drop_shift). dx = g * A.
    fn masked_affine(&self, name: &'static str, mask: crate::backend::MaskSpec) -> Result<Tensor> {
        let x = self;
        let (y, saved) = x.storage_guard().masked_affine(x.layout(), &mask)?;
        let out = Tensor::from_buffer(y, x.shape())?;
        let saved = Arc::new(saved);
        Ok(crate::autograd::record_higher(
            out,
            name,
            &[x],
            Default::default(),
            move |g| Tensor::masked_scale_grad(g, &saved, mask).map(|dx| vec![Some(dx)]),
        ))
    }

    /// g times a dropout's factor per element (`saved`, `mask`: what `masked_affine`
    /// returned and took). Linear in g and its own adjoint, so in a `create_graph` pass the
    /// result records itself as its derivative.
    pub(crate) fn masked_scale_grad(
        g: &Tensor,
        saved: &Arc<crate::storage::Buffer>,
        mask: crate::backend::MaskSpec,
    ) -> Result<Tensor> {
        let dx = g.storage_guard().masked_scale(g.layout(), saved, &mask)?;
        let dx = Tensor::from_buffer(dx, g.shape())?;
        let saved = saved.clone();
        Ok(crate::autograd::linear_in(
            dx,
            g,
            "MaskedScaleBackward",
            move |gg| Tensor::masked_scale_grad(gg, &saved, mask),
        ))
    }

    /// The gradient through a dropout's mask (`saved`, `mask`: what `masked_affine`
    /// returned and took) and then an activation `op` whose derivative comes from its
    /// output `y`: one pass where the backend has one (`masked_act_grad`), else the mask's
    /// backward and then the activation's, the same values.
    pub(crate) fn masked_act_grad(
        g: &Tensor,
        saved: &crate::storage::Buffer,
        mask: &crate::backend::MaskSpec,
        op: crate::ops::UnaryOp,
        y: &Tensor,
    ) -> Result<Tensor> {
        if g.dtype() == y.dtype() && g.shape() == y.shape() {
            let fused = g.storage_guard().masked_act_grad(
                g.layout(),
                saved,
                mask,
                (&y.storage_guard(), y.layout()),
                op,
            );
            if let Some(dx) = fused {
                return Tensor::from_buffer(dx?, g.shape());
            }
        }
        let dx = g.storage_guard().masked_scale(g.layout(), saved, mask)?;
        let dx = Tensor::from_buffer(dx, g.shape())?;
        Tensor::act_backward_from_output(op, y, &dx)
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
        let (n, c) = (self.shape()[0], self.shape()[1]);
        // under autocast half logits go in as they are and the losses come out float32
        // (the kernels compute in float32 either way: the bits of casting first, without
        // the cast's pass); the logits' gradient takes their dtype, as the cast's would
        let wide_out = matches!(self.dtype(), DType::F16 | DType::BF16)
            && crate::autocast::autocast_dtype(self.device()).is_some();
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(DType::F32)?
        };
        // a captured GPU step reads the targets again at each replay (the kernel takes them
        // as metadata words, one a label)
        let live = (crate::capture::active() && x.is_gpu()).then(|| {
            let target = target.detach();
            Box::new(move || {
                let labels: Vec<i64> = crate::capture::reading_ints(|| target.to_vec())?;
                check_classes(&labels, c)?;
                Ok(labels.iter().map(|&l| l as u32).collect())
            }) as crate::capture::LiveWords
        });
        let (per, saved) = crate::capture::with_live_words("cross_entropy", live, || {
            x.storage_guard()
                .cross_entropy(x.layout(), &labels, label_smoothing, wide_out)
        })?;
        let per = Tensor::from_buffer(per, &[n])?;
        let out = {
            let _g = crate::autograd::NoGradGuard::new();
            match reduction {
                Reduction::None => per,
                Reduction::Sum => per.sum(None, false)?,
                // the mean of no losses is 0/0 = NaN, as PyTorch's
                Reduction::Mean => per.mean(None, false)?,
            }
        };
        let spec = crate::backend::XentGradSpec {
            smoothing: label_smoothing,
            per_row: reduction == Reduction::None,
            scale: match reduction {
                Reduction::Mean => 1.0 / n.max(1) as f64,
                Reduction::None | Reduction::Sum => 1.0,
            },
        };
        let xd = x.saved_input();
        Ok(crate::autograd::record_higher(
            out,
            "CrossEntropyBackward",
            &[&x],
            smallvec::smallvec![xd.clone()],
            move |g| {
                // d loss_i / d z = softmax(z) - ((1 - eps) onehot(y) + eps / C), times g_i
                if crate::autograd::creating_graph() {
                    return cross_entropy_grad_recorded(&xd, g, &labels, &spec)
                        .map(|d| vec![Some(d)]);
                }
                let g = g.placed(if wide_out { DType::F32 } else { xd.dtype() }, xd.device())?;
                let dx = xd.storage_guard().cross_entropy_grad(
                    xd.layout(),
                    &saved,
                    &labels,
                    (&g.storage_guard(), g.layout()),
                    &spec,
                )?;
                Ok(vec![Some(Tensor::from_buffer(dx, &[n, c])?)])
            },
        ))
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
            crate::autocast::full_precision(self)?.dtype()
        } else {
            DType::F32
        };
        let x = self.cast(dt)?;
        let (xd, t) = {
            let _g = crate::autograd::NoGradGuard::new();
            (x.saved_input(), target.placed(x.dtype(), x.device())?)
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
        let saved = smallvec::smallvec![xd.clone(), t.clone()];
        // the rule is recorded ops of x (the target is a constant here), so a create_graph
        // pass differentiates it
        Ok(crate::autograd::record_higher(
            out,
            "BinaryCrossEntropyBackward",
            &[&x],
            saved,
            move |g| {
                // d/dx = sigmoid(x) - t
                let d = xd.sigmoid()?.sub(&t)?.mul(g)?;
                Ok(vec![Some(match reduction {
                    Reduction::Mean => d.mul_scalar(1.0 / n.max(1) as f64)?,
                    Reduction::None | Reduction::Sum => d,
                })])
            },
        ))
    }
}

/// The cross-entropy kernel's gradient in recorded ops of the logits `x` (for a
/// `create_graph` pass): (softmax(x) - ((1 - eps) onehot + eps / C)) times g per row (or
/// the scalar g) and the reduction's scale.
fn cross_entropy_grad_recorded(
    x: &Tensor,
    g: &Tensor,
    labels: &[i64],
    spec: &crate::backend::XentGradSpec,
) -> Result<Tensor> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let dt = x.dtype();
    let eps = spec.smoothing;
    let mut target = vec![eps / c as f64; n * c];
    for (i, &l) in labels.iter().enumerate() {
        target[i * c + l as usize] += 1.0 - eps;
    }
    let target = Tensor::from_vec(target, &[n, c])?
        .cast(dt)?
        .to_device(x.device())?;
    let d = x.log_softmax(-1)?.exp()?.sub(&target)?;
    let g = g.cast(dt)?;
    let g = match spec.per_row {
        true => g.reshape(&[n as isize, 1])?,
        false => g,
    };
    d.mul(&g)?.mul(&Tensor::scalar(spec.scale, dt))
}

/// Inverted dropout's mask over the next `n` numbers of the global stream (reserved here):
/// kept with probability 1 - p and scaled by 1 / (1 - p), dropped to 0. One reservation,
/// so a mask is the same on either device, fused into batch norm or not.
fn dropout_mask(p: f64, n: usize) -> crate::backend::MaskSpec {
    let (seed, start) = random::reserve(n as u64);
    crate::backend::MaskSpec {
        seed,
        start,
        // keep when u >= p * 2^32, i.e. with probability 1 - p (to 2^-32)
        threshold: (p * 4_294_967_296.0).min(u32::MAX as f64) as u32,
        keep_scale: if p >= 1.0 { 0.0 } else { 1.0 / (1.0 - p) },
        keep_shift: 0.0,
        drop_shift: 0.0,
    }
}

/// Class targets in [0, c), or an IndexError naming the first that is not.
fn check_classes(labels: &[i64], c: usize) -> Result<()> {
    match labels.iter().find(|&&l| l < 0 || l as usize >= c) {
        Some(bad) => Err(Error::Index(format!(
            "cross_entropy: target {bad} is out of range for {c} classes"
        ))),
        None => Ok(()),
    }
}
