//! The WGSL compute backend: one lazily created wgpu device, a buffer pool, a pipeline
//! cache, and dispatches batched into one command encoder until results are read back.
//!
//! Tensors on the GPU are float32. Kernels live in `shaders/` (one file per family) and are
//! compiled into the crate; every file shares one bind-group layout:
//! 0 uniform params, 1 and 2 read-only inputs, 3 the output, 4 read-only metadata.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wgpu::util::DeviceExt;

/// WGSL sources, included at compile time.
pub mod shaders {
    /// Elementwise unary/binary kernels and unary backward.
    pub const ELEMENTWISE: &str = include_str!("../../../shaders/elementwise.wgsl");
    /// Tiled matrix product with a bias/activation epilogue.
    pub const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");
    /// Axis reductions (sum, mean, max, min, argmax).
    pub const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");
    /// Dropout masks from the counter-based generator.
    pub const DROPOUT: &str = include_str!("../../../shaders/dropout.wgsl");
    /// Row-wise log_softmax.
    pub const SOFTMAX: &str = include_str!("../../../shaders/softmax.wgsl");
    /// Row gathers (index_select).
    pub const GATHER: &str = include_str!("../../../shaders/gather.wgsl");
    /// Every shader file with its name, for validation.
    pub const ALL: [(&str, &str); 6] = [
        ("softmax", SOFTMAX),
        ("gather", GATHER),
        ("elementwise", ELEMENTWISE),
        ("matmul", MATMUL),
        ("reduce", REDUCE),
        ("dropout", DROPOUT),
    ];
}

/// The longest any wait for the GPU may take: lavapipe has hung before; never wait forever.
const GPU_TIMEOUT: Duration = Duration::from_secs(120);
/// Dispatches recorded before the pending encoder is submitted on its own.
const MAX_PENDING: usize = 256;

/// An adapter as `ferrograd.devices()` lists it.
#[derive(Debug, Clone)]
pub struct AdapterInfo {
    /// e.g. "NVIDIA H100" or "llvmpipe (LLVM 15.0.6, 256 bits)"
    pub name: String,
    /// e.g. "Vulkan"
    pub backend: String,
    /// e.g. "DiscreteGpu" or "Cpu"
    pub device_type: String,
}

struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    count: usize,
}

/// The device, queue, caches and the encoder being filled.
pub struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: AdapterInfo,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    pipelines: Mutex<HashMap<&'static str, wgpu::ComputePipeline>>,
    pool: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    pending: Mutex<Pending>,
    dummy: wgpu::Buffer,
    max_binding: u64,
    created: std::sync::atomic::AtomicUsize,
}

fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::VULKAN)
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends();
    wgpu::Instance::new(desc)
}

/// The adapters wgpu can see (Vulkan by default; `WGPU_BACKEND` overrides).
pub fn adapters() -> Vec<AdapterInfo> {
    let inst = instance();
    pollster::block_on(inst.enumerate_adapters(backends()))
        .iter()
        .map(|a| {
            let i = a.get_info();
            AdapterInfo {
                name: i.name,
                backend: format!("{:?}", i.backend),
                device_type: format!("{:?}", i.device_type),
            }
        })
        .collect()
}

static CONTEXT: OnceLock<std::result::Result<Arc<Context>, String>> = OnceLock::new();

/// The shared GPU context, created on first use; a clear `DeviceError` when there is no GPU.
pub fn context() -> Result<Arc<Context>> {
    CONTEXT
        .get_or_init(|| create().map(Arc::new))
        .clone()
        .map_err(Error::Device)
}

/// Whether a GPU context can be (or has been) created.
pub fn available() -> bool {
    context().is_ok()
}

fn create() -> std::result::Result<Context, String> {
    let inst = instance();
    let adapter = pollster::block_on(inst.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
        apply_limit_buckets: false,
    }))
    .map_err(|e| {
        format!(
            "no GPU adapter found ({e}; backends {:?}). On Linux install a Vulkan driver (for a CPU \
             fallback: mesa-vulkan-drivers and libvulkan1)",
            backends()
        )
    })?;
    let i = adapter.get_info();
    let info = AdapterInfo {
        name: i.name,
        backend: format!("{:?}", i.backend),
        device_type: format!("{:?}", i.device_type),
    };
    let limits = adapter.limits();
    let max_binding = limits.max_storage_buffer_binding_size;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("ferrograd"),
        required_features: wgpu::Features::empty(),
        required_limits: limits,
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))
    .map_err(|e| format!("the GPU adapter '{}' refused a device: {e}", info.name))?;
    let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("ferrograd kernels"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            storage(1, true),
            storage(2, true),
            storage(3, false),
            storage(4, true),
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("ferrograd kernels"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let dummy = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("unused binding"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    Ok(Context {
        device,
        queue,
        info,
        layout,
        pipeline_layout,
        pipelines: Mutex::new(HashMap::new()),
        pool: Mutex::new(HashMap::new()),
        pending: Mutex::new(Pending {
            encoder: None,
            count: 0,
        }),
        dummy,
        max_binding,
        created: std::sync::atomic::AtomicUsize::new(0),
    })
}

/// What binding 4 receives.
enum Extra<'a> {
    None,
    Words(&'a [u32]),
    Buffer(&'a GpuBuffer),
}

/// A float32 buffer on the device; goes back to the pool when dropped.
pub struct GpuBuffer {
    buf: Option<wgpu::Buffer>,
    len: usize,
    ctx: Arc<Context>,
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} f32)", self.len)
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            let mut pool = self.ctx.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.entry(b.size()).or_default().push(b);
        }
    }
}

