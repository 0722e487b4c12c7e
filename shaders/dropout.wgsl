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
    halves: u32,  // main: how x (bits 0-1) and out (bits 2-3) rest: 0 float32 words, 1
                  // float16, 2 bfloat16 packed two to a word (a word, two elements, a thread)
    keep_scale: f32,
    keep_shift: f32,
    drop_shift: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> x: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> scale_out: array<f32>;

fn index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * p.row;
}

// Whether element i is kept: u32 number start + i of the stream `seed` >= threshold
// (stream_u32 and Philox come from common.wgsl, shared with batchnorm.wgsl's fused dropout).
fn keep(i: u32) -> bool {
    return stream_u32(p.seed_lo, p.seed_hi, p.start_lo, p.start_hi, i) >= p.threshold;
}

@compute @workgroup_size(64)
fn mask_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n) { return; }
    out[i] = select(0.0, p.keep_scale, keep(i));
}

// x[i], from packed halves where p.halves says so (exactly).
fn x_at(i: u32) -> f32 {
    let code = p.halves & 3u;
    if (code == 0u) { return x[i]; }
    return packed_half(x[i / 2u], i, code);
}

// Element i's factor (stored for the backward) and its output.
fn masked(i: u32) -> f32 {
    let k = keep(i);
    let a = select(0.0, p.keep_scale, k);
    scale_out[i] = a;
    return x_at(i) * a + select(p.drop_shift, p.keep_shift, k);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = index(gid);
    let code = (p.halves >> 2u) & 3u;
    if (code == 0u) {
        if (t >= p.n) { return; }
        out[t] = masked(t);
        return;
    }
    // a packed output: elements 2t and 2t + 1, rounded as the packing pass rounds
    let i = 2u * t;
    if (i >= p.n) { return; }
    let lo = masked(i);
    var hi = 0.0;
    if (i + 1u < p.n) { hi = masked(i + 1u); }
    out[t] = packed_pair(lo, hi, code);
}
