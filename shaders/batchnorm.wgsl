// Batch normalization of a (n, c) row-major input over its n rows, forward and backward,
// in four kernels:
//   stats_main:  per feature, the batch mean and variance (or the running ones in eval),
//                the running-stat update, and scale = gamma * invstd
//   norm_main:   y = (x - mean) * scale + beta (then relu, with flag 16: BatchNorm1d -> ReLU
//                fused); not x * scale + shift, which cancels when the mean is large
//   grad_reduce_main: per feature, dgamma = sum(g * xhat), dbeta = sum(g) and the
//                coefficients of dx = a g + b (x - mean) + c
//   grad_x_main: dx from those coefficients
//   grad_main:   both backward steps in one dispatch, for batches of up to a few thousand
//                rows: each workgroup's 16 features' sums, then their dx, row by row
// The bindings are declared apart: batchnorm_bindings.wgsl (the common layout, appended for
// these kernels) or batchnorm_fused.wgsl (the forward in one dispatch, which binds one
// buffer more than the common layout holds).

struct Params {
    n: u32,
    c: u32,
    flags: u32,   // 1 gamma given, 2 beta given, 4 update running stats, 8 eval (use them),
                  // 16 relu after the normalization, 32 dropout after that, 64 a residual
                  // block's shortcut added last (norm_main: extra; forward_main: skip)
    row: u32,     // threads per grid row
    eps: f32,
    momentum: f32,
    unbias: f32,  // n / (n - 1), for the running variance
    keep_scale: f32, // flag 32: dropout after (relu): kept y * keep_scale, dropped 0
    threshold: u32,  // the mask: kept when u32 number start + i of stream seed >= it
    seed_lo: u32,
    seed_hi: u32,
    start_lo: u32,
    start_hi: u32,
    halves: u32,  // how x (bits 0-1) and g (bits 2-3) rest, and grad_main writes dx (bits
                  // 4-5): 0 float32 words, 1 float16, 2 bfloat16 packed two to a word (read
                  // exactly; dx rounded to nearest even, c even: the driver checks)
    _pad1: u32,
}

// is_nan comes from common.wgsl (prepended).

fn index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * p.row;
}

// Element i of `word`'s buffer when it holds packed halves (code 1 float16, 2 bfloat16)
// two to a word, exactly; code 0: the word itself.
fn bn_half(word: f32, i: u32, code: u32) -> f32 {
    if (code == 0u) { return word; }
    return packed_half(word, i, code);
}

// x[i] in the forward (in1) and the backward (in2), g[i] in the backward (in1).
fn x_fwd(i: u32) -> f32 {
    let code = p.halves & 3u;
    return bn_half(in1[select(i, i / 2u, code != 0u)], i, code);
}

fn x_bwd(i: u32) -> f32 {
    let code = p.halves & 3u;
    return bn_half(in2[select(i, i / 2u, code != 0u)], i, code);
}

fn g_bwd(i: u32) -> f32 {
    let code = (p.halves >> 2u) & 3u;
    return bn_half(in1[select(i, i / 2u, code != 0u)], i, code);
}

// Per-feature kernels run 16 x 16 workgroups: 16 features (adjacent threads, adjacent
// addresses) by 16 row groups, whose partial sums meet in a workgroup tree; `row` counts
// workgroups per grid row here.
var<workgroup> red: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;

// Sums red (and red2) over the 16 row groups; every thread then reads column lid.x.
fn tree(lid: vec3<u32>) {
    for (var s = 8u; s > 0u; s = s / 2u) {
        if (lid.y < s) {
            red[lid.y * 16u + lid.x] += red[(lid.y + s) * 16u + lid.x];
            red2[lid.y * 16u + lid.x] += red2[(lid.y + s) * 16u + lid.x];
        }
        workgroupBarrier();
    }
}

