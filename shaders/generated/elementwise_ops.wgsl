// GENERATED from the op table in rust/core/src/ops/table.rs: edit the table, then run
// `FERROGRAD_BLESS=1 cargo test -p ferrograd-core --test shaders` (a test checks that
// this file matches the table).

// unary ops
const U_NEG: u32 = 0u;
const U_EXP: u32 = 1u;
const U_LOG: u32 = 2u;
const U_SQRT: u32 = 3u;
const U_ABS: u32 = 4u;
const U_TANH: u32 = 5u;
const U_SIGMOID: u32 = 6u;
const U_RELU: u32 = 7u;
const U_SELU: u32 = 8u;
const U_ELU: u32 = 9u;
const U_LEAKY_RELU: u32 = 10u;
const U_GELU_TANH: u32 = 11u;
const U_CLAMP: u32 = 12u;
const U_GELU: u32 = 13u;
const U_SIN: u32 = 20u;
const U_COS: u32 = 21u;
const U_TAN: u32 = 22u;
const U_ASIN: u32 = 23u;
const U_ACOS: u32 = 24u;
const U_ATAN: u32 = 25u;
const U_SINH: u32 = 26u;
const U_COSH: u32 = 27u;
const U_ASINH: u32 = 28u;
const U_ACOSH: u32 = 29u;
const U_ATANH: u32 = 30u;
const U_ERF: u32 = 31u;
const U_EXP2: u32 = 32u;
const U_LOG2: u32 = 33u;
const U_LOG10: u32 = 34u;
const U_LOG1P: u32 = 35u;
const U_EXPM1: u32 = 36u;
const U_FLOOR: u32 = 37u;
const U_CEIL: u32 = 38u;
const U_ROUND: u32 = 39u;
const U_TRUNC: u32 = 40u;
const U_FRAC: u32 = 41u;
const U_SOFTPLUS: u32 = 42u;
const U_SILU: u32 = 43u;
const U_MISH: u32 = 44u;
const U_HARDSWISH: u32 = 45u;
const U_HARDSIGMOID: u32 = 46u;
const U_RELU6: u32 = 47u;
const U_HARDTANH: u32 = 48u;
const U_LOGSIGMOID: u32 = 49u;
const U_SOFTSIGN: u32 = 50u;
const U_CELU: u32 = 51u;
const U_TRUTH: u32 = 60u;
const U_TO_HALF: u32 = 61u;
const U_TO_BFLOAT16: u32 = 62u;
const U_IDENTITY: u32 = 99u;

// binary ops
const B_ADD: u32 = 0u;
const B_SUB: u32 = 1u;
const B_MUL: u32 = 2u;
const B_DIV: u32 = 3u;
const B_POW: u32 = 4u;
const B_MAXIMUM: u32 = 5u;
const B_MINIMUM: u32 = 6u;
const B_EQ: u32 = 7u;
const B_NE: u32 = 8u;
const B_LT: u32 = 9u;
const B_LE: u32 = 10u;
const B_GT: u32 = 11u;
const B_GE: u32 = 12u;
const B_AND: u32 = 13u;
const B_OR: u32 = 14u;
const B_XOR: u32 = 15u;

