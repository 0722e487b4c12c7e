//! `Buffer`'s dispatch: one method per backend kernel, each a `match` sending the call to
//! the backend that holds the operands (the only place that names the backends'
//! storages); operands on different devices are a `DeviceError`.

use super::*;
use std::borrow::Cow;

#[cfg_attr(not(feature = "gpu"), allow(dead_code))] // every mismatch is a GPU arm
fn mismatch(op: &str) -> Error {
    Error::Device(format!(
        "{op}: expected all tensors on one device, got cpu and gpu; move one with .to()"
    ))
}

/// Storage-only dtypes (uint8, int32, float16, bfloat16) reach the host kernels in their
/// compute dtype (`DType::compute`): the one place they are converted, so every kernel
/// serves them. Results in that compute dtype go back with `narrow`.
#[inline(always)]
fn wide(s: &CpuStorage) -> Cow<'_, CpuStorage> {
    match s.widened() {
        Some(w) => Cow::Owned(w),
        None => Cow::Borrowed(s),
    }
}

/// A kernel's result converted back to the storage-only dtype `to` of its operands
/// (integers wrap, halves round to nearest even); other results as they are.
#[inline(always)]
fn narrow(out: CpuStorage, to: DType) -> Buffer {
    Buffer::Cpu(out.narrowed(to))
}

/// A GPU operand as the kernels read it: a packed half storage unpacked into the float32
/// words of its values (the GPU's `wide`), any other storage as it is.
#[cfg(feature = "gpu")]
enum GpuWide<'a> {
    Same(&'a wgpu::WgpuStorage),
    Unpacked(wgpu::WgpuStorage),
}

#[cfg(feature = "gpu")]
impl std::ops::Deref for GpuWide<'_> {
    type Target = wgpu::WgpuStorage;
    fn deref(&self) -> &wgpu::WgpuStorage {
        match self {
            GpuWide::Same(s) => s,
            GpuWide::Unpacked(s) => s,
        }
    }
}

/// See [`GpuWide`].
#[cfg(feature = "gpu")]
#[inline(always)]
fn gw(s: &wgpu::WgpuStorage) -> Result<GpuWide<'_>> {
    Ok(match s.unpacked()? {
        Some(u) => GpuWide::Unpacked(u),
        None => GpuWide::Same(s),
    })
}

/// A GPU kernel's float32 result rounded to the half dtype `to` of its operands and packed
/// two to a word, as the host rounds (`narrow`); other results as they are.
#[cfg(feature = "gpu")]
fn gpu_narrow(out: wgpu::WgpuStorage, to: DType) -> Result<Buffer> {
    if to.is_narrow()
        && to.is_float()
        && !out.packed
        && (out.dtype == DType::F32 || out.dtype == to)
    {
        return out.packed_as(to).map(Buffer::Gpu);
    }
    Ok(Buffer::Gpu(out))
}

/// Runs an in-place GPU kernel: packed operands are unpacked, the kernel updates the
/// float32 copies, and they are packed back into their own buffers (views and optimizer
/// state keep their buffer); an unpacked half operand is rounded and packed afresh.
#[cfg(feature = "gpu")]
fn gpu_in_place<R>(
    bufs: &mut [&mut wgpu::WgpuStorage],
    f: impl FnOnce(&mut [&mut wgpu::WgpuStorage]) -> Result<R>,
) -> Result<R> {
    let mut temps: Vec<Option<wgpu::WgpuStorage>> =
        bufs.iter().map(|b| b.unpacked()).collect::<Result<_>>()?;
    let r = {
        let mut refs: Vec<&mut wgpu::WgpuStorage> = bufs
            .iter_mut()
            .zip(temps.iter_mut())
            .map(|(b, t)| match t {
                Some(t) => t,
                None => &mut **b,
            })
            .collect();
        f(&mut refs)?
    };
    for (b, t) in bufs.iter_mut().zip(temps) {
        match t {
            Some(t) => t.pack_into(b)?,
            None if b.dtype.is_narrow() && b.dtype.is_float() => **b = b.packed_as(b.dtype)?,
            None => {}
        }
    }
    Ok(r)
}

/// Runs an in-place host kernel on storage-only operands: each narrow one is widened,
/// the kernel updates the wide copies, and they are written back narrowed.
fn in_place_wide<R>(
    bufs: &mut [&mut CpuStorage],
    f: impl FnOnce(&mut [&mut CpuStorage]) -> Result<R>,
) -> Result<R> {
    if !bufs.iter().any(|b| b.dtype().is_narrow()) {
        return f(bufs);
    }
    let dts: Vec<DType> = bufs.iter().map(|b| b.dtype()).collect();
    let mut wides: Vec<CpuStorage> = bufs
        .iter()
        .map(|b| b.widened().unwrap_or_else(|| (**b).clone()))
        .collect();
    let r = {
        let mut refs: Vec<&mut CpuStorage> = wides.iter_mut().collect();
        f(&mut refs)?
    };
    for ((b, w), dt) in bufs.iter_mut().zip(wides).zip(dts) {
        // written into the existing memory, never a new vector: a storage's host memory
        // does not move while it lives (NumPy may be viewing it through DLPack)
        let narrow = w.narrowed(dt);
        let all = Layout::contiguous(&[narrow.len()]);
        b.write(&all, &narrow, &all)?;
    }
    Ok(r)
}

