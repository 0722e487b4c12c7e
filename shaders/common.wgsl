// The prelude every elementwise-style shader starts with (the Rust side and the wgpu-py
// harness prepend it): NaN/inf and ordering helpers, and the special functions the op
// table's formulas call (shaders/generated/elementwise_ops.wgsl).
//
// WGSL lets a compiler assume floats are never NaN or inf, so `x != x` and max/min may
// drop a NaN; these helpers test bits, and NaN propagates as on the CPU.

const SELU_ALPHA: f32 = 1.6732632423543772;
const SELU_SCALE: f32 = 1.0507009873554805;

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_inf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

// the truth value of a float as on the CPU: nonzero, NaN included; by its bits, so -0.0
// is false whatever the compiler assumes about NaN
// x rounded to the nearest float16 (ties to even), as a float32: float16 tensors on a GPU
// that stores float32 words. Past the largest half (65504 + half an ulp) it is inf; NaN
// and inf stay; the sign of zero is kept. Integer arithmetic on the bits, not
// pack2x16float, whose rounding WGSL leaves to the implementation.
fn round_f16(x: f32) -> f32 {
    let s = bitcast<u32>(x) & 0x80000000u;
    let b = bitcast<u32>(x) & 0x7fffffffu;
    if (b >= 0x7f800000u) { return x; }                       // inf, NaN
    if (b >= 0x477ff000u) { return bitcast<f32>(s | 0x7f800000u); }  // >= 65520: inf
    if (b >= 0x38800000u) {                                   // >= 2^-14: a normal half
        return bitcast<f32>(s | ((b + 0xfffu + ((b >> 13u) & 1u)) & 0xffffe000u));
    }
    // subnormal halves are the multiples of 2^-24; round() is ties-to-even in WGSL
    let q = round(bitcast<f32>(b) * 16777216.0) / 16777216.0;
    return bitcast<f32>(s | bitcast<u32>(q));
}

// x rounded to the nearest bfloat16 (ties to even), as a float32; NaN stays NaN.
fn round_bf16(x: f32) -> f32 {
    if (is_nan(x)) { return x; }
    let b = bitcast<u32>(x);
    return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);
}

fn truthy(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) != 0u;
}

fn nan_f() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}

// A float's order as an integer (sign times magnitude bits): comparisons through it are exact
// IEEE comparisons of non-NaN values (+0 == -0) even where the device flushes subnormals to
// zero, as WGSL allows and the H100's Vulkan driver does (1e-42 > 0 is true on the CPU).
fn okey(x: f32) -> i32 {
    let m = bitcast<i32>(bitcast<u32>(x) & 0x7fffffffu);
    return select(m, -m, bitcast<u32>(x) >= 0x80000000u);
}

// tanh that never overflows: exp of a large argument would give inf/inf = NaN on some drivers;
// near 0 its series, since 1 - e^-2x cancels (lavapipe gave tanh(1e-30) = 3e-8)
fn safe_tanh(x: f32) -> f32 {
    if (is_nan(x)) { return x; }
    if (abs(x) < 0.05) {
        let x2 = x * x;
        return x * (1.0 - x2 * (1.0 / 3.0 - x2 * (2.0 / 15.0)));
    }
    let ax = min(abs(x), 15.0);
    let e = exp(-2.0 * ax);
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}

fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit); near 0 its series,
// since 1 - erfc cancels there
fn erf_f(x: f32) -> f32 {
    if (abs(x) < 0.05) {
        let x2 = x * x;
        return 1.1283791670955126 * x * (1.0 - x2 * (1.0 / 3.0 - x2 * 0.1));
    }
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
        t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
        t * (-0.82215223 + t * 0.17087277)))))))));
    return select(r - 1.0, 1.0 - r, x >= 0.0);
}

// PyTorch's clamp, min(max(x, lo), hi): lo > hi gives hi; a NaN x or bound gives NaN
fn clamp_f(x: f32, lo: f32, hi: f32) -> f32 {
    if (is_nan(lo) || is_nan(hi) || is_nan(x)) { return nan_f(); }
    return min(max(x, lo), hi);
}

// log(1 + x) without cancellation near 0: its series below 1e-2 (the device's log is not
// exact enough for Kahan's trick alone), Kahan's trick above
fn log1p_f(x: f32) -> f32 {
    if (is_inf(x) && x > 0.0) { return x; }
    if (abs(x) < 0.01) {
        return x * (1.0 - x * (0.5 - x * (1.0 / 3.0 - x * 0.25)));
    }
    let u = 1.0 + x;
    if (u == 1.0) { return x; }
    return log(u) * x / (u - 1.0);
}

