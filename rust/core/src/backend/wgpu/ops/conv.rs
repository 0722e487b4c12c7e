//! Sliding windows: unfold (im2col) and fold (col2im), see shaders/conv.wgsl; convolution
//! as an implicit matrix product, see shaders/conv_gemm.wgsl.

use super::*;
use crate::backend::Window2d;

fn params(win: &Window2d, total: usize, row: u32, x_offset: usize) -> ConvParams {
    ConvParams {
        win: win.into(),
        total: total as u32,
        row,
        x_offset: x_offset as u32,
        _pad: 0,
        pad_value: win.pad_value as f32,
        outside: win.outside as f32,
    }
}

/// The (n * oh * ow, c * kh * kw) windows of the contiguous (n, c, h, w) input at `offset`.
pub(crate) fn launch_unfold2d(x: &GpuBuffer, offset: usize, win: &Window2d) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let total = win.rows() * win.cols();
    check_u32("unfold2d", total)?;
    check_u32("unfold2d", win.n * win.c * win.h * win.w + offset)?;
    let out = ctx.alloc(total)?;
    if total > 0 {
        let (groups, row) = ctx.grid(total, 64)?;
        let p = params(win, total, row, offset);
        ctx.dispatch(
            "conv_unfold",
            gpu::shaders::CONV,
            "unfold_main",
            &p,
            [Some(x), None],
            &out,
            None,
            groups,
        )?;
    }
    Ok(out)
}

/// unfold's adjoint: the contiguous (n * oh * ow, c * kh * kw) gradient at `offset` summed
/// into an (n, c, h, w) tensor.
pub(crate) fn launch_fold2d(g: &GpuBuffer, offset: usize, win: &Window2d) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let total = win.n * win.c * win.h * win.w;
    check_u32("fold2d", total)?;
    check_u32("fold2d", win.rows() * win.cols() + offset)?;
    let out = ctx.alloc(total)?;
    if total > 0 {
        let (groups, row) = ctx.grid(total, 64)?;
        let p = params(win, total, row, offset);
        ctx.dispatch(
            "conv_fold",
            gpu::shaders::CONV,
            "fold_main",
            &p,
            [Some(g), None],
            &out,
            None,
            groups,
        )?;
    }
    Ok(out)
}

/// Max pooling of each channel of the contiguous (n, c, h, w) input at `offset`: the
/// (n, c, oh, ow) maxima, and the in-plane offset of each (as a float, -1 for a window
/// that covers no input) for the backward.
pub(crate) fn launch_max_pool2d(
    x: &GpuBuffer,
    offset: usize,
    win: &Window2d,
) -> Result<(GpuBuffer, GpuBuffer)> {
    let ctx = gpu::context()?;
    let total = win.n * win.c * win.oh * win.ow;
    check_u32("max_pool2d", total)?;
    check_u32("max_pool2d", win.n * win.c * win.h * win.w + offset)?;
    if win.h * win.w > 1 << 24 {
        // offsets travel as float32 words, exact up to 2^24
        return Err(crate::error::Error::Memory(format!(
            "max_pool2d: a {}x{} plane exceeds the gpu backend's 2^24 offsets",
            win.h, win.w
        )));
    }
    let (out, arg) = (ctx.alloc(total)?, ctx.alloc(total)?);
    if total > 0 {
        let (groups, row) = ctx.grid(total, 64)?;
        const POOL: gpu::Kernel = gpu::Kernel::new("max_pool", gpu::shaders::CONV, "max_pool_main");
        ctx.run(
            &POOL,
            &params(win, total, row, offset),
            gpu::Binds {
                inputs: [Some(x), None],
                output: &out,
                extra: gpu::Extra::None,
                rw: [Some(&arg), None],
            },
            groups,
        )?;
    }
    Ok((out, arg))
}

/// max_pool2d's backward: the contiguous (n, c, oh, ow) gradient at `offset` added, per
/// input element, from the windows whose maximum it was (`arg` from the forward).
pub(crate) fn launch_max_pool2d_grad(
    g: &GpuBuffer,
    offset: usize,
    arg: &GpuBuffer,
    win: &Window2d,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let total = win.n * win.c * win.h * win.w;
    check_u32("max_pool2d", total)?;
    check_u32("max_pool2d", win.n * win.c * win.oh * win.ow + offset)?;
    let out = ctx.alloc(total)?;
    if total > 0 {
        let (groups, row) = ctx.grid(total, 64)?;
        ctx.dispatch(
            "max_unpool",
            gpu::shaders::CONV,
            "max_unpool_main",
            &params(win, total, row, offset),
            [Some(g), Some(arg)],
            &out,
            None,
            groups,
        )?;
    }
    Ok(out)
}

/// The (n * oh * ow, oc) product of the windows of the contiguous (n, c, h, w) input at
/// `x_off` (zero padding) with the contiguous (oc, c * kh * kw) weight at `w_off`
/// transposed, plus `bias`: a convolution without the im2col matrix.
pub(crate) fn launch_conv_gemm(
    (x, x_off): (&GpuBuffer, usize),
    (w, w_off): (&GpuBuffer, usize),
    bias: Option<&GpuBuffer>,
    win: &Window2d,
    oc: usize,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let (m, k) = (win.rows(), win.cols());
    let total = m * oc;
    check_u32("conv2d", total)?;
    check_u32("conv2d", win.n * win.c * win.h * win.w + x_off)?;
    check_u32("conv2d", oc * k + w_off)?;
    let out = ctx.alloc(total)?;
    if total == 0 {
        return Ok(out);
    }
    let groups = [oc.div_ceil(64), m.div_ceil(64), 1];
    if groups.iter().any(|&g| g > 65_535) {
        return Err(Error::Memory(format!(
            "conv2d: a {m} x {oc} output exceeds one gpu dispatch grid (65,535 tiles of 64 x 64)"
        )));
    }
    let p = ConvGemmParams {
        win: win.into(),
        m: m as u32,
        oc: oc as u32,
        k: k as u32,
        x_off: x_off as u32,
        w_off: w_off as u32,
        has_bias: bias.is_some() as u32,
    };
    let binds = gpu::Binds {
        inputs: [Some(x), Some(w)],
        output: &out,
        extra: match bias {
            Some(b) => gpu::Extra::Buffer(b),
            None => gpu::Extra::None,
        },
        rw: [None, None],
    };
    ctx.run(&CONV_GEMM, &p, binds, groups.map(|g| g as u32))?;
    Ok(out)
}

const CONV_GEMM: gpu::Kernel = gpu::Kernel::new("conv_gemm", gpu::shaders::CONV_GEMM, "main");
