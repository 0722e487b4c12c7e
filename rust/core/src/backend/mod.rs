//! The device backends below the tensor, behind one seam.
//!
//! A backend owns a storage type (`CpuStorage`, and `WgpuStorage` with the `gpu` feature)
//! and implements [`BackendStorage`] on it: kernels that take (storage, layout) pairs and
//! return fresh storage. A backend never sees `Tensor` or autograd. [`Buffer`], the enum
//! of the storages, dispatches each method to the backend that holds the operands (one
//! `match` here, so the ops in `crate::ops` contain no device branches); operands on
//! different devices are a `DeviceError`. The ops validate, promote, call the storage and
//! record the derivative rule, written once for both devices. See CONTRIBUTING.md.

pub(crate) mod cpu;
#[cfg(feature = "gpu")]
pub mod wgpu;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::ops::{BinaryOp, CmpOp, LogicOp, UnaryOp};
use crate::storage::{Buffer, CpuStorage};
use crate::tensor::Device;

/// What every backend implements, on its own storage type.
pub(crate) trait BackendStorage: Sized {
    /// y = op(x) elementwise, x read through `l`; a contiguous result of `l`'s shape.
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self>;

    /// g * op'(x) by the op table's rule, from x, the output y (None: y is x itself, the
    /// backward of an activation fused into a matrix product) and the gradient g, all of
    /// one shape and of x's dtype.
    fn unary_grad(
        &self,
        xl: &Layout,
        y: Option<(&Self, &Layout)>,
        g: (&Self, &Layout),
        op: UnaryOp,
    ) -> Result<Self>;

    /// The elements `l` reaches, in C order, in fresh contiguous storage.
    fn copy(&self, l: &Layout) -> Result<Self>;

    /// The elements `l` reaches, in C order, in host memory.
    fn to_host(&self, l: &Layout) -> Result<CpuStorage>;

    /// The elements `l` reaches converted to `dtype`, in C order. The result may live on
    /// another device where this one does not hold `dtype` (the GPU's int64 results go to
    /// the host, where its kernels read labels and indices).
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Buffer>;

    /// a (op) b elementwise, both read through layouts broadcast to one shape. The CPU
    /// takes operands of one dtype (promoted by the op); the GPU reads its float32 words.
    fn binary(&self, la: &Layout, rhs: &Self, lb: &Layout, op: BinaryOp) -> Result<Self>;

    /// A comparison of a and b (broadcast layouts): a bool storage.
    fn compare(&self, la: &Layout, rhs: &Self, lb: &Layout, op: CmpOp) -> Result<Self>;

    /// Logical and/or/xor of truth values (bool operands on the CPU, where int64 ones
    /// give the bitwise op): a bool storage (int64 for bitwise).
    fn logical(&self, la: &Layout, rhs: &Self, lb: &Layout, op: LogicOp) -> Result<Self>;

    /// where(cond, a, b) with this storage the bool condition; all three layouts are
    /// broadcast to the output's shape.
    fn select(&self, lc: &Layout, a: (&Self, &Layout), b: (&Self, &Layout)) -> Result<Self>;

    /// A sum, max or min over the plan's (outer, r, inner) block along r: outer * inner
    /// results in C order. Float storages on both devices; the CPU also folds int64 and
    /// bool exactly (sums wrap), the GPU max/min of bools (a bool).
    fn reduce(&self, plan: &ReducePlan, op: ReduceOp) -> Result<Self>;

    /// The index of the max (min) along the middle dim of `l`'s (outer, r, inner) block,
    /// NaN winning at its first place; int64, which lives on the host.
    fn arg_reduce(
        &self,
        l: &Layout,
        dims: (usize, usize, usize),
        want_max: bool,
    ) -> Result<Vec<i64>>;

    /// How many rows of (N, C) scores have their argmax at `labels` (out of range never
    /// matches): a one-element float32 storage on this device, so a training loop need not
    /// read it back every batch.
    fn correct_count(&self, l: &Layout, labels: &[i64]) -> Result<Self>;

    /// Writes `src` (of this storage's dtype, read through `ls`, which is broadcast to
    /// `l`'s shape) into the elements `l` reaches, in place. `src` is another storage: a
    /// write from a view of the same one goes through a copy first.
    fn write(&mut self, l: &Layout, src: &Self, ls: &Layout) -> Result<()>;

