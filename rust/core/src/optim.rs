//! Fused optimizer updates: one call updates every parameter in place, so a training step
//! pays one Python -> Rust crossing for the optimizer, not one per tensor per formula.
//! The formulas are PyTorch's (torch.optim), including where weight decay enters.

use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::tensor::{Device, Tensor};
use crate::value_err;

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

/// Adadelta hyperparameters.
#[derive(Debug, Clone, Copy)]
pub struct Adadelta {
    /// scales the step (the step's size comes from the running averages)
    pub lr: f64,
    /// decay of both running averages
    pub rho: f64,
    /// added inside both square roots
    pub eps: f64,
    /// L2 penalty added to the gradient
    pub weight_decay: f64,
}

/// One parameter's update with this step's constants: what a backend's
/// `optimizer_step` runs. The state storages come in the rule's order: SGD the momentum
/// buffer (when momentum is nonzero); Adam m, v; RMSprop the squared-gradient average, then
/// the momentum buffer (momentum > 0), then the gradient average (centered); Adadelta the
/// squared-gradient average, then the squared-step average.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rule {
    /// SGD, `first` on the step that seeds the momentum buffer
    Sgd { h: Sgd, first: bool },
    /// Adam/AdamW at step `step` (from 1)
    Adam { h: Adam, step: u64 },
    /// RMSprop
    RmsProp(RmsProp),
    /// Adadelta
    Adadelta(Adadelta),
}

/// Updates `p` from `g` and its `state` in place: through the backend holding them all, or,
/// when they are spread over devices, on host copies written back afterwards.
fn update(op: &str, p: &Tensor, g: &Tensor, state: &[&Tensor], rule: Rule) -> Result<()> {
    let mut others = vec![g];
    others.extend_from_slice(state);
    check(op, p, &others)?;
    let _g = crate::autograd::NoGradGuard::new();
    let dev = p.device();
    if others.iter().all(|t| t.device() == dev) {
        return p.update_storages(g, state, |pb, pl, gb, sb| {
            pb.optimizer_step(pl, gb, sb, rule)
        });
    }
    let host = |t: &Tensor| t.detach().to_device(Device::Cpu);
    let (hp, hg) = (host(p)?, host(g)?);
    let hs: Vec<Tensor> = state.iter().map(|t| host(t)).collect::<Result<_>>()?;
    let hs_refs: Vec<&Tensor> = hs.iter().collect();
    update(op, &hp, &hg, &hs_refs, rule)?;
    for (t, h) in std::iter::once(p)
        .chain(state.iter().copied())
        .zip(std::iter::once(&hp).chain(&hs))
    {
        if t.device() != Device::Cpu {
            t.copy_(h)?;
        }
    }
    Ok(())
}

/// A step gated on the device (mixed precision without a read-back, as PyTorch's fused
/// optimizers under a GradScaler): `found`, the scaler's one-element float32 flag (nonzero:
/// skip the step), and `skipped`, the optimizer's one-element float32 count of the steps
/// skipped so far, which Adam's bias corrections take off its step count.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    /// the found-inf flag
    pub found: &'a Tensor,
    /// the count of skipped steps
    pub skipped: &'a Tensor,
    /// whether this call adds a skipped step to `skipped` (the caller sets it on exactly
    /// one call of each optimizer step)
    pub count: bool,
}

/// `update` for many parameters at once: when every tensor is on the GPU and no storage
/// repeats, the backend updates them together (a multi-tensor kernel: a few dispatches for
/// a whole network); otherwise one by one. Same results either way. With a `gate`, the
/// backend's gated update of all of them or nothing: false where it has none for these
/// tensors (the caller reads the flag back and decides on the host).
fn update_many(
    op: &str,
    params: &[Tensor],
    grads: &[Tensor],
    states: &[Vec<&Tensor>],
    rule: Rule,
    gate: Option<Gate<'_>>,
) -> Result<bool> {
    let gate_tensors = gate.iter().flat_map(|g| [g.found, g.skipped]);
    let all = || {
        params
            .iter()
            .chain(grads)
            .chain(states.iter().flatten().copied())
    };
    let together = params.len() > (gate.is_none() as usize)
        && all()
            .chain(gate_tensors.clone())
            .all(|t| t.device() == Device::Gpu)
        && distinct_storages(all().chain(gate_tensors));
    if !together {
        if gate.is_some() {
            return Ok(false);
        }
        for ((p, g), st) in params.iter().zip(grads).zip(states) {
            update(op, p, g, st, rule)?;
        }
        return Ok(true);
    }
    for ((p, g), st) in params.iter().zip(grads).zip(states) {
        let mut others = vec![g];
        others.extend_from_slice(st);
        check(op, p, &others)?;
    }
    let _g = crate::autograd::NoGradGuard::new();
    // every storage is distinct (checked above), so holding all the locks at once is safe
    let mut pg: Vec<_> = params.iter().map(|p| p.storage_guard_mut()).collect();
    let mut sg: Vec<Vec<_>> = states
        .iter()
        .map(|st| st.iter().map(|s| s.storage_guard_mut()).collect())
        .collect();
    let gg: Vec<_> = grads.iter().map(|g| g.storage_guard()).collect();
    let mut items = Vec::with_capacity(params.len());
    for (i, ((p, st), g)) in pg.iter_mut().zip(sg.iter_mut()).zip(&gg).enumerate() {
        let state = st
            .iter_mut()
            .zip(&states[i])
            .map(|(s, t)| (&mut **s, t.layout()))
            .collect();
        items.push((
            &mut **p,
            params[i].layout(),
            (&**g, grads[i].layout()),
            state,
        ));
    }
    let Some(gate) = gate else {
        return crate::storage::Buffer::optimizer_step_many(items, rule).map(|()| true);
    };
    for (name, t) in [("found", gate.found), ("skipped", gate.skipped)] {
        if t.numel() != 1 || t.dtype() != crate::dtype::DType::F32 {
            return Err(value_err!(
                "{op}: the gate's {name} must be one float32 element, got shape {} ({})",
                fmt_shape(t.shape()),
                t.dtype()
            ));
        }
    }
    let (found, skipped) = (gate.found.storage_guard(), gate.skipped.storage_guard());
    match crate::storage::Buffer::optimizer_step_gated(items, rule, &found, &skipped, gate.count) {
        None => Ok(false),
        Some(r) => r.map(|()| true),
    }
}

