//! Kernels and their parameter structs (one per shader family, laid out as its WGSL Params).

use super::*;

/// One compute kernel: an entry point of a shader file, with its pipeline constants.
pub(crate) struct Kernel {
    /// Pipeline-cache key, unique per (source, entry, constants).
    pub key: &'static str,
    pub src: &'static str,
    pub entry: &'static str,
    pub constants: &'static [(&'static str, f64)],
    /// Skip wgpu's injected bounds checks (the kernel guards every access itself).
    pub unchecked: bool,
    /// Zero workgroup memory first (WebGPU's default; kernels that write before they read
    /// can skip it).
    pub zero_workgroup: bool,
}

impl Kernel {
    /// A plain kernel: no constants, wgpu's checks and zeroing kept.
    pub const fn new(key: &'static str, src: &'static str, entry: &'static str) -> Self {
        Kernel {
            key,
            src,
            entry,
            constants: &[],
            unchecked: false,
            zero_workgroup: true,
        }
    }
}

/// The buffers of one dispatch: read-only inputs (bindings 1, 2), the output (3), the
/// extra read-only data (4) and two more read-write buffers (5, 6) for in-place updates.
pub(crate) struct Binds<'a> {
    pub inputs: [Option<&'a GpuBuffer>; 2],
    pub output: &'a GpuBuffer,
    pub extra: Extra<'a>,
    pub rw: [Option<&'a GpuBuffer>; 2],
}

/// Kernel parameters (uniform buffers must be 16-byte multiples: all here are).
pub(crate) trait Params: bytemuck::Pod {
    /// Where a kernel that draws from the global random stream takes its stream: the byte
    /// offset of the seed (a u64, low word first), followed by the first index (another):
    /// a replayed graph sets both from the generator's state at the replay.
    const RNG_SEED: Option<usize> = None;
}

/// elementwise.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct EwParams {
    pub n: u32,
    pub op: u32,
    pub ndim: u32,
    pub row: u32,
    pub alpha: f32,
    pub beta: f32,
    pub a_offset: u32,
    pub b_offset: u32,
    /// elementwise.wgsl: how a, b, y and out rest (`half_codes`)
    pub halves: u32,
    pub pad: [u32; 3],
}
impl Params for EwParams {}

/// matmul.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub batch: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub a_bs: u32,
    pub a_off: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub b_bs: u32,
    pub b_off: u32,
    pub has_bias: u32,
    pub act: u32,
    pub c_off: u32,
    /// elu's alpha, leaky relu's slope
    pub alpha: f32,
    /// split-K chunk of k (the vec4 kernels; `k` or more: not split)
    pub kc: u32,
    /// split-K: 1 when the tile's last part sums the parts in the same dispatch
    /// (`finish_split`), 0 when `splitk_sum` does in a second one
    pub fixup: u32,
    /// 1: the row sums of A too (`launch_matmul`'s `row_sums`)
    pub row_sums: u32,
    /// A, B and the bias as packed halves: 0 no, 1 float16, 2 bfloat16
    pub a_half: u32,
    pub b_half: u32,
    pub bias_half: u32,
    /// C written as packed halves: 0 no, 1 float16, 2 bfloat16
    pub c_half: u32,
}
impl Params for MmParams {}

/// matmul_coop.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct CoopParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// 0 none, 1 float32 words, 2 packed halves
    pub bias: u32,
    pub a_ld: u32,
    pub b_ld: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub act: u32,
    pub alpha: f32,
    pub c_off: u32,
    pub _pad: u32,
}
impl Params for CoopParams {}

/// dropout.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DropParams {
    pub n: u32,
    pub threshold: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub start_lo: u32,
    pub start_hi: u32,
    pub row: u32,
    /// how x and out rest (dropout.wgsl's Params.halves)
    pub halves: u32,
    pub keep_scale: f32,
    pub keep_shift: f32,
    pub drop_shift: f32,
    pub _pad2: f32,
}
impl Params for DropParams {
    const RNG_SEED: Option<usize> = Some(std::mem::offset_of!(DropParams, seed_lo));
}

/// softmax.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct SmParams {
    pub rows: u32,
    pub cols: u32,
    pub row: u32,
    pub x_offset: u32,
    pub smoothing: f32,
    pub g_scale: f32,
    pub g_per_row: u32,
    /// xent and xent_grad: how x (bits 0-1) and g (bits 2-3) rest (0 float32 words, 1
    /// float16, 2 bfloat16 packed)
    pub halves: u32,
}
impl Params for SmParams {}

