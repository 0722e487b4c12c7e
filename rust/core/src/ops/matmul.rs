//! Matrix products: `matmul`/`mm`/`bmm`, and `linear` with its fused bias and activation.
//! The kernels are the backends' (`BackendStorage::matmul`).

use crate::backend::ProductCast;
use crate::dtype::DType;
use crate::error::Result;
use crate::layout::{broadcast_shapes, checked_numel, fmt_shape, Layout};
use crate::ops::unary::UnaryOp;
use crate::shape_err;
use crate::tensor::Tensor;
use std::sync::Arc;

/// The shapes of a batched product `a @ b` (batch dims broadcast) and where each batch's
/// operand matrices start: shared by the CPU (gemm) and GPU (WGSL) paths.
pub(crate) struct BatchPlan {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// batch dims, then (m, n)
    pub out_shape: Vec<usize>,
    /// a's and b's layouts broadcast to the batch dims
    pub la: Layout,
    pub lb: Layout,
}

impl BatchPlan {
    pub(crate) fn new(a: &Layout, b: &Layout) -> Result<BatchPlan> {
        let (ash, bsh) = (&a.shape[..], &b.shape[..]);
        let (m, k) = (ash[ash.len() - 2], ash[ash.len() - 1]);
        let n = bsh[bsh.len() - 1];
        let batch = broadcast_shapes("matmul", &ash[..ash.len() - 2], &bsh[..bsh.len() - 2])?;
        let with = |tail: [usize; 2]| {
            let mut s = batch.to_vec();
            s.extend(tail);
            s
        };
        let out_shape = with([m, n]);
        checked_numel(&out_shape)?;
        let la = a.broadcast_to("matmul", &with([m, k]))?;
        let lb = b.broadcast_to("matmul", &with([k, n]))?;
        Ok(BatchPlan {
            m,
            k,
            n,
            out_shape,
            la,
            lb,
        })
    }

    /// Number of output elements.
    pub(crate) fn total(&self) -> usize {
        self.out_shape.iter().product()
    }

    /// (row stride, column stride) of a's and b's matrices.
    pub(crate) fn matrix_strides(&self) -> ((isize, isize), (isize, isize)) {
        let nd = self.la.ndim();
        (
            (self.la.strides[nd - 2], self.la.strides[nd - 1]),
            (self.lb.strides[nd - 2], self.lb.strides[nd - 1]),
        )
    }

