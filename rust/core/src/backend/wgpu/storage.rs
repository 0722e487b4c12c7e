//! The GPU backend's storage: a pooled device buffer and the dtype its float32 words hold.

use super::GpuBuffer;
use crate::dtype::DType;
use std::sync::Arc;

/// GPU elements: float32 words holding float32 elements, or bools as 0/1; float16 and
/// bfloat16 elements either packed two to a word (how they rest: half the memory) or, inside
/// a kernel call, unpacked to the float32 words of their exact values (`Buffer`'s dispatch
/// unpacks operands and packs results, as the host widens and narrows). The buffer is
/// shared so that a bool can be read as its 0/1 floats by the float kernels without a copy;
/// the dtype and `packed` are the only statement of what the words mean.
#[derive(Debug)]
pub struct WgpuStorage {
    /// the device buffer
    pub buf: Arc<GpuBuffer>,
    /// float32, bool, or a half dtype
    pub dtype: DType,
    /// halves two to a word (element 2w in the low 16 bits of word w)
    pub packed: bool,
    /// elements held (a packed buffer's word count does not say)
    len: usize,
}

impl WgpuStorage {
    /// Wraps a fresh buffer holding one float32 word per `dtype` element.
    pub fn new(buf: GpuBuffer, dtype: DType) -> WgpuStorage {
        debug_assert!(matches!(
            dtype,
            DType::F32 | DType::F16 | DType::BF16 | DType::Bool
        ));
        WgpuStorage {
            len: buf.len(),
            buf: Arc::new(buf),
            dtype,
            packed: false,
        }
    }

    /// Wraps a fresh buffer holding `len` halves of `dtype`, two to a word.
    fn new_packed(buf: GpuBuffer, dtype: DType, len: usize) -> WgpuStorage {
        debug_assert!(matches!(dtype, DType::F16 | DType::BF16) && buf.len() == len.div_ceil(2));
        WgpuStorage {
            buf: Arc::new(buf),
            dtype,
            packed: true,
            len,
        }
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no element is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

mod multi;
mod packed;
use multi::{multi_step, whole_f32};

use super::ops::{
    adam_consts, adam_device_consts, dim_first, half_codes, launch_amp_update, launch_batch_norm,
    launch_batch_norm_grad, launch_binary_halves, launch_conv_gemm, launch_cross_entropy,
    launch_cross_entropy_grad, launch_fold2d, launch_gather, launch_log_softmax,
    launch_masked_affine, launch_matmul, launch_matmul_add, launch_matmul_cast, launch_matmul_coop,
    launch_matmul_halves, launch_matmul_row_sums, launch_max_pool2d, launch_max_pool2d_grad,
    launch_multi_optimizer, launch_multi_unscale, launch_optimizer, launch_reduce,
    launch_scatter_sum, launch_select, launch_unary, launch_unary_grad, launch_unary_halves,
    launch_unfold2d, multi_tensors, patch_adam_step, OptKernel, RED_ARGMAX, RED_ARGMIN,
    RED_CORRECT, RED_MAX, RED_MIN, RED_SUM,
};
use crate::backend::{float_only, BackendStorage, OptItem};
use crate::backend::{BnSpec, MaskSpec, ProductCast, ReduceOp, ReducePlan, XentGradSpec};
use crate::error::{Error, Result};
use crate::layout::{checked_numel, Layout};
use crate::ops::table::IDENTITY_CODE;
use crate::ops::{BinaryOp, CmpOp, LogicOp, UnaryOp};
use crate::storage::Buffer;
use crate::storage::{try_collect, CpuStorage};

/// A buffer borrowed from a storage or made for the occasion (a compact copy).
enum Held<'a> {
    Borrowed(&'a GpuBuffer),
    Owned(GpuBuffer),
}

impl std::ops::Deref for Held<'_> {
    type Target = GpuBuffer;
    fn deref(&self) -> &GpuBuffer {
        match self {
            Held::Borrowed(b) => b,
            Held::Owned(b) => b,
        }
    }
}

/// The buffer and offset of `l`'s elements as a contiguous run: the buffer itself when
/// `l` is contiguous, else a compact copy (offset 0), packed as it was (`code`, the
/// kernels' half code of how it rests).
fn dense<'a>(buf: &'a GpuBuffer, l: &Layout, code: u32) -> Result<(Held<'a>, usize)> {
    if l.is_contiguous() {
        Ok((Held::Borrowed(buf), l.offset))
    } else {
        let c = launch_unary_halves("copy", COPY, buf, l, half_codes([code, 0, 0, code]))?;
        Ok((Held::Owned(c), 0))
    }
}

/// The identity as launch_unary_halves takes an op: the strided copy.
const COPY: (u32, f32, f32) = (IDENTITY_CODE, 0.0, 0.0);

/// The kernels' code for a half dtype: 1 float16, 2 bfloat16; 0 for any other.
fn half_kind(d: DType) -> u32 {
    match d {
        DType::F16 => 1,
        DType::BF16 => 2,
        _ => 0,
    }
}

/// How a product reads an operand cast to the half `to`: as it rests when packed in `to`
/// (its half kind), float32 words rounded on the way in (kind + 2); None for any other.
fn cast_read(s: &WgpuStorage, to: DType) -> Option<u32> {
    match (s.packed, s.dtype) {
        (true, d) if d == to => Some(half_kind(to)),
        (false, DType::F32) => Some(half_kind(to) + 2),
        _ => None,
    }
}

