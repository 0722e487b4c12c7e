//! In-place updates: PyTorch's rules (dtype kind, no writes into overlapping views), one
//! path for every in-place op.

use super::Tensor;
use crate::autograd::{self, Node};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::{fmt_shape, Layout};
use crate::storage::try_vec;
use crate::{shape_err, value_err};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How many histories in-place ops have rewritten, process-wide: a view that has seen
/// this count has nothing to refresh (see `refresh_view`).
pub(super) static REWRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Tensor {
    // ---------------------------------------------------------------- in-place updates

    /// What every in-place op checks before it writes: a leaf that requires grad (or a
    /// view of one) is not written while grad mode is on (its `.grad` would no longer
    /// belong to its values; PyTorch refuses it too), and no two of its elements share
    /// memory (an expanded view: the last write would win silently). Other tensors in the
    /// graph may be written: the write is recorded (see `rebase`).
    fn check_inplace(&self, op: &str) -> Result<()> {
        if autograd::is_grad_enabled() {
            let root = self.view_root();
            let r = root.as_ref().unwrap_or(self);
            if r.requires_grad() && r.is_leaf() {
                return Err(Error::Autograd(format!(
                    "{op}: a tensor that requires grad cannot be modified in place while grad mode is on \
                     (a leaf{}); wrap the update in no_grad()",
                    if root.is_some() { ", written through a view of it" } else { "" }
                )));
            }
        }
        if self.0.layout.has_internal_overlap() {
            return Err(value_err!(
                "{op}: the tensor of shape {} (strides {:?}) is a view whose elements share memory \
                 (expanded, or overlapping windows); an in-place write into it is ambiguous, clone() it first",
                fmt_shape(self.shape()),
                self.strides()
            ));
        }
        Ok(())
    }

    /// The checks of an in-place write into this tensor (for writes that go through a view
    /// of it, such as index assignment): see `check_inplace`.
    pub fn check_writable(&self, op: &str) -> Result<()> {
        self.check_inplace(op)
    }

    /// The tensor this one views (the root of its chain of views), while it lives.
    pub fn view_base(&self) -> Option<Tensor> {
        self.view_root()
    }

    /// The root of this view's chain while it lives; None for a tensor that is no view.
    pub(crate) fn view_root(&self) -> Option<Tensor> {
        self.0.base.as_ref()?.root.upgrade().map(Tensor)
    }

    /// Whether an in-place write of `value` into this tensor must be recorded: grad mode
    /// is on and the tensor's history (or its root's) or the value takes part in autograd.
    pub(crate) fn tracked(&self, value: &Tensor) -> bool {
        autograd::is_grad_enabled()
            && (value.requires_grad()
                || self.requires_grad()
                || self.view_root().is_some_and(|r| r.requires_grad()))
    }

    /// After an in-place write under autograd: this tensor now holds `value` (its shape),
    /// so its history, and its root's when it is a view, is rewritten to say so, as
    /// PyTorch's CopySlices: the root's gradient flows to `value` at the written elements
    /// and to the root's previous history elsewhere. Views of the root made before pick
    /// up the new history when next used (`refresh_view`).
    fn rebase(&self, value: Tensor) -> Result<()> {
        self.rebase_at(value, None)
    }

    /// `rebase` for a write of `value`'s elements (C order) into this tensor's elements
    /// `sel` (int64 C-order indices; None: all of them, `value` shaped as this tensor).
    pub(crate) fn rebase_at(&self, value: Tensor, sel: Option<Tensor>) -> Result<()> {
        let value = if value.dtype() != self.dtype() {
            value.cast(self.dtype())?
        } else {
            value
        };
        let (root, pos) = match (self.view_root(), sel) {
            (Some(root), sel) => {
                let pos = positions(&root, &self.0.layout)?;
                let pos = match sel {
                    Some(s) => pos.index_select(0, &s)?,
                    None => pos,
                };
                (root, Some(pos))
            }
            (None, sel) => (self.clone(), sel),
        };
        let node = match (&pos, value.grad_fn()) {
            // the whole tensor replaced by a result of its own history (`relu_`, `mul_`)
            (None, Some(n)) => n,
            _ => copy_slices(&root, &value, pos)?,
        };
        let old = root.grad_fn();
        root.set_grad_fn(node);
        if let Some(old) = old {
            autograd::move_retain(&old, &root)?;
        }
        root.0.rebases.fetch_add(1, Ordering::AcqRel);
        REWRITES.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Brings a view's autograd state up to date after in-place writes rewrote its root's
    /// history: the view is then a selection from the root's new history.
    pub(super) fn refresh_view(&self) {
        let Some(b) = &self.0.base else { return };
        let epoch = REWRITES.load(Ordering::Acquire);
        // a plain load first: the common case writes nothing
        if b.checked.load(Ordering::Acquire) == epoch
            || b.checked.swap(epoch, Ordering::AcqRel) == epoch
        {
            return;
        }
        let Some(root) = b.root.upgrade().map(Tensor) else {
            return;
        };
        let now = root.0.rebases.load(Ordering::Acquire);
        if b.seen.swap(now, Ordering::AcqRel) == now {
            return;
        }
        if !root.0.requires_grad.load(Ordering::Relaxed) {
            return;
        }
        // positions cannot fail for a layout made from the root's own views
        if let Ok(pos) = positions(&root, &self.0.layout) {
            let n = root.numel();
            let shape = root.shape().to_vec();
            let pos = Arc::new(pos);
            let node = autograd::make_higher_node(
                "AsStridedBackward",
                &[&root],
                &[],
                Box::new(move |g: &Tensor| {
                    let gr = g
                        .reshape(&[-1])?
                        .index_add_rows(0, &pos, n)?
                        .reshape(&isize_shape(&shape))?;
                    Ok(vec![Some(gr)])
                }),
            );
            self.set_grad_fn(node);
        }
    }

    /// Stores the result of an in-place op (`self op= other`) back into this tensor. As in
    /// PyTorch, the result must have this tensor's shape, and a result dtype of a higher kind
    /// (float into int64 or bool, int64 into bool) is refused instead of truncated.
    fn store_result(&self, op: &str, result: &Tensor) -> Result<()> {
        if result.dtype().category() > self.dtype().category() {
            return Err(Error::DType(format!(
                "{op}: the result has dtype {}, which cannot be stored in place into a tensor of dtype {}; \
                 use the out-of-place operator instead",
                result.dtype(),
                self.dtype()
            )));
        }
        if result.shape() != self.shape() {
            return Err(shape_err!(
                "{op}: the result shape {} differs from the tensor's shape {}",
                fmt_shape(result.shape()),
                fmt_shape(self.shape())
            ));
        }
        self.write_from(result)
    }

    /// Computes `f(self)` and stores it in place (see `store_result`); under autograd the
    /// tensor's history becomes `f`'s (see `rebase`).
    fn update_with(&self, op: &str, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
        self.check_inplace(op)?;
        if autograd::is_grad_enabled() {
            let result = f(self)?;
            if !self.tracked(&result) {
                return self.store_result(op, &result);
            }
            // a rule of `f` that reads this tensor's values (mul_'s) would read the values
            // written over them: `f` runs again on a copy, which the rule keeps instead
            let before = self.grad_fn();
            let result = if autograd::history_reads(&result, self.storage_arc(), before.as_ref()) {
                f(&self.clone_tensor()?)?
            } else {
                result
            };
            self.store_result(op, &result)?;
            return self.rebase(result);
        }
        let result = f(self)?;
        self.store_result(op, &result)
    }

    /// Writes `values` (C order, already converted) into this tensor's elements.
    /// Copies `src` (broadcast to this shape, converted to this dtype) into this tensor.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        self.check_inplace("copy_")?;
        self.write_from(src)?;
        if self.tracked(src) {
            // the value as it now stands in this tensor, differentiable back to `src`
            let v = src.to_device(self.device())?.broadcast_to(self.shape())?;
            self.rebase(v)?;
        }
        Ok(())
    }

    /// The write of `copy_`, after its checks: any dtype converts, as in PyTorch's `copy_`.
    fn write_from(&self, src: &Tensor) -> Result<()> {
        if self.numel() == 0 {
            // nothing to write (an empty GPU view's offset may still name element 0)
            return src.broadcast_to(self.shape()).map(|_| ());
        }
        let _g = autograd::NoGradGuard::new();
        // the source in this dtype on this device; a view of this very storage is copied
        // first (the write locks the storage the source would be read from)
        let s = src.placed(self.dtype(), self.device())?;
        let s = if s.shares_storage(self) {
            s.copy_data()?
        } else {
            s
        };
        self.write_storage(&s)
    }

    /// Sets every element to the one element of `value` (a number as a 0-d tensor, or a
    /// one-element tensor; converted to this dtype, as PyTorch's `fill_`), exactly for int64.
    pub fn fill_with_(&self, value: &Tensor) -> Result<()> {
        if value.numel() != 1 {
            return Err(shape_err!(
                "fill_: the value must be a number or a one-element tensor, got shape {}",
                fmt_shape(value.shape())
            ));
        }
        self.check_inplace("fill_")?;
        let v = value.detach().reshape(&[])?;
        self.write_from(&v)?;
        self.rebase_constant(&v)
    }

    /// After a write of a constant: under autograd the written elements' gradient stops
    /// here (the history before the write gets none for them).
    fn rebase_constant(&self, v: &Tensor) -> Result<()> {
        if self.tracked(v) {
            self.rebase(v.to_device(self.device())?.broadcast_to(self.shape())?)?;
        }
        Ok(())
    }

    /// Sets every element to `value`.
    pub fn fill_(&self, value: f64) -> Result<()> {
        self.check_inplace("fill_")?;
        // one element broadcast by the write (on the GPU a one-element upload, queued like
        // any other GPU work)
        let v = Tensor::scalar(value, self.dtype());
        self.write_from(&v)?;
        self.rebase_constant(&v)
    }

    /// `self += alpha * other` in place (the optimizer's primitive). The sum is computed
    /// with the usual promotion, so `int_tensor.add_(1.5)` is refused rather than truncated;
    /// a non-integral `alpha` counts as a float operand.
    pub fn add_(&self, other: &Tensor, alpha: f64) -> Result<()> {
        self.scaled_add_("add_", other, alpha)
    }

    /// `self -= alpha * other` in place.
    pub fn sub_(&self, other: &Tensor, alpha: f64) -> Result<()> {
        self.scaled_add_("sub_", other, -alpha)
    }

    fn scaled_add_(&self, op: &str, other: &Tensor, alpha: f64) -> Result<()> {
        self.update_with(op, |t| {
            if alpha == 1.0 {
                return t.add(other);
            }
            // alpha * other in the sum's dtype (an int64 other next to a float tensor would
            // overflow in int64); a non-integral alpha makes an integer sum float32
            let mut dt = t.dtype().promote(other.dtype());
            if dt == DType::Bool || (!dt.is_float() && alpha.fract() != 0.0) {
                dt = if alpha.fract() == 0.0 {
                    DType::I64
                } else {
                    DType::F32
                };
            }
            // alpha * other through colocate: on the GPU in float32 (int64 stays on the host)
            let o = Tensor::colocate(op, &[other], dt)?.remove(0);
            t.add(&o.mul(&Tensor::scalar(alpha, dt))?)
        })
    }

    /// `self *= other` in place (a tensor or a 0-d scalar; promotion as for `add_`).
    pub fn mul_(&self, other: &Tensor) -> Result<()> {
        self.update_with("mul_", |t| t.mul(other))
    }

    /// `self /= other` in place; true division gives floats, so integer tensors refuse it.
    pub fn div_(&self, other: &Tensor) -> Result<()> {
        self.update_with("div_", |t| t.div(other))
    }

    /// Replaces the tensor with `f(self)`, computed outside the graph, for in-place forms of
    /// out-of-place ops (`clamp_`, `masked_fill_`); the result must keep shape and dtype kind.
    pub fn apply_(&self, op: &str, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
        self.update_with(op, f)
    }
}