    /// Storage offsets of a's and b's matrix in each batch, in output order.
    pub(crate) fn offsets(&self) -> Vec<(isize, isize)> {
        let batch = &self.out_shape[..self.out_shape.len() - 2];
        let nb: usize = batch.iter().product();
        let mut idx = vec![0usize; batch.len()];
        let mut out = Vec::with_capacity(nb);
        for _ in 0..nb {
            let (mut oa, mut ob) = (self.la.offset as isize, self.lb.offset as isize);
            for (d, &i) in idx.iter().enumerate() {
                oa += i as isize * self.la.strides[d];
                ob += i as isize * self.lb.strides[d];
            }
            out.push((oa, ob));
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < batch[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out
    }
}

/// `act(a @ b + bias)` on the operands' device, without autograd: the backend's product
/// (the bias pre-filled, the activation in the epilogue where the backend fuses it), or,
/// for an empty inner dim, zeros plus the bias.
fn product(
    op: &str,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    act: Option<UnaryOp>,
) -> Result<Tensor> {
    same_device(op, a, b)?;
    if let Some(bias) = bias {
        same_device(op, a, bias)?;
    }
    let plan = BatchPlan::new(a.layout(), b.layout())?;
    if plan.total() == 0 || plan.k == 0 {
        let _g = crate::autograd::NoGradGuard::new();
        let z = Tensor::zeros(&plan.out_shape, a.dtype())?.to_device(a.device())?;
        let z = match bias {
            Some(bias) if plan.total() > 0 => z.add(&bias.detach())?,
            _ => z,
        };
        return match act {
            Some(f) if plan.total() > 0 => z.unary(f),
            _ => Ok(z),
        };
    }
    let out = {
        let (ga, gb) = (a.storage_guard(), b.storage_guard());
        let gbias = bias.map(|t| t.storage_guard());
        let bias = gbias.as_ref().zip(bias).map(|(g, t)| (&**g, t.layout()));
        ga.matmul(a.layout(), &gb, b.layout(), bias, act)?
    };
    Tensor::from_buffer(out, &plan.out_shape)
}

/// A Linear layer's weight and bias gradients, `g^T x` and the column sums of `g`, from
/// one pass where the backend makes both (`BackendStorage::matmul_row_sums`: the GPU sums
/// inside the product, a dispatch fewer per layer; where its kernel cannot, the product
/// and then a sum); None to compute them apart. Not while a graph of the backward is
/// recorded (the fused pass has no backward of its own).
fn weight_and_bias_grads(g: &Tensor, x: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
    if crate::autograd::is_grad_enabled() || g.device() != x.device() || g.dtype() != x.dtype() {
        return Ok(None);
    }
    let gt = g.transpose(0, 1)?;
    let (m, n) = (gt.shape()[0], x.shape()[1]);
    if m == 0 || n == 0 || x.shape()[0] == 0 {
        return Ok(None);
    }
    let fused = {
        let (ga, gb) = (gt.storage_guard(), x.storage_guard());
        ga.matmul_row_sums(gt.layout(), &gb, x.layout())
    };
    let Some(r) = fused else { return Ok(None) };
    let (dw, db) = r?;
    let dw = Tensor::from_buffer(dw, &[m, n])?;
    let db = match db {
        Some(db) => Tensor::from_buffer(db, &[m])?,
        None => g.sum(Some(&[0]), false)?,
    };
    Ok(Some((dw, db)))
}

/// `act(a' @ b' + bias')` with the operands cast to the half dtype `cast.to` and the result
/// rounded to it, in dtype `cast.out`, plus a''s row sums when asked and made, where the
/// backend fuses the casts into the product (`BackendStorage::matmul_cast`); None: the
/// caller casts. No autograd; non-empty products on one device only.
fn product_cast(
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    act: Option<UnaryOp>,
    cast: ProductCast,
) -> Result<Option<(Tensor, Option<Tensor>)>> {
    if a.device() != b.device() || bias.is_some_and(|t| t.device() != a.device()) {
        return Ok(None);
    }
    let plan = BatchPlan::new(a.layout(), b.layout())?;
    if plan.total() == 0 || plan.k == 0 {
        return Ok(None);
    }
    let fused = {
        let (ga, gb) = (a.storage_guard(), b.storage_guard());
        let gbias = bias.map(|t| t.storage_guard());
        let bias = gbias.as_ref().zip(bias).map(|(g, t)| (&**g, t.layout()));
        ga.matmul_cast(a.layout(), &gb, b.layout(), bias, act, cast)
    };
    let Some(r) = fused else { return Ok(None) };
    let (c, sums) = r?;
    let c = Tensor::from_buffer(c, &plan.out_shape)?;
    let sums = sums
        .map(|s| Tensor::from_buffer(s, &[plan.m]))
        .transpose()?;
    Ok(Some((c, sums)))
}

/// A 2-D Linear's input gradient `g @ w` (`own`: how it is made apart), with the gradient
/// other consumers have already accumulated for the input (`autograd::take_prior`: a
/// residual block's shortcut) added inside the product where the backend can
/// (`BackendStorage::matmul_add`; with `cast`, mixed precision's product rounded to that
/// half first), else after it, as the engine would (`prior + own`). Not while a graph of
/// the backward is recorded.
fn input_grad(
    g: &Tensor,
    w: &Tensor,
    cast: Option<DType>,
    own: impl FnOnce() -> Result<Tensor>,
) -> Result<Tensor> {
    if crate::autograd::is_grad_enabled() || g.ndim() != 2 {
        return own();
    }
    let Some(prior) = crate::autograd::take_prior(0) else {
        return own();
    };
    let (m, k, n) = (g.shape()[0], g.shape()[1], w.shape()[1]);
    let want = if cast.is_some() {
        DType::F32
    } else {
        g.dtype()
    };
    let fits = prior.shape() == [m, n]
        && prior.dtype() == want
        && prior.device() == g.device()
        && w.device() == g.device()
        && m * n * k > 0;
    if fits {
        let fused = {
            let (ga, gb, gd) = (g.storage_guard(), w.storage_guard(), prior.storage_guard());
            ga.matmul_add(g.layout(), &gb, w.layout(), (&gd, prior.layout()), cast)
        };
        if let Some(out) = fused {
            return Tensor::from_buffer(out?, &[m, n]);
        }
    }
    prior.add(&own()?)
}

fn same_device(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.device() != b.device() {
        return Err(crate::error::Error::Device(format!(
            "{op}: expected all tensors on one device, got {} and {}; move one with .to()",
            a.device().name(),
            b.device().name()
        )));
    }
    Ok(())
}

impl Tensor {
    /// Checks the ranks of a strict product (`mm`, `bmm`, `mv`, `dot`, `outer`).
    fn expect_ranks(&self, other: &Tensor, op: &str, ranks: (usize, usize)) -> Result<()> {
        if (self.ndim(), other.ndim()) != ranks {
            return Err(shape_err!(
                "{op}: expected {}-D and {}-D tensors, got shapes {} and {}",
                ranks.0,
                ranks.1,
                fmt_shape(self.shape()),
                fmt_shape(other.shape())
            ));
        }
        Ok(())
    }

    /// Matrix times matrix (both 2-D), as `torch.mm`.
    pub fn mm(&self, other: &Tensor) -> Result<Tensor> {
        self.expect_ranks(other, "mm", (2, 2))?;
        self.matmul(other)
    }

    /// Batched matrix product of (b, n, k) and (b, k, m) with equal batches, as `torch.bmm`.
    pub fn bmm(&self, other: &Tensor) -> Result<Tensor> {
        self.expect_ranks(other, "bmm", (3, 3))?;
        if self.shape()[0] != other.shape()[0] {
            return Err(shape_err!(
                "bmm: batch sizes differ: shapes {} and {}",
                fmt_shape(self.shape()),
                fmt_shape(other.shape())
            ));
        }
        self.matmul(other)
    }

    /// Matrix times vector (2-D and 1-D), as `torch.mv`.
    pub fn mv(&self, other: &Tensor) -> Result<Tensor> {
        self.expect_ranks(other, "mv", (2, 1))?;
        self.matmul(other)
    }

    /// Inner product of two 1-D tensors of one length: a 0-dim tensor.
    pub fn dot(&self, other: &Tensor) -> Result<Tensor> {
        self.expect_ranks(other, "dot", (1, 1))?;
        self.matmul(other)
    }

    /// Outer product of two 1-D tensors: (n,) and (m,) give (n, m).
    pub fn outer(&self, other: &Tensor) -> Result<Tensor> {
        self.expect_ranks(other, "outer", (1, 1))?;
        self.unsqueeze(1)?.mul(&other.unsqueeze(0)?)
    }

    /// Matrix product with NumPy's rules: 1-D operands are promoted and the added dim
    /// removed afterwards; batch dims broadcast.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        let (ash, bsh) = (self.shape().to_vec(), other.shape().to_vec());
        if ash.is_empty() || bsh.is_empty() {
            return Err(shape_err!(
                "matmul: both operands need at least one dimension, got shapes {} and {}",
                fmt_shape(&ash),
                fmt_shape(&bsh)
            ));
        }
        let ka = ash[ash.len() - 1];
        let kb = if bsh.len() == 1 {
            bsh[0]
        } else {
            bsh[bsh.len() - 2]
        };
        if ka != kb {
            return Err(shape_err!(
                "matmul: shapes {} and {} do not align ({} != {})",
                fmt_shape(&ash),
                fmt_shape(&bsh),
                ka,
                kb
            ));
        }
        let dt = self.dtype().promote(other.dtype());
        if !dt.is_float() {
            return self.int_matmul(other, dt);
        }
        let dt = crate::autocast::product_dtype(dt, self.device());
        let (a, b) = (self.cast(dt)?, other.cast(dt)?);
        match (ash.len(), bsh.len()) {
            (1, 1) => a.unsqueeze(0)?.mm_nd(&b.unsqueeze(1)?)?.reshape(&[]),
            (1, _) => a.unsqueeze(0)?.mm_nd(&b)?.squeeze(Some(-2)),
            (_, 1) => a.mm_nd(&b.unsqueeze(1)?)?.squeeze(Some(-1)),
            _ => a.mm_nd(&b),
        }
    }

    /// `matmul` of integer tensors (shapes already checked), exact in wrapping int64 and
    /// then of the operands' promoted dtype (uint8 and int32 wrap), as PyTorch's integer
    /// products; integers live on the host and carry no gradient. Bool is refused, as
    /// PyTorch refuses it.
    fn int_matmul(&self, other: &Tensor, dt: DType) -> Result<Tensor> {
        if dt == DType::Bool {
            return Err(crate::error::Error::DType(
                "matmul: not defined for bool tensors (as in PyTorch)".into(),
            ));
        }
        let (a, b) = (self.cast(DType::I64)?, other.cast(DType::I64)?);
        let (a1, b1) = (a.ndim() == 1, b.ndim() == 1);
        let a = if a1 { a.unsqueeze(0)? } else { a };
        let b = if b1 { b.unsqueeze(1)? } else { b };
        let (ra, rb) = (a.ndim(), b.ndim());
        let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
        let batch = broadcast_shapes("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2])?;
        let full = |t: &Tensor, r: usize, c: usize| -> Result<Vec<i64>> {
            let mut sh = batch.to_vec();
            sh.extend([r, c]);
            t.broadcast_to(&sh)?.to_vec::<i64>()
        };
        let (av, bv) = (full(&a, m, k)?, full(&b, k, n)?);
        let mut shape = batch.to_vec();
        shape.extend([m, n]);
        let mut out = crate::storage::try_filled(checked_numel(&shape)?, 0i64)?;
        let nb = checked_numel(&batch)?;
        for p in 0..nb {
            for i in 0..m {
                let row = &mut out[(p * m + i) * n..(p * m + i + 1) * n];
                for kk in 0..k {
                    let x = av[(p * m + i) * k + kk];
                    let brow = &bv[(p * k + kk) * n..(p * k + kk + 1) * n];
                    for (o, &y) in row.iter_mut().zip(brow) {
                        *o = o.wrapping_add(x.wrapping_mul(y));
                    }
                }
            }
        }
        let mut y = Tensor::from_vec(out, &shape)?;
        if b1 {
            y = y.squeeze(Some(-1))?;
        }
        if a1 {
            y = y.squeeze(Some(if b1 { -1 } else { -2 }))?;
        }
        y.cast(dt)
    }

    /// `a @ b` for operands of at least two dims and one float dtype.
    fn mm_nd(&self, other: &Tensor) -> Result<Tensor> {
        let out = product("matmul", self, other, None, None)?;
        let (a, b) = (self.saved_input(), other.saved_input());
        let (na, nb) = (self.requires_grad(), other.requires_grad());
        let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
        let saved: crate::autograd::Saved = [(nb, &a), (na, &b)]
            .into_iter()
            .filter(|(n, _)| *n)
            .map(|(_, t)| t.clone())
            .collect();
        Ok(crate::autograd::record_higher(
            out,
            "MatmulBackward",
            &[self, other],
            saved,
            move |g| {
                // d(ab) = g b^T for a and a^T g for b, summed over broadcast batch dims
                Ok(vec![
                    if na {
                        Some(g.mm_nd(&b.transpose(-1, -2)?)?.sum_to(&sa)?)
                    } else {
                        None
                    },
                    if nb {
                        Some(a.transpose(-1, -2)?.mm_nd(g)?.sum_to(&sb)?)
                    } else {
                        None
                    },
                ])
            },
        ))
    }

    /// `x @ w^T + b` with `w` of shape (out, in), as `torch.nn.functional.linear`; the bias is
    /// fused into the matrix product for 2-D inputs.
    pub fn linear(&self, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        self.linear_act(w, b, None, None)
    }

    /// `act(x @ w^T + b)` for a fusable `act` (relu, selu, tanh, sigmoid, elu, leaky relu;
    /// see `Tensor::fusable_activation`): on the GPU the activation runs in the matrix
    /// product's epilogue, and the backward needs only the output (no pre-activation is
    /// kept), on either device. With `drop`, a dropout in training follows (as the
    /// `dropout`/`alpha_dropout` op would, the same mask): one graph node, whose backward
    /// runs the mask and the activation's derivative in one pass where the backend can.
    pub fn linear_act(
        &self,
        w: &Tensor,
        b: Option<&Tensor>,
        act: Option<UnaryOp>,
        drop: Option<crate::ops::nn::Dropout>,
    ) -> Result<Tensor> {
        if let Some(d) = drop {
            d.check()?;
            // only a mask of 0 < p < 1 after an activation is fused; the rest composes
            let p = d.p();
            if act.is_none() || p == 0.0 || p >= 1.0 {
                return self.linear_act(w, b, act, None)?.drop_out(d, true);
            }
        }
        if let Some(op) = act {
            if !Tensor::fusable_activation(op) {
                return Err(crate::value_err!(
                    "linear: activation {op:?} cannot be fused (its derivative needs the input); \
                     apply it after linear"
                ));
            }
        }
        let (xs, ws) = (self.shape().to_vec(), w.shape().to_vec());
        if ws.len() != 2 || xs.is_empty() || xs[xs.len() - 1] != ws[1] {
            return Err(shape_err!(
                "linear: input of shape {} does not fit weight of shape {} (expected (..., {}))",
                fmt_shape(&xs),
                fmt_shape(&ws),
                ws.get(1).copied().unwrap_or(0)
            ));
        }
        if let Some(b) = b {
            if b.shape() != [ws[0]] {
                return Err(shape_err!(
                    "linear: bias of shape {} does not fit weight of shape {} (expected ({},))",
                    fmt_shape(b.shape()),
                    fmt_shape(&ws),
                    ws[0]
                ));
            }
        }
        let dt = self.dtype().promote(w.dtype());
        if dt.is_int() && act.is_none() && drop.is_none() {
            // integers: the exact integer product (and bias), as PyTorch's
            let y = self.matmul(&w.transpose(0, 1)?)?;
            return match b {
                Some(b) => y.add(b),
                None => Ok(y),
            };
        }
        let dt = if dt.is_float() { dt } else { DType::F32 };
        let dt = crate::autocast::product_dtype(dt, self.device());
        let then_drop = |y: Tensor| match drop {
            Some(d) => y.drop_out(d, true),
            None => Ok(y),
        };
        if xs.len() != 2 {
            let y = self.cast(dt)?.matmul(&w.cast(dt)?.transpose(0, 1)?)?;
            let y = match b {
                Some(b) => y.add(&b.cast(dt)?)?,
                None => y,
            };
            return then_drop(match act {
                Some(op) => y.unary(op)?,
                None => y,
            });
        }
        if let Some(y) = self.linear_cast(w, b, act, dt)? {
            return then_drop(y);
        }
        let (x, w) = (self.cast(dt)?, w.cast(dt)?);
        let b = b.map(|b| b.cast(dt)).transpose()?;
        let wt = w.detach().transpose(0, 1)?;
        let y = product("linear", &x, &wt, b.as_ref(), act)?;
        // the mask is reserved after the product, where the separate op would reserve it
        let (out, dropped) = match drop {
            Some(d) => {
                let mask = d.mask(y.numel());
                let (z, saved) = y.storage_guard().masked_affine(y.layout(), &mask)?;
                (
                    Tensor::from_buffer(z, y.shape())?,
                    Some((Arc::new(saved), mask)),
                )
            }
            None => (y.clone(), None),
        };
        // kept with their history: a create_graph pass differentiates the rule
        let (xd, wd) = (x.saved_input(), w.saved_input());
        let bh = b
            .as_ref()
            .filter(|_| act.is_some())
            .map(|b| b.saved_input());
        let (nx, nw, nbias) = (
            x.requires_grad(),
            w.requires_grad(),
            b.as_ref().is_some_and(|b| b.requires_grad()),
        );
        let mut inputs: Vec<&Tensor> = vec![&x, &w];
        if let Some(b) = b.as_ref() {
            inputs.push(b);
        }
        let y_saved = act.map(|_| y.detach());
        let saved = linear_saved(nx, nw, &xd, &wd, y_saved.as_ref());
        // the activation's output (kept anyway, y_saved) serves a create_graph pass too
        let keep = act.is_some() && dropped.is_none();
        Ok(crate::autograd::record_higher_out(
            out,
            "LinearBackward",
            &inputs,
            saved,
            keep,
            move |g, own| {
                if crate::autograd::creating_graph() {
                    let g = match &dropped {
                        Some((saved, mask)) => Tensor::masked_scale_grad(g, saved, *mask)?,
                        None => g.clone(),
                    };
                    // without a dropout the output is the activation's: its derivative from
                    // the output with its history (no product recomputed)
                    let from_out = act.zip(own.filter(|_| dropped.is_none()));
                    return match from_out {
                        Some((op, y)) => {
                            let gz = crate::ops::unary::act_grad_from_output_recorded(op, y, &g)?;
                            linear_grads_recorded(&gz, &xd, &wd, None, None, [nx, nw, nbias])
                        }
                        None => {
                            linear_grads_recorded(&g, &xd, &wd, bh.as_ref(), act, [nx, nw, nbias])
                        }
                    };
                }
                // through the mask and the activation first, from the output alone
                let g = match (act, &y_saved, &dropped) {
                    (Some(op), Some(y), Some((saved, mask))) => {
                        Tensor::masked_act_grad(g, saved, mask, op, y)?
                    }
                    (Some(op), Some(y), None) => Tensor::act_backward_from_output(op, y, g)?,
                    _ => g.clone(),
                };
                let g = &g;
                // y = x w^T + b: dx = g w, dw = g^T x, db = sum over rows of g
                let dx = match nx {
                    true => Some(input_grad(g, &wd, None, || g.mm_nd(&wd))?),
                    false => None,
                };
                if nw && nbias {
                    if let Some((dw, db)) = weight_and_bias_grads(g, &xd)? {
                        return Ok(vec![dx, Some(dw), Some(db)]);
                    }
                }
                let mut grads = vec![
                    dx,
                    if nw {
                        Some(g.transpose(0, 1)?.mm_nd(&xd)?)
                    } else {
                        None
                    },
                ];
                grads.push(if nbias {
                    Some(g.sum(Some(&[0]), false)?)
                } else {
                    None
                });
                Ok(grads)
            },
        ))
    }

    /// Mixed precision's 2-D Linear: operands float32 or of the half dtype `dt`, computed as
    /// `act(x.to(dt) @ w.to(dt).T + b.to(dt))` with the casts fused into the product where
    /// the backend can (`product_cast`), and likewise its gradients (each the half product
    /// cast back to its input's dtype: `dx = (g @ w')`, `dw = (g^T x')`, `db = sum of g`,
    /// rounded to `dt`). One graph node instead of a cast per operand, and on the GPU none
    /// of the casts' passes (mixed precision's Residual step: 397 -> 2xx dispatches). None:
    /// nothing to cast, other dtypes, or a backend that does not fuse; `linear_act` casts.
    fn linear_cast(
        &self,
        w: &Tensor,
        b: Option<&Tensor>,
        act: Option<UnaryOp>,
        dt: DType,
    ) -> Result<Option<Tensor>> {
        if !matches!(dt, DType::F16 | DType::BF16) {
            return Ok(None);
        }
        let dts = [self.dtype(), w.dtype(), b.map_or(dt, |b| b.dtype())];
        if dts.iter().any(|&d| d != DType::F32 && d != dt) || dts.iter().all(|&d| d == dt) {
            return Ok(None);
        }
        let [xdt, wdt, bdt] = dts;
        let (xd, wd) = (self.detach(), w.detach());
        let bd = b.map(|b| b.detach());
        let wt = wd.transpose(0, 1)?;
        let to = move |out| ProductCast {
            to: dt,
            out,
            row_sums: false,
        };
        let Some((out, _)) = product_cast(&xd, &wt, bd.as_ref(), act, to(dt))? else {
            return Ok(None);
        };
        let (nx, nw) = (self.requires_grad(), w.requires_grad());
        let nbias = b.is_some_and(|b| b.requires_grad());
        let mut inputs: Vec<&Tensor> = vec![self, w];
        if let Some(b) = b {
            inputs.push(b);
        }
        let y_saved = act.map(|_| out.detach());
        let saved = linear_saved(nx, nw, &xd, &wd, y_saved.as_ref());
        // for a create_graph pass: the operands with their history
        let (xh, wh, bh) = (
            self.saved_input(),
            w.saved_input(),
            b.map(Tensor::saved_input),
        );
        Ok(Some(crate::autograd::record_higher(
            out,
            "LinearBackward",
            &inputs,
            saved,
            move |g| {
                if crate::autograd::creating_graph() {
                    // the same casts as recorded ops, each gradient cast back to its input's
                    let (xc, wc) = (xh.cast(dt)?, wh.cast(dt)?);
                    let bc = bh.as_ref().map(|b| b.cast(dt)).transpose()?;
                    let gd = g.cast(dt)?;
                    let got =
                        linear_grads_recorded(&gd, &xc, &wc, bc.as_ref(), act, [nx, nw, nbias])?;
                    let back = [xdt, wdt, bdt];
                    return got
                        .into_iter()
                        .zip(back)
                        .map(|(d, to)| d.map(|d| d.cast(to)).transpose())
                        .collect();
                }
                let g = match (act, &y_saved) {
                    (Some(op), Some(y)) => Tensor::act_backward_from_output(op, y, g)?,
                    _ => g.clone(),
                };
                // a recorded backward (create_graph) takes the differentiable ops
                let fused = !crate::autograd::is_grad_enabled();
                let own = || {
                    match fused {
                        true => product_cast(&g, &wd, None, None, to(xdt))?.map(|(c, _)| c),
                        false => None,
                    }
                    .map_or_else(|| g.cast(dt)?.mm_nd(&wd.cast(dt)?)?.cast(xdt), Ok)
                };
                let dx = match (nx, xdt) {
                    (false, _) => None,
                    // a float32 input may have the shortcut's gradient folded in (input_grad)
                    (true, DType::F32) => Some(input_grad(&g, &wd, Some(dt), own)?),
                    (true, _) => Some(own()?),
                };
                let gt = g.transpose(0, 1)?;
                let (mut dw, mut db) = (None, None);
                if nw && fused {
                    let sums = nbias && wdt == DType::F32 && bdt == DType::F32;
                    let cast = ProductCast {
                        row_sums: sums,
                        ..to(wdt)
                    };
                    if let Some((c, s)) = product_cast(&gt, &xd, None, None, cast)? {
                        (dw, db) = (Some(c), s);
                    }
                }
                if nw && dw.is_none() {
                    dw = Some(gt.cast(dt)?.mm_nd(&xd.cast(dt)?)?.cast(wdt)?);
                }
                if nbias && db.is_none() {
                    db = Some(if fused && bdt == DType::F32 && g.dtype() == dt {
                        // the half sum cast back in one pass (no pack, then unpack), same bits
                        g.sum_rounded_f32(&[0])?
                    } else {
                        g.cast(dt)?.sum(Some(&[0]), false)?.cast(bdt)?
                    });
                }
                Ok(vec![dx, dw, if nbias { db } else { None }])
            },
        )))
    }
}

/// Linear's gradients in recorded ops, for a `create_graph` pass: through the activation
/// (its derivative at the pre-activation, recomputed from x, w and b), then dx = g w,
/// dw = g^T x, db = the column sums of g.
fn linear_grads_recorded(
    g: &Tensor,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    act: Option<UnaryOp>,
    [nx, nw, nb]: [bool; 3],
) -> Result<Vec<Option<Tensor>>> {
    let g = match act {
        Some(op) => {
            let z = x.mm_nd(&w.transpose(0, 1)?)?;
            let z = match b {
                Some(b) => z.add(b)?,
                None => z,
            };
            crate::ops::unary::unary_grad_recorded(op, &z, g)?
        }
        None => g.clone(),
    };
    let dx = if nx { Some(g.mm_nd(w)?) } else { None };
    let dw = if nw {
        Some(g.transpose(0, 1)?.mm_nd(x)?)
    } else {
        None
    };
    let db = if nb {
        Some(g.sum(Some(&[0]), false)?)
    } else {
        None
    };
    Ok(vec![dx, dw, db])
}

/// What a linear layer's rule reads: the weight for the input's gradient, the input for
/// the weight's, and the activation's output when one is fused.
fn linear_saved(
    nx: bool,
    nw: bool,
    x: &Tensor,
    w: &Tensor,
    y: Option<&Tensor>,
) -> crate::autograd::Saved {
    [(nx, w), (nw, x)]
        .into_iter()
        .filter(|(n, _)| *n)
        .map(|(_, t)| t.clone())
        .chain(y.cloned())
        .collect()
}
