// Tiled matrix product C[m, n] = A[m, k] @ B[k, n] (+ bias[n], then an activation).
//
// Each workgroup computes a 64 x 64 tile of C with 16 x 16 threads, each thread a 4 x 4
// block held in registers. A and B are read through arbitrary strides, so transposed
// operands (the backward's A^T and B^T) need no copy; batches step by their own strides.

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

const TILE: u32 = 64u;
const KT: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

var<workgroup> as_: array<array<f32, 64>, 16>;  // [k][row]
var<workgroup> bs_: array<array<f32, 64>, 16>;  // [k][col]

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let batch = wg.z;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let t = lid.y * 16u + lid.x;  // 0..255
    let a_base = p.a_off + batch * p.a_bs;
    let b_base = p.b_off + batch * p.b_bs;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    let tiles = (p.k + KT - 1u) / KT;
    for (var kt = 0u; kt < tiles; kt++) {
        let k0 = kt * KT;
        // 256 threads load 16 x 64 elements of each operand: 4 each
        for (var e = 0u; e < 4u; e++) {
            let idx = t * 4u + e;      // 0..1023
            let kk = idx / 64u;
            let rr = idx % 64u;
            let gk = k0 + kk;
            let gr = row0 + rr;
            var av = 0.0;
            if (gk < p.k && gr < p.m) { av = a[a_base + gr * p.a_rs + gk * p.a_cs]; }
            as_[kk][rr] = av;
            let gc = col0 + rr;
            var bv = 0.0;
            if (gk < p.k && gc < p.n) { bv = b[b_base + gk * p.b_rs + gc * p.b_cs]; }
            bs_[kk][rr] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ar[i] = as_[kk][lid.y * 4u + i];
                br[i] = bs_[kk][lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(ar[i], br[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y * 4u + i;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x * 4u + j;
            if (col >= p.n) { continue; }
            var v = acc[i][j];
            if (p.has_bias != 0u) { v += bias[col]; }
            if (p.act == 7u) { v = max(v, 0.0); }
            c[p.c_off + batch * p.m * p.n + r * p.n + col] = v;
        }
    }
}
