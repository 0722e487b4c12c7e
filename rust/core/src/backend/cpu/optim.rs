//! Host optimizer updates: one pass over parameter, gradient and state per parameter, in
//! place, with PyTorch's formulas (torch.optim), including where weight decay enters.

use super::contig;
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::optim::Rule;
use crate::storage::CpuStorage;

// compiled for each SIMD level and picked at run time (the crate's baseline is SSE2; the
// update's sqrt and division are 4x wider with AVX-512), as kernels.rs does
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn step_t<T: Float>(w: &mut [T], gs: &[T], st: &mut [&mut [T]], rule: Rule) {
    let c = |v: f64| T::from_f64(v);
    match rule {
        Rule::Sgd { h, first } => {
            let (lr, mu, damp, wd) = (
                c(h.lr),
                c(h.momentum),
                c(1.0 - h.dampening),
                c(h.weight_decay),
            );
            if let Some(b) = st.first_mut() {
                for ((w, &g), b) in w.iter_mut().zip(gs).zip(b.iter_mut()) {
                    // d = g + wd p; buf = mu buf + (1 - dampening) d (d on the first step)
                    let d = g + wd * *w;
                    *b = if first { d } else { mu * *b + damp * d };
                    let step = if h.nesterov { d + mu * *b } else { *b };
                    *w -= lr * step;
                }
            } else {
                for (w, &g) in w.iter_mut().zip(gs) {
                    *w = *w - lr * (g + wd * *w);
                }
            }
        }
        Rule::Adam { h, step } => {
            let bc1 = 1.0 - h.beta1.powi(step as i32);
            let bc2 = 1.0 - h.beta2.powi(step as i32);
            let (b1, b2) = (c(h.beta1), c(h.beta2));
            // Adam adds wd p to the gradient; AdamW decays the weights directly
            let l2 = if h.decoupled {
                T::zero()
            } else {
                c(h.weight_decay)
            };
            let decay = if h.decoupled {
                c(1.0 - h.lr * h.weight_decay)
            } else {
                T::one()
            };
            // PyTorch divides sqrt(v) by sqrt(bc2); here it is a multiplication by the
            // reciprocal (within an ulp of the quotient): the update is bound by the divider
            // (a 16-wide division or sqrt takes 10-12 cycles on this kind of CPU), and two
            // divisions and a sqrt per element cost 0.65 ns, one division 0.45
            let (step_size, inv_sqrt_bc2, eps) = (c(h.lr / bc1), c(1.0 / bc2.sqrt()), c(h.eps));
            let (m, v) = st.split_at_mut(1);
            for (((w, &g), mj), vj) in w
                .iter_mut()
                .zip(gs)
                .zip(m[0].iter_mut())
                .zip(v[0].iter_mut())
            {
                let d = g + l2 * *w;
                *w *= decay;
                *mj = b1 * *mj + (T::one() - b1) * d;
                *vj = b2 * *vj + (T::one() - b2) * d * d;
                // p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
                *w -= step_size * *mj / ((*vj).sqrt() * inv_sqrt_bc2 + eps);
            }
        }
        Rule::RmsProp(h) => {
            let (a, wd, eps, mu, lr) = (
                c(h.alpha),
                c(h.weight_decay),
                c(h.eps),
                c(h.momentum),
                c(h.lr),
            );
            let momentum = h.momentum > 0.0;
            let (s, rest) = st.split_first_mut().expect("the squared-gradient average");
            let (buf, rest) = if momentum {
                let (b, r) = rest.split_first_mut().expect("the momentum buffer");
                (Some(b), r)
            } else {
                (None, rest)
            };
            let mut ga = if h.centered { rest.first_mut() } else { None };
            let mut buf = buf;
            for j in 0..w.len() {
                let d = gs[j] + wd * w[j];
                s[j] = a * s[j] + (T::one() - a) * d * d;
                let mut var = s[j];
                if let Some(ga) = ga.as_deref_mut() {
                    ga[j] = a * ga[j] + (T::one() - a) * d;
                    var -= ga[j] * ga[j];
                }
                let den = var.sqrt() + eps;
                match buf.as_deref_mut() {
                    Some(b) => {
                        b[j] = mu * b[j] + d / den;
                        w[j] -= lr * b[j];
                    }
                    None => w[j] -= lr * d / den,
                }
            }
        }
        Rule::Adadelta(h) => {
            let (rho, eps, wd, lr) = (c(h.rho), c(h.eps), c(h.weight_decay), c(h.lr));
            let (sq, acc) = st.split_at_mut(1);
            for (((w, &g), s), a) in w
                .iter_mut()
                .zip(gs)
                .zip(sq[0].iter_mut())
                .zip(acc[0].iter_mut())
            {
                // PyTorch's order: s = rho s + (1 - rho) d^2; delta = sqrt(a + eps) /
                // sqrt(s + eps) d; a = rho a + (1 - rho) delta^2; p -= lr delta
                let d = g + wd * *w;
                *s = rho * *s + (T::one() - rho) * (d * d);
                let delta = (*a + eps).sqrt() / (*s + eps).sqrt() * d;
                *a = rho * *a + (T::one() - rho) * (delta * delta);
                *w -= lr * delta;
            }
        }
    }
}

