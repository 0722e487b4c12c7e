//! Sliding windows: unfold (im2col) and fold (col2im), see shaders/conv.wgsl.

use super::*;
use crate::backend::Window2d;

fn params(win: &Window2d, total: usize, row: u32, x_offset: usize) -> ConvParams {
    ConvParams {
        n: win.n as u32,
        c: win.c as u32,
        h: win.h as u32,
        w: win.w as u32,
        kh: win.kh as u32,
        kw: win.kw as u32,
        sh: win.sh as u32,
        sw: win.sw as u32,
        ph: win.ph as u32,
        pw: win.pw as u32,
        dh: win.dh as u32,
        dw: win.dw as u32,
        oh: win.oh as u32,
        ow: win.ow as u32,
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