/// How a storage rests, as the kernels' half code: its half kind when packed, else 0
/// (float32 words).
fn rest_code(s: &WgpuStorage) -> u32 {
    if s.packed {
        half_kind(s.dtype)
    } else {
        0
    }
}

impl WgpuStorage {
    /// An elementwise kernel's result of n elements: packed halves of this storage's dtype
    /// when `code` (the output's half code) says so, else float32 words.
    fn elementwise_result(&self, out: GpuBuffer, n: usize, code: u32) -> WgpuStorage {
        match code {
            0 => WgpuStorage::new(out, DType::F32),
            _ => WgpuStorage::new_packed(out, self.dtype, n),
        }
    }
}

impl WgpuStorage {
    /// Host elements copied to the device: float32 as they are, bools as 0/1 floats;
    /// other dtypes are refused (the GPU holds float32 and bool).
    pub(crate) fn upload(host: &CpuStorage) -> Result<WgpuStorage> {
        let ctx = super::context()?;
        match host {
            CpuStorage::F32(v) => Ok(WgpuStorage::new(ctx.upload(v)?, DType::F32)),
            // halves packed two to a word, in the host's byte order
            CpuStorage::F16(v) => {
                let words = pack_words(v.iter().map(|h| h.to_bits()), v.len())?;
                Ok(WgpuStorage::new_packed(
                    ctx.upload(&words)?,
                    DType::F16,
                    v.len(),
                ))
            }
            CpuStorage::BF16(v) => {
                let words = pack_words(v.iter().map(|h| h.to_bits()), v.len())?;
                Ok(WgpuStorage::new_packed(
                    ctx.upload(&words)?,
                    DType::BF16,
                    v.len(),
                ))
            }
            CpuStorage::Bool(v) => {
                let words = try_collect(v.len(), v.iter().map(|&b| b as u8 as f32))?;
                Ok(WgpuStorage::new(ctx.upload(&words)?, DType::Bool))
            }
            other => Err(Error::DType(format!(
                "to: the gpu backend holds float32 tensors; this one is {} (call .float() first)",
                other.dtype()
            ))),
        }
    }
}

/// Halves' bits two to a word (as float32 words by their bits: uploads copy bits).
fn pack_words(bits: impl Iterator<Item = u16>, n: usize) -> Result<Vec<f32>> {
    let mut words = try_collect(n.div_ceil(2), std::iter::repeat_n(0.0f32, n.div_ceil(2)))?;
    let mut w = 0u32;
    for (i, b) in bits.enumerate() {
        w |= (b as u32) << (16 * (i & 1));
        if i & 1 == 1 || i + 1 == n {
            words[i / 2] = f32::from_bits(w);
            w = 0;
        }
    }
    Ok(words)
}

