//! The host's fused network kernels: batch norm and cross-entropy, forward and backward.
//! Batch norm saves the GPU kernels' per-feature statistics; cross-entropy saves the
//! probabilities (the GPU saves each row's max and log-sum). One rule in `ops::nn` serves both.
//! Each is compiled for each SIMD level and picked at run time, as kernels.rs does.

use super::{contig, zeros};
use crate::backend::{BnSpec, XentGradSpec};
use crate::dtype::Float;
use crate::error::Result;
use crate::kernels;
use crate::layout::Layout;

/// y and the per-feature `[mean | invstd | scale | beta]` (see `BackendStorage::batch_norm`).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(super) fn batch_norm<T: Float>(
    (v, l): (&[T], &Layout),
    gamma: Option<(&[T], &Layout)>,
    beta: Option<(&[T], &Layout)>,
    running: Option<[&mut [T]; 2]>,
    residual: Option<(&[T], &Layout)>,
    spec: &BnSpec,
) -> Result<(Vec<T>, Vec<T>)> {
    let (n, c) = (spec.n, spec.c);
    let x = contig(v, l)?;
    let mut stats: Vec<T> = zeros(4 * c)?;
    let (mean, rest) = stats.split_at_mut(c);
    let (invstd, rest) = rest.split_at_mut(c);
    let (scale, beta_out) = rest.split_at_mut(c);
    match running {
        Some([rm, rv]) if !spec.batch_stats => {
            mean.copy_from_slice(rm);
            invstd.copy_from_slice(rv); // the variance, for now
        }
        running => {
            // two passes (mean, then centred squares) for accuracy, the mean summed from
            // the first row's offsets (a large common mean would otherwise swamp the
            // float32 sum); every loop runs along a row of features, so it vectorizes
            let first = &x[..c];
            for row in x.chunks_exact(c) {
                for ((m, &xv), &f) in mean.iter_mut().zip(row).zip(first) {
                    *m += xv - f;
                }
            }
            let inv_n = T::from_f64(1.0 / n as f64);
            mean.iter_mut()
                .zip(first)
                .for_each(|(m, &f)| *m = f + *m * inv_n);
            for row in x.chunks_exact(c) {
                for ((q, &xv), &m) in invstd.iter_mut().zip(row).zip(mean.iter()) {
                    let d = xv - m;
                    *q += d * d;
                }
            }
            invstd.iter_mut().for_each(|q| *q *= inv_n);
            if let (Some([rm, rv]), true) = (running, spec.update) {
                let m = T::from_f64(spec.momentum);
                let keep = T::one() - m;
                let unbias = T::from_f64(n as f64 / (n as f64 - 1.0));
                rm.iter_mut()
                    .zip(mean.iter())
                    .for_each(|(r, &b)| *r = keep * *r + m * b);
                rv.iter_mut()
                    .zip(invstd.iter())
                    .for_each(|(r, &b)| *r = keep * *r + m * b * unbias);
            }
        }
    }
    let eps = T::from_f64(spec.eps);
    invstd
        .iter_mut()
        .for_each(|q| *q = T::one() / (*q + eps).sqrt());
    let gamma = gamma.map(|(g, gl)| contig(g, gl)).transpose()?;
    let beta = beta.map(|(b, bl)| contig(b, bl)).transpose()?;
    for j in 0..c {
        scale[j] = gamma.as_ref().map_or(T::one(), |g| g[j]) * invstd[j];
        beta_out[j] = beta.as_ref().map_or(T::zero(), |b| b[j]);
    }
    let mut y: Vec<T> = crate::storage::try_vec(n * c)?;
    let relu = spec.relu;
    for (row, yr) in x
        .chunks_exact(c)
        .zip(y.spare_capacity_mut().chunks_exact_mut(c))
    {
        // (x - mean) scale + beta rather than x scale + shift: no cancellation when the
        // mean is large against the spread; relu keeps NaN
        let params = mean.iter().zip(scale.iter()).zip(beta_out.iter());
        for ((o, &xv), ((&m, &s), &bt)) in yr.iter_mut().zip(row).zip(params) {
            let v = (xv - m) * s + bt;
            o.write(if !relu || v > T::zero() || v.is_nan() {
                v
            } else {
                T::zero()
            });
        }
    }
    // SAFETY: the loop above wrote all n rows of c
    unsafe { y.set_len(n * c) };
    if let Some(mask) = &spec.drop {
        // dropout's y * a + 0, as the unfused kernel computes it; the mask is kept for the
        // backward at one bit an element, 8 to a value after the 4c statistics (whole
        // numbers below 256, exact in every float dtype), so it is drawn once
        let keep = T::from_f64(mask.keep_scale);
        let mut packed: Vec<T> = crate::storage::try_vec((n * c).div_ceil(8))?;
        let mut bits = [0u8; 32];
        // blocks of 256 (the last may be shorter): bytes never straddle two
        each_mask_block(mask, &mut y, |block, words| {
            let bits = &mut bits[..block.len().div_ceil(8)];
            kernels::mask_to_bits(block, words, mask.threshold, keep, bits);
            packed.extend(bits.iter().map(|&b| T::from_f64(b as f64)));
        });
        stats.extend_from_slice(&packed);
    }
    if let Some((r, rl)) = residual {
        // a residual block's `skip + y`, in that order as Residual adds it
        let r = contig(r, rl)?;
        y.iter_mut().zip(r.iter()).for_each(|(o, &s)| *o = s + *o);
    }
    Ok((y, stats))
}

