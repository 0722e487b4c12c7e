//! The WGSL compute backend: one lazily created wgpu device, a buffer pool, a pipeline
//! cache, and dispatches batched into one command encoder until results are read back.
//!
//! Tensors on the GPU are float32. Kernels live in `shaders/` (one file per family) and are
//! compiled into the crate; every file shares one pipeline layout of four bind groups, so
//! that each group can be cached by the buffers it holds: group 0 binding 0 the uniform
//! params with 5 and 6 read-write state, group 1 binding 1 the first input, group 2
//! binding 2 the second input and 4 read-only metadata, group 3 binding 3 the output.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wgpu::util::DeviceExt;

/// WGSL sources, included at compile time.
pub mod shaders {
    /// Elementwise unary/binary kernels and unary backward.
    pub const ELEMENTWISE: &str = include_str!("../../../shaders/elementwise.wgsl");
    /// Tiled matrix product with a bias/activation epilogue.
    pub const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");
    /// The fast matrix product: 64 x 64 and 128 x 128 tiles, vec4 loads.
    pub const MATMUL_VEC4: &str = include_str!("../../../shaders/matmul_vec4.wgsl");
    /// The fast matrix product in more tile shapes, generated fully unrolled
    /// (scripts/gen_matmul_tiled.py).
    pub const MATMUL_TILED: &str = include_str!("../../../shaders/matmul_tiled.wgsl");
    /// Axis reductions (sum, mean, max, min, argmax).
    pub const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");
    /// Dropout masks from the counter-based generator.
    pub const DROPOUT: &str = include_str!("../../../shaders/dropout.wgsl");
    /// Row-wise log_softmax.
    pub const SOFTMAX: &str = include_str!("../../../shaders/softmax.wgsl");
    /// Batch normalization forward and backward.
    pub const BATCHNORM: &str = include_str!("../../../shaders/batchnorm.wgsl");
    /// Optimizer updates in place (SGD, Adam/AdamW, RMSprop).
    pub const OPTIM: &str = include_str!("../../../shaders/optim.wgsl");
    /// Row gathers (index_select).
    pub const GATHER: &str = include_str!("../../../shaders/gather.wgsl");
    /// Every shader file with its name, for validation.
    pub const ALL: [(&str, &str); 10] = [
        ("batchnorm", BATCHNORM),
        ("optim", OPTIM),
        ("matmul_vec4", MATMUL_VEC4),
        ("matmul_tiled", MATMUL_TILED),
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
/// Bytes per dispatch in the uniform ring (Vulkan allows offset alignments up to 256).
const SLOT: usize = 256;
/// Largest metadata (binding 4 words: shapes, labels, gather indices) kept in the meta
/// ring; larger arrays get a buffer of their own.
const META_MAX: usize = 16 * 1024;
/// Bytes of metadata one batch of dispatches may hold before it is submitted.
const META_RING: usize = 1 << 20;
/// Bind groups kept before the cache is emptied (a training loop uses a few hundred).
const MAX_BIND_GROUPS: usize = 8192;

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

/// The commands being recorded: one encoder holding one open compute pass, and the
/// parameter bytes of its dispatches, written to the rings just before submission.
struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    pipeline: Option<wgpu::ComputePipeline>,
    params: Vec<u8>,
    meta: Vec<u8>,
    count: usize,
    /// kernels of this batch with timestamps (profiling only)
    profiled: Vec<&'static str>,
    /// groups 1-3 bound in the open pass (consecutive dispatches often share them)
    bound: [Option<wgpu::BindGroup>; 3],
}

/// GPU timestamps around every dispatch (`FERROGRAD_GPU_PROFILE=1`, where the adapter has
/// timestamp queries inside passes): each batch is waited for and read back, so this
/// serializes the host and the GPU; for finding slow kernels, not for timing runs.
struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    period_ns: f64,
    totals: Mutex<HashMap<&'static str, (usize, f64)>>,
}

