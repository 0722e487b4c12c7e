//! Reductions over one or more dims, and the softmax family built on them.

use crate::autograd::NoGradGuard;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::{fmt_shape, normalize_dim, Shape};
use crate::tensor::Tensor;
use crate::value_err;

use crate::backend::{ReduceOp as Kind, ReducePlan};

/// Which dims a reduction covers (`None` or an empty list: all of them).
fn reduce_mask(op: &str, ndim: usize, dims: Option<&[isize]>) -> Result<Vec<bool>> {
    let mut mask = vec![false; ndim];
    match dims {
        None | Some([]) => mask.iter_mut().for_each(|m| *m = true),
        Some(ds) => {
            for &d in ds {
                let d = normalize_dim(op, d, ndim)?;
                if ndim == 0 {
                    continue;
                }
                if mask[d] {
                    return Err(value_err!("{op}: dim {d} appears more than once in {ds:?}"));
                }
                mask[d] = true;
            }
        }
    }
    Ok(mask)
}

/// How many elements each output of a reduction over `mask`'s dims combines.
fn reduced_count(shape: &[usize], mask: &[bool]) -> usize {
    shape
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .map(|(&d, _)| d)
        .product()
}

fn keep_shape(shape: &[usize], mask: &[bool]) -> Shape {
    shape
        .iter()
        .zip(mask)
        .map(|(&d, &m)| if m { 1 } else { d })
        .collect()
}

fn final_shape(shape: &[usize], mask: &[bool], keepdim: bool) -> Vec<isize> {
    shape
        .iter()
        .zip(mask)
        .filter(|(_, &m)| keepdim || !m)
        .map(|(&d, &m)| if m { 1 } else { d as isize })
        .collect()
}

/// A reduction over no elements: the sum's identity (zeros of the kept shape), or an error
/// for max/min, which have none (unless nothing is kept either).
fn empty_reduction(
    op: &str,
    shape: &[usize],
    kshape: &[usize],
    kind: Kind,
    dtype: DType,
) -> Result<Tensor> {
    if kind != Kind::Sum && kshape.iter().product::<usize>() > 0 {
        return Err(Error::EmptyReduction(format!(
            "{op}: cannot reduce over a zero-size dim of a tensor of shape {} (no identity)",
            fmt_shape(shape)
        )));
    }
    Tensor::zeros(kshape, dtype)
}

/// The reduction itself, returning the keepdim-shaped result without autograd, on the
/// input's device.
fn reduce_raw(op: &str, x: &Tensor, mask: &[bool], kind: Kind) -> Result<Tensor> {
    let shape = x.shape();
    let kshape = keep_shape(shape, mask);
    let r = reduced_count(shape, mask);
    let out_n: usize = kshape.iter().product();
    if r == 0 || out_n == 0 {
        // no elements: nothing to loop over (an expanded dim may still be 2**40 long)
        return empty_reduction(op, shape, &kshape, kind, x.dtype())?.to_device(x.device());
    }
    let plan = ReducePlan::new(x.layout(), mask);
    let out = x.storage_guard().reduce(&plan, kind)?;
    Tensor::from_buffer(out, &kshape)
}

impl Tensor {
    /// The sum over `dims` of a half tensor, rounded to its dtype, as float32: the bits of
    /// `self.sum(dims).cast(F32)` in one GPU pass where the tensor rests packed (autocast's
    /// bias gradient); not recorded (a backward computes it with grad off).
    pub(crate) fn sum_rounded_f32(&self, dims: &[isize]) -> Result<Tensor> {
        let mask = reduce_mask("sum", self.ndim(), Some(dims))?;
        let shape = self.shape();
        let kshape = keep_shape(shape, &mask);
        if matches!(self.dtype(), DType::F16 | DType::BF16)
            && reduced_count(shape, &mask) > 0
            && kshape.iter().product::<usize>() > 0
        {
            let plan = ReducePlan::new(self.layout(), &mask);
            if let Some(out) = self.storage_guard().sum_rounded(&plan) {
                let keep: Vec<usize> = (0..shape.len())
                    .filter(|&d| !mask[d])
                    .map(|d| shape[d])
                    .collect();
                return Tensor::from_buffer(out?, &keep);
            }
        }
        self.sum(Some(dims), false)?.cast(DType::F32)
    }

