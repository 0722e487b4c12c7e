//! The multi-tensor optimizer steps (several tensors a dispatch); part of the GPU storage,
//! kept apart for the file's size.

use super::*;

/// A float32 storage at rest as words whose layout `l` covers it whole from element 0:
/// what the multi-tensor kernels bind.
pub(super) fn whole_f32(s: &WgpuStorage, l: &Layout) -> bool {
    s.dtype == DType::F32 && !s.packed && l.is_contiguous() && l.offset == 0
}

/// The multi-tensor kernel for `rule` (`gated`: its gated variant), with its constants and
/// flags; None: the rule has none (RMSprop), or gated SGD seeds its momentum buffers (a
/// skipped first step must leave them unseeded, which a gate cannot express).
pub(super) fn multi_rule(
    rule: crate::optim::Rule,
    gated: bool,
) -> Option<(
    crate::backend::wgpu::shaders::MultiKind,
    ([f32; 4], [f32; 4]),
    u32,
)> {
    use crate::backend::wgpu::shaders::MultiKind;
    use crate::optim::Rule;
    match rule {
        Rule::Adam { h, step } if gated => Some((MultiKind::Adam, adam_device_consts(&h, step), 0)),
        Rule::Adam { h, step } => Some((MultiKind::Adam, adam_consts(&h, step), 0)),
        Rule::Sgd { h, first } => {
            let momentum = h.momentum != 0.0;
            if gated && momentum && first {
                return None;
            }
            let flags = momentum as u32 | ((first as u32) << 1) | ((h.nesterov as u32) << 2);
            let kind = if momentum {
                MultiKind::SgdMomentum
            } else {
                MultiKind::Sgd
            };
            let c = [
                h.lr as f32,
                h.momentum as f32,
                (1.0 - h.dampening) as f32,
                h.weight_decay as f32,
            ];
            Some((kind, (c, [0.0; 4]), flags))
        }
        Rule::Adadelta(h) => {
            let c = [
                h.lr as f32,
                h.rho as f32,
                h.eps as f32,
                h.weight_decay as f32,
            ];
            Some((MultiKind::Adadelta, (c, [0.0; 4]), 0))
        }
        Rule::RmsProp(_) => None,
    }
}

/// Runs the multi-tensor kernel over `items`, as many a dispatch as the adapter binds, and
/// returns the indices of the items it cannot take (not whole float32 buffers, or a buffer
/// bound twice), for the caller to update one by one. None: no multi-tensor kernel here for
/// this rule (ungated: fewer than two tensors a dispatch). With `gate` (the found-inf flag
/// and the skipped-step count, bound after the tensors; and whether this call's first
/// dispatch counts a skipped step) every item must fit, else None before anything runs: a
/// gated step is all or nothing.
pub(super) fn multi_step(
    items: &[OptItem<'_, WgpuStorage>],
    rule: crate::optim::Rule,
    gate: Option<([&GpuBuffer; 2], bool)>,
) -> Option<Result<Vec<usize>>> {
    use crate::optim::Rule;
    let (gate, mut count) = match gate {
        Some((g, count)) => (Some(g), count),
        None => (None, false),
    };
    let gated = gate.is_some();
    let (kind, consts, flags) = multi_rule(rule, gated)?;
    let per_dispatch = multi_tensors(kind, gated);
    if per_dispatch < if gated { 1 } else { 2 } {
        return None;
    }
    let fits = |it: &OptItem<'_, WgpuStorage>| {
        let bufs: Vec<*const GpuBuffer> = [&*it.param.buf, &*it.grad.0.buf]
            .into_iter()
            .chain(it.state.iter().map(|(s, _)| &*s.buf))
            .map(|b| b as *const GpuBuffer)
            .collect();
        // a buffer bound twice read-write is refused by the GPU's validation
        let distinct = (0..bufs.len()).all(|a| !bufs[a + 1..].contains(&bufs[a]))
            && gate.is_none_or(|g| g.iter().all(|b| !bufs.contains(&(*b as *const GpuBuffer))));
        it.state.len() + 2 == kind.buffers()
            && whole_f32(it.param, it.layout)
            && whole_f32(it.grad.0, it.grad.1)
            && it.state.iter().all(|(s, l)| whole_f32(s, l))
            && distinct
    };
    let (fit, single): (Vec<usize>, Vec<usize>) = (0..items.len()).partition(|&i| fits(&items[i]));
    if gated && !single.is_empty() {
        return None;
    }
    let mut run = || -> Result<Vec<usize>> {
        let mut batch: Vec<(Vec<&GpuBuffer>, usize)> = Vec::new();
        let mut seen: Vec<*const GpuBuffer> = Vec::new();
        let mut flush =
            |batch: &mut Vec<(Vec<&GpuBuffer>, usize)>, seen: &mut Vec<*const GpuBuffer>| {
                seen.clear();
                if batch.is_empty() {
                    return Ok(());
                }
                // the first dispatch counts a skipped step, once
                let flags = flags | if std::mem::take(&mut count) { 8 } else { 0 };
                let r = launch_multi_optimizer(kind, batch, consts, flags, gate).and_then(|()| {
                    match rule {
                        Rule::Adam { h, step } => patch_adam_step(h, step, true, gated),
                        _ => Ok(()),
                    }
                });
                batch.clear();
                r
            };
        for &i in &fit {
            let it = &items[i];
            let bufs: Vec<&GpuBuffer> = [&*it.param.buf, &*it.grad.0.buf]
                .into_iter()
                .chain(it.state.iter().map(|(s, _)| &*s.buf))
                .collect();
            let ptrs: Vec<*const GpuBuffer> = bufs.iter().map(|b| *b as *const GpuBuffer).collect();
            // the same buffer in two tensors of one dispatch: start another dispatch
            if ptrs.iter().any(|p| seen.contains(p)) {
                flush(&mut batch, &mut seen)?;
            }
            seen.extend(ptrs);
            batch.push((bufs, it.layout.numel()));
            if batch.len() == per_dispatch {
                flush(&mut batch, &mut seen)?;
            }
        }
        flush(&mut batch, &mut seen)?;
        Ok(single.clone())
    };
    Some(run())
}
