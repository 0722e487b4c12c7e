//! ferrograd-core: tensors, reverse-mode autograd and SIMD CPU kernels, in pure Rust.
//!
//! This crate knows nothing about Python; `ferrograd-py` binds it. Every fallible
//! operation returns [`Result`] so that bad input never panics across the boundary.

pub mod alloc;
pub mod autocast;
pub mod autograd;
pub mod backend;
pub mod capture;
pub mod dtype;
pub mod error;
pub mod kernels;
pub mod layout;
pub mod ops;
pub mod optim;
pub mod random;
pub mod storage;
pub mod tensor;
pub mod threads;

pub use autocast::{autocast_dtype, set_autocast, ThreadModes};
pub use autograd::{is_grad_enabled, set_grad_enabled, NoGradGuard};
pub use dtype::DType;
pub use error::{Error, Result};
pub use tensor::{Device, HostMemory, Tensor};

/// The GPU backend under its short name (`ferrograd_core::gpu`).
#[cfg(feature = "gpu")]
pub use backend::wgpu as gpu;