// e^x - 1 without cancellation near 0: its series below 1e-2, Kahan's method above, and
// plain e^x - 1 past 10 (where um1 * x would overflow first)
fn expm1_f(x: f32) -> f32 {
    if (abs(x) < 0.01) {
        return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0))));
    }
    if (x > 10.0) { return exp(x) - 1.0; }
    let u = exp(x);
    if (u == 1.0) { return x; }
    let um1 = u - 1.0;
    if (um1 == -1.0) { return -1.0; }
    return um1 * x / log(u);
}

// log(1 + e^(beta x)) / beta, x itself where beta x passes the threshold (PyTorch's)
fn softplus_f(x: f32, beta: f32, threshold: f32) -> f32 {
    return select(log1p_f(exp(x * beta)) / beta, x, x * beta > threshold);
}

// sinh and cosh: near 0 sinh's series ((e^x - e^-x) / 2 cancels); past 20, e^(|x| - ln 2),
// which stays finite where e^x itself would overflow (sinh(89) is 2.2e38)
fn sinh_f(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.05) {
        let x2 = x * x;
        return x * (1.0 + x2 * (1.0 / 6.0 + x2 * (1.0 / 120.0)));
    }
    var r: f32;
    if (a > 20.0) {
        r = exp(a - 0.6931471805599453);
    } else {
        let e = exp(a);
        r = 0.5 * (e - 1.0 / e);
    }
    return select(r, -r, x < 0.0);
}

fn cosh_f(x: f32) -> f32 {
    let a = abs(x);
    if (a > 20.0) { return exp(a - 0.6931471805599453); }
    let e = exp(a);
    return 0.5 * (e + 1.0 / e);
}

// atan with NaN kept (the builtin gave atan(NaN) = 0 on lavapipe)
fn atan_f(x: f32) -> f32 {
    if (is_nan(x)) { return x; }
    return atan(x);
}

// the inverse hyperbolic functions, NaN outside their domains (WGSL leaves that undefined)
fn asinh_f(x: f32) -> f32 {
    if (is_nan(x) || is_inf(x)) { return x; }
    let a = abs(x);
    // large |x|: log(2|x|), which x * x would overflow on the way to
    let r = select(log1p_f(a + a * a / (1.0 + sqrt(1.0 + a * a))), log(a) + 0.6931471805599453, a > 1e18);
    return select(r, -r, x < 0.0);
}

fn acosh_f(x: f32) -> f32 {
    if (is_nan(x) || x < 1.0) { return nan_f(); }
    if (is_inf(x)) { return x; }
    if (x > 1e18) { return log(x) + 0.6931471805599453; }
    return log(x + sqrt((x - 1.0) * (x + 1.0)));
}

fn atanh_f(x: f32) -> f32 {
    let a = abs(x);
    if (is_nan(x) || a > 1.0) { return nan_f(); }
    let r = 0.5 * log1p_f(2.0 * a / (1.0 - a));
    return select(r, -r, x < 0.0);
}

// asin and acos through atan2 (lavapipe's asin is off by 1e-4 near 0.7)
fn asin_f(x: f32) -> f32 {
    if (is_nan(x) || abs(x) > 1.0) { return nan_f(); }
    return atan2(x, sqrt((1.0 - x) * (1.0 + x)));
}

fn acos_f(x: f32) -> f32 {
    if (is_nan(x) || abs(x) > 1.0) { return nan_f(); }
    return atan2(sqrt((1.0 - x) * (1.0 + x)), x);
}

// d/dx of GELU's tanh approximation
fn gelu_tanh_grad(x: f32) -> f32 {
    let k = 0.7978845608028654;
    let t = safe_tanh(k * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
}

// d/dx of x tanh(softplus(x))
fn mish_grad(x: f32) -> f32 {
    let t = safe_tanh(softplus_f(x, 1.0, 20.0));
    return t + x * sigmoid(x) * (1.0 - t * t);
}

// The counter-based generator of the CPU (Philox4x32-10), so one seed gives one stream on
// either device (dropout masks, batch norm's fused dropout).
// 32 x 32 -> 64-bit product as (hi, lo), from 16-bit halves (WGSL has no mulhi)
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_hi = a_hi * b_hi;
    let cross = (lo_lo >> 16u) + (hi_lo & 0xffffu) + lo_hi;
    let hi = hi_hi + (hi_lo >> 16u) + (cross >> 16u);
    let lo = (cross << 16u) | (lo_lo & 0xffffu);
    return vec2<u32>(hi, lo);
}