/// Calls `f(block, words)` over blocks of `v` (at most 256 elements, in order) with the
/// mask stream's numbers for those elements (kept where a number is at least the threshold).
fn each_mask_block<T: Float>(
    mask: &crate::backend::MaskSpec,
    v: &mut [T],
    mut f: impl FnMut(&mut [T], &[u32]),
) {
    let mut raw = [0u32; 256];
    for (k, block) in v.chunks_mut(256).enumerate() {
        let len = block.len();
        crate::random::fill_u32(mask.seed, mask.start + (k * 256) as u64, &mut raw[..len]);
        f(block, &raw[..len]);
    }
}

/// (dx, dgamma, dbeta) of batch norm (see `BackendStorage::batch_norm_grad`).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(super) fn batch_norm_grad<T: Float>(
    (v, l): (&[T], &Layout),
    stats: &[T],
    (g, gl): (&[T], &Layout),
    spec: &BnSpec,
) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let (n, c) = (spec.n, spec.c);
    let x = contig(v, l)?;
    let g = contig(g, gl)?;
    let (mean, rest) = stats.split_at(c);
    let (invstd, rest) = rest.split_at(c);
    let (scale, beta) = rest.split_at(c);
    // the gradient of y, cut where a fused relu's output was not above 0 (recomputed from
    // x in both passes below rather than stored: one pass and one n x c buffer fewer)
    let relu = spec.relu;
    let cut = move |xv: T, gv: T, m: T, s: T, bt: T| {
        if !relu || (xv - m) * s + bt > T::zero() {
            gv
        } else {
            T::zero()
        }
    };
    // a fused dropout's factor first, as its own backward would (g * a), from the bits the
    // forward kept after the statistics
    let g: std::borrow::Cow<[T]> = match &spec.drop {
        Some(mask) if stats.len() >= 4 * c + (n * c).div_ceil(8) => {
            let keep = T::from_f64(mask.keep_scale);
            let saved = &stats[4 * c..];
            let mut ga: Vec<T> = crate::storage::try_vec(n * c)?;
            let mut bits = [0u8; 32];
            let out = ga.spare_capacity_mut()[..n * c].chunks_mut(256);
            for ((o, gb), bytes) in out.zip(g.chunks(256)).zip(saved.chunks(32)) {
                for (b, v) in bits.iter_mut().zip(bytes) {
                    *b = v.to_f64() as u8;
                }
                kernels::scale_by_bits(gb, &bits[..bytes.len()], keep, o);
            }
            // SAFETY: the blocks covered all n * c elements
            unsafe { ga.set_len(n * c) };
            ga.into()
        }
        Some(mask) => {
            // statistics without the bits: draw the mask again
            let mut ga = g.into_owned();
            let keep = T::from_f64(mask.keep_scale);
            each_mask_block(mask, &mut ga, |block, words| {
                for (v, &u) in block.iter_mut().zip(words) {
                    *v *= if u >= mask.threshold { keep } else { T::zero() };
                }
            });
            ga.into()
        }
        None => g,
    };
    let mut sum_g: Vec<T> = zeros(c)?;
    let mut sum_gx: Vec<T> = zeros(c)?;
    for (row, gr) in x.chunks_exact(c).zip(g.chunks_exact(c)) {
        // zipped, not indexed: no bounds checks, so the select vectorizes
        let params = mean.iter().zip(scale).zip(beta);
        let sums = sum_g.iter_mut().zip(sum_gx.iter_mut());
        for (((&xv, &gv), (sg, sx)), ((&m, &s), &bt)) in row.iter().zip(gr).zip(sums).zip(params) {
            let gm = cut(xv, gv, m, s, bt);
            *sg += gm;
            *sx += gm * (xv - m);
        }
    }
    // sum(g xhat), xhat = (x - mean) invstd, with invstd taken out of the loop
    sum_gx.iter_mut().zip(invstd).for_each(|(s, &q)| *s *= q);
    // dx = gamma invstd / n (n g - sum g - xhat sum(g xhat)) = a g + b (x - mean) + c with
    // batch statistics; with running ones they are constants and dx = a g
    let nn = T::from_f64(n as f64);
    let mut b: Vec<T> = zeros(c)?;
    let mut k: Vec<T> = zeros(c)?;
    if spec.batch_stats {
        for j in 0..c {
            let a_n = scale[j] / nn;
            b[j] = -a_n * invstd[j] * sum_gx[j];
            k[j] = -a_n * sum_g[j];
        }
    }
    let mut dx: Vec<T> = crate::storage::try_vec(n * c)?;
    for ((row, gr), d) in x
        .chunks_exact(c)
        .zip(g.chunks_exact(c))
        .zip(dx.spare_capacity_mut().chunks_exact_mut(c))
    {
        let params = mean.iter().zip(scale).zip(beta).zip(b.iter().zip(&k));
        for (((&xv, &gv), d), (((&m, &s), &bt), (&bj, &kj))) in
            row.iter().zip(gr).zip(d).zip(params)
        {
            d.write(s * cut(xv, gv, m, s, bt) + bj * (xv - m) + kj);
        }
    }
    // SAFETY: the loop above wrote all n rows of c
    unsafe { dx.set_len(n * c) };
    Ok((dx, sum_gx, sum_g))
}

