//! Elementwise launchers: strided copy, unary ops and their gradients, broadcasting
//! binary ops, comparisons, logical ops and where.

use super::*;

pub(crate) const MAX_DIMS: usize = 8;

pub(crate) fn new_tensor(buf: GpuBuffer, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_buffer(
        Buffer::Gpu(gpu::WgpuStorage::new(buf, crate::dtype::DType::F32)),
        shape,
    )
}

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

/// A contiguous copy of any (strided) GPU view.
pub(crate) fn copy(t: &Tensor) -> Result<Tensor> {
    unary_code("copy", crate::ops::table::IDENTITY_CODE, 0.0, 0.0, t)
}

/// out = op(t) elementwise, reading `t` through its strides.
pub(crate) fn unary_code(name: &str, op: u32, alpha: f32, beta: f32, t: &Tensor) -> Result<Tensor> {
    let out = t.with_gpu(|b, l| launch_unary(name, op, alpha, beta, b, l))??;
    new_tensor(out, t.shape())
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
    let ctx = gpu::context()?;
    let n = l.numel();
    check_u32(name, n)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let info = layout_info(name, &l.shape, &[l])?;
        let (groups, row) = ctx.grid(n, 64)?;
        let p = EwParams {
            n: n as u32,
            op,
            ndim: l.shape.len() as u32,
            row,
            alpha,
            beta,
            a_offset: l.offset as u32,
            b_offset: 0,
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
) -> Result<GpuBuffer> {
    let ctx = gpu::context()?;
    check_u32(op.backward_name(), n)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (code, alpha, beta) = op.code();
        let (groups, row) = ctx.grid(n, 64)?;
        let p = EwParams {
            n: n as u32,
            op: code,
            ndim: y.is_none() as u32,
            row,
            alpha,
            beta,
            a_offset: x_off as u32,
            b_offset: g_off as u32,
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

/// The parameters, layout words and grid of an elementwise kernel reading `a` and `b`
/// broadcast to `shape` (n elements) through their strides.
pub(crate) fn broadcast_params(
    ctx: &gpu::Context,
    name: &str,
    op: u32,
    (a, b): (&Tensor, &Tensor),
    shape: &[usize],
    n: usize,
) -> Result<(EwParams, Vec<u32>, [u32; 3])> {
    let la = a.layout().broadcast_to(name, shape)?;
    let lb = b.layout().broadcast_to(name, shape)?;
    let info = layout_info(name, shape, &[&la, &lb])?;
    let (groups, row) = ctx.grid(n, 64)?;
    let p = EwParams {
        n: n as u32,
        op,
        ndim: shape.len() as u32,
        row,
        alpha: 0.0,
        beta: 0.0,
        a_offset: la.offset as u32,
        b_offset: lb.offset as u32,
    };
    Ok((p, info, groups))
}

/// out = a (op) b with broadcasting; a CPU scalar operand is moved to the GPU first.
pub(crate) fn binary_code(name: &str, op: u32, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let a = to_gpu_scalar(name, a)?;
    let b = to_gpu_scalar(name, b)?;
    let shape = broadcast_shapes(name, a.shape(), b.shape())?;
    let n = checked_numel(&shape)?;
    check_u32(name, n)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (p, info, groups) = broadcast_params(&ctx, name, op, (&a, &b), &shape, n)?;
        a.with_gpu(|ab, _| {
            b.with_gpu(|bb, _| {
                ctx.dispatch(
                    "binary",
                    gpu::shaders::ELEMENTWISE,
                    "binary_main",
                    &p,
                    [Some(ab), Some(bb)],
                    &out,
                    Some(&info),
                    groups,
                )
            })
        })???;
    }
    new_tensor(out, &shape)
}

/// Comparison codes follow the arithmetic ones in elementwise.wgsl's `binary`.
pub(crate) const CMP_BASE: u32 = 7;
pub(crate) const LOGIC_BASE: u32 = 13;

/// A comparison of float32 GPU operands (or host scalars): a GPU bool (0/1 floats).
pub(crate) fn compare(op: crate::ops::CmpOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = binary_code("compare", CMP_BASE + op as u32, a, b)?;
    Ok(out.with_dtype(crate::dtype::DType::Bool))
}

/// Logical and/or/xor of the truth values of float32 GPU operands: a GPU bool.
pub(crate) fn logical(op: crate::ops::binary::LogicOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = binary_code("logical", LOGIC_BASE + op as u32, a, b)?;
    Ok(out.with_dtype(crate::dtype::DType::Bool))
}

/// An operand of a float32 GPU kernel: a GPU tensor as it is (a GPU bool read as its 0/1
/// floats), a host scalar moved up, a host int64 or bool tensor (labels, argmax's
/// results, host masks) moved up as float32, so `x * (x > 0)` works as in PyTorch; a host
/// float tensor is refused (mixed devices).
pub(crate) fn gpu_operand(op: &str, t: &Tensor) -> Result<Tensor> {
    use crate::dtype::DType;
    if t.is_gpu() {
        return Ok(if t.dtype() == DType::Bool {
            t.with_dtype(DType::F32)
        } else {
            t.clone()
        });
    }
    if t.numel() != 1 && matches!(t.dtype(), DType::I64 | DType::Bool) {
        return t
            .detach()
            .cast(DType::F32)?
            .to_device(crate::tensor::Device::Gpu);
    }
    to_gpu_scalar(op, t)
}

/// where(cond, a, b) on the GPU. A GPU condition (a bool, 0/1 floats) is bound as it is
/// when it already has the output's shape, else compacted by a copy; a host one goes up
/// as 0/1 floats in a queued copy, so nothing waits for the GPU. `a` and `b` are float32
/// GPU tensors (or host scalars); all three broadcast.
pub(crate) fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let name = "where";
    let ctx = gpu::context()?;
    let a = to_gpu_scalar(name, a)?;
    let b = to_gpu_scalar(name, b)?;
    let s1 = broadcast_shapes(name, cond.shape(), a.shape())?;
    let shape = broadcast_shapes(name, &s1, b.shape())?;
    let n = checked_numel(&shape)?;
    check_u32(name, n)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        // the kernel reads the condition as cond[i], contiguous in the output's shape
        let mask = if cond.is_gpu() {
            let c = cond.detach().broadcast_to(&shape)?;
            // bound read-write, so never the storage of an input (where(m, m, x))
            let alone = !c.shares_storage(&a) && !c.shares_storage(&b);
            if alone && c.is_contiguous() && c.layout().offset == 0 && c.numel() == n {
                c
            } else {
                copy(&c)?
            }
        } else {
            let flags: Vec<bool> = cond.detach().broadcast_to(&shape)?.to_vec()?;
            let mask: Vec<f32> = flags.iter().map(|&c| c as u8 as f32).collect();
            new_tensor(ctx.upload(&mask)?, &shape)?
        };
        let (p, info, groups) = broadcast_params(&ctx, name, 0, (&a, &b), &shape, n)?;
        const SELECT: gpu::Kernel =
            gpu::Kernel::new("select", gpu::shaders::ELEMENTWISE, "select_main");
        Tensor::with_gpus(&[&mask, &a, &b], |bufs| {
            let binds = gpu::Binds {
                inputs: [Some(bufs[1]), Some(bufs[2])],
                output: &out,
                extra: gpu::Extra::Words(&info),
                rw: [Some(bufs[0]), None],
            };
            ctx.run(&SELECT, &p, binds, groups)
        })??;
    }
    new_tensor(out, &shape)
}

/// A one-element CPU tensor next to a GPU one moves to the GPU (as PyTorch allows for
/// scalars); any other mix of devices is refused. The cast and the move are recorded, so
/// a scalar that requires grad (a learnable temperature, say) gets its gradient back on
/// its own device and in its own dtype.
pub(crate) fn to_gpu_scalar(op: &str, t: &Tensor) -> Result<Tensor> {
    if t.is_gpu() {
        return Ok(t.clone());
    }
    if t.numel() == 1 {
        return t
            .cast(crate::dtype::DType::F32)?
            .to_device(crate::tensor::Device::Gpu);
    }
    Err(Error::Device(format!(
        "{op}: expected all tensors on one device, got gpu and cpu (shape {}); move one with .to()",
        crate::layout::fmt_shape(t.shape())
    )))
}