fn philox(counter: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key_in;
    for (var round = 0u; round < 10u; round++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        if (round < 9u) {
            k = vec2<u32>(k.x + 0x9E3779B9u, k.y + 0xBB67AE85u);
        }
    }
    return c;
}

// u32 number start + i of the stream `seed` (seed and start as 32-bit halves): the 64-bit
// stream position, then its Philox block and lane.
fn stream_u32(seed_lo: u32, seed_hi: u32, start_lo: u32, start_hi: u32, i: u32) -> u32 {
    let lo = start_lo + i;
    let carry = select(0u, 1u, lo < i);
    let hi = start_hi + carry;
    let block_lo = (lo >> 2u) | (hi << 30u);
    let block_hi = hi >> 2u;
    let r = philox(vec4<u32>(block_lo, block_hi, 0u, 0u), vec2<u32>(seed_lo, seed_hi));
    let lane = lo & 3u;
    var u = r.x;
    if (lane == 1u) { u = r.y; }
    if (lane == 2u) { u = r.z; }
    if (lane == 3u) { u = r.w; }
    return u;
}

// The float32 bits of the half with bits h (float16 or bfloat16), exactly.
fn half_to_f32_bits(h: u32, bf: bool) -> u32 {
    if (bf) { return h << 16u; }
    let s = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 31u) { return s | 0x7f800000u | (m << 13u); }     // inf, NaN (payload kept)
    if (e != 0u) { return s | ((e + 112u) << 23u) | (m << 13u); }
    if (m == 0u) { return s; }                                 // +-0
    // subnormal: m * 2^-24, normalized (m < 2^10, so its top bit is below bit 10)
    let top = firstLeadingBit(m);                              // 0..9
    let exp = top + 103u;                                      // 2^(top - 24) biased
    return s | (exp << 23u) | ((m << (23u - top)) & 0x7fffffu);
}

// The half bits of float32 bits b, rounded to nearest, ties to even (float16 or bfloat16);
// NaN stays NaN (quiet), overflow goes to inf.
fn f32_bits_to_half(b: u32, bf: bool) -> u32 {
    let s = (b >> 16u) & 0x8000u;
    let mag = b & 0x7fffffffu;
    if (bf) {
        if (mag > 0x7f800000u) { return s | 0x7fc0u; }
        return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
    }
    if (mag > 0x7f800000u) { return s | 0x7e00u; }
    if (mag >= 0x477ff000u) { return s | 0x7c00u; }            // >= 65520 (and inf): inf
    if (mag >= 0x38800000u) {                                  // a normal half (>= 2^-14)
        let r = mag + 0xfffu + ((mag >> 13u) & 1u);            // may carry into the exponent
        return s | ((((r >> 23u) - 112u) << 10u) | ((r >> 13u) & 0x3ffu));
    }
    if (mag < 0x33000000u) { return s; }                       // below half the least: 0
    // subnormal half: the value in units of 2^-24, rounded to nearest even
    let e = mag >> 23u;                                        // 102..112
    let m = (mag & 0x7fffffu) | 0x800000u;                     // the significand, 24 bits
    let shift = 126u - e;                                      // 14..24
    let q = m >> shift;
    let rest = m & ((1u << shift) - 1u);
    let half_unit = 1u << (shift - 1u);
    let up = select(0u, 1u, rest > half_unit || (rest == half_unit && (q & 1u) == 1u));
    return s | (q + up);                                       // q + up <= 0x400: normal at the top
}

// Element i of a buffer of packed halves (code 1 float16, 2 bfloat16; element 2w in the low
// half of word w) from `word`, the buffer's word i / 2 as it reads it, exactly.
fn packed_half(word: f32, i: u32, code: u32) -> f32 {
    let w = bitcast<u32>(word);
    return bitcast<f32>(half_to_f32_bits(select(w & 0xffffu, w >> 16u, (i & 1u) == 1u), code == 2u));
}

// lo and hi rounded to the half `code` (1 float16, 2 bfloat16; ties to even) and packed
// into one word, lo in the low half.
fn packed_pair(lo: f32, hi: f32, code: u32) -> f32 {
    let bf = code == 2u;
    let h = f32_bits_to_half(bitcast<u32>(hi), bf);
    return bitcast<f32>(f32_bits_to_half(bitcast<u32>(lo), bf) | (h << 16u));
}
