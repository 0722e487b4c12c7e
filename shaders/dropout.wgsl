// Dropout and alpha-dropout masks from the same counter-based generator as the CPU
// (Philox4x32-10), so one seed gives one mask on either device.
//
// mask_main: scale[i] = keep ? keep_scale : 0, where keep = u32 number (start + i) of the
//            stream `seed` is >= threshold (probability 1 - p).
// main:      the same mask into `scale_out` (the backward's factor) and, in the same pass,
//            out[i] = x[i] * scale[i] + (keep ? keep_shift : drop_shift).

struct Params {
    n: u32,
    threshold: u32,
    seed_lo: u32,
    seed_hi: u32,
    start_lo: u32,
    start_hi: u32,
    row: u32,
    _pad: u32,
    keep_scale: f32,
    keep_shift: f32,
    drop_shift: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> x: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> scale_out: array<f32>;

// 32 x 32 -> 64-bit product as (hi, lo), from 16-bit halves (WGSL has no mulhi)
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_hi = a_hi * b_hi;
    let cross = (lo_lo >> 16u) + (hi_lo & 0xffffu) + lo_hi;
    let hi = hi_hi + (hi_lo >> 16u) + (cross >> 16u);
    let lo = (cross << 16u) | (lo_lo & 0xffffu);
    return vec2<u32>(hi, lo);
}

fn philox(counter: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key_in;
    for (var round = 0u; round < 10u; round++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        if (round < 9u) {
            k = vec2<u32>(k.x + 0x9E3779B9u, k.y + 0xBB67AE85u);
        }
    }
    return c;
}

fn index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * p.row;
}

// Whether element i is kept: u32 number start + i of the stream `seed` >= threshold.
fn keep(i: u32) -> bool {
    // 64-bit stream position start + i, then its Philox block and lane
    let lo = p.start_lo + i;
    let carry = select(0u, 1u, lo < i);
    let hi = p.start_hi + carry;
    let block_lo = (lo >> 2u) | (hi << 30u);
    let block_hi = hi >> 2u;
    let r = philox(vec4<u32>(block_lo, block_hi, 0u, 0u), vec2<u32>(p.seed_lo, p.seed_hi));
    let lane = lo & 3u;
    var u = r.x;
    if (lane == 1u) { u = r.y; }
    if (lane == 2u) { u = r.z; }
    if (lane == 3u) { u = r.w; }
    return u >= p.threshold;
}

@compute @workgroup_size(64)
fn mask_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n) { return; }
    out[i] = select(0.0, p.keep_scale, keep(i));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n) { return; }
    let k = keep(i);
    let a = select(0.0, p.keep_scale, k);
    scale_out[i] = a;
    out[i] = x[i] * a + select(p.drop_shift, p.keep_shift, k);
}
