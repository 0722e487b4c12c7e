//! The host backend: kernels over contiguous slices, vectorized per instruction set
//! (`crate::kernels`), split across the thread pool for large tensors.

mod binary;
mod conv;
mod index;
mod matmul;
mod nn;
mod optim;
mod reduce;

use super::{float_only, BackendStorage, BnSpec, MaskSpec, ReduceOp, ReducePlan, XentGradSpec};
use crate::dtype::{DType, Element, Float};
use crate::error::Result;
use crate::layout::Layout;
use crate::ops::table::{cpu_backward, cpu_forward};
use crate::ops::{BinaryOp, CmpOp, LogicOp, UnaryOp};
use crate::storage::{try_collect, try_vec, Buffer, BufferElement, CpuStorage};
use crate::threads;
use std::borrow::Cow;

/// The elements `l` reaches in C order: borrowed when contiguous, else gathered.
pub(crate) fn contig<'a, T: Copy>(v: &'a [T], l: &Layout) -> Result<Cow<'a, [T]>> {
    if l.is_contiguous() {
        Ok(Cow::Borrowed(&v[l.contiguous_range()]))
    } else {
        Ok(Cow::Owned(l.gather(v)?))
    }
}

fn zeros<T: Float>(n: usize) -> Result<Vec<T>> {
    let mut out: Vec<T> = try_vec(n)?;
    out.resize(n, T::zero());
    Ok(out)
}

#[inline(always)]
fn unary_t<T: Float>(v: &[T], l: &Layout, op: UnaryOp) -> Result<Vec<T>> {
    let x = contig(v, l)?;
    let mut out: Vec<T> = try_vec(x.len())?;
    threads::for_chunks(out.spare_capacity_mut(), |s, o| {
        cpu_forward(op, &x[s..s + o.len()], o)
    });
    // SAFETY: for_chunks handed every element to the kernel, which wrote it
    unsafe { out.set_len(x.len()) };
    Ok(out)
}

/// `op` over `v` in place, a block at a time through a stack copy (the table's kernels
/// write a separate output).
fn unary_in_place<T: Float>(v: &mut [T], op: UnaryOp) {
    threads::for_chunks(v, |_, o| {
        let mut tmp = [T::zero(); 256];
        for block in o.chunks_mut(256) {
            let t = &mut tmp[..block.len()];
            t.copy_from_slice(block);
            // SAFETY: the kernel writes initialized values into every element of the block
            cpu_forward(op, t, unsafe { crate::kernels::as_out(block) });
        }
    });
}

fn unary_grad_t<T: Float>(
    (x, xl): (&[T], &Layout),
    y: Option<(&[T], &Layout)>,
    (g, gl): (&[T], &Layout),
    op: UnaryOp,
) -> Result<Vec<T>> {
    let x = contig(x, xl)?;
    let y = match y {
        Some((y, yl)) => contig(y, yl)?,
        None => Cow::Borrowed(&*x),
    };
    let g = contig(g, gl)?;
    let mut out: Vec<T> = try_vec(x.len())?;
    threads::for_chunks(out.spare_capacity_mut(), |s, o| {
        let e = s + o.len();
        cpu_backward(op, &x[s..e], &y[s..e], &g[s..e], o)
    });
    // SAFETY: for_chunks handed every element to the kernel, which wrote it
    unsafe { out.set_len(x.len()) };
    Ok(out)
}

