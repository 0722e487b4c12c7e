//! How the matmul kernel is chosen: the settings (kernel, tuning threshold, split-K), held
//! by each GPU context rather than in process-wide statics since what suits one adapter
//! need not suit another, and the autotuner that times the variants on a product.

use super::super::*;
use super::variants::{mm_kernel, MM_VARIANTS};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// (layout, m, n, k) of a tuned product.
pub(crate) type TuneKey = (usize, usize, usize, usize);
/// The chosen variant and each variant's seconds per product (NaN: rejected).
pub(crate) type TuneResult = (usize, Vec<(usize, f64)>);

/// The matmul driver's settings and what its tuner measured, one per GPU context.
pub struct MatmulSettings {
    /// `Some(i)`: always MM_VARIANTS[i]; `None` ("auto", the default): every variant is
    /// timed on the first product of each large shape and the fastest kept; smaller
    /// products take MM_VARIANTS[0]
    choice: Mutex<Option<usize>>,
    /// products of at least this many flops (2mnk, as f64 bits) are autotuned in "auto"
    /// mode; smaller ones take the default kernel (timing them would cost more than it
    /// saves). The default is a 1024-cube product.
    tune_min_flops: AtomicU64,
    /// the most parts a product's k may be split into (1: never). A 128-row batch gives a
    /// Standard layer's forward product 16 workgroups of 64x64: a few SMs of an H100's 132
    /// work through k = 784 while the rest idle. Splitting k gives each part its own
    /// workgroups; a second pass adds the parts (in a fixed order: the bits depend only on
    /// the shape).
    split_k_max: AtomicUsize,
    /// whether a split product's parts are summed by the workgroup that finishes a tile's
    /// last part (one dispatch) rather than by a second pass. On by default on Vulkan only:
    /// it needs device-scope barriers (naga's storageBarrier there), which Metal's and
    /// DirectX's translations do not give across workgroups.
    pub(crate) split_fixup: AtomicBool,
    /// each output tile's count of finished parts for `split_fixup` (made zero on first use;
    /// the last part sets its count back to zero)
    pub(crate) split_counts: std::sync::OnceLock<GpuBuffer>,
    /// what "auto" measured
    tuned: Mutex<HashMap<TuneKey, TuneResult>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MatmulSettings {
    /// The defaults, with `FERROGRAD_MATMUL_KERNEL` (a variant's name or "auto"; anything
    /// else keeps "auto") read once.
    /// `vulkan`: the adapter's API is Vulkan (turns `split_fixup` on).
    pub(crate) fn from_env(vulkan: bool) -> MatmulSettings {
        let named = std::env::var("FERROGRAD_MATMUL_KERNEL").ok();
        let choice = match named.as_deref() {
            Some(n) if n != "auto" => MM_VARIANTS.iter().position(|v| v.name == n),
            _ => None,
        };
        MatmulSettings {
            choice: Mutex::new(choice),
            tune_min_flops: AtomicU64::new(2_147_483_648f64.to_bits()),
            split_k_max: AtomicUsize::new(16),
            split_fixup: AtomicBool::new(vulkan),
            split_counts: std::sync::OnceLock::new(),
            tuned: Mutex::new(HashMap::new()),
        }
    }

    /// The variant for a product of `flops` in operand layout `layout`, timing the variants
    /// through `tune` when "auto" has not measured this shape yet.
    pub(crate) fn choose(
        &self,
        key: TuneKey,
        flops: f64,
        tune: impl FnOnce() -> Result<usize>,
    ) -> Result<usize> {
        if let Some(i) = *lock(&self.choice) {
            return Ok(i);
        }
        if flops < f64::from_bits(self.tune_min_flops.load(Ordering::Relaxed)) {
            return Ok(0);
        }
        let known = lock(&self.tuned).get(&key).map(|r| r.0);
        match known {
            Some(i) => Ok(i),
            None => tune(),
        }
    }

    /// The k chunk for a product with `tiles` workgroups and inner dimension `k` (`k`
    /// itself: no split). Split only when the tiles leave much of a large GPU idle (under
    /// 128; an H100 has 132 SMs, each able to hold several workgroups) and each part keeps
    /// at least 128 of k; aim at about 256 workgroups in all. Chunks are multiples of 16
    /// (every kernel's k-slice) so the parts' vec4 loads stay aligned.
    pub(crate) fn split_k_chunk(&self, tiles: usize, k: usize) -> usize {
        let most = self.split_k_max.load(Ordering::Relaxed);
        if most < 2 || tiles >= 128 || k < 256 {
            return k;
        }
        let splits = (256 / tiles).min(k / 128).min(most);
        if splits < 2 {
            return k;
        }
        let kc = k.div_ceil(splits).div_ceil(16) * 16;
        if kc >= k {
            k
        } else {
            kc
        }
    }
}

/// Sets the smallest product (in flops, 2mnk) that "auto" times on the GPU; smaller ones
/// take the default kernel.
pub fn set_matmul_tune_min_flops(flops: f64) -> Result<()> {
    if !(flops >= 0.0 && flops.is_finite()) {
        return Err(Error::Value(format!(
            "gpu matmul tuning: the flop threshold must be finite and >= 0, got {flops}"
        )));
    }
    gpu::context()?
        .matmul
        .tune_min_flops
        .store(flops.to_bits(), Ordering::Relaxed);
    Ok(())
}

/// Sets the most parts the GPU matmul may split k into (1 turns split-K off); returns the
/// setting before.
pub fn set_matmul_split_k(max_splits: usize) -> Result<usize> {
    if max_splits == 0 {
        return Err(Error::Value(
            "gpu matmul split-K: the number of splits must be at least 1".into(),
        ));
    }
    Ok(gpu::context()?
        .matmul
        .split_k_max
        .swap(max_splits, Ordering::Relaxed))
}

/// Sets whether a split product's parts are summed in the product's own dispatch (by the
/// workgroup that finishes each tile's last part) or by a second pass; returns the setting
/// before. Both give the same bits; the default is the first on Vulkan, else the second.
pub fn set_matmul_split_k_fixup(on: bool) -> Result<bool> {
    Ok(gpu::context()?
        .matmul
        .split_fixup
        .swap(on, Ordering::Relaxed))
}

/// The split-K setting: the most parts k is split into (1: off).
pub fn matmul_split_k() -> Result<usize> {
    Ok(gpu::context()?.matmul.split_k_max.load(Ordering::Relaxed))
}

/// Sets how the GPU matmul kernel is chosen: a name from [`matmul_kernel_names`] or "auto";
/// returns the setting in force before.
pub fn set_matmul_kernel(name: &str) -> Result<String> {
    let choice = if name == "auto" {
        None
    } else {
        Some(
            MM_VARIANTS
                .iter()
                .position(|v| v.name == name)
                .ok_or_else(|| {
                    Error::Value(format!(
                        "gpu matmul kernel: unknown name {name:?}; expected \"auto\" or one of {:?}",
                        matmul_kernel_names()
                    ))
                })?,
        )
    };
    let ctx = gpu::context()?;
    let before = std::mem::replace(&mut *lock(&ctx.matmul.choice), choice);
    Ok(choice_name(before))
}

fn choice_name(choice: Option<usize>) -> String {
    match choice {
        Some(i) => MM_VARIANTS[i].name.to_string(),
        None => "auto".to_string(),
    }
}

/// The current GPU matmul kernel setting: a variant name or "auto".
pub fn matmul_kernel() -> Result<String> {
    Ok(choice_name(*lock(&gpu::context()?.matmul.choice)))
}

/// The names of the vec4 matmul kernels, the default first.
pub fn matmul_kernel_names() -> Vec<&'static str> {
    MM_VARIANTS.iter().map(|v| v.name).collect()
}

