// Fast tiled matrix products C[m, n] = A[m, k] @ B[k, n] (+ bias[n], then relu or selu), for
// operands whose contiguous dimension is a multiple of 4 (the driver checks; other shapes
// use matmul.wgsl). Global memory is read as vec4, and the next k-slice is fetched into
// registers while the current one is multiplied (hides the load latency).
//
// main:   128 x 128 tiles, 16 x 16 threads with an 8 x 8 block each (two 4-row by two
//         4-column quarters, 64 apart, so workgroup-memory reads are conflict-free vec4
//         broadcasts); for large products.
// main64: 64 x 64 tiles with a 4 x 4 block per thread; four times the workgroups, for
//         products too small to fill the GPU with 128-wide tiles.
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
    has_bias: u32,
    act: u32,      // 0 none, 5 tanh, 6 sigmoid, 7 relu, 8 selu, 9 elu, 10 leaky relu
                   // (the elementwise op codes)
    c_off: u32,    // element offset of this batch's output
    alpha: f32,    // elu's alpha, leaky relu's slope
}

// true: A[i, k] and A[i, k+1] are adjacent (row-major A); false: A[i, k] and A[i+1, k] are.
override A_K_CONTIG: bool = true;
// true: B[k, j] and B[k, j+1] are adjacent (row-major B); false: B[k, j] and B[k+1, j] are.
override B_N_CONTIG: bool = true;

const SELU_SCALE: f32 = 1.0507009873554805;
const SELU_SA: f32 = 1.7580993408473766;  // scale * alpha

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(2) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(3) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(2) @binding(4) var<storage, read> bias: array<vec4<f32>>;

// The vec4 of A thread t fetches. `rows_per` threads cover one row of a row-major slice
// (bk / 4 vec4 each); a column-major slice has `cols_per` vec4 per k.
fn load_a(t: u32, row0: u32, k0: u32, bk: u32, bm: u32) -> vec4<f32> {
    if (A_K_CONTIG) {
        let r = row0 + t / (bk / 4u);
        let kk = k0 + (t % (bk / 4u)) * 4u;
        if (r < p.m && kk < p.k) {
            return a[(p.a_off + r * p.a_rs + kk) / 4u];
        }
    } else {
        let kk = k0 + t / (bm / 4u);
        let r = row0 + (t % (bm / 4u)) * 4u;
        if (r < p.m && kk < p.k) {
            return a[(p.a_off + kk * p.a_cs + r) / 4u];
        }
    }
    return vec4<f32>(0.0);
}

fn load_b(t: u32, col0: u32, k0: u32, bk: u32, bn: u32) -> vec4<f32> {
    if (B_N_CONTIG) {
        let kk = k0 + t / (bn / 4u);
        let col = col0 + (t % (bn / 4u)) * 4u;
        if (col < p.n && kk < p.k) {
            return b[(p.b_off + kk * p.b_rs + col) / 4u];
        }
    } else {
        let col = col0 + t / (bk / 4u);
        let kk = k0 + (t % (bk / 4u)) * 4u;
        if (col < p.n && kk < p.k) {
            return b[(p.b_off + col * p.b_cs + kk) / 4u];
        }
    }
    return vec4<f32>(0.0);
}

