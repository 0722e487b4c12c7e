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
mod dispatch;
#[cfg(feature = "gpu")]
pub mod wgpu;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::ops::{BinaryOp, CmpOp, LogicOp, UnaryOp};
use crate::storage::{Buffer, CpuStorage};
use crate::tensor::Device;

/// One parameter of a multi-tensor optimizer step: the parameter (updated in place) and its
/// layout, its gradient, and its state storages in the rule's order (updated in place).
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
pub(crate) struct OptItem<'a, S> {
    /// the parameter's storage
    pub param: &'a mut S,
    /// the parameter's layout
    pub layout: &'a Layout,
    /// the gradient and its layout
    pub grad: (&'a S, &'a Layout),
    /// the optimizer state storages and their layouts
    pub state: Vec<(&'a mut S, &'a Layout)>,
}

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

    /// The sliding windows of the (n, c, h, w) float input `l` as a contiguous
    /// (n * oh * ow, c * kh * kw) matrix, one row per output position (im2col): the lowering
    /// of convolution to a matrix product, and of pooling to a row reduction.
    fn unfold2d(&self, l: &Layout, win: &Window2d) -> Result<Self>;

    /// unfold2d's adjoint (col2im): the (n * oh * ow, c * kh * kw) gradient `l` summed back
    /// into a contiguous (n, c, h, w) tensor (entries that read padding add nothing).
    fn fold2d(&self, l: &Layout, win: &Window2d) -> Result<Self>;

    /// A convolution as one matrix product: the windows of the (n, c, h, w) input `l`
    /// (`win`, zero padding) times the (oc, c * kh * kw) weight transposed, plus the bias
    /// (oc): the contiguous (n, oc, oh, ow) result. The host unfolds and multiplies one
    /// image at a time (the windows stay in cache); the GPU reads the windows inside the
    /// product's tile loads (implicit gemm).
    /// Also the windows matrix where the backend built one, which the backward then reuses
    /// for the weight's gradient instead of building it again.
    fn conv2d(
        &self,
        l: &Layout,
        w: (&Self, &Layout),
        bias: Option<(&Self, &Layout)>,
        win: &Window2d,
    ) -> Result<(Self, Option<Self>)>;

    /// conv2d's backward where the backend has its own (None: the op composes it, dx =
    /// fold2d(g w) and dw = g^T unfold2d(x), zero padding): from this storage (the input
    /// x, `l`), the (oc, c * kh * kw) weight and the (n, oc, oh, ow) gradient g, dx
    /// (n, c, h, w) when `want.0` and dw (oc, c * kh * kw) when `want.1`, contiguous.
    fn conv2d_grad(
        &self,
        _l: &Layout,
        _w: (&Self, &Layout),
        _g: (&Self, &Layout),
        _win: &Window2d,
        _want: (bool, bool),
    ) -> Option<Result<(Option<Self>, Option<Self>)>> {
        None
    }

    /// Max pooling of each channel of the (n, c, h, w) float input `l` on its own over
    /// `win`'s windows: the contiguous (n, c, oh, ow) maxima, and where each came from as
    /// this backend's own state for `max_pool2d_grad`. Only input elements compete (padding
    /// and ceil_mode's overhang are -inf, as in PyTorch); the first maximum in window order
    /// wins, a NaN at its first place.
    fn max_pool2d(&self, l: &Layout, win: &Window2d) -> Result<(Self, Self)>;

    /// max_pool2d's backward: each entry of the (n, c, oh, ow) gradient `l` added to the
    /// input element its window's maximum came from (`arg`, the forward's state); a
    /// contiguous (n, c, h, w) result.
    fn max_pool2d_grad(&self, l: &Layout, arg: &Self, win: &Window2d) -> Result<Self>;

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

    /// `a @ b` for 2-D float32 operands (no bias, no activation) and the row sums of `a`
    /// (length m), where the backend makes both in one pass: a Linear layer's weight and
    /// bias gradients, `g^T x` and `g^T 1`. None: the op computes them apart (a product
    /// and a reduction), as the host does; the GPU sums inside the product, and gives the
    /// product alone (sums None) for the shapes its kernel cannot sum in.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn matmul_row_sums(
        &self,
        _la: &Layout,
        _rhs: &Self,
        _lb: &Layout,
    ) -> Option<Result<(Self, Option<Self>)>> {
        None
    }

    /// `a @ b + d` for 2-D float32 operands and a float32 addend `d` of the result's shape,
    /// where the backend adds `d` inside the product's pass after its sum (the bits of the
    /// product, then `d + ab`): a gradient accumulated into the product that makes another
    /// part of it (a residual block's input). With `cast` (a half dtype), the operands are
    /// read as cast to it (float32 or of that dtype) and the product rounded to it before
    /// the add: `d + (a' @ b').to(cast)`, mixed precision's Linear. None: the op adds
    /// apart, as the host does.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn matmul_add(
        &self,
        _la: &Layout,
        _rhs: &Self,
        _lb: &Layout,
        _d: (&Self, &Layout),
        _cast: Option<DType>,
    ) -> Option<Result<Self>> {
        None
    }

    /// `act(a' @ b' + bias')` where each x' is x cast to the half dtype `cast.to` (every
    /// operand float32 or already of that dtype), the result rounded to `cast.to` and
    /// handed back in dtype `cast.out` (`cast.to`, or float32: the cast back), with the
    /// row sums of a' rounded the same way when `cast.row_sums` (2-D, no bias, a float32
    /// result; None where the kernel cannot sum, as `matmul_row_sums`). The values of
    /// casting, multiplying and casting back (mixed precision's Linear and its gradients),
    /// without the casts' passes. None: the backend does not fuse the casts (the host
    /// casts as cheaply as it reads), or not for these operands; the op casts.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn matmul_cast(
        &self,
        _la: &Layout,
        _rhs: &Self,
        _lb: &Layout,
        _bias: Option<(&Self, &Layout)>,
        _act: Option<UnaryOp>,
        _cast: ProductCast,
    ) -> Option<Result<(Self, Option<Self>)>> {
        None
    }

    /// Mixed precision's gradient unscaling where the backend does many tensors in a few
    /// passes (PyTorch's `_amp_foreach_non_finite_check_and_unscale_`): each float32
    /// storage (whole: contiguous from element 0, distinct) times `inv` in place, and a
    /// one-element storage holding 1.0 if any element was inf or NaN before, else 0.0. With
    /// `scale` (a scale kept on the device: float32 (scale, inverse scale, ...)) the inverse
    /// is its element 1 and `inv` is unused. None: the caller goes tensor by tensor (the
    /// host, halves, views).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn unscale_many(
        _grads: &mut [(&mut Self, &Layout)],
        _inv: f32,
        _scale: Option<&Self>,
    ) -> Option<Result<Self>> {
        None
    }

    /// GradScaler's update of a scale kept on the device, in place: this storage holds
    /// float32 (scale, inverse scale, clean steps in a row, unused) and `found` the
    /// iteration's found-inf flag (PyTorch's `_amp_update_scale_`). None: the backend has
    /// no kernel for it (the caller composes it from tensor ops).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn amp_update_scale(
        &mut self,
        _found: &Self,
        _h: crate::optim::ScaleUpdate,
    ) -> Option<Result<()>> {
        None
    }

    /// `optimizer_step_many` gated on the device: where the one-element float32 `found`
    /// (from `unscale_many`) is nonzero nothing is written (a skipped step, decided without
    /// reading the flag back); Adam's bias corrections count its step less `skipped` (the
    /// one-element count of steps skipped so far), to which a skipped step adds itself when
    /// `count` (the caller sets it on one call of each step). All or nothing:
    /// None, with nothing run, where the backend cannot gate every item (the caller then
    /// reads the flag and decides on the host).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn optimizer_step_gated(
        _items: &mut [OptItem<'_, Self>],
        _rule: crate::optim::Rule,
        _found: &Self,
        _skipped: &Self,
        _count: bool,
    ) -> Option<Result<()>> {
        None
    }

    /// One optimizer update of this parameter (contiguous, `l`) from the gradient `g`,
    /// with the state storages (contiguous, in `rule`'s order) updated in place too.
    fn optimizer_step(
        &mut self,
        l: &Layout,
        g: (&Self, &Layout),
        state: &mut [(&mut Self, &Layout)],
        rule: crate::optim::Rule,
    ) -> Result<()>;

    /// One optimizer update of several parameters, each as `optimizer_step` makes it; a
    /// backend that can update many tensors in one pass (the GPU's multi-tensor kernels)
    /// overrides this loop.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn optimizer_step_many(
        items: &mut [OptItem<'_, Self>],
        rule: crate::optim::Rule,
    ) -> Result<()> {
        for it in items.iter_mut() {
            it.param
                .optimizer_step(it.layout, it.grad, &mut it.state, rule)?;
        }
        Ok(())
    }

    /// Dropout's fused pass: y = x * A + B with (A, B) = (keep_scale, keep_shift) where the
    /// counter-based generator's number at `start + i` of stream `seed` is at least
    /// `threshold` (probability 1 - p), else (0, drop_shift); returns y (contiguous) and what
    /// `masked_scale` needs for the backward (the host keeps the mask, a bit an element; a
    /// GPU the factor A). Both devices draw the same numbers, so the mask does not depend on the
    /// device.
    fn masked_affine(&self, l: &Layout, mask: &MaskSpec) -> Result<(Self, Self)>;

    /// The backward of `masked_affine`: g * A, from the state it returned (`saved`).
    fn masked_scale(&self, l: &Layout, saved: &Self, mask: &MaskSpec) -> Result<Self>;

    /// `masked_scale` and then the derivative of the activation `op` from its output `y`
    /// (`unary_grad` with x = y), in one pass where the backend has one; the same values
    /// as the two ops. None: the caller runs the two (the GPU's composition).
    fn masked_act_grad(
        &self,
        _l: &Layout,
        _saved: &Self,
        _mask: &MaskSpec,
        _y: (&Self, &Layout),
        _op: UnaryOp,
    ) -> Option<Result<Self>> {
        None
    }

    /// A fused log_softmax over the last dim, where the backend has one (None: the op
    /// composes it from exp, sums and subtractions).
    fn log_softmax_last(&self, _l: &Layout) -> Option<Result<Self>> {
        None
    }

    /// Batch norm of the (n, c) input `l` over its rows, fused: the statistics (the batch's
    /// when `spec.batch_stats`, then folded into the running ones when `spec.update`; the
    /// running ones otherwise), y = (x - mean) invstd gamma + beta, then relu when
    /// `spec.relu`, dropout when `spec.drop`, and `residual + y` when `spec.residual` (the
    /// (n, c) `residual` given). `running` (contiguous, length c) is read or updated in
    /// place. Returns y (contiguous) and the per-feature `[mean | invstd | scale | shift]`
    /// (4c) that `batch_norm_grad` reads, which a backend may follow with more of its own
    /// (the host keeps a fused dropout's mask there).
    #[allow(clippy::too_many_arguments)]
    fn batch_norm(
        &self,
        l: &Layout,
        gamma: Option<(&Self, &Layout)>,
        beta: Option<(&Self, &Layout)>,
        running: Option<[(&mut Self, &Layout); 2]>,
        residual: Option<(&Self, &Layout)>,
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

/// The geometry of a 2-D sliding window over an (n, c, h, w) input (convolution and
/// pooling; see `BackendStorage::unfold2d`): kernel (kh, kw), stride, padding, dilation, and
/// the output size (oh, ow). Window positions in the padding ring take `pad_value`; those
/// past it (the last windows of a `ceil_mode` pooling) take `outside`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window2d {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub dh: usize,
    pub dw: usize,
    pub oh: usize,
    pub ow: usize,
    pub pad_value: f64,
    pub outside: f64,
}

