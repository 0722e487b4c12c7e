//! Sliding windows on the host: unfold2d (im2col) and its adjoint fold2d (col2im), one
//! output row (or one image) per task across the thread pool.

use super::{contig, matmul};
use crate::backend::{Tap, Window2d};
use crate::dtype::Float;
use crate::error::Result;
use crate::layout::Layout;
use crate::storage::{try_filled, try_vec};
use crate::threads;
use std::mem::MaybeUninit;

/// `f(k, chunk k)` over the `size`-element chunks of `out`, on the library's threads when
/// the work is large enough to pay for them.
fn each_chunk<T: Send>(out: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    // four work items per thread, claimed as threads come free, to even out the tail
    let parts = if out.len() < (1 << 15) {
        1
    } else {
        4 * threads::num_threads()
    };
    threads::for_each_chunk(out, size, parts, f);
}

/// For each kernel offset of one axis at output position o: the input coordinate, or
/// where it falls instead (`Tap::Pad` / `Tap::Outside`, with a dummy index).
fn axis_taps(o: usize, k: usize, s: usize, p: usize, d: usize, size: usize, out: &mut Vec<Tap>) {
    out.clear();
    for i in 0..k {
        let v = (o * s + i * d) as isize - p as isize;
        out.push(if v >= 0 && (v as usize) < size {
            Tap::In(v as usize)
        } else if v < (size + p) as isize {
            Tap::Pad
        } else {
            Tap::Outside
        });
    }
}

/// The first input column when a window's column taps are one contiguous run inside the
/// input (dilation 1, no padding reached): the common case, copied as slices.
#[inline(always)]
fn interior_run(tx: &[Tap], dw: usize) -> Option<usize> {
    if dw != 1 || !tx.iter().all(|t| matches!(t, Tap::In(_))) {
        return None;
    }
    match tx.first() {
        Some(Tap::In(x0)) => Some(*x0),
        _ => None,
    }
}

/// The value of a window entry whose row and column taps are `ty`, `tx` (`row` the input
/// row's offset when both are inside).
#[inline(always)]
fn pick<T: Copy>(x: &[T], row: usize, ty: Tap, tx: Tap, pad: T, outside: T) -> T {
    match (ty, tx) {
        (Tap::In(_), Tap::In(c)) => x[row + c],
        (Tap::Outside, _) | (_, Tap::Outside) => outside,
        _ => pad,
    }
}

/// The column taps of every output column, `kw` each, and the first input column of
/// each one whose taps are one contiguous run inside the input (`interior_run`).
fn column_taps(win: &Window2d) -> (Vec<Tap>, Vec<Option<usize>>) {
    let mut all = Vec::with_capacity(win.ow * win.kw);
    let mut runs = Vec::with_capacity(win.ow);
    let mut tx = Vec::with_capacity(win.kw);
    for ox in 0..win.ow {
        axis_taps(ox, win.kw, win.sw, win.pw, win.dw, win.w, &mut tx);
        runs.push(interior_run(&tx, win.dw));
        all.extend_from_slice(&tx);
    }
    (all, runs)
}

/// `dst = src[..dst.len()]` for the short runs of a kernel row: a constant-length copy for
/// the common widths (a slice copy of a run-time length is a call to memcpy, which cost
/// more than the 3 elements it moved).
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    #[inline(always)]
    fn fixed<T: Copy, const K: usize>(dst: &mut [MaybeUninit<T>], src: &[T]) {
        let d: &mut [MaybeUninit<T>; K] = (&mut dst[..K]).try_into().expect("K elements");
        let s: &[T; K] = src[..K].try_into().expect("K elements");
        for k in 0..K {
            d[k].write(s[k]);
        }
    }
    match dst.len() {
        1 => _ = dst[0].write(src[0]),
        2 => fixed::<T, 2>(dst, src),
        3 => fixed::<T, 3>(dst, src),
        4 => fixed::<T, 4>(dst, src),
        5 => fixed::<T, 5>(dst, src),
        7 => fixed::<T, 7>(dst, src),
        _ => dst.iter_mut().zip(src).for_each(|(d, &v)| _ = d.write(v)),
    }
}