// NaN by its bits: WGSL lets a compiler assume floats are never NaN, so max may drop one
// (relu(NaN) must stay NaN, as on the CPU).
fn is_nan4(v: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

// The activations as elementwise.wgsl computes them (tanh and sigmoid never overflow;
// where a branch's exp may reach inf, select drops it).
fn activate4(o: vec4<f32>) -> vec4<f32> {
    let pos = o > vec4<f32>(0.0);
    switch p.act {
        case 5u: {
            let e = exp(-2.0 * min(abs(o), vec4<f32>(15.0)));
            let t = (1.0 - e) / (1.0 + e);
            return select(select(t, -t, o < vec4<f32>(0.0)), o, is_nan4(o));
        }
        case 6u: {
            let e = exp(-abs(o));
            return select(e / (1.0 + e), 1.0 / (1.0 + e), o >= vec4<f32>(0.0));
        }
        case 7u: { return select(max(o, vec4<f32>(0.0)), o, is_nan4(o)); }
        case 8u: { return select(SELU_SA * (exp(o) - 1.0), SELU_SCALE * o, pos); }
        case 9u: { return select(p.alpha * (exp(o) - 1.0), o, pos); }
        case 10u: { return select(p.alpha * o, o, pos); }
        default: { return o; }
    }
}

fn epilogue(v: vec4<f32>, col: u32) -> vec4<f32> {
    var o = v;
    if (p.has_bias != 0u) { o += bias[col / 4u]; }
    if (p.act != 0u) { o = activate4(o); }
    return o;
}

fn store_c(r: u32, col: u32, v: vec4<f32>) {
    if (r < p.m && col < p.n) {
        c[(p.c_off + r * p.n + col) / 4u] = epilogue(v, col);
    }
}

// ---- end of the shared block ----

// One k-slice of each operand (main: 128 x 8; main64: 64 x 16), as 256 vec4.
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
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = wg.y * 128u;
    let col0 = wg.x * 128u;
    let t = lid.y * 16u + lid.x;
    let tx = lid.x;
    let ty = lid.y;
    // acc[2 * i + h]: row (i < 4 ? ty*4 + i : 64 + ty*4 + i - 4), columns tx*4 + 64*h .. + 4
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = vec4<f32>(0.0); }

    var ra = load_a(t, row0, 0u, 8u, 128u);
    var rb = load_b(t, col0, 0u, 8u, 128u);
    let tiles = (p.k + 7u) / 8u;
    for (var kt = 0u; kt < tiles; kt++) {
        as_[t] = ra;
        store_b(t, rb, 8u, 128u);
        workgroupBarrier();
        if (kt + 1u < tiles) {
            ra = load_a(t, row0, (kt + 1u) * 8u, 8u, 128u);
            rb = load_b(t, col0, (kt + 1u) * 8u, 8u, 128u);
        }
        if (A_K_CONTIG) {
            for (var kq = 0u; kq < 2u; kq++) {
            let a0 = as_[(ty * 4u + 0u) * 2u + kq];
            let a1 = as_[(ty * 4u + 1u) * 2u + kq];
            let a2 = as_[(ty * 4u + 2u) * 2u + kq];
            let a3 = as_[(ty * 4u + 3u) * 2u + kq];
            let a4 = as_[(64u + ty * 4u + 0u) * 2u + kq];
            let a5 = as_[(64u + ty * 4u + 1u) * 2u + kq];
            let a6 = as_[(64u + ty * 4u + 2u) * 2u + kq];
            let a7 = as_[(64u + ty * 4u + 3u) * 2u + kq];
            let b0x = bs_[(kq * 4u + 0u) * 32u + tx];
            let b1x = bs_[(kq * 4u + 0u) * 32u + 16u + tx];
            acc[0] = fma(vec4<f32>(a0.x), b0x, acc[0]);
            acc[1] = fma(vec4<f32>(a0.x), b1x, acc[1]);
            acc[2] = fma(vec4<f32>(a1.x), b0x, acc[2]);
            acc[3] = fma(vec4<f32>(a1.x), b1x, acc[3]);
            acc[4] = fma(vec4<f32>(a2.x), b0x, acc[4]);
            acc[5] = fma(vec4<f32>(a2.x), b1x, acc[5]);
            acc[6] = fma(vec4<f32>(a3.x), b0x, acc[6]);
            acc[7] = fma(vec4<f32>(a3.x), b1x, acc[7]);
            acc[8] = fma(vec4<f32>(a4.x), b0x, acc[8]);
            acc[9] = fma(vec4<f32>(a4.x), b1x, acc[9]);
            acc[10] = fma(vec4<f32>(a5.x), b0x, acc[10]);
            acc[11] = fma(vec4<f32>(a5.x), b1x, acc[11]);
            acc[12] = fma(vec4<f32>(a6.x), b0x, acc[12]);
            acc[13] = fma(vec4<f32>(a6.x), b1x, acc[13]);
            acc[14] = fma(vec4<f32>(a7.x), b0x, acc[14]);
            acc[15] = fma(vec4<f32>(a7.x), b1x, acc[15]);
            let b0y = bs_[(kq * 4u + 1u) * 32u + tx];
            let b1y = bs_[(kq * 4u + 1u) * 32u + 16u + tx];
            acc[0] = fma(vec4<f32>(a0.y), b0y, acc[0]);
            acc[1] = fma(vec4<f32>(a0.y), b1y, acc[1]);
            acc[2] = fma(vec4<f32>(a1.y), b0y, acc[2]);
            acc[3] = fma(vec4<f32>(a1.y), b1y, acc[3]);
            acc[4] = fma(vec4<f32>(a2.y), b0y, acc[4]);
            acc[5] = fma(vec4<f32>(a2.y), b1y, acc[5]);
            acc[6] = fma(vec4<f32>(a3.y), b0y, acc[6]);
            acc[7] = fma(vec4<f32>(a3.y), b1y, acc[7]);
            acc[8] = fma(vec4<f32>(a4.y), b0y, acc[8]);
            acc[9] = fma(vec4<f32>(a4.y), b1y, acc[9]);
            acc[10] = fma(vec4<f32>(a5.y), b0y, acc[10]);
            acc[11] = fma(vec4<f32>(a5.y), b1y, acc[11]);
            acc[12] = fma(vec4<f32>(a6.y), b0y, acc[12]);
            acc[13] = fma(vec4<f32>(a6.y), b1y, acc[13]);
            acc[14] = fma(vec4<f32>(a7.y), b0y, acc[14]);
            acc[15] = fma(vec4<f32>(a7.y), b1y, acc[15]);
            let b0z = bs_[(kq * 4u + 2u) * 32u + tx];
            let b1z = bs_[(kq * 4u + 2u) * 32u + 16u + tx];
            acc[0] = fma(vec4<f32>(a0.z), b0z, acc[0]);
            acc[1] = fma(vec4<f32>(a0.z), b1z, acc[1]);
            acc[2] = fma(vec4<f32>(a1.z), b0z, acc[2]);
            acc[3] = fma(vec4<f32>(a1.z), b1z, acc[3]);
            acc[4] = fma(vec4<f32>(a2.z), b0z, acc[4]);
            acc[5] = fma(vec4<f32>(a2.z), b1z, acc[5]);
            acc[6] = fma(vec4<f32>(a3.z), b0z, acc[6]);
            acc[7] = fma(vec4<f32>(a3.z), b1z, acc[7]);
            acc[8] = fma(vec4<f32>(a4.z), b0z, acc[8]);
            acc[9] = fma(vec4<f32>(a4.z), b1z, acc[9]);
            acc[10] = fma(vec4<f32>(a5.z), b0z, acc[10]);
            acc[11] = fma(vec4<f32>(a5.z), b1z, acc[11]);
            acc[12] = fma(vec4<f32>(a6.z), b0z, acc[12]);
            acc[13] = fma(vec4<f32>(a6.z), b1z, acc[13]);
            acc[14] = fma(vec4<f32>(a7.z), b0z, acc[14]);
            acc[15] = fma(vec4<f32>(a7.z), b1z, acc[15]);
            let b0w = bs_[(kq * 4u + 3u) * 32u + tx];
            let b1w = bs_[(kq * 4u + 3u) * 32u + 16u + tx];
            acc[0] = fma(vec4<f32>(a0.w), b0w, acc[0]);
            acc[1] = fma(vec4<f32>(a0.w), b1w, acc[1]);
            acc[2] = fma(vec4<f32>(a1.w), b0w, acc[2]);
            acc[3] = fma(vec4<f32>(a1.w), b1w, acc[3]);
            acc[4] = fma(vec4<f32>(a2.w), b0w, acc[4]);
            acc[5] = fma(vec4<f32>(a2.w), b1w, acc[5]);
            acc[6] = fma(vec4<f32>(a3.w), b0w, acc[6]);
            acc[7] = fma(vec4<f32>(a3.w), b1w, acc[7]);
            acc[8] = fma(vec4<f32>(a4.w), b0w, acc[8]);
            acc[9] = fma(vec4<f32>(a4.w), b1w, acc[9]);
            acc[10] = fma(vec4<f32>(a5.w), b0w, acc[10]);
            acc[11] = fma(vec4<f32>(a5.w), b1w, acc[11]);
            acc[12] = fma(vec4<f32>(a6.w), b0w, acc[12]);
            acc[13] = fma(vec4<f32>(a6.w), b1w, acc[13]);
            acc[14] = fma(vec4<f32>(a7.w), b0w, acc[14]);
            acc[15] = fma(vec4<f32>(a7.w), b1w, acc[15]);
            }
        } else {
            for (var kk = 0u; kk < 8u; kk++) {
            let a0 = as_[kk * 32u + ty];
            let a1 = as_[kk * 32u + 16u + ty];
            let b0 = bs_[kk * 32u + tx];
            let b1 = bs_[kk * 32u + 16u + tx];
            acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
            acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
            acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
            acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
            acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
            acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
            acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
            acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
            acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
            acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
            acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
            acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
            acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
            acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
            acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
            acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
            }
        }
        workgroupBarrier();
    }
    let col = col0 + tx * 4u;
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + ty * 4u + i;
        store_c(r, col, acc[2u * i]);
        store_c(r, col + 64u, acc[2u * i + 1u]);
        store_c(r + 64u, col, acc[8u + 2u * i]);
        store_c(r + 64u, col + 64u, acc[8u + 2u * i + 1u]);
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

    var ra = load_a(t, row0, 0u, 16u, 64u);
    var rb = load_b(t, col0, 0u, 16u, 64u);
    let tiles = (p.k + 15u) / 16u;
    for (var kt = 0u; kt < tiles; kt++) {
        as_[t] = ra;
        store_b(t, rb, 16u, 64u);
        workgroupBarrier();
        if (kt + 1u < tiles) {
            ra = load_a(t, row0, (kt + 1u) * 16u, 16u, 64u);
            rb = load_b(t, col0, (kt + 1u) * 16u, 16u, 64u);
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
}
