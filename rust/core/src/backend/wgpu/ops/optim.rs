//! In-place optimizer updates (optim.wgsl).

use super::*;

/// Which optimizer kernel of optim.wgsl to run.
#[derive(Clone, Copy)]
pub(crate) enum OptKernel {
    Sgd,
    Adam,
    RmsProp,
    RmsPropAverage,
    Adadelta,
}

/// One in-place optimizer update of `param` (binding 3, contiguous from element 0) from
/// `grad` (binding 1, likewise), with `aux` at binding 2 and the state buffers at 5 and 6.
/// `p.n` and `p.row` are filled in here.
pub(crate) fn launch_optimizer(
    kernel: OptKernel,
    param: &GpuBuffer,
    n: usize,
    grad: &GpuBuffer,
    aux: Option<&GpuBuffer>,
    state: [Option<&GpuBuffer>; 2],
    mut p: gpu::OptParams,
) -> Result<()> {
    const SGD: gpu::Kernel = gpu::Kernel::new("sgd", gpu::shaders::OPTIM, "sgd_main");
    const ADAM: gpu::Kernel = gpu::Kernel::new("adam", gpu::shaders::OPTIM, "adam_main");
    const RMS: gpu::Kernel = gpu::Kernel::new("rmsprop", gpu::shaders::OPTIM, "rmsprop_main");
    const RMS_AVG: gpu::Kernel =
        gpu::Kernel::new("rmsprop_gavg", gpu::shaders::OPTIM, "rmsprop_gavg_main");
    const ADADELTA: gpu::Kernel =
        gpu::Kernel::new("adadelta", gpu::shaders::OPTIM, "adadelta_main");
    let (k, name) = match kernel {
        OptKernel::Sgd => (&SGD, "sgd"),
        OptKernel::Adam => (&ADAM, "adam"),
        OptKernel::RmsProp => (&RMS, "rmsprop"),
        OptKernel::RmsPropAverage => (&RMS_AVG, "rmsprop"),
        OptKernel::Adadelta => (&ADADELTA, "adadelta"),
    };
    let ctx = gpu::context()?;
    check_u32(name, n)?;
    if n == 0 {
        return Ok(());
    }
    // packed halves (sgd, adam): a word, two elements, a thread
    let threads = if p.half != 0 { n.div_ceil(2) } else { n };
    let (groups, row) = ctx.grid(threads, 64)?;
    p.n = n as u32;
    p.row = row;
    let binds = gpu::Binds {
        inputs: [Some(grad), aux],
        output: param,
        extra: gpu::Extra::None,
        rw: state,
    };
    ctx.run(k, &p, binds, groups)
}

/// GradScaler's update of a scale kept on the device (optim.wgsl's `amp_update_main`):
/// `state` holds (scale, inverse scale, clean steps in a row, unused), `found` the
/// found-inf flag of this iteration's steps.
pub(crate) fn launch_amp_update(
    state: &GpuBuffer,
    found: &GpuBuffer,
    h: crate::optim::ScaleUpdate,
) -> Result<()> {
    const AMP: gpu::Kernel = gpu::Kernel::new("amp_update", gpu::shaders::OPTIM, "amp_update_main");
    let ctx = gpu::context()?;
    let p = gpu::OptParams {
        n: 1,
        row: 1,
        lr: h.growth as f32,
        a: h.backoff as f32,
        b: h.interval as f32,
        eps: (1.0 / h.growth) as f32,
        wd: (1.0 / h.backoff) as f32,
        ..Default::default()
    };
    let binds = gpu::Binds {
        inputs: [Some(found), None],
        output: state,
        extra: gpu::Extra::None,
        rw: [None, None],
    };
    ctx.run(&AMP, &p, binds, [1, 1, 1])
}

