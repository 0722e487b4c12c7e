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
}

// unary ops
const NEG: u32 = 0u;
const EXP: u32 = 1u;
const LOG: u32 = 2u;
const SQRT: u32 = 3u;
const ABS: u32 = 4u;
const TANH: u32 = 5u;
const SIGMOID: u32 = 6u;
const RELU: u32 = 7u;
const SELU: u32 = 8u;
const ELU: u32 = 9u;
const LEAKY_RELU: u32 = 10u;
const GELU_TANH: u32 = 11u;
const CLAMP: u32 = 12u;
const GELU: u32 = 13u;
const IDENTITY: u32 = 99u;

// binary ops
const ADD: u32 = 0u;
const SUB: u32 = 1u;
const MUL: u32 = 2u;
const DIV: u32 = 3u;
const POW: u32 = 4u;
const MAXIMUM: u32 = 5u;
const MINIMUM: u32 = 6u;

const SELU_ALPHA: f32 = 1.6732632423543772;
const SELU_SCALE: f32 = 1.0507009873554805;

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> a: array<f32>;
@group(2) @binding(2) var<storage, read> b: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
// shape (8), then a's and b's strides (8 each, as i32 bit patterns: views may step
// backwards); unused dims hold 0
@group(2) @binding(4) var<storage, read> layout_info: array<u32>;
// where's condition as 0/1, contiguous in the output's shape (select_main only)
@group(0) @binding(5) var<storage, read_write> cond: array<f32>;

// NaN by its bits: WGSL lets a compiler assume floats are never NaN, so `x != x` and
// max/min may drop one; integer tests keep it, and NaN propagates as on the CPU.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// tanh that never overflows: exp of a large argument would give inf/inf = NaN on some drivers
fn safe_tanh(x: f32) -> f32 {
    if (is_nan(x)) { return x; }
    let ax = min(abs(x), 15.0);
    let e = exp(-2.0 * ax);
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}

fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit)
fn erf_approx(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
        t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
        t * (-0.82215223 + t * 0.17087277)))))))));
    return select(r - 1.0, 1.0 - r, x >= 0.0);
}

fn unary(op: u32, x: f32) -> f32 {
    switch op {
        case 0u: { return -x; }
        case 1u: { return exp(x); }
        case 2u: { return log(x); }
        case 3u: { return sqrt(x); }
        case 4u: { return abs(x); }
        case 5u: { return safe_tanh(x); }
        case 6u: { return sigmoid(x); }
        case 7u: { return select(0.0, x, x > 0.0 || is_nan(x)); }
        case 8u: { return select(SELU_SCALE * SELU_ALPHA * (exp(x) - 1.0), SELU_SCALE * x, x > 0.0); }
        case 9u: { return select(p.alpha * (exp(x) - 1.0), x, x > 0.0); }
        case 10u: { return select(p.alpha * x, x, x > 0.0); }
        case 11u: {
            return 0.5 * x * (1.0 + safe_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        }
        case 12u: {
            // PyTorch's min(max(x, lo), hi): lo > hi gives hi; a NaN bound gives NaN
            if (is_nan(p.alpha) || is_nan(p.beta)) { return bitcast<f32>(0x7fc00000u); }
            return select(min(max(x, p.alpha), p.beta), x, is_nan(x));
        }
        case 13u: { return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476)); }
        default: { return x; }
    }
}

// +-inf by its bits (a compiler may assume floats are finite, as for NaN)
fn is_inf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

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

// the truth value of a float as on the CPU: nonzero, NaN included; by its bits, so -0.0
// is false whatever the compiler assumes about NaN
fn truthy(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) != 0u;
}

// A float's order as an integer (sign times magnitude bits): comparisons through it are exact
// IEEE comparisons of non-NaN values (+0 == -0) even where the device flushes subnormals to
// zero, as WGSL allows and the H100's Vulkan driver does (1e-42 > 0 and 1e-42 != 0 are true
// on the CPU).
fn okey(x: f32) -> i32 {
    let m = bitcast<i32>(bitcast<u32>(x) & 0x7fffffffu);
    return select(m, -m, bitcast<u32>(x) >= 0x80000000u);
}

