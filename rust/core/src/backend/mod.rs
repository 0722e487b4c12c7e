//! The device backends below the tensor: `cpu` (host kernels) and, with the `gpu` feature,
//! `wgpu` (WGSL compute shaders). See CONTRIBUTING.md for where each part of an op lives.

pub(crate) mod cpu;
#[cfg(feature = "gpu")]
pub mod wgpu;