    /// The rows `idx` (in range) of dim `dim` of the tensor `l` describes, in C order.
    fn index_select(&self, l: &Layout, dim: usize, idx: &[usize]) -> Result<Self>;

    /// index_select's backward: a zero tensor whose dim `dim` has length `size`, with each
    /// row `k` of the gradient `l` describes added into row `idx[k]` (repeats add up, in
    /// increasing order of k).
    fn index_add(&self, l: &Layout, dim: usize, idx: &[usize], size: usize) -> Result<Self>;

    /// The parts (one dtype, equal outside `dim`) joined along `dim`: the storage and the
    /// layout its elements have in it (a backend may build the result dim-first and hand
    /// out a permuted view of it).
    fn cat(parts: &[(&Self, &Layout)], dim: usize, out_shape: &[usize]) -> Result<(Self, Layout)>;

    /// `act(a @ b + bias)` for float operands of one dtype of at least two dims (`la`,
    /// `lb` their own layouts; batch dims broadcast, see `BatchPlan`), the bias (length n)
    /// added to every row, the activation (a fusable one) applied last: in the product's
    /// epilogue on the GPU. A contiguous result of the plan's output shape.
    fn matmul(
        &self,
        la: &Layout,
        rhs: &Self,
        lb: &Layout,
        bias: Option<(&Self, &Layout)>,
        act: Option<UnaryOp>,
    ) -> Result<Self>;

    /// One optimizer update of this parameter (contiguous, `l`) from the gradient `g`,
    /// with the state storages (contiguous, in `rule`'s order) updated in place too.
    fn optimizer_step(
        &mut self,
        l: &Layout,
        g: (&Self, &Layout),
        state: &mut [(&mut Self, &Layout)],
        rule: crate::optim::Rule,
    ) -> Result<()>;

    /// Dropout's fused pass: y = x * A + B with (A, B) = (keep_scale, keep_shift) where the
    /// counter-based generator's number at `start + i` of stream `seed` is at least
    /// `threshold` (probability 1 - p), else (0, drop_shift); returns (y, A), both
    /// contiguous. Both devices draw the same numbers, so the mask does not depend on the
    /// device.
    fn masked_affine(&self, l: &Layout, mask: &MaskSpec) -> Result<(Self, Self)>;

    /// A fused log_softmax over the last dim, where the backend has one (None: the op
    /// composes it from exp, sums and subtractions).
    fn log_softmax_last(&self, _l: &Layout) -> Option<Result<Self>> {
        None
    }

    /// Batch norm of the (n, c) input `l` over its rows, fused: the statistics (the batch's
    /// when `spec.batch_stats`, then folded into the running ones when `spec.update`; the
    /// running ones otherwise), y = (x - mean) invstd gamma + beta, then relu when
    /// `spec.relu`. `running` (contiguous, length c) is read or updated in place. Returns y
    /// (contiguous) and the per-feature `[mean | invstd | scale | shift]` (4c) that
    /// `batch_norm_grad` reads.
    fn batch_norm(
        &self,
        l: &Layout,
        gamma: Option<(&Self, &Layout)>,
        beta: Option<(&Self, &Layout)>,
        running: Option<[(&mut Self, &Layout); 2]>,
        spec: &BnSpec,
    ) -> Result<(Self, Self)>;

    /// batch_norm's backward from this storage, the input x (`l`), the saved statistics and
    /// the gradient g of y: (dx, dgamma, dbeta), contiguous. With batch statistics dx
    /// includes their dependence on x; with running ones it is g gamma invstd. A fused relu
    /// cuts g where its input was not above 0.
    fn batch_norm_grad(
        &self,
        l: &Layout,
        stats: &Self,
        g: (&Self, &Layout),
        spec: &BnSpec,
    ) -> Result<(Self, Self, Self)>;

    /// Cross-entropy of each row of the (rows, cols) logits `l` against `labels` (in range),
    /// the one-hot target mixed with the uniform one by `smoothing`: the per-row losses and
    /// what `cross_entropy_grad` needs of each row (backend-defined).
    fn cross_entropy(&self, l: &Layout, labels: &[i64], smoothing: f64) -> Result<(Self, Self)>;

    /// d loss / d logits = (softmax(x) - target) g_i, from this storage (x, `l`), the saved
    /// rows and the upstream gradient: one per row when `spec.per_row`, else one scalar,
    /// times `spec.scale`.
    fn cross_entropy_grad(
        &self,
        l: &Layout,
        saved: &Self,
        labels: &[i64],
        g: (&Self, &Layout),
        spec: &XentGradSpec,
    ) -> Result<Self>;
}

