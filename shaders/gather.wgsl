// Row gathers: out[o, k, c] = x[o, idx[k], c] for a contiguous x viewed as (outer, size, inner)
// (index_select along one dim; mini-batches are gathers along dim 0), and their backward,
// which sums the gradient rows that each source row went to (no atomics: the host lists
// them per row, so each output element is one thread's sum in a fixed order).

struct Params {
    n: u32,        // elements in the output: outer * count * inner
    count: u32,    // number of indices
    size: u32,     // length of the gathered dim in x
    inner: u32,    // elements after the gathered dim
    row: u32,      // threads per grid row
    x_offset: u32,
    lists: u32,    // scatter_sum_main: where the gradient-row lists start in idx
    _pad: u32,
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
    out[i] = x[p.x_offset + (o * p.size + idx[k]) * p.inner + c];
}

// The backward of a gather: out[o, k, c] = sum of x[o, j, c] over the rows j that took
// source row k, with x the gradient viewed as (outer, count, inner) and out as (outer, size,
// inner). idx holds CSR offsets (size + 1 words) and then, from p.lists, the rows j for
// each k in increasing order.
@compute @workgroup_size(64)
fn scatter_sum_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i >= p.n) { return; }
    let c = i % p.inner;
    let k = (i / p.inner) % p.size;
    let o = i / (p.inner * p.size);
    var acc = 0.0;
    for (var t = idx[k]; t < idx[k + 1u]; t++) {
        acc += x[p.x_offset + (o * p.count + idx[p.lists + t]) * p.inner + c];
    }
    out[i] = acc;
}