impl Window2d {
    /// Columns of the unfolded matrix: c * kh * kw (channel slowest, then kernel row, column).
    pub fn cols(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Rows of the unfolded matrix: n * oh * ow.
    pub fn rows(&self) -> usize {
        self.n * self.oh * self.ow
    }
    /// What window entry (i, j) of output position (oy, ox) of image n, channel c reads.
    #[inline(always)]
    pub fn source(&self, n: usize, c: usize, oy: usize, ox: usize, i: usize, j: usize) -> Tap {
        let y = (oy * self.sh + i * self.dh) as isize - self.ph as isize;
        let x = (ox * self.sw + j * self.dw) as isize - self.pw as isize;
        if y >= 0 && x >= 0 && (y as usize) < self.h && (x as usize) < self.w {
            Tap::In(((n * self.c + c) * self.h + y as usize) * self.w + x as usize)
        } else if y < (self.h + self.ph) as isize && x < (self.w + self.pw) as isize {
            Tap::Pad
        } else {
            Tap::Outside
        }
    }
}

/// Where a window entry reads (see `Window2d::source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    /// the input element at this flat (n, c, h, w) index
    In(usize),
    /// the padding ring: `pad_value`
    Pad,
    /// past the padding (ceil_mode's last windows): `outside`
    Outside,
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
    /// dropout after that (BatchNorm1d -> ReLU -> Dropout): y = v * a + 0 with a from the
    /// mask (`keep_scale` kept, 0 dropped; the shifts are 0), the gradient g * a first
    pub drop: Option<MaskSpec>,
    /// a residual block's shortcut added last (`skip + y`, as `Residual` adds it); the
    /// backward is unchanged (the shortcut's gradient is g itself)
    pub residual: bool,
    /// y (and the parameters' gradients) in float32 whatever x's dtype: autocast's batch
    /// norm of a half input, which normalizes in float32 (the input read as it rests,
    /// x's gradient in x's dtype)
    pub wide_out: bool,
}

/// How `matmul_cast` casts: the half dtype `to` the operands are read as, the dtype `out`
/// the result comes back in (`to`, or float32), and whether A's row sums come too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProductCast {
    pub to: DType,
    pub out: DType,
    pub row_sums: bool,
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