/// What a batch norm kernel does (see `BackendStorage::batch_norm`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BnSpec {
    pub n: usize,
    pub c: usize,
    pub eps: f64,
    pub momentum: f64,
    /// normalize with the batch's statistics (training), not the running ones
    pub batch_stats: bool,
    /// fold the batch statistics into the running ones (the variance unbiased)
    pub update: bool,
    /// relu after the normalization (BatchNorm1d -> ReLU)
    pub relu: bool,
}

/// How cross-entropy's upstream gradient is applied (see `cross_entropy_grad`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct XentGradSpec {
    pub smoothing: f64,
    /// one gradient per row (reduction "none"), else one for all
    pub per_row: bool,
    /// 1 / rows for a mean, else 1
    pub scale: f64,
}

/// A dropout mask and the affine map on either side of it (see `masked_affine`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaskSpec {
    pub seed: u64,
    pub start: u64,
    pub threshold: u32,
    pub keep_scale: f64,
    pub keep_shift: f64,
    pub drop_shift: f64,
}

/// The reductions a backend implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReduceOp {
    /// sum (int64 sums wrap)
    Sum,
    /// maximum, NaN-propagating
    Max,
    /// minimum, NaN-propagating
    Min,
}

/// How a reduction over some dims reads its input: as one (outer, r, inner) block in C
/// order through `layout` (the input's own when the reduced dims are adjacent and it is
/// contiguous, else its permutation with the reduced dims last, which a backend gathers
/// or copies out first).
pub(crate) struct ReducePlan {
    pub layout: Layout,
    pub outer: usize,
    pub r: usize,
    pub inner: usize,
}

impl ReducePlan {
    /// The plan for reducing `l` over the dims set in `mask`.
    pub(crate) fn new(l: &Layout, mask: &[bool]) -> ReducePlan {
        let shape = &l.shape;
        let r: usize = shape
            .iter()
            .zip(mask)
            .filter(|(_, &m)| m)
            .map(|(&d, _)| d)
            .product();
        let first = mask.iter().position(|&m| m);
        let last = mask.iter().rposition(|&m| m);
        match (first, last) {
            (Some(f), Some(e))
                if l.is_contiguous() && (f..=e).all(|i| mask[i] || shape[i] == 1) =>
            {
                ReducePlan {
                    layout: l.clone(),
                    outer: shape[..f].iter().product(),
                    r,
                    inner: shape[e + 1..].iter().product(),
                }
            }
            (None, None) => ReducePlan {
                layout: l.clone(),
                outer: 1,
                r: 1,
                inner: l.numel(),
            },
            _ => {
                let nd = shape.len();
                let mut perm: Vec<usize> = (0..nd).filter(|&i| !mask[i]).collect();
                perm.extend((0..nd).filter(|&i| mask[i]));
                let kept: usize = shape
                    .iter()
                    .zip(mask)
                    .filter(|(_, &m)| !m)
                    .map(|(&d, _)| d)
                    .product();
                ReducePlan {
                    layout: l.permute(&perm),
                    outer: kept,
                    r,
                    inner: 1,
                }
            }
        }
    }
}

fn mismatch(op: &str) -> Error {
    Error::Device(format!(
        "{op}: expected all tensors on one device, got cpu and gpu; move one with .to()"
    ))
}

impl Buffer {
    /// See [`BackendStorage::unary`].
    #[inline]
    pub(crate) fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => s.unary(l, op).map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.unary(l, op).map(Buffer::Gpu),
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
        let name = op.backward_name();
        match (self, g.0) {
            (Buffer::Cpu(x), Buffer::Cpu(gb)) => {
                let y = match y {
                    Some((Buffer::Cpu(yb), yl)) => Some((yb, yl)),
                    None => None,
                    #[cfg(feature = "gpu")]
                    Some(_) => return Err(mismatch(name)),
                };
                x.unary_grad(xl, y, (gb, g.1), op).map(Buffer::Cpu)
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(x), Buffer::Gpu(gb)) => {
                let y = match y {
                    Some((Buffer::Gpu(yb), yl)) => Some((yb, yl)),
                    None => None,
                    Some(_) => return Err(mismatch(name)),
                };
                x.unary_grad(xl, y, (gb, g.1), op).map(Buffer::Gpu)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch(name)),
        }
    }

    /// See [`BackendStorage::copy`].
    #[inline]
    pub(crate) fn copy(&self, l: &Layout) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => s.copy(l).map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.copy(l).map(Buffer::Gpu),
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
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.cast(l, dtype),
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
            (Buffer::Cpu($x), Buffer::Cpu($y)) => $body.map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            (Buffer::Gpu($x), Buffer::Gpu($y)) => $body.map(Buffer::Gpu),
            #[cfg(feature = "gpu")]
            _ => Err(mismatch($name)),
        }
    };
}