impl BackendStorage for WgpuStorage {
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        if !self.dtype.is_float() {
            return Err(float_only(op.name(), self.dtype));
        }
        // a packed operand is read as it rests, and the result packed in its dtype
        let c = rest_code(self);
        let out =
            launch_unary_halves(op.name(), op.code(), &self.buf, l, half_codes([c, 0, 0, c]))?;
        Ok(self.elementwise_result(out, l.numel(), c))
    }

    fn unary_grad(
        &self,
        xl: &Layout,
        y: Option<(&Self, &Layout)>,
        g: (&Self, &Layout),
        op: UnaryOp,
    ) -> Result<Self> {
        let (cx, cg, cy) = (
            rest_code(self),
            rest_code(g.0),
            y.map_or(0, |(y, _)| rest_code(y)),
        );
        let (x, x_off) = dense(&self.buf, xl, cx)?;
        let (gb, g_off) = dense(&g.0.buf, g.1, cg)?;
        // y is bound read-write: a buffer of its own, starting at element 0
        let y = match y {
            None => None,
            Some((y, yl)) => {
                let alone = !Arc::ptr_eq(&y.buf, &self.buf) && !Arc::ptr_eq(&y.buf, &g.0.buf);
                Some(if alone && yl.is_contiguous() && yl.offset == 0 {
                    Held::Borrowed(&y.buf)
                } else {
                    let codes = half_codes([cy, 0, 0, cy]);
                    Held::Owned(launch_unary_halves("copy", COPY, &y.buf, yl, codes)?)
                })
            }
        };
        // packed in x's dtype when x and g rest packed alike (the gradient of a half op)
        let out_code = if cx == cg { cx } else { 0 };
        let codes = half_codes([cx, cg, cy, out_code]);
        let n = xl.numel();
        let out = launch_unary_grad(op, (&x, x_off), y.as_deref(), (&gb, g_off), n, codes)?;
        Ok(self.elementwise_result(out, n, out_code))
    }

    fn copy(&self, l: &Layout) -> Result<Self> {
        let c = rest_code(self);
        let out = launch_unary_halves("copy", COPY, &self.buf, l, half_codes([c, 0, 0, c]))?;
        Ok(match c {
            0 => WgpuStorage::new(out, self.dtype),
            _ => self.elementwise_result(out, l.numel(), c),
        })
    }

    fn to_host(&self, l: &Layout) -> Result<CpuStorage> {
        if self.packed {
            // the words the span reaches, split into halves, gathered in C order
            let bits = match l.span() {
                None => Vec::new(),
                Some((lo, hi)) => {
                    let (w0, w1) = (lo / 2, hi.div_ceil(2));
                    let words = self.buf.download_range(w0, w1 - w0)?;
                    let halves: Vec<u16> = try_collect(
                        2 * words.len(),
                        words.iter().flat_map(|w| {
                            let b = w.to_bits();
                            [b as u16, (b >> 16) as u16]
                        }),
                    )?;
                    let mut lay = l.clone();
                    lay.offset -= 2 * w0;
                    lay.gather(&halves)?
                }
            };
            return Ok(match self.dtype {
                DType::BF16 => CpuStorage::BF16(try_collect(
                    bits.len(),
                    bits.iter().map(|&b| half::bf16::from_bits(b)),
                )?),
                _ => CpuStorage::F16(try_collect(
                    bits.len(),
                    bits.iter().map(|&b| half::f16::from_bits(b)),
                )?),
            });
        }
        // read back only the span this view reaches, then gather it in C order
        let v = match l.span() {
            None => Vec::new(),
            Some((lo, hi)) => {
                let part = self.buf.download_range(lo, hi - lo)?;
                let mut lay = l.clone();
                lay.offset -= lo;
                lay.gather(&part)?
            }
        };
        Ok(match self.dtype {
            DType::Bool => CpuStorage::Bool(try_collect(v.len(), v.iter().map(|&x| x != 0.0))?),
            // the words hold exact halves (every op rounds), so these conversions are exact
            DType::F16 => CpuStorage::F16(try_collect(
                v.len(),
                v.iter().map(|&x| half::f16::from_f32(x)),
            )?),
            DType::BF16 => CpuStorage::BF16(try_collect(
                v.len(),
                v.iter().map(|&x| half::bf16::from_f32(x)),
            )?),
            _ => CpuStorage::F32(v),
        })
    }

    fn cast(&self, l: &Layout, dtype: DType) -> Result<Buffer> {
        let words = |code: u32, dtype: DType| -> Result<Buffer> {
            let out = launch_unary("cast", code, 0.0, 0.0, &self.buf, l)?;
            Ok(Buffer::Gpu(WgpuStorage::new(out, dtype)))
        };
        match (self.dtype, dtype) {
            // a bool's words are its 0/1 floats already, and a half's its exact value
            (_, DType::F32) => words(IDENTITY_CODE, DType::F32),
            (DType::Bool, DType::Bool) => words(IDENTITY_CODE, DType::Bool),
            (_, DType::Bool) => words(UnaryOp::Truth.code().0, DType::Bool),
            (DType::Bool | DType::F16, DType::F16) => words(IDENTITY_CODE, DType::F16),
            (_, DType::F16) => words(UnaryOp::ToHalf.code().0, DType::F16),
            (DType::Bool | DType::BF16, DType::BF16) => words(IDENTITY_CODE, DType::BF16),
            (_, DType::BF16) => words(UnaryOp::ToBfloat16.code().0, DType::BF16),
            (_, d) if d.is_int() => self.to_host(l)?.cast(&Layout::contiguous(&l.shape), dtype),
            (_, d) => Err(Error::DType(format!(
                "cast: the gpu backend holds float32 and bool tensors, not {d}; move the tensor with .to('cpu') first"
            ))),
        }
    }

    fn binary(&self, la: &Layout, rhs: &Self, lb: &Layout, op: BinaryOp) -> Result<Self> {
        // packed operands are read as they rest; the result is packed where both are alike
        let (ca, cb) = (rest_code(self), rest_code(rhs));
        let out_code = if ca == cb { ca } else { 0 };
        let codes = half_codes([ca, cb, 0, out_code]);
        let out =
            launch_binary_halves(op.name(), op as u32, (&self.buf, la), (&rhs.buf, lb), codes)?;
        Ok(self.elementwise_result(out, checked_numel(&la.shape)?, out_code))
    }

    fn compare(&self, la: &Layout, rhs: &Self, lb: &Layout, op: CmpOp) -> Result<Self> {
        let out = launch_binary_halves(
            "compare",
            CMP_BASE + op as u32,
            (&self.buf, la),
            (&rhs.buf, lb),
            half_codes([rest_code(self), rest_code(rhs), 0, 0]),
        )?;
        Ok(WgpuStorage::new(out, DType::Bool))
    }

    fn logical(&self, la: &Layout, rhs: &Self, lb: &Layout, op: LogicOp) -> Result<Self> {
        let out = launch_binary_halves(
            op.name(),
            LOGIC_BASE + op as u32,
            (&self.buf, la),
            (&rhs.buf, lb),
            half_codes([rest_code(self), rest_code(rhs), 0, 0]),
        )?;
        Ok(WgpuStorage::new(out, DType::Bool))
    }

    fn select(
        &self,
        lc: &Layout,
        (a, la): (&Self, &Layout),
        (b, lb): (&Self, &Layout),
    ) -> Result<Self> {
        // the kernel reads the condition as cond[i], contiguous in the output's shape, bound
        // read-write: so never the buffer of an input (where(m, m, x)) and from element 0
        let alone = !Arc::ptr_eq(&self.buf, &a.buf) && !Arc::ptr_eq(&self.buf, &b.buf);
        let cond = if alone && lc.is_contiguous() && lc.offset == 0 {
            Held::Borrowed(&self.buf)
        } else {
            Held::Owned(launch_unary(
                "copy",
                IDENTITY_CODE,
                0.0,
                0.0,
                &self.buf,
                lc,
            )?)
        };
        let out = launch_select(&cond, (&a.buf, la), (&b.buf, lb))?;
        // two bool operands give a bool
        let dtype = if a.dtype == DType::Bool && b.dtype == DType::Bool {
            DType::Bool
        } else {
            DType::F32
        };
        Ok(WgpuStorage::new(out, dtype))
    }

    fn reduce(&self, plan: &ReducePlan, op: ReduceOp) -> Result<Self> {
        let code = match op {
            ReduceOp::Sum => RED_SUM,
            ReduceOp::Max => RED_MAX,
            ReduceOp::Min => RED_MIN,
        };
        // packed halves are read as they rest
        let half = rest_code(self);
        let x = from_zero(&self.buf, &plan.layout, half)?;
        let out = launch_reduce(
            (&x, half),
            (plan.outer, plan.r, plan.inner),
            (code, 0),
            None,
        )?;
        // the max or min of bools is a bool
        let dtype = if op == ReduceOp::Sum {
            DType::F32
        } else {
            self.dtype
        };
        Ok(WgpuStorage::new(out, dtype))
    }

    fn arg_reduce(
        &self,
        l: &Layout,
        dims: (usize, usize, usize),
        want_max: bool,
    ) -> Result<Vec<i64>> {
        if dims.1 > MAX_EXACT_INDEX {
            let host = self.to_host(l)?;
            return host.arg_reduce(&Layout::contiguous(&l.shape), dims, want_max);
        }
        let x = from_zero(&self.buf, l, 0)?;
        let code = if want_max { RED_ARGMAX } else { RED_ARGMIN };
        let idx = launch_reduce((&x, 0), dims, (code, 0), None)?.download()?;
        try_collect(idx.len(), idx.iter().map(|&i| i as i64))
    }

    fn correct_count(&self, l: &Layout, labels: &[i64]) -> Result<Self> {
        let (n, c) = (l.shape[0], l.shape[1]);
        if n == 0 || c == 0 || c > MAX_EXACT_INDEX {
            let host = self.to_host(l)?;
            let count = host.correct_count(&Layout::contiguous(&l.shape), labels)?;
            return WgpuStorage::upload(&count);
        }
        // labels outside [0, C) can never match: map them to an impossible index
        let words: Vec<u32> = labels
            .iter()
            .map(|&v| {
                if v >= 0 && (v as usize) < c {
                    v as u32
                } else {
                    u32::MAX
                }
            })
            .collect();
        let x = from_zero(&self.buf, l, 0)?;
        let hits = launch_reduce((&x, 0), (n, c, 1), (RED_CORRECT, 0), Some(&words))?;
        let total = launch_reduce((&hits, 0), (1, n, 1), (RED_SUM, 0), None)?;
        Ok(WgpuStorage::new(total, DType::F32))
    }

    fn write(&mut self, l: &Layout, src: &Self, ls: &Layout) -> Result<()> {
        // the source as a contiguous run of l's element count (a view's buffer may be
        // longer, so it is copied from where it lies)
        let (s, from) = dense(&src.buf, ls, 0)?;
        let n = l.numel();
        if l.is_contiguous() {
            return self.buf.copy_from(l.offset, &s, from, n);
        }
        // a strided view rewrites the span of the buffer it reaches: read back, the view's
        // elements replaced, written back (the GPU writes contiguous spans only)
        let Some((lo, hi)) = l.span() else {
            return Ok(());
        };
        let values = s.download_range(from, n)?;
        let mut span = self.buf.download_range(lo, hi - lo)?;
        let mut k = 0;
        l.for_each_index(|i| {
            span[i - lo] = values[k];
            k += 1;
        });
        self.buf.write_at(lo, &span)
    }

    fn index_select(&self, l: &Layout, dim: usize, idx: &[usize]) -> Result<Self> {
        // a bool gathers its 0/1 words and stays a bool
        let (x, off) = dense(&self.buf, l, 0)?;
        let out = launch_gather(&x, off, &l.shape, dim, idx)?;
        Ok(WgpuStorage::new(out, self.dtype))
    }

    fn index_add(&self, l: &Layout, dim: usize, idx: &[usize], size: usize) -> Result<Self> {
        let (g, off) = dense(&self.buf, l, 0)?;
        let out = launch_scatter_sum(&g, off, &l.shape, dim, idx, size)?;
        Ok(WgpuStorage::new(out, DType::F32))
    }

    fn unfold2d(&self, l: &Layout, win: &crate::backend::Window2d) -> Result<Self> {
        let (x, off) = dense(&self.buf, l, 0)?;
        Ok(WgpuStorage::new(launch_unfold2d(&x, off, win)?, DType::F32))
    }

    fn conv2d(
        &self,
        l: &Layout,
        (w, wl): (&Self, &Layout),
        bias: Option<(&Self, &Layout)>,
        win: &crate::backend::Window2d,
    ) -> Result<(Self, Option<Self>)> {
        let (x, x_off) = dense(&self.buf, l, 0)?;
        let (wd, w_off) = dense(&w.buf, wl, 0)?;
        // the kernel reads the bias from element 0
        let b = match bias {
            Some((b, bl)) if bl.is_contiguous() && bl.offset == 0 => Some(Held::Borrowed(&b.buf)),
            Some((b, bl)) => Some(Held::Owned(launch_unary(
                "copy",
                IDENTITY_CODE,
                0.0,
                0.0,
                &b.buf,
                bl,
            )?)),
            None => None,
        };
        let oc = wl.shape[0];
        let out = launch_conv_gemm((&x, x_off), (&wd, w_off), b.as_deref(), win, oc)?;
        Ok((WgpuStorage::new(out, DType::F32), None))
    }

    fn fold2d(&self, l: &Layout, win: &crate::backend::Window2d) -> Result<Self> {
        let (g, off) = dense(&self.buf, l, 0)?;
        Ok(WgpuStorage::new(launch_fold2d(&g, off, win)?, DType::F32))
    }

    fn max_pool2d(&self, l: &Layout, win: &crate::backend::Window2d) -> Result<(Self, Self)> {
        let (x, off) = dense(&self.buf, l, 0)?;
        let (y, arg) = launch_max_pool2d(&x, off, win)?;
        Ok((
            WgpuStorage::new(y, DType::F32),
            WgpuStorage::new(arg, DType::F32),
        ))
    }

    fn max_pool2d_grad(
        &self,
        l: &Layout,
        arg: &Self,
        win: &crate::backend::Window2d,
    ) -> Result<Self> {
        let (g, off) = dense(&self.buf, l, 0)?;
        Ok(WgpuStorage::new(
            launch_max_pool2d_grad(&g, off, &arg.buf, win)?,
            DType::F32,
        ))
    }

    /// Each part with `dim` moved first is copied (compacted first where it is not a
    /// contiguous run) after the one before, in queue-ordered buffer copies with no
    /// kernel; the result is that buffer read with `dim` moved back.
    fn cat(parts: &[(&Self, &Layout)], dim: usize, out_shape: &[usize]) -> Result<(Self, Layout)> {
        let ctx = super::context()?;
        let nd = out_shape.len();
        let (front, back) = dim_first(dim, nd);
        let total: usize = out_shape.iter().product();
        if total > u32::MAX as usize {
            return Err(Error::Memory(format!(
                "cat: {total} elements exceed the gpu backend's 32-bit indexing"
            )));
        }
        let out = ctx.alloc(total)?;
        let mut at = 0;
        for (s, l) in parts {
            let moved = l.permute(&front);
            let n = moved.numel();
            if n > 0 {
                let (b, from) = dense(&s.buf, &moved, 0)?;
                out.copy_from(at, &b, from, n)?;
            }
            at += n;
        }
        let dtype = parts.first().map_or(DType::F32, |(s, _)| s.dtype);
        let moved_shape: Vec<usize> = front.iter().map(|&j| out_shape[j]).collect();
        let layout = Layout::contiguous(&moved_shape).permute(&back);
        Ok((WgpuStorage::new(out, dtype), layout))
    }

    fn matmul(
        &self,
        la: &Layout,
        rhs: &Self,
        lb: &Layout,
        bias: Option<(&Self, &Layout)>,
        act: Option<UnaryOp>,
    ) -> Result<Self> {
        // strides must be non-negative for the kernel's u32 arithmetic
        let (a, la) = nonnegative(&self.buf, la)?;
        let (b, lb) = nonnegative(&rhs.buf, lb)?;
        // the kernels index the bias from element 0
        let bias = bias.map(|(c, lc)| from_zero(&c.buf, lc, 0)).transpose()?;
        let code = epilogue_code(act);
        let out = launch_matmul((&a, &la), (&b, &lb), bias.as_deref(), code)?;
        Ok(WgpuStorage::new(out, DType::F32))
    }

    fn matmul_row_sums(
        &self,
        la: &Layout,
        rhs: &Self,
        lb: &Layout,
    ) -> Option<Result<(Self, Option<Self>)>> {
        let run = || -> Result<(Self, Option<Self>)> {
            let (a, la) = nonnegative(&self.buf, la)?;
            let (b, lb) = nonnegative(&rhs.buf, lb)?;
            let (c, s) = launch_matmul_row_sums((&a, &la), (&b, &lb))?;
            let f32 = |b| WgpuStorage::new(b, DType::F32);
            Ok((f32(c), s.map(f32)))
        };
        Some(run())
    }

    fn matmul_add(
        &self,
        la: &Layout,
        rhs: &Self,
        lb: &Layout,
        (d, ld): (&Self, &Layout),
        cast: Option<DType>,
    ) -> Option<Result<Self>> {
        let f32 = |s: &WgpuStorage| s.dtype == DType::F32 && !s.packed;
        // each operand as the product reads it: float32 words, or for a cast to a half,
        // rounded to it on the way in, or packed in it as it rests
        let code = cast.map_or(0, half_kind);
        let read = |s: &WgpuStorage| match cast {
            None => f32(s).then_some(0),
            Some(to) => cast_read(s, to),
        };
        if cast.is_some() && (code == 0 || super::context().ok()?.coop_subgroup.is_some()) {
            return None; // as matmul_cast: the tensor cores' casts stay apart
        }
        let forward = |l: &Layout| l.strides.iter().all(|&st| st >= 0);
        let whole = ld.is_contiguous() && ld.offset == 0;
        if !f32(d) || la.ndim() != 2 || lb.ndim() != 2 {
            return None;
        }
        if !whole || !forward(la) || !forward(lb) || ld.shape[..] != [la.shape[0], lb.shape[1]] {
            return None;
        }
        let out_code = if code == 0 { 0 } else { code + 2 };
        let halves = [read(self)?, read(rhs)?, 0, out_code];
        Some(
            launch_matmul_add((&self.buf, la), (&rhs.buf, lb), &d.buf, halves)
                .map(|c| WgpuStorage::new(c, DType::F32)),
        )
    }

    fn matmul_cast(
        &self,
        la: &Layout,
        rhs: &Self,
        lb: &Layout,
        bias: Option<(&Self, &Layout)>,
        act: Option<UnaryOp>,
        cast: ProductCast,
    ) -> Option<Result<(Self, Option<Self>)>> {
        let code = half_kind(cast.to);
        if code == 0 {
            return None;
        }
        if code == 1 && super::context().ok()?.coop_subgroup.is_some() {
            return None; // the op casts, and the packed float16 operands go to the tensor cores
        }
        // each operand as it rests (packed in `to`) or as float32 words rounded on the way in
        let read = |s: &WgpuStorage| cast_read(s, cast.to);
        let out_code = match cast.out {
            DType::F32 => code + 2,
            d if d == cast.to => code,
            _ => return None,
        };
        let forward = |l: &Layout| l.strides.iter().all(|&st| st >= 0);
        if !forward(la) || !forward(lb) {
            return None;
        }
        let (bias, bias_code) = match bias {
            None => (None, 0),
            Some((c, lc)) if lc.is_contiguous() && lc.offset == 0 => (Some(&*c.buf), read(c)?),
            Some(_) => return None,
        };
        let halves = [read(self)?, read(rhs)?, bias_code, out_code];
        let total = crate::ops::matmul::BatchPlan::new(la, lb).ok()?.total();
        let sums = cast.row_sums && cast.out == DType::F32;
        let r = launch_matmul_cast(
            (&self.buf, la),
            (&rhs.buf, lb),
            bias,
            epilogue_code(act),
            halves,
            sums,
        )
        .transpose()?;
        Some(r.map(|(c, s)| {
            let c = match out_code == code {
                true => WgpuStorage::new_packed(c, cast.to, total),
                false => WgpuStorage::new(c, DType::F32),
            };
            (c, s.map(|s| WgpuStorage::new(s, DType::F32)))
        }))
    }

    fn optimizer_step(
        &mut self,
        l: &Layout,
        (g, gl): (&Self, &Layout),
        state: &mut [(&mut Self, &Layout)],
        rule: crate::optim::Rule,
    ) -> Result<()> {
        use super::OptParams;
        use crate::optim::Rule;
        let op = match rule {
            Rule::Sgd { .. } => "sgd",
            Rule::Adam { .. } => "adam",
            Rule::RmsProp(_) => "rmsprop",
            Rule::Adadelta(_) => "adadelta",
        };
        // the kernels update whole buffers from element 0
        let whole = |l: &Layout| -> Result<()> {
            if l.is_contiguous() && l.offset == 0 {
                Ok(())
            } else {
                Err(Error::Value(format!(
                    "{op}: the gpu kernel updates whole, contiguous tensors in place; got a view of shape {}",
                    crate::layout::fmt_shape(&l.shape)
                )))
            }
        };
        whole(l)?;
        for (_, sl) in state.iter() {
            whole(sl)?;
        }
        let n = l.numel();
        // the kernels update packed halves as they rest when every buffer is packed alike
        // (`Buffer::optimizer_step` decides; centered RMSprop gets float32 words)
        let half = rest_code(self);
        let grad = from_zero(&g.buf, gl, rest_code(g))?;
        let st: Vec<&GpuBuffer> = state.iter().map(|(s, _)| &*s.buf).collect();
        match rule {
            Rule::Sgd { h, first } => {
                let buf = st.first().copied();
                let flags =
                    (buf.is_some() as u32) | ((first as u32) << 1) | ((h.nesterov as u32) << 2);
                let params = OptParams {
                    half,
                    flags,
                    lr: h.lr as f32,
                    a: h.momentum as f32,
                    b: (1.0 - h.dampening) as f32,
                    wd: h.weight_decay as f32,
                    ..Default::default()
                };
                launch_optimizer(
                    OptKernel::Sgd,
                    &self.buf,
                    n,
                    &grad,
                    None,
                    [buf, None],
                    params,
                )
            }
            Rule::Adam { h, step } => {
                let ([a, b, eps, wd], [decay, step_size, sqrt_bc2, _]) = adam_consts(&h, step);
                let params = OptParams {
                    half,
                    lr: h.lr as f32,
                    a,
                    b,
                    eps,
                    wd,
                    decay,
                    step_size,
                    sqrt_bc2,
                    ..Default::default()
                };
                launch_optimizer(
                    OptKernel::Adam,
                    &self.buf,
                    n,
                    &grad,
                    None,
                    [Some(st[0]), Some(st[1])],
                    params,
                )?;
                patch_adam_step(h, step, false, false)
            }
            Rule::RmsProp(h) => {
                let sq = st[0];
                let buf = (h.momentum > 0.0).then(|| st[1]);
                let gavg = h.centered.then(|| st[st.len() - 1]);
                let params = OptParams {
                    half,
                    flags: (buf.is_some() as u32) | ((gavg.is_some() as u32) << 1),
                    lr: h.lr as f32,
                    a: h.alpha as f32,
                    b: h.momentum as f32,
                    eps: h.eps as f32,
                    wd: h.weight_decay as f32,
                    ..Default::default()
                };
                if let Some(ga) = gavg {
                    // the average first (it reads the parameter), then the update that reads it
                    launch_optimizer(
                        OptKernel::RmsPropAverage,
                        ga,
                        n,
                        &grad,
                        Some(&self.buf),
                        [None, None],
                        params,
                    )?;
                }
                launch_optimizer(
                    OptKernel::RmsProp,
                    &self.buf,
                    n,
                    &grad,
                    gavg,
                    [Some(sq), buf],
                    params,
                )
            }
            Rule::Adadelta(h) => {
                let params = OptParams {
                    half,
                    lr: h.lr as f32,
                    a: h.rho as f32,
                    eps: h.eps as f32,
                    wd: h.weight_decay as f32,
                    ..Default::default()
                };
                launch_optimizer(
                    OptKernel::Adadelta,
                    &self.buf,
                    n,
                    &grad,
                    None,
                    [Some(st[0]), Some(st[1])],
                    params,
                )
            }
        }
    }

    fn unscale_many(
        grads: &mut [(&mut Self, &Layout)],
        inv: f32,
        scale: Option<&Self>,
    ) -> Option<Result<Self>> {
        use super::shaders::MultiKind;
        let scale = match scale {
            Some(s) if whole_f32(s, &Layout::contiguous(&[s.len])) && s.len >= 2 => Some(&*s.buf),
            Some(_) => return None,
            None => None,
        };
        let least = if scale.is_some() { 1 } else { 2 };
        if multi_tensors(MultiKind::Unscale, scale.is_some()) < least
            || !grads.iter().all(|(s, l)| whole_f32(s, l))
        {
            return None;
        }
        let bufs: Vec<(&GpuBuffer, usize)> =
            grads.iter().map(|(s, l)| (&*s.buf, l.numel())).collect();
        Some(launch_multi_unscale(&bufs, inv, scale).map(|f| WgpuStorage::new(f, DType::F32)))
    }

    fn optimizer_step_many(
        items: &mut [OptItem<'_, Self>],
        rule: crate::optim::Rule,
    ) -> Result<()> {
        let single = match multi_step(items, rule, None) {
            Some(r) => r?,
            None => (0..items.len()).collect(),
        };
        for i in single {
            let it = &mut items[i];
            it.param
                .optimizer_step(it.layout, it.grad, &mut it.state, rule)?;
        }
        Ok(())
    }

    fn amp_update_scale(
        &mut self,
        found: &Self,
        h: crate::optim::ScaleUpdate,
    ) -> Option<Result<()>> {
        let ok = |s: &Self, n: usize| whole_f32(s, &Layout::contiguous(&[n])) && s.len == n;
        if !ok(self, 4) || !ok(found, 1) {
            return None;
        }
        Some(launch_amp_update(&self.buf, &found.buf, h))
    }

    fn optimizer_step_gated(
        items: &mut [OptItem<'_, Self>],
        rule: crate::optim::Rule,
        found: &Self,
        skipped: &Self,
        count: bool,
    ) -> Option<Result<()>> {
        let one = |s: &Self| whole_f32(s, &Layout::contiguous(&[1])) && s.len == 1;
        if !one(found) || !one(skipped) {
            return None;
        }
        let gate = ([&*found.buf, &*skipped.buf], count);
        multi_step(items, rule, Some(gate)).map(|r| r.map(|_| ()))
    }

    fn masked_affine(&self, l: &Layout, mask: &MaskSpec) -> Result<(Self, Self)> {
        // packed halves are read as they rest and the output packed alike
        let code = rest_code(self);
        let x = from_zero(&self.buf, l, code)?;
        let n = l.numel();
        let (y, a) = launch_masked_affine(&x, n, mask, code)?;
        Ok((
            self.elementwise_result(y, n, code),
            WgpuStorage::new(a, DType::F32),
        ))
    }

    fn masked_scale(&self, l: &Layout, saved: &Self, _mask: &MaskSpec) -> Result<Self> {
        // `saved` is the factor A itself (contiguous, one float an element); a packed g
        // gives a result packed alike
        let la = Layout::contiguous(&l.shape);
        let code = rest_code(self);
        let codes = half_codes([code, rest_code(saved), 0, code]);
        let mul = crate::ops::BinaryOp::Mul;
        let out = launch_binary_halves(
            "dropout",
            mul as u32,
            (&self.buf, l),
            (&saved.buf, &la),
            codes,
        )?;
        Ok(self.elementwise_result(out, l.numel(), code))
    }

    fn log_softmax_last(&self, l: &Layout) -> Option<Result<Self>> {
        let run = || {
            let cols = l.shape.last().copied().unwrap_or(1);
            let rows = l.numel().checked_div(cols).unwrap_or(0);
            let x = dense(&self.buf, l, 0)?;
            let out = launch_log_softmax(&x.0, x.1, rows, cols)?;
            Ok(WgpuStorage::new(out, DType::F32))
        };
        Some(run())
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
        // x is read as it rests (packed halves included); a view is made dense first
        let x_half = rest_code(self);
        let x = from_zero(&self.buf, l, x_half)?;
        let gamma = gamma.map(|(s, sl)| from_zero(&s.buf, sl, 0)).transpose()?;
        let beta = beta.map(|(s, sl)| from_zero(&s.buf, sl, 0)).transpose()?;
        let residual = residual
            .map(|(s, sl)| from_zero(&s.buf, sl, 0))
            .transpose()?;
        let running = match &running {
            Some([(m, ml), (v, vl)]) => {
                for sl in [ml, vl] {
                    if sl.offset != 0 {
                        // the kernel binds whole buffers: it cannot write at an offset
                        return Err(Error::Value(format!(
                            "batch_norm: the gpu kernel updates the running statistics in place from element 0; got a view at offset {}",
                            sl.offset
                        )));
                    }
                }
                Some((&*m.buf, &*v.buf))
            }
            None => None,
        };
        let (y, stats) = launch_batch_norm(
            &x,
            gamma.as_deref(),
            beta.as_deref(),
            running,
            residual.as_deref(),
            spec,
            x_half,
        )?;
        Ok((
            WgpuStorage::new(y, DType::F32),
            WgpuStorage::new(stats, DType::F32),
        ))
    }

    fn batch_norm_grad(
        &self,
        l: &Layout,
        stats: &Self,
        (g, gl): (&Self, &Layout),
        spec: &BnSpec,
    ) -> Result<(Self, Self, Self)> {
        // x and g are read as they rest (packed halves included), and dx written packed in
        // x's half dtype where the kernel can
        let codes = [rest_code(g), rest_code(self), rest_code(self)];
        let x = from_zero(&self.buf, l, codes[1])?;
        let g = from_zero(&g.buf, gl, codes[0])?;
        let (dx, dw, db, packed) = launch_batch_norm_grad(&g, &x, &stats.buf, spec, codes)?;
        let dx = match packed {
            true => WgpuStorage::new_packed(dx, self.dtype, l.numel()),
            false => WgpuStorage::new(dx, DType::F32),
        };
        Ok((
            dx,
            WgpuStorage::new(dw, DType::F32),
            WgpuStorage::new(db, DType::F32),
        ))
    }

    fn cross_entropy(&self, l: &Layout, labels: &[i64], smoothing: f64) -> Result<(Self, Self)> {
        // packed half logits are read as they rest
        let half = rest_code(self);
        let x = from_zero(&self.buf, l, half)?;
        let (per, saved) =
            launch_cross_entropy((&x, half), l.shape[0], l.shape[1], labels, smoothing)?;
        Ok((
            WgpuStorage::new(per, DType::F32),
            WgpuStorage::new(saved, DType::F32),
        ))
    }

    fn cross_entropy_grad(
        &self,
        l: &Layout,
        saved: &Self,
        _labels: &[i64], // the saved rows hold them
        (g, gl): (&Self, &Layout),
        spec: &XentGradSpec,
    ) -> Result<Self> {
        // packed half logits and gradients are read as they rest, and the gradient of
        // packed logits is written packed alike (no pack pass after)
        let (x_half, g_half) = (rest_code(self), rest_code(g));
        let x = from_zero(&self.buf, l, x_half)?;
        let g = from_zero(&g.buf, gl, g_half)?;
        let dx = launch_cross_entropy_grad(
            (&x, x_half),
            l.shape[0],
            l.shape[1],
            &saved.buf,
            (&g, g_half),
            spec,
            x_half,
        )?;
        if x_half != 0 {
            return Ok(WgpuStorage::new_packed(dx, self.dtype, l.numel()));
        }
        Ok(WgpuStorage::new(dx, DType::F32))
    }
}

/// `l`'s elements as a dense run from element 0 (the fused kernels index from 0): the
/// buffer itself when it already is one, else a compact copy, packed as the buffer rests
/// (`code`, the kernels' half code).
fn from_zero<'a>(buf: &'a GpuBuffer, l: &Layout, code: u32) -> Result<Held<'a>> {
    if l.is_contiguous() && l.offset == 0 {
        Ok(Held::Borrowed(buf))
    } else {
        let codes = half_codes([code, 0, 0, code]);
        Ok(Held::Owned(launch_unary_halves(
            "copy", COPY, buf, l, codes,
        )?))
    }
}

