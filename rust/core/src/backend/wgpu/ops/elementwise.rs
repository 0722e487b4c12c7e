//! Elementwise launchers: strided copy, unary ops and their gradients, broadcasting
//! binary ops, comparisons, logical ops and where.

use super::*;

pub(crate) const MAX_DIMS: usize = 8;

/// shape, then the strides of up to two operands (as i32 bit patterns), 8 slots each.
pub(crate) fn layout_info(op: &str, shape: &[usize], layouts: &[&Layout]) -> Result<Vec<u32>> {
    if shape.len() > MAX_DIMS {
        return Err(Error::Shape(format!(
            "{op}: the gpu backend handles up to {MAX_DIMS} dims, got {}",
            shape.len()
        )));
    }
    let mut info = vec![0u32; 3 * MAX_DIMS];
    for (d, &s) in shape.iter().enumerate() {
        info[d] = s as u32;
    }
    for (k, l) in layouts.iter().enumerate() {
        for (d, &st) in l.strides.iter().enumerate() {
            info[MAX_DIMS * (k + 1) + d] = (st as i32) as u32;
        }
    }
    Ok(info)
}

pub(crate) fn check_u32(op: &str, n: usize) -> Result<()> {
    if n > u32::MAX as usize {
        return Err(Error::Memory(format!(
            "{op}: {n} elements exceed the gpu backend's 32-bit indexing"
        )));
    }
    Ok(())
}

/// elementwise.wgsl's `halves`: how a, b, y and the output rest, each 0 (float32 words),
/// 1 (float16) or 2 (bfloat16 packed two to a word).
pub(crate) fn half_codes([a, b, y, out]: [u32; 4]) -> u32 {
    a | (b << 2) | (y << 4) | (out << 6)
}

/// The output's words and the threads for n elements: a packed output takes a word, two
/// elements, a thread.
fn out_size(n: usize, halves: u32) -> usize {
    match halves >> 6 {
        0 => n,
        _ => n.div_ceil(2),
    }
}

/// out = op(x) for x read through `l` (the strided copy when `op` is the identity): a
/// fresh contiguous buffer of `l`'s element count.
pub(crate) fn launch_unary(
    name: &str,
    op: u32,
    alpha: f32,
    beta: f32,
    x: &GpuBuffer,
    l: &Layout,
) -> Result<GpuBuffer> {
    launch_unary_halves(name, (op, alpha, beta), x, l, 0)
}

/// launch_unary for an operand and an output that may rest as packed halves (`halves`,
/// see `half_codes`; a and out only): read and written as they are.
pub(crate) fn launch_unary_halves(
    name: &str,
    (op, alpha, beta): (u32, f32, f32),
    x: &GpuBuffer,
    l: &Layout,
    halves: u32,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let n = l.numel();
    check_u32(name, n)?;
    let out = ctx.alloc(out_size(n, halves))?;
    if n > 0 {
        let info = layout_info(name, &l.shape, &[l])?;
        let (groups, row) = ctx.grid(out_size(n, halves), 64)?;
        let p = EwParams {
            n: n as u32,
            op,
            ndim: l.shape.len() as u32,
            row,
            alpha,
            beta,
            a_offset: l.offset as u32,
            b_offset: 0,
            halves,
            pad: [0; 3],
        };
        ctx.dispatch(
            "unary",
            gpu::shaders::ELEMENTWISE,
            "unary_main",
            &p,
            [Some(x), None],
            &out,
            Some(&info),
            groups,
        )?;
    }
    Ok(out)
}