impl Buffer {
    /// See [`BackendStorage::binary`].
    #[inline]
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
            (Buffer::Cpu(c), Buffer::Cpu(x), Buffer::Cpu(y)) => {
                c.select(lc, (x, la), (y, lb)).map(Buffer::Cpu)
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(c), Buffer::Gpu(x), Buffer::Gpu(y)) => {
                c.select(lc, (x, la), (y, lb)).map(Buffer::Gpu)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("where")),
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::reduce`].
    #[inline]
    pub(crate) fn reduce(&self, plan: &ReducePlan, op: ReduceOp) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => s.reduce(plan, op).map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.reduce(plan, op).map(Buffer::Gpu),
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
            Buffer::Cpu(s) => s.arg_reduce(l, dims, want_max),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.arg_reduce(l, dims, want_max),
        }
    }

    /// See [`BackendStorage::correct_count`].
    #[inline]
    pub(crate) fn correct_count(&self, l: &Layout, labels: &[i64]) -> Result<Buffer> {
        match self {
            Buffer::Cpu(s) => s.correct_count(l, labels).map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.correct_count(l, labels).map(Buffer::Gpu),
        }
    }

    /// See [`BackendStorage::log_softmax_last`].
    #[inline]
    pub(crate) fn log_softmax_last(&self, l: &Layout) -> Option<Result<Buffer>> {
        match self {
            Buffer::Cpu(s) => s.log_softmax_last(l).map(|r| r.map(Buffer::Cpu)),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.log_softmax_last(l).map(|r| r.map(Buffer::Gpu)),
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
            (Buffer::Gpu(d), Buffer::Gpu(s)) => d.write(l, s, ls),
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
            Buffer::Gpu(s) => s.index_select(l, dim, idx).map(Buffer::Gpu),
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
            Buffer::Cpu(s) => s.index_add(l, dim, idx, size).map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s.index_add(l, dim, idx, size).map(Buffer::Gpu),
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
            let mut gpu = Vec::with_capacity(parts.len());
            for (b, l) in parts {
                match b {
                    Buffer::Gpu(s) => gpu.push((s, *l)),
                    Buffer::Cpu(_) => return Err(mismatch("cat")),
                }
            }
            let (s, l) = wgpu::WgpuStorage::cat(&gpu, dim, out_shape)?;
            Ok((Buffer::Gpu(s), l))
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
        match (self, rhs, bias) {
            (Buffer::Cpu(a), Buffer::Cpu(b), None) => {
                a.matmul(la, b, lb, None, act).map(Buffer::Cpu)
            }
            (Buffer::Cpu(a), Buffer::Cpu(b), Some((Buffer::Cpu(c), lc))) => {
                a.matmul(la, b, lb, Some((c, lc)), act).map(Buffer::Cpu)
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(a), Buffer::Gpu(b), None) => {
                a.matmul(la, b, lb, None, act).map(Buffer::Gpu)
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(a), Buffer::Gpu(b), Some((Buffer::Gpu(c), lc))) => {
                a.matmul(la, b, lb, Some((c, lc)), act).map(Buffer::Gpu)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("matmul")),
        }
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
                let mut st = Vec::with_capacity(state.len());
                for (b, sl) in state.iter_mut() {
                    match &mut **b {
                        Buffer::Cpu(s) => st.push((s, *sl)),
                        #[cfg(feature = "gpu")]
                        Buffer::Gpu(_) => return Err(mismatch("optimizer")),
                    }
                }
                p.optimizer_step(l, (g, gl), &mut st, rule)
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(p), Buffer::Gpu(g)) => {
                let mut st = Vec::with_capacity(state.len());
                for (b, sl) in state.iter_mut() {
                    match &mut **b {
                        Buffer::Gpu(s) => st.push((s, *sl)),
                        Buffer::Cpu(_) => return Err(mismatch("optimizer")),
                    }
                }
                p.optimizer_step(l, (g, gl), &mut st, rule)
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("optimizer")),
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::batch_norm`].
    pub(crate) fn batch_norm(
        &self,
        l: &Layout,
        gamma: Option<(&Buffer, &Layout)>,
        beta: Option<(&Buffer, &Layout)>,
        running: Option<[(&mut Buffer, &Layout); 2]>,
        spec: &BnSpec,
    ) -> Result<(Buffer, Buffer)> {
        let op = "batch_norm";
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
                    Some(_) => return Err(mismatch(op)),
                };
                let (y, st) = x.batch_norm(l, side(gamma)?, side(beta)?, running, spec)?;
                Ok((Buffer::Cpu(y), Buffer::Cpu(st)))
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
                    Some(_) => return Err(mismatch(op)),
                };
                let (y, st) = x.batch_norm(l, side(gamma)?, side(beta)?, running, spec)?;
                Ok((Buffer::Gpu(y), Buffer::Gpu(st)))
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
            (Buffer::Cpu(x), Buffer::Cpu(s), Buffer::Cpu(g)) => {
                let (dx, dw, db) = x.batch_norm_grad(l, s, (g, gl), spec)?;
                Ok((Buffer::Cpu(dx), Buffer::Cpu(dw), Buffer::Cpu(db)))
            }
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(x), Buffer::Gpu(s), Buffer::Gpu(g)) => {
                let (dx, dw, db) = x.batch_norm_grad(l, s, (g, gl), spec)?;
                Ok((Buffer::Gpu(dx), Buffer::Gpu(dw), Buffer::Gpu(db)))
            }
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("batch_norm")),
        }
    }

    /// See [`BackendStorage::cross_entropy`].
    pub(crate) fn cross_entropy(
        &self,
        l: &Layout,
        labels: &[i64],
        smoothing: f64,
    ) -> Result<(Buffer, Buffer)> {
        match self {
            Buffer::Cpu(x) => x
                .cross_entropy(l, labels, smoothing)
                .map(|(a, b)| (Buffer::Cpu(a), Buffer::Cpu(b))),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(x) => x
                .cross_entropy(l, labels, smoothing)
                .map(|(a, b)| (Buffer::Gpu(a), Buffer::Gpu(b))),
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
            (Buffer::Cpu(x), Buffer::Cpu(s), Buffer::Cpu(g)) => x
                .cross_entropy_grad(l, s, labels, (g, gl), spec)
                .map(Buffer::Cpu),
            #[cfg(feature = "gpu")]
            (Buffer::Gpu(x), Buffer::Gpu(s), Buffer::Gpu(g)) => x
                .cross_entropy_grad(l, s, labels, (g, gl), spec)
                .map(Buffer::Gpu),
            #[cfg(feature = "gpu")]
            _ => Err(mismatch("cross_entropy")),
        }
    }
}