impl Profiler {
    fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
        let n = 2 * MAX_PENDING as u32;
        let buf = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: n as u64 * 8,
                usage,
                mapped_at_creation: false,
            })
        };
        Profiler {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: n,
            }),
            resolve: buf(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            readback: buf(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            period_ns: queue.get_timestamp_period() as f64,
            totals: Mutex::new(HashMap::new()),
        }
    }

    fn collect(&self, device: &wgpu::Device, keys: &[&'static str], idx: wgpu::SubmissionIndex) {
        let n = 2 * keys.len() as u64;
        let slice = self.readback.slice(0..n * 8);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        let _ = device.poll(wgpu::PollType::Wait {
            submission_index: Some(idx),
            timeout: Some(GPU_TIMEOUT),
        });
        let stamps: Vec<u64> = match slice.get_mapped_range() {
            Ok(view) => bytemuck::cast_slice::<u8, u64>(&view).to_vec(),
            Err(_) => return,
        };
        self.readback.unmap();
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        for (i, key) in keys.iter().enumerate() {
            let dt = stamps[2 * i + 1].saturating_sub(stamps[2 * i]) as f64 * self.period_ns;
            let e = totals.entry(key).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += dt;
            if i + 1 < keys.len() {
                let gap =
                    stamps[2 * i + 2].saturating_sub(stamps[2 * i + 1]) as f64 * self.period_ns;
                let g = totals.entry("(gaps)").or_insert((0, 0.0));
                g.0 += 1;
                g.1 += gap;
            }
        }
    }
}

/// The four bind groups of a dispatch, each cached by the buffers it holds. One group
/// keyed by all six buffers missed the cache on most dispatches of a training step (the
/// six-way combinations kept changing, and creating a group costs several microseconds);
/// split by role, a pool buffer gets its group once.
#[derive(Default)]
struct BindCache {
    /// group 0 by (read-write 5, read-write 6), with the parameter ring
    state: HashMap<[wgpu::Buffer; 2], wgpu::BindGroup>,
    in1: HashMap<wgpu::Buffer, wgpu::BindGroup>,
    /// (second input, binding 4's buffer, whether that is the metadata ring's window)
    in2: HashMap<(wgpu::Buffer, wgpu::Buffer, bool), wgpu::BindGroup>,
    out: HashMap<wgpu::Buffer, wgpu::BindGroup>,
}

/// The device, queue, caches and the encoder being filled.
pub struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: AdapterInfo,
    layouts: [wgpu::BindGroupLayout; 4],
    pipeline_layout: wgpu::PipelineLayout,
    pipelines: Mutex<HashMap<&'static str, wgpu::ComputePipeline>>,
    /// free buffers by size; the lowest id is handed out first, so a loop that allocates the
    /// same sizes in the same order gets the same buffers every pass (and its bind groups
    /// from the cache), whatever order the previous pass freed them in
    pool: Mutex<HashMap<u64, std::collections::BTreeSet<wgpu::Buffer>>>,
    pending: Mutex<Pending>,
    bind_groups: Mutex<BindCache>,
    dummy: wgpu::Buffer,
    dummy_rw: [wgpu::Buffer; 2],
    uniform_ring: wgpu::Buffer,
    meta_ring: wgpu::Buffer,
    max_binding: u64,
    created: std::sync::atomic::AtomicUsize,
    dispatches: std::sync::atomic::AtomicUsize,
    submits: std::sync::atomic::AtomicUsize,
    /// bytes copied back to the host
    bytes_read: std::sync::atomic::AtomicUsize,
    /// bind groups created (cache misses)
    bind_groups_created: std::sync::atomic::AtomicUsize,
    profiler: Option<Profiler>,
    /// the first error wgpu reported for queued work (its default handler panics); the
    /// next wait returns it as a DeviceError
    uncaptured: Arc<Mutex<Option<String>>>,
    /// bytes of tensor buffers held by tensors (PyTorch's `memory_allocated`)
    allocated: AtomicU64,
    /// bytes of tensor buffers in existence: held plus free in the pool (`memory_reserved`)
    reserved: AtomicU64,
    /// bytes of free buffers kept in the pool at most; a freed buffer beyond it is released
    pool_limit: AtomicU64,
}

