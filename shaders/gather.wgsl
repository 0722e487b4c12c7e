// Row gathers: out[o, k, c] = x[o, idx[k], c] for a contiguous x viewed as (outer, size, inner)
// (index_select along one dim; mini-batches are gathers along dim 0). An index of 0xffffffff
// gives zeros: the backward of a gather with distinct indices is the gather of the
// gradient by the inverse map, zero for rows nobody picked.

struct Params {
    n: u32,        // elements in the output: outer * count * inner
    count: u32,    // number of indices
    size: u32,     // length of the gathered dim in x
    inner: u32,    // elements after the gathered dim
    row: u32,      // threads per grid row
    x_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> x: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
@group(2) @binding(4) var<storage, read> idx: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i >= p.n) { return; }
    let c = i % p.inner;
    let k = (i / p.inner) % p.count;
    let o = i / (p.inner * p.count);
    let j = idx[k];
    if (j == 0xffffffffu) {
        out[i] = 0.0;
        return;
    }
    out[i] = x[p.x_offset + (o * p.size + j) * p.inner + c];
}
