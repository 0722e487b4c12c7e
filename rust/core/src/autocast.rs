//! Automatic mixed precision, as PyTorch's autocast: while a thread has autocast on for a
//! device, the products on that device (matmul and its forms, linear, conv2d) cast their
//! float32 operands to the autocast dtype (float16 or bfloat16) and compute there, and the
//! ops whose range or accuracy suffers in half precision (softmax, log_softmax, the losses,
//! batch norm, sums) cast half operands to float32. Float64 operands are left alone, as
//! PyTorch leaves them. The casts are ordinary differentiable casts, so the parameters (the
//! float32 "master weights") get float32 gradients.
//!
//! The state is per thread, like grad mode; `ThreadModes` carries both to a worker thread.

use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::{Device, Tensor};
use std::cell::Cell;

thread_local! {
    /// The autocast dtype of each device kind on this thread: [host, gpu].
    static AUTOCAST: Cell<[Option<DType>; 2]> = const { Cell::new([None, None]) };
}

fn slot(device: Device) -> usize {
    match device {
        Device::Cpu => 0,
        Device::Gpu => 1,
    }
}

/// The autocast dtype for `device` on this thread, if autocast is on there.
pub fn autocast_dtype(device: Device) -> Option<DType> {
    AUTOCAST.with(|a| a.get()[slot(device)])
}

/// Turns autocast on for `device` with `dtype` (float16 or bfloat16), or off with None, on
/// this thread; returns the previous setting.
pub fn set_autocast(device: Device, dtype: Option<DType>) -> Result<Option<DType>> {
    if let Some(d) = dtype {
        if !matches!(d, DType::F16 | DType::BF16) {
            return Err(crate::value_err!(
                "autocast: dtype must be float16 or bfloat16, got {d}"
            ));
        }
    }
    Ok(AUTOCAST.with(|a| {
        let mut all = a.get();
        let prev = std::mem::replace(&mut all[slot(device)], dtype);
        a.set(all);
        prev
    }))
}

/// The dtype a product computes in: `dt` (its operands' promoted float dtype), lowered to
/// the autocast dtype when autocast is on for `device` and `dt` is float32 or a half.
pub(crate) fn product_dtype(dt: DType, device: Device) -> DType {
    match autocast_dtype(device) {
        Some(low) if dt.is_float() && dt != DType::F64 => low,
        _ => dt,
    }
}

/// The input of an op that runs in float32 under autocast: a half tensor cast to float32
/// when autocast is on for its device, else itself.
pub(crate) fn full_precision(t: &Tensor) -> Result<Tensor> {
    match autocast_dtype(t.device()) {
        Some(_) if matches!(t.dtype(), DType::F16 | DType::BF16) => t.cast(DType::F32),
        _ => Ok(t.clone()),
    }
}

/// This thread's modes (grad mode, autocast), to install on a worker thread that runs an
/// op for it.
#[derive(Debug, Clone, Copy)]
pub struct ThreadModes {
    grad: bool,
    autocast: [Option<DType>; 2],
}

impl ThreadModes {
    /// The calling thread's modes.
    pub fn current() -> ThreadModes {
        ThreadModes {
            grad: crate::autograd::is_grad_enabled(),
            autocast: AUTOCAST.with(|a| a.get()),
        }
    }

    /// Makes these the calling thread's modes; returns the ones they replace.
    pub fn install(self) -> ThreadModes {
        let prev = ThreadModes::current();
        crate::autograd::set_grad_enabled(self.grad);
        AUTOCAST.with(|a| a.set(self.autocast));
        prev
    }
}