// y = op(x); the identity for unknown codes (the strided copy)
fn unary_fwd(op: u32, x: f32, p0: f32, p1: f32) -> f32 {
    switch op {
        case U_NEG: { return -x; }
        case U_EXP: { return exp(x); }
        case U_LOG: { return log(x); }
        case U_SQRT: { return sqrt(x); }
        case U_ABS: { return abs(x); }
        case U_TANH: { return safe_tanh(x); }
        case U_SIGMOID: { return sigmoid(x); }
        case U_RELU: { return select(0.0, x, x > 0.0 || is_nan(x)); }
        case U_SELU: { return select(SELU_SCALE * SELU_ALPHA * (exp(x) - 1.0), SELU_SCALE * x, x > 0.0); }
        case U_ELU: { let alpha = p0; return select(alpha * (exp(x) - 1.0), x, x > 0.0); }
        case U_LEAKY_RELU: { let slope = p0; return select(slope * x, x, x > 0.0); }
        case U_GELU_TANH: { return 0.5 * x * (1.0 + safe_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
        case U_CLAMP: { let lo = p0; let hi = p1; return clamp_f(x, lo, hi); }
        case U_GELU: { return 0.5 * x * (1.0 + erf_f(x * 0.7071067811865476)); }
        case U_SIN: { return sin(x); }
        case U_COS: { return cos(x); }
        case U_TAN: { return tan(x); }
        case U_ASIN: { return asin_f(x); }
        case U_ACOS: { return acos_f(x); }
        case U_ATAN: { return atan_f(x); }
        case U_SINH: { return sinh_f(x); }
        case U_COSH: { return cosh_f(x); }
        case U_ASINH: { return asinh_f(x); }
        case U_ACOSH: { return acosh_f(x); }
        case U_ATANH: { return atanh_f(x); }
        case U_ERF: { return erf_f(x); }
        case U_EXP2: { return exp2(x); }
        case U_LOG2: { return log2(x); }
        case U_LOG10: { return log2(x) * 0.30102999566398120; }
        case U_LOG1P: { return log1p_f(x); }
        case U_EXPM1: { return expm1_f(x); }
        case U_FLOOR: { return floor(x); }
        case U_CEIL: { return ceil(x); }
        case U_ROUND: { return round(x); }
        case U_TRUNC: { return trunc(x); }
        case U_FRAC: { return x - trunc(x); }
        case U_SOFTPLUS: { let beta = p0; let threshold = p1; return softplus_f(x, beta, threshold); }
        case U_SILU: { return x * sigmoid(x); }
        case U_MISH: { return x * safe_tanh(softplus_f(x, 1.0, 20.0)); }
        case U_HARDSWISH: { return x * clamp_f(x + 3.0, 0.0, 6.0) / 6.0; }
        case U_HARDSIGMOID: { return clamp_f(x + 3.0, 0.0, 6.0) / 6.0; }
        case U_RELU6: { return clamp_f(x, 0.0, 6.0); }
        case U_HARDTANH: { let min_val = p0; let max_val = p1; return clamp_f(x, min_val, max_val); }
        case U_LOGSIGMOID: { return min(x, 0.0) - log1p_f(exp(-abs(x))); }
        case U_SOFTSIGN: { return x / (1.0 + abs(x)); }
        case U_CELU: { let alpha = p0; return select(alpha * expm1_f(x / alpha), x, x > 0.0); }
        case U_TRUTH: { return select(0.0, 1.0, truthy(x)); }
        case U_TO_HALF: { return round_f16(x); }
        case U_TO_BFLOAT16: { return round_bf16(x); }
        default: { return x; }
    }
}

// g * f'(x), from the input x, the output y and the incoming gradient g
fn unary_grad(op: u32, x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {
    switch op {
        case U_NEG: { return -g; }
        case U_EXP: { return g * y; }
        case U_LOG: { return g / x; }
        case U_SQRT: { return g / (y + y); }
        case U_ABS: { return select(select(0.0, -g, x < 0.0), g, x > 0.0); }
        case U_TANH: { return g * (1.0 - y * y); }
        case U_SIGMOID: { return g * y * (1.0 - y); }
        case U_RELU: { return select(0.0, g, x > 0.0); }
        case U_SELU: { return select(g * (y + SELU_SCALE * SELU_ALPHA), g * SELU_SCALE, x > 0.0); }
        case U_ELU: { let alpha = p0; return select(g * (y + alpha), g, x > 0.0); }
        case U_LEAKY_RELU: { let slope = p0; return select(g * slope, g, x > 0.0); }
        case U_GELU_TANH: { return g * gelu_tanh_grad(x); }
        case U_CLAMP: { let lo = p0; let hi = p1; return select(0.0, g, x >= lo && x <= hi); }
        case U_GELU: { return g * (0.5 * (1.0 + erf_f(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x)); }
        case U_SIN: { return g * cos(x); }
        case U_COS: { return -g * sin(x); }
        case U_TAN: { return g * (1.0 + y * y); }
        case U_ASIN: { return g / sqrt(1.0 - x * x); }
        case U_ACOS: { return -g / sqrt(1.0 - x * x); }
        case U_ATAN: { return g / (1.0 + x * x); }
        case U_SINH: { return g * cosh_f(x); }
        case U_COSH: { return g * sinh_f(x); }
        case U_ASINH: { return g / sqrt(x * x + 1.0); }
        case U_ACOSH: { return g / sqrt((x - 1.0) * (x + 1.0)); }
        case U_ATANH: { return g / (1.0 - x * x); }
        case U_ERF: { return g * 1.1283791670955126 * exp(-x * x); }
        case U_EXP2: { return g * y * 0.6931471805599453; }
        case U_LOG2: { return g / (x * 0.6931471805599453); }
        case U_LOG10: { return g / (x * 2.302585092994046); }
        case U_LOG1P: { return g / (x + 1.0); }
        case U_EXPM1: { return g * (y + 1.0); }
        case U_FLOOR: { return 0.0; }
        case U_CEIL: { return 0.0; }
        case U_ROUND: { return 0.0; }
        case U_TRUNC: { return 0.0; }
        case U_FRAC: { return g; }
        case U_SOFTPLUS: { let beta = p0; let threshold = p1; return select(g * sigmoid(x * beta), g, x * beta > threshold); }
        case U_SILU: { return g * sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x))); }
        case U_MISH: { return g * mish_grad(x); }
        case U_HARDSWISH: { return select(select(g, g * (x / 3.0 + 0.5), x < 3.0), 0.0, x <= -3.0); }
        case U_HARDSIGMOID: { return select(0.0, g / 6.0, x > -3.0 && x < 3.0); }
        case U_RELU6: { return select(g, 0.0, x <= 0.0 || x >= 6.0); }
        case U_HARDTANH: { let min_val = p0; let max_val = p1; return select(g, 0.0, x <= min_val || x >= max_val); }
        case U_LOGSIGMOID: { return g * sigmoid(-x); }
        case U_SOFTSIGN: { return g / ((1.0 + abs(x)) * (1.0 + abs(x))); }
        case U_CELU: { let alpha = p0; return select(g * exp(x / alpha), g, x > 0.0); }
        case U_TRUTH: { return 0.0; }
        case U_TO_HALF: { return g; }
        case U_TO_BFLOAT16: { return g; }
        default: { return g; }
    }
}

// a fusable activation (the matrix product's epilogue), as unary_fwd computes it
fn act_fwd(op: u32, x: f32, p0: f32) -> f32 {
    switch op {
        case U_TANH: { return safe_tanh(x); }
        case U_SIGMOID: { return sigmoid(x); }
        case U_RELU: { return select(0.0, x, x > 0.0 || is_nan(x)); }
        case U_SELU: { return select(SELU_SCALE * SELU_ALPHA * (exp(x) - 1.0), SELU_SCALE * x, x > 0.0); }
        case U_ELU: { let alpha = p0; return select(alpha * (exp(x) - 1.0), x, x > 0.0); }
        case U_LEAKY_RELU: { let slope = p0; return select(slope * x, x, x > 0.0); }
        default: { return x; }
    }
}

fn act_fwd4(op: u32, v: vec4<f32>, p0: f32) -> vec4<f32> {
    return vec4<f32>(act_fwd(op, v.x, p0), act_fwd(op, v.y, p0), act_fwd(op, v.z, p0), act_fwd(op, v.w, p0));
}