/// Adam's constants as adam_step.wgsl takes them: `h` = (beta1, beta2, eps, L2 weight
/// decay), `k` = (decoupled decay factor, lr / (1 - beta1^t), sqrt(1 - beta2^t), 0); the
/// per-tensor and multi-tensor kernels both take them from here.
pub(crate) fn adam_consts(h: &crate::optim::Adam, step: u64) -> ([f32; 4], [f32; 4]) {
    let bc1 = 1.0 - h.beta1.powi(step as i32);
    let bc2 = 1.0 - h.beta2.powi(step as i32);
    let (wd, decay) = if h.decoupled {
        (0.0, (1.0 - h.lr * h.weight_decay) as f32)
    } else {
        (h.weight_decay as f32, 1.0)
    };
    (
        [h.beta1 as f32, h.beta2 as f32, h.eps as f32, wd],
        [decay, (h.lr / bc1) as f32, bc2.sqrt() as f32, 0.0],
    )
}

/// A gated Adam step's `k` (`adam_device_k` in optim_step.wgsl): the decay factor, the
/// learning rate and the host's step count; the kernel makes the bias corrections.
pub(crate) fn adam_device_consts(h: &crate::optim::Adam, step: u64) -> ([f32; 4], [f32; 4]) {
    let (hh, k) = adam_consts(h, step);
    (hh, [k[0], h.lr as f32, 0.0, step as f32])
}

/// While a graph captures, lets each replay rebuild the Adam dispatch just recorded
/// (`multi`: a multi-tensor one; `gated`: its gated variant) for its own step count: a
/// replay `advance` steps past the captured one is step `step + advance`, and the bias
/// corrections move with it.
pub(crate) fn patch_adam_step(
    h: crate::optim::Adam,
    step: u64,
    multi: bool,
    gated: bool,
) -> Result<()> {
    fn rewrite<P: gpu::Params>(bytes: &mut [u8], f: impl FnOnce(&mut P)) {
        let size = std::mem::size_of::<P>();
        let mut q: P = bytemuck::pod_read_unaligned(&bytes[..size]);
        f(&mut q);
        bytes[..size].copy_from_slice(bytemuck::bytes_of(&q));
    }
    if !crate::capture::active() {
        return Ok(());
    }
    gpu::context()?.patch_last(move |advance, bytes| {
        let (hh, k) = if gated {
            adam_device_consts(&h, step + advance)
        } else {
            adam_consts(&h, step + advance)
        };
        if multi {
            rewrite(bytes, |q: &mut gpu::MultiOptParams| (q.h, q.k) = (hh, k));
        } else {
            rewrite(bytes, |q: &mut gpu::OptParams| {
                (q.decay, q.step_size, q.sqrt_bc2) = (k[0], k[1], k[2])
            });
        }
    });
    Ok(())
}

/// One dispatch of a multi-tensor optimizer kernel: each tensor's buffers in `kind`'s
/// order (weight, gradient, state...), contiguous from element 0, and its element count;
/// at most `multi_tensors(kind, gate.is_some())` tensors. `h`, `k`, `flags` as
/// optim_step.wgsl's update takes them. `gate`: the gated kernel, with the scaler's
/// found-inf flag and the optimizer's count of skipped steps (which a skipped step adds
/// itself to where `flags` has 8).
pub(crate) fn launch_multi_optimizer(
    kind: gpu::shaders::MultiKind,
    tensors: &[(Vec<&GpuBuffer>, usize)],
    (h, k): ([f32; 4], [f32; 4]),
    flags: u32,
    gate: Option<[&GpuBuffer; 2]>,
) -> Result<()> {
    let ctx = gpu::context()?;
    let lens: Vec<usize> = tensors.iter().map(|(_, n)| *n).collect();
    let Some((mut p, groups)) = multi_params(&ctx, kind, &lens)? else {
        return Ok(());
    };
    (p.flags, p.h, p.k) = (flags, h, k);
    let gated = gate.is_some();
    let per = multi_tensors(kind, gated);
    let mut bufs: Vec<Option<&GpuBuffer>> = tensors
        .iter()
        .flat_map(|(b, _)| b.iter().copied().map(Some))
        .collect();
    if let Some(trailing) = gate {
        // after every tensor's slots, used or not
        bufs.resize(per * kind.buffers(), None);
        bufs.extend(trailing.map(Some));
    }
    ctx.run_multi(&multi_kernel(kind, gated), &p, &bufs, groups)
}

