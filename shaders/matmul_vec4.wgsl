// Fast tiled matrix products C[m, n] = A[m, k] @ B[k, n] (+ bias[n], then an activation), for
// operands whose contiguous dimension is a multiple of 4 (the driver checks; other shapes
// use matmul.wgsl). Global memory is read as vec4, and the next k-slice is fetched into
// registers while the current one is multiplied (hides the load latency).
//
// main64: 64 x 64 tiles, 16 x 16 threads with a 4 x 4 block each: the hand-written kernel
//         the generated ones (matmul_tiled.wgsl) grew from, and give the same bits as. A
//         hand-written 128 x 128 entry here measured 2 TFLOP/s on an H100 against 30-44 for
//         the generated 128-wide tiles, and was dropped.
//
// Transposed operands need no copy: the overrides say which dimension of A and B is
// contiguous. A row-major A is kept [row][k] in workgroup memory (its vec4 of four k values
// is stored whole and read whole); a column-major A is kept [k][row]. B is kept [k][col],
// transposed on the way in when it is column-major.

// ---- shared with matmul_tiled.wgsl: scripts/gen_matmul_tiled.py copies this block ----
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u32, a_cs: u32, a_bs: u32, a_off: u32,  // row, column and batch strides, offset
    b_rs: u32, b_cs: u32, b_bs: u32, b_off: u32,
    has_bias: u32, // 1: bias[col] added; 2: bias holds an m x n addend (float32 words, C's
                   // layout, one batch), added element by element (a gradient accumulated
                   // into the product: C = A B + D; with c_half 3 or 4, D + round(A B))
    act: u32,      // 0 none, 5 tanh, 6 sigmoid, 7 relu, 8 selu, 9 elu, 10 leaky relu
                   // (the elementwise op codes)
    c_off: u32,    // element offset of this batch's output
    alpha: f32,    // elu's alpha, leaky relu's slope
    kc: u32,       // split-K: workgroup z sums k in [z kc, (z + 1) kc); kc >= k: no split
    fixup: u32,    // split-K: 1 = the tile's last part adds them all up (finish_split), 0 =
                   // splitk_sum does, in a second dispatch
    row_sums: u32, // 1 (not split, no bias): also the row sums of A into `parts` (a Linear
                   // layer's bias gradient beside its weight gradient g^T x): B read with a
                   // column of ones at n, that column's results stored there
    a_half: u32,   // how A (B, the bias) rests and is read: 0 float32 words; 1 float16,
    b_half: u32,   // 2 bfloat16 packed two to a word, each converted exactly; 3 (4) float32
    bias_half: u32,// words rounded to float16 (bfloat16) as they are read (a cast fused in)
    c_half: u32,   // how C is written, the same codes: 1, 2 rounded and packed; 3, 4 rounded
                   // and kept as float32 words (the cast back of a half result)
}

// Four results at element e (a multiple of 4) of C: float32 words, or (p.c_half) rounded
// to halves and packed into the two words that hold them (other threads write the vec4's
// other two words: each store is one word).
fn write_c(e: u32, v: vec4<f32>) {
    if (p.c_half == 0u || p.c_half > 2u) {
        // an addend came after the rounding (epilogue): the sum is stored as it is
        c[e / 4u] = rounded4(v, select(p.c_half, 0u, p.has_bias == 2u));
        return;
    }
    let s = (e / 2u) % 4u;
    c[e / 8u][s] = packed_pair(v.x, v.y, p.c_half);
    c[e / 8u][s + 1u] = packed_pair(v.z, v.w, p.c_half);
}

// The four values of a packed-half operand at element e (a multiple of 4) from the vec4 of
// words holding them (`v`, at index e / 8): half `kind` (1 float16, 2 bfloat16), exactly.
fn halves4(v: vec4<f32>, e: u32, kind: u32) -> vec4<f32> {
    let w = bitcast<vec4<u32>>(v);
    let s = (e / 2u) % 4u;
    let lo = w[s];
    let hi = w[s + 1u];
    let bf = kind == 2u;
    return vec4<f32>(
        bitcast<f32>(half_to_f32_bits(lo & 0xffffu, bf)),
        bitcast<f32>(half_to_f32_bits(lo >> 16u, bf)),
        bitcast<f32>(half_to_f32_bits(hi & 0xffffu, bf)),
        bitcast<f32>(half_to_f32_bits(hi >> 16u, bf)),
    );
}