/// Mixed precision's gradient unscaling in a few passes where the backend can (the GPU's
/// multi-tensor kernel): each gradient times `inv` in place, and a 0-d float32 tensor on
/// their device holding 1.0 if any element was inf or NaN before, else 0.0. With `scale`
/// (a scale kept on the device: float32 (scale, inverse scale, ...), contiguous) the
/// inverse is read there and `inv` is unused. None where it cannot (the host, halves,
/// views, gradients sharing storage, fewer than two without `scale`): the caller unscales
/// and checks them one at a time.
pub fn unscale_grads(grads: &[Tensor], inv: f32, scale: Option<&Tensor>) -> Result<Option<Tensor>> {
    let distinct = distinct_storages(grads.iter().chain(scale));
    let scale_ok = scale.is_none_or(|s| {
        s.device() == Device::Gpu
            && s.dtype() == crate::dtype::DType::F32
            && s.numel() >= 2
            && s.is_contiguous()
            && s.layout().offset == 0 // the kernel reads the storage's element 1
    });
    if grads.len() < (if scale.is_some() { 1 } else { 2 })
        || !distinct
        || !scale_ok
        || grads.iter().any(|g| g.device() != Device::Gpu)
    {
        return Ok(None);
    }
    let _g = crate::autograd::NoGradGuard::new();
    // every storage is distinct (checked above), so holding all the locks at once is safe
    let mut guards: Vec<_> = grads.iter().map(|g| g.storage_guard_mut()).collect();
    let mut items: Vec<_> = guards
        .iter_mut()
        .zip(grads)
        .map(|(b, g)| (&mut **b, g.layout()))
        .collect();
    let scale_guard = scale.map(|s| s.storage_guard());
    match crate::storage::Buffer::unscale_many(&mut items, inv, scale_guard.as_deref()) {
        None => Ok(None),
        Some(flag) => Tensor::from_buffer(flag?, &[]).map(Some),
    }
}

/// GradScaler's schedule (PyTorch's `GradScaler` arguments).
#[derive(Debug, Clone, Copy)]
pub struct ScaleUpdate {
    /// the factor the scale grows by after `interval` clean steps in a row
    pub growth: f64,
    /// the factor the scale shrinks by after a step with inf or NaN gradients
    pub backoff: f64,
    /// clean steps in a row before the scale grows
    pub interval: u32,
}

/// GradScaler's update of a scale kept on the device, in one kernel where the backend has
/// one: `state` is float32 (scale, inverse scale, clean steps in a row, unused), `found`
/// the one-element flag of the iteration's steps (nonzero: back off). False (nothing done)
/// where the backend has no kernel (the host): the caller composes it from tensor ops.
pub fn amp_update_scale(state: &Tensor, found: &Tensor, h: ScaleUpdate) -> Result<bool> {
    let f32_ = crate::dtype::DType::F32;
    if state.shape() != [4] || state.dtype() != f32_ || found.numel() != 1 || found.dtype() != f32_
    {
        return Err(value_err!(
            "amp_update_scale: expected a float32 state of shape [4] and a one-element float32 \
             flag, got {} ({}) and {} ({})",
            fmt_shape(state.shape()),
            state.dtype(),
            fmt_shape(found.shape()),
            found.dtype()
        ));
    }
    // the kernel updates the storage's first four elements: the state must be them, in order
    if state.shares_storage(found)
        || state.device() != found.device()
        || !state.is_contiguous()
        || state.layout().offset != 0
    {
        return Ok(false);
    }
    let _g = crate::autograd::NoGradGuard::new();
    let f = found.storage_guard();
    let mut s = state.storage_guard_mut();
    match s.amp_update_scale(&f, h) {
        None => Ok(false),
        Some(r) => r.map(|()| true),
    }
}

