//! The GPU versions of the ops that have one: strided copy, unary (and its backward),
//! broadcasting binary, axis reductions and the batched matrix product. Each records one
//! dispatch into the shared encoder; nothing waits for the GPU until data is read back.

use crate::error::{Error, Result};
use crate::gpu::{
    self, DropParams, EwParams, GatherParams, GpuBuffer, MmParams, RdParams, SmParams,
};
use crate::layout::{broadcast_shapes, checked_numel, Layout};
use crate::storage::Buffer;
use crate::tensor::Tensor;
use std::collections::HashMap;

/// Op codes shared with elementwise.wgsl.
pub(crate) mod code {
    pub const IDENTITY: u32 = 99;
}

const MAX_DIMS: usize = 8;

fn new_tensor(buf: GpuBuffer, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_buffer(Buffer::Gpu(buf), shape)
}

/// shape, then the strides of up to two operands (as i32 bit patterns), 8 slots each.
fn layout_info(op: &str, shape: &[usize], layouts: &[&Layout]) -> Result<Vec<u32>> {
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

fn check_u32(op: &str, n: usize) -> Result<()> {
    if n > u32::MAX as usize {
        return Err(Error::Memory(format!(
            "{op}: {n} elements exceed the gpu backend's 32-bit indexing"
        )));
    }
    Ok(())
}

/// A contiguous copy of any (strided) GPU view.
pub(crate) fn copy(t: &Tensor) -> Result<Tensor> {
    unary_code("copy", code::IDENTITY, 0.0, 0.0, t)
}

/// out = op(t) elementwise, reading `t` through its strides.
pub(crate) fn unary_code(name: &str, op: u32, alpha: f32, beta: f32, t: &Tensor) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let n = t.numel();
    check_u32(name, n)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let l = t.layout().clone();
        let info = layout_info(name, t.shape(), &[&l])?;
        let (groups, row) = ctx.grid(n, 64)?;
        let p = EwParams {
            n: n as u32,
            op,
            ndim: t.ndim() as u32,
            row,
            alpha,
            beta,
            a_offset: l.offset as u32,
            b_offset: 0,
        };
        t.with_gpu(|a, _| {
            ctx.dispatch(
                "unary",
                gpu::shaders::ELEMENTWISE,
                "unary_main",
                &p,
                [Some(a), None],
                &out,
                Some(&info),
                groups,
            )
        })??;
    }
    new_tensor(out, t.shape())
}

/// dx = g * f'(x) for a unary op, computed from the input (contiguous copies as needed).
pub(crate) fn unary_backward_code(
    op: u32,
    alpha: f32,
    beta: f32,
    x: &Tensor,
    g: &Tensor,
) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let (x, g) = (x.contiguous()?, g.contiguous()?);
    let n = x.numel();
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (groups, row) = ctx.grid(n, 64)?;
        let p = EwParams {
            n: n as u32,
            op,
            ndim: 1,
            row,
            alpha,
            beta,
            a_offset: x.layout().offset as u32,
            b_offset: g.layout().offset as u32,
        };
        x.with_gpu(|xb, _| {
            g.with_gpu(|gb, _| {
                ctx.dispatch(
                    "unary_backward",
                    gpu::shaders::ELEMENTWISE,
                    "unary_backward_main",
                    &p,
                    [Some(xb), Some(gb)],
                    &out,
                    None,
                    groups,
                )
            })
        })???;
    }
    new_tensor(out, x.shape())
}

