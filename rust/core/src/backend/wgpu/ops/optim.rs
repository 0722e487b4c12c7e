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