// 0-6 arithmetic (BinaryOp's order), 7-12 comparisons (CmpOp's order: ==, !=, <, <=, >,
// >=; anything against NaN is false but !=), 13-15 logical and, or, xor of truth values
fn binary(op: u32, x: f32, y: f32) -> f32 {
    let nan = is_nan(x) || is_nan(y);
    let kx = okey(x);
    let ky = okey(y);
    switch op {
        case 0u: { return x + y; }
        case 1u: { return x - y; }
        case 2u: { return x * y; }
        case 3u: { return x / y; }
        case 4u: { return pow_f(x, y); }
        case 5u: { return select(max(x, y), x + y, nan); }
        case 6u: { return select(min(x, y), x + y, nan); }
        case 7u: { return b2f(!nan && kx == ky); }
        case 8u: { return b2f(nan || kx != ky); }
        case 9u: { return b2f(!nan && kx < ky); }
        case 10u: { return b2f(!nan && kx <= ky); }
        case 11u: { return b2f(!nan && kx > ky); }
        case 12u: { return b2f(!nan && kx >= ky); }
        case 13u: { return b2f(truthy(x) && truthy(y)); }
        case 14u: { return b2f(truthy(x) || truthy(y)); }
        case 15u: { return b2f(truthy(x) != truthy(y)); }
        default: { return x; }
    }
}

fn linear_index(gid: vec3<u32>) -> u32 {
    return gid.x + gid.y * p.row;
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
    let i = linear_index(gid);
    if (i >= p.n) { return; }
    out[i] = unary(p.op, a[operand_index(i, 0u, p.a_offset)]);
}

// out[i] = f(a[...], b[...]) with broadcasting through strides
@compute @workgroup_size(64)
fn binary_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_index(gid);
    if (i >= p.n) { return; }
    out[i] = binary(p.op, a[operand_index(i, 0u, p.a_offset)], b[operand_index(i, 1u, p.b_offset)]);
}

// where(cond, a, b): a where the condition is set, else b (never arithmetic, so inf and NaN
// in the unpicked operand stay out), with a and b broadcast through strides
@compute @workgroup_size(64)
fn select_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_index(gid);
    if (i >= p.n) { return; }
    let x = a[operand_index(i, 0u, p.a_offset)];
    let y = b[operand_index(i, 1u, p.b_offset)];
    out[i] = select(y, x, cond[i] != 0.0);
}

// the backward of a unary op: out[i] = g[i] * f'(x[i]) (x in a, g in b)
@compute @workgroup_size(64)
fn unary_backward_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = linear_index(gid);
    if (i >= p.n) { return; }
    let x = a[p.a_offset + i];
    let g = b[p.b_offset + i];
    var d = 1.0;
    switch p.op {
        case 0u: { d = -1.0; }
        case 1u: { d = exp(x); }
        case 2u: { d = 1.0 / x; }
        case 3u: { d = 0.5 / sqrt(x); }
        case 4u: { d = sign(x); }
        case 5u: { let t = safe_tanh(x); d = 1.0 - t * t; }
        case 6u: { let s = sigmoid(x); d = s * (1.0 - s); }
        case 7u: { d = select(0.0, 1.0, x > 0.0); }
        case 8u: { d = select(SELU_SCALE * SELU_ALPHA * exp(x), SELU_SCALE, x > 0.0); }
        case 9u: { d = select(p.alpha * exp(x), 1.0, x > 0.0); }
        case 10u: { d = select(p.alpha, 1.0, x > 0.0); }
        case 11u: {
            let k = 0.7978845608028654;
            let t = safe_tanh(k * (x + 0.044715 * x * x * x));
            d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
        }
        case 12u: { d = select(0.0, 1.0, x >= p.alpha && x <= p.beta); }
        case 13u: {
            d = 0.5 * (1.0 + erf_approx(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x);
        }
        // selu from its output y (in a): scale where y > 0, else y + scale alpha (the
        // backward of a matmul with a fused selu epilogue, which keeps only y)
        case 14u: { d = select(x + SELU_SCALE * SELU_ALPHA, SELU_SCALE, x > 0.0); }
        // from the output y (in a) of an activation fused into a matrix product:
        // tanh, sigmoid, elu with alpha
        case 15u: { d = 1.0 - x * x; }
        case 16u: { d = x * (1.0 - x); }
        case 17u: { d = select(x + p.alpha, 1.0, x > 0.0); }
        default: { d = 1.0; }
    }
    out[i] = g * d;
}
