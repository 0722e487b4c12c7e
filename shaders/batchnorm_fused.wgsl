// Batch norm's forward in one dispatch (batchnorm.wgsl's kernels are prepended): it writes
// y, the statistics and the running statistics, one buffer more than the common layout's
// three read-write bindings, so it binds everything in group 1 of the multi-tensor layout
// (runtime/multi.rs; read-only uses are bound read-write there).
@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(0) var<storage, read_write> in1: array<f32>;
@group(1) @binding(1) var<storage, read_write> in2: array<f32>;
@group(1) @binding(2) var<storage, read_write> extra: array<f32>;
@group(1) @binding(3) var<storage, read_write> out: array<f32>;
@group(1) @binding(4) var<storage, read_write> stats: array<f32>;
@group(1) @binding(5) var<storage, read_write> rw1: array<f32>;
@group(1) @binding(6) var<storage, read_write> rw2: array<f32>;
@group(1) @binding(7) var<storage, read_write> skip: array<f32>;

// stats_main and norm_main in one dispatch, for batches of up to a few thousand rows:
// in1 = x, in2 = gamma, extra = beta; out = y, stats = [mean | invstd | scale | beta];
// rw1, rw2 = running mean and variance; skip = a residual block's shortcut (flag 64). Each workgroup computes its 16 features'
// statistics, then their outputs row by row (the same arithmetic as the two, so the bits).
@compute @workgroup_size(16, 16)
fn forward_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = (wg.x + wg.y * p.row) * 16u + lid.x;
    let live = j < p.c;
    let st = feature_stats(j, live, lid);
    if (!live) { return; }
    if (lid.y == 0u) {
        stats[j] = st.x;
        stats[p.c + j] = st.y;
        stats[2u * p.c + j] = st.z;
        stats[3u * p.c + j] = st.w;
    }
    for (var i = lid.y; i < p.n; i += 16u) {
        let e = i * p.c + j;
        var y = normalized(x_fwd(e), st, e);
        if ((p.flags & 64u) != 0u) { y = skip[e] + y; }
        out[e] = y;
    }
}
