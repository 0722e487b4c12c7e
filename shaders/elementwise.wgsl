// Elementwise kernels: unary ops with the activations, and broadcasting binary ops.
//
// Tensors are f32. A binary op reads each operand through its own strides (0 on broadcast
// dims), so broadcasting and non-contiguous views need no copies. Large tensors use a 2-D
// grid (65,535 workgroups per dimension is the limit): the linear index folds x and y.

struct Params {
    n: u32,        // elements in the output
    op: u32,       // which operation (see the constants below)
    ndim: u32,     // dims of the output (binary ops)
    row: u32,      // threads per grid row: workgroups in x * 64
    alpha: f32,    // op parameter (elu alpha, leaky slope, clamp min, ...)
    beta: f32,     // second op parameter (clamp max)
    a_offset: u32, // element offsets of the operands in their buffers
    b_offset: u32,
    halves: u32,   // how a, b, y (aux) and out rest, two bits each from bit 0: 0 float32
                   // words, 1 (2) float16 (bfloat16) packed two to a word; a packed out
                   // is written a word (two elements) per thread
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// The op codes (U_*, B_*), unary_fwd and unary_grad come from the op table
// (generated/elementwise_ops.wgsl); the helpers from common.wgsl; both are prepended.

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> a: array<f32>;
@group(2) @binding(2) var<storage, read> b: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
// shape (8), then a's and b's strides (8 each, as i32 bit patterns: views may step
// backwards); unused dims hold 0
@group(2) @binding(4) var<storage, read> layout_info: array<u32>;
// select_main: where's condition as 0/1, contiguous in the output's shape;
// unary_backward_main: the op's output y (contiguous)
@group(0) @binding(5) var<storage, read_write> aux: array<f32>;

// Whether y is an odd integer; every f32 of magnitude 2**24 or more is even.
fn is_odd_int(y: f32) -> bool {
    return abs(y) < 16777216.0 && y == floor(y) && (i32(y) % 2) != 0;
}

// x ** y with the CPU's (C's powf) meaning at every special value: WGSL's pow is undefined
// for x <= 0 and says nothing of NaN or inf, so those cases are spelled out here, by bits
// where a compiler could assume them away.
fn pow_f(x: f32, y: f32) -> f32 {
    let nan = bitcast<f32>(0x7fc00000u);
    let inf = bitcast<f32>(0x7f800000u);
    if ((bitcast<u32>(y) & 0x7fffffffu) == 0u || x == 1.0) { return 1.0; }
    if (is_nan(x) || is_nan(y)) { return nan; }
    let neg = bitcast<u32>(x) >= 0x80000000u; // the sign bit, so -0.0 counts as negative
    let odd = is_odd_int(y);
    let ax = abs(x);
    if (is_inf(y)) {
        if (ax == 1.0) { return 1.0; }
        return select(0.0, inf, (ax > 1.0) == (y > 0.0));
    }
    if ((bitcast<u32>(x) & 0x7fffffffu) == 0u) {
        let zero_mag = select(0.0, inf, y < 0.0);
        return select(zero_mag, -zero_mag, neg && odd);
    }
    if (is_inf(x)) {
        let inf_mag = select(0.0, inf, y > 0.0);
        return select(inf_mag, -inf_mag, neg && odd);
    }
    if (neg && y != floor(y)) { return nan; }
    let r = pow(ax, y);
    return select(r, -r, neg && odd);
}

// bool results are 0/1 floats (the gpu backend's bool tensors)
fn b2f(c: bool) -> f32 {
    return select(0.0, 1.0, c);
}

// 0-6 arithmetic (BinaryOp's order), 7-12 comparisons (CmpOp's order: ==, !=, <, <=, >,
// >=; anything against NaN is false but !=), 13-15 logical and, or, xor of truth values
fn binary(op: u32, x: f32, y: f32) -> f32 {
    let nan = is_nan(x) || is_nan(y);
    let kx = okey(x);
    let ky = okey(y);
    switch op {
        case B_ADD: { return x + y; }
        case B_SUB: { return x - y; }
        case B_MUL: { return x * y; }
        case B_DIV: { return x / y; }
        case B_POW: { return pow_f(x, y); }
        case B_MAXIMUM: { return select(max(x, y), x + y, nan); }
        case B_MINIMUM: { return select(min(x, y), x + y, nan); }
        case B_EQ: { return b2f(!nan && kx == ky); }
        case B_NE: { return b2f(nan || kx != ky); }
        case B_LT: { return b2f(!nan && kx < ky); }
        case B_LE: { return b2f(!nan && kx <= ky); }
        case B_GT: { return b2f(!nan && kx > ky); }
        case B_GE: { return b2f(!nan && kx >= ky); }
        case B_AND: { return b2f(truthy(x) && truthy(y)); }
        case B_OR: { return b2f(truthy(x) || truthy(y)); }
        case B_XOR: { return b2f(truthy(x) != truthy(y)); }
        default: { return x; }
    }
}

fn linear_index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * p.row;
}

