//! The tensor-core product (matmul_coop.wgsl): float16 operands read as they rest (packed),
//! float32 accumulation, on adapters whose cooperative-matrix configurations include
//! float16 x float16 -> float32 at 16 x 16 x 16 (`Context::coop_subgroup`).

use super::super::*;
use crate::ops::matmul::BatchPlan;

/// How matmul_coop.wgsl reads a product's operands: (operand layout 0 kn, 1 kk, 2 mn, 3 mk,
/// A's leading stride, B's leading stride), or None where it cannot: m, n and k must be
/// multiples of 16 (whole tiles), each operand contiguous along one of its dimensions,
/// and every tile row 16-byte aligned (strides and offsets multiples of 8 halves).
pub(crate) fn coop_plan(
    (m, k, n): (usize, usize, usize),
    (a_rs, a_cs): (isize, isize),
    (b_rs, b_cs): (isize, isize),
    offsets: &[(isize, isize)],
) -> Option<(usize, u32, u32)> {
    let whole = |x: usize| x > 0 && x.is_multiple_of(16);
    let aligned = |x: isize| x >= 0 && x % 8 == 0 && x <= u32::MAX as isize;
    if !(whole(m) && whole(k) && whole(n)) {
        return None;
    }
    if !offsets.iter().all(|&(oa, ob)| aligned(oa) && aligned(ob)) {
        return None;
    }
    // (k contiguous, leading stride) for A; (n contiguous, leading stride) for B
    let (a_k, a_ld) = match (a_rs, a_cs) {
        (rs, 1) if aligned(rs) && rs >= k as isize => (true, rs),
        (1, cs) if aligned(cs) && cs >= m as isize => (false, cs),
        _ => return None,
    };
    let (b_n, b_ld) = match (b_rs, b_cs) {
        (rs, 1) if aligned(rs) && rs >= n as isize => (true, rs),
        (1, cs) if aligned(cs) && cs >= k as isize => (false, cs),
        _ => return None,
    };
    Some((
        2 * (!a_k as usize) + (!b_n as usize),
        a_ld as u32,
        b_ld as u32,
    ))
}

/// The kernel for operand layout `layout` (coop_plan's) at subgroup size `sg` (32 or 64).
fn coop_kernel(layout: usize, sg: u32) -> Option<gpu::Kernel> {
    macro_rules! consts {
        ($a:expr, $b:expr, $sg:expr) => {
            &[("A_K_CONTIG", $a), ("B_N_CONTIG", $b), ("SG", $sg)]
        };
    }
    const KEYS: [[&str; 4]; 2] = [
        [
            "matmul_coop_kn32",
            "matmul_coop_kk32",
            "matmul_coop_mn32",
            "matmul_coop_mk32",
        ],
        [
            "matmul_coop_kn64",
            "matmul_coop_kk64",
            "matmul_coop_mn64",
            "matmul_coop_mk64",
        ],
    ];
    const CONSTS: [[&[(&str, f64)]; 4]; 2] = [
        [
            consts!(1.0, 1.0, 32.0),
            consts!(1.0, 0.0, 32.0),
            consts!(0.0, 1.0, 32.0),
            consts!(0.0, 0.0, 32.0),
        ],
        [
            consts!(1.0, 1.0, 64.0),
            consts!(1.0, 0.0, 64.0),
            consts!(0.0, 1.0, 64.0),
            consts!(0.0, 0.0, 64.0),
        ],
    ];
    let s = match sg {
        32 => 0,
        64 => 1,
        _ => return None,
    };
    Some(gpu::Kernel {
        key: KEYS[s][layout],
        src: gpu::shaders::MATMUL_COOP,
        entry: "main",
        constants: CONSTS[s][layout],
        unchecked: true,
        zero_workgroup: false,
    })
}