/// Per-row losses and the softmax probabilities (rows, cols) for the backward.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(super) fn cross_entropy<T: Float>(
    (v, l): (&[T], &Layout),
    labels: &[i64],
    smoothing: f64,
) -> Result<(Vec<T>, Vec<T>)> {
    let (n, c) = (l.shape[0], l.shape[1]);
    let x = contig(v, l)?;
    let mut losses: Vec<T> = zeros(n)?;
    let mut probs: Vec<T> = zeros(n * c)?;
    let eps = T::from_f64(smoothing);
    for r in 0..n {
        let row = &x[r * c..(r + 1) * c];
        let m = kernels::max(row);
        let m = if m.to_f64().is_finite() { m } else { T::zero() };
        let pr = &mut probs[r * c..(r + 1) * c];
        // SAFETY: map writes only initialized values
        kernels::map(row, unsafe { kernels::as_out(pr) }, |z: T| (z - m).exp());
        let s = kernels::sum(pr);
        // lse = m + ln s, kept apart: with large logits m + ln s rounds ln s away
        let ln_s = s.ln();
        let inv = T::one() / s;
        pr.iter_mut().for_each(|p| *p *= inv);
        let y = labels[r] as usize;
        let mut loss = (T::one() - eps) * (ln_s - (row[y] - m));
        if smoothing > 0.0 {
            let mean_logp = (kernels::sum(row) / T::from_f64(c as f64) - m) - ln_s;
            loss -= eps * mean_logp;
        }
        losses[r] = loss;
    }
    Ok((losses, probs))
}

/// d loss / d logits (see `BackendStorage::cross_entropy_grad`), from the probabilities.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(super) fn cross_entropy_grad<T: Float>(
    l: &Layout,
    probs: &[T],
    labels: &[i64],
    (g, gl): (&[T], &Layout),
    spec: &XentGradSpec,
) -> Result<Vec<T>> {
    let (n, c) = (l.shape[0], l.shape[1]);
    let g = contig(g, gl)?;
    let on = T::from_f64(1.0 - spec.smoothing);
    let uni = T::from_f64(spec.smoothing / c as f64);
    let mut d: Vec<T> = zeros(n * c)?;
    d.copy_from_slice(probs);
    for r in 0..n {
        let gi = if spec.per_row { g[r] } else { g[0] } * T::from_f64(spec.scale);
        let row = &mut d[r * c..(r + 1) * c];
        row[labels[r] as usize] -= on;
        row.iter_mut().for_each(|v| *v = (*v - uni) * gi);
    }
    Ok(d)
}
