// Fast tiled matrix product C[m, n] = A[m, k] @ B[k, n] (+ bias[n], then relu), for
// operands whose contiguous dimension is a multiple of 4 (the driver checks; other shapes
// use matmul.wgsl).
//
// Each workgroup of 16 x 16 threads computes a 128 x 128 tile of C; each thread owns an
// 8 x 8 block (two 4-row by two 4-column quarters, 64 apart, so that workgroup-memory reads
// are conflict-free vec4 broadcasts). Global memory is read as vec4, and the next k-slice is
// fetched into registers while the current one is multiplied (hides the load latency).
// Transposed operands need no copy: the overrides say which dimension of A and B is
// contiguous, and each layout has its own load path.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_rs: u32, a_cs: u32, a_bs: u32, a_off: u32,  // row, column and batch strides, offset
    b_rs: u32, b_cs: u32, b_bs: u32, b_off: u32,
    has_bias: u32,
    act: u32,      // 0: none, 7: relu (the elementwise op codes)
    c_off: u32,    // element offset of this batch's output
    _pad: u32,
}

// true: A[i, k] and A[i, k+1] are adjacent (row-major A); false: A[i, k] and A[i+1, k] are.
override A_K_CONTIG: bool = true;
// true: B[k, j] and B[k, j+1] are adjacent (row-major B); false: B[k, j] and B[k+1, j] are.
override B_N_CONTIG: bool = true;

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;

// [k][row / 4] and [k][col / 4]
var<workgroup> as_: array<vec4<f32>, 256>;
var<workgroup> bs_: array<vec4<f32>, 256>;

// One vec4 of the A k-slice starting at k0, for thread t (1024 floats, 256 threads).
fn load_a(t: u32, row0: u32, k0: u32) -> vec4<f32> {
    let base = p.a_off;
    if (A_K_CONTIG) {
        let r = row0 + t / 2u;
        let kk = k0 + (t % 2u) * 4u;
        if (r < p.m && kk < p.k) {
            return a[(base + r * p.a_rs + kk) / 4u];
        }
    } else {
        let kk = k0 + t / 32u;
        let r = row0 + (t % 32u) * 4u;
        if (r < p.m && kk < p.k) {
            return a[(base + kk * p.a_cs + r) / 4u];
        }
    }
    return vec4<f32>(0.0);
}

fn load_b(t: u32, col0: u32, k0: u32) -> vec4<f32> {
    let base = p.b_off;
    if (B_N_CONTIG) {
        let kk = k0 + t / 32u;
        let col = col0 + (t % 32u) * 4u;
        if (col < p.n && kk < p.k) {
            return b[(base + kk * p.b_rs + col) / 4u];
        }
    } else {
        let col = col0 + t / 2u;
        let kk = k0 + (t % 2u) * 4u;
        if (col < p.n && kk < p.k) {
            return b[(base + col * p.b_cs + kk) / 4u];
        }
    }
    return vec4<f32>(0.0);
}

fn store_a(t: u32, v: vec4<f32>) {
    if (A_K_CONTIG) {
        // four k values of one row: scatter into [k][row]
        let r = t / 2u;
        let kk = (t % 2u) * 4u;
        as_[(kk + 0u) * 32u + r / 4u][r % 4u] = v.x;
        as_[(kk + 1u) * 32u + r / 4u][r % 4u] = v.y;
        as_[(kk + 2u) * 32u + r / 4u][r % 4u] = v.z;
        as_[(kk + 3u) * 32u + r / 4u][r % 4u] = v.w;
    } else {
        as_[t] = v;  // t = k * 32 + row / 4 already
    }
}

fn store_b(t: u32, v: vec4<f32>) {
    if (B_N_CONTIG) {
        bs_[t] = v;
    } else {
        let col = t / 2u;
        let kk = (t % 2u) * 4u;
        bs_[(kk + 0u) * 32u + col / 4u][col % 4u] = v.x;
        bs_[(kk + 1u) * 32u + col / 4u][col % 4u] = v.y;
        bs_[(kk + 2u) * 32u + col / 4u][col % 4u] = v.z;
        bs_[(kk + 3u) * 32u + col / 4u][col % 4u] = v.w;
    }
}

fn epilogue(v: vec4<f32>, col: u32) -> vec4<f32> {
    var o = v;
    if (p.has_bias != 0u) { o += bias[col / 4u]; }
    if (p.act == 7u) { o = max(o, vec4<f32>(0.0)); }
    return o;
}

fn store_row(r: u32, col: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (r >= p.m) { return; }
    let base = p.c_off + r * p.n;
    if (col < p.n) { c[(base + col) / 4u] = epilogue(lo, col); }
    if (col + 64u < p.n) { c[(base + col + 64u) / 4u] = epilogue(hi, col + 64u); }
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    let t = lid.y * 16u + lid.x;
    let tx = lid.x;
    let ty = lid.y;
    // acc[2 * i + h]: row (i < 4 ? ty*4 + i : 64 + ty*4 + i - 4), columns tx*4 + 64*h .. + 4
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = vec4<f32>(0.0); }

    var ra = load_a(t, row0, 0u);
    var rb = load_b(t, col0, 0u);
    let tiles = (p.k + BK - 1u) / BK;
    for (var kt = 0u; kt < tiles; kt++) {
        store_a(t, ra);
        store_b(t, rb);
        workgroupBarrier();
        if (kt + 1u < tiles) {
            ra = load_a(t, row0, (kt + 1u) * BK);
            rb = load_b(t, col0, (kt + 1u) * BK);
        }
        for (var kk = 0u; kk < BK; kk++) {
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
        workgroupBarrier();
    }
    let col = col0 + tx * 4u;
    for (var i = 0u; i < 4u; i++) {
        store_row(row0 + ty * 4u + i, col, acc[2u * i], acc[2u * i + 1u]);
        store_row(row0 + 64u + ty * 4u + i, col, acc[8u + 2u * i], acc[8u + 2u * i + 1u]);
    }
}