/// `act(a @ b + bias)` on tensor cores for packed float16 operands (batch dims broadcast
/// as in launch_matmul), the bias float32 words or packed halves (`bias_half`) read from
/// element 0: float32 words out. None where the adapter has no tensor-core kernel or the
/// operands do not fit it (coop_plan); the caller then takes the float32 kernels.
pub(crate) fn launch_matmul_coop(
    (a, la): (&GpuBuffer, &Layout),
    (b, lb): (&GpuBuffer, &Layout),
    bias: Option<(&GpuBuffer, bool)>,
    (act, alpha): (u32, f32),
) -> Result<Option<GpuBuffer>> {
    let ctx = gpu::context()?;
    let Some(kernel_of) = ctx
        .coop_subgroup
        .map(|sg| move |layout| coop_kernel(layout, sg))
    else {
        return Ok(None);
    };
    let plan = BatchPlan::new(la, lb)?;
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let offsets = plan.offsets();
    let total = plan.total();
    let Some((layout, a_ld, b_ld)) = coop_plan(
        (m, k, n),
        plan.matrix_strides().0,
        plan.matrix_strides().1,
        &offsets,
    ) else {
        return Ok(None);
    };
    let Some(kernel) = kernel_of(layout) else {
        return Ok(None);
    };
    check_u32("matmul", total)?;
    let out = ctx.alloc(total)?;
    let groups = [n.div_ceil(32) as u32, m.div_ceil(32) as u32, 1];
    for (bi, (oa, ob)) in offsets.into_iter().enumerate() {
        let p = gpu::CoopParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            bias: match bias {
                None => 0,
                Some((_, false)) => 1,
                Some((_, true)) => 2,
            },
            a_ld,
            b_ld,
            a_off: oa as u32,
            b_off: ob as u32,
            act,
            alpha,
            c_off: (bi * m * n) as u32,
            _pad: 0,
        };
        let binds = gpu::Binds {
            inputs: [Some(a), Some(b)],
            output: &out,
            extra: bias.map_or(gpu::Extra::None, |(c, _)| gpu::Extra::Buffer(c)),
            rw: [None, None],
        };
        ctx.run(&kernel, &p, binds, groups)?;
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::coop_plan;

    #[test]
    fn the_tensor_core_kernel_takes_whole_tiles_of_aligned_operands() {
        // row-major A and B, then each transposed
        assert_eq!(
            coop_plan((32, 64, 48), (64, 1), (48, 1), &[(0, 0)]),
            Some((0, 64, 48))
        );
        assert_eq!(
            coop_plan((32, 64, 48), (64, 1), (1, 64), &[(0, 0)]),
            Some((1, 64, 64))
        );
        assert_eq!(
            coop_plan((32, 64, 48), (1, 32), (48, 1), &[(0, 0)]),
            Some((2, 32, 48))
        );
        assert_eq!(
            coop_plan((32, 64, 48), (1, 32), (1, 64), &[(0, 0)]),
            Some((3, 32, 64))
        );
        // a dimension off the 16 grid, a misaligned row or offset, a strided operand
        assert_eq!(coop_plan((30, 64, 48), (64, 1), (48, 1), &[(0, 0)]), None);
        assert_eq!(coop_plan((32, 64, 40), (64, 1), (40, 1), &[(0, 0)]), None);
        assert_eq!(
            coop_plan((32, 64, 48), (72, 1), (48, 1), &[(0, 0)]),
            Some((0, 72, 48))
        );
        assert_eq!(coop_plan((32, 64, 48), (68, 1), (48, 1), &[(0, 0)]), None);
        assert_eq!(coop_plan((32, 64, 48), (66, 1), (48, 1), &[(0, 0)]), None);
        assert_eq!(coop_plan((32, 64, 48), (64, 1), (48, 1), &[(4, 0)]), None);
        assert_eq!(coop_plan((32, 64, 48), (64, 2), (48, 1), &[(0, 0)]), None);
        // batches: every offset aligned
        assert_eq!(
            coop_plan((32, 64, 48), (64, 1), (48, 1), &[(0, 0), (2048, 0)]),
            Some((0, 64, 48))
        );
    }
}