/// `dst += src` elementwise for the short runs of a kernel row (see `copy_run`).
#[inline(always)]
fn add_run<T: Float>(dst: &mut [T], src: &[T]) {
    #[inline(always)]
    fn fixed<T: Float, const K: usize>(dst: &mut [T], src: &[T]) {
        let d: &mut [T; K] = (&mut dst[..K]).try_into().expect("K elements");
        let s: &[T; K] = src[..K].try_into().expect("K elements");
        for k in 0..K {
            d[k] += s[k];
        }
    }
    match dst.len() {
        1 => dst[0] += src[0],
        2 => fixed::<T, 2>(dst, src),
        3 => fixed::<T, 3>(dst, src),
        4 => fixed::<T, 4>(dst, src),
        5 => fixed::<T, 5>(dst, src),
        7 => fixed::<T, 7>(dst, src),
        _ => dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v),
    }
}

/// The column taps of a window (`column_taps`) and the fill values, shared by the rows of
/// one unfold or fold.
struct Columns<T> {
    taps: Vec<Tap>,
    runs: Vec<Option<usize>>,
    pad: T,
    outside: T,
}

impl<T: Float> Columns<T> {
    fn new(win: &Window2d) -> Self {
        let (taps, runs) = column_taps(win);
        Columns {
            taps,
            runs,
            pad: T::from_f64(win.pad_value),
            outside: T::from_f64(win.outside),
        }
    }
}

/// Writes row block `r` (image r / oh, output row r % oh) of the unfolded matrix: ow rows
/// of c * kh * kw entries, every one of them.
fn unfold_row<T: Float>(
    x: &[T],
    win: &Window2d,
    cs: &Columns<T>,
    r: usize,
    chunk: &mut [MaybeUninit<T>],
) {
    let (n, oy, kw, cols) = (r / win.oh, r % win.oh, win.kw, win.cols());
    let (pad, outside) = (cs.pad, cs.outside);
    let mut ty = Vec::with_capacity(win.kh);
    axis_taps(oy, win.kh, win.sh, win.ph, win.dh, win.h, &mut ty);
    for (ox, (dst, tx)) in chunk
        .chunks_exact_mut(cols)
        .zip(cs.taps.chunks_exact(kw))
        .enumerate()
    {
        if let Some(x0) = cs.runs[ox] {
            // the window's columns are one run of the input row: copied, not picked
            for (c, seg) in dst.chunks_exact_mut(win.kh * kw).enumerate() {
                let plane = (n * win.c + c) * win.h;
                for (&yi, part) in ty.iter().zip(seg.chunks_exact_mut(kw)) {
                    match yi {
                        Tap::In(y) => copy_run(part, &x[(plane + y) * win.w + x0..]),
                        Tap::Pad => part.iter_mut().for_each(|d| _ = d.write(pad)),
                        Tap::Outside => part.iter_mut().for_each(|d| _ = d.write(outside)),
                    }
                }
            }
            continue;
        }
        let mut k = 0;
        for c in 0..win.c {
            let plane = (n * win.c + c) * win.h;
            for &yi in &ty {
                let row = match yi {
                    Tap::In(y) => (plane + y) * win.w,
                    _ => 0,
                };
                for &xj in tx {
                    dst[k].write(pick(x, row, yi, xj, pad, outside));
                    k += 1;
                }
            }
        }
    }
}

pub(super) fn unfold2d<T: Float>(v: &[T], l: &Layout, win: &Window2d) -> Result<Vec<T>> {
    let x = contig(v, l)?;
    let total = win.rows() * win.cols();
    // written once, without a zero fill first: the matrix is the largest buffer of a
    // convolution (42 MB for the MNIST CNN's second layer), and filling it cost as much
    // as writing it
    let mut out: Vec<T> = try_vec(total)?;
    if total == 0 {
        return Ok(out);
    }
    let cs = Columns::new(win);
    // one chunk per (image, output row): ow rows of the matrix
    each_chunk(
        &mut out.spare_capacity_mut()[..total],
        win.ow * win.cols(),
        |r, chunk| unfold_row(&x, win, &cs, r, chunk),
    );
    // SAFETY: the chunks cover all `total` elements and unfold_row writes each
    unsafe { out.set_len(total) };
    Ok(out)
}

