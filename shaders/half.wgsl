// Half-precision storage: float16 and bfloat16 tensors rest on the GPU two to a 32-bit
// word (element 2w in the low half of word w, 2w+1 in the high half: the host's byte
// order, so uploads and downloads are plain copies). Kernels compute in float32: the
// dispatch unpacks a packed operand into float32 words first and packs results after.
// Both directions are integer arithmetic on the bits, exact on every GPU (WGSL leaves
// the rounding of its own float-to-half conversions open, and needs no shader-f16 here).

struct Params {
    n: u32,        // elements (unpack: outputs; pack: inputs)
    op: u32,       // 0: float16, 1: bfloat16
    ndim: u32,     // (unused: elementwise.wgsl's layout, to share its launcher's params)
    row: u32,      // threads per grid row
    alpha: f32,
    beta: f32,
    a_offset: u32, // pack: the first input element in `a`
    b_offset: u32,
    halves: u32,   // (unused, as ndim)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> a: array<u32>;
@group(3) @binding(3) var<storage, read_write> out: array<u32>;

fn linear_index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * p.row;
}


// out[i] = the float32 of element i of a packed buffer
@compute @workgroup_size(64)
fn unpack_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_index(gid);
    if (i >= p.n) { return; }
    let word = a[i >> 1u];
    let h = select(word & 0xffffu, word >> 16u, (i & 1u) == 1u);
    out[i] = half_to_f32_bits(h, p.op == 1u);
}

// out[w] = elements 2w and 2w+1 of a float32 buffer, rounded to halves and packed (the
// upper half of the last word is 0 when n is odd)
@compute @workgroup_size(64)
fn pack_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = linear_index(gid);
    let i = 2u * w;
    if (i >= p.n) { return; }
    let bf = p.op == 1u;
    let lo = f32_bits_to_half(a[p.a_offset + i], bf);
    var hi = 0u;
    if (i + 1u < p.n) { hi = f32_bits_to_half(a[p.a_offset + i + 1u], bf); }
    out[w] = lo | (hi << 16u);
}