fn isize_shape(shape: &[usize]) -> Vec<isize> {
    shape.iter().map(|&d| d as isize).collect()
}

/// For each element of a view with layout `view` (C order), its index in `root`'s C order
/// (as an int64 host tensor): where a write through the view lands in the root.
fn positions(root: &Tensor, view: &Layout) -> Result<Tensor> {
    let rl = &root.0.layout;
    let n = rl.numel();
    let mut out: Vec<i64> = try_vec(view.numel())?;
    if rl.is_contiguous() {
        let o = rl.offset as i64;
        view.for_each_index(|p| out.push(p as i64 - o));
    } else {
        let mut at = HashMap::with_capacity(n);
        let mut k = 0i64;
        rl.for_each_index(|p| {
            at.insert(p, k);
            k += 1;
        });
        view.for_each_index(|p| out.push(at.get(&p).copied().unwrap_or(-1)));
    }
    if out.iter().any(|&i| i < 0 || i as usize >= n) {
        return Err(Error::Autograd(
            "in-place write: a view reaches elements outside the tensor it views".into(),
        ));
    }
    let len = out.len();
    Tensor::from_vec(out, &[len])
}

/// The node of an in-place write of `value` into `root` (at `pos`, C-order indices into
/// root; None: all of it): gradient to `value` from the written elements, to the root's
/// previous history from the others (PyTorch's CopySlices).
fn copy_slices(root: &Tensor, value: &Tensor, pos: Option<Tensor>) -> Result<Arc<Node>> {
    let shape = root.shape().to_vec();
    let vshape = value.shape().to_vec();
    let n = root.numel();
    let need_prev = root.requires_grad();
    let need_value = value.requires_grad();
    let pos = pos.map(Arc::new);
    Ok(autograd::make_higher_node(
        "CopySlices",
        &[root, value],
        &[],
        Box::new(move |g: &Tensor| {
            let gv = match (need_value, &pos) {
                (false, _) => None,
                (true, None) => Some(g.reshape(&isize_shape(&vshape))?),
                (true, Some(p)) => Some(
                    g.reshape(&[-1])?
                        .index_select(0, p)?
                        .reshape(&isize_shape(&vshape))?,
                ),
            };
            let gp = match (need_prev, &pos) {
                (false, _) => None,
                (true, None) => Some(Tensor::zeros(&shape, g.dtype())?.to_device(g.device())?),
                (true, Some(p)) => {
                    // the elements the gradient no longer reaches through the old history,
                    // made here so the graph holds only the written positions, not a mask
                    // of the whole tensor per write
                    let mut keep = vec![true; n];
                    for &i in p.to_vec::<i64>()?.iter() {
                        keep[i as usize] = false;
                    }
                    let keep = Tensor::from_vec(keep, &[n])?.to_device(g.device())?;
                    let zero = Tensor::scalar(0.0, g.dtype());
                    Some(
                        Tensor::where_(&keep, &g.reshape(&[-1])?, &zero)?
                            .reshape(&isize_shape(&shape))?,
                    )
                }
            };
            Ok(vec![gp, gv])
        }),
    ))
}