/// Adds the (oh * ow, c * kh * kw) window gradients `rows` of one image into its (c, h, w)
/// gradient `img` (col2im).
fn fold_image<T: Float>(rows: &[T], win: &Window2d, cs: &Columns<T>, img: &mut [T]) {
    let (kw, cols) = (win.kw, win.cols());
    let mut ty = Vec::with_capacity(win.kh);
    for oy in 0..win.oh {
        axis_taps(oy, win.kh, win.sh, win.ph, win.dh, win.h, &mut ty);
        let block = &rows[oy * win.ow * cols..][..win.ow * cols];
        for (ox, (src, tx)) in block
            .chunks_exact(cols)
            .zip(cs.taps.chunks_exact(kw))
            .enumerate()
        {
            if let Some(x0) = cs.runs[ox] {
                for (c, seg) in src.chunks_exact(win.kh * kw).enumerate() {
                    for (&yi, part) in ty.iter().zip(seg.chunks_exact(kw)) {
                        if let Tap::In(y) = yi {
                            let row = (c * win.h + y) * win.w + x0;
                            add_run(&mut img[row..row + kw], part);
                        }
                    }
                }
                continue;
            }
            let mut k = 0;
            for c in 0..win.c {
                for &yi in &ty {
                    for &xj in tx {
                        if let (Tap::In(y), Tap::In(xx)) = (yi, xj) {
                            img[(c * win.h + y) * win.w + xx] += src[k];
                        }
                        k += 1;
                    }
                }
            }
        }
    }
}

pub(super) fn fold2d<T: Float>(g: &[T], l: &Layout, win: &Window2d) -> Result<Vec<T>> {
    let gv = contig(g, l)?;
    let plane = win.c * win.h * win.w;
    let mut out: Vec<T> = try_filled(win.n * plane, T::zero())?;
    if out.is_empty() {
        return Ok(out);
    }
    let cs = Columns::new(win);
    let per_image = win.oh * win.ow * win.cols();
    // one image per task: its windows add into its own (c, h, w) block only
    each_chunk(&mut out, plane, |n, img| {
        fold_image(&gv[n * per_image..][..per_image], win, &cs, img)
    });
    Ok(out)
}

/// For one kernel tap of one axis: the output positions whose tap lands inside the input,
/// [lo, hi), and the input coordinate at `lo` (then every `s`).
fn tap_span(
    k: usize,
    o: usize,
    s: usize,
    p: usize,
    d: usize,
    size: usize,
) -> (usize, usize, usize) {
    let off = (k * d) as isize - p as isize; // input coordinate at output 0
    let lo = if off >= 0 {
        0
    } else {
        ((-off) as usize).div_ceil(s)
    };
    let hi = if (size as isize) <= off {
        0
    } else {
        (((size as isize - off) as usize).div_ceil(s)).min(o)
    };
    let lo = lo.min(hi);
    (lo, hi, (off + (lo * s) as isize).max(0) as usize)
}

/// One run of an image's transposed windows (see `unfold_image_t`): window row `k` (tap
/// (c, i, j)) at output row `oy` reads input row `y` of channel `c` from column `x0`, every
/// `sw` columns, for the output columns `lo..hi` of that row (the rest read padding).
struct Run {
    k: usize,
    c: usize,
    oy: usize,
    y: usize,
    lo: usize,
    hi: usize,
    x0: usize,
}

/// `f` for each run of one image's transposed windows that reads the input, window row by
/// window row.
fn each_run(win: &Window2d, mut f: impl FnMut(&Run)) {
    let mut k = 0;
    for c in 0..win.c {
        for i in 0..win.kh {
            let (y_lo, y_hi, y0) = tap_span(i, win.oh, win.sh, win.ph, win.dh, win.h);
            for j in 0..win.kw {
                let (lo, hi, x0) = tap_span(j, win.ow, win.sw, win.pw, win.dw, win.w);
                for oy in y_lo..y_hi {
                    let y = y0 + (oy - y_lo) * win.sh;
                    f(&Run {
                        k,
                        c,
                        oy,
                        y,
                        lo,
                        hi,
                        x0,
                    });
                }
                k += 1;
            }
        }
    }
}