impl BackendStorage for CpuStorage {
    #[inline(always)]
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        match self {
            CpuStorage::F32(v) => Ok(CpuStorage::F32(unary_t(v, l, op)?)),
            CpuStorage::F64(v) => Ok(CpuStorage::F64(unary_t(v, l, op)?)),
            other => Err(float_only(op.name(), other.dtype())),
        }
    }

    fn unary_grad(
        &self,
        xl: &Layout,
        y: Option<(&Self, &Layout)>,
        g: (&Self, &Layout),
        op: UnaryOp,
    ) -> Result<Self> {
        let name = op.backward_name();
        match (self, y, g.0) {
            (CpuStorage::F32(x), None, CpuStorage::F32(gv)) => {
                Ok(CpuStorage::F32(unary_grad_t((x, xl), None, (gv, g.1), op)?))
            }
            (CpuStorage::F32(x), Some((CpuStorage::F32(yv), yl)), CpuStorage::F32(gv)) => Ok(
                CpuStorage::F32(unary_grad_t((x, xl), Some((yv, yl)), (gv, g.1), op)?),
            ),
            (CpuStorage::F64(x), None, CpuStorage::F64(gv)) => {
                Ok(CpuStorage::F64(unary_grad_t((x, xl), None, (gv, g.1), op)?))
            }
            (CpuStorage::F64(x), Some((CpuStorage::F64(yv), yl)), CpuStorage::F64(gv)) => Ok(
                CpuStorage::F64(unary_grad_t((x, xl), Some((yv, yl)), (gv, g.1), op)?),
            ),
            _ => Err(float_only(name, self.dtype())),
        }
    }

    #[inline(always)]
    fn copy(&self, l: &Layout) -> Result<Self> {
        #[inline(always)]
        fn one<T: Copy>(v: &[T], l: &Layout) -> Result<Vec<T>> {
            let x = contig(v, l)?;
            let mut out = try_vec(x.len())?;
            out.extend_from_slice(&x);
            Ok(out)
        }
        Ok(crate::each_storage!(self, v => one(v, l)?))
    }

    #[inline]
    fn to_host(&self, l: &Layout) -> Result<CpuStorage> {
        self.copy(l)
    }

    #[inline]
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Buffer> {
        fn conv<S: Element>(v: &[S], l: &Layout, dtype: DType) -> Result<CpuStorage> {
            let x = contig(v, l)?;
            let n = x.len();
            fn each<S: Element, D: BufferElement>(x: &[S], n: usize) -> Result<CpuStorage> {
                let v = if D::DTYPE.is_int() && !S::DTYPE.is_float() {
                    // integer to integer: two's complement wraparound, exact for int64
                    try_collect(n, x.iter().map(|a| D::from_i64(a.to_i64())))?
                } else {
                    try_collect(n, x.iter().map(|a| D::from_f64(a.to_f64())))?
                };
                Ok(D::host(v))
            }
            crate::any_dispatch!(dtype, D => each::<S, D>(&x, n))
        }
        Ok(Buffer::Cpu(
            crate::with_storage!(self, v => conv(v, l, dtype)?),
        ))
    }

    #[inline(always)]
    fn binary(&self, la: &Layout, rhs: &Self, lb: &Layout, op: BinaryOp) -> Result<Self> {
        binary::binary(op, (self, la), (rhs, lb))
    }

    #[inline]
    fn compare(&self, la: &Layout, rhs: &Self, lb: &Layout, op: CmpOp) -> Result<Self> {
        binary::compare(op, (self, la), (rhs, lb))
    }

    #[inline]
    fn logical(&self, la: &Layout, rhs: &Self, lb: &Layout, op: LogicOp) -> Result<Self> {
        binary::logical(op, (self, la), (rhs, lb))
    }

    fn select(&self, lc: &Layout, a: (&Self, &Layout), b: (&Self, &Layout)) -> Result<Self> {
        binary::select((self, lc), a, b)
    }

    #[inline(always)]
    fn reduce(&self, plan: &ReducePlan, op: ReduceOp) -> Result<Self> {
        reduce::reduce(self, plan, op)
    }

    fn arg_reduce(
        &self,
        l: &Layout,
        dims: (usize, usize, usize),
        want_max: bool,
    ) -> Result<Vec<i64>> {
        reduce::arg_reduce(self, l, dims, want_max)
    }

    fn correct_count(&self, l: &Layout, labels: &[i64]) -> Result<Self> {
        let (n, c) = (l.shape[0], l.shape[1]);
        let pred = self.arg_reduce(l, (n, c, 1), true)?;
        let hits = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(CpuStorage::F32(vec![hits as f32]))
    }

    fn write(&mut self, l: &Layout, src: &Self, ls: &Layout) -> Result<()> {
        fn put<T: Copy>(dst: &mut [T], l: &Layout, src: &[T], ls: &Layout) -> Result<()> {
            let vals = contig(src, ls)?;
            if l.is_contiguous() {
                dst[l.contiguous_range()].copy_from_slice(&vals);
            } else {
                let mut k = 0;
                l.for_each_index(|i| {
                    dst[i] = vals[k];
                    k += 1;
                });
            }
            Ok(())
        }
        let dtype = self.dtype();
        fn typed<T: BufferElement>(
            dst: &mut [T],
            l: &Layout,
            src: &CpuStorage,
            ls: &Layout,
        ) -> Result<()> {
            match T::of(src) {
                Some(s) => put(dst, l, s, ls),
                None => Err(crate::error::Error::DType(format!(
                    "copy_: a {} source for a {} destination (cast first)",
                    src.dtype(),
                    T::DTYPE
                ))),
            }
        }
        let _ = dtype;
        crate::with_storage!(self, d => typed(d, l, src, ls))
    }

    fn index_select(&self, l: &Layout, dim: usize, idx: &[usize]) -> Result<Self> {
        index::index_select(self, l, dim, idx)
    }

    fn index_add(&self, l: &Layout, dim: usize, idx: &[usize], size: usize) -> Result<Self> {
        index::index_add(self, l, dim, idx, size)
    }

    fn unfold2d(&self, l: &Layout, win: &crate::backend::Window2d) -> Result<Self> {
        match self {
            CpuStorage::F32(v) => Ok(CpuStorage::F32(conv::unfold2d(v, l, win)?)),
            CpuStorage::F64(v) => Ok(CpuStorage::F64(conv::unfold2d(v, l, win)?)),
            other => Err(crate::error::Error::DType(format!(
                "unfold2d: expected a float tensor, got {}",
                other.dtype()
            ))),
        }
    }

    fn conv2d(
        &self,
        l: &Layout,
        (w, wl): (&Self, &Layout),
        bias: Option<(&Self, &Layout)>,
        win: &crate::backend::Window2d,
    ) -> Result<(Self, Option<Self>)> {
        let out = match (self, w, bias) {
            (CpuStorage::F32(x), CpuStorage::F32(w), None) => {
                CpuStorage::F32(conv::conv2d((x, l), (w, wl), None, win)?)
            }
            (CpuStorage::F32(x), CpuStorage::F32(w), Some((CpuStorage::F32(b), bl))) => {
                CpuStorage::F32(conv::conv2d((x, l), (w, wl), Some((b, bl)), win)?)
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), None) => {
                CpuStorage::F64(conv::conv2d((x, l), (w, wl), None, win)?)
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), Some((CpuStorage::F64(b), bl))) => {
                CpuStorage::F64(conv::conv2d((x, l), (w, wl), Some((b, bl)), win)?)
            }
            (x, w, _) => {
                return Err(crate::error::Error::DType(format!(
                    "conv2d: expected float tensors of one dtype, got {} and {}",
                    x.dtype(),
                    w.dtype()
                )))
            }
        };
        // no windows matrix: the backward (conv2d_grad) unfolds each image again in cache
        Ok((out, None))
    }

    fn conv2d_grad(
        &self,
        l: &Layout,
        (w, wl): (&Self, &Layout),
        (g, gl): (&Self, &Layout),
        win: &crate::backend::Window2d,
        want: (bool, bool),
    ) -> Option<Result<(Option<Self>, Option<Self>)>> {
        Some(match (self, w, g) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(g)) => {
                conv::conv2d_grad((x, l), (w, wl), (g, gl), win, want)
                    .map(|(dx, dw)| (dx.map(CpuStorage::F32), dw.map(CpuStorage::F32)))
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(g)) => {
                conv::conv2d_grad((x, l), (w, wl), (g, gl), win, want)
                    .map(|(dx, dw)| (dx.map(CpuStorage::F64), dw.map(CpuStorage::F64)))
            }
            (x, w, g) => Err(crate::error::Error::DType(format!(
                "conv2d backward: expected float tensors of one dtype, got {}, {} and {}",
                x.dtype(),
                w.dtype(),
                g.dtype()
            ))),
        })
    }

    fn max_pool2d(&self, l: &Layout, win: &crate::backend::Window2d) -> Result<(Self, Self)> {
        let (y, arg) = match self {
            CpuStorage::F32(v) => {
                conv::max_pool2d(v, l, win).map(|(y, a)| (CpuStorage::F32(y), a))?
            }
            CpuStorage::F64(v) => {
                conv::max_pool2d(v, l, win).map(|(y, a)| (CpuStorage::F64(y), a))?
            }
            other => {
                return Err(crate::error::Error::DType(format!(
                    "max_pool2d: expected a float tensor, got {}",
                    other.dtype()
                )))
            }
        };
        Ok((y, CpuStorage::I32(arg)))
    }

    fn max_pool2d_grad(
        &self,
        l: &Layout,
        arg: &Self,
        win: &crate::backend::Window2d,
    ) -> Result<Self> {
        match (self, arg) {
            (CpuStorage::F32(g), CpuStorage::I32(a)) => {
                Ok(CpuStorage::F32(conv::max_pool2d_grad(g, l, a, win)?))
            }
            (CpuStorage::F64(g), CpuStorage::I32(a)) => {
                Ok(CpuStorage::F64(conv::max_pool2d_grad(g, l, a, win)?))
            }
            (g, a) => Err(crate::error::Error::DType(format!(
                "max_pool2d backward: expected a float gradient and int32 offsets, got {} and {}",
                g.dtype(),
                a.dtype()
            ))),
        }
    }

    fn fold2d(&self, l: &Layout, win: &crate::backend::Window2d) -> Result<Self> {
        match self {
            CpuStorage::F32(v) => Ok(CpuStorage::F32(conv::fold2d(v, l, win)?)),
            CpuStorage::F64(v) => Ok(CpuStorage::F64(conv::fold2d(v, l, win)?)),
            other => Err(crate::error::Error::DType(format!(
                "fold2d: expected a float tensor, got {}",
                other.dtype()
            ))),
        }
    }

    fn cat(parts: &[(&Self, &Layout)], dim: usize, out_shape: &[usize]) -> Result<(Self, Layout)> {
        Ok((
            index::cat(parts, dim, out_shape)?,
            Layout::contiguous(out_shape),
        ))
    }

    fn matmul(
        &self,
        la: &Layout,
        rhs: &Self,
        lb: &Layout,
        bias: Option<(&Self, &Layout)>,
        act: Option<UnaryOp>,
    ) -> Result<Self> {
        let mut y = matmul::matmul((self, la), (rhs, lb), bias)?;
        // the activation over the fresh product in place (no second output to allocate)
        match (&mut y, act) {
            (_, None) => {}
            (CpuStorage::F32(v), Some(op)) => unary_in_place(v, op),
            (CpuStorage::F64(v), Some(op)) => unary_in_place(v, op),
            (other, Some(op)) => return Err(float_only(op.name(), other.dtype())),
        }
        Ok(y)
    }

    fn optimizer_step(
        &mut self,
        l: &Layout,
        g: (&Self, &Layout),
        state: &mut [(&mut Self, &Layout)],
        rule: crate::optim::Rule,
    ) -> Result<()> {
        optim::step(self, l, g, state, rule)
    }

    fn masked_affine(&self, l: &Layout, mask: &MaskSpec) -> Result<(Self, Self)> {
        fn run<T: Float>(v: &[T], l: &Layout, mask: &MaskSpec) -> Result<(Vec<T>, Vec<u8>)> {
            let x = contig(v, l)?;
            let n = x.len();
            let (ka, kb, db) = (
                T::from_f64(mask.keep_scale),
                T::from_f64(mask.keep_shift),
                T::from_f64(mask.drop_shift),
            );
            let th = mask.threshold;
            let mut out: Vec<T> = crate::storage::try_vec(n)?;
            // the mask for the backward, a bit an element (zeroed: an eighth of the output)
            let mut bits: Vec<u8> = crate::storage::try_vec(n.div_ceil(8))?;
            bits.resize(n.div_ceil(8), 0);
            // one pass: the stream is drawn a block at a time into a stack buffer and used
            // at once (counter-based, so any split of the range draws the same numbers)
            let (op, bp) = (
                out.spare_capacity_mut().as_mut_ptr() as usize,
                bits.as_mut_ptr() as usize,
            );
            let threads = if n >= 1 << 14 {
                crate::threads::num_threads()
            } else {
                1
            };
            let chunk = n.div_ceil(threads).div_ceil(64).max(1) * 64;
            crate::threads::split(n.div_ceil(chunk), |part| {
                let mut raw = [0u32; 256];
                let end = ((part + 1) * chunk).min(n);
                for s in (part * chunk..end).step_by(256) {
                    let len = 256.min(end - s);
                    crate::random::fill_u32(mask.seed, mask.start + s as u64, &mut raw[..len]);
                    // SAFETY: [s, s + len) lies inside the n-element capacity of `out`, and
                    // its bytes of the mask (s is a multiple of 8) inside `bits`; parts
                    // write disjoint ranges
                    let (o, b) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(
                                (op as *mut std::mem::MaybeUninit<T>).add(s),
                                len,
                            ),
                            std::slice::from_raw_parts_mut(
                                (bp as *mut u8).add(s / 8),
                                len.div_ceil(8),
                            ),
                        )
                    };
                    crate::kernels::masked_affine(&x[s..s + len], &raw, th, ka, kb, db, o, b);
                }
            });
            // SAFETY: every element below n was written above
            unsafe { out.set_len(n) };
            Ok((out, bits))
        }
        match self {
            CpuStorage::F32(v) => {
                run(v, l, mask).map(|(y, b)| (CpuStorage::F32(y), CpuStorage::U8(b)))
            }
            CpuStorage::F64(v) => {
                run(v, l, mask).map(|(y, b)| (CpuStorage::F64(y), CpuStorage::U8(b)))
            }
            other => Err(float_only("dropout", other.dtype())),
        }
    }

    fn masked_scale(&self, l: &Layout, saved: &Self, mask: &MaskSpec) -> Result<Self> {
        fn run<T: Float>(v: &[T], l: &Layout, bits: &[u8], mask: &MaskSpec) -> Result<Vec<T>> {
            let g = contig(v, l)?;
            let n = g.len();
            if bits.len() != n.div_ceil(8) {
                return Err(crate::shape_err!(
                    "dropout backward: a mask of {} bytes for a gradient of {n} elements",
                    bits.len()
                ));
            }
            let ka = T::from_f64(mask.keep_scale);
            let mut out: Vec<T> = crate::storage::try_vec(n)?;
            // chunks start on multiples of 16 elements, so on whole bytes of the mask
            threads::for_chunks(&mut out.spare_capacity_mut()[..n], |s, o| {
                for (k, block) in o.chunks_mut(256).enumerate() {
                    let b = s + 256 * k;
                    let gb = &g[b..b + block.len()];
                    crate::kernels::scale_by_bits(gb, &bits[b / 8..], ka, block);
                }
            });
            // SAFETY: the chunks covered all n elements
            unsafe { out.set_len(n) };
            Ok(out)
        }
        match (self, saved) {
            (CpuStorage::F32(v), CpuStorage::U8(b)) => Ok(CpuStorage::F32(run(v, l, b, mask)?)),
            (CpuStorage::F64(v), CpuStorage::U8(b)) => Ok(CpuStorage::F64(run(v, l, b, mask)?)),
            (other, _) => Err(float_only("dropout backward", other.dtype())),
        }
    }

    fn masked_act_grad(
        &self,
        l: &Layout,
        saved: &Self,
        mask: &MaskSpec,
        (y, yl): (&Self, &Layout),
        op: UnaryOp,
    ) -> Option<Result<Self>> {
        // a block at a time: the mask's scaling into a stack buffer, then the activation's
        // rule from y, both the separate ops' kernels
        fn run<T: Float>(
            (g, gl): (&[T], &Layout),
            bits: &[u8],
            (y, yl): (&[T], &Layout),
            mask: &MaskSpec,
            op: UnaryOp,
        ) -> Result<Vec<T>> {
            let (g, y) = (contig(g, gl)?, contig(y, yl)?);
            let n = g.len();
            if bits.len() != n.div_ceil(8) || y.len() != n {
                return Err(crate::shape_err!(
                    "dropout backward: a mask of {} bytes and an output of {} elements for a gradient of {n}",
                    bits.len(),
                    y.len()
                ));
            }
            let ka = T::from_f64(mask.keep_scale);
            let mut out: Vec<T> = crate::storage::try_vec(n)?;
            // chunks start on multiples of 16 elements, so on whole bytes of the mask
            threads::for_chunks(&mut out.spare_capacity_mut()[..n], |s, o| {
                let mut tmp = [std::mem::MaybeUninit::new(T::zero()); 256];
                for (k, block) in o.chunks_mut(256).enumerate() {
                    let (b, len) = (s + 256 * k, block.len());
                    crate::kernels::scale_by_bits(
                        &g[b..b + len],
                        &bits[b / 8..],
                        ka,
                        &mut tmp[..len],
                    );
                    // SAFETY: tmp was initialized, and scale_by_bits wrote its first len
                    let gm: &[T] = unsafe { &*(&tmp[..len] as *const _ as *const [T]) };
                    let yb = &y[b..b + len];
                    cpu_backward(op, yb, yb, gm, block);
                }
            });
            // SAFETY: the chunks covered all n elements
            unsafe { out.set_len(n) };
            Ok(out)
        }
        Some(match (self, saved, y) {
            (CpuStorage::F32(g), CpuStorage::U8(b), CpuStorage::F32(y)) => {
                run((g, l), b, (y, yl), mask, op).map(CpuStorage::F32)
            }
            (CpuStorage::F64(g), CpuStorage::U8(b), CpuStorage::F64(y)) => {
                run((g, l), b, (y, yl), mask, op).map(CpuStorage::F64)
            }
            _ => return None,
        })
    }

    fn batch_norm(
        &self,
        l: &Layout,
        gamma: Option<(&Self, &Layout)>,
        beta: Option<(&Self, &Layout)>,
        running: Option<[(&mut Self, &Layout); 2]>,
        residual: Option<(&Self, &Layout)>,
        spec: &BnSpec,
    ) -> Result<(Self, Self)> {
        macro_rules! run {
            ($v:ident, $var:ident, $t:ty) => {{
                fn side<'a>(
                    t: Option<(&'a CpuStorage, &'a Layout)>,
                ) -> Result<Option<(&'a [$t], &'a Layout)>> {
                    match t {
                        None => Ok(None),
                        Some((CpuStorage::$var(s), sl)) => Ok(Some((&s[..], sl))),
                        Some((o, _)) => Err(float_only("batch_norm", o.dtype())),
                    }
                }
                let running = match running {
                    None => None,
                    Some([(CpuStorage::$var(m), ml), (CpuStorage::$var(v), vl)]) => {
                        Some([&mut m[ml.contiguous_range()], &mut v[vl.contiguous_range()]])
                    }
                    Some(_) => return Err(float_only("batch_norm", self.dtype())),
                };
                let (y, st) = nn::batch_norm(
                    (&$v[..], l),
                    side(gamma)?,
                    side(beta)?,
                    running,
                    side(residual)?,
                    spec,
                )?;
                Ok((CpuStorage::$var(y), CpuStorage::$var(st)))
            }};
        }
        match self {
            CpuStorage::F32(v) => run!(v, F32, f32),
            CpuStorage::F64(v) => run!(v, F64, f64),
            other => Err(float_only("batch_norm", other.dtype())),
        }
    }

    fn batch_norm_grad(
        &self,
        l: &Layout,
        stats: &Self,
        g: (&Self, &Layout),
        spec: &BnSpec,
    ) -> Result<(Self, Self, Self)> {
        match (self, stats, g) {
            (CpuStorage::F32(x), CpuStorage::F32(s), (CpuStorage::F32(g), gl)) => {
                let (a, b, c) = nn::batch_norm_grad((x, l), s, (g, gl), spec)?;
                Ok((CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(c)))
            }
            (CpuStorage::F64(x), CpuStorage::F64(s), (CpuStorage::F64(g), gl)) => {
                let (a, b, c) = nn::batch_norm_grad((x, l), s, (g, gl), spec)?;
                Ok((CpuStorage::F64(a), CpuStorage::F64(b), CpuStorage::F64(c)))
            }
            _ => Err(float_only("batch_norm", self.dtype())),
        }
    }

    fn cross_entropy(&self, l: &Layout, labels: &[i64], smoothing: f64) -> Result<(Self, Self)> {
        match self {
            CpuStorage::F32(v) => nn::cross_entropy((v, l), labels, smoothing)
                .map(|(a, b)| (CpuStorage::F32(a), CpuStorage::F32(b))),
            CpuStorage::F64(v) => nn::cross_entropy((v, l), labels, smoothing)
                .map(|(a, b)| (CpuStorage::F64(a), CpuStorage::F64(b))),
            other => Err(float_only("cross_entropy", other.dtype())),
        }
    }

    fn cross_entropy_grad(
        &self,
        l: &Layout,
        saved: &Self,
        labels: &[i64],
        g: (&Self, &Layout),
        spec: &XentGradSpec,
    ) -> Result<Self> {
        match (self, saved, g) {
            (CpuStorage::F32(_), CpuStorage::F32(s), (CpuStorage::F32(g), gl)) => {
                nn::cross_entropy_grad(l, s, labels, (g, gl), spec).map(CpuStorage::F32)
            }
            (CpuStorage::F64(_), CpuStorage::F64(s), (CpuStorage::F64(g), gl)) => {
                nn::cross_entropy_grad(l, s, labels, (g, gl), spec).map(CpuStorage::F64)
            }
            _ => Err(float_only("cross_entropy", self.dtype())),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The host backend's contracts on (storage, layout) pairs, without tensors: strided
    //! and broadcast reads, dtype checks, in-place writes, and the kernels' results.

    use super::*;
    use crate::backend::ReducePlan;

    fn f32s(s: &CpuStorage) -> Vec<f32> {
        match s {
            CpuStorage::F32(v) => v.clone(),
            other => panic!("expected f32, got {}", other.dtype()),
        }
    }

    #[test]
    fn unary_reads_through_strides_and_refuses_ints() {
        let x = CpuStorage::F32(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // the transpose of a 2 x 3 matrix
        let l = Layout::contiguous(&[2, 3]).permute(&[1, 0]);
        let y = x.unary(&l, UnaryOp::Neg).unwrap();
        assert_eq!(f32s(&y), vec![-0.0, -3.0, -1.0, -4.0, -2.0, -5.0]);
        let i = CpuStorage::I64(vec![1, 2]);
        assert!(i.unary(&Layout::contiguous(&[2]), UnaryOp::Exp).is_err());
    }

    #[test]
    fn binary_broadcasts_and_wants_one_dtype() {
        let a = CpuStorage::F32(vec![1.0, 2.0, 3.0]);
        let b = CpuStorage::F32(vec![10.0]);
        let la = Layout::contiguous(&[3]);
        let lb = Layout::contiguous(&[1]).broadcast_to("test", &[3]).unwrap();
        let y = a.binary(&la, &b, &lb, BinaryOp::Add).unwrap();
        assert_eq!(f32s(&y), vec![11.0, 12.0, 13.0]);
        let c = CpuStorage::F64(vec![1.0, 2.0, 3.0]);
        assert!(a.binary(&la, &c, &la, BinaryOp::Add).is_err());
        let m = a.compare(&la, &b, &lb, CmpOp::Gt).unwrap();
        assert!(matches!(m, CpuStorage::Bool(ref v) if v == &[false, false, false]));
    }

    #[test]
    fn reductions_follow_the_plan() {
        let x = CpuStorage::F32((0..6).map(|v| v as f32).collect());
        let l = Layout::contiguous(&[2, 3]);
        // over dim 0 of a contiguous matrix: one block, r = 2 rows of inner = 3
        let plan = ReducePlan::new(&l, &[true, false]);
        assert_eq!((plan.outer, plan.r, plan.inner), (1, 2, 3));
        assert_eq!(
            f32s(&x.reduce(&plan, ReduceOp::Sum).unwrap()),
            vec![3.0, 5.0, 7.0]
        );
        // over dim 1 of the transpose of a (3, 2) matrix: the reduced dim moves last (a
        // gathered copy)
        let t = Layout::contiguous(&[3, 2]).permute(&[1, 0]);
        let plan = ReducePlan::new(&t, &[false, true]);
        assert_eq!((plan.outer, plan.r, plan.inner), (2, 3, 1));
        assert_eq!(
            f32s(&x.reduce(&plan, ReduceOp::Sum).unwrap()),
            vec![6.0, 9.0]
        );
        let plan = ReducePlan::new(&l, &[false, true]);
        assert_eq!(
            f32s(&x.reduce(&plan, ReduceOp::Max).unwrap()),
            vec![2.0, 5.0]
        );
        assert_eq!(x.arg_reduce(&l, (2, 3, 1), false).unwrap(), vec![0, 0]);
    }

    #[test]
    fn writes_go_through_the_destination_layout() {
        let mut d = CpuStorage::F32(vec![0.0; 4]);
        let src = CpuStorage::F32(vec![7.0]);
        // every other element, from a one-element source broadcast
        let l = Layout {
            shape: [2].into_iter().collect(),
            strides: [2].into_iter().collect(),
            offset: 1,
        };
        let ls = Layout::contiguous(&[1]).broadcast_to("test", &[2]).unwrap();
        d.write(&l, &src, &ls).unwrap();
        assert_eq!(f32s(&d), vec![0.0, 7.0, 0.0, 7.0]);
        assert!(d.write(&l, &CpuStorage::I64(vec![1]), &ls).is_err());
    }

    #[test]
    fn index_select_cat_and_matmul() {
        let x = CpuStorage::F32((0..6).map(|v| v as f32).collect());
        let l = Layout::contiguous(&[3, 2]);
        let rows = x.index_select(&l, 0, &[2, 0, 2]).unwrap();
        assert_eq!(f32s(&rows), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
        let back = rows
            .index_add(&Layout::contiguous(&[3, 2]), 0, &[2, 0, 2], 3)
            .unwrap();
        assert_eq!(f32s(&back), vec![0.0, 1.0, 0.0, 0.0, 8.0, 10.0]);
        let (joined, jl) = CpuStorage::cat(&[(&x, &l), (&x, &l)], 1, &[3, 4]).unwrap();
        assert_eq!(jl, Layout::contiguous(&[3, 4]));
        assert_eq!(&f32s(&joined)[..4], &[0.0, 1.0, 0.0, 1.0]);
        // (3, 2) @ (2, 1) + bias, then relu
        let w = CpuStorage::F32(vec![1.0, -1.0]);
        let bias = CpuStorage::F32(vec![0.5]);
        let y = x
            .matmul(
                &l,
                &w,
                &Layout::contiguous(&[2, 1]),
                Some((&bias, &Layout::contiguous(&[1]))),
                Some(UnaryOp::Relu),
            )
            .unwrap();
        assert_eq!(f32s(&y), vec![0.0, 0.0, 0.0]); // x0 - x1 = -1, plus 0.5, relu
    }
}