impl Buffer {
    /// See [`BackendStorage::unary`].
    #[inline(always)]
    pub(crate) fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => wide(s).unary(l, op).map(|o| narrow(o, s.dtype())),
            #[cfg(feature = "gpu")]
            // packed halves are read and written as they rest
            Buffer::Gpu(s) => gpu_narrow(s.unary(l, op)?, s.dtype),
        }
    }

    /// See [`BackendStorage::unary_grad`].
    #[inline]
    pub(crate) fn unary_grad(
        &self,
        xl: &Layout,
        y: Option<(&Buffer, &Layout)>,
        g: (&Buffer, &Layout),
        op: UnaryOp,
    ) -> Result<Buffer> {
        match (self, g.0) {
            (Buffer::Cpu(x), Buffer::Cpu(gb)) => {
                let y = match y {
                    Some((Buffer::Cpu(yb), yl)) => Some((yb, yl)),
                    None => None,
                    #[cfg(feature = "gpu")]
                    Some(_) => return Err(mismatch(op.backward_name())),
                };
                let (yw, gw) = (y.map(|(yb, yl)| (wide(yb), yl)), wide(gb));
                let y = yw.as_ref().map(|(yb, yl)| (&**yb, *yl));
                wide(x)
                    .unary_grad(xl, y, (&gw, g.1), op)
                    .map(|o| narrow(o, x.dtype()))
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(x), Buffer::Gpu(gb)) => {
                let y = match y {
                    Some((Buffer::Gpu(yb), yl)) => Some((yb, yl)),
                    None => None,
                    Some(_) => return Err(mismatch(op.backward_name())),
                };
                gpu_narrow(x.unary_grad(xl, y, (gb, g.1), op)?, x.dtype)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch(op.backward_name())),
        }
    }

    /// See [`BackendStorage::copy`].
    #[inline(always)]
    pub(crate) fn copy(&self, l: &Layout) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => s.copy(l).map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => gpu_narrow(s.copy(l)?, s.dtype),
        }
    }

    /// See [`BackendStorage::to_host`].
    #[inline]
    pub(crate) fn to_host(&self, l: &Layout) -> Result<CpuStorage> {
        match self {
            Buffer::Cpu(s) => s.to_host(l),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.to_host(l),
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::cast`].
    #[inline]
    pub(crate) fn cast(&self, l: &Layout, dtype: DType) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => s.cast(l, dtype),
            // float32 (or bool) to a half: rounded and packed in one pass where contiguous
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s)
                if matches!(s.dtype, DType::F32 | DType::Bool)
                    && matches!(dtype, DType::F16 | DType::BF16) =>
            {
                match s.packed_run(l, dtype)? {
                    Some(p) => Ok(Buffer::Gpu(p)),
                    None => match s.cast(l, dtype)? {
                        Buffer::Gpu(o) => gpu_narrow(o, dtype),
                        host => Ok(host),
                    },
                }
            }
            // a whole packed half storage to float32: its unpacked words are the result
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s)
                if s.packed
                    && dtype == DType::F32
                    && l.is_contiguous()
                    && l.offset == 0
                    && l.numel() == s.len() =>
            {
                let mut w = s.unpacked()?.expect("packed");
                w.dtype = DType::F32;
                Ok(Buffer::Gpu(w))
            }
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => match gw(s)?.cast(l, dtype)? {
                Buffer::Gpu(o) => gpu_narrow(o, dtype),
                host => Ok(host),
            },
        }
    }

    /// Host elements placed on `device` (the same storage for the cpu).
    pub(crate) fn upload(host: CpuStorage, device: Device) -> Result<Buffer> {
        match device {
            Device::Cpu => Ok(Buffer::Cpu(host)),
            #[cfg(feature = "gpu")]
            Device::Gpu => wgpu::WgpuStorage::upload(&host).map(Buffer::Gpu),
            #[cfg(not(feature = "gpu"))]
            Device::Gpu => Err(no_gpu("to")),
        }
    }
}

/// Dispatches a two-operand storage method to the backend holding both operands.
macro_rules! zip2 {
    ($name:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Buffer::Cpu(x0), Buffer::Cpu(y0)) => {
                let (dt, $x, $y) = (x0.dtype(), &*wide(x0), &*wide(y0));
                $body.map(|o| narrow(o, dt))
            }
            #[cfg(feature = "gpu")]
            // the GPU's elementwise kernels read packed halves as they rest
            (Buffer::Gpu(x0), Buffer::Gpu(y0)) => {
                let (dt, $x, $y) = (x0.dtype, x0, y0);
                gpu_narrow($body?, dt)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch($name)),
        }
    };
}

impl Buffer {
    /// See [`BackendStorage::binary`].
    #[inline(always)]
    pub(crate) fn binary(
        &self,
        la: &Layout,
        rhs: &Buffer,
        lb: &Layout,
        op: BinaryOp,
    ) -> Result<Buffer> {
        zip2!(op.name(), self, rhs, |a, b| a.binary(la, b, lb, op))
    }

    /// See [`BackendStorage::compare`].
    #[inline]
    pub(crate) fn compare(
        &self,
        la: &Layout,
        rhs: &Buffer,
        lb: &Layout,
        op: CmpOp,
    ) -> Result<Buffer> {
        zip2!("compare", self, rhs, |a, b| a.compare(la, b, lb, op))
    }

    /// See [`BackendStorage::logical`].
    #[inline]
    pub(crate) fn logical(
        &self,
        la: &Layout,
        rhs: &Buffer,
        lb: &Layout,
        op: LogicOp,
    ) -> Result<Buffer> {
        zip2!(op.name(), self, rhs, |a, b| a.logical(la, b, lb, op))
    }

    /// See [`BackendStorage::select`].
    #[inline]
    pub(crate) fn select(
        &self,
        lc: &Layout,
        (a, la): (&Buffer, &Layout),
        (b, lb): (&Buffer, &Layout),
    ) -> Result<Buffer> {
        match (self, a, b) {
            (Buffer::Cpu(c), Buffer::Cpu(x), Buffer::Cpu(y)) => c
                .select(lc, (&wide(x), la), (&wide(y), lb))
                .map(|o| narrow(o, x.dtype())),
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(c), Buffer::Gpu(x), Buffer::Gpu(y)) => {
                gpu_narrow(gw(c)?.select(lc, (&*gw(x)?, la), (&*gw(y)?, lb))?, x.dtype)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("where")),
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::reduce`].
    #[inline(always)]
    pub(crate) fn reduce(&self, plan: &ReducePlan, op: ReduceOp) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => wide(s).reduce(plan, op).map(|o| narrow(o, s.dtype())),
            #[cfg(feature = "gpu")]
            // packed halves are read as they rest
            Buffer::Gpu(s) => gpu_narrow(s.reduce(plan, op)?, s.dtype),
        }
    }

    /// The sum (`plan`) of a half storage as float32 words holding the half result's values
    /// (what the half sum cast to float32 gives) in one pass, where a GPU storage rests
    /// packed (the kernel rounds as it writes); None elsewhere (the caller sums and casts).
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    pub(crate) fn sum_rounded(&self, plan: &ReducePlan) -> Option<Result<Buffer>> {
        match self {
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.sum_rounded(plan).map(|r| r.map(Buffer::Gpu)),
            _ => None,
        }
    }

    /// See [`BackendStorage::arg_reduce`].
    #[inline]
    pub(crate) fn arg_reduce(
        &self,
        l: &Layout,
        dims: (usize, usize, usize),
        want_max: bool,
    ) -> Result<Vec<i64>> {
        match self {
            Buffer::Cpu(s) => wide(s).arg_reduce(l, dims, want_max),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => gw(s)?.arg_reduce(l, dims, want_max),
        }
    }

    /// See [`BackendStorage::correct_count`].
    #[inline]
    pub(crate) fn correct_count(&self, l: &Layout, labels: &[i64]) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => wide(s).correct_count(l, labels).map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => gw(s)?.correct_count(l, labels).map(Buffer::Gpu),
        }
    }

    /// See [`BackendStorage::log_softmax_last`].
    #[inline]
    pub(crate) fn log_softmax_last(&self, l: &Layout) -> Option<Result<Buffer>> {
        match self {
            Buffer::Cpu(s) => wide(s)
                .log_softmax_last(l)
                .map(|r| r.map(|o| narrow(o, s.dtype()))),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => {
                let w = match gw(s) {
                    Ok(w) => w,
                    Err(e) => return Some(Err(e)),
                };
                w.log_softmax_last(l)
                    .map(|r| r.and_then(|o| gpu_narrow(o, s.dtype)))
            }
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::write`].
    #[inline]
    pub(crate) fn write(&mut self, l: &Layout, src: &Buffer, ls: &Layout) -> Result<()> {
        match (self, src) {
            (Buffer::Cpu(d), Buffer::Cpu(s)) => d.write(l, s, ls),
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(d), Buffer::Gpu(s)) => {
                let s = gw(s)?;
                gpu_in_place(&mut [d], |d| d[0].write(l, &s, ls))
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("copy_")),
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::index_select`].
    #[inline]
    pub(crate) fn index_select(&self, l: &Layout, dim: usize, idx: &[usize]) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => s.index_select(l, dim, idx).map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => gpu_narrow(gw(s)?.index_select(l, dim, idx)?, s.dtype),
        }
    }

    /// See [`BackendStorage::unfold2d`].
    pub(crate) fn unfold2d(&self, l: &Layout, win: &super::Window2d) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => wide(s).unfold2d(l, win).map(|o| narrow(o, s.dtype())),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => gpu_narrow(gw(s)?.unfold2d(l, win)?, s.dtype),
        }
    }

    /// See [`BackendStorage::conv2d`].
    pub(crate) fn conv2d(
        &self,
        l: &Layout,
        (w, wl): (&Buffer, &Layout),
        bias: Option<(&Buffer, &Layout)>,
        win: &super::Window2d,
    ) -> Result<(Buffer, Option<Buffer>)> {
        let host = |(o, c): (CpuStorage, Option<CpuStorage>), dt: DType| {
            (narrow(o, dt), c.map(|c| narrow(c, dt)))
        };
        #[cfg(feature = "gpu")]
        let dt = self.dtype();
        #[cfg(feature = "gpu")]
        let device = |(o, c): (wgpu::WgpuStorage, Option<wgpu::WgpuStorage>)| {
            Ok::<_, Error>((gpu_narrow(o, dt)?, c.map(Buffer::Gpu)))
        };
        match (self, w, bias) {
            (Buffer::Cpu(x), Buffer::Cpu(wb), None) => wide(x)
                .conv2d(l, (&wide(wb), wl), None, win)
                .map(|r| host(r, x.dtype())),
            (Buffer::Cpu(x), Buffer::Cpu(wb), Some((Buffer::Cpu(b), bl))) => wide(x)
                .conv2d(l, (&wide(wb), wl), Some((&wide(b), bl)), win)
                .map(|r| host(r, x.dtype())),
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(x), Buffer::Gpu(wb), None) => {
                device(gw(x)?.conv2d(l, (&*gw(wb)?, wl), None, win)?)
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(x), Buffer::Gpu(wb), Some((Buffer::Gpu(b), bl))) => {
                device(gw(x)?.conv2d(l, (&*gw(wb)?, wl), Some((&*gw(b)?, bl)), win)?)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("conv2d")),
        }
    }

    /// See [`BackendStorage::conv2d_grad`].
    pub(crate) fn conv2d_grad(
        &self,
        l: &Layout,
        (w, wl): (&Buffer, &Layout),
        (g, gl): (&Buffer, &Layout),
        win: &super::Window2d,
        want: (bool, bool),
    ) -> Option<Result<(Option<Buffer>, Option<Buffer>)>> {
        match (self, w, g) {
            (Buffer::Cpu(x), Buffer::Cpu(wb), Buffer::Cpu(gb)) => {
                let dt = x.dtype();
                let r = wide(x).conv2d_grad(l, (&wide(wb), wl), (&wide(gb), gl), win, want)?;
                Some(r.map(|(dx, dw)| (dx.map(|d| narrow(d, dt)), dw.map(|d| narrow(d, dt)))))
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(x), Buffer::Gpu(wb), Buffer::Gpu(gb)) => {
                let (x, wb, gb) = match (gw(x), gw(wb), gw(gb)) {
                    (Ok(x), Ok(wb), Ok(gb)) => (x, wb, gb),
                    (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return Some(Err(e)),
                };
                let r = x.conv2d_grad(l, (&wb, wl), (&gb, gl), win, want)?;
                Some(r.map(|(dx, dw)| (dx.map(Buffer::Gpu), dw.map(Buffer::Gpu))))
            }
            #[cfg(feature = "gpu")]
            _ => Some(Err(mismatch("conv2d backward"))),
        }
    }

    /// See [`BackendStorage::fold2d`].
    pub(crate) fn fold2d(&self, l: &Layout, win: &super::Window2d) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => wide(s).fold2d(l, win).map(|o| narrow(o, s.dtype())),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => gpu_narrow(gw(s)?.fold2d(l, win)?, s.dtype),
        }
    }

    /// See [`BackendStorage::max_pool2d`].
    pub(crate) fn max_pool2d(&self, l: &Layout, win: &super::Window2d) -> Result<(Buffer, Buffer)> {
        match self {
            Buffer::Cpu(s) => wide(s)
                .max_pool2d(l, win)
                .map(|(y, a)| (narrow(y, s.dtype()), Buffer::Cpu(a))),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => {
                let (y, a) = gw(s)?.max_pool2d(l, win)?;
                Ok((gpu_narrow(y, s.dtype)?, Buffer::Gpu(a)))
            }
        }
    }

    /// See [`BackendStorage::max_pool2d_grad`].
    pub(crate) fn max_pool2d_grad(
        &self,
        l: &Layout,
        arg: &Buffer,
        win: &super::Window2d,
    ) -> Result<Buffer> {
        match (self, arg) {
            (Buffer::Cpu(g), Buffer::Cpu(a)) => wide(g)
                .max_pool2d_grad(l, a, win)
                .map(|o| narrow(o, g.dtype())),
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(g), Buffer::Gpu(a)) => {
                gpu_narrow(gw(g)?.max_pool2d_grad(l, a, win)?, g.dtype)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("max_pool2d backward")),
        }
    }

    /// See [`BackendStorage::index_add`].
    #[inline]
    pub(crate) fn index_add(
        &self,
        l: &Layout,
        dim: usize,
        idx: &[usize],
        size: usize,
    ) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => wide(s)
                .index_add(l, dim, idx, size)
                .map(|o| narrow(o, s.dtype())),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => gpu_narrow(gw(s)?.index_add(l, dim, idx, size)?, s.dtype),
        }
    }

    /// See [`BackendStorage::cat`]; the parts must share a device.
    #[inline]
    pub(crate) fn cat(
        parts: &[(&Buffer, &Layout)],
        dim: usize,
        out_shape: &[usize],
    ) -> Result<(Buffer, Layout)> {
        if parts.iter().all(|(b, _)| matches!(b, Buffer::Cpu(_))) {
            let cpu: Vec<(&CpuStorage, &Layout)> = parts
                .iter()
                .filter_map(|(b, l)| match b {
                    Buffer::Cpu(s) => Some((s, *l)),
                    #[cfg(feature = "gpu")]
                    _ => None,
                })
                .collect();
            let (s, l) = CpuStorage::cat(&cpu, dim, out_shape)?;
            return Ok((Buffer::Cpu(s), l));
        }
        #[cfg(feature = "gpu")]
        {
            let mut wides = Vec::with_capacity(parts.len());
            for (b, l) in parts {
                match b {
                    Buffer::Gpu(s) => wides.push((gw(s)?, *l)),
                    Buffer::Cpu(_) => return Err(mismatch("cat")),
                }
            }
            let gpu: Vec<(&wgpu::WgpuStorage, &Layout)> =
                wides.iter().map(|(s, l)| (&**s, *l)).collect();
            let (s, l) = wgpu::WgpuStorage::cat(&gpu, dim, out_shape)?;
            Ok((gpu_narrow(s, parts[0].0.dtype())?, l))
        }
        #[cfg(not(feature = "gpu"))]
        unreachable!("every part is a host storage without the gpu feature")
    }
}