/// The windows of image `n` transposed, as PyTorch's im2col lays them out: a (c * kh * kw,
/// oh * ow) matrix whose row for tap (c, i, j) is that tap of every output position. With
/// stride 1 each output row's run is one slice of an input row: long copies, where the
/// (oh * ow, c * kh * kw) layout copies kw elements at a time.
fn unfold_image_t<T: Float>(x: &[T], win: &Window2d, n: usize, buf: &mut Vec<T>) -> Result<()> {
    let (rows, len) = (win.oh * win.ow, win.oh * win.ow * win.cols());
    // a convolution's windows have no `outside` taps (no ceil_mode): padding or input
    let pad = T::from_f64(win.pad_value);
    buf.clear();
    buf.try_reserve_exact(len)
        .map_err(|_| crate::storage::oom(len, std::mem::size_of::<T>()))?;
    buf.resize(len, pad);
    let image = &x[n * win.c * win.h * win.w..][..win.c * win.h * win.w];
    each_run(win, |r| {
        let src = &image[(r.c * win.h + r.y) * win.w..][..win.w];
        let dst = &mut buf[r.k * rows + r.oy * win.ow..][r.lo..r.hi];
        if win.sw == 1 {
            dst.copy_from_slice(&src[r.x0..r.x0 + dst.len()]);
        } else {
            for (d, &v) in dst.iter_mut().zip(src[r.x0..].iter().step_by(win.sw)) {
                *d = v;
            }
        }
    });
    Ok(())
}

/// `unfold_image_t`'s adjoint: the transposed window gradients `rows` (c * kh * kw, oh * ow)
/// of one image added into its (c, h, w) gradient `img`.
fn fold_image_t<T: Float>(rows: &[T], win: &Window2d, img: &mut [T]) {
    let per_row = win.oh * win.ow;
    each_run(win, |r| {
        let dst = &mut img[(r.c * win.h + r.y) * win.w..][..win.w];
        let src = &rows[r.k * per_row + r.oy * win.ow..][r.lo..r.hi];
        if win.sw == 1 {
            crate::kernels::add_assign(&mut dst[r.x0..r.x0 + src.len()], src);
        } else {
            for (d, &v) in dst[r.x0..].iter_mut().step_by(win.sw).zip(src) {
                *d += v;
            }
        }
    });
}

/// Images per partial weight gradient in `conv2d_grad`: a fixed grouping (not one per
/// thread), so the sums, and the bits, do not depend on the thread count.
const DW_GROUP: usize = 8;

/// A convolution on the host, image by image: the weight (oc, k) times each image's
/// transposed windows (k, oh * ow; unfold_image_t, which stays in cache: the whole batch's
/// matrix was 42 MB for the MNIST CNN's second layer, written and read back from memory),
/// plus the bias: the (n, oc, oh, ow) output, each image's block written in place.
pub(super) fn conv2d<T: Float + 'static>(
    (x, l): (&[T], &Layout),
    (w, wl): (&[T], &Layout),
    bias: Option<(&[T], &Layout)>,
    win: &Window2d,
) -> Result<Vec<T>> {
    let (x, w) = (contig(x, l)?, contig(w, wl)?);
    let bias = bias.map(|(b, bl)| contig(b, bl)).transpose()?;
    let (oc, k, rows) = (w.len() / win.cols().max(1), win.cols(), win.oh * win.ow);
    let total = win.n * oc * rows;
    let mut out: Vec<T> = try_vec(total)?;
    if total == 0 {
        return Ok(out);
    }
    let failed = std::sync::Mutex::new(None);
    each_chunk(
        &mut out.spare_capacity_mut()[..total],
        rows * oc,
        |n, dst| {
            let mut buf = Vec::new();
            if let Err(e) = unfold_image_t(&x, win, n, &mut buf) {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                dst.iter_mut().for_each(|d| _ = d.write(T::zero()));
                return;
            }
            if let Some(b) = &bias {
                for (plane, &v) in dst.chunks_exact_mut(rows).zip(b.iter()) {
                    plane.iter_mut().for_each(|d| _ = d.write(v));
                }
            }
            // (oc x k) @ (k x rows): image n's (oc, oh, ow) block
            matmul::gemm_rows(
                (oc, rows, k),
                dst,
                bias.is_some(),
                (&w, k, 1),
                (&buf, rows, 1),
            );
        },
    );
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // SAFETY: each image's block was written (bias then the product, or zeros on error)
    unsafe { out.set_len(total) };
    Ok(out)
}