/// The parameters, layout words and grid of an elementwise kernel reading `a` and `b`
/// broadcast to `shape` (n elements) through their strides.
fn broadcast_params(
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
const CMP_BASE: u32 = 7;
const LOGIC_BASE: u32 = 13;

/// A comparison of float32 GPU operands (or host scalars): a GPU bool (0/1 floats).
pub(crate) fn compare(op: super::CmpOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = binary_code("compare", CMP_BASE + op as u32, a, b)?;
    Ok(out.with_dtype(crate::dtype::DType::Bool))
}

/// Logical and/or/xor of the truth values of float32 GPU operands: a GPU bool.
pub(crate) fn logical(op: super::binary::LogicOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
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

/// Reduction op codes shared with reduce.wgsl.
pub(crate) const RED_SUM: u32 = 0;
pub(crate) const RED_MAX: u32 = 1;
pub(crate) const RED_MIN: u32 = 2;
pub(crate) const RED_ARGMAX: u32 = 3;
pub(crate) const RED_MEAN: u32 = 4;
pub(crate) const RED_ARGMIN: u32 = 5;
pub(crate) const RED_CORRECT: u32 = 6;

/// Reduces a contiguous (outer, r, inner) view of `t` over r.
pub(crate) fn reduce_block(
    t: &Tensor,
    outer: usize,
    r: usize,
    inner: usize,
    op: u32,
    out_shape: &[usize],
) -> Result<Tensor> {
    reduce_block_labels(t, outer, r, inner, op, out_shape, None)
}

/// `reduce_block`, with the labels op 6 compares each row's argmax against.
pub(crate) fn reduce_block_labels(
    t: &Tensor,
    outer: usize,
    r: usize,
    inner: usize,
    op: u32,
    out_shape: &[usize],
    labels: Option<&[u32]>,
) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let n_out = outer * inner;
    let out = ctx.alloc(n_out)?;
    // sums over a non-last axis with many columns (bias gradients) take the coalesced
    // column kernel; everything else one workgroup per output
    let cols = (op == RED_SUM || op == RED_MEAN) && inner >= 16;
    if n_out > 0 {
        let (groups, row) = if cols {
            ctx.grid(outer * inner.div_ceil(16), 1)?
        } else {
            ctx.grid(n_out, 1)?
        };
        let p = RdParams {
            outer: outer as u32,
            r: r as u32,
            inner: inner as u32,
            op,
            row,
            _pad: [0; 3],
        };
        let t = t.contiguous()?;
        let off = t.layout().offset;
        if off != 0 {
            // the kernel indexes from 0; views with an offset are compacted first
            return reduce_block_labels(&copy(&t)?, outer, r, inner, op, out_shape, labels);
        }
        t.with_gpu(|x, _| {
            ctx.dispatch(
                if cols { "reduce_cols" } else { "reduce" },
                gpu::shaders::REDUCE,
                if cols { "cols_main" } else { "main" },
                &p,
                [Some(x), None],
                &out,
                labels,
                groups,
            )
        })??;
    }
    new_tensor(out, out_shape)
}

/// Batched `a @ b` (batch dims already broadcast to `batch`), optional bias, then the
/// activation `act` (0 none, else elementwise.wgsl's code: 5 tanh, 6 sigmoid, 7 relu,
/// 8 selu, 9 elu, 10 leaky relu, with `alpha`) in the epilogue.
pub(crate) fn matmul(
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    (act, alpha): (u32, f32),
) -> Result<Tensor> {
    let ctx = gpu::context()?;
    // strides must be non-negative for the kernel's u32 arithmetic
    let fix = |t: &Tensor| -> Result<Tensor> {
        if t.strides().iter().any(|&s| s < 0) {
            copy(t)
        } else {
            Ok(t.clone())
        }
    };
    let (a, b) = (fix(a)?, fix(b)?);
    let plan = super::matmul::BatchPlan::new(&a, &b)?;
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let total = plan.total();
    check_u32("matmul", total)?;
    if total == 0 {
        return new_tensor(ctx.alloc(0)?, &plan.out_shape);
    }
    if k == 0 {
        // an empty inner dim: the product is zeros (plus bias, then the activation)
        let z = Tensor::zeros(&plan.out_shape, crate::dtype::DType::F32)?
            .to_device(crate::tensor::Device::Gpu)?;
        let z = match bias {
            Some(bv) => binary_code("matmul", 0, &z, bv)?,
            None => z,
        };
        return if act == 0 {
            Ok(z)
        } else {
            unary_code("matmul", act, alpha, 0.0, &z)
        };
    }
    let ((a_rs, a_cs), (b_rs, b_cs)) = plan.matrix_strides();
    let offsets = plan.offsets();
    // the kernels index the bias from element 0
    let bias_c = match bias.map(|b| b.contiguous()).transpose()? {
        Some(b) if b.layout().offset != 0 => Some(copy(&b)?),
        other => other,
    };
    let params = |bi: usize, (oa, ob): (isize, isize)| MmParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        batch: 1,
        a_rs: a_rs as u32,
        a_cs: a_cs as u32,
        a_bs: 0,
        a_off: oa as u32,
        b_rs: b_rs as u32,
        b_cs: b_cs as u32,
        b_bs: 0,
        b_off: ob as u32,
        has_bias: bias.is_some() as u32,
        act,
        c_off: (bi * m * n) as u32,
        alpha,
        kc: k as u32,
    };
    let out = ctx.alloc(total)?;
    let launch_into =
        |dst: &GpuBuffer, kernel: &gpu::Kernel, groups: [u32; 3], p: &MmParams| -> Result<()> {
            let run = |ab: &GpuBuffer, bb: &GpuBuffer, extra: gpu::Extra<'_>| {
                let binds = gpu::Binds {
                    inputs: [Some(ab), Some(bb)],
                    output: dst,
                    extra,
                    rw: [None, None],
                };
                ctx.run(kernel, p, binds, groups)
            };
            a.with_gpu(|ab, _| {
                b.with_gpu(|bb, _| match &bias_c {
                    Some(bt) => bt.with_gpu(|biasb, _| run(ab, bb, gpu::Extra::Buffer(biasb))),
                    None => Ok(run(ab, bb, gpu::Extra::None)),
                })
            })???
        };
    let launch =
        |kernel: &gpu::Kernel, groups: [u32; 3], p: &MmParams| launch_into(&out, kernel, groups, p);
    let (kernel, (bm, bn)) = match vec4_layout(m, k, n, (a_rs, a_cs), (b_rs, b_cs), &offsets) {
        None => (MATMUL_SCALAR, (64, 64)),
        Some(layout) => {
            let flops = 2.0 * m as f64 * n as f64 * k as f64;
            let chosen = match mm_choice() {
                Some(i) => i,
                None if flops < tune_min_flops() => 0,
                None => {
                    let known = MM_TUNED
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_ref()
                        .and_then(|t| t.get(&(layout, m, n, k)).map(|r| r.0));
                    match known {
                        Some(i) => i,
                        None => {
                            let p0 = params(0, offsets[0]);
                            tune_matmul(&ctx, layout, (m, n, k), &out, &|kern, groups| {
                                launch(kern, groups, &p0)
                            })?
                        }
                    }
                }
            };
            let v = &MM_VARIANTS[chosen];
            (mm_kernel(v, layout), v.tile)
        }
    };
    if n.div_ceil(bn) > 65_535 || m.div_ceil(bm) > 65_535 {
        return Err(Error::Memory(format!(
            "matmul: a {m} x {n} output exceeds one gpu dispatch grid (65,535 tiles of {bm} x {bn})"
        )));
    }
    let groups = [n.div_ceil(bn) as u32, m.div_ceil(bm) as u32, 1];
    let kc = if kernel.key == MATMUL_SCALAR.key {
        k
    } else {
        split_k_chunk(groups[0] as usize * groups[1] as usize, k)
    };
    if kc < k {
        // split-K: S partial products into scratch, then one pass adds them up and applies
        // the bias and activation
        let splits = k.div_ceil(kc);
        let scratch = ctx.alloc(splits * m * n)?;
        for (bi, off) in offsets.into_iter().enumerate() {
            let mut p = params(bi, off);
            p.kc = kc as u32;
            launch_into(&scratch, &kernel, [groups[0], groups[1], splits as u32], &p)?;
            let sum_groups = [(m * n / 4).div_ceil(256) as u32, 1, 1];
            let run = |extra: gpu::Extra<'_>| {
                let binds = gpu::Binds {
                    inputs: [Some(&scratch), None],
                    output: &out,
                    extra,
                    rw: [None, None],
                };
                ctx.run(&MATMUL_SPLITK_SUM, &p, binds, sum_groups)
            };
            match &bias_c {
                Some(bt) => bt.with_gpu(|biasb, _| run(gpu::Extra::Buffer(biasb)))??,
                None => run(gpu::Extra::None)?,
            }
        }
        return new_tensor(out, &plan.out_shape);
    }
    for (bi, off) in offsets.into_iter().enumerate() {
        launch(&kernel, groups, &params(bi, off))?;
    }
    new_tensor(out, &plan.out_shape)
}

