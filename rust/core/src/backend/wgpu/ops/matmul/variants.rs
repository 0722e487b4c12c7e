//! The matmul kernels: the scalar fallback, the vec4 variants and which operand layouts
//! they take.

use super::super::*;

/// The scalar kernel, for operands the vec4 kernels cannot load aligned.
pub(crate) const MATMUL_SCALAR: gpu::Kernel =
    gpu::Kernel::new("matmul", gpu::shaders::MATMUL, "main");

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

/// Every vec4 matmul kernel: the generated ones in scripts/gen_matmul_tiled.py's order (its
/// `VARIANTS` is the one list; it writes the macro call included here), then the
/// hand-written `v4_64` of matmul_vec4.wgsl. All accumulate each output element with fma in
/// k order, so they give identical bits and the choice among them is only about speed. The
/// first is the default below the tuning threshold: on an H100 it was the fastest or within
/// 5% of it at a Standard step's products (batch 128) and 1024 (benches/README.md), and the
/// tuner checks every other kernel's bits against its output.
pub(crate) const MM_VARIANTS: &[MmVariant] = {
    use gpu::shaders::{MATMUL_TILED as T, MATMUL_VEC4 as V};
    // a generated kernel: entry point = name, pipeline keys "mmt_<name>_<layout>"
    macro_rules! tiled_variants {
        [$(($name:literal, $bm:expr, $bn:expr)),* $(,)?] => {
            &[
                $(MmVariant {
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
                },)*
                MmVariant {
                    name: "v4_64",
                    src: V,
                    entry: "main64",
                    tile: (64, 64),
                    keys: ["matmul4s_kn", "matmul4s_kk", "matmul4s_mn", "matmul4s_mk"],
                },
            ]
        };
    }
    include!("../../../../../../../shaders/generated/matmul_tiled_variants.rs")
};

/// The kernel of variant `v` for operand layout `layout` (0 kn, 1 kk, 2 mn, 3 mk).
pub(crate) fn mm_kernel(v: &MmVariant, layout: usize) -> gpu::Kernel {
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
pub(crate) fn vec4_layout(
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn every_kernel_entry_point_is_in_its_shader() {
        // the generated list and the generated shader come from one generator run; this
        // catches a hand edit of either
        for v in MM_VARIANTS {
            assert!(v.src.contains(&format!("fn {}(", v.entry)), "{}", v.name);
        }
    }
}