/// batchnorm.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct BnParams {
    pub n: u32,
    pub c: u32,
    pub flags: u32,
    pub row: u32,
    pub eps: f32,
    pub momentum: f32,
    pub unbias: f32,
    pub keep_scale: f32,
    pub threshold: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub start_lo: u32,
    pub start_hi: u32,
    /// how x and g rest (batchnorm.wgsl's Params.halves)
    pub halves: u32,
    pub _pad1: u32,
}
impl Params for BnParams {
    const RNG_SEED: Option<usize> = Some(std::mem::offset_of!(BnParams, seed_lo));
}

/// optim.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct OptParams {
    pub n: u32,
    pub row: u32,
    pub flags: u32,
    /// sgd and adam: the half code every buffer rests in (0 float32 words; 1 float16, 2
    /// bfloat16 packed two to a word: a word, two elements, a thread)
    pub half: u32,
    pub lr: f32,
    pub a: f32,
    pub b: f32,
    pub eps: f32,
    pub wd: f32,
    pub decay: f32,
    pub step_size: f32,
    pub sqrt_bc2: f32,
}
impl Params for OptParams {}

/// The multi-tensor optimizer kernels' Params (`multi_optimizer_source`).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MultiOptParams {
    /// tensors in this dispatch
    pub count: u32,
    pub row: u32,
    /// SGD's flags (optim_step.wgsl's `sgd_step`)
    pub flags: u32,
    pub _pad: u32,
    /// the update's constants (optim_step.wgsl's `h` of Adam or SGD)
    pub h: [f32; 4],
    /// Adam's `k`
    pub k: [f32; 4],
    /// each tensor's element count
    pub n: [u32; 32],
}
impl Params for MultiOptParams {}

/// gather.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GatherParams {
    pub n: u32,
    pub count: u32,
    pub size: u32,
    pub inner: u32,
    pub row: u32,
    pub x_offset: u32,
    /// scatter_sum_main: where the lists of gradient rows start in the index words
    pub lists: u32,
    pub _pad: u32,
}
impl Params for GatherParams {}

/// The window of conv.wgsl's and conv_gemm.wgsl's Params: their first 14 words.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct WindowWords {
    pub n: u32,
    pub c: u32,
    pub h: u32,
    pub w: u32,
    pub kh: u32,
    pub kw: u32,
    pub sh: u32,
    pub sw: u32,
    pub ph: u32,
    pub pw: u32,
    pub dh: u32,
    pub dw: u32,
    pub oh: u32,
    pub ow: u32,
}

impl From<&crate::backend::Window2d> for WindowWords {
    fn from(win: &crate::backend::Window2d) -> WindowWords {
        WindowWords {
            n: win.n as u32,
            c: win.c as u32,
            h: win.h as u32,
            w: win.w as u32,
            kh: win.kh as u32,
            kw: win.kw as u32,
            sh: win.sh as u32,
            sw: win.sw as u32,
            ph: win.ph as u32,
            pw: win.pw as u32,
            dh: win.dh as u32,
            dw: win.dw as u32,
            oh: win.oh as u32,
            ow: win.ow as u32,
        }
    }
}

/// conv.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ConvParams {
    pub win: WindowWords,
    pub total: u32,
    pub row: u32,
    pub x_offset: u32,
    pub _pad: u32,
    pub pad_value: f32,
    pub outside: f32,
}
impl Params for ConvParams {}

/// conv_gemm.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ConvGemmParams {
    pub win: WindowWords,
    pub m: u32,
    pub oc: u32,
    pub k: u32,
    pub x_off: u32,
    pub w_off: u32,
    pub has_bias: u32,
}
impl Params for ConvGemmParams {}

/// reduce.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct RdParams {
    pub outer: u32,
    pub r: u32,
    pub inner: u32,
    pub op: u32,
    pub row: u32,
    /// x as packed halves: 0 no, 1 float16, 2 bfloat16
    pub half: u32,
    /// the result rounded to float16 (1) or bfloat16 (2), written as float32 words
    pub round_out: u32,
    pub _pad: u32,
}
impl Params for RdParams {}