/// Split-K's second pass (matmul_vec4.wgsl): the partial products summed, then the epilogue.
const MATMUL_SPLITK_SUM: gpu::Kernel =
    gpu::Kernel::new("matmul_splitk_sum", gpu::shaders::MATMUL_VEC4, "splitk_sum");

/// The most parts a product's k may be split into (1: never split). A 128-row batch gives
/// a Standard layer's forward product 16 workgroups of 64x64: a few SMs of an H100's 132
/// work through k = 784 while the rest idle. Splitting k gives each part its own
/// workgroups; a second pass adds the parts (in a fixed order: the bits depend only on the
/// shape).
static SPLIT_K_MAX: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(16);

/// Sets the most parts the GPU matmul may split k into (1 turns split-K off); returns the
/// setting before.
pub fn set_matmul_split_k(max_splits: usize) -> Result<usize> {
    if max_splits == 0 {
        return Err(Error::Value(
            "gpu matmul split-K: the number of splits must be at least 1".into(),
        ));
    }
    Ok(SPLIT_K_MAX.swap(max_splits, std::sync::atomic::Ordering::Relaxed))
}

/// The split-K setting: the most parts k is split into (1: off).
pub fn matmul_split_k() -> usize {
    SPLIT_K_MAX.load(std::sync::atomic::Ordering::Relaxed)
}

/// The k chunk for a product with `tiles` workgroups and inner dimension `k` (`k` itself:
/// no split). Split only when the tiles leave much of a large GPU idle (under 128; an H100
/// has 132 SMs, each able to hold several workgroups) and each part keeps at least 128 of
/// k; aim at about 256 workgroups in all. Chunks are multiples of 16 (every kernel's
/// k-slice) so the parts' vec4 loads stay aligned.
fn split_k_chunk(tiles: usize, k: usize) -> usize {
    let most = matmul_split_k();
    if most < 2 || tiles >= 128 || k < 256 {
        return k;
    }
    let splits = (256 / tiles).min(k / 128).min(most);
    if splits < 2 {
        return k;
    }
    let kc = k.div_ceil(splits).div_ceil(16) * 16;
    if kc >= k {
        k
    } else {
        kc
    }
}

const MATMUL_SCALAR: gpu::Kernel = gpu::Kernel::new("matmul", gpu::shaders::MATMUL, "main");

