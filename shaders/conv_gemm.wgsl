// Convolution as an implicit matrix product: A[m, k] @ W[oc, k]^T (+ bias[oc]), where A is
// the im2col matrix of the (n, c, h, w) input (row m = (image, oy, ox), column k = (channel,
// ky, kx), conv.wgsl's unfold layout) read from the input inside the tile loads, so the
// matrix itself is never written or read back: for a 3 x 3 convolution it is nine times
// the input. Zero padding. Entry (m, oc) is written where the (n, oc, oh, ow) output keeps
// it, so no transpose follows. Tiles and threads are matmul.wgsl's: 64 x 64
// outputs per workgroup of 16 x 16 threads, a 4 x 4 block per thread, k in slices of 16.

struct Params {
    n: u32, c: u32, h: u32, w: u32,
    kh: u32, kw: u32, sh: u32, sw: u32,
    ph: u32, pw: u32, dh: u32, dw: u32,
    oh: u32, ow: u32, m: u32, oc: u32,
    k: u32, x_off: u32, w_off: u32, has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> x: array<f32>;
@group(2) @binding(2) var<storage, read> wt: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
@group(2) @binding(4) var<storage, read> bias: array<f32>;

var<workgroup> as_: array<vec4<f32>, 256>;  // [k][row / 4], 16 x 16
var<workgroup> bs_: array<vec4<f32>, 256>;  // [k][col / 4]

// Entry (r, kk) of the im2col matrix: the input element under that window tap, 0 in the
// padding.
fn window_value(r: u32, kk: u32) -> f32 {
    let j = kk % p.kw;
    let i = (kk / p.kw) % p.kh;
    let ch = kk / (p.kw * p.kh);
    let ox = r % p.ow;
    let oy = (r / p.ow) % p.oh;
    let img = r / (p.ow * p.oh);
    let y = i32(oy * p.sh + i * p.dh) - i32(p.ph);
    let xx = i32(ox * p.sw + j * p.dw) - i32(p.pw);
    if (y < 0 || xx < 0 || y >= i32(p.h) || xx >= i32(p.w)) { return 0.0; }
    return x[p.x_off + ((img * p.c + ch) * p.h + u32(y)) * p.w + u32(xx)];
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * 16u + tx;
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
                if (gr < p.m) { av[e] = window_value(gr, gk); }
                let gc = col0 + r_ld + e;
                if (gc < p.oc) { bv[e] = wt[p.w_off + gc * p.k + gk]; }
            }
        }
        as_[t] = av;
        bs_[t] = bv;
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let a4 = as_[kk * 16u + ty];
            let b4 = bs_[kk * 16u + tx];
            acc[0] = fma(vec4<f32>(a4.x), b4, acc[0]);
            acc[1] = fma(vec4<f32>(a4.y), b4, acc[1]);
            acc[2] = fma(vec4<f32>(a4.z), b4, acc[2]);
            acc[3] = fma(vec4<f32>(a4.w), b4, acc[3]);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + ty * 4u + i;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + tx * 4u + j;
            if (col >= p.oc) { continue; }
            var v = acc[i][j];
            if (p.has_bias != 0u) { v += bias[col]; }
            let pos = p.oh * p.ow;
            out[((r / pos) * p.oc + col) * pos + r % pos] = v;
        }
    }
}