/// What "auto" chose so far: ((layout "kn"/"kk"/"mn"/"mk", m, n, k), chosen name, and each
/// variant's measured seconds per product, NaN for one whose output differed from the
/// default kernel's and was therefore rejected), sorted by shape.
#[allow(clippy::type_complexity)]
pub fn matmul_tuning() -> Result<
    Vec<(
        (&'static str, usize, usize, usize),
        &'static str,
        Vec<(&'static str, f64)>,
    )>,
> {
    const LAYOUTS: [&str; 4] = ["kn", "kk", "mn", "mk"];
    let ctx = gpu::context()?;
    let t = lock(&ctx.matmul.tuned);
    let mut out: Vec<_> = t
        .iter()
        .map(|(&(l, m, n, k), (best, times))| {
            (
                (LAYOUTS[l], m, n, k),
                MM_VARIANTS[*best].name,
                times
                    .iter()
                    .map(|&(i, s)| (MM_VARIANTS[i].name, s))
                    .collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Times each variant on this product (its first batch, written to its output) and returns
/// the fastest of those whose output matches the default kernel's bits. Waits for the GPU: only "auto" mode on large products comes here, once per
/// shape and layout. Every variant gives the same bits, so the choice never changes results.
pub(crate) fn tune_matmul(
    ctx: &gpu::Context,
    layout: usize,
    (m, n, k): (usize, usize, usize),
    out: &GpuBuffer,
    launch: &dyn Fn(&gpu::Kernel, [u32; 3]) -> Result<()>,
) -> Result<usize> {
    let mut times = Vec::new();
    // the default kernel's output, which every other must match bit for bit (a driver that
    // miscompiles one must not have it chosen); skipped for outputs over 128 MiB
    let verify = out.len() <= 1 << 25; // the read-back takes every batch's output
    let mut reference: Option<Vec<f32>> = None;
    for (i, v) in MM_VARIANTS.iter().enumerate() {
        let (bm, bn) = v.tile;
        if n.div_ceil(bn) > 65_535 || m.div_ceil(bm) > 65_535 {
            continue;
        }
        let groups = [n.div_ceil(bn) as u32, m.div_ceil(bm) as u32, 1];
        let kernel = mm_kernel(v, layout);
        // a variant the device cannot compile is skipped; the first run also compiles
        if launch(&kernel, groups)
            .and_then(|_| ctx.synchronize())
            .is_err()
        {
            continue;
        }
        // enough repetitions (from one timed run) that submission overhead is small
        let t0 = std::time::Instant::now();
        launch(&kernel, groups)?;
        ctx.synchronize()?;
        let once = t0.elapsed().as_secs_f64();
        if i == 0 && once > 0.1 {
            // a device this slow would spend seconds timing the others: keep the default
            times.push((i, once));
            break;
        }
        // about 10 ms per timing, best of three: on an H100 single 4 ms products timed twice
        // ranked the kernels differently from one process to the next (a kernel measured 41
        // TFLOP/s in one and 21 in another)
        let reps = ((1e-2 / once.max(1e-6)).ceil() as usize).clamp(1, 64);
        let mut best = once;
        for _ in 0..3 {
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                launch(&kernel, groups)?;
            }
            ctx.synchronize()?;
            best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
        }
        if verify {
            let got = out.download()?;
            let got = &got[..m * n];
            match &reference {
                None if i == 0 => reference = Some(got.to_vec()),
                Some(want) if !same_bits(got, want) => {
                    times.push((i, f64::NAN)); // wrong result: never chosen
                    continue;
                }
                _ => {}
            }
        }
        times.push((i, best));
    }
    let best = fastest(&times);
    lock(&ctx.matmul.tuned).insert((layout, m, n, k), (best, times));
    Ok(best)
}

/// Equal bits, any NaN matching any NaN (payloads may differ between kernels).
pub(crate) fn same_bits(got: &[f32], want: &[f32]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
}

/// The variant with the smallest time, ignoring rejected ones (NaN); the default when none.
pub(crate) fn fastest(times: &[(usize, f64)]) -> usize {
    times
        .iter()
        .filter(|t| !t.1.is_nan())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |&(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_skips_rejected_kernels_and_compares_bits() {
        assert_eq!(fastest(&[(0, 3.0), (2, f64::NAN), (5, 1.0), (7, 2.0)]), 5);
        assert_eq!(fastest(&[(0, 3.0), (2, f64::NAN)]), 0);
        assert_eq!(fastest(&[(4, f64::NAN)]), 0);
        assert_eq!(fastest(&[]), 0);
        assert!(same_bits(&[1.0, f32::NAN, -0.0], &[1.0, -f32::NAN, -0.0]));
        assert!(!same_bits(&[0.0], &[-0.0]));
        assert!(!same_bits(&[1.0], &[1.0 + f32::EPSILON]));
        assert!(!same_bits(&[1.0], &[1.0, 2.0]));
        assert!(!same_bits(&[f32::NAN], &[0.0]));
    }
}
