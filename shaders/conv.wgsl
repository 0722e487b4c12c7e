// Sliding windows over an (n, c, h, w) input: unfold (im2col) writes each output position's
// window as one row of an (n * oh * ow, c * kh * kw) matrix, channel slowest, then kernel row
// and column; fold (col2im) is its adjoint, summing a gradient of that shape back into the
// input's shape. Entries in the padding ring read pad_value, those past it outside (the last
// windows of ceil_mode pooling). fold runs one thread per input element, summing the window
// entries that read it in a fixed order: no atomics, the same sum every time. Max pooling
// takes each channel's windows on their own (`c` is the input's channels) and keeps the
// in-plane offset of each maximum for its backward, which gathers the same way fold does.

struct Params {
    n: u32, c: u32, h: u32, w: u32,
    kh: u32, kw: u32, sh: u32, sw: u32,
    ph: u32, pw: u32, dh: u32, dw: u32,
    oh: u32, ow: u32, total: u32, row: u32,
    x_offset: u32, _pad: u32, pad_value: f32, outside: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> x: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
// max pooling: the offsets of the maxima (forward, written; backward, read)
@group(0) @binding(5) var<storage, read_write> arg_out: array<f32>;
@group(2) @binding(2) var<storage, read> arg: array<f32>;

@compute @workgroup_size(64)
fn unfold_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.total) { return; }
    let cols = p.c * p.kh * p.kw;
    let k = t % cols;
    let r = t / cols;
    let j = k % p.kw;
    let i = (k / p.kw) % p.kh;
    let ch = k / (p.kw * p.kh);
    let ox = r % p.ow;
    let oy = (r / p.ow) % p.oh;
    let img = r / (p.ow * p.oh);
    let y = i32(oy * p.sh + i * p.dh) - i32(p.ph);
    let xx = i32(ox * p.sw + j * p.dw) - i32(p.pw);
    if (y >= 0 && xx >= 0 && y < i32(p.h) && xx < i32(p.w)) {
        out[t] = x[p.x_offset + ((img * p.c + ch) * p.h + u32(y)) * p.w + u32(xx)];
    } else if (y < i32(p.h + p.ph) && xx < i32(p.w + p.pw)) {
        out[t] = p.pad_value;
    } else {
        out[t] = p.outside;
    }
}

// The output position along one axis whose window reads input coordinate `v` with tap `k`
// (stride s, padding pad, dilation d, n outputs), or -1 when no window does.
fn window_at(v: u32, k: u32, s: u32, pad: u32, d: u32, n: u32) -> i32 {
    let num = i32(v + pad) - i32(k * d);
    if (num < 0 || num % i32(s) != 0) { return -1; }
    let o = u32(num) / s;
    return select(i32(o), -1, o >= n);
}

@compute @workgroup_size(64)
fn fold_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.total) { return; }
    let cols = p.c * p.kh * p.kw;
    let xx = t % p.w;
    let y = (t / p.w) % p.h;
    let ch = (t / (p.w * p.h)) % p.c;
    let img = t / (p.w * p.h * p.c);
    var acc = 0.0;
    for (var i = 0u; i < p.kh; i++) {
        let oy = window_at(y, i, p.sh, p.ph, p.dh, p.oh);
        if (oy < 0) { continue; }
        for (var j = 0u; j < p.kw; j++) {
            let ox = window_at(xx, j, p.sw, p.pw, p.dw, p.ow);
            if (ox < 0) { continue; }
            let r = (img * p.oh + u32(oy)) * p.ow + u32(ox);
            acc += x[p.x_offset + r * cols + (ch * p.kh + i) * p.kw + j];
        }
    }
    out[t] = acc;
}

// One thread per output: the window's first maximum over the taps inside the input (padding
// never wins, as PyTorch's -inf), a NaN at its first place; -1 where no tap is inside.
@compute @workgroup_size(64)
fn max_pool_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.total) { return; }
    let ox = t % p.ow;
    let oy = (t / p.ow) % p.oh;
    let plane = t / (p.ow * p.oh);
    let base = p.x_offset + plane * p.h * p.w;
    var best = 0.0;
    var at = -1;
    for (var i = 0u; i < p.kh; i++) {
        let y = i32(oy * p.sh + i * p.dh) - i32(p.ph);
        if (y < 0 || y >= i32(p.h)) { continue; }
        for (var j = 0u; j < p.kw; j++) {
            let xx = i32(ox * p.sw + j * p.dw) - i32(p.pw);
            if (xx < 0 || xx >= i32(p.w)) { continue; }
            let o = y * i32(p.w) + xx;
            let v = x[base + u32(o)];
            if (at < 0 || (!is_nan(best) && (v > best || is_nan(v)))) {
                best = v;
                at = o;
            }
        }
    }
    // no tap inside: `outside` (-inf for max pooling)
    out[t] = select(p.outside, best, at >= 0);
    arg_out[t] = f32(at);
}

// One thread per input element: the gradients of the windows whose maximum it was, in
// decreasing output order (the host adds in the same order).
@compute @workgroup_size(64)
fn max_unpool_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x + gid.y * p.row;
    if (t >= p.total) { return; }
    let xx = t % p.w;
    let y = (t / p.w) % p.h;
    let plane = t / (p.w * p.h);
    let here = f32(y * p.w + xx);
    var acc = 0.0;
    for (var i = 0u; i < p.kh; i++) {
        let oy = window_at(y, i, p.sh, p.ph, p.dh, p.oh);
        if (oy < 0) { continue; }
        for (var j = 0u; j < p.kw; j++) {
            let ox = window_at(xx, j, p.sw, p.pw, p.dw, p.ow);
            if (ox < 0) { continue; }
            let o = (plane * p.oh + u32(oy)) * p.ow + u32(ox);
            if (arg[o] == here) {
                acc += x[p.x_offset + o];
            }
        }
    }
    out[t] = acc;
}