/// One aligned-operand matmul kernel: an entry point, its tile (rows, columns of C per
/// workgroup) and a pipeline key for each operand layout (kn, kk, mn, mk: which dimension of
/// A, then of B, is contiguous).
pub(crate) struct MmVariant {
    pub name: &'static str,
    src: &'static str,
    entry: &'static str,
    pub tile: (usize, usize),
    keys: [&'static str; 4],
}

macro_rules! mm_variant {
    ($name:literal, $src:expr, $entry:literal, $bm:expr, $bn:expr, $key:literal) => {
        MmVariant {
            name: $name,
            src: $src,
            entry: $entry,
            tile: ($bm, $bn),
            keys: [
                concat!($key, "_kn"),
                concat!($key, "_kk"),
                concat!($key, "_mn"),
                concat!($key, "_mk"),
            ],
        }
    };
}

/// Every vec4 matmul kernel. All accumulate each output element with fma in k order, so they
/// give identical bits and the choice among them is only about speed. The first is the
/// default below the tuning threshold: on an H100 it was the fastest or within 5% of it at a
/// Standard step's products (batch 128) and 1024 (benches/README.md), and the tuner checks
/// every other kernel's bits against its output.
pub(crate) const MM_VARIANTS: [MmVariant; 10] = {
    use gpu::shaders::{MATMUL_TILED as T, MATMUL_VEC4 as V};
    // the generated kernels: entry point = name, pipeline keys "mmt_<name>_<layout>"
    macro_rules! tiled {
        ($name:literal, $bm:expr, $bn:expr) => {
            MmVariant {
                name: $name,
                src: T,
                entry: $name,
                tile: ($bm, $bn),
                keys: [
                    concat!("mmt_", $name, "_kn"),
                    concat!("mmt_", $name, "_kk"),
                    concat!("mmt_", $name, "_mn"),
                    concat!("mmt_", $name, "_mk"),
                ],
            }
        };
    }
    [
        tiled!("t64x64", 64, 64),
        mm_variant!("v4_64", V, "main64", 64, 64, "matmul4s"),
        tiled!("t64x64_db", 64, 64),
        tiled!("t128x64", 128, 64),
        tiled!("t64x128", 64, 128),
        tiled!("t128x128", 128, 128),
        tiled!("t128x128_db", 128, 128),
        tiled!("t128x128_k16", 128, 128),
        tiled!("t128x128_at", 128, 128),
        tiled!("t128x128_at_db", 128, 128),
    ]
};

/// Products of at least this many flops (2mnk, as f64 bits) are autotuned in "auto" mode;
/// smaller ones take the default kernel (timing them would cost more than it saves). The
/// default is a 1024-cube product.
static TUNE_MIN_FLOPS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(2_147_483_648f64.to_bits());

fn tune_min_flops() -> f64 {
    f64::from_bits(TUNE_MIN_FLOPS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Sets the smallest product (in flops, 2mnk) that "auto" times; smaller ones take the
/// default kernel.
pub fn set_matmul_tune_min_flops(flops: f64) -> Result<()> {
    if !(flops >= 0.0 && flops.is_finite()) {
        return Err(Error::Value(format!(
            "gpu matmul tuning: the flop threshold must be finite and >= 0, got {flops}"
        )));
    }
    TUNE_MIN_FLOPS.store(flops.to_bits(), std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// How the vec4 matmul kernel is chosen: `Some(i)` always MM_VARIANTS[i]; `None` ("auto",
/// the default) times every variant on the first product of each large shape and keeps the
/// fastest; smaller products take MM_VARIANTS[0].
static MM_CHOICE: std::sync::Mutex<Option<Option<usize>>> = std::sync::Mutex::new(None);

/// What "auto" measured: (layout, m, n, k) -> (chosen variant, seconds per variant).
type TuneKey = (usize, usize, usize, usize);
type TuneResult = (usize, Vec<(usize, f64)>);
static MM_TUNED: std::sync::Mutex<Option<HashMap<TuneKey, TuneResult>>> =
    std::sync::Mutex::new(None);

fn mm_choice() -> Option<usize> {
    let mut c = MM_CHOICE.lock().unwrap_or_else(|e| e.into_inner());
    *c.get_or_insert_with(|| {
        // FERROGRAD_MATMUL_KERNEL names a variant or "auto"; anything else keeps the
        // default, "auto"
        let named = std::env::var("FERROGRAD_MATMUL_KERNEL").ok();
        match named.as_deref() {
            Some(n) if n != "auto" => MM_VARIANTS.iter().position(|v| v.name == n),
            _ => None,
        }
    })
}

/// Sets how the GPU matmul kernel is chosen: a name from [`matmul_kernel_names`] or "auto";
/// returns the setting in force before.
pub fn set_matmul_kernel(name: &str) -> Result<String> {
    let before = matmul_kernel();
    let choice = if name == "auto" {
        None
    } else {
        Some(
            MM_VARIANTS
                .iter()
                .position(|v| v.name == name)
                .ok_or_else(|| {
                    Error::Value(format!(
                        "gpu matmul kernel: unknown name {name:?}; expected \"auto\" or one of {:?}",
                        matmul_kernel_names()
                    ))
                })?,
        )
    };
    *MM_CHOICE.lock().unwrap_or_else(|e| e.into_inner()) = Some(choice);
    Ok(before)
}

/// The current matmul kernel setting: a variant name or "auto".
pub fn matmul_kernel() -> String {
    match mm_choice() {
        Some(i) => MM_VARIANTS[i].name.to_string(),
        None => "auto".to_string(),
    }
}

/// The names of the vec4 matmul kernels, the default first.
pub fn matmul_kernel_names() -> Vec<&'static str> {
    MM_VARIANTS.iter().map(|v| v.name).collect()
}

/// What "auto" chose so far: ((layout "kn"/"kk"/"mn"/"mk", m, n, k), chosen name, and each
/// variant's measured seconds per product, NaN for one whose output differed from the
/// default kernel's and was therefore rejected), sorted by shape.
#[allow(clippy::type_complexity)]
pub fn matmul_tuning() -> Vec<(
    (&'static str, usize, usize, usize),
    &'static str,
    Vec<(&'static str, f64)>,
)> {
    const LAYOUTS: [&str; 4] = ["kn", "kk", "mn", "mk"];
    let t = MM_TUNED.lock().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<_> = t
        .iter()
        .flat_map(|m| m.iter())
        .map(|(&(l, m, n, k), (best, times))| {
            (
                (LAYOUTS[l], m, n, k),
                MM_VARIANTS[*best].name,
                times
                    .iter()
                    .map(|&(i, s)| (MM_VARIANTS[i].name, s))
                    .collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn mm_kernel(v: &MmVariant, layout: usize) -> gpu::Kernel {
    const CONSTS: [&[(&str, f64)]; 4] = [
        &[("A_K_CONTIG", 1.0), ("B_N_CONTIG", 1.0)],
        &[("A_K_CONTIG", 1.0), ("B_N_CONTIG", 0.0)],
        &[("A_K_CONTIG", 0.0), ("B_N_CONTIG", 1.0)],
        &[("A_K_CONTIG", 0.0), ("B_N_CONTIG", 0.0)],
    ];
    gpu::Kernel {
        key: v.keys[layout],
        src: v.src,
        entry: v.entry,
        constants: CONSTS[layout],
        unchecked: true,
        zero_workgroup: false,
    }
}

/// The operand layout index (0 kn, 1 kk, 2 mn, 3 mk) when every vector load and store of
/// the vec4 kernels is aligned: the contiguous dimension of each operand and of C is a
/// multiple of 4, as are the other stride and every batch offset. `None` sends the product
/// to the scalar kernel.
fn vec4_layout(
    m: usize,
    k: usize,
    n: usize,
    (a_rs, a_cs): (isize, isize),
    (b_rs, b_cs): (isize, isize),
    offsets: &[(isize, isize)],
) -> Option<usize> {
    let aligned = |x: isize| x % 4 == 0;
    let (m, k, n) = (m as isize, k as isize, n as isize);
    if !aligned(n) || !offsets.iter().all(|&(oa, ob)| aligned(oa) && aligned(ob)) {
        return None;
    }
    // which dimension of each operand is contiguous (a 1-wide dimension counts as either)
    let a_k = if a_cs == 1 && aligned(k) && (aligned(a_rs) || m == 1) {
        true
    } else if a_rs == 1 && aligned(m) && (aligned(a_cs) || k == 1) {
        false
    } else {
        return None;
    };
    let b_n = if b_cs == 1 && (aligned(b_rs) || k == 1) {
        true
    } else if b_rs == 1 && aligned(k) && (aligned(b_cs) || n == 1) {
        false
    } else {
        return None;
    };
    Some(2 * (!a_k as usize) + (!b_n as usize))
}

/// Times each variant on this product (its first batch, written to its output) and returns
/// the fastest of those whose output matches the default kernel's bits. Waits for the GPU: only "auto" mode on large products comes here, once per
/// shape and layout. Every variant gives the same bits, so the choice never changes results.
fn tune_matmul(
    ctx: &gpu::Context,
    layout: usize,
    (m, n, k): (usize, usize, usize),
    out: &GpuBuffer,
    launch: &dyn Fn(&gpu::Kernel, [u32; 3]) -> Result<()>,
) -> Result<usize> {
    let mut times = Vec::new();
    // the default kernel's output, which every other must match bit for bit (a driver that
    // miscompiles one must not have it chosen); skipped for outputs over 128 MiB
    let verify = out.len() <= 1 << 25; // the read-back takes every batch's output
    let mut reference: Option<Vec<f32>> = None;
    for (i, v) in MM_VARIANTS.iter().enumerate() {
        let (bm, bn) = v.tile;
        if n.div_ceil(bn) > 65_535 || m.div_ceil(bm) > 65_535 {
            continue;
        }
        let groups = [n.div_ceil(bn) as u32, m.div_ceil(bm) as u32, 1];
        let kernel = mm_kernel(v, layout);
        // a variant the device cannot compile is skipped; the first run also compiles
        if launch(&kernel, groups)
            .and_then(|_| ctx.synchronize())
            .is_err()
        {
            continue;
        }
        // enough repetitions (from one timed run) that submission overhead is small
        let t0 = std::time::Instant::now();
        launch(&kernel, groups)?;
        ctx.synchronize()?;
        let once = t0.elapsed().as_secs_f64();
        if i == 0 && once > 0.1 {
            // a device this slow would spend seconds timing the others: keep the default
            times.push((i, once));
            break;
        }
        // about 10 ms per timing, best of three: on an H100 single 4 ms products timed twice
        // ranked the kernels differently from one process to the next (a kernel measured 41
        // TFLOP/s in one and 21 in another)
        let reps = ((1e-2 / once.max(1e-6)).ceil() as usize).clamp(1, 64);
        let mut best = once;
        for _ in 0..3 {
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                launch(&kernel, groups)?;
            }
            ctx.synchronize()?;
            best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
        }
        if verify {
            let got = out.download()?;
            let got = &got[..m * n];
            match &reference {
                None if i == 0 => reference = Some(got.to_vec()),
                Some(want) if !same_bits(got, want) => {
                    times.push((i, f64::NAN)); // wrong result: never chosen
                    continue;
                }
                _ => {}
            }
        }
        times.push((i, best));
    }
    let best = fastest(&times);
    let mut t = MM_TUNED.lock().unwrap_or_else(|e| e.into_inner());
    t.get_or_insert_with(HashMap::new)
        .insert((layout, m, n, k), (best, times));
    Ok(best)
}

/// Equal bits, any NaN matching any NaN (payloads may differ between kernels).
fn same_bits(got: &[f32], want: &[f32]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
}

/// The variant with the smallest time, ignoring rejected ones (NaN); the default when none.
fn fastest(times: &[(usize, f64)]) -> usize {
    times
        .iter()
        .filter(|t| !t.1.is_nan())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |&(i, _)| i)
}

/// y = x * A + B with A, B from the dropout mask of stream `seed` at `start` (the numbers
/// the CPU would draw); returns (y, A) so the backward is g * A.
pub(crate) fn masked_affine(
    x: &Tensor,
    seed: u64,
    start: u64,
    threshold: u32,
    keep: (f32, f32),
    drop_shift: f32,
) -> Result<(Tensor, Tensor)> {
    let ctx = gpu::context()?;
    let x = x.contiguous()?;
    let x = if x.layout().offset != 0 { copy(&x)? } else { x };
    let n = x.numel();
    check_u32("dropout", n)?;
    let scale = ctx.alloc(n)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (groups, row) = ctx.grid(n, 64)?;
        let p = DropParams {
            n: n as u32,
            threshold,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            start_lo: start as u32,
            start_hi: (start >> 32) as u32,
            row,
            _pad: 0,
            keep_scale: keep.0,
            keep_shift: keep.1,
            drop_shift,
            _pad2: 0.0,
        };
        const DROPOUT: gpu::Kernel = gpu::Kernel::new("dropout", gpu::shaders::DROPOUT, "main");
        // one pass: the mask (kept for the backward) and the masked affine output
        x.with_gpu(|xb, _| {
            ctx.run(
                &DROPOUT,
                &p,
                gpu::Binds {
                    inputs: [Some(xb), None],
                    output: &out,
                    extra: gpu::Extra::None,
                    rw: [Some(&scale), None],
                },
                groups,
            )
        })??;
    }
    Ok((new_tensor(out, x.shape())?, new_tensor(scale, x.shape())?))
}

/// out = x.index_select(dim, idx) for in-range, non-negative indices (checked by the caller).
pub(crate) fn gather(x: &Tensor, dim: usize, idx: &[usize]) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let x = x.contiguous()?;
    let shape = x.shape().to_vec();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut out_shape = shape.clone();
    out_shape[dim] = idx.len();
    let n = outer * idx.len() * inner;
    check_u32("index_select", n)?;
    check_u32("index_select", x.numel())?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        let (groups, row) = ctx.grid(n, 64)?;
        let p = GatherParams {
            n: n as u32,
            count: idx.len() as u32,
            size: shape[dim] as u32,
            inner: inner as u32,
            row,
            x_offset: x.layout().offset as u32,
            lists: 0,
            _pad: 0,
        };
        let words: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
        x.with_gpu(|xb, _| {
            ctx.dispatch(
                "gather",
                gpu::shaders::GATHER,
                "main",
                &p,
                [Some(xb), None],
                &out,
                Some(&words),
                groups,
            )
        })??;
    }
    new_tensor(out, &out_shape)
}

/// The backward of `gather(x, dim, idx)` with `x`'s dim of length `size`: each source row
/// gets the sum of the gradient rows that took it (zero when none did), as the CPU's
/// index-add, summed in increasing order of those rows.
pub(crate) fn scatter_sum(g: &Tensor, dim: usize, idx: &[usize], size: usize) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let g = g.contiguous()?;
    let shape = g.shape().to_vec();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut out_shape = shape.clone();
    out_shape[dim] = size;
    let n = outer * size * inner;
    check_u32("index_select backward", n)?;
    check_u32("index_select backward", g.numel() + size + idx.len() + 1)?;
    let out = ctx.alloc(n)?;
    if n > 0 {
        // CSR lists: offsets (size + 1 words), then the gradient rows of each source row
        let mut offsets = vec![0u32; size + 1];
        for &k in idx {
            offsets[k + 1] += 1;
        }
        for k in 0..size {
            offsets[k + 1] += offsets[k];
        }
        let mut next = offsets.clone();
        let mut rows = vec![0u32; idx.len()];
        for (j, &k) in idx.iter().enumerate() {
            rows[next[k] as usize] = j as u32;
            next[k] += 1;
        }
        let mut words = offsets;
        words.extend_from_slice(&rows);
        let (groups, row) = ctx.grid(n, 64)?;
        let p = GatherParams {
            n: n as u32,
            count: idx.len() as u32,
            size: size as u32,
            inner: inner as u32,
            row,
            x_offset: g.layout().offset as u32,
            lists: size as u32 + 1,
            _pad: 0,
        };
        g.with_gpu(|gb, _| {
            ctx.dispatch(
                "scatter_sum",
                gpu::shaders::GATHER,
                "scatter_sum_main",
                &p,
                [Some(gb), None],
                &out,
                Some(&words),
                groups,
            )
        })??;
    }
    new_tensor(out, &out_shape)
}

/// log_softmax over the last dim of a contiguous tensor, one workgroup per row.
pub(crate) fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let x = x.contiguous()?;
    let cols = *x.shape().last().unwrap_or(&1);
    let rows = x.numel().checked_div(cols).unwrap_or(0);
    check_u32("log_softmax", x.numel())?;
    let out = ctx.alloc(x.numel())?;
    if rows > 0 {
        let (groups, row) = ctx.grid(rows, 1)?;
        let p = SmParams {
            rows: rows as u32,
            cols: cols as u32,
            row,
            x_offset: x.layout().offset as u32,
            smoothing: 0.0,
            g_scale: 1.0,
            g_per_row: 0,
            _pad: 0,
        };
        x.with_gpu(|xb, _| {
            ctx.dispatch(
                "log_softmax",
                gpu::shaders::SOFTMAX,
                "log_softmax_main",
                &p,
                [Some(xb), None],
                &out,
                None,
                groups,
            )
        })??;
    }
    new_tensor(out, x.shape())
}

/// A contiguous view starting at element 0 (the fused kernels index from 0): `t` itself
/// when it already is one, else a compact copy.
fn dense(t: &Tensor) -> Result<Tensor> {
    let t = t.contiguous()?;
    if t.layout().offset != 0 {
        copy(&t)
    } else {
        Ok(t)
    }
}

/// Refuses a tensor an in-place kernel cannot write through (a strided or offset view).
fn in_place_target(op: &str, t: &Tensor) -> Result<()> {
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

/// One in-place optimizer update of `param` (binding 3) from `grad`, with `aux` at binding 2
/// and the state tensors at 5 and 6. `p.n` and `p.row` are filled in here.
pub(crate) fn optimizer_update(
    kernel: OptKernel,
    param: &Tensor,
    grad: &Tensor,
    aux: Option<&Tensor>,
    state: [Option<&Tensor>; 2],
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
    let n = param.numel();
    check_u32(name, n)?;
    in_place_target(name, param)?;
    for s in state.iter().flatten() {
        in_place_target(name, s)?;
    }
    if n == 0 {
        return Ok(());
    }
    let grad = dense(grad)?;
    let aux = aux.map(dense).transpose()?;
    let (groups, row) = ctx.grid(n, 64)?;
    p.n = n as u32;
    p.row = row;
    // buffers in order: grad, param, then whichever of aux, state 0, state 1 are given
    let mut ts: Vec<&Tensor> = vec![&grad, param];
    let mut idx = [None; 3];
    for (k, t) in [aux.as_ref(), state[0], state[1]].into_iter().enumerate() {
        if let Some(t) = t {
            ts.push(t);
            idx[k] = Some(ts.len() - 1);
        }
    }
    Tensor::with_gpus(&ts, |b| {
        let binds = gpu::Binds {
            inputs: [Some(b[0]), idx[0].map(|i| b[i])],
            output: b[1],
            extra: gpu::Extra::None,
            rw: [idx[1].map(|i| b[i]), idx[2].map(|i| b[i])],
        };
        ctx.run(k, &p, binds, groups)
    })?
}

const BN_STATS: gpu::Kernel = gpu::Kernel::new("bn_stats", gpu::shaders::BATCHNORM, "stats_main");
const BN_NORM: gpu::Kernel = gpu::Kernel::new("bn_norm", gpu::shaders::BATCHNORM, "norm_main");
const BN_GRAD_REDUCE: gpu::Kernel = gpu::Kernel::new(
    "bn_grad_reduce",
    gpu::shaders::BATCHNORM,
    "grad_reduce_main",
);
const BN_GRAD_X: gpu::Kernel =
    gpu::Kernel::new("bn_grad_x", gpu::shaders::BATCHNORM, "grad_x_main");

/// Batch norm of a (n, c) GPU tensor in fused kernels: statistics (batch ones in training,
/// updating the running ones in place; the running ones in eval), then the normalization,
/// then `relu` if asked (BatchNorm1d -> ReLU in one pass). The backward is two more kernels.
/// Shapes are checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm(
    x_in: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f64,
    eps: f64,
    relu: bool,
) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let (n, c) = (x_in.shape()[0], x_in.shape()[1]);
    check_u32("batch_norm", n * c)?;
    if let Some((rm, rv)) = running {
        in_place_target("batch_norm", rm)?;
        in_place_target("batch_norm", rv)?;
    }
    let x = dense(x_in)?;
    let w = weight.map(dense).transpose()?;
    let b = bias.map(dense).transpose()?;
    let mut flags = (w.is_some() as u32) | ((b.is_some() as u32) << 1);
    if training && running.is_some() {
        flags |= 4;
    }
    if !training {
        flags |= 8;
    }
    if relu {
        flags |= 16;
    }
    // per-feature kernels: one 16 x 16 workgroup per 16 features; `row` counts workgroups
    let (groups_c, row_c) = ctx.grid(c.div_ceil(16).max(1), 1)?;
    let (groups_nc, row_nc) = ctx.grid((n * c).max(1), 64)?;
    let params = move |row| gpu::BnParams {
        n: n as u32,
        c: c as u32,
        flags,
        row,
        eps: eps as f32,
        momentum: momentum as f32,
        unbias: if n > 1 {
            (n as f64 / (n as f64 - 1.0)) as f32
        } else {
            1.0
        },
        _pad: 0.0,
    };
    let stats = ctx.alloc(4 * c)?;
    let y = ctx.alloc(n * c)?;
    if n * c > 0 {
        let mut ts: Vec<&Tensor> = vec![&x];
        let iw = w.as_ref().map(|t| {
            ts.push(t);
            ts.len() - 1
        });
        let ib = b.as_ref().map(|t| {
            ts.push(t);
            ts.len() - 1
        });
        let ir = running.map(|(rm, rv)| {
            ts.push(rm);
            ts.push(rv);
            ts.len() - 2
        });
        Tensor::with_gpus(&ts, |bufs| {
            ctx.run(
                &BN_STATS,
                &params(row_c),
                gpu::Binds {
                    inputs: [Some(bufs[0]), iw.map(|i| bufs[i])],
                    output: &stats,
                    extra: ib.map_or(gpu::Extra::None, |i| gpu::Extra::Buffer(bufs[i])),
                    rw: [ir.map(|i| bufs[i]), ir.map(|i| bufs[i + 1])],
                },
                groups_c,
            )?;
            ctx.run(
                &BN_NORM,
                &params(row_nc),
                gpu::Binds {
                    inputs: [Some(bufs[0]), Some(&stats)],
                    output: &y,
                    extra: gpu::Extra::None,
                    rw: [None, None],
                },
                groups_nc,
            )
        })??;
    }
    let y = new_tensor(y, &[n, c])?;
    let stats = new_tensor(stats, &[4 * c])?;
    let mut inputs = vec![x_in];
    inputs.extend(weight);
    inputs.extend(bias);
    let (nx, has_w, has_b) = (x_in.requires_grad(), weight.is_some(), bias.is_some());
    let (nw, nb) = (
        weight.is_some_and(|t| t.requires_grad()),
        bias.is_some_and(|t| t.requires_grad()),
    );
    Ok(crate::autograd::record(
        y,
        "BatchNormBackward",
        &inputs,
        move |g| {
            let ctx = gpu::context()?;
            let g = dense(&to_gpu_like(g)?)?;
            let coef = ctx.alloc(6 * c)?;
            let dgamma = ctx.alloc(c)?;
            let dbeta = ctx.alloc(c)?;
            let dx = ctx.alloc(n * c)?;
            if n * c > 0 {
                Tensor::with_gpus(&[&g, &x, &stats], |b| {
                    ctx.run(
                        &BN_GRAD_REDUCE,
                        &params(row_c),
                        gpu::Binds {
                            inputs: [Some(b[0]), Some(b[1])],
                            output: &coef,
                            extra: gpu::Extra::Buffer(b[2]),
                            rw: [Some(&dgamma), Some(&dbeta)],
                        },
                        groups_c,
                    )?;
                    ctx.run(
                        &BN_GRAD_X,
                        &params(row_nc),
                        gpu::Binds {
                            inputs: [Some(b[0]), Some(b[1])],
                            output: &dx,
                            extra: gpu::Extra::Buffer(&coef),
                            rw: [None, None],
                        },
                        groups_nc,
                    )
                })??;
            }
            let mut grads = vec![if nx {
                Some(new_tensor(dx, &[n, c])?)
            } else {
                None
            }];
            if has_w {
                grads.push(if nw {
                    Some(new_tensor(dgamma, &[c])?)
                } else {
                    None
                });
            }
            if has_b {
                grads.push(if nb {
                    Some(new_tensor(dbeta, &[c])?)
                } else {
                    None
                });
            }
            Ok(grads)
        },
    ))
}

/// An upstream gradient on the GPU (autograd seeds a CPU scalar at times).
fn to_gpu_like(g: &Tensor) -> Result<Tensor> {
    if g.is_gpu() {
        Ok(g.clone())
    } else {
        g.cast(crate::dtype::DType::F32)?
            .to_device(crate::tensor::Device::Gpu)
    }
}

const XENT: gpu::Kernel = gpu::Kernel::new("xent", gpu::shaders::SOFTMAX, "xent_main");
const XENT_GRAD: gpu::Kernel =
    gpu::Kernel::new("xent_grad", gpu::shaders::SOFTMAX, "xent_grad_main");

/// Fused log-softmax + cross-entropy of (rows, cols) GPU logits against checked labels;
/// the backward is one elementwise kernel from the saved max and log-sum of each row.
pub(crate) fn cross_entropy(
    x_in: &Tensor,
    labels: &[i64],
    smoothing: f64,
    reduction: super::nn::Reduction,
) -> Result<Tensor> {
    use super::nn::Reduction;
    let ctx = gpu::context()?;
    let (rows, cols) = (x_in.shape()[0], x_in.shape()[1]);
    check_u32("cross_entropy", rows * cols)?;
    let x = dense(x_in)?;
    let per = ctx.alloc(rows)?;
    let saved = ctx.alloc(3 * rows)?; // each row's max, log-sum and label
    if rows > 0 {
        let words: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let (groups, row) = ctx.grid(rows, 1)?;
        let p = SmParams {
            rows: rows as u32,
            cols: cols as u32,
            row,
            x_offset: 0,
            smoothing: smoothing as f32,
            g_scale: 1.0,
            g_per_row: 0,
            _pad: 0,
        };
        x.with_gpu(|xb, _| {
            ctx.run(
                &XENT,
                &p,
                gpu::Binds {
                    inputs: [Some(xb), None],
                    output: &per,
                    extra: gpu::Extra::Words(&words),
                    rw: [Some(&saved), None],
                },
                groups,
            )
        })??;
    }
    let per = new_tensor(per, &[rows])?;
    let out = {
        let _g = crate::autograd::NoGradGuard::new();
        match reduction {
            Reduction::None => per,
            Reduction::Sum => per.sum(None, false)?,
            Reduction::Mean => per.mean(None, false)?,
        }
    };
    Ok(crate::autograd::record(
        out,
        "CrossEntropyBackward",
        &[x_in],
        move |g| {
            let ctx = gpu::context()?;
            let g = dense(&to_gpu_like(g)?)?;
            let dx = ctx.alloc(rows * cols)?;
            if rows * cols > 0 {
                let (groups, row) = ctx.grid(rows * cols, 64)?;
                let p = SmParams {
                    rows: rows as u32,
                    cols: cols as u32,
                    row,
                    x_offset: 0,
                    smoothing: smoothing as f32,
                    g_scale: if reduction == Reduction::Mean {
                        1.0 / rows as f32
                    } else {
                        1.0
                    },
                    g_per_row: (reduction == Reduction::None) as u32,
                    _pad: 0,
                };
                Tensor::with_gpus(&[&x, &g], |b| {
                    ctx.run(
                        &XENT_GRAD,
                        &p,
                        gpu::Binds {
                            inputs: [Some(b[0]), Some(b[1])],
                            output: &dx,
                            extra: gpu::Extra::Buffer(&saved),
                            rw: [None, None],
                        },
                        groups,
                    )
                })??;
            }
            Ok(vec![Some(new_tensor(dx, &[rows, cols])?)])
        },
    ))
}

/// Concatenation along `d` on the GPU: each part with `d` moved to the front is made
/// contiguous, the parts are copied one after another into one buffer (queue-ordered
/// buffer copies, no kernel), and the result is that buffer with `d` moved back (a view).
pub(crate) fn cat(parts: &[Tensor], d: usize, out_shape: &[usize]) -> Result<Tensor> {
    let ctx = gpu::context()?;
    let nd = out_shape.len();
    // d first, the other dims in order; and its inverse
    let front: Vec<isize> = std::iter::once(d)
        .chain((0..nd).filter(|&j| j != d))
        .map(|j| j as isize)
        .collect();
    let back: Vec<isize> = (0..nd)
        .map(|j| match j.cmp(&d) {
            std::cmp::Ordering::Less => j as isize + 1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => j as isize,
        })
        .collect();
    let total: usize = out_shape.iter().product();
    check_u32("cat", total)?;
    let out = ctx.alloc(total)?;
    let mut at = 0;
    for p in parts {
        let moved = p.detach().permute(&front)?;
        // a contiguous part is copied from where it lies in its buffer; anything else is
        // compacted first
        let moved = if moved.is_contiguous() {
            moved
        } else {
            copy(&moved)?
        };
        if moved.numel() > 0 {
            let (from, n) = (moved.layout().offset, moved.numel());
            moved.with_gpu(|b, _| out.copy_from(at, b, from, n))??;
        }
        at += moved.numel();
    }
    let mut moved_shape: Vec<usize> = vec![out_shape[d]];
    moved_shape.extend((0..nd).filter(|&j| j != d).map(|j| out_shape[j]));
    new_tensor(out, &moved_shape)?.permute(&back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_skips_rejected_kernels_and_compares_bits() {
        assert_eq!(fastest(&[(0, 3.0), (2, f64::NAN), (5, 1.0), (7, 2.0)]), 5);
        assert_eq!(fastest(&[(0, 3.0), (2, f64::NAN)]), 0);
        assert_eq!(fastest(&[(4, f64::NAN)]), 0);
        assert_eq!(fastest(&[]), 0);
        assert!(same_bits(&[1.0, f32::NAN, -0.0], &[1.0, -f32::NAN, -0.0]));
        assert!(!same_bits(&[0.0], &[-0.0]));
        assert!(!same_bits(&[1.0], &[1.0 + f32::EPSILON]));
        assert!(!same_bits(&[1.0], &[1.0, 2.0]));
        assert!(!same_bits(&[f32::NAN], &[0.0]));
    }

    #[test]
    fn every_kernel_name_and_key_is_unique() {
        let mut names: Vec<_> = MM_VARIANTS.iter().map(|v| v.name).collect();
        let mut keys: Vec<_> = MM_VARIANTS.iter().flat_map(|v| v.keys).collect();
        let (n, k) = (names.len(), keys.len());
        names.sort_unstable();
        names.dedup();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!((names.len(), keys.len()), (n, k));
        assert_eq!(MM_VARIANTS[0].name, "t64x64"); // the default below the tuning threshold
    }
}