/// `step_t` on the library's threads for large parameters: each element's update reads
/// only that element, so any split gives the same bits.
fn step_split<T: Float>(w: &mut [T], gs: &[T], st: &mut [&mut [T]], rule: Rule) {
    let n = w.len();
    let threads = crate::threads::num_threads();
    if threads <= 1
        || n < crate::threads::PAR_ELEMWISE_MIN
        || gs.len() != n
        || st.iter().any(|s| s.len() != n)
    {
        return step_t(w, gs, st, rule);
    }
    let chunk = n.div_ceil(threads).div_ceil(16) * 16;
    // raw addresses (not Send) of the parameter, gradient and state, cut into disjoint
    // chunks below
    let (wp, gp) = (w.as_mut_ptr() as usize, gs.as_ptr() as usize);
    let sp: Vec<usize> = st.iter_mut().map(|s| s.as_mut_ptr() as usize).collect();
    crate::threads::split(n.div_ceil(chunk), |i| {
        let (s, e) = (i * chunk, ((i + 1) * chunk).min(n));
        // SAFETY: [s, e) is inside each slice (all have n elements) and disjoint between
        // parts; the slices outlive `split`
        unsafe {
            let w = std::slice::from_raw_parts_mut((wp as *mut T).add(s), e - s);
            let g = std::slice::from_raw_parts((gp as *const T).add(s), e - s);
            let mut part: Vec<&mut [T]> = sp
                .iter()
                .map(|&p| std::slice::from_raw_parts_mut((p as *mut T).add(s), e - s))
                .collect();
            step_t(w, g, &mut part, rule);
        }
    });
}

macro_rules! typed_step {
    ($var:ident, $w:expr, $pl:expr, $g:expr, $gl:expr, $state:expr, $rule:expr) => {{
        let CpuStorage::$var(gv) = $g else {
            return Err(mismatch($g));
        };
        let gs = contig(gv, $gl)?;
        let mut slices = Vec::with_capacity($state.len());
        for (s, l) in $state.iter_mut() {
            match &mut **s {
                CpuStorage::$var(v) => slices.push(&mut v[l.contiguous_range()]),
                other => return Err(mismatch(other)),
            }
        }
        step_split(&mut $w[$pl.contiguous_range()], &gs, &mut slices, $rule);
        Ok(())
    }};
}

fn mismatch(s: &CpuStorage) -> Error {
    Error::DType(format!(
        "optimizer: gradient and state must have the parameter's dtype, got {}",
        s.dtype()
    ))
}

pub(crate) fn step(
    p: &mut CpuStorage,
    pl: &Layout,
    (g, gl): (&CpuStorage, &Layout),
    state: &mut [(&mut CpuStorage, &Layout)],
    rule: Rule,
) -> Result<()> {
    match p {
        CpuStorage::F32(w) => typed_step!(F32, w, pl, g, gl, state, rule),
        CpuStorage::F64(w) => typed_step!(F64, w, pl, g, gl, state, rule),
        other => Err(Error::DType(format!(
            "optimizer: expected a floating-point parameter, got {}",
            other.dtype()
        ))),
    }
}