    fn reduce_op(
        &self,
        op: &'static str,
        kind: Kind,
        dims: Option<&[isize]>,
        keepdim: bool,
    ) -> Result<Tensor> {
        let mask = reduce_mask(op, self.ndim(), dims)?;
        if kind == Kind::Sum
            && self.dtype().is_narrow()
            && self.dtype().is_float()
            && crate::autocast::autocast_dtype(self.device()).is_some()
        {
            // a sum of halves runs in float32 under autocast (PyTorch's float32 list)
            return crate::autocast::full_precision(self)?.reduce_op(op, kind, dims, keepdim);
        }
        let counted;
        let x: &Tensor = match self.dtype() {
            // sums of bools and integers are int64, as PyTorch's
            d if kind == Kind::Sum && (d == DType::Bool || d.is_narrow() && !d.is_float()) => {
                counted = self.cast(DType::I64)?;
                &counted
            }
            _ => self,
        };
        if !x.dtype().is_float() {
            // integer reductions in i64, exactly (through f64 they kept 53 bits), without
            // autograd; sums wrap as PyTorch's do; the max or min of bools is a bool
            return reduce_raw(op, x, &mask, kind)?.reshape(&final_shape(
                self.shape(),
                &mask,
                keepdim,
            ));
        }
        let raw = reduce_raw(op, x, &mask, kind)?;
        let out = raw.reshape(&final_shape(self.shape(), &mask, keepdim))?;
        if !(crate::autograd::is_grad_enabled() && x.requires_grad()) {
            return Ok(out);
        }
        let in_shape: Shape = Shape::from_slice(x.shape());
        let kshape: Vec<isize> = keep_shape(x.shape(), &mask)
            .iter()
            .map(|&d| d as isize)
            .collect();
        let xs = x.detach();
        let m = raw.detach();
        let name = match kind {
            Kind::Sum => "SumBackward",
            Kind::Max => "MaxBackward",
            Kind::Min => "MinBackward",
        };
        let saved = match kind {
            Kind::Sum => smallvec::smallvec![],
            Kind::Max | Kind::Min => smallvec::smallvec![xs.clone(), m.clone()],
        };
        // the rule is tensor ops of g (and a mask of x, not differentiated)
        Ok(crate::autograd::record_higher(
            out,
            name,
            &[x],
            saved,
            move |g| {
                let gk = g.reshape(&kshape)?;
                match kind {
                    // d sum = broadcast of g
                    Kind::Sum => Ok(vec![Some(gk.broadcast_to(&in_shape)?)]),
                    // d max = g at the maxima, shared evenly between ties
                    Kind::Max | Kind::Min => {
                        // comparisons come back on the cpu (bool); the mask goes where x lives
                        let hit = xs
                            .compare(crate::ops::CmpOp::Eq, &m)?
                            .cast(xs.dtype())?
                            .to_device(xs.device())?;
                        let dims: Vec<isize> = kshape
                            .iter()
                            .enumerate()
                            .filter(|(i, &d)| d == 1 && in_shape[*i] != 1)
                            .map(|(i, _)| i as isize)
                            .collect();
                        let cnt = if dims.is_empty() {
                            hit.clone()
                        } else {
                            hit.sum(Some(&dims), true)?
                        };
                        Ok(vec![Some(hit.mul(&gk.div(&cnt)?)?)])
                    }
                }
            },
        ))
    }

    /// Sum over `dims` (all when `None`).
    pub fn sum(&self, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        self.reduce_op("sum", Kind::Sum, dims, keepdim)
    }