impl Buffer {
    /// See [`BackendStorage::masked_affine`].
    pub(crate) fn masked_affine(&self, l: &Layout, mask: &MaskSpec) -> Result<(Buffer, Buffer)> {
        match self {
            Buffer::Cpu(s) => s
                .masked_affine(l, mask)
                .map(|(y, a)| (Buffer::Cpu(y), Buffer::Cpu(a))),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(s) => s
                .masked_affine(l, mask)
                .map(|(y, a)| (Buffer::Gpu(y), Buffer::Gpu(a))),
        }
    }
}

/// Checks that `device` can be used on this machine (the GPU: this build has the backend
/// and an adapter was found).
pub(crate) fn require(device: Device) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        #[cfg(feature = "gpu")]
        Device::Gpu => wgpu::context().map(|_| ()),
        #[cfg(not(feature = "gpu"))]
        Device::Gpu => Err(no_gpu("device")),
    }
}

#[cfg(not(feature = "gpu"))]
fn no_gpu(op: &str) -> Error {
    Error::Device(format!(
        "{op}: device 'gpu' is not available: this build of ferrograd has only the cpu backend"
    ))
}

/// The dtype error of a kernel that takes floats only.
pub(crate) fn float_only(op: &str, dtype: DType) -> Error {
    Error::DType(format!(
        "{op}: expected a floating-point tensor (float32 or float64), got {dtype}"
    ))
}