// Feature j's statistics, vec4(mean, invstd, scale = gamma invstd, beta), for every thread
// of its column (in1 = x, in2 = gamma, extra = beta; rw1, rw2 = running mean and variance):
// the batch's, in two passes (mean, then centred squares) as the CPU kernel, for accuracy,
// or in eval (flag 8) the running ones. Row group 0 updates the running statistics (flag
// 4). Every thread of the workgroup calls it (it has barriers).
fn feature_stats(j: u32, live: bool, lid: vec3<u32>) -> vec4<f32> {
    let eval = (p.flags & 8u) != 0u;
    var s = 0.0;
    if (live && !eval) {
        for (var i = lid.y; i < p.n; i += 16u) { s += x_fwd(i * p.c + j); }
    }
    red[lid.y * 16u + lid.x] = s;
    red2[lid.y * 16u + lid.x] = 0.0;
    workgroupBarrier();
    tree(lid);
    let batch_mean = red[lid.x] / f32(p.n);
    workgroupBarrier();
    var q = 0.0;
    if (live && !eval) {
        for (var i = lid.y; i < p.n; i += 16u) {
            let d = x_fwd(i * p.c + j) - batch_mean;
            q += d * d;
        }
    }
    red[lid.y * 16u + lid.x] = q;
    workgroupBarrier();
    tree(lid);
    var mean = batch_mean;
    var v = red[lid.x] / f32(p.n);
    if (live && eval) {
        mean = rw1[j];
        v = rw2[j];
    } else if (live && lid.y == 0u && (p.flags & 4u) != 0u) {
        rw1[j] = (1.0 - p.momentum) * rw1[j] + p.momentum * mean;
        rw2[j] = (1.0 - p.momentum) * rw2[j] + p.momentum * v * p.unbias;
    }
    let invstd = 1.0 / sqrt(v + p.eps);
    var gamma = 1.0;
    if (live && (p.flags & 1u) != 0u) { gamma = in2[j]; }
    var beta = 0.0;
    if (live && (p.flags & 2u) != 0u) { beta = extra[j]; }
    return vec4<f32>(mean, invstd, gamma * invstd, beta);
}

// out = [mean | invstd | scale | beta] (4c), from feature_stats.
@compute @workgroup_size(16, 16)
fn stats_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = (wg.x + wg.y * p.row) * 16u + lid.x;
    let live = j < p.c;
    let st = feature_stats(j, live, lid);
    if (!live || lid.y != 0u) { return; }
    out[j] = st.x;
    out[p.c + j] = st.y;
    out[2u * p.c + j] = st.z;
    out[3u * p.c + j] = st.w;
}

// Element e (feature j) of the output from x and its feature's vec4(mean, invstd, scale,
// beta): (x - mean) scale + beta, then the fused relu (flag 16) and dropout (flag 32).
fn normalized(x: f32, st: vec4<f32>, e: u32) -> f32 {
    var y = (x - st.x) * st.z + st.w;
    if ((p.flags & 16u) != 0u) { y = select(max(y, 0.0), y, is_nan(y)); }
    if ((p.flags & 32u) != 0u) { y = y * drop_factor(e) + 0.0; }
    return y;
}

// in1 = x, in2 = the stats above, extra = the shortcut (flag 64); out = y.
@compute @workgroup_size(64)
fn norm_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n * p.c) { return; }
    let j = i % p.c;
    let st = vec4<f32>(in2[j], in2[p.c + j], in2[2u * p.c + j], in2[3u * p.c + j]);
    var y = normalized(x_fwd(i), st, i);
    if ((p.flags & 64u) != 0u) { y = extra[i] + y; }
    out[i] = y;
}

// A fused dropout's factor for element i (keep_scale kept, 0 dropped), else 1.
fn drop_factor(i: u32) -> f32 {
    if ((p.flags & 32u) == 0u) { return 1.0; }
    let u = stream_u32(p.seed_lo, p.seed_hi, p.start_lo, p.start_hi, i);
    return select(0.0, p.keep_scale, u >= p.threshold);
}

// The upstream gradient of element i: times a fused dropout's factor (drawn again), then
// zeroed where a fused relu cut the output (its input, recomputed from x and the
// statistics as the forward did, was not above 0).
fn masked_g(g_in: f32, i: u32, x: f32, mean: f32, scale: f32, beta: f32) -> f32 {
    var g = g_in;
    if ((p.flags & 32u) != 0u) { g = g * drop_factor(i); }
    if ((p.flags & 16u) != 0u && !((x - mean) * scale + beta > 0.0)) { return 0.0; }
    return g;
}

// The sums of one workgroup's 16 features (g times a fused dropout's factor and relu's
// cut): red[lid.x] = sum(g xhat), red2[lid.x] = sum(g), for every thread to read.
fn grad_sums(j: u32, live: bool, lid: vec3<u32>) {
    var sg = 0.0;
    var sgx = 0.0;
    if (live) {
        let mean = extra[j];
        let invstd = extra[p.c + j];
        let scale = extra[2u * p.c + j];
        let beta = extra[3u * p.c + j];
        for (var i = lid.y; i < p.n; i += 16u) {
            let x = x_bwd(i * p.c + j);
            let g = masked_g(g_bwd(i * p.c + j), i * p.c + j, x, mean, scale, beta);
            sg += g;
            sgx += g * (x - mean) * invstd;
        }
    }
    red[lid.y * 16u + lid.x] = sgx;
    red2[lid.y * 16u + lid.x] = sg;
    workgroupBarrier();
    tree(lid);
}