// The half code (see Params.halves) of a (0), b (1), y (2) or out (3).
fn half_code(which: u32) -> u32 {
    return (p.halves >> (2u * which)) & 3u;
}

fn a_at(idx: u32) -> f32 {
    let c = half_code(0u);
    if (c == 0u) { return a[idx]; }
    return packed_half(a[idx / 2u], idx, c);
}

fn b_at(idx: u32) -> f32 {
    let c = half_code(1u);
    if (c == 0u) { return b[idx]; }
    return packed_half(b[idx / 2u], idx, c);
}

fn y_at(idx: u32) -> f32 {
    let c = half_code(2u);
    if (c == 0u) { return aux[idx]; }
    return packed_half(aux[idx / 2u], idx, c);
}

// Thread t's output elements: t itself, or with a packed output the pair 2t, 2t + 1 (the
// second past the end when n is odd). x: the first element, y: the count (0: none).
fn out_elements(t: u32) -> vec2<u32> {
    if (half_code(3u) == 0u) {
        return vec2<u32>(t, select(0u, 1u, t < p.n));
    }
    let i = 2u * t;
    if (i >= p.n) { return vec2<u32>(i, 0u); }
    return vec2<u32>(i, min(2u, p.n - i));
}

// Stores thread t's values (v.y unused when there is one), rounded and packed when out is.
fn store_out(t: u32, v: vec2<f32>, count: u32) {
    let c = half_code(3u);
    if (c == 0u) {
        out[t] = v.x;
        return;
    }
    out[t] = packed_pair(v.x, select(0.0, v.y, count == 2u), c);
}

// Storage index of element i of the output in operand `which` (0: a, 1: b).
fn operand_index(i: u32, which: u32, offset: u32) -> u32 {
    var rem = i;
    var idx = i32(offset);
    for (var d = i32(p.ndim) - 1; d >= 0; d = d - 1) {
        let size = layout_info[u32(d)];
        let k = rem % size;
        rem = rem / size;
        idx = idx + i32(k) * bitcast<i32>(layout_info[8u + 8u * which + u32(d)]);
    }
    return u32(idx);
}

// out[i] = f(a[...]) reading a through its strides (a copy when op is IDENTITY)
@compute @workgroup_size(64)
fn unary_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = linear_index(gid);
    let e = out_elements(t);
    if (e.y == 0u) { return; }
    var v = vec2<f32>(0.0);
    for (var j = 0u; j < e.y; j++) {
        v[j] = unary_fwd(p.op, a_at(operand_index(e.x + j, 0u, p.a_offset)), p.alpha, p.beta);
    }
    store_out(t, v, e.y);
}

// out[i] = f(a[...], b[...]) with broadcasting through strides
@compute @workgroup_size(64)
fn binary_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = linear_index(gid);
    let e = out_elements(t);
    if (e.y == 0u) { return; }
    var v = vec2<f32>(0.0);
    for (var j = 0u; j < e.y; j++) {
        let i = e.x + j;
        v[j] = binary(p.op, a_at(operand_index(i, 0u, p.a_offset)), b_at(operand_index(i, 1u, p.b_offset)));
    }
    store_out(t, v, e.y);
}

// where(cond, a, b): a where the condition is set, else b (never arithmetic, so inf and NaN
// in the unpicked operand stay out), with a and b broadcast through strides
@compute @workgroup_size(64)
fn select_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_index(gid);
    if (i >= p.n) { return; }
    let x = a[operand_index(i, 0u, p.a_offset)];
    let y = b[operand_index(i, 1u, p.b_offset)];
    out[i] = select(y, x, aux[i] != 0.0);
}

// the backward of a unary op: out[i] = g * f'(x) by the table's rule, from x (in a), the
// output y and g (in b), all contiguous; y is in aux, or (p.ndim == 1) it is x itself: the
// backward of an activation fused into a matrix product, which keeps only its output, and
// whose rule reads x only through x > 0 (true exactly where y > 0)
@compute @workgroup_size(64)
fn unary_backward_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = linear_index(gid);
    let e = out_elements(t);
    if (e.y == 0u) { return; }
    var v = vec2<f32>(0.0);
    for (var j = 0u; j < e.y; j++) {
        let i = e.x + j;
        let x = a_at(p.a_offset + i);
        let g = b_at(p.b_offset + i);
        var y = x;
        if (p.ndim != 1u) { y = y_at(i); }
        v[j] = unary_grad(p.op, x, y, g, p.alpha, p.beta);
    }
    store_out(t, v, e.y);
}