/// conv2d's backward on the host, image by image as the forward, from the (n, oc, oh, ow)
/// gradient g: dx (n, c, h, w), each image's transposed window gradients w^T g_n folded
/// back while in cache, and dw (oc, k), the sum over images of g_n windows_n, in fixed
/// groups of `DW_GROUP` images added in order.
pub(super) fn conv2d_grad<T: Float + 'static>(
    (x, l): (&[T], &Layout),
    (w, wl): (&[T], &Layout),
    (g, gl): (&[T], &Layout),
    win: &Window2d,
    (want_dx, want_dw): (bool, bool),
) -> Result<(Option<Vec<T>>, Option<Vec<T>>)> {
    let (x, w, g) = (contig(x, l)?, contig(w, wl)?, contig(g, gl)?);
    let (k, rows) = (win.cols(), win.oh * win.ow);
    let oc = w.len() / k.max(1);
    let zero_pad = Window2d {
        pad_value: 0.0,
        outside: 0.0,
        ..*win
    };
    let failed = std::sync::Mutex::new(None);
    let fail = |e| *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    let dx = if want_dx {
        let plane = win.c * win.h * win.w;
        let mut dx: Vec<T> = try_filled(win.n * plane, T::zero())?;
        each_chunk(&mut dx, plane, |n, img| {
            let mut buf: Vec<T> = Vec::new();
            if buf.try_reserve_exact(rows * k).is_err() {
                return fail(crate::storage::oom(rows * k, std::mem::size_of::<T>()));
            }
            // the window gradients transposed, (k x rows) = w^T g_n, then folded
            let gn = &g[n * rows * oc..][..rows * oc];
            let dst = &mut buf.spare_capacity_mut()[..rows * k];
            matmul::gemm_rows((k, rows, oc), dst, false, (&w, 1, k), (gn, rows, 1));
            // SAFETY: the product wrote all k * rows entries (read_dst false)
            unsafe { buf.set_len(rows * k) };
            fold_image_t(&buf, win, img);
        });
        Some(dx)
    } else {
        None
    };
    let dw = if want_dw {
        let groups = win.n.div_ceil(DW_GROUP);
        let mut parts: Vec<T> = try_filled(groups * oc * k, T::zero())?;
        each_chunk(&mut parts, oc * k, |grp, part| {
            let mut buf = Vec::new();
            for n in grp * DW_GROUP..((grp + 1) * DW_GROUP).min(win.n) {
                if let Err(e) = unfold_image_t(&x, &zero_pad, n, &mut buf) {
                    return fail(e);
                }
                let gn = &g[n * rows * oc..][..rows * oc];
                // SAFETY: MaybeUninit<T> has T's layout; `part` is initialized (zeros)
                let dst = unsafe { crate::kernels::as_out(part) };
                // dw += g_n (oc x rows) windows_n (rows x k, read from k x rows)
                matmul::gemm_rows((oc, k, rows), dst, true, (gn, rows, 1), (&buf, 1, rows));
            }
        });
        let mut dw = parts[..oc * k].to_vec();
        for part in parts.chunks_exact(oc * k).skip(1) {
            dw.iter_mut().zip(part).for_each(|(d, &v)| *d += v);
        }
        Some(dw)
    } else {
        None
    };
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok((dx, dw))
}

/// For each output position of one axis: the kernel taps that land inside the input, as
/// `(first tap, end tap, input coordinate of tap 0)` (the coordinate may be negative: the
/// taps before `first` read padding).
fn inside_taps(
    o: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    size: usize,
) -> (usize, usize, isize) {
    let start = (o * s) as isize - p as isize;
    let mut first = 0;
    while first < k && start + ((first * d) as isize) < 0 {
        first += 1;
    }
    let mut end = first;
    while end < k && start + ((end * d) as isize) < size as isize {
        end += 1;
    }
    (first, end, start)
}

