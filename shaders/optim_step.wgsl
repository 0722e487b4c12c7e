// The optimizers' element updates, shared by optim.wgsl's per-tensor kernels and the
// multi-tensor kernels (generated in rust: backend/wgpu/shaders.rs), so both give the
// same bits.

// Adam (AdamW): the new (weight, first moment, second moment). `h`: beta1, beta2, eps,
// L2 weight decay; `k`: decoupled decay factor (1 - lr wd, or 1), lr / (1 - beta1^t),
// sqrt(1 - beta2^t), unused.
fn adam_step(w0: f32, g: f32, m0: f32, v0: f32, h: vec4<f32>, k: vec4<f32>) -> vec3<f32> {
    let d = g + h.w * w0;
    let w = w0 * k.x;
    let m = h.x * m0 + (1.0 - h.x) * d;
    let v = h.y * v0 + (1.0 - h.y) * d * d;
    return vec3<f32>(w - k.y * m / (sqrt(v) / k.z + h.z), m, v);
}

// Adam's `k` on the device (a gated step, mixed precision without a read-back): `k` holds
// (decay factor, lr, unused, the step count t the host made), and `skipped` the steps the
// scaler skipped on the device, which do not count (PyTorch's rule); the bias corrections
// are computed here in float32.
fn adam_device_k(h: vec4<f32>, k: vec4<f32>, skipped: f32) -> vec4<f32> {
    let t = k.w - skipped;
    // pow(0, t) is left open by WGSL (exp2 of t log2(0)); beta 0 has no correction
    let b1 = select(pow(h.x, t), 0.0, h.x == 0.0);
    let b2 = select(pow(h.y, t), 0.0, h.y == 0.0);
    return vec4<f32>(k.x, k.y / (1.0 - b1), sqrt(1.0 - b2), 0.0);
}

// SGD: the new (weight, momentum buffer). `h`: lr, momentum, 1 - dampening, L2 weight
// decay; `flags`: 1 momentum (else `buf0` is unused and returned as is), 2 the first step
// (the buffer starts as the gradient), 4 Nesterov.
fn sgd_step(w: f32, g: f32, buf0: f32, h: vec4<f32>, flags: u32) -> vec2<f32> {
    let d = g + h.w * w;
    var step = d;
    var buf = buf0;
    if ((flags & 1u) != 0u) {
        buf = d;
        if ((flags & 2u) == 0u) { buf = h.y * buf0 + h.z * d; }
        step = buf;
        if ((flags & 4u) != 0u) { step = d + h.y * buf; }
    }
    return vec2<f32>(w - h.x * step, buf);
}

// Adadelta (PyTorch's order): the new (weight, squared-gradient average, squared-step
// average). `h`: lr, rho, eps, L2 weight decay.
fn adadelta_step(w: f32, g: f32, sq0: f32, acc0: f32, h: vec4<f32>) -> vec3<f32> {
    let d = g + h.w * w;
    let sq = h.y * sq0 + (1.0 - h.y) * (d * d);
    let delta = sqrt(acc0 + h.z) / sqrt(sq + h.z) * d;
    let acc = h.y * acc0 + (1.0 - h.y) * (delta * delta);
    return vec3<f32>(w - h.x * delta, sq, acc);
}
