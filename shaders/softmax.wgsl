// Row-wise kernels over a contiguous (rows, cols) tensor, one workgroup per row, with the
// row max and sums as workgroup trees (no subgroup size assumed):
//   log_softmax_main: out = (x - max) - log(sum(exp(x - max)))  (softmax is exp of it)
//   xent_main:        fused log-softmax + cross-entropy against class labels, with label
//                     smoothing eps: loss = lse - (1 - eps) x[y] - eps mean(x)
//   xent_grad_main:   its gradient, (softmax(x) - w) * g, w = (1 - eps) onehot(y) + eps / cols
// The max and the log-sum are kept apart, never added into one log-sum-exp: at 1e6 an f32
// holds no fraction finer than 1/16, so max + log(2) would lose the log(2) and x - lse
// would be off by it (softmax of [1e30, 1e30, 0] summed to 2).

struct Params {
    rows: u32,
    cols: u32,
    row: u32,      // workgroups (or threads, for xent_grad_main) per grid row
    x_offset: u32,
    smoothing: f32,
    g_scale: f32,    // 1 / rows for a mean, else 1
    g_per_row: u32,  // 1: one upstream gradient per row (no reduction); 0: one for all
    halves: u32,     // xent and xent_grad: how x (bits 0-1) and g (bits 2-3) rest: 0 float32
                     // words, 1 float16 / 2 bfloat16 packed two to a word (read exactly);
                     // xent_grad: how to write dx (bits 4-5; packed: a word, two
                     // elements, a thread, rounded as a separate pack would)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> x: array<f32>;
@group(2) @binding(2) var<storage, read> g: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
// xent_main: the labels; xent_grad_main: what xent_main left in `saved`
@group(2) @binding(4) var<storage, read> words: array<u32>;
// [max of each row | log-sum of each row (both as bits) | label of each row], for the backward
@group(0) @binding(5) var<storage, read_write> saved: array<u32>;

const WG: u32 = 256u;
var<workgroup> part: array<f32, 256>;

// Workgroup trees over `part` (each thread has stored its value): the maximum or the sum
// over all 256 threads, returned to every thread. Called from uniform control flow.

// Element i of x (of g), a float32 word or half i % 2 of word i / 2.
fn xv(i: u32) -> f32 {
    let code = p.halves & 3u;
    if (code == 0u) {
        return x[i];
    }
    return packed_half(x[i / 2u], i, code);
}

fn gv(i: u32) -> f32 {
    let code = (p.halves >> 2u) & 3u;
    if (code == 0u) {
        return g[i];
    }
    return packed_half(g[i / 2u], i, code);
}

fn tree_max(t: u32, v: f32) -> f32 {
    part[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) { part[t] = max(part[t], part[t + s]); }
        workgroupBarrier();
    }
    let out = part[0];
    workgroupBarrier();
    return out;
}

fn tree_sum(t: u32, v: f32) -> f32 {
    part[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) { part[t] = part[t] + part[t + s]; }
        workgroupBarrier();
    }
    let out = part[0];
    workgroupBarrier();
    return out;
}

// The row's maximum and log(sum(exp(x - max))) (a NaN anywhere makes them NaN).
fn row_lse(t: u32, base: u32) -> vec2<f32> {
    var m = -3.4028235e38;
    for (var c = t; c < p.cols; c += WG) {
        m = max(m, xv(base + c));
    }
    let row_max = tree_max(t, m);
    var acc = 0.0;
    for (var c = t; c < p.cols; c += WG) {
        acc += exp(xv(base + c) - row_max);
    }
    return vec2<f32>(row_max, log(tree_sum(t, acc)));
}

@compute @workgroup_size(256)
fn log_softmax_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = wg.x + wg.y * p.row;
    if (r >= p.rows) { return; }
    let base = p.x_offset + r * p.cols;
    let ml = row_lse(t, base);
    for (var c = t; c < p.cols; c += WG) {
        out[r * p.cols + c] = (xv(base + c) - ml.x) - ml.y;
    }
}

@compute @workgroup_size(256)
fn xent_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = wg.x + wg.y * p.row;
    if (r >= p.rows) { return; }
    let base = p.x_offset + r * p.cols;
    let ml = row_lse(t, base);
    var sx = 0.0;
    for (var c = t; c < p.cols; c += WG) {
        sx += xv(base + c);
    }
    let row_sum = tree_sum(t, sx);
    if (t == 0u) {
        let y = words[r];
        // lse - x[y] as log-sum - (x[y] - max); the smoothing term only when asked for,
        // since 0 * inf would make a finite loss NaN
        var loss = ml.y - (1.0 - p.smoothing) * (xv(base + y) - ml.x);
        if (p.smoothing != 0.0) {
            loss -= p.smoothing * (row_sum / f32(p.cols) - ml.x);
        }
        out[r] = loss;
        saved[r] = bitcast<u32>(ml.x);
        saved[p.rows + r] = bitcast<u32>(ml.y);
        saved[2u * p.rows + r] = y;
    }
}

// d loss / d x at element i: (softmax - target) times the row's upstream gradient.
fn xent_grad_at(i: u32) -> f32 {
    let r = i / p.cols;
    let j = i % p.cols;
    let row_max = bitcast<f32>(words[r]);
    let log_sum = bitcast<f32>(words[p.rows + r]);
    var w = p.smoothing / f32(p.cols);
    if (j == words[2u * p.rows + r]) { w += 1.0 - p.smoothing; }
    var gi = gv(0u);
    if (p.g_per_row != 0u) { gi = gv(r); }
    return (exp((xv(p.x_offset + i) - row_max) - log_sum) - w) * gi * p.g_scale;
}

@compute @workgroup_size(64)
fn xent_grad_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    let n = p.rows * p.cols;
    let code = (p.halves >> 4u) & 3u;
    if (code == 0u) {
        if (t < n) { out[t] = xent_grad_at(t); }
        return;
    }
    let i = 2u * t;
    if (i >= n) { return; }
    var hi = 0.0;
    if (i + 1u < n) { hi = xent_grad_at(i + 1u); }
    out[t] = packed_pair(xent_grad_at(i), hi, code);
}