impl GpuBuffer {
    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn raw(&self) -> &wgpu::Buffer {
        self.buf.as_ref().expect("a live buffer")
    }

    /// Overwrites elements `offset..offset + values.len()` in queue order.
    pub fn write_at(&self, offset: usize, values: &[f32]) -> Result<()> {
        if offset + values.len() > self.len {
            return Err(Error::Index("gpu: write past the end of a buffer".into()));
        }
        if values.is_empty() {
            return Ok(());
        }
        let ctx = &self.ctx;
        let src = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("update"),
                contents: bytemuck::cast_slice(values),
                usage: wgpu::BufferUsages::COPY_SRC,
            });
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(
            &src,
            0,
            self.raw(),
            (offset * 4) as u64,
            Some((values.len() * 4) as u64),
        );
        ctx.record(enc);
        Ok(())
    }

    /// Copies all of `src` into this buffer at element `offset`, in queue order.
    pub fn copy_from(&self, offset: usize, src: &GpuBuffer) -> Result<()> {
        if offset + src.len > self.len {
            return Err(Error::Index("gpu: copy past the end of a buffer".into()));
        }
        if src.len == 0 {
            return Ok(());
        }
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(
            src.raw(),
            0,
            self.raw(),
            (offset * 4) as u64,
            Some((src.len * 4) as u64),
        );
        self.ctx.record(enc);
        Ok(())
    }

    /// Copies the elements back to the host (flushing queued work first).
    pub fn download(&self) -> Result<Vec<f32>> {
        if self.len == 0 {
            return Ok(Vec::new());
        }
        let ctx = &self.ctx;
        let size = (self.len * 4) as u64;
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(self.raw(), 0, &staging, 0, Some(size));
        ctx.record(enc);
        let idx = ctx.flush();
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: idx,
                timeout: Some(GPU_TIMEOUT),
            })
            .map_err(|e| Error::Device(format!("gpu: waiting for results failed: {e}")))?;
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| Error::Device("gpu: the read-back never completed".into()))?
            .map_err(|e| Error::Device(format!("gpu: mapping results failed: {e}")))?;
        let out = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| Error::Device(format!("gpu: reading results failed: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        Ok(out)
    }
}

/// Kernel parameters (uniform buffers must be 16-byte multiples: all here are).
pub(crate) trait Params: bytemuck::Pod {}

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
    pub _pad: u32,
}
impl Params for MmParams {}

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
    pub _pad: u32,
    pub keep_scale: f32,
    pub keep_shift: f32,
    pub drop_shift: f32,
    pub _pad2: f32,
}
impl Params for DropParams {}

/// softmax.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct SmParams {
    pub rows: u32,
    pub cols: u32,
    pub row: u32,
    pub x_offset: u32,
}
impl Params for SmParams {}

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
    pub _pad: [u32; 2],
}
impl Params for GatherParams {}

/// reduce.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct RdParams {
    pub outer: u32,
    pub r: u32,
    pub inner: u32,
    pub op: u32,
    pub row: u32,
    pub _pad: [u32; 3],
}
impl Params for RdParams {}

impl Context {
    /// The adapter in use.
    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    /// Tensor buffers created so far (a steady count over a loop means the pool reuses them).
    pub fn buffers_created(&self) -> usize {
        self.created.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Largest storage binding, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.max_binding
    }

