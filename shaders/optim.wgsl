// Optimizer updates, in place on the GPU, one dispatch per parameter tensor. The formulas
// are those of the fused CPU loops in rust/core/src/optim.rs (PyTorch's torch.optim).
//
// Bindings: 1 the gradient, 2 RMSprop's new gradient average (centered only), 3 the
// parameter (updated in place), 5 and 6 the optimizer state (updated in place).

struct Params {
    n: u32,
    row: u32,     // threads per grid row (2-D grids for large tensors)
    flags: u32,   // sgd: 1 momentum, 2 first step, 4 nesterov; rmsprop: 1 momentum, 2 centered
    half: u32,    // sgd, adam, adadelta, rmsprop (not centered): every buffer rests as
                  // packed halves (1 float16, 2 bfloat16): thread i updates word i,
                  // elements 2i and 2i + 1, in float32, rounded back
    lr: f32,
    a: f32,       // sgd: momentum; adam: beta1; rmsprop: alpha; adadelta: rho
    b: f32,       // sgd: 1 - dampening; adam: beta2; rmsprop: momentum
    eps: f32,
    wd: f32,      // L2 weight decay added to the gradient
    decay: f32,   // adamw: 1 - lr * weight_decay (1 otherwise)
    step_size: f32,  // adam: lr / (1 - beta1^t)
    sqrt_bc2: f32,   // adam: sqrt(1 - beta2^t)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> grad: array<f32>;
@group(2) @binding(2) var<storage, read> aux: array<f32>;
@group(3) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(5) var<storage, read_write> s1: array<f32>;
@group(0) @binding(6) var<storage, read_write> s2: array<f32>;

fn index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * p.row;
}

// Half j (0 low, 1 high) of a word of packed halves, exactly.
fn half_of(word: f32, j: u32) -> f32 {
    return packed_half(word, j, p.half);
}

// Two values rounded to the half and packed into a word; `old`'s high half is kept when
// the second element is past the end (`both` false).
fn store_pair(lo: f32, hi: f32, old: f32, both: bool) -> f32 {
    let w = bitcast<u32>(packed_pair(lo, hi, p.half));
    return bitcast<f32>(select((w & 0xffffu) | (bitcast<u32>(old) & 0xffff0000u), w, both));
}

// s1: the momentum buffer (when flags & 1; optim_step.wgsl has the formula)
@compute @workgroup_size(64)
fn sgd_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (p.half != 0u) {
        sgd_packed(i);
        return;
    }
    if (i >= p.n) { return; }
    let momentum = (p.flags & 1u) != 0u;
    var buf = 0.0;
    if (momentum) { buf = s1[i]; }
    let r = sgd_step(param[i], grad[i], buf, vec4<f32>(p.lr, p.a, p.b, p.wd), p.flags);
    if (momentum) { s1[i] = r.y; }
    param[i] = r.x;
}

// s1, s2: first and second moments (optim_step.wgsl, prepended, has the formula)
@compute @workgroup_size(64)
fn adam_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (p.half != 0u) {
        adam_packed(i);
        return;
    }
    if (i >= p.n) { return; }
    let r = adam_step(
        param[i], grad[i], s1[i], s2[i],
        vec4<f32>(p.a, p.b, p.eps, p.wd), vec4<f32>(p.decay, p.step_size, p.sqrt_bc2, 0.0),
    );
    s1[i] = r.y;
    s2[i] = r.z;
    param[i] = r.x;
}

// Centered RMSprop's first pass: the parameter is bound read-only at 2 (`aux`) and the
// gradient average is the one updated in place (binding 3): gavg = alpha gavg + (1 - alpha) d.
@compute @workgroup_size(64)
fn rmsprop_gavg_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (i >= p.n) { return; }
    let d = grad[i] + p.wd * aux[i];
    param[i] = p.a * param[i] + (1.0 - p.a) * d;
}

// RMSprop's update of one element: (weight, squared-gradient average, momentum buffer);
// `ga` is this step's gradient average (centered only), `buf0` unused without momentum.
fn rmsprop_elem(w: f32, g: f32, sq0: f32, buf0: f32, ga: f32) -> vec3<f32> {
    let d = g + p.wd * w;
    let sq = p.a * sq0 + (1.0 - p.a) * d * d;
    var v = sq;
    if ((p.flags & 2u) != 0u) {
        v -= ga * ga;
    }
    let den = sqrt(v) + p.eps;
    if ((p.flags & 1u) != 0u) {
        let buf = p.b * buf0 + d / den;
        return vec3<f32>(w - p.lr * buf, sq, buf);
    }
    return vec3<f32>(w - p.lr * d / den, sq, buf0);
}

// s1: the squared-gradient average; s2: the momentum buffer (flags & 1); aux (binding 2)
// holds this step's gradient average when centered (flags & 2).
@compute @workgroup_size(64)
fn rmsprop_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (p.half != 0u) {
        rmsprop_packed(i);
        return;
    }
    if (i >= p.n) { return; }
    let momentum = (p.flags & 1u) != 0u;
    var buf = 0.0;
    if (momentum) { buf = s2[i]; }
    var ga = 0.0;
    if ((p.flags & 2u) != 0u) { ga = aux[i]; }
    let r = rmsprop_elem(param[i], grad[i], s1[i], buf, ga);
    s1[i] = r.y;
    if (momentum) { s2[i] = r.z; }
    param[i] = r.x;
}