impl Buffer {
    /// See [`BackendStorage::matmul`].
    #[inline]
    pub(crate) fn matmul(
        &self,
        la: &Layout,
        rhs: &Buffer,
        lb: &Layout,
        bias: Option<(&Buffer, &Layout)>,
        act: Option<UnaryOp>,
    ) -> Result<Buffer> {
        #[cfg(feature = "gpu")]
        if let (Buffer::Gpu(a), Buffer::Gpu(b)) = (self, rhs) {
            // packed float16 operands go to the tensor cores where the adapter has them,
            let bias_gpu = match bias {
                None => Some(None),
                Some((Buffer::Gpu(c), lc)) => Some(Some((c, lc))),
                Some(_) => None,
            };
            if let Some(bg) = bias_gpu {
                // then the float32 kernels, reading packed halves as they rest
                let out = a
                    .matmul_tensor_cores(la, b, lb, bg, act)
                    .or_else(|| a.matmul_halves(la, b, lb, bg, act));
                if let Some(out) = out {
                    return gpu_narrow(out?, a.dtype);
                }
            }
        }
        match (self, rhs, bias) {
            (Buffer::Cpu(a), Buffer::Cpu(b), None) => wide(a)
                .matmul(la, &wide(b), lb, None, act)
                .map(|o| narrow(o, a.dtype())),
            (Buffer::Cpu(a), Buffer::Cpu(b), Some((Buffer::Cpu(c), lc))) => wide(a)
                .matmul(la, &wide(b), lb, Some((&wide(c), lc)), act)
                .map(|o| narrow(o, a.dtype())),
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(a), Buffer::Gpu(b), None) => {
                gpu_narrow(gw(a)?.matmul(la, &*gw(b)?, lb, None, act)?, a.dtype)
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(a), Buffer::Gpu(b), Some((Buffer::Gpu(c), lc))) => gpu_narrow(
                gw(a)?.matmul(la, &*gw(b)?, lb, Some((&*gw(c)?, lc)), act)?,
                a.dtype,
            ),
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("matmul")),
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::matmul_row_sums`]; float32 operands only (halves and the host
    /// go the separate way).
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    pub(crate) fn matmul_row_sums(
        &self,
        la: &Layout,
        rhs: &Buffer,
        lb: &Layout,
    ) -> Option<Result<(Buffer, Option<Buffer>)>> {
        match (self, rhs) {
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(a), Buffer::Gpu(b)) if a.dtype == DType::F32 && b.dtype == DType::F32 => {
                let r = a.matmul_row_sums(la, b, lb)?;
                Some(r.map(|(c, s)| (Buffer::Gpu(c), s.map(Buffer::Gpu))))
            }
            _ => None,
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::matmul_add`]: on the backend holding every operand, or None.
    pub(crate) fn matmul_add(
        &self,
        la: &Layout,
        rhs: &Buffer,
        lb: &Layout,
        d: (&Buffer, &Layout),
        cast: Option<DType>,
    ) -> Option<Result<Buffer>> {
        match (self, rhs, d.0) {
            (Buffer::Cpu(a), Buffer::Cpu(b), Buffer::Cpu(c)) => {
                Some(a.matmul_add(la, b, lb, (c, d.1), cast)?.map(Buffer::Cpu))
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(a), Buffer::Gpu(b), Buffer::Gpu(c)) => {
                Some(a.matmul_add(la, b, lb, (c, d.1), cast)?.map(Buffer::Gpu))
            }
            #[cfg(feature = "gpu")]
            _ => None,
        }
    }

    /// See [`BackendStorage::matmul_cast`]: on the backend holding every operand, or None.
    pub(crate) fn matmul_cast(
        &self,
        la: &Layout,
        rhs: &Buffer,
        lb: &Layout,
        bias: Option<(&Buffer, &Layout)>,
        act: Option<UnaryOp>,
        cast: ProductCast,
    ) -> Option<Result<(Buffer, Option<Buffer>)>> {
        match (self, rhs, bias) {
            (Buffer::Cpu(a), Buffer::Cpu(b), None) => {
                let r = a.matmul_cast(la, b, lb, None, act, cast)?;
                Some(r.map(|(c, s)| (Buffer::Cpu(c), s.map(Buffer::Cpu))))
            }
            (Buffer::Cpu(a), Buffer::Cpu(b), Some((Buffer::Cpu(c), lc))) => {
                let r = a.matmul_cast(la, b, lb, Some((c, lc)), act, cast)?;
                Some(r.map(|(c, s)| (Buffer::Cpu(c), s.map(Buffer::Cpu))))
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(a), Buffer::Gpu(b), None) => {
                let r = a.matmul_cast(la, b, lb, None, act, cast)?;
                Some(r.map(|(c, s)| (Buffer::Gpu(c), s.map(Buffer::Gpu))))
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(a), Buffer::Gpu(b), Some((Buffer::Gpu(c), lc))) => {
                let r = a.matmul_cast(la, b, lb, Some((c, lc)), act, cast)?;
                Some(r.map(|(c, s)| (Buffer::Gpu(c), s.map(Buffer::Gpu))))
            }
            _ => None,
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::unscale_many`]: all on the GPU, or None.
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    pub(crate) fn unscale_many(
        grads: &mut [(&mut Buffer, &Layout)],
        inv: f32,
        scale: Option<&Buffer>,
    ) -> Option<Result<Buffer>> {
        #[cfg(feature = "gpu")]
        {
            let mut gpu: Vec<(&mut wgpu::WgpuStorage, &Layout)> = Vec::with_capacity(grads.len());
            for (b, l) in grads.iter_mut() {
                match b {
                    Buffer::Gpu(s) => gpu.push((s, *l)),
                    Buffer::Cpu(_) => return None,
                }
            }
            let scale = match scale {
                Some(Buffer::Gpu(s)) => Some(s),
                Some(Buffer::Cpu(_)) => return None,
                None => None,
            };
            let r = wgpu::WgpuStorage::unscale_many(&mut gpu, inv, scale)?;
            Some(r.map(Buffer::Gpu))
        }
        #[cfg(not(feature = "gpu"))]
        None
    }
}

impl Buffer {
    /// See [`BackendStorage::optimizer_step`].
    pub(crate) fn optimizer_step(
        &mut self,
        l: &Layout,
        (g, gl): (&Buffer, &Layout),
        state: &mut [(&mut Buffer, &Layout)],
        rule: crate::optim::Rule,
    ) -> Result<()> {
        match (self, g) {
            (Buffer::Cpu(p), Buffer::Cpu(g)) => {
                let mut bufs: Vec<&mut CpuStorage> = vec![p];
                let mut layouts = Vec::with_capacity(state.len());
                for (b, sl) in state.iter_mut() {
                    match &mut **b {
                        Buffer::Cpu(s) => bufs.push(s),
                        #[cfg(feature = "gpu")]
                        Buffer::Gpu(_) => return Err(mismatch("optimizer")),
                    }
                    layouts.push(*sl);
                }
                let g = wide(g);
                in_place_wide(&mut bufs, |bufs| {
                    let (p, rest) = bufs.split_first_mut().expect("the parameter is first");
                    let mut st: Vec<(&mut CpuStorage, &Layout)> =
                        rest.iter_mut().map(|s| &mut **s).zip(layouts).collect();
                    p.optimizer_step(l, (&g, gl), &mut st, rule)
                })
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(p), Buffer::Gpu(g)) => {
                let mut bufs: Vec<&mut wgpu::WgpuStorage> = vec![p];
                let mut layouts = Vec::with_capacity(state.len());
                for (b, sl) in state.iter_mut() {
                    match &mut **b {
                        Buffer::Gpu(s) => bufs.push(s),
                        Buffer::Cpu(_) => return Err(mismatch("optimizer")),
                    }
                    layouts.push(*sl);
                }
                // the kernels update a packed half parameter, gradient and state as they
                // rest (in float32, rounded back, in the same kernel); centered RMSprop's
                // two passes hand the gradient average on unrounded, so it unpacks
                let packed = |s: &wgpu::WgpuStorage| s.packed && s.dtype == g.dtype;
                let in_kernel = match rule {
                    crate::optim::Rule::RmsProp(h) => !h.centered,
                    _ => true,
                };
                if in_kernel && g.packed && bufs.iter().all(|b| packed(b)) {
                    let (p, rest) = bufs.split_first_mut().expect("the parameter is first");
                    let mut st: Vec<(&mut wgpu::WgpuStorage, &Layout)> =
                        rest.iter_mut().map(|s| &mut **s).zip(layouts).collect();
                    return p.optimizer_step(l, (g, gl), &mut st, rule);
                }
                let g = gw(g)?;
                // a half parameter and its state, updated in float32, rounded back
                gpu_in_place(&mut bufs, |bufs| {
                    let (p, rest) = bufs.split_first_mut().expect("the parameter is first");
                    let mut st: Vec<(&mut wgpu::WgpuStorage, &Layout)> =
                        rest.iter_mut().map(|s| &mut **s).zip(layouts).collect();
                    p.optimizer_step(l, (&g, gl), &mut st, rule)
                })
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("optimizer")),
        }
    }
}

/// One parameter of `Buffer::optimizer_step_many`: the parameter and its layout, the
/// gradient, and the state buffers.
pub(crate) type BufferOptItem<'a> = (
    &'a mut Buffer,
    &'a Layout,
    (&'a Buffer, &'a Layout),
    Vec<(&'a mut Buffer, &'a Layout)>,
);

impl Buffer {
    /// See [`BackendStorage::optimizer_step_many`]: GPU float32 parameters go to the GPU's
    /// multi-tensor path together; any other parameter (host, half, mixed devices) takes
    /// `optimizer_step` on its own.
    pub(crate) fn optimizer_step_many(
        items: Vec<BufferOptItem<'_>>,
        rule: crate::optim::Rule,
    ) -> Result<()> {
        #[cfg(feature = "gpu")]
        {
            if !items.is_empty() && items.iter().all(all_gpu32) {
                let mut gpu_items = gpu_opt_items(items);
                return wgpu::WgpuStorage::optimizer_step_many(&mut gpu_items, rule);
            }
        }
        for (p, l, g, mut st) in items {
            let mut refs: Vec<(&mut Buffer, &Layout)> =
                st.iter_mut().map(|(s, sl)| (&mut **s, *sl)).collect();
            p.optimizer_step(l, g, &mut refs, rule)?;
        }
        Ok(())
    }

    /// See [`BackendStorage::optimizer_step_gated`]: float32 GPU tensors only, else None.
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    pub(crate) fn optimizer_step_gated(
        items: Vec<BufferOptItem<'_>>,
        rule: crate::optim::Rule,
        found: &Buffer,
        skipped: &Buffer,
        count: bool,
    ) -> Option<Result<()>> {
        #[cfg(feature = "gpu")]
        {
            let (Buffer::Gpu(found), Buffer::Gpu(skipped)) = (found, skipped) else {
                return None;
            };
            if items.is_empty() || !items.iter().all(all_gpu32) {
                return None;
            }
            let mut gpu_items = gpu_opt_items(items);
            wgpu::WgpuStorage::optimizer_step_gated(&mut gpu_items, rule, found, skipped, count)
        }
        #[cfg(not(feature = "gpu"))]
        None
    }
}

impl Buffer {
    /// See [`BackendStorage::amp_update_scale`]: the GPU's kernel, or None.
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    pub(crate) fn amp_update_scale(
        &mut self,
        found: &Buffer,
        h: crate::optim::ScaleUpdate,
    ) -> Option<Result<()>> {
        match (self, found) {
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(s), Buffer::Gpu(f)) => s.amp_update_scale(f, h),
            _ => None,
        }
    }
}

/// Whether every storage of an optimizer item is a float32 GPU storage at rest as words.
#[cfg(feature = "gpu")]
fn all_gpu32((p, _, (g, _), st): &BufferOptItem<'_>) -> bool {
    let gpu32 = |b: &Buffer| matches!(b, Buffer::Gpu(s) if s.dtype == DType::F32 && !s.packed);
    gpu32(p) && gpu32(g) && st.iter().all(|(s, _)| gpu32(s))
}

/// The GPU storages of optimizer items that `all_gpu32` accepted.
#[cfg(feature = "gpu")]
fn gpu_opt_items(items: Vec<BufferOptItem<'_>>) -> Vec<OptItem<'_, wgpu::WgpuStorage>> {
    items
        .into_iter()
        .map(|(p, l, (g, gl), st)| {
            let (Buffer::Gpu(p), Buffer::Gpu(g)) = (p, g) else {
                unreachable!("all_gpu32 checked the devices")
            };
            let state = st
                .into_iter()
                .map(|(s, sl)| match s {
                    Buffer::Gpu(s) => (s, sl),
                    Buffer::Cpu(_) => unreachable!("all_gpu32 checked the devices"),
                })
                .collect();
            OptItem {
                param: p,
                layout: l,
                grad: (g, gl),
                state,
            }
        })
        .collect()
}

impl Buffer {
    /// See [`BackendStorage::batch_norm`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch_norm(
        &self,
        l: &Layout,
        gamma: Option<(&Buffer, &Layout)>,
        beta: Option<(&Buffer, &Layout)>,
        running: Option<[(&mut Buffer, &Layout); 2]>,
        residual: Option<(&Buffer, &Layout)>,
        spec: &BnSpec,
    ) -> Result<(Buffer, Buffer)> {
        match self {
            Buffer::Cpu(x) => {
                fn side<'a>(
                    t: Option<(&'a Buffer, &'a Layout)>,
                ) -> Result<Option<(&'a CpuStorage, &'a Layout)>> {
                    match t {
                        None => Ok(None),
                        Some((Buffer::Cpu(s), sl)) => Ok(Some((s, sl))),
                        #[cfg(feature = "gpu")]
                        Some(_) => Err(mismatch("batch_norm")),
                    }
                }
                let running = match running {
                    None => None,
                    Some([(Buffer::Cpu(m), ml), (Buffer::Cpu(v), vl)]) => Some([(m, ml), (v, vl)]),
                    #[cfg(feature = "gpu")]
                    Some(_) => return Err(mismatch("batch_norm")),
                };
                let (gamma, beta, residual) = (side(gamma)?, side(beta)?, side(residual)?);
                let gw = gamma.map(|(s, sl)| (wide(s), sl));
                let bw = beta.map(|(s, sl)| (wide(s), sl));
                let rw = residual.map(|(s, sl)| (wide(s), sl));
                let gamma = gw.as_ref().map(|(s, sl)| (&**s, *sl));
                let beta = bw.as_ref().map(|(s, sl)| (&**s, *sl));
                let residual = rw.as_ref().map(|(s, sl)| (&**s, *sl));
                let xw = wide(x);
                // the statistics stay float32: the backward reads them at full precision
                let (y, st) = match running {
                    None => xw.batch_norm(l, gamma, beta, None, residual, spec)?,
                    Some([(m, ml), (v, vl)]) => in_place_wide(&mut [m, v], |mv| {
                        let [m, v] = mv else {
                            unreachable!("two running buffers")
                        };
                        xw.batch_norm(l, gamma, beta, Some([(m, ml), (v, vl)]), residual, spec)
                    })?,
                };
                let y = match spec.wide_out {
                    true => Buffer::Cpu(y),
                    false => narrow(y, x.dtype()),
                };
                Ok((y, Buffer::Cpu(st)))
            }
            #[cfg(feature = "gpu")]
            Buffer::Gpu(x) => {
                fn side<'a>(
                    t: Option<(&'a Buffer, &'a Layout)>,
                ) -> Result<Option<(&'a wgpu::WgpuStorage, &'a Layout)>> {
                    match t {
                        None => Ok(None),
                        Some((Buffer::Gpu(s), sl)) => Ok(Some((s, sl))),
                        Some(_) => Err(mismatch("batch_norm")),
                    }
                }
                let running = match running {
                    None => None,
                    Some([(Buffer::Gpu(m), ml), (Buffer::Gpu(v), vl)]) => Some([(m, ml), (v, vl)]),
                    Some(_) => return Err(mismatch("batch_norm")),
                };
                let gwide = match side(gamma)? {
                    Some((s, sl)) => Some((gw(s)?, sl)),
                    None => None,
                };
                let bwide = match side(beta)? {
                    Some((s, sl)) => Some((gw(s)?, sl)),
                    None => None,
                };
                let rwide = match side(residual)? {
                    Some((s, sl)) => Some((gw(s)?, sl)),
                    None => None,
                };
                let gamma = gwide.as_ref().map(|(s, sl)| (&**s, *sl));
                let beta = bwide.as_ref().map(|(s, sl)| (&**s, *sl));
                let residual = rwide.as_ref().map(|(s, sl)| (&**s, *sl));
                let xw = x; // read as it rests: packed halves too
                let (y, st) = match running {
                    None => xw.batch_norm(l, gamma, beta, None, residual, spec)?,
                    Some([(m, ml), (v, vl)]) => gpu_in_place(&mut [m, v], |mv| {
                        let [m, v] = mv else {
                            unreachable!("two running buffers")
                        };
                        xw.batch_norm(l, gamma, beta, Some([(m, ml), (v, vl)]), residual, spec)
                    })?,
                };
                // the statistics stay float32 for the backward, as on the host
                let y = match spec.wide_out {
                    true => Buffer::Gpu(y),
                    false => gpu_narrow(y, x.dtype)?,
                };
                Ok((y, Buffer::Gpu(st)))
            }
        }
    }

    /// See [`BackendStorage::batch_norm_grad`].
    pub(crate) fn batch_norm_grad(
        &self,
        l: &Layout,
        stats: &Buffer,
        (g, gl): (&Buffer, &Layout),
        spec: &BnSpec,
    ) -> Result<(Buffer, Buffer, Buffer)> {
        match (self, stats, g) {
            // dx in x's dtype; the parameters' gradients in theirs (float32 with wide_out)
            (Buffer::Cpu(x), Buffer::Cpu(s), Buffer::Cpu(g)) => {
                let (dx, dw, db) = wide(x).batch_norm_grad(l, s, (&wide(g), gl), spec)?;
                let dt = x.dtype();
                let pdt = if spec.wide_out { DType::F32 } else { dt };
                Ok((narrow(dx, dt), narrow(dw, pdt), narrow(db, pdt)))
            }
            // x and g are read as they rest (packed halves too)
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(x), Buffer::Gpu(s), Buffer::Gpu(g)) => {
                let (dx, dw, db) = x.batch_norm_grad(l, s, (g, gl), spec)?;
                let dt = x.dtype;
                let pdt = if spec.wide_out { DType::F32 } else { dt };
                Ok((
                    gpu_narrow(dx, dt)?,
                    gpu_narrow(dw, pdt)?,
                    gpu_narrow(db, pdt)?,
                ))
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("batch_norm")),
        }
    }

    /// See [`BackendStorage::cross_entropy`].
    ///
    /// `wide_out`: the losses stay float32 (autocast's float32 loss of half logits, read as
    /// they rest: no cast pass first) instead of taking the logits' dtype.
    pub(crate) fn cross_entropy(
        &self,
        l: &Layout,
        labels: &[i64],
        smoothing: f64,
        wide_out: bool,
    ) -> Result<(Buffer, Buffer)> {
        match self {
            // the saved probabilities stay float32 for the backward
            Buffer::Cpu(x) => wide(x).cross_entropy(l, labels, smoothing).map(|(a, b)| {
                let a = if wide_out {
                    Buffer::Cpu(a)
                } else {
                    narrow(a, x.dtype())
                };
                (a, Buffer::Cpu(b))
            }),
            #[cfg(feature = "gpu")]
            // packed half logits are read as they rest
            Buffer::Gpu(x) => {
                let (a, b) = x.cross_entropy(l, labels, smoothing)?;
                let a = if wide_out {
                    Buffer::Gpu(a)
                } else {
                    gpu_narrow(a, x.dtype)?
                };
                Ok((a, Buffer::Gpu(b)))
            }
        }
    }

    /// See [`BackendStorage::cross_entropy_grad`].
    pub(crate) fn cross_entropy_grad(
        &self,
        l: &Layout,
        saved: &Buffer,
        labels: &[i64],
        (g, gl): (&Buffer, &Layout),
        spec: &XentGradSpec,
    ) -> Result<Buffer> {
        match (self, saved, g) {
            (Buffer::Cpu(x), Buffer::Cpu(s), Buffer::Cpu(g)) => wide(x)
                .cross_entropy_grad(l, s, labels, (&wide(g), gl), spec)
                .map(|o| narrow(o, x.dtype())),
            #[cfg(feature = "gpu")]
            // packed halves are read as they rest
            (Buffer::Gpu(x), Buffer::Gpu(s), Buffer::Gpu(g)) => {
                gpu_narrow(x.cross_entropy_grad(l, s, labels, (g, gl), spec)?, x.dtype)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("cross_entropy")),
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::masked_scale`]: the gradient in its own dtype (a narrow one is
    /// widened for the kernel and rounded back); `saved` as `masked_affine` returned it.
    pub(crate) fn masked_scale(
        &self,
        l: &Layout,
        saved: &Buffer,
        mask: &MaskSpec,
    ) -> Result<Buffer> {
        match (self, saved) {
            (Buffer::Cpu(g), Buffer::Cpu(s)) => wide(g)
                .masked_scale(l, s, mask)
                .map(|o| narrow(o, g.dtype())),
            #[cfg(feature = "gpu")]
            // packed halves are read and written as they rest
            (Buffer::Gpu(g), Buffer::Gpu(s)) => gpu_narrow(g.masked_scale(l, s, mask)?, g.dtype),
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("dropout backward")),
        }
    }

    /// See [`BackendStorage::masked_act_grad`]: float32 and float64 host storages (None
    /// for the rest, which compose).
    pub(crate) fn masked_act_grad(
        &self,
        l: &Layout,
        saved: &Buffer,
        mask: &MaskSpec,
        (y, yl): (&Buffer, &Layout),
        op: UnaryOp,
    ) -> Option<Result<Buffer>> {
        match (self, saved, y) {
            (Buffer::Cpu(g), Buffer::Cpu(s), Buffer::Cpu(y))
                if matches!(g.dtype(), DType::F32 | DType::F64) =>
            {
                g.masked_act_grad(l, s, mask, (y, yl), op)
                    .map(|r| r.map(Buffer::Cpu))
            }
            _ => None,
        }
    }

    /// See [`BackendStorage::masked_affine`].
    pub(crate) fn masked_affine(&self, l: &Layout, mask: &MaskSpec) -> Result<(Buffer, Buffer)> {
        match self {
            Buffer::Cpu(s) => wide(s)
                .masked_affine(l, mask)
                .map(|(y, a)| (narrow(y, s.dtype()), Buffer::Cpu(a))),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => {
                let (y, a) = s.masked_affine(l, mask)?;
                Ok((gpu_narrow(y, s.dtype)?, Buffer::Gpu(a)))
            }
        }
    }
}