    /// Mean over `dims` (all when `None`); integer tensors give float32.
    pub fn mean(&self, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(DType::F32)?
        };
        let mask = reduce_mask("mean", x.ndim(), dims)?;
        let r = reduced_count(x.shape(), &mask);
        let s = x.sum(dims, keepdim)?;
        s.div(&Tensor::scalar(r as f64, x.dtype()))
    }

    /// Maximum over `dims` (values only, like `amax`).
    pub fn amax(&self, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        self.reduce_op("max", Kind::Max, dims, keepdim)
    }

    /// Minimum over `dims` (values only, like `amin`).
    pub fn amin(&self, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        self.reduce_op("min", Kind::Min, dims, keepdim)
    }

    /// The `p`-norm over `dims` (all when `None`) of a float tensor: 2 (Euclidean), 1,
    /// infinity (largest |x|), -infinity (smallest), 0 (count of nonzeros, no gradient), or
    /// any other p as (sum |x|^p)^(1/p). Differentiable; the 2-norm's gradient where the
    /// norm is 0 is 0 (a subgradient, as PyTorch's), not NaN.
    pub fn norm(&self, p: f64, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Err(Error::DType(format!(
                "norm: expected a floating-point tensor, got {}",
                self.dtype()
            )));
        }
        if p.is_nan() {
            return Err(value_err!("norm: the order p must be a number, got nan"));
        }
        let dt = self.dtype();
        if p == 1.0 {
            return self.abs()?.sum(dims, keepdim);
        }
        if p == f64::INFINITY {
            return self.abs()?.amax(dims, keepdim);
        }
        if p == f64::NEG_INFINITY {
            return self.abs()?.amin(dims, keepdim);
        }
        if p == 0.0 {
            let _g = NoGradGuard::new();
            let nz = self.compare(crate::ops::CmpOp::Ne, &Tensor::scalar(0.0, dt))?;
            return nz.cast(dt)?.sum(dims, keepdim);
        }
        if p != 2.0 {
            let a = self.abs()?.pow(&Tensor::scalar(p, dt))?;
            return a.sum(dims, keepdim)?.pow(&Tensor::scalar(1.0 / p, dt));
        }
        let mask = reduce_mask("norm", self.ndim(), dims)?;
        let kshape: Vec<isize> = keep_shape(self.shape(), &mask)
            .iter()
            .map(|&d| d as isize)
            .collect();
        let nk = {
            let _g = NoGradGuard::new();
            self.mul(self)?.sum(dims, true)?.sqrt()?
        };
        let out = nk.reshape(&final_shape(self.shape(), &mask, keepdim))?;
        if !(crate::autograd::is_grad_enabled() && self.requires_grad()) {
            return Ok(out);
        }
        let xs = self.saved_input();
        let nkd = nk.clone();
        Ok(crate::autograd::record_higher(
            out,
            "NormBackward",
            &[self],
            smallvec::smallvec![xs.clone(), nk.clone()],
            move |g| {
                // a recorded pass recomputes |x| from x (the kept one is detached)
                let nk = match crate::autograd::creating_graph() {
                    true => xs
                        .mul(&xs)?
                        .sum(Some(&dims_of(&kshape, xs.shape())), true)?
                        .sqrt()?,
                    false => nkd.clone(),
                };
                // d|x| = x / |x|; where |x| = 0 every x is 0, and dividing by 1 gives 0
                let zero = nk.compare(crate::ops::CmpOp::Eq, &Tensor::scalar(0.0, dt))?;
                let safe = Tensor::where_(&zero, &Tensor::scalar(1.0, dt), &nk)?;
                Ok(vec![Some(g.reshape(&kshape)?.mul(&xs)?.div(&safe)?)])
            },
        ))
    }
}

/// The dims a keepdim reduction of `shape` to `kept` summed over (those kept as 1 from a
/// longer dim).
fn dims_of(kept: &[isize], shape: &[usize]) -> Vec<isize> {
    kept.iter()
        .zip(shape)
        .enumerate()
        .filter(|(_, (&k, &s))| k == 1 && s != 1)
        .map(|(i, _)| i as isize)
        .collect()
}

impl Tensor {
    /// Whether any element over `dims` (all when `None`) is true (nonzero, NaN included):
    /// a bool tensor on this tensor's device; false over nothing.
    pub fn any(&self, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        self.truth_reduce("any", Kind::Max, dims, keepdim)
    }

