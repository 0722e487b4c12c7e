// Sliding windows over an (n, c, h, w) input: unfold (im2col) writes each output position's
// window as one row of an (n * oh * ow, c * kh * kw) matrix, channel slowest, then kernel row
// and column; fold (col2im) is its adjoint, summing a gradient of that shape back into the
// input's shape. Entries in the padding ring read pad_value, those past it outside (the last
// windows of ceil_mode pooling). fold runs one thread per input element, summing the window
// entries that read it in a fixed order: no atomics, the same sum every time.

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
        let num_y = i32(y + p.ph) - i32(i * p.dh);
        if (num_y < 0 || num_y % i32(p.sh) != 0) { continue; }
        let oy = u32(num_y) / p.sh;
        if (oy >= p.oh) { continue; }
        for (var j = 0u; j < p.kw; j++) {
            let num_x = i32(xx + p.pw) - i32(j * p.dw);
            if (num_x < 0 || num_x % i32(p.sw) != 0) { continue; }
            let ox = u32(num_x) / p.sw;
            if (ox >= p.ow) { continue; }
            let r = (img * p.oh + oy) * p.ow + ox;
            acc += x[p.x_offset + r * cols + (ch * p.kh + i) * p.kw + j];
        }
    }
    out[t] = acc;
}