/// Max pooling of each (h, w) plane: per output, the in-plane offset (y * w + x) of the
/// window's first maximum (NaN wins at its first place; only input elements compete, as
/// padding is -inf in PyTorch's definition), or -1 for a window that covers no input.
/// Returns (maxima, offsets), both (n, c, oh, ow).
pub(super) fn max_pool2d<T: Float>(
    v: &[T],
    l: &Layout,
    win: &Window2d,
) -> Result<(Vec<T>, Vec<i32>)> {
    if win.h * win.w > i32::MAX as usize {
        return Err(crate::error::Error::Memory(format!(
            "max_pool2d: a {}x{} plane exceeds 32-bit offsets",
            win.h, win.w
        )));
    }
    let x = contig(v, l)?;
    let (plane_in, plane_out) = (win.h * win.w, win.oh * win.ow);
    let rows: Vec<_> = (0..win.oh)
        .map(|o| inside_taps(o, win.kh, win.sh, win.ph, win.dh, win.h))
        .collect();
    let cols: Vec<_> = (0..win.ow)
        .map(|o| inside_taps(o, win.kw, win.sw, win.pw, win.dw, win.w))
        .collect();
    let total = win.n * win.c * plane_out;
    let mut arg: Vec<i32> = try_filled(total, -1)?;
    let mut vals: Vec<T> = try_filled(total, T::from_f64(f64::NEG_INFINITY))?;
    if total == 0 {
        return Ok((vals, arg));
    }
    let parts = if total < (1 << 15) {
        1
    } else {
        4 * threads::num_threads()
    };
    let (w, ow, dh, dw) = (win.w, win.ow, win.dh, win.dw);
    // each tap's offset from the window's first element, for the windows that lie wholly
    // inside the plane (all of them without padding)
    let taps: Vec<usize> = (0..win.kh)
        .flat_map(|i| (0..win.kw).map(move |j| i * dh * w + j * dw))
        .collect();
    let (full_i, full_j) = (win.kh, win.kw);
    threads::for_each_chunk2(
        (&mut vals, plane_out),
        (&mut arg, plane_out),
        parts,
        |plane, top, out| {
            let src = &x[plane * plane_in..(plane + 1) * plane_in];
            for (oy, &(i0, i1, y0)) in rows.iter().enumerate() {
                let (top, out) = (&mut top[oy * ow..][..ow], &mut out[oy * ow..][..ow]);
                for (ox, &(j0, j1, x0)) in cols.iter().enumerate() {
                    if i0 == i1 || j0 == j1 {
                        continue; // no tap inside: -inf, offset -1
                    }
                    let (best, at) = if i0 == 0 && j0 == 0 && i1 == full_i && j1 == full_j {
                        window_max(src, y0 as usize * w + x0 as usize, &taps)
                    } else {
                        let at = |i: usize, j: usize| {
                            (y0 + (i * dh) as isize) as usize * w
                                + (x0 + (j * dw) as isize) as usize
                        };
                        let edge: Vec<usize> = (i0..i1)
                            .flat_map(|i| (j0..j1).map(move |j| at(i, j)))
                            .collect();
                        window_max(src, 0, &edge)
                    };
                    top[ox] = best;
                    out[ox] = at as i32;
                }
            }
        },
    );
    Ok((vals, arg))
}

/// The first maximum of `src[base + t]` over the offsets `taps` (non-empty), a NaN at its
/// first place: (value, offset). The value first (a branch-free max that keeps NaN), then
/// the offset by a backward scan of compare-and-select: a running comparison branch
/// mispredicts half the time on real data.
#[inline(always)]
fn window_max<T: Float>(src: &[T], base: usize, taps: &[usize]) -> (T, usize) {
    let mut m = src[base + taps[0]];
    let mut nan = false;
    for &t in taps {
        let v = src[base + t];
        m = if v > m { v } else { m };
        nan |= v.is_nan();
    }
    let mut at = base + taps[0];
    for &t in taps.iter().rev() {
        let v = src[base + t];
        let hit = if nan { v.is_nan() } else { v == m };
        at = if hit { base + t } else { at };
    }
    (src[at], at)
}

/// max_pool2d's backward: each gradient entry (n, c, oh, ow, read through `l`) added to the
/// input element its window's maximum came from, in decreasing output order (the order in
/// which the GPU's per-element kernel meets the windows, so both give the same sums).
pub(super) fn max_pool2d_grad<T: Float>(
    g: &[T],
    l: &Layout,
    arg: &[i32],
    win: &Window2d,
) -> Result<Vec<T>> {
    let gv = contig(g, l)?;
    let (plane_in, plane_out) = (win.h * win.w, win.oh * win.ow);
    let mut out: Vec<T> = try_filled(win.n * win.c * plane_in, T::zero())?;
    if out.is_empty() {
        return Ok(out);
    }
    each_chunk(&mut out, plane_in, |plane, dx| {
        let at = plane * plane_out..(plane + 1) * plane_out;
        for (&a, &gi) in arg[at.clone()].iter().zip(&gv[at]).rev() {
            if a >= 0 {
                dx[a as usize] += gi;
            }
        }
    });
    Ok(out)
}