    /// Whether every element over `dims` (all when `None`) is true (nonzero, NaN
    /// included): a bool tensor on this tensor's device; true over nothing.
    pub fn all(&self, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        self.truth_reduce("all", Kind::Min, dims, keepdim)
    }

    fn truth_reduce(
        &self,
        op: &'static str,
        kind: Kind,
        dims: Option<&[isize]>,
        keepdim: bool,
    ) -> Result<Tensor> {
        let _g = NoGradGuard::new();
        let mask = reduce_mask(op, self.ndim(), dims)?;
        let shape = final_shape(self.shape(), &mask, keepdim);
        let r = reduced_count(self.shape(), &mask);
        if r == 0 {
            // the identity: any() of nothing is false, all() true
            let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            let v = if kind == Kind::Max { 0.0 } else { 1.0 };
            let dt = if self.dtype() == DType::U8 {
                DType::U8
            } else {
                DType::Bool
            };
            return Tensor::full(&shape, v, dt)?.to_device(self.device());
        }
        // max/min of the truth values (on the gpu, of a gpu bool's 0/1 floats: nothing is
        // read back)
        let out = self.cast(DType::Bool)?.reduce_op(op, kind, dims, keepdim)?;
        // PyTorch's documented exception: uint8 input gives a uint8 result (0 or 1)
        match self.dtype() {
            DType::U8 => out.cast(DType::U8),
            _ => Ok(out),
        }
    }

    /// Standard deviation over `dims`: the square root of `var` with the same arguments.
    pub fn std(&self, dims: Option<&[isize]>, correction: f64, keepdim: bool) -> Result<Tensor> {
        self.var(dims, correction, keepdim)?.sqrt()
    }

