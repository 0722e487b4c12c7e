//! In-place updates: PyTorch's rules (dtype kind, no writes into overlapping views), one
//! path for every in-place op.

use super::Tensor;
use crate::autograd::{self};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::{shape_err, value_err};

impl Tensor {
    // ---------------------------------------------------------------- in-place updates

    /// What every in-place op checks before it writes: no autograd graph depends on the
    /// tensor, and no two of its elements share memory (an expanded view: the last write
    /// would win silently, so PyTorch refuses it too).
    fn check_inplace(&self, op: &str) -> Result<()> {
        if autograd::is_grad_enabled() && self.requires_grad() {
            return Err(Error::Autograd(format!(
                "{op}: a tensor that requires grad cannot be modified in place while grad mode is on; \
                 wrap the update in no_grad()"
            )));
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

    /// Computes `f(self)` outside the graph and stores it in place (see `store_result`).
    fn update_with(&self, op: &str, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<()> {
        self.check_inplace(op)?;
        let result = {
            let _g = autograd::NoGradGuard::new();
            f(self)?
        };
        self.store_result(op, &result)
    }

    /// Writes `values` (C order, already converted) into this tensor's elements.
    /// Copies `src` (broadcast to this shape, converted to this dtype) into this tensor.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        self.check_inplace("copy_")?;
        self.write_from(src)
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
        self.write_from(&value.detach().reshape(&[])?)
    }

    /// Sets every element to `value`.
    pub fn fill_(&self, value: f64) -> Result<()> {
        self.check_inplace("fill_")?;
        // one element broadcast by the write (on the GPU a one-element upload, queued like
        // any other GPU work)
        self.write_from(&Tensor::scalar(value, self.dtype()))
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
    pub fn apply_(&self, op: &str, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<()> {
        self.update_with(op, f)
    }
}
