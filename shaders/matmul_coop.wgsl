// Matrix products on tensor cores: float16 A and B (packed halves, read as array<f16>),
// float32 accumulation in 16 x 16 x 16 cooperative-matrix steps (`wgpu_cooperative_matrix`,
// subgroup scope), then the bias and activation epilogue of matmul_vec4.wgsl, float32 out.
// Chosen at run time only where the adapter offers the extension with a float16 x float16
// -> float32 16 x 16 x 16 configuration and a fixed subgroup size (`SG`, which is also the
// workgroup size, so a workgroup is one subgroup); m, n and k are multiples of 16 and the
// operands' rows start 16-byte aligned (the driver checks). common.wgsl and the op table's
// generated part are prepended (act_fwd4).
//
// A workgroup computes a 32 x 32 block of C as four 16 x 16 accumulators. Where the second
// row or column of the block lies past m or n, its loads repeat the first (in bounds, the
// same for the whole subgroup: cooperative operations need uniform control flow) and its
// results are not stored. Its `enable` directives are prepended with the prelude (they must
// come before every declaration).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    bias: u32,   // 0 none, 1 float32 words, 2 packed halves
    a_ld: u32,   // A's stride between rows (A_K_CONTIG) or columns, in elements
    b_ld: u32,   // B's stride between rows (B_N_CONTIG) or columns
    a_off: u32,
    b_off: u32,
    act: u32,    // matmul_vec4.wgsl's activation codes
    alpha: f32,
    c_off: u32,
    _pad: u32,
}

// true: A[i, k] and A[i, k+1] are adjacent (row-major A); false: A[i, k] and A[i+1, k] are.
override A_K_CONTIG: bool = true;
// true: B[k, j] and B[k, j+1] are adjacent (row-major B); false: B[k, j] and B[k+1, j] are.
override B_N_CONTIG: bool = true;
// the subgroup size, and so the workgroup's
override SG: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> a: array<f16>;
@group(2) @binding(2) var<storage, read> b: array<f16>;
@group(3) @binding(3) var<storage, read_write> c: array<f32>;
@group(2) @binding(4) var<storage, read> bias: array<u32>;

// the block's results, row-major, for the epilogue
var<workgroup> block: array<f32, 1024>;

// The 16 x 16 tile of A at rows r.., columns kk..
fn tile_a(r: u32, kk: u32) -> coop_mat16x16<f16, A> {
    if (A_K_CONTIG) {
        return coopLoadT<coop_mat16x16<f16, A>>(&a[p.a_off + r * p.a_ld + kk], p.a_ld);
    }
    return coopLoad<coop_mat16x16<f16, A>>(&a[p.a_off + kk * p.a_ld + r], p.a_ld);
}

// The 16 x 16 tile of B at rows kk.., columns col..
fn tile_b(kk: u32, col: u32) -> coop_mat16x16<f16, B> {
    if (B_N_CONTIG) {
        return coopLoadT<coop_mat16x16<f16, B>>(&b[p.b_off + kk * p.b_ld + col], p.b_ld);
    }
    return coopLoad<coop_mat16x16<f16, B>>(&b[p.b_off + col * p.b_ld + kk], p.b_ld);
}

fn bias_at(col: u32) -> f32 {
    if (p.bias == 1u) {
        return bitcast<f32>(bias[col]);
    }
    return bitcast<f32>(half_to_f32_bits((bias[col / 2u] >> (16u * (col & 1u))) & 0xffffu, false));
}

@compute @workgroup_size(SG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let row0 = wg.y * 32u;
    let col0 = wg.x * 32u;
    let row1 = select(row0, row0 + 16u, row0 + 16u < p.m);
    let col1 = select(col0, col0 + 16u, col0 + 16u < p.n);
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    for (var kk = 0u; kk < p.k; kk += 16u) {
        let a0 = tile_a(row0, kk);
        let a1 = tile_a(row1, kk);
        let b0 = tile_b(kk, col0);
        let b1 = tile_b(kk, col1);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
    }
    coopStoreT(c00, &block[0], 32u);
    coopStoreT(c01, &block[16], 32u);
    coopStoreT(c10, &block[512], 32u);
    coopStoreT(c11, &block[528], 32u);
    workgroupBarrier();
    for (var i = lane; i < 1024u; i += SG) {
        let r = row0 + i / 32u;
        let col = col0 + i % 32u;
        if (r < p.m && col < p.n) {
            var v = block[i];
            if (p.bias != 0u) { v += bias_at(col); }
            if (p.act != 0u) { v = act_fwd4(p.act, vec4<f32>(v), p.alpha).x; }
            c[p.c_off + r * p.n + col] = v;
        }
    }
}
