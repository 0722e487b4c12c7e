//! Packed halves (float16/bfloat16 two to a word): unpacking, packing, and the products
//! that read them as they rest; part of `WgpuStorage`, kept apart for the file's size.

use super::*;

impl WgpuStorage {
    /// The float32 words of a packed storage's elements, as a storage of the same dtype
    /// (same positions, so layouts over it still apply); `None` when not packed.
    pub(crate) fn unpacked(&self) -> Result<Option<WgpuStorage>> {
        if !self.packed {
            return Ok(None);
        }
        let ctx = crate::backend::wgpu::context()?;
        let out = ctx.alloc(self.len)?;
        launch_half(
            "unpack",
            "unpack_main",
            self.dtype,
            &self.buf,
            self.len,
            &out,
        )?;
        Ok(Some(WgpuStorage::new(out, self.dtype)))
    }

    /// These float32 words rounded (to nearest even) to the half dtype `to` and packed, as
    /// a new storage of that dtype.
    pub(crate) fn packed_as(&self, to: DType) -> Result<WgpuStorage> {
        if !matches!(to, DType::F16 | DType::BF16) {
            return Err(float_only("pack", to));
        }
        if self.packed {
            return Err(Error::DType("pack: the storage is packed already".into()));
        }
        let ctx = crate::backend::wgpu::context()?;
        let out = ctx.alloc(self.len.div_ceil(2))?;
        launch_half("pack", "pack_main", to, &self.buf, self.len, &out)?;
        Ok(WgpuStorage::new_packed(out, to, self.len))
    }

    /// The elements `l` reaches, rounded to the half dtype `to` and packed, in one pass
    /// when they are a contiguous run of float32 words (a cast to half: what autocast does
    /// to each weight and input); `None` otherwise (cast, then pack).
    pub(crate) fn packed_run(&self, l: &Layout, to: DType) -> Result<Option<WgpuStorage>> {
        if self.packed || !l.is_contiguous() || !matches!(to, DType::F16 | DType::BF16) {
            return Ok(None);
        }
        let n = l.numel();
        let ctx = crate::backend::wgpu::context()?;
        let out = ctx.alloc(n.div_ceil(2))?;
        launch_half_at("pack", "pack_main", to, &self.buf, l.offset, n, &out)?;
        Ok(Some(WgpuStorage::new_packed(out, to, n)))
    }

    /// Packs these float32 words (an in-place kernel's result on the unpacked copy of
    /// `dst`) back into `dst`'s own buffer, so views and optimizer state keep their buffer.
    pub(crate) fn pack_into(&self, dst: &WgpuStorage) -> Result<()> {
        if !dst.packed || self.packed || self.len != dst.len {
            return Err(Error::DType(
                "pack: a packed storage of as many elements is needed".into(),
            ));
        }
        launch_half(
            "pack",
            "pack_main",
            dst.dtype,
            &self.buf,
            self.len,
            &dst.buf,
        )
    }

    /// The sum (`plan`) of a packed half storage, rounded to its half dtype but written as
    /// float32 words: a half sum cast back to float32 (autocast's bias gradient) in one
    /// dispatch instead of the sum, its pack and the cast's unpack, with their bits. None
    /// where the storage is not packed.
    pub(crate) fn sum_rounded(&self, plan: &ReducePlan) -> Option<Result<WgpuStorage>> {
        if !self.packed {
            return None;
        }
        let run = || {
            let half = rest_code(self);
            let x = from_zero(&self.buf, &plan.layout, half)?;
            let dims = (plan.outer, plan.r, plan.inner);
            let out = launch_reduce((&x, half), dims, (RED_SUM, half), None)?;
            Ok(WgpuStorage::new(out, DType::F32))
        };
        Some(run())
    }