// v rounded to float16 (code 3) or bfloat16 (code 4), as float32 words; other codes: v.
fn rounded4(v: vec4<f32>, code: u32) -> vec4<f32> {
    if (code == 3u) {
        return vec4<f32>(round_f16(v.x), round_f16(v.y), round_f16(v.z), round_f16(v.w));
    }
    if (code == 4u) {
        return vec4<f32>(round_bf16(v.x), round_bf16(v.y), round_bf16(v.z), round_bf16(v.w));
    }
    return v;
}

// Four consecutive elements of A (B, the bias) from element e (see Params.a_half): packed
// halves, or a vec4 of float32 words, rounded where the code says so.
fn a4(e: u32) -> vec4<f32> {
    if (p.a_half == 1u || p.a_half == 2u) { return halves4(a[e / 8u], e, p.a_half); }
    return rounded4(a[e / 4u], p.a_half);
}

fn b4(e: u32) -> vec4<f32> {
    if (p.b_half == 1u || p.b_half == 2u) { return halves4(b[e / 8u], e, p.b_half); }
    return rounded4(b[e / 4u], p.b_half);
}

// Split-K state of this workgroup (set by begin_split): where its k range ends, whether the
// product is split, and where its partial sums go. A split product writes raw partial sums,
// S of them per output element, into `parts`; then either the workgroup that finishes a
// tile's last part (finish_split) or a second dispatch (splitk_sum) adds them up and
// applies the epilogue.
var<private> k_end: u32;
var<private> split: bool;
var<private> z_off: u32;

// Sets the split-K state for workgroup z; returns the first k of its range.
fn begin_split(z: u32) -> u32 {
    let lo = z * p.kc;
    k_end = min(p.k, lo + p.kc);
    split = p.kc < p.k;
    z_off = z * p.m * p.n;
    return lo;
}

// true: A[i, k] and A[i, k+1] are adjacent (row-major A); false: A[i, k] and A[i+1, k] are.
override A_K_CONTIG: bool = true;
// true: B[k, j] and B[k, j+1] are adjacent (row-major B); false: B[k, j] and B[k+1, j] are.
override B_N_CONTIG: bool = true;

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(2) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(3) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(2) @binding(4) var<storage, read> bias: array<vec4<f32>>;
// split-K: the partial products (S x m x n) and, per output tile, how many parts are done;
// with p.row_sums, `parts` receives the m row sums of A instead
@group(0) @binding(5) var<storage, read_write> parts: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> arrived: array<atomic<u32>>;
var<workgroup> tile_done: u32;

// The vec4 of A thread t fetches. `rows_per` threads cover one row of a row-major slice
// (bk / 4 vec4 each); a column-major slice has `cols_per` vec4 per k.
fn load_a(t: u32, row0: u32, k0: u32, bk: u32, bm: u32) -> vec4<f32> {
    if (A_K_CONTIG) {
        let r = row0 + t / (bk / 4u);
        let kk = k0 + (t % (bk / 4u)) * 4u;
        if (r < p.m && kk < k_end) {
            return a4(p.a_off + r * p.a_rs + kk);
        }
    } else {
        let kk = k0 + t / (bm / 4u);
        let r = row0 + (t % (bm / 4u)) * 4u;
        if (r < p.m && kk < k_end) {
            return a4(p.a_off + kk * p.a_cs + r);
        }
    }
    return vec4<f32>(0.0);
}

fn load_b(t: u32, col0: u32, k0: u32, bk: u32, bn: u32) -> vec4<f32> {
    if (B_N_CONTIG) {
        let kk = k0 + t / (bn / 4u);
        let col = col0 + (t % (bn / 4u)) * 4u;
        if (col < p.n && kk < k_end) {
            return b4(p.b_off + kk * p.b_rs + col);
        }
        if (p.row_sums != 0u && col == p.n && kk < k_end) {
            return vec4<f32>(1.0, 0.0, 0.0, 0.0);
        }
    } else {
        let col = col0 + t / (bk / 4u);
        let kk = k0 + (t % (bk / 4u)) * 4u;
        if (col < p.n && kk < k_end) {
            return b4(p.b_off + col * p.b_cs + kk);
        }
        if (p.row_sums != 0u && col == p.n && kk < k_end) {
            return vec4<f32>(1.0);
        }
    }
    return vec4<f32>(0.0);
}

