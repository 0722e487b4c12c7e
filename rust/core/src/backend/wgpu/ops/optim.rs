//! In-place optimizer updates (optim.wgsl).

use super::*;

/// A contiguous view starting at element 0 (the fused kernels index from 0): `t` itself
/// when it already is one, else a compact copy.
pub(crate) fn dense(t: &Tensor) -> Result<Tensor> {
    let t = t.contiguous()?;
    if t.layout().offset != 0 {
        copy(&t)
    } else {
        Ok(t)
    }
}

/// Refuses a tensor an in-place kernel cannot write through (a strided or offset view).
pub(crate) fn in_place_target(op: &str, t: &Tensor) -> Result<()> {
    if t.is_contiguous() && t.layout().offset == 0 {
        Ok(())
    } else {
        Err(Error::Value(format!(
            "{op}: the gpu kernel updates whole, contiguous tensors in place; got a view of shape {}",
            crate::layout::fmt_shape(t.shape())
        )))
    }
}

/// Which optimizer kernel of optim.wgsl to run.
#[derive(Clone, Copy)]
pub(crate) enum OptKernel {
    Sgd,
    Adam,
    RmsProp,
    RmsPropAverage,
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
    let (k, name) = match kernel {
        OptKernel::Sgd => (&SGD, "sgd"),
        OptKernel::Adam => (&ADAM, "adam"),
        OptKernel::RmsProp => (&RMS, "rmsprop"),
        OptKernel::RmsPropAverage => (&RMS_AVG, "rmsprop"),
    };
    let ctx = gpu::context()?;
    check_u32(name, n)?;
    if n == 0 {
        return Ok(());
    }
    let (groups, row) = ctx.grid(n, 64)?;
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

pub(crate) const BN_STATS: gpu::Kernel =
    gpu::Kernel::new("bn_stats", gpu::shaders::BATCHNORM, "stats_main");
pub(crate) const BN_NORM: gpu::Kernel =
    gpu::Kernel::new("bn_norm", gpu::shaders::BATCHNORM, "norm_main");
pub(crate) const BN_GRAD_REDUCE: gpu::Kernel = gpu::Kernel::new(
    "bn_grad_reduce",
    gpu::shaders::BATCHNORM,
    "grad_reduce_main",
);
pub(crate) const BN_GRAD_X: gpu::Kernel =
    gpu::Kernel::new("bn_grad_x", gpu::shaders::BATCHNORM, "grad_x_main");
