// Adam's (AdamW's) update of one element, shared by optim.wgsl's per-tensor kernel and the
// multi-tensor kernel (rust: backend/wgpu/ops/optim.rs), so both give the same bits.
// Returns the new (weight, first moment, second moment). `h`: beta1, beta2, eps, L2 weight
// decay; `k`: decoupled decay factor (1 - lr wd, or 1), lr / (1 - beta1^t),
// sqrt(1 - beta2^t), unused.
fn adam_step(w0: f32, g: f32, m0: f32, v0: f32, h: vec4<f32>, k: vec4<f32>) -> vec3<f32> {
    let d = g + h.w * w0;
    let w = w0 * k.x;
    let m = h.x * m0 + (1.0 - h.x) * d;
    let v = h.y * v0 + (1.0 - h.y) * d * d;
    return vec3<f32>(w - k.y * m / (sqrt(v) / k.z + h.z), m, v);
}