// The activation is act_fwd4, generated from the op table (common.wgsl and
// generated/elementwise_ops.wgsl are prepended).
// e: the element of this batch's C at (row, col), a multiple of 4.
fn epilogue(v: vec4<f32>, e: u32, col: u32) -> vec4<f32> {
    var o = v;
    if (p.has_bias == 2u) {
        // after the product's rounding to a half where C is rounded (codes 3, 4): d + round(ab)
        o = rounded4(o, p.c_half) + bias[e / 4u];
    } else if (p.has_bias != 0u) {
        if (p.bias_half == 1u || p.bias_half == 2u) {
            o += halves4(bias[col / 8u], col, p.bias_half);
        } else {
            o += rounded4(bias[col / 4u], p.bias_half);
        }
    }
    if (p.act != 0u) { o = act_fwd4(p.act, o, p.alpha); }
    return o;
}

fn store_c(r: u32, col: u32, v: vec4<f32>) {
    if (r < p.m && col < p.n) {
        if (split) {
            parts[(z_off + r * p.n + col) / 4u] = v;
        } else {
            write_c(p.c_off + r * p.n + col, epilogue(v, r * p.n + col, col));
        }
    } else if (p.row_sums != 0u && r < p.m && col == p.n) {
        // rounded as C is (float32 words either way)
        let code = select(p.c_half, p.c_half + 2u, p.c_half == 1u || p.c_half == 2u);
        parts[r / 4u][r % 4u] = rounded4(v, code).x;
    }
}

// Split-K with p.fixup: every workgroup calls this after its store_c calls. A workgroup
// counts its part of tile `tile` (bm x bn at row0, col0) as arrived; the one that brings
// the count to S adds the S parts in z order (splitk_sum's order, so the same bits), writes
// epilogue(sum) and sets the count back to 0 for the next product. The barriers have device
// memory scope on Vulkan (naga's storageBarrier), which orders the parts' writes before the
// count and the last workgroup's reads after it; the driver uses this only on Vulkan.
fn finish_split(t: u32, row0: u32, col0: u32, bm: u32, bn: u32, tile: u32) {
    if (p.kc >= p.k || p.fixup == 0u) { return; }
    let splits = (p.k + p.kc - 1u) / p.kc;
    storageBarrier();
    if (t == 0u) {
        let last = atomicAdd(&arrived[tile], 1u) + 1u == splits;
        if (last) { atomicStore(&arrived[tile], 0u); }
        tile_done = select(0u, 1u, last);
    }
    if (workgroupUniformLoad(&tile_done) == 0u) { return; }
    storageBarrier();
    let q = p.m * p.n / 4u;
    let cols = bn / 4u;
    for (var i = t; i < bm * cols; i += 256u) {
        let r = row0 + i / cols;
        let col = col0 + (i % cols) * 4u;
        if (r < p.m && col < p.n) {
            let at = (r * p.n + col) / 4u;
            var sum = parts[at];
            for (var z = 1u; z < splits; z++) {
                sum += parts[z * q + at];
            }
            write_c(p.c_off + r * p.n + col, epilogue(sum, r * p.n + col, col));
        }
    }
}

// ---- end of the shared block ----

// One 64 x 16 k-slice of each operand, as 256 vec4.
var<workgroup> as_: array<vec4<f32>, 256>;
var<workgroup> bs_: array<vec4<f32>, 256>;

// Either layout of A lands at index t: [row][k/4] = row * bk/4 + kq, or [k][row/4].
fn store_b(t: u32, v: vec4<f32>, bk: u32, bn: u32) {
    if (B_N_CONTIG) {
        bs_[t] = v;
    } else {
        // four k values of one column: scatter into [k][col]
        let col = t / (bk / 4u);
        let kk = (t % (bk / 4u)) * 4u;
        let q = bn / 4u;
        bs_[(kk + 0u) * q + col / 4u][col % 4u] = v.x;
        bs_[(kk + 1u) * q + col / 4u][col % 4u] = v.y;
        bs_[(kk + 2u) * q + col / 4u][col % 4u] = v.z;
        bs_[(kk + 3u) * q + col / 4u][col % 4u] = v.w;
    }
}

