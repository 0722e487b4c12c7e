//! Kernel launchers, one file per family: each computes its parameter struct and grid and
//! records one or a few dispatches into the shared encoder; nothing waits for the GPU
//! until data is read back.

use super::{
    self as gpu, ConvGemmParams, ConvParams, DropParams, EwParams, GatherParams, GpuBuffer,
    MmParams, RdParams, SmParams,
};
use crate::error::{Error, Result};
use crate::layout::{checked_numel, Layout};
use std::collections::HashMap;

mod conv;
mod elementwise;
mod index;
mod matmul;
mod nn;
mod optim;
mod reduce;

pub(crate) use conv::*;
pub(crate) use elementwise::*;
pub(crate) use index::*;
pub(crate) use matmul::*;
pub use matmul::{
    matmul_kernel, matmul_kernel_names, matmul_split_k, matmul_tuning, set_matmul_kernel,
    set_matmul_split_k, set_matmul_split_k_fixup, set_matmul_tune_min_flops,
};
pub(crate) use nn::*;
pub(crate) use optim::*;
pub(crate) use reduce::*;
