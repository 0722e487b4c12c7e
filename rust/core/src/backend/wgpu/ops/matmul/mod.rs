//! The matmul subsystem: the launcher (with split-K), the kernel variants
//! (`variants`), and the choice among them (`tune`: settings per context, autotuning).

use super::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

mod coop;
mod tune;
mod variants;

pub(crate) use coop::launch_matmul_coop;

use tune::tune_matmul;
pub use tune::{
    matmul_kernel, matmul_kernel_names, matmul_split_k, matmul_tuning, set_matmul_kernel,
    set_matmul_split_k, set_matmul_split_k_fixup, set_matmul_tune_min_flops, MatmulSettings,
};
use variants::{mm_kernel, vec4_layout, MATMUL_SCALAR, MM_VARIANTS};

/// Batched `a @ b` (operands as buffers with their own layouts; batch dims broadcast, see
/// `BatchPlan`), optional bias (a buffer read from element 0), then the activation `act`
/// (0 none, else the op table's code of a fusable activation, with `alpha`) in the
/// epilogue. The inner dim and the output are not empty (the caller's cases).
pub(crate) fn launch_matmul(
    a: (&GpuBuffer, &Layout),
    b: (&GpuBuffer, &Layout),
    bias: Option<&GpuBuffer>,
    act: (u32, f32),
) -> Result<GpuBuffer> {
    Ok(launch(a, b, bias.map(|c| (c, 1)), act, false, [0; 4])?.0)
}

/// `a @ b + d` for one 2-D product and a dense m x n float32 addend `d` (element by element
/// in the epilogue, after the whole sum over k: the bits of the product, then the add): a
/// gradient accumulated into the product that makes another part of it. `halves` as for
/// launch_matmul_cast (A and B; C float32 words, rounded first with codes 3 and 4).
pub(crate) fn launch_matmul_add(
    a: (&GpuBuffer, &Layout),
    b: (&GpuBuffer, &Layout),
    d: &GpuBuffer,
    halves: [u32; 4],
) -> Result<GpuBuffer> {
    Ok(launch(a, b, Some((d, 2)), (0, 0.0), false, halves)?.0)
}

/// launch_matmul for operands (and a bias) that may rest as packed halves, and a result that
/// may be written packed: `halves` says which (A, B, bias, C: 0 float32 words, 1 float16,
/// 2 bfloat16). The kernels read and write them as they are, so no unpacking pass runs
/// first and no packing pass after. None where the scalar kernel (unaligned operands)
/// would have to pack an odd n: the caller unpacks.
pub(crate) fn launch_matmul_halves(
    a: (&GpuBuffer, &Layout),
    b: (&GpuBuffer, &Layout),
    bias: Option<&GpuBuffer>,
    act: (u32, f32),
    halves: [u32; 4],
) -> Result<Option<GpuBuffer>> {
    Ok(launch_matmul_cast(a, b, bias, act, halves, false)?.map(|(c, _)| c))
}

/// launch_matmul_halves with the other codes too (3, 4: float32 words rounded to float16 or
/// bfloat16 as they are read, or as C is written: casts to and from a half fused into the
/// product), and A's row sums (rounded as C) when `row_sums` and the product allows them
/// (see launch_matmul_row_sums). None where the product would take the scalar kernel and
/// C is packed with an odd n (the scalar kernel packs a thread's own pairs of columns).
pub(crate) fn launch_matmul_cast(
    a: (&GpuBuffer, &Layout),
    b: (&GpuBuffer, &Layout),
    bias: Option<&GpuBuffer>,
    act: (u32, f32),
    halves: [u32; 4],
    row_sums: bool,
) -> Result<Option<(GpuBuffer, Option<GpuBuffer>)>> {
    let plan = crate::ops::matmul::BatchPlan::new(a.1, b.1)?;
    let (sa, sb) = plan.matrix_strides();
    let scalar = vec4_layout(plan.m, plan.k, plan.n, sa, sb, &plan.offsets()).is_none();
    if scalar && matches!(halves[3], 1 | 2) && plan.n % 2 == 1 {
        return Ok(None);
    }
    launch(a, b, bias.map(|c| (c, 1)), act, row_sums, halves).map(Some)
}

/// `a @ b` for one 2-D product and, in the same dispatch, the m row sums of `a` (B is read
/// with a column of ones after its last, whose results are the sums): a Linear layer's
/// weight and bias gradients, `g^T x` and `g^T 1`. No sums where the product takes the
/// scalar kernel or split-K (the caller computes them apart).
pub(crate) fn launch_matmul_row_sums(
    a: (&GpuBuffer, &Layout),
    b: (&GpuBuffer, &Layout),
) -> Result<(GpuBuffer, Option<GpuBuffer>)> {
    launch(a, b, None, (0, 0.0), true, [0; 4])
}

