//! The WGSL compute backend: the wgpu runtime (device, buffer pool, pipeline and
//! bind-group caches, batched recording, profiler), the shaders, and the kernel launchers.
//!
//! Tensors on the GPU are float32 (bools as 0/1 floats). Kernels live in `shaders/` (one
//! file per family) and are compiled into the crate; every file shares one pipeline layout
//! of four bind groups (see `runtime`).

pub(crate) mod ops;
mod runtime;
pub mod shaders;
mod storage;

pub use ops::{
    matmul_kernel, matmul_kernel_names, matmul_split_k, matmul_tuning, set_matmul_kernel,
    set_matmul_split_k, set_matmul_split_k_fixup, set_matmul_tune_min_flops,
};
pub use runtime::*;
pub use storage::WgpuStorage;