/// The default cap on free pooled buffers: enough for a training loop's working set to be
/// reused every step, small enough that a burst of large temporaries is given back.
pub const DEFAULT_POOL_LIMIT: u64 = 1 << 30;

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
    let profile_features =
        wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
    let profiling = std::env::var("FERROGRAD_GPU_PROFILE").is_ok_and(|v| v == "1")
        && adapter.features().contains(profile_features);
    let max_binding = limits.max_storage_buffer_binding_size;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("ferrograd"),
        required_features: if profiling {
            profile_features
        } else {
            wgpu::Features::empty()
        },
        required_limits: limits,
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))
    .map_err(|e| format!("the GPU adapter '{}' refused a device: {e}", info.name))?;
    let uncaptured = Arc::new(Mutex::new(None::<String>));
    let sink = uncaptured.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        let mut first = sink.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| e.to_string());
    }));
    let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: binding == 4,
            min_binding_size: None,
        },
        count: None,
    };
    // four groups, each cached by the buffers it holds (see `BindCache`): 0 the parameter
    // ring and the read-write state, 1 the first input, 2 the second input and the
    // metadata, 3 the output
    let group = |entries: &[wgpu::BindGroupLayoutEntry]| {
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("ferrograd kernels"),
            entries,
        })
    };
    let layouts = [
        group(&[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: None,
                },
                count: None,
            },
            storage(5, false),
            storage(6, false),
        ]),
        group(&[storage(1, true)]),
        group(&[storage(2, true), storage(4, true)]),
        group(&[storage(3, false)]),
    ];
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("ferrograd kernels"),
        bind_group_layouts: &[
            Some(&layouts[0]),
            Some(&layouts[1]),
            Some(&layouts[2]),
            Some(&layouts[3]),
        ],
        immediate_size: 0,
    });
    let small = |label: &'static str, size: u64, usage: wgpu::BufferUsages| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    };
    let dummy = small("unused binding", 16, wgpu::BufferUsages::STORAGE);
    // read-write bindings need their own: one buffer may not be bound both ways at once
    let dummy_rw = [
        small("unused rw binding", 16, wgpu::BufferUsages::STORAGE),
        small("unused rw binding", 16, wgpu::BufferUsages::STORAGE),
    ];
    let ring = (MAX_PENDING * SLOT) as u64;
    let uniform_ring = small(
        "params ring",
        ring,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    );
    let meta_ring = small(
        "meta ring",
        (META_RING + META_MAX) as u64,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    );
    let profiler = profiling.then(|| Profiler::new(&device, &queue));
    Ok(Context {
        device,
        queue,
        info,
        layouts,
        pipeline_layout,
        pipelines: Mutex::new(HashMap::new()),
        pool: Mutex::new(HashMap::new()),
        pending: Mutex::new(Pending {
            encoder: None,
            pass: None,
            pipeline: None,
            params: Vec::with_capacity(MAX_PENDING * SLOT),
            meta: Vec::with_capacity(MAX_PENDING * SLOT),
            count: 0,
            profiled: Vec::new(),
            bound: [None, None, None],
        }),
        bind_groups: Mutex::new(BindCache::default()),
        dummy,
        dummy_rw,
        uniform_ring,
        meta_ring,
        max_binding,
        created: std::sync::atomic::AtomicUsize::new(0),
        dispatches: std::sync::atomic::AtomicUsize::new(0),
        submits: std::sync::atomic::AtomicUsize::new(0),
        bytes_read: std::sync::atomic::AtomicUsize::new(0),
        bind_groups_created: std::sync::atomic::AtomicUsize::new(0),
        profiler,
        uncaptured,
        allocated: AtomicU64::new(0),
        reserved: AtomicU64::new(0),
        pool_limit: AtomicU64::new(DEFAULT_POOL_LIMIT),
    })
}