/// launch_matmul, with the row sums when `row_sums` and the product allows them (see
/// launch_matmul_row_sums; when it does not, the product alone). The bias comes with its
/// kind (Params.has_bias: 1 a row vector, 2 an m x n addend).
fn launch(
    (a, la): (&GpuBuffer, &Layout),
    (b, lb): (&GpuBuffer, &Layout),
    bias: Option<(&GpuBuffer, u32)>,
    (act, alpha): (u32, f32),
    row_sums: bool,
    [a_half, b_half, bias_half, c_half]: [u32; 4],
) -> Result<(GpuBuffer, Option<GpuBuffer>)> {
    let ctx = gpu::context()?;
    let plan = crate::ops::matmul::BatchPlan::new(la, lb)?;
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let total = plan.total();
    check_u32("matmul", total)?;
    let ((a_rs, a_cs), (b_rs, b_cs)) = plan.matrix_strides();
    let offsets = plan.offsets();
    let bias_c = bias.map(|(c, _)| c);
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
        has_bias: bias.map_or(0, |(_, kind)| kind),
        act,
        c_off: (bi * m * n) as u32,
        alpha,
        kc: k as u32,
        fixup: 0,
        row_sums: 0,
        a_half,
        b_half,
        bias_half,
        c_half,
    };
    // packed halves: two to a word
    let out = ctx.alloc(if c_half == 1 || c_half == 2 {
        total.div_ceil(2)
    } else {
        total
    })?;
    // `split`: the parts' scratch and, when the tile's last part sums them, the counts
    let launch_into = |dst: &GpuBuffer,
                       kernel: &gpu::Kernel,
                       groups: [u32; 3],
                       p: &MmParams,
                       split: [Option<&GpuBuffer>; 2]|
     -> Result<()> {
        let run = |ab: &GpuBuffer, bb: &GpuBuffer, extra: gpu::Extra<'_>| {
            let binds = gpu::Binds {
                inputs: [Some(ab), Some(bb)],
                output: dst,
                extra,
                rw: split,
            };
            ctx.run(kernel, p, binds, groups)
        };
        match bias_c {
            Some(biasb) => run(a, b, gpu::Extra::Buffer(biasb)),
            None => run(a, b, gpu::Extra::None),
        }
    };
    let launch_out = |kernel: &gpu::Kernel, groups: [u32; 3], p: &MmParams| {
        launch_into(&out, kernel, groups, p, [None, None])
    };
    let (kernel, (bm, bn)) = match vec4_layout(m, k, n, (a_rs, a_cs), (b_rs, b_cs), &offsets) {
        None => (MATMUL_SCALAR, (64, 64)),
        Some(layout) => {
            let flops = 2.0 * m as f64 * n as f64 * k as f64;
            let chosen = ctx.matmul.choose((layout, m, n, k), flops, || {
                let p0 = params(0, offsets[0]);
                tune_matmul(&ctx, layout, (m, n, k), &out, &|kern, groups| {
                    launch_out(kern, groups, &p0)
                })
            })?;
            let v = &MM_VARIANTS[chosen];
            (mm_kernel(v, layout), v.tile)
        }
    };
    if (n + 1).div_ceil(bn) > 65_535 || m.div_ceil(bm) > 65_535 {
        return Err(Error::Memory(format!(
            "matmul: a {m} x {n} output exceeds one gpu dispatch grid (65,535 tiles of {bm} x {bn})"
        )));
    }
    let groups = [n.div_ceil(bn) as u32, m.div_ceil(bm) as u32, 1];
    let scalar = kernel.key == MATMUL_SCALAR.key;
    let kc = if scalar {
        k
    } else {
        ctx.matmul
            .split_k_chunk(groups[0] as usize * groups[1] as usize, k)
    };
    if row_sums && !scalar && kc == k && offsets.len() == 1 && bias.is_none() {
        // one more column of tiles where n fills the last: its first column is the sums
        let sums = ctx.alloc(m)?;
        let mut p = params(0, offsets[0]);
        p.row_sums = 1;
        let wide = [(n + 1).div_ceil(bn) as u32, groups[1], 1];
        launch_into(&out, &kernel, wide, &p, [Some(&sums), None])?;
        return Ok((out, Some(sums)));
    }
    if kc < k {
        // split-K: S partial products into scratch, then their sum goes through the bias
        // and activation, either in the same dispatch (the tile's last part, `finish_split`)
        // or in a second pass
        let splits = k.div_ceil(kc);
        let scratch = ctx.alloc(splits * m * n)?;
        let tiles = groups[0] as usize * groups[1] as usize;
        let counts = if ctx.matmul.split_fixup.load(Ordering::Relaxed) && tiles <= SPLIT_COUNTS {
            Some(split_counts(&ctx)?)
        } else {
            None
        };
        for (bi, off) in offsets.into_iter().enumerate() {
            let mut p = params(bi, off);
            p.kc = kc as u32;
            p.fixup = counts.is_some() as u32;
            let split_groups = [groups[0], groups[1], splits as u32];
            launch_into(&out, &kernel, split_groups, &p, [Some(&scratch), counts])?;
            if counts.is_some() {
                continue;
            }
            let sum_groups = [(m * n / 4).div_ceil(256) as u32, 1, 1];
            launch_into(
                &out,
                &MATMUL_SPLITK_SUM,
                sum_groups,
                &p,
                [Some(&scratch), None],
            )?;
        }
        return Ok((out, None));
    }
    for (bi, off) in offsets.into_iter().enumerate() {
        launch_out(&kernel, groups, &params(bi, off))?;
    }
    Ok((out, None))
}

/// Split-K's second pass (matmul_vec4.wgsl): the partial products summed, then the epilogue.
pub(crate) const MATMUL_SPLITK_SUM: gpu::Kernel =
    gpu::Kernel::new("matmul_splitk_sum", gpu::shaders::MATMUL_VEC4, "splitk_sum");

/// Output tiles a split product may have for `finish_split`'s counts (split-K is used only
/// below 128 tiles).
const SPLIT_COUNTS: usize = 256;

/// The context's per-tile counts of finished split-K parts, zeroed when first made.
fn split_counts(ctx: &Arc<gpu::Context>) -> Result<&GpuBuffer> {
    if let Some(c) = ctx.matmul.split_counts.get() {
        return Ok(c);
    }
    let c = ctx.alloc(SPLIT_COUNTS)?;
    c.write_at(0, &[0.0; SPLIT_COUNTS])?;
    Ok(ctx.matmul.split_counts.get_or_init(|| c))
}
