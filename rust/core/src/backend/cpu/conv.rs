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