/// What binding 4 receives.
pub(crate) enum Extra<'a> {
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
            let ctx = &self.ctx;
            ctx.allocated.fetch_sub(b.size(), Ordering::Relaxed);
            let free = ctx.free_bytes();
            if free > ctx.pool_limit.load(Ordering::Relaxed) {
                ctx.release(b);
            } else {
                let mut pool = ctx.pool.lock().unwrap_or_else(|e| e.into_inner());
                pool.entry(b.size()).or_default().insert(b);
            }
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
        ctx.record_copy(|enc| {
            enc.copy_buffer_to_buffer(
                &src,
                0,
                self.raw(),
                (offset * 4) as u64,
                Some((values.len() * 4) as u64),
            )
        });
        Ok(())
    }

    /// Copies all of `src` into this buffer at element `offset`, in queue order.
    pub fn copy_from(
        &self,
        offset: usize,
        src: &GpuBuffer,
        src_offset: usize,
        len: usize,
    ) -> Result<()> {
        if offset + len > self.len || src_offset + len > src.len {
            return Err(Error::Index("gpu: copy past the end of a buffer".into()));
        }
        if len == 0 {
            return Ok(());
        }
        self.ctx.record_copy(|enc| {
            enc.copy_buffer_to_buffer(
                src.raw(),
                (src_offset * 4) as u64,
                self.raw(),
                (offset * 4) as u64,
                Some((len * 4) as u64),
            )
        });
        Ok(())
    }

    /// Copies the elements back to the host (flushing queued work first).
    pub fn download(&self) -> Result<Vec<f32>> {
        self.download_range(0, self.len)
    }

    /// Copies elements `start..start + len` back to the host (flushing queued work first).
    /// `item()` of one element of a large tensor reads 4 bytes, not the whole buffer: a
    /// 64 MiB read-back costs more than a 4096 matmul.
    pub fn download_range(&self, start: usize, len: usize) -> Result<Vec<f32>> {
        if start + len > self.len {
            return Err(Error::Index(
                "gpu: read-back past the end of a buffer".into(),
            ));
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let ctx = &self.ctx;
        let size = (len * 4) as u64;
        ctx.bytes_read
            .fetch_add(len * 4, std::sync::atomic::Ordering::Relaxed);
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.record_copy(|enc| {
            enc.copy_buffer_to_buffer(self.raw(), (start * 4) as u64, &staging, 0, Some(size))
        });
        let idx = ctx.flush();
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        let waited = ctx.device.poll(wgpu::PollType::Wait {
            submission_index: idx,
            timeout: Some(GPU_TIMEOUT),
        });
        // a rejected submission also fails the wait: report why it was rejected
        ctx.check_uncaptured()?;
        waited.map_err(|e| Error::Device(format!("gpu: waiting for results failed: {e}")))?;
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
    /// elu's alpha, leaky relu's slope
    pub alpha: f32,
    /// split-K chunk of k (the vec4 kernels; `k` or more: not split)
    pub kc: u32,
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
    pub smoothing: f32,
    pub g_scale: f32,
    pub g_per_row: u32,
    pub _pad: u32,
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
    pub _pad: f32,
}
impl Params for BnParams {}

/// optim.wgsl's Params.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct OptParams {
    pub n: u32,
    pub row: u32,
    pub flags: u32,
    pub _pad: u32,
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

    /// Dispatches recorded and command submissions made so far.
    pub fn counters(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.dispatches.load(Relaxed), self.submits.load(Relaxed))
    }

    /// Bytes read back to the host so far.
    pub fn bytes_read(&self) -> usize {
        self.bytes_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bind groups created so far: a steady count over a training loop means every
    /// dispatch found its buffers' bind group in the cache.
    pub fn bind_groups_created(&self) -> usize {
        self.bind_groups_created
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The keys of the compiled pipelines (which kernel variants have run), sorted.
    pub fn pipeline_keys(&self) -> Vec<&'static str> {
        let cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<_> = cache.keys().copied().collect();
        keys.sort_unstable();
        keys
    }

    /// Largest storage binding, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.max_binding
    }

    fn pipeline(&self, kernel: &Kernel) -> Result<wgpu::ComputePipeline> {
        let key = kernel.key;
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(key) {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(key),
            source: wgpu::ShaderSource::Wgsl(kernel.src.into()),
        };
        let module = if kernel.unchecked {
            // SAFETY: only kernels whose every storage access is guarded by an explicit
            // bounds test (checked against the CPU in the tests) are marked unchecked; the
            // clamping wgpu would add costs a third of the matmul's inner loop.
            unsafe {
                self.device
                    .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
            }
        } else {
            self.device.create_shader_module(desc)
        };
        let p = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key),
                layout: Some(&self.pipeline_layout),
                module: &module,
                entry_point: Some(kernel.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: kernel.constants,
                    zero_initialize_workgroup_memory: kernel.zero_workgroup,
                },
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

    /// Bytes held by tensors, and bytes of all tensor buffers (held or free in the pool).
    pub fn memory(&self) -> (u64, u64) {
        (
            self.allocated.load(Ordering::Relaxed),
            self.reserved.load(Ordering::Relaxed),
        )
    }

    /// Bytes of free buffers in the pool (the counters are updated without a common lock,
    /// so a reading taken while another thread allocates may be briefly off; never below 0).
    fn free_bytes(&self) -> u64 {
        let allocated = self.allocated.load(Ordering::Relaxed);
        self.reserved
            .load(Ordering::Relaxed)
            .saturating_sub(allocated)
    }

    /// The cap on free pooled bytes; `Some` sets it (releasing what is over it now).
    pub fn pool_limit(&self, limit: Option<u64>) -> u64 {
        if let Some(l) = limit {
            self.pool_limit.store(l, Ordering::Relaxed);
            self.trim_pool(l);
        }
        self.pool_limit.load(Ordering::Relaxed)
    }

    /// Gives every free pooled buffer back to the driver (PyTorch's `empty_cache`): tensors
    /// still alive keep theirs.
    pub fn empty_cache(&self) {
        self.trim_pool(0);
    }

    /// Releases free buffers, largest first, until at most `keep` free bytes remain.
    // a wgpu::Buffer orders by its id, which never changes: a sound set element
    #[allow(clippy::mutable_key_type)]
    fn trim_pool(&self, keep: u64) {
        let mut freed = Vec::new();
        {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            let mut free = self.free_bytes();
            let mut sizes: Vec<u64> = pool.keys().copied().collect();
            sizes.sort_unstable_by(|a, b| b.cmp(a));
            for size in sizes {
                let set = pool.get_mut(&size).expect("a key just listed");
                while free > keep {
                    match set.pop_last() {
                        Some(b) => {
                            free = free.saturating_sub(size);
                            freed.push(b);
                        }
                        None => break,
                    }
                }
            }
            pool.retain(|_, set| !set.is_empty());
        }
        if !freed.is_empty() {
            // cached bind groups hold their buffers alive: drop them all (they are rebuilt
            // on demand), then the buffers themselves
            *self.bind_groups.lock().unwrap_or_else(|e| e.into_inner()) = BindCache::default();
            let bytes: u64 = freed.iter().map(|b| b.size()).sum();
            self.reserved.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Gives one buffer back to the driver: the bind groups that hold it go too, so its
    /// memory is freed once queued work that reads it has run (wgpu tracks that).
    fn release(&self, b: wgpu::Buffer) {
        {
            let mut c = self.bind_groups.lock().unwrap_or_else(|e| e.into_inner());
            c.state.retain(|k, _| k[0] != b && k[1] != b);
            c.in1.remove(&b);
            c.in2.retain(|k, _| k.0 != b && k.1 != b);
            c.out.remove(&b);
        }
        self.reserved.fetch_sub(b.size(), Ordering::Relaxed);
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
            .and_then(|v| v.pop_first());
        let buf = match reused {
            Some(b) => b,
            None => {
                // out of device memory: give the free pool back and try once more, as
                // PyTorch's caching allocator does
                let b = match self.create_tensor_buffer(bytes) {
                    Ok(b) => b,
                    Err(_) => {
                        self.empty_cache();
                        self.create_tensor_buffer(bytes).map_err(|e| {
                            Error::Memory(format!(
                                "gpu: out of device memory for a tensor of {len} elements ({bytes} bytes): {e}; \
                                 free tensors you no longer need or use smaller batches"
                            ))
                        })?
                    }
                };
                self.created.fetch_add(1, Ordering::Relaxed);
                self.reserved.fetch_add(bytes, Ordering::Relaxed);
                b
            }
        };
        self.allocated.fetch_add(bytes, Ordering::Relaxed);
        Ok(GpuBuffer {
            buf: Some(buf),
            len,
            ctx: self.clone(),
        })
    }

    /// A new tensor buffer, or the driver's out-of-memory error. New buffers are rare (the
    /// pool reuses them), so each can afford an error scope: running out of device memory
    /// is then an error here, at the op that asked, not a rejected submission later.
    fn create_tensor_buffer(&self, bytes: u64) -> std::result::Result<wgpu::Buffer, wgpu::Error> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tensor"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(e),
            None => Ok(b),
        }
    }

    /// Copies host data into a new device buffer.
    pub(crate) fn upload(self: &Arc<Self>, data: &[f32]) -> Result<GpuBuffer> {
        let out = self.alloc(data.len())?;
        out.write_at(0, data)?;
        Ok(out)
    }

    /// Submits the pending commands (and, when profiling, waits for them and reads the
    /// kernel timestamps back).
    fn submit_pending(&self, p: &mut Pending) -> wgpu::SubmissionIndex {
        let keys = std::mem::take(&mut p.profiled);
        if let (Some(prof), false) = (&self.profiler, keys.is_empty()) {
            if let Some(enc) = p.encoder.as_mut() {
                p.pass = None;
                let n = 2 * keys.len() as u32;
                enc.resolve_query_set(&prof.queries, 0..n, &prof.resolve, 0);
                enc.copy_buffer_to_buffer(&prof.resolve, 0, &prof.readback, 0, Some(n as u64 * 8));
            }
        }
        let cmd = self.take_commands(p);
        let idx = self.queue.submit(cmd);
        if let (Some(prof), false) = (&self.profiler, keys.is_empty()) {
            prof.collect(&self.device, &keys, idx.clone());
        }
        idx
    }

    /// Per-kernel GPU time from the profiler (`FERROGRAD_GPU_PROFILE=1`): (kernel, dispatches,
    /// total microseconds), plus "(gaps)" for the time between consecutive kernels of a
    /// batch; `None` when profiling is off. `reset` clears the totals.
    pub fn profile(&self, reset: bool) -> Option<Vec<(String, usize, f64)>> {
        let prof = self.profiler.as_ref()?;
        let mut totals = prof.totals.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = totals
            .iter()
            .map(|(k, (n, ns))| (k.to_string(), *n, *ns / 1e3))
            .collect();
        out.sort_by(|a, b| b.2.total_cmp(&a.2));
        if reset {
            totals.clear();
        }
        Some(out)
    }

    /// Ends the open pass, writes the parameter rings and finishes the encoder: the
    /// command buffer to submit next (the ring writes land before it, in queue order).
    fn take_commands(&self, p: &mut Pending) -> Option<wgpu::CommandBuffer> {
        self.submits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        p.pass = None;
        p.pipeline = None;
        p.count = 0;
        if !p.params.is_empty() {
            self.queue.write_buffer(&self.uniform_ring, 0, &p.params);
            p.params.clear();
        }
        if !p.meta.is_empty() {
            self.queue.write_buffer(&self.meta_ring, 0, &p.meta);
            p.meta.clear();
        }
        p.encoder.take().map(|e| e.finish())
    }

    /// Records a copy after everything recorded so far, in the pending encoder (copies
    /// cannot sit inside a compute pass: the open one ends, and the next dispatch opens
    /// another). Nothing is submitted, so uploads cost no extra submission.
    fn record_copy(&self, f: impl FnOnce(&mut wgpu::CommandEncoder)) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.pass = None;
        p.pipeline = None;
        let enc = p.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        f(enc);
        // copies count towards the batch too: their staging buffers live until submission
        p.count += 1;
        if p.count >= MAX_PENDING {
            self.submit_pending(&mut p);
        }
    }

    /// Submits the queued work and waits until the GPU has finished it.
    pub fn synchronize(&self) -> Result<()> {
        let idx = self.flush();
        let waited = self.device.poll(wgpu::PollType::Wait {
            submission_index: idx,
            timeout: Some(GPU_TIMEOUT),
        });
        self.check_uncaptured()?;
        waited
            .map(|_| ())
            .map_err(|e| Error::Device(format!("gpu: waiting for queued work failed: {e}")))
    }

    /// The error wgpu reported for work submitted since the last check, as a DeviceError
    /// (once). Such an error is a bug in ferrograd, not in the user's input: every op
    /// validates its arguments before it records GPU work.
    fn check_uncaptured(&self) -> Result<()> {
        let e = self
            .uncaptured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match e {
            None => Ok(()),
            Some(e) => Err(Error::Device(format!(
                "gpu: the device rejected queued work, so results computed since the last read-back \
                 are undefined (an internal error in ferrograd; please report it): {e}"
            ))),
        }
    }

    /// Records a command the device must reject (a buffer copied onto itself): tests use it
    /// to check that such an error comes back as a DeviceError instead of a panic.
    pub fn record_invalid_command_for_tests(&self) {
        let b = &self.dummy;
        self.record_copy(|enc| enc.copy_buffer_to_buffer(b, 0, b, 0, Some(4)));
    }

    /// Submits the pending encoder; returns the submission to wait for.
    pub(crate) fn flush(&self) -> Option<wgpu::SubmissionIndex> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        Some(self.submit_pending(&mut p))
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
        self.run(
            &Kernel::new(key, src, entry),
            params,
            Binds {
                inputs,
                output,
                extra,
                rw: [None, None],
            },
            groups,
        )
    }

    /// Records one dispatch of `kernel` with `params` in the uniform ring.
    pub(crate) fn run<P: Params>(
        &self,
        kernel: &Kernel,
        params: &P,
        binds: Binds<'_>,
        groups: [u32; 3],
    ) -> Result<()> {
        let bytes = bytemuck::bytes_of(params);
        debug_assert!(bytes.len() <= SLOT);
        let pipeline = self.pipeline(kernel)?;
        // metadata words: a slot of the meta ring when small, else a buffer of their own
        let mut own_meta = None;
        let mut meta_words: Option<&[u32]> = None;
        match binds.extra {
            Extra::Words(m) if m.len() * 4 <= META_MAX => meta_words = Some(m),
            Extra::Words(m) => {
                own_meta = Some(
                    self.device
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some("meta"),
                            contents: bytemuck::cast_slice(m),
                            usage: wgpu::BufferUsages::STORAGE,
                        }),
                )
            }
            _ => {}
        }
        let extra_buf: &wgpu::Buffer = match (&binds.extra, &own_meta, meta_words) {
            (Extra::Buffer(b), _, _) => b.raw(),
            (_, Some(m), _) => m,
            (_, _, Some(_)) => &self.meta_ring,
            _ => &self.dummy,
        };
        let [g0, g1, g2, g3] = self.bind_groups(
            [
                binds.rw[0].map_or(&self.dummy_rw[0], |b| b.raw()),
                binds.rw[1].map_or(&self.dummy_rw[1], |b| b.raw()),
            ],
            binds.inputs[0].map_or(&self.dummy, |b| b.raw()),
            (
                binds.inputs[1].map_or(&self.dummy, |b| b.raw()),
                extra_buf,
                meta_words.is_some(),
                own_meta.is_none(),
            ),
            binds.output.raw(),
        );

        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let meta_off = match meta_words {
            Some(m) => {
                let len = (m.len() * 4).div_ceil(SLOT).max(1) * SLOT;
                if p.meta.len() + len > META_RING {
                    // the ring is full: submit what it holds, then start it again
                    self.submit_pending(&mut p);
                }
                let off = p.meta.len();
                p.meta.extend_from_slice(bytemuck::cast_slice(m));
                p.meta.resize(off + len, 0);
                off as u32
            }
            None => 0,
        };
        let slot = p.count;
        let uniform_off = (slot * SLOT) as u32;
        p.params.resize(slot * SLOT, 0); // copies take slots without parameters
        p.params.extend_from_slice(bytes);
        p.params.resize((slot + 1) * SLOT, 0);
        if p.pass.is_none() {
            let enc = p.encoder.get_or_insert_with(|| {
                self.device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
            });
            let pass = enc
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("ferrograd"),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            p.pass = Some(pass);
            p.pipeline = None;
            p.bound = [None, None, None];
        }
        let same = p.pipeline.as_ref() == Some(&pipeline);
        let q = 2 * p.profiled.len() as u32;
        {
            let Pending { pass, bound, .. } = &mut *p;
            let pass = pass
                .as_mut()
                .expect("a pass is open while an encoder exists");
            if !same {
                pass.set_pipeline(&pipeline);
            }
            // group 0 moves with every dispatch's parameter slot; the others are set again
            // only when they change (group 2's offset is fixed unless it is the meta ring)
            pass.set_bind_group(0, &g0, &[uniform_off]);
            for (i, (g, off)) in [(g1, None), (g2, Some(meta_off)), (g3, None)]
                .into_iter()
                .enumerate()
            {
                let ring = off.is_some() && meta_words.is_some();
                if ring || bound[i].as_ref() != Some(&g) {
                    pass.set_bind_group(i as u32 + 1, &g, off.as_slice());
                    bound[i] = Some(g);
                }
            }
            if let Some(prof) = &self.profiler {
                pass.write_timestamp(&prof.queries, q);
            }
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            if let Some(prof) = &self.profiler {
                pass.write_timestamp(&prof.queries, q + 1);
            }
        }
        if self.profiler.is_some() {
            p.profiled.push(kernel.key);
        }
        if !same {
            p.pipeline = Some(pipeline);
        }
        p.count += 1;
        self.dispatches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if p.count >= MAX_PENDING {
            self.submit_pending(&mut p);
        }
        Ok(())
    }

    /// The bind groups for these buffers, from the cache (group 2 is not cached when
    /// binding 4 is a one-off metadata buffer).
    fn bind_groups(
        &self,
        state: [&wgpu::Buffer; 2],
        in1: &wgpu::Buffer,
        (in2, extra, meta_ring, cache_extra): (&wgpu::Buffer, &wgpu::Buffer, bool, bool),
        out: &wgpu::Buffer,
    ) -> [wgpu::BindGroup; 4] {
        fn entry(binding: u32, b: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
            wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            }
        }
        let create = |layout: usize, entries: &[wgpu::BindGroupEntry<'_>]| {
            self.bind_groups_created
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &self.layouts[layout],
                entries,
            })
        };
        let make2 = || {
            let extra_res = if meta_ring {
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: extra,
                    offset: 0,
                    size: wgpu::BufferSize::new(META_MAX as u64),
                })
            } else {
                extra.as_entire_binding()
            };
            create(
                2,
                &[
                    entry(2, in2),
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: extra_res,
                    },
                ],
            )
        };
        let mut c = self.bind_groups.lock().unwrap_or_else(|e| e.into_inner());
        if c.state.len() + c.in1.len() + c.in2.len() + c.out.len() >= MAX_BIND_GROUPS {
            *c = BindCache::default();
        }
        let g0 = c
            .state
            .entry([state[0].clone(), state[1].clone()])
            .or_insert_with(|| {
                let ring = wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.uniform_ring,
                        offset: 0,
                        size: wgpu::BufferSize::new(SLOT as u64),
                    }),
                };
                create(0, &[ring, entry(5, state[0]), entry(6, state[1])])
            })
            .clone();
        let g1 = c
            .in1
            .entry(in1.clone())
            .or_insert_with(|| create(1, &[entry(1, in1)]))
            .clone();
        let g2 = if cache_extra {
            c.in2
                .entry((in2.clone(), extra.clone(), meta_ring))
                .or_insert_with(make2)
                .clone()
        } else {
            make2()
        };
        let g3 = c
            .out
            .entry(out.clone())
            .or_insert_with(|| create(3, &[entry(3, out)]))
            .clone();
        [g0, g1, g2, g3]
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