/// A multi-tensor dispatch's parameters for tensors of `lens` elements (count, element
/// counts, grid row) and its grid; None when there is nothing to update.
fn multi_params(
    ctx: &gpu::Context,
    kind: gpu::shaders::MultiKind,
    lens: &[usize],
) -> Result<Option<(gpu::MultiOptParams, [u32; 3])>> {
    let total: usize = lens.iter().sum();
    check_u32(kind.key(false), total)?;
    if total == 0 {
        return Ok(None);
    }
    let mut n = [0u32; gpu::shaders::MULTI_TENSORS];
    for (slot, len) in n.iter_mut().zip(lens) {
        *slot = *len as u32;
    }
    let (groups, row) = ctx.grid(total, 64)?;
    let p = gpu::MultiOptParams {
        count: lens.len() as u32,
        row,
        n,
        ..Default::default()
    };
    Ok(Some((p, groups)))
}

/// The multi-tensor kernel of `kind`, generated for as many tensors as this adapter binds.
fn multi_kernel(kind: gpu::shaders::MultiKind, gated: bool) -> gpu::Kernel {
    gpu::Kernel::new(
        kind.key(gated),
        gpu::shaders::multi_optimizer_source(kind, multi_tensors(kind, gated), gated),
        "multi_main",
    )
}

/// Mixed precision's unscaling over float32 gradients that are whole buffers (each with
/// its element count): every element times the inverse scale in place (`inv`, or element
/// 1 of the `scale` state buffer: a scale kept on the device), and a one-element buffer
/// left at 1.0 if any was inf or NaN before, else 0.0; `multi_tensors(Unscale, ..)`
/// gradients a dispatch. PyTorch's `_amp_foreach_non_finite_check_and_unscale_`.
pub(crate) fn launch_multi_unscale(
    grads: &[(&GpuBuffer, usize)],
    inv: f32,
    scale: Option<&GpuBuffer>,
) -> Result<GpuBuffer> {
    use gpu::shaders::MultiKind;
    let ctx = gpu::context()?;
    let gated = scale.is_some();
    let per = multi_tensors(MultiKind::Unscale, gated);
    if per == 0 {
        return Err(Error::Device(
            "unscale: this adapter binds too few buffers for multi-tensor kernels".into(),
        ));
    }
    let found = ctx.alloc(1)?;
    found.write_at(0, &[0.0])?;
    let kernel = multi_kernel(MultiKind::Unscale, gated);
    for chunk in grads.chunks(per) {
        let lens: Vec<usize> = chunk.iter().map(|(_, n)| *n).collect();
        let Some((mut p, groups)) = multi_params(&ctx, MultiKind::Unscale, &lens)? else {
            continue;
        };
        p.h = [inv, 0.0, 0.0, 0.0];
        // the flag (and the scale) sit after every tensor's slot, used or not
        let mut bufs: Vec<Option<&GpuBuffer>> = vec![None; per];
        for (slot, (b, _)) in bufs.iter_mut().zip(chunk) {
            *slot = Some(*b);
        }
        bufs.push(Some(&found));
        bufs.extend(scale.map(Some));
        ctx.run_multi(&kernel, &p, &bufs, groups)?;
    }
    Ok(found)
}

/// How many tensors one multi-tensor dispatch of `kind` (`gated`: its gated variant)
/// takes on this adapter (0 or 1: the adapter binds too few buffers to a shader stage; go
/// per tensor).
pub(crate) fn multi_tensors(kind: gpu::shaders::MultiKind, gated: bool) -> usize {
    gpu::context()
        .ok()
        .and_then(|c| {
            c.multi_layout()
                .map(|l| l.slots.saturating_sub(kind.trailing(gated)) / kind.buffers())
        })
        .unwrap_or(0)
        .min(gpu::shaders::MULTI_TENSORS)
}