    /// Variance over `dims` with `correction` (1: unbiased, 0: biased).
    pub fn var(&self, dims: Option<&[isize]>, correction: f64, keepdim: bool) -> Result<Tensor> {
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(DType::F32)?
        };
        let mask = reduce_mask("var", x.ndim(), dims)?;
        let r = reduced_count(x.shape(), &mask);
        let mu = x.mean(dims, true)?;
        let d = x.sub(&mu)?;
        let ss = d.mul(&d)?.sum(dims, keepdim)?;
        // var = sum (x - mean)^2 / max(N - correction, 0), PyTorch's rule: correction >= N
        // divides by 0 (inf, or nan for an empty or constant slice), never by a negative
        ss.div(&Tensor::scalar((r as f64 - correction).max(0.0), x.dtype()))
    }

    /// log(sum(exp(x))) over `dims`, computed stably by shifting by the max.
    pub fn logsumexp(&self, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(DType::F32)?
        };
        let mask = reduce_mask("logsumexp", x.ndim(), dims)?;
        // shift by the slice's max, or by 0 where that max is infinite (an all -inf slice,
        // or one holding +inf, would give inf - inf = nan): PyTorch's rule, on either device
        let m = {
            let _g = NoGradGuard::new();
            if x.numel() == 0 {
                // nothing to shift by; the empty sum gives log(0) = -inf as PyTorch does
                Tensor::zeros(&keep_shape(x.shape(), &mask), x.dtype())?.to_device(x.device())?
            } else {
                let m = x.amax(dims, true)?;
                m.masked_fill(&m.isinf()?, &Tensor::scalar(0.0, m.dtype()))?
            }
        };
        let s = x.sub(&m)?.exp()?.sum(dims, true)?.log()?.add(&m)?;
        if keepdim {
            Ok(s)
        } else {
            s.reshape(&final_shape(x.shape(), &mask, false))
        }
    }

    /// log(softmax(x)) along `dim`: (x - m) - log(sum(exp(x - m))) with m the row maximum,
    /// so a row holding +inf gives NaN, as NumPy's and PyTorch's formula does.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        let x = if self.dtype().is_float() {
            crate::autocast::full_precision(self)?
        } else {
            self.cast(DType::F32)?
        };
        let d = normalize_dim("log_softmax", dim, x.ndim())? as isize;
        let dims = [d];
        let dims: &[isize] = if x.ndim() == 0 { &[] } else { &dims };
        if x.numel() == 0 {
            return Ok(x);
        }
        if x.ndim() > 0 && d as usize == x.ndim() - 1 {
            // a backend's fused kernel, one pass per row, where it has one; the backward is
            // dx = g - softmax * sum(g), from the output
            let fused = x.storage_guard().log_softmax_last(x.layout());
            if let Some(out) = fused {
                let out = Tensor::from_buffer(out?, x.shape())?;
                let y = out.detach();
                let xs = x.saved_input();
                return Ok(crate::autograd::record_higher(
                    out,
                    "LogSoftmaxBackward",
                    &[&x],
                    smallvec::smallvec![y.clone()],
                    move |g| {
                        // a recorded pass recomputes the output from the input
                        let y = match crate::autograd::creating_graph() {
                            true => xs.log_softmax(-1)?,
                            false => y.clone(),
                        };
                        Ok(vec![Some(
                            g.sub(&y.exp()?.mul(&g.sum(Some(&[-1]), true)?)?)?,
                        )])
                    },
                ));
            }
        }
        let m = {
            let _g = NoGradGuard::new();
            x.amax(Some(dims), true)?
        };
        let shifted = x.sub(&m)?;
        shifted.sub(&shifted.exp()?.sum(Some(dims), true)?.log()?)
    }

    /// exp(x) / sum(exp(x)) along `dim`, computed stably.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.log_softmax(dim)?.exp()
    }

    /// Indices of the maxima along `dim` (over the flattened tensor when `None`).
    pub fn argmax(&self, dim: Option<isize>, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce("argmax", dim, keepdim, true)
    }

    /// How many rows of (N, C) scores have their argmax at the int64 label (N,): an f32
    /// scalar on the scores' device, so a training loop can sum accuracy without reading
    /// back every batch. Ties go to the lower index, as `argmax`.
    pub fn correct_count(&self, labels: &Tensor) -> Result<Tensor> {
        let _g = crate::autograd::NoGradGuard::new();
        if self.ndim() != 2 || labels.shape() != [self.shape()[0]] {
            return Err(Error::Shape(format!(
                "correct_count: expected scores (N, C) and labels (N,), got {} and {}",
                fmt_shape(self.shape()),
                fmt_shape(labels.shape())
            )));
        }
        if labels.dtype() != crate::dtype::DType::I64 {
            return Err(Error::DType(format!(
                "correct_count: labels must be int64, got {}",
                labels.dtype()
            )));
        }
        let lab: Vec<i64> = labels.to_vec()?;
        let out = self.storage_guard().correct_count(self.layout(), &lab)?;
        Tensor::from_buffer(out, &[])
    }

    /// Indices of the minima along `dim` (over the flattened tensor when `None`).
    pub fn argmin(&self, dim: Option<isize>, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce("argmin", dim, keepdim, false)
    }

    fn arg_reduce(
        &self,
        op: &str,
        dim: Option<isize>,
        keepdim: bool,
        want_max: bool,
    ) -> Result<Tensor> {
        let (x, d) = match dim {
            None => (self.reshape(&[-1])?, 0usize),
            Some(d) => {
                let d = normalize_dim(op, d, self.ndim())?;
                if self.ndim() == 0 {
                    (self.reshape(&[1])?, 0)
                } else {
                    (self.clone(), d)
                }
            }
        };
        let shape = x.shape().to_vec();
        let r = shape[d];
        let outer: usize = shape[..d].iter().product();
        let inner: usize = shape[d + 1..].iter().product();
        if r == 0 {
            return Err(Error::EmptyReduction(format!(
                "{op}: cannot take the {op} of an empty dim (tensor of shape {})",
                fmt_shape(self.shape())
            )));
        }
        let out_shape: Vec<usize> = match dim {
            None if keepdim => vec![1; self.ndim()],
            None => vec![],
            Some(_) if self.ndim() == 0 => vec![],
            Some(_) => {
                let mut s = shape.clone();
                if keepdim {
                    s[d] = 1;
                } else {
                    s.remove(d);
                }
                s
            }
        };
        let idx = x
            .storage_guard()
            .arg_reduce(x.layout(), (outer, r, inner), want_max)?;
        Tensor::from_vec(idx, &out_shape)
    }
}