@compute @workgroup_size(16, 16)
fn main64(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    let t = lid.y * 16u + lid.x;
    let tx = lid.x;
    let ty = lid.y;
    // acc[i]: row ty*4 + i, columns tx*4 .. + 4
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }

    let k0 = begin_split(wg.z);
    var ra = load_a(t, row0, k0, 16u, 64u);
    var rb = load_b(t, col0, k0, 16u, 64u);
    let tiles = (k_end - k0 + 15u) / 16u;
    for (var kt = 0u; kt < tiles; kt++) {
        as_[t] = ra;
        store_b(t, rb, 16u, 64u);
        workgroupBarrier();
        if (kt + 1u < tiles) {
            ra = load_a(t, row0, k0 + (kt + 1u) * 16u, 16u, 64u);
            rb = load_b(t, col0, k0 + (kt + 1u) * 16u, 16u, 64u);
        }
        if (A_K_CONTIG) {
            for (var kq = 0u; kq < 4u; kq++) {
            let a0 = as_[(ty * 4u + 0u) * 4u + kq];
            let a1 = as_[(ty * 4u + 1u) * 4u + kq];
            let a2 = as_[(ty * 4u + 2u) * 4u + kq];
            let a3 = as_[(ty * 4u + 3u) * 4u + kq];
            let bx = bs_[(kq * 4u + 0u) * 16u + tx];
            acc[0] = fma(vec4<f32>(a0.x), bx, acc[0]);
            acc[1] = fma(vec4<f32>(a1.x), bx, acc[1]);
            acc[2] = fma(vec4<f32>(a2.x), bx, acc[2]);
            acc[3] = fma(vec4<f32>(a3.x), bx, acc[3]);
            let by = bs_[(kq * 4u + 1u) * 16u + tx];
            acc[0] = fma(vec4<f32>(a0.y), by, acc[0]);
            acc[1] = fma(vec4<f32>(a1.y), by, acc[1]);
            acc[2] = fma(vec4<f32>(a2.y), by, acc[2]);
            acc[3] = fma(vec4<f32>(a3.y), by, acc[3]);
            let bz = bs_[(kq * 4u + 2u) * 16u + tx];
            acc[0] = fma(vec4<f32>(a0.z), bz, acc[0]);
            acc[1] = fma(vec4<f32>(a1.z), bz, acc[1]);
            acc[2] = fma(vec4<f32>(a2.z), bz, acc[2]);
            acc[3] = fma(vec4<f32>(a3.z), bz, acc[3]);
            let bw = bs_[(kq * 4u + 3u) * 16u + tx];
            acc[0] = fma(vec4<f32>(a0.w), bw, acc[0]);
            acc[1] = fma(vec4<f32>(a1.w), bw, acc[1]);
            acc[2] = fma(vec4<f32>(a2.w), bw, acc[2]);
            acc[3] = fma(vec4<f32>(a3.w), bw, acc[3]);
            }
        } else {
            for (var kk = 0u; kk < 16u; kk++) {
            let a = as_[kk * 16u + ty];
            let b = bs_[kk * 16u + tx];
            acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
            acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
            acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
            acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        store_c(row0 + ty * 4u + i, col0 + tx * 4u, acc[i]);
    }
    finish_split(t, row0, col0, 64u, 64u, wg.y * ((p.n + 63u) / 64u) + wg.x);
}

// Split-K's second pass, where finish_split is not used: out = epilogue(sum of the S
// partial products), one vec4 of the m x n output per thread. The parts are added in z
// order, so a split product's bits depend only on its shape.
@compute @workgroup_size(256)
fn splitk_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let q = p.m * p.n / 4u;
    if (i >= q) { return; }
    let splits = (p.k + p.kc - 1u) / p.kc;
    var sum = parts[i];
    for (var z = 1u; z < splits; z++) {
        sum += parts[z * q + i];
    }
    write_c(p.c_off + i * 4u, epilogue(sum, i * 4u, (i * 4u) % p.n));
}