// s1: the squared-gradient average; s2: the squared-step average (optim_step.wgsl)
@compute @workgroup_size(64)
fn adadelta_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = index(gid);
    if (p.half != 0u) {
        adadelta_packed(i);
        return;
    }
    if (i >= p.n) { return; }
    let r = adadelta_step(param[i], grad[i], s1[i], s2[i], vec4<f32>(p.lr, p.a, p.eps, p.wd));
    s1[i] = r.y;
    s2[i] = r.z;
    param[i] = r.x;
}

// sgd_main on packed halves: word w, elements 2w and 2w + 1.
fn sgd_packed(w: u32) {
    if (2u * w >= p.n) { return; }
    let both = 2u * w + 1u < p.n;
    let momentum = (p.flags & 1u) != 0u;
    var r: array<vec2<f32>, 2>;
    for (var j = 0u; j < 2u; j++) {
        var buf = 0.0;
        if (momentum) { buf = half_of(s1[w], j); }
        r[j] = sgd_step(half_of(param[w], j), half_of(grad[w], j), buf, vec4<f32>(p.lr, p.a, p.b, p.wd), p.flags);
    }
    if (momentum) { s1[w] = store_pair(r[0].y, r[1].y, s1[w], both); }
    param[w] = store_pair(r[0].x, r[1].x, param[w], both);
}

// adam_main on packed halves: word w, elements 2w and 2w + 1.
fn adam_packed(w: u32) {
    if (2u * w >= p.n) { return; }
    let both = 2u * w + 1u < p.n;
    var r: array<vec3<f32>, 2>;
    for (var j = 0u; j < 2u; j++) {
        r[j] = adam_step(
            half_of(param[w], j), half_of(grad[w], j), half_of(s1[w], j), half_of(s2[w], j),
            vec4<f32>(p.a, p.b, p.eps, p.wd), vec4<f32>(p.decay, p.step_size, p.sqrt_bc2, 0.0),
        );
    }
    s1[w] = store_pair(r[0].y, r[1].y, s1[w], both);
    s2[w] = store_pair(r[0].z, r[1].z, s2[w], both);
    param[w] = store_pair(r[0].x, r[1].x, param[w], both);
}

// rmsprop_main on packed halves (not centered: the centered form reads the new gradient
// average unrounded, which a packed buffer cannot hand from one pass to the next).
fn rmsprop_packed(w: u32) {
    if (2u * w >= p.n) { return; }
    let both = 2u * w + 1u < p.n;
    let momentum = (p.flags & 1u) != 0u;
    var r: array<vec3<f32>, 2>;
    for (var j = 0u; j < 2u; j++) {
        var buf = 0.0;
        if (momentum) { buf = half_of(s2[w], j); }
        r[j] = rmsprop_elem(half_of(param[w], j), half_of(grad[w], j), half_of(s1[w], j), buf, 0.0);
    }
    s1[w] = store_pair(r[0].y, r[1].y, s1[w], both);
    if (momentum) { s2[w] = store_pair(r[0].z, r[1].z, s2[w], both); }
    param[w] = store_pair(r[0].x, r[1].x, param[w], both);
}

// adadelta_main on packed halves: word w, elements 2w and 2w + 1.
fn adadelta_packed(w: u32) {
    if (2u * w >= p.n) { return; }
    let both = 2u * w + 1u < p.n;
    var r: array<vec3<f32>, 2>;
    for (var j = 0u; j < 2u; j++) {
        r[j] = adadelta_step(
            half_of(param[w], j), half_of(grad[w], j), half_of(s1[w], j), half_of(s2[w], j),
            vec4<f32>(p.lr, p.a, p.eps, p.wd),
        );
    }
    s1[w] = store_pair(r[0].y, r[1].y, s1[w], both);
    s2[w] = store_pair(r[0].z, r[1].z, s2[w], both);
    param[w] = store_pair(r[0].x, r[1].x, param[w], both);
}

// GradScaler.update on the device (PyTorch's _amp_update_scale_), one thread: `param` holds
// the scale state (scale, inverse scale, clean steps in a row, unused), `grad` the found-inf
// flag (nonzero: back off). lr: the growth factor, a: the backoff factor, b: the growth
// interval, eps: 1 / growth, wd: 1 / backoff (the inverse moves by the inverse factors, so
// it stays exact for powers of two, as the host's 1 / scale).
@compute @workgroup_size(1)
fn amp_update_main() {
    if (grad[0] != 0.0) {
        param[0] = param[0] * p.a;
        param[1] = param[1] * p.wd;
        param[2] = 0.0;
        return;
    }
    let clean = param[2] + 1.0;
    if (clean < p.b) {
        param[2] = clean;
        return;
    }
    let grown = param[0] * p.lr;
    // a scale that would overflow stays where it is (PyTorch's)
    if (grown <= 3.4028235e38) {
        param[0] = grown;
        param[1] = param[1] * p.eps;
    }
    param[2] = 0.0;
}