/// `l` with non-negative strides (the matmul kernels' u32 arithmetic): the buffer itself,
/// or a compact copy of a view that steps backwards.
fn nonnegative<'a>(buf: &'a GpuBuffer, l: &Layout) -> Result<(Held<'a>, Layout)> {
    if l.strides.iter().any(|&s| s < 0) {
        let c = launch_unary("copy", IDENTITY_CODE, 0.0, 0.0, buf, l)?;
        Ok((Held::Owned(c), Layout::contiguous(&l.shape)))
    } else {
        Ok((Held::Borrowed(buf), l.clone()))
    }
}

/// A fusable activation as the matmul kernels' epilogue takes it: (op code, alpha), 0 none.
fn epilogue_code(act: Option<UnaryOp>) -> (u32, f32) {
    act.map_or((0, 0.0), |op| {
        let (c, alpha, _) = op.code();
        (c, alpha)
    })
}

/// Indices come back as float32 words, exact below 2**24; longer axes go to the host.
const MAX_EXACT_INDEX: usize = 1 << 24;

/// Comparison codes follow the arithmetic ones in the binary kernel (B_EQ...), then the
/// logical ones (B_AND...), in CmpOp's and LogicOp's orders.
const CMP_BASE: u32 = 7;
const LOGIC_BASE: u32 = 13;
