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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n) { return; }
    let k = keep(i);
    let a = select(0.0, p.keep_scale, k);
    scale_out[i] = a;
    out[i] = x[i] * a + select(p.drop_shift, p.keep_shift, k);
}
