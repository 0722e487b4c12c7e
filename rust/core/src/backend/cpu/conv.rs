//! Sliding windows on the host: unfold2d (im2col) and its adjoint fold2d (col2im), one
//! output row (or one image) per task across the thread pool.

use super::contig;
use crate::backend::{Tap, Window2d};
use crate::dtype::Float;
use crate::error::Result;
use crate::layout::Layout;
use crate::storage::try_filled;
use crate::threads;

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

pub(super) fn unfold2d<T: Float>(v: &[T], l: &Layout, win: &Window2d) -> Result<Vec<T>> {
    let x = contig(v, l)?;
    let cols = win.cols();
    let mut out: Vec<T> = try_filled(win.rows() * cols, T::zero())?;
    let (oh, ow) = (win.oh, win.ow);
    let pad = T::from_f64(win.pad_value);
    let outside = T::from_f64(win.outside);
    if out.is_empty() {
        return Ok(out);
    }
    // one chunk per (image, output row): ow rows of the matrix; the row and column taps are
    // computed once per chunk and per output column, not per entry
    each_chunk(&mut out, ow * cols, |r, chunk| {
        let (n, oy) = (r / oh, r % oh);
        let mut ty = Vec::with_capacity(win.kh);
        axis_taps(oy, win.kh, win.sh, win.ph, win.dh, win.h, &mut ty);
        let mut tx = Vec::with_capacity(win.kw);
        for ox in 0..ow {
            axis_taps(ox, win.kw, win.sw, win.pw, win.dw, win.w, &mut tx);
            let dst = &mut chunk[ox * cols..(ox + 1) * cols];
            let kw = win.kw;
            if let Some(x0) = interior_run(&tx, win.dw) {
                // the window's columns are one run of the input row: copied, not picked
                for (c, seg) in dst.chunks_exact_mut(win.kh * kw).enumerate() {
                    let plane = (n * win.c + c) * win.h;
                    for (&yi, part) in ty.iter().zip(seg.chunks_exact_mut(kw)) {
                        match yi {
                            Tap::In(y) => {
                                let row = (plane + y) * win.w + x0;
                                part.copy_from_slice(&x[row..row + kw]);
                            }
                            Tap::Pad => part.fill(pad),
                            Tap::Outside => part.fill(outside),
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
                    for &xj in &tx {
                        dst[k] = pick(&x, row, yi, xj, pad, outside);
                        k += 1;
                    }
                }
            }
        }
    });
    Ok(out)
}

pub(super) fn fold2d<T: Float>(g: &[T], l: &Layout, win: &Window2d) -> Result<Vec<T>> {
    let gv = contig(g, l)?;
    let cols = win.cols();
    let plane = win.c * win.h * win.w;
    let mut out: Vec<T> = try_filled(win.n * plane, T::zero())?;
    if out.is_empty() {
        return Ok(out);
    }
    // one image per task: its windows add into its own (c, h, w) block only
    each_chunk(&mut out, plane, |n, img| {
        let mut ty = Vec::with_capacity(win.kh);
        let mut tx = Vec::with_capacity(win.kw);
        for oy in 0..win.oh {
            axis_taps(oy, win.kh, win.sh, win.ph, win.dh, win.h, &mut ty);
            for ox in 0..win.ow {
                axis_taps(ox, win.kw, win.sw, win.pw, win.dw, win.w, &mut tx);
                let src = &gv[((n * win.oh + oy) * win.ow + ox) * cols..][..cols];
                let kw = win.kw;
                if let Some(x0) = interior_run(&tx, win.dw) {
                    for (c, seg) in src.chunks_exact(win.kh * kw).enumerate() {
                        for (&yi, part) in ty.iter().zip(seg.chunks_exact(kw)) {
                            if let Tap::In(y) = yi {
                                let row = (c * win.h + y) * win.w + x0;
                                for (d, &v) in img[row..row + kw].iter_mut().zip(part) {
                                    *d += v;
                                }
                            }
                        }
                    }
                    continue;
                }
                let mut k = 0;
                for c in 0..win.c {
                    for &yi in &ty {
                        for &xj in &tx {
                            if let (Tap::In(y), Tap::In(xx)) = (yi, xj) {
                                img[(c * win.h + y) * win.w + xx] += src[k];
                            }
                            k += 1;
                        }
                    }
                }
            }
        }
    });
    Ok(out)
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