    fn pipeline(
        &self,
        key: &'static str,
        src: &'static str,
        entry: &'static str,
    ) -> Result<wgpu::ComputePipeline> {
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(key) {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(key),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let p = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key),
                layout: Some(&self.pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!(
                "gpu: kernel {key} failed to compile: {err}"
            )));
        }
        cache.insert(key, p.clone());
        Ok(p)
    }

    /// A buffer for `len` f32, reused from the pool when one of its size class is free.
    pub(crate) fn alloc(self: &Arc<Self>, len: usize) -> Result<GpuBuffer> {
        let bytes = ((len.max(4) * 4) as u64).next_power_of_two();
        if bytes > self.max_binding {
            return Err(Error::Memory(format!(
                "gpu: a tensor of {len} elements ({bytes} bytes) exceeds the device's largest storage \
                 binding ({} bytes)",
                self.max_binding
            )));
        }
        let reused = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&bytes)
            .and_then(|v| v.pop());
        let buf = match reused {
            Some(b) => b,
            None => {
                self.created
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tensor"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        Ok(GpuBuffer {
            buf: Some(buf),
            len,
            ctx: self.clone(),
        })
    }

    /// Copies host data into a new device buffer.
    pub(crate) fn upload(self: &Arc<Self>, data: &[f32]) -> Result<GpuBuffer> {
        let out = self.alloc(data.len())?;
        out.write_at(0, data)?;
        Ok(out)
    }

    /// Queues the commands of `enc` after everything recorded so far.
    fn record(&self, enc: wgpu::CommandEncoder) {
        let cmd = enc.finish();
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // keep order: submit what is pending, then this
        let mut bufs = Vec::new();
        if let Some(e) = p.encoder.take() {
            bufs.push(e.finish());
        }
        bufs.push(cmd);
        p.count = 0;
        self.queue.submit(bufs);
    }

    /// Submits the pending encoder; returns the submission to wait for.
    pub(crate) fn flush(&self) -> Option<wgpu::SubmissionIndex> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.count = 0;
        p.encoder
            .take()
            .map(|e| self.queue.submit([e.finish()]))
            .or_else(|| Some(self.queue.submit([])))
    }

    /// Records one dispatch of `entry` in `src` into the pending encoder; `meta` (shape and
    /// strides) goes to binding 4.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatch<P: Params>(
        &self,
        key: &'static str,
        src: &'static str,
        entry: &'static str,
        params: &P,
        inputs: [Option<&GpuBuffer>; 2],
        output: &GpuBuffer,
        meta: Option<&[u32]>,
        groups: [u32; 3],
    ) -> Result<()> {
        let extra = match meta {
            Some(m) => Extra::Words(m),
            None => Extra::None,
        };
        self.dispatch_raw(key, src, entry, params, inputs, output, extra, groups)
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch_raw<P: Params>(
        &self,
        key: &'static str,
        src: &'static str,
        entry: &'static str,
        params: &P,
        inputs: [Option<&GpuBuffer>; 2],
        output: &GpuBuffer,
        extra: Extra<'_>,
        groups: [u32; 3],
    ) -> Result<()> {
        let pipeline = self.pipeline(key, src, entry)?;
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let meta_buf = match extra {
            Extra::Words(m) => Some(self.device.create_buffer_init(
                &wgpu::util::BufferInitDescriptor {
                    label: Some("meta"),
                    contents: bytemuck::cast_slice(m),
                    usage: wgpu::BufferUsages::STORAGE,
                },
            )),
            _ => None,
        };
        let extra_buf: &wgpu::Buffer = match (&extra, &meta_buf) {
            (Extra::Buffer(b), _) => b.raw(),
            (_, Some(m)) => m,
            _ => &self.dummy,
        };
        let in0 = inputs[0].map(|b| b.raw()).unwrap_or(&self.dummy);
        let in1 = inputs[1].map(|b| b.raw()).unwrap_or(&self.dummy);
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniform.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: in0.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: in1.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: output.raw().as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: extra_buf.as_entire_binding(),
                },
            ],
        });
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let enc = p.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(key),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        p.count += 1;
        if p.count >= MAX_PENDING {
            let e = p.encoder.take().expect("just used");
            p.count = 0;
            self.queue.submit([e.finish()]);
        }
        Ok(())
    }

    /// Like `dispatch` with a device buffer (the bias) at binding 4.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatch_with_bias<P: Params>(
        &self,
        key: &'static str,
        src: &'static str,
        entry: &'static str,
        params: &P,
        inputs: [&GpuBuffer; 2],
        output: &GpuBuffer,
        extra: &GpuBuffer,
        groups: [u32; 3],
    ) -> Result<()> {
        self.dispatch_raw(
            key,
            src,
            entry,
            params,
            [Some(inputs[0]), Some(inputs[1])],
            output,
            Extra::Buffer(extra),
            groups,
        )
    }

    /// A 2-D grid covering `n` threads of `wg`-wide workgroups (65,535 per dimension).
    pub(crate) fn grid(&self, n: usize, wg: usize) -> Result<([u32; 3], u32)> {
        let groups = n.div_ceil(wg).max(1);
        let max = 65_535usize;
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::Memory(format!(
                "gpu: {n} elements exceed one dispatch grid"
            )));
        }
        Ok(([x as u32, y as u32, 1], (x * wg) as u32))
    }
}