/// g * f'(x) by the op table's rule (unary_backward_main) from contiguous x and g at
/// their offsets and y, a buffer of its own from element 0 (it is bound read-write), or
/// None when y is x itself.
pub(crate) fn launch_unary_grad(
    op: crate::ops::UnaryOp,
    (x, x_off): (&GpuBuffer, usize),
    y: Option<&GpuBuffer>,
    (g, g_off): (&GpuBuffer, usize),
    n: usize,
    halves: u32,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    check_u32(op.backward_name(), n)?;
    let out = ctx.alloc(out_size(n, halves))?;
    if n > 0 {
        let (code, alpha, beta) = op.code();
        let (groups, row) = ctx.grid(out_size(n, halves), 64)?;
        let p = EwParams {
            n: n as u32,
            op: code,
            ndim: y.is_none() as u32,
            row,
            alpha,
            beta,
            a_offset: x_off as u32,
            b_offset: g_off as u32,
            halves,
            pad: [0; 3],
        };
        const UNARY_GRAD: gpu::Kernel = gpu::Kernel::new(
            "unary_backward",
            gpu::shaders::ELEMENTWISE,
            "unary_backward_main",
        );
        let binds = gpu::Binds {
            inputs: [Some(x), Some(g)],
            output: &out,
            extra: gpu::Extra::None,
            rw: [y, None],
        };
        ctx.run(&UNARY_GRAD, &p, binds, groups)?;
    }
    Ok(out)
}

/// The parameters, layout words and grid of an elementwise kernel reading operands
/// through layouts already broadcast to `shape` (n elements).
pub(crate) fn broadcast_params(
    ctx: &gpu::Context,
    name: &str,
    op: u32,
    (la, lb): (&Layout, &Layout),
    shape: &[usize],
    (n, halves): (usize, u32),
) -> Result<(EwParams, Vec<u32>, [u32; 3])> {
    let info = layout_info(name, shape, &[la, lb])?;
    let (groups, row) = ctx.grid(out_size(n, halves), 64)?;
    let p = EwParams {
        n: n as u32,
        op,
        ndim: shape.len() as u32,
        row,
        alpha: 0.0,
        beta: 0.0,
        a_offset: la.offset as u32,
        b_offset: lb.offset as u32,
        halves,
        pad: [0; 3],
    };
    Ok((p, info, groups))
}

/// out = a (op) b for operands read through layouts broadcast to one shape; `code` is a
/// binary kernel's B_* code (arithmetic, comparison or logical). Operands and the output
/// may rest as packed halves (`halves`, see `half_codes`): read and written as they are.
pub(crate) fn launch_binary_halves(
    name: &str,
    code: u32,
    (a, la): (&GpuBuffer, &Layout),
    (b, lb): (&GpuBuffer, &Layout),
    halves: u32,
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    let shape = &la.shape;
    let n = checked_numel(shape)?;
    check_u32(name, n)?;
    let out = ctx.alloc(out_size(n, halves))?;
    if n > 0 {
        let (p, info, groups) = broadcast_params(&ctx, name, code, (la, lb), shape, (n, halves))?;
        ctx.dispatch(
            "binary",
            gpu::shaders::ELEMENTWISE,
            "binary_main",
            &p,
            [Some(a), Some(b)],
            &out,
            Some(&info),
            groups,
        )?;
    }
    Ok(out)
}

/// where(cond, a, b): `cond` holds the condition as 0/1 words, contiguous in the output's
/// shape from element 0, in a buffer of its own (it is bound read-write); `a` and `b` are
/// read through layouts broadcast to that shape.
pub(crate) fn launch_select(
    cond: &GpuBuffer,
    (a, la): (&GpuBuffer, &Layout),
    (b, lb): (&GpuBuffer, &Layout),
) -> Result<GpuBuffer> {
    let name = "where";
    let ctx = gpu::context()?;
    let shape = &la.shape;
    let n = checked_numel(shape)?;
    check_u32(name, n)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (p, info, groups) = broadcast_params(&ctx, name, 0, (la, lb), shape, (n, 0))?;
        const SELECT: gpu::Kernel =
            gpu::Kernel::new("select", gpu::shaders::ELEMENTWISE, "select_main");
        let binds = gpu::Binds {
            inputs: [Some(a), Some(b)],
            output: &out,
            extra: gpu::Extra::Words(&info),
            rw: [Some(cond), None],
        };
        ctx.run(&SELECT, &p, binds, groups)?;
    }
    Ok(out)
}