// dx = a g + b (x - mean) + c's coefficients from the sums: (a, b, c).
fn grad_coefficients(j: u32, sgx: f32, sg: f32) -> vec3<f32> {
    let a = extra[2u * p.c + j];
    var b = 0.0;
    var c = 0.0;
    if ((p.flags & 8u) == 0u) {
        let k = a / f32(p.n);
        b = -k * extra[p.c + j] * sgx;
        c = -k * sg;
    }
    return vec3<f32>(a, b, c);
}

// in1 = g, in2 = x, extra = the stats; out = [a | b | c | mean | scale | beta] (6c);
// rw1 = dgamma, rw2 = dbeta.
// dx = gamma invstd / n (n g - sum g - xhat sum(g xhat)) = a g + b (x - mean) + c; in eval
// the statistics are constants, so dx = a g.
@compute @workgroup_size(16, 16)
fn grad_reduce_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = (wg.x + wg.y * p.row) * 16u + lid.x;
    let live = j < p.c;
    grad_sums(j, live, lid);
    if (!live || lid.y != 0u) { return; }
    let sgx = red[lid.x];
    let sg = red2[lid.x];
    rw1[j] = sgx;
    rw2[j] = sg;
    let k = grad_coefficients(j, sgx, sg);
    out[j] = k.x;
    out[p.c + j] = k.y;
    out[2u * p.c + j] = k.z;
    out[3u * p.c + j] = extra[j];
    out[4u * p.c + j] = extra[2u * p.c + j];
    out[5u * p.c + j] = extra[3u * p.c + j];
}

// grad_reduce_main and grad_x_main in one dispatch: in1 = g, in2 = x, extra = the stats;
// out = dx; rw1 = dgamma, rw2 = dbeta. Each workgroup finishes its 16 features' sums,
// then writes their dx row by row (the same formula, in the same order, as the two).
@compute @workgroup_size(16, 16)
fn grad_main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = (wg.x + wg.y * p.row) * 16u + lid.x;
    let live = j < p.c;
    grad_sums(j, live, lid);
    if (!live) { return; }
    let sgx = red[lid.x];
    let sg = red2[lid.x];
    if (lid.y == 0u) {
        rw1[j] = sgx;
        rw2[j] = sg;
    }
    let dx_code = (p.halves >> 4u) & 3u;
    if (dx_code == 0u) {
        for (var i = lid.y; i < p.n; i += 16u) {
            out[i * p.c + j] = grad_x_at(i * p.c + j, j, grad_coefficients(j, sgx, sg));
        }
        return;
    }
    // dx packed: the thread of each even feature writes the pair's word (c is even, so a
    // pair never straddles rows; the odd feature's sums are its neighbour's in red, red2)
    if ((j & 1u) == 1u) { return; }
    let k0 = grad_coefficients(j, sgx, sg);
    let k1 = grad_coefficients(j + 1u, red[lid.x + 1u], red2[lid.x + 1u]);
    for (var i = lid.y; i < p.n; i += 16u) {
        let e = i * p.c + j;
        out[e / 2u] = packed_pair(grad_x_at(e, j, k0), grad_x_at(e + 1u, j + 1u, k1), dx_code);
    }
}

// dx at element e (feature j, coefficients k) in grad_main.
fn grad_x_at(e: u32, j: u32, k: vec3<f32>) -> f32 {
    let mean = extra[j];
    let x = x_bwd(e);
    let g = masked_g(g_bwd(e), e, x, mean, extra[2u * p.c + j], extra[3u * p.c + j]);
    return k.x * g + k.y * (x - mean) + k.z;
}

// in1 = g, in2 = x, extra = the coefficients; out = dx.
@compute @workgroup_size(64)
fn grad_x_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n * p.c) { return; }
    let j = i % p.c;
    let x = x_bwd(i);
    let g = masked_g(g_bwd(i), i, x, extra[3u * p.c + j], extra[4u * p.c + j], extra[5u * p.c + j]);
    out[i] = extra[j] * g + extra[p.c + j] * (x - extra[3u * p.c + j]) + extra[2u * p.c + j];
}
