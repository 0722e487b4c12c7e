// log_softmax along the last dim of a contiguous (rows, cols) tensor, one workgroup per row:
// out = x - max - log(sum(exp(x - max))), with the max and the sum as workgroup trees.
// (softmax is exp of it; the cross-entropy weighting happens in the elementwise kernels.)

struct Params {
    rows: u32,
    cols: u32,
    row: u32,      // workgroups per grid row
    x_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn log_softmax_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = wg.x + wg.y * p.row;
    if (r >= p.rows) { return; }
    let base = p.x_offset + r * p.cols;
    // row maximum (NaN propagates through max on the way it does on the CPU path: any NaN
    // makes the result NaN below)
    var m = -3.4028235e38;
    for (var c = t; c < p.cols; c += WG) {
        let v = x[base + c];
        m = max(m, v);
    }
    part[t] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) { part[t] = max(part[t], part[t + s]); }
        workgroupBarrier();
    }
    let row_max = part[0];
    workgroupBarrier();
    var acc = 0.0;
    for (var c = t; c < p.cols; c += WG) {
        acc += exp(x[base + c] - row_max);
    }
    part[t] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (t < s) { part[t] = part[t] + part[t + s]; }
        workgroupBarrier();
    }
    let lse = row_max + log(part[0]);
    for (var c = t; c < p.cols; c += WG) {
        out[r * p.cols + c] = x[base + c] - lse;
    }
}
