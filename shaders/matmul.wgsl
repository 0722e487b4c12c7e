// Tiled matrix product C[m, n] = A[m, k] @ B[k, n] (+ bias[n], then an activation), for
// any shape and strides (matmul_vec4.wgsl takes the aligned ones).
//
// Each workgroup of 16 x 16 threads computes a 64 x 64 tile of C, each thread a 4 x 4 block
// held in registers, over k-slices of 16. A and B are read element by element through
// arbitrary strides, so transposed operands (the backward's A^T and B^T) need no copy; the
// slices sit in workgroup memory as [k][row] and [k][col] vec4s, so the inner loop reads
// whole vec4s. Batches step by their own strides.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u32, a_cs: u32, a_bs: u32, a_off: u32,  // row, column and batch strides, offset
    b_rs: u32, b_cs: u32, b_bs: u32, b_off: u32,
    has_bias: u32, // 1: bias[col] added; 2: bias holds an m x n addend (float32 words,
                   // C's layout, one batch), added element by element
    act: u32,      // 0 none, 5 tanh, 6 sigmoid, 7 relu, 8 selu, 9 elu, 10 leaky relu
                   // (the elementwise op codes)
    c_off: u32,    // element offset of this batch's output
    alpha: f32,    // elu's alpha, leaky relu's slope
    kc: u32,       // (matmul_vec4.wgsl's split-K fields; unused here)
    fixup: u32,
    row_sums: u32,
    a_half: u32,   // how A (B, the bias) rests and is read, as in matmul_vec4.wgsl: 0 float32
    b_half: u32,   // words; 1 float16, 2 bfloat16 packed two to a word; 3 (4) float32 words
    bias_half: u32,// rounded to float16 (bfloat16) as they are read
    c_half: u32,   // how C is written, the same codes (packed only for an even n: the driver
                   // checks, so a thread's pairs of columns share a word)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> a: array<f32>;
@group(2) @binding(2) var<storage, read> b: array<f32>;
@group(3) @binding(3) var<storage, read_write> c: array<f32>;
@group(2) @binding(4) var<storage, read> bias: array<f32>;

// Element e of a buffer read with half code `code` (see Params.a_half), given the word at
// e (codes 0, 3, 4) or at e / 2 (codes 1, 2).
fn element(word: f32, e: u32, code: u32) -> f32 {
    switch code {
        case 1u, 2u: { return packed_half(word, e, code); }
        case 3u: { return round_f16(word); }
        case 4u: { return round_bf16(word); }
        default: { return word; }
    }
}

fn packed(code: u32) -> bool {
    return code == 1u || code == 2u;
}

fn a_at(e: u32) -> f32 {
    return element(a[select(e, e / 2u, packed(p.a_half))], e, p.a_half);
}

fn b_at(e: u32) -> f32 {
    return element(b[select(e, e / 2u, packed(p.b_half))], e, p.b_half);
}

fn bias_at(e: u32) -> f32 {
    return element(bias[select(e, e / 2u, packed(p.bias_half))], e, p.bias_half);
}

var<workgroup> as_: array<vec4<f32>, 256>;  // [k][row / 4], 16 x 16
var<workgroup> bs_: array<vec4<f32>, 256>;  // [k][col / 4]

// The epilogue's activation is act_fwd, generated from the op table (common.wgsl and
// generated/elementwise_ops.wgsl are prepended).

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let batch = wg.z;
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * 16u + tx;
    let a_base = p.a_off + batch * p.a_bs;
    let b_base = p.b_off + batch * p.b_bs;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
    // thread t loads rows (or columns) 4 * (t % 16) .. + 4 at k = t / 16 of each slice
    let kk_ld = t / 16u;
    let r_ld = (t % 16u) * 4u;
    let tiles = (p.k + 15u) / 16u;
    for (var kt = 0u; kt < tiles; kt++) {
        let gk = kt * 16u + kk_ld;
        var av = vec4<f32>(0.0);
        var bv = vec4<f32>(0.0);
        if (gk < p.k) {
            for (var e = 0u; e < 4u; e++) {
                let gr = row0 + r_ld + e;
                if (gr < p.m) { av[e] = a_at(a_base + gr * p.a_rs + gk * p.a_cs); }
                let gc = col0 + r_ld + e;
                if (gc < p.n) { bv[e] = b_at(b_base + gk * p.b_rs + gc * p.b_cs); }
            }
        }
        as_[t] = av;
        bs_[t] = bv;
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let av = as_[kk * 16u + ty];
            let bv = bs_[kk * 16u + tx];
            acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
            acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
            acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
            acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + ty * 4u + i;
        if (r >= p.m) { continue; }
        var out = vec4<f32>(0.0);
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + tx * 4u + j;
            if (col >= p.n) { continue; }
            var v = acc[i][j];
            if (p.has_bias == 2u) {
                // d + round(ab) where C is rounded (codes 3, 4), stored as it is
                v = element(v, 0u, select(0u, p.c_half, p.c_half >= 3u)) + bias[r * p.n + col];
            } else if (p.has_bias != 0u) {
                v += bias_at(col);
            }
            if (p.act != 0u) { v = act_fwd(p.act, v, p.alpha); }
            out[j] = v;
        }
        let e0 = p.c_off + batch * p.m * p.n + r * p.n + col0 + tx * 4u;
        if (packed(p.c_half)) {
            // n and the offsets are even, so columns 2q, 2q + 1 of this thread share a word
            for (var j = 0u; j < 4u; j += 2u) {
                let col = col0 + tx * 4u + j;
                if (col >= p.n) { continue; }
                c[(e0 + j) / 2u] = packed_pair(out[j], out[j + 1u], p.c_half);
            }
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + tx * 4u + j;
            if (col >= p.n) { continue; }
            let round = p.c_half >= 3u && p.has_bias != 2u;
            c[e0 + j] = element(out[j], e0 + j, select(0u, p.c_half, round));
        }
    }
}