    /// `act(a @ b + bias)` where an operand or the bias rests as packed halves: the float32
    /// kernels read them as they are (no unpacking pass first) and, for half operands,
    /// write the result rounded and packed (no packing pass after). None where nothing is
    /// packed, or a stride is negative, the bias is a view, or the scalar kernel would have
    /// to pack an odd n: the caller unpacks and takes the usual path.
    pub(crate) fn matmul_halves(
        &self,
        la: &Layout,
        rhs: &WgpuStorage,
        lb: &Layout,
        bias: Option<(&WgpuStorage, &Layout)>,
        act: Option<UnaryOp>,
    ) -> Option<Result<WgpuStorage>> {
        // the result packed in the operands' half dtype, as gpu_narrow would pack it
        let out_half = half_kind(self.dtype);
        let halves = [
            rest_code(self),
            rest_code(rhs),
            bias.map_or(0, |(c, _)| rest_code(c)),
            out_half,
        ];
        let plain =
            |s: &WgpuStorage| s.packed || matches!(s.dtype, DType::F32 | DType::F16 | DType::BF16);
        if halves[..3] == [0; 3] || !plain(self) || !plain(rhs) {
            return None;
        }
        let forward = |l: &Layout| l.strides.iter().all(|&st| st >= 0);
        if !forward(la) || !forward(lb) {
            return None;
        }
        let bias = match bias {
            None => None,
            Some((c, lc)) if lc.is_contiguous() && lc.offset == 0 && plain(c) => Some(&*c.buf),
            Some(_) => return None,
        };
        let total = crate::ops::matmul::BatchPlan::new(la, lb).ok()?.total();
        launch_matmul_halves(
            (&self.buf, la),
            (&rhs.buf, lb),
            bias,
            epilogue_code(act),
            halves,
        )
        .transpose()
        .map(|r| {
            r.map(|out| match out_half {
                0 => WgpuStorage::new(out, DType::F32),
                _ => WgpuStorage::new_packed(out, self.dtype, total),
            })
        })
    }

    /// `act(a @ b + bias)` on tensor cores, where both operands are packed float16 and the
    /// adapter has the kernel (`launch_matmul_coop`): float32 words, which the caller
    /// rounds to float16 as every product's result. None: the operands, the bias or the
    /// adapter do not fit, and the product takes the float32 kernels.
    pub(crate) fn matmul_tensor_cores(
        &self,
        la: &Layout,
        rhs: &WgpuStorage,
        lb: &Layout,
        bias: Option<(&WgpuStorage, &Layout)>,
        act: Option<UnaryOp>,
    ) -> Option<Result<WgpuStorage>> {
        let half = |s: &WgpuStorage| s.packed && s.dtype == DType::F16;
        if !(half(self) && half(rhs)) {
            return None;
        }
        let bias = match bias {
            None => None,
            Some((c, lc)) if lc.is_contiguous() && lc.offset == 0 => match (c.dtype, c.packed) {
                (DType::F16, true) => Some((&*c.buf, true)),
                (DType::F32, false) => Some((&*c.buf, false)),
                _ => return None,
            },
            Some(_) => return None,
        };
        let code = epilogue_code(act);
        launch_matmul_coop((&self.buf, la), (&rhs.buf, lb), bias, code)
            .transpose()
            .map(|r| r.map(|out| WgpuStorage::new(out, DType::F32)))
    }
}

/// Runs half.wgsl's `entry` over `n` elements of `dtype`: unpack (`a` packed, `out` n
/// words) or pack (`a` n words, `out` packed).
pub(super) fn launch_half(
    key: &'static str,
    entry: &'static str,
    dtype: DType,
    a: &GpuBuffer,
    n: usize,
    out: &GpuBuffer,
) -> Result<()> {
    launch_half_at(key, entry, dtype, a, 0, n, out)
}

/// `launch_half` reading `a` from element `offset` (pack only).
pub(super) fn launch_half_at(
    key: &'static str,
    entry: &'static str,
    dtype: DType,
    a: &GpuBuffer,
    offset: usize,
    n: usize,
    out: &GpuBuffer,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    crate::backend::wgpu::ops::check_u32(key, n)?;
    let ctx = crate::backend::wgpu::context()?;
    let threads = if entry == "pack_main" {
        n.div_ceil(2)
    } else {
        n
    };
    let (groups, row) = ctx.grid(threads, 64)?;
    let p = crate::backend::wgpu::runtime::EwParams {
        n: n as u32,
        op: (dtype == DType::BF16) as u32,
        ndim: 0,
        row,
        alpha: 0.0,
        beta: 0.0,
        a_offset: offset as u32,
        b_offset: 0,
        halves: 0,
        pad: [0; 3],
    };
    ctx.dispatch(
        key,
        crate::backend::wgpu::shaders::HALF,
        entry,
        &p,
        [Some(a), None],
        out,
        None,
        groups,
    )
}
