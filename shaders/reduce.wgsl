// Reductions along one axis of a contiguous (outer, r, inner) view: sum, max, min, argmax,
// argmin, mean, and argmax compared with a label (accuracy counts).
//
// One workgroup of 256 threads reduces one output element: each thread folds a strided
// slice of the axis, then a tree in workgroup memory finishes. No subgroup operations, so
// the result does not depend on the hardware's subgroup size (lavapipe's is 8, not 32).

struct Params {
    outer: u32,
    r: u32,
    inner: u32,
    op: u32,      // 0 sum, 1 max, 2 min, 3 argmax, 4 mean, 5 argmin, 6 argmax == label
    row: u32,     // workgroups per grid row (the grid folds into 2-D for large outputs)
    half: u32,    // x rests as packed halves: 0 no, 1 float16, 2 bfloat16 (read exactly)
    round_out: u32, // the result rounded to float16 (1) or bfloat16 (2), kept as a float32
                    // word: a half sum cast back to float32 without its pack and unpack
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> x: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
@group(2) @binding(4) var<storage, read> labels: array<u32>;  // op 6: one per output

const WG: u32 = 256u;
var<workgroup> vals: array<f32, 256>;
var<workgroup> idxs: array<u32, 256>;

// is_nan and okey come from common.wgsl (prepended).

// Whether v replaces best: a NaN beats any number and, once held, is kept (the first NaN
// wins, as NumPy's argmax and the CPU path give).

// Element i of x, a float32 word or half i % 2 of word i / 2.
fn load(i: u32) -> f32 {
    if (p.half == 0u) {
        return x[i];
    }
    return packed_half(x[i / 2u], i, p.half);
}

// A result as it is written: rounded to the half `round_out` names, if any.
fn finish(v: f32) -> f32 {
    if (p.round_out == 1u) { return round_f16(v); }
    if (p.round_out == 2u) { return round_bf16(v); }
    return v;
}

fn better(op: u32, v: f32, best: f32) -> bool {
    if (is_nan(best)) { return false; }
    if (is_nan(v)) { return true; }
    if (op == 2u || op == 5u) { return okey(v) < okey(best); }
    return okey(v) > okey(best);
}

fn same(v: f32, best: f32) -> bool {
    return okey(v) == okey(best) || (is_nan(v) && is_nan(best));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let o = wg.x + wg.y * p.row;       // output element: (outer index, inner index)
    if (o >= p.outer * p.inner) { return; }
    let oi = o / p.inner;
    let ii = o % p.inner;
    let base = oi * p.r * p.inner + ii;
    var acc = 0.0;
    var best_i = 0u;
    if (p.op == 1u || p.op == 3u || p.op == 6u) { acc = -3.4028235e38; }
    if (p.op == 2u || p.op == 5u) { acc = 3.4028235e38; }
    var first = true;
    for (var k = t; k < p.r; k += WG) {
        let v = load(base + k * p.inner);
        if (p.op == 0u || p.op == 4u) {
            acc += v;
        } else if (first || better(p.op, v, acc)) {
            acc = v;
            best_i = k;
        }
        first = false;
    }
    vals[t] = acc;
    idxs[t] = select(best_i, 0xffffffffu, first);
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) {
            let v = vals[t + s];
            let vi = idxs[t + s];
            if (p.op == 0u || p.op == 4u) {
                vals[t] += v;
            } else if (vi != 0xffffffffu) {
                let cur = idxs[t];
                // ties keep the lower index, as NumPy's argmax does
                if (cur == 0xffffffffu || better(p.op, v, vals[t]) || (same(v, vals[t]) && vi < cur)) {
                    vals[t] = v;
                    idxs[t] = vi;
                }
            }
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        var res = vals[0];
        if (p.op == 3u || p.op == 5u) { res = f32(idxs[0]); }
        if (p.op == 6u) { res = select(0.0, 1.0, idxs[0] == labels[o]); }
        if (p.op == 4u) { res = res / f32(p.r); }
        out[o] = finish(res);
    }
}

// Short axes (r <= 32: pooling windows, small rows): one thread per output folds the axis
// in order. The main entry gave each output a workgroup of 256 threads, nearly all idle: a
// 2 x 2 max pool over 64 x 64 x 24 x 24 activations is 589,824 outputs of 4 entries, which
// took 17 s on lavapipe. In order, the first maximum (or NaN) wins, as in main.
@compute @workgroup_size(64)
fn short_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x + gid.y * p.row;
    if (o >= p.outer * p.inner) { return; }
    let oi = o / p.inner;
    let ii = o % p.inner;
    let base = oi * p.r * p.inner + ii;
    var acc = 0.0;
    var best_i = 0u;
    for (var k = 0u; k < p.r; k++) {
        let v = load(base + k * p.inner);
        if (p.op == 0u || p.op == 4u) {
            acc += v;
        } else if (k == 0u || better(p.op, v, acc)) {
            acc = v;
            best_i = k;
        }
    }
    var res = acc;
    if (p.op == 3u || p.op == 5u) { res = f32(best_i); }
    if (p.op == 6u) { res = select(0.0, 1.0, best_i == labels[o]); }
    if (p.op == 4u) { res = res / f32(p.r); }
    out[o] = finish(res);
}

// Sum or mean over r of a (outer, r, inner) view with many columns (inner >= 16): the main
// entry would give each output a workgroup whose threads read one column with a stride of
// `inner` (bias gradients: 512 workgroups of 256 threads for 128 rows). Here a 16 x 16
// workgroup takes 16 adjacent columns (coalesced reads), its 16 thread rows fold every 16th
// row of the axis, and a tree over the thread rows finishes.
var<workgroup> colpart: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn cols_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let blocks = (p.inner + 15u) / 16u;    // column blocks per outer index
    let id = wg.x + wg.y * p.row;
    let oi = id / blocks;
    let col = (id % blocks) * 16u + lid.x;
    let live = oi < p.outer && col < p.inner;
    var acc = 0.0;
    if (live) {
        let base = oi * p.r * p.inner + col;
        for (var k = lid.y; k < p.r; k += 16u) {
            acc += load(base + k * p.inner);
        }
    }
    colpart[lid.y * 16u + lid.x] = acc;
    workgroupBarrier();
    for (var s = 8u; s > 0u; s = s / 2u) {
        if (lid.y < s) {
            colpart[lid.y * 16u + lid.x] += colpart[(lid.y + s) * 16u + lid.x];
        }
        workgroupBarrier();
    }
    if (live && lid.y == 0u) {
        var res = colpart[lid.x];
        if (p.op == 4u) { res = res / f32(p.r); }
        out[oi * p.inner + col] = finish(res);
    }
}