/// Whether no two of `tensors` share a storage (the multi-tensor kernels bind each buffer
/// read-write once, and hold every storage's lock at once).
fn distinct_storages<'a>(tensors: impl Iterator<Item = &'a Tensor>) -> bool {
    let mut addrs: Vec<usize> = tensors.map(|t| t.storage_addr()).collect();
    let n = addrs.len();
    addrs.sort_unstable();
    addrs.dedup();
    addrs.len() == n
}

/// An error naming the list whose length is not the parameters' count.
fn same_counts(op: &str, params: usize, lists: &[(&str, &[Tensor])]) -> Result<()> {
    match lists.iter().find(|(_, l)| l.len() != params) {
        Some((name, l)) => Err(value_err!(
            "{op}: {params} parameters but {} {name}",
            l.len()
        )),
        None => Ok(()),
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
        if !o.is_contiguous() {
            return Err(value_err!(
                "{op}: optimizer state of shape {} is not contiguous",
                fmt_shape(o.shape())
            ));
        }
    }
    for (i, a) in others.iter().enumerate() {
        if others[i + 1..].iter().any(|b| a.shares_storage(b)) {
            return Err(value_err!(
                "{op}: gradient and optimizer states must not share storage"
            ));
        }
    }
    Ok(())
}

/// One SGD step over all parameters. `bufs` are the momentum buffers (ignored when
/// momentum is 0); `first` marks the first step, where PyTorch seeds each buffer with the
/// gradient itself.
///
/// With a `gate`, returns false (nothing done) where the backend cannot gate the step.
pub fn sgd_step(
    params: &[Tensor],
    grads: &[Tensor],
    bufs: &[Tensor],
    first: bool,
    h: Sgd,
    gate: Option<Gate<'_>>,
) -> Result<bool> {
    let momentum = h.momentum != 0.0;
    let lists: &[(&str, &[Tensor])] = if momentum {
        &[("gradients", grads), ("momentum buffers", bufs)]
    } else {
        &[("gradients", grads)]
    };
    same_counts("sgd", params.len(), lists)?;
    let states: Vec<Vec<&Tensor>> = (0..params.len())
        .map(|i| if momentum { vec![&bufs[i]] } else { vec![] })
        .collect();
    update_many("sgd", params, grads, &states, Rule::Sgd { h, first }, gate)
}

/// One Adam (or AdamW) step over all parameters; `step` counts from 1 (with a `gate`, the
/// steps it skipped come off it on the device). With a `gate`, returns false (nothing done)
/// where the backend cannot gate the step.
pub fn adam_step(
    params: &[Tensor],
    grads: &[Tensor],
    m: &[Tensor],
    v: &[Tensor],
    step: u64,
    h: Adam,
    gate: Option<Gate<'_>>,
) -> Result<bool> {
    if step == 0 {
        return Err(value_err!("adam: step counts from 1"));
    }
    same_counts(
        "adam",
        params.len(),
        &[("gradients", grads), ("m", m), ("v", v)],
    )?;
    let states: Vec<Vec<&Tensor>> = m.iter().zip(v).map(|(m, v)| vec![m, v]).collect();
    update_many("adam", params, grads, &states, Rule::Adam { h, step }, gate)
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
        let mut state = vec![&sq[i]];
        if h.momentum > 0.0 {
            state.push(&bufs[i]);
        }
        if h.centered {
            state.push(&gavg[i]);
        }
        update("rmsprop", &params[i], &grads[i], &state, Rule::RmsProp(h))?;
    }
    Ok(())
}

/// One Adadelta step. `square_avg` holds the squared-gradient averages, `acc_delta` the
/// squared-step averages. With a `gate`, returns false (nothing done) where the backend
/// cannot gate the step.
pub fn adadelta_step(
    params: &[Tensor],
    grads: &[Tensor],
    square_avg: &[Tensor],
    acc_delta: &[Tensor],
    h: Adadelta,
    gate: Option<Gate<'_>>,
) -> Result<bool> {
    same_counts(
        "adadelta",
        params.len(),
        &[
            ("gradients", grads),
            ("square_avg", square_avg),
            ("acc_delta", acc_delta),
        ],
    )?;
    let states: Vec<Vec<&Tensor>> = square_avg
        .iter()
        .zip(acc_delta)
        .map(|(s, a)| vec![s, a])
        .collect();
    update_many("adadelta", params, grads, &states, Rule::Adadelta(h), gate)
}
