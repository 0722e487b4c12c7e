//! The wgpu runtime: one lazily created wgpu device, a buffer pool, a pipeline
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

mod buffer;
mod dispatch;
mod graph;
mod multi;
mod params;

pub(crate) use buffer::Extra;
pub use buffer::GpuBuffer;
pub use graph::Graph;
pub(crate) use graph::{Dispatch, Offset};
pub(crate) use params::*;

/// The longest any wait for the GPU may take: lavapipe has hung before; never wait forever.
const GPU_TIMEOUT: Duration = Duration::from_secs(120);
/// Dispatches recorded before the pending encoder is submitted on its own.
const MAX_PENDING: usize = 256;
/// Bytes per dispatch in the uniform ring (Vulkan allows offset alignments up to 256).
const SLOT: usize = 256;
/// Largest metadata (binding 4 words: shapes, labels, gather indices) kept in the meta
/// ring; larger arrays get a buffer of their own.
const META_MAX: usize = 16 * 1024;
/// The bytes `bytes` of metadata take in the meta ring: whole slots, at least one (each
/// dispatch's words start at a slot, the binding's offset alignment).
fn meta_span(bytes: usize) -> usize {
    bytes.div_ceil(SLOT).max(1) * SLOT
}

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
    /// the capabilities that decide which kernels a GPU could run, by WebGPU's names:
    /// "shader-f16" (half arithmetic in WGSL), "subgroups", "timestamp-query",
    /// "shader-f64", each present when the adapter offers it; and "tensor-cores" when
    /// float16 products run on them (matmul_coop.wgsl)
    pub features: Vec<&'static str>,
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
    /// the groups bound in the open pass (consecutive dispatches often share them)
    bound: [Option<wgpu::BindGroup>; 4],
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
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
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

    pub(crate) fn collect(
        &self,
        device: &wgpu::Device,
        keys: &[&'static str],
        idx: wgpu::SubmissionIndex,
    ) {
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
    /// the matmul driver's settings and tuning results for this adapter
    pub(crate) matmul: super::ops::MatmulSettings,
    /// the multi-tensor kernels' layouts, made on first use (None: the adapter binds too
    /// few buffers)
    multi: std::sync::OnceLock<Option<multi::MultiLayout>>,
    /// the subgroup size where float16 products run on tensor cores (matmul_coop.wgsl)
    pub(crate) coop_subgroup: Option<u32>,
    /// the recording capture and the graphs' claims on pool buffers (graph.rs)
    graphs: Mutex<graph::Registry>,
    /// live graphs plus a recording capture: while 0, freeing a buffer skips the registry
    graph_claims: std::sync::atomic::AtomicUsize,
}

/// The default cap on free pooled buffers: enough for a training loop's working set to be
/// reused every step, small enough that a burst of large temporaries is given back.
pub const DEFAULT_POOL_LIMIT: u64 = 1 << 30;

/// The graphics APIs to look for adapters on: WGPU_BACKEND when set, else every primary
/// one compiled in (Vulkan on Linux; Metal on macOS; DirectX 12 and Vulkan on Windows).
fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends();
    wgpu::Instance::new(desc)
}

/// The environment variable that lets `device="gpu"` use a software (CPU-emulated) adapter.
pub const ALLOW_SOFTWARE_GPU: &str = "FERROGRAD_ALLOW_SOFTWARE_GPU";

fn software_allowed() -> bool {
    std::env::var(ALLOW_SOFTWARE_GPU).is_ok_and(|v| v == "1")
}

/// Runs `f` (which creates a Vulkan instance or probes adapters) so that the driver's window
/// system probing prints nothing: libwayland writes "XDG_RUNTIME_DIR is invalid" to stderr
/// when the variable is unset or relative. For the probe only, it points at a private empty
/// directory; the variable is put back as it was before `f`'s result is returned.
fn quiet_probe<T>(f: impl FnOnce() -> T) -> T {
    static PROBE: Mutex<()> = Mutex::new(());
    let _one_at_a_time = PROBE.lock().unwrap_or_else(|p| p.into_inner());
    let key = "XDG_RUNTIME_DIR";
    let before = std::env::var_os(key);
    let usable = before
        .as_ref()
        .is_some_and(|v| std::path::Path::new(v).is_absolute());
    if usable {
        return f();
    }
    let dir = std::env::temp_dir().join(format!("ferrograd-probe-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return f();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    std::env::set_var(key, &dir);
    let out = f();
    match before {
        Some(v) => std::env::set_var(key, v),
        None => std::env::remove_var(key),
    }
    let _ = std::fs::remove_dir(&dir);
    out
}

fn info_of(a: &wgpu::Adapter) -> AdapterInfo {
    let i = a.get_info();
    let f = a.features();
    let named = [
        (wgpu::Features::SHADER_F16, "shader-f16"),
        (wgpu::Features::SUBGROUP, "subgroups"),
        (wgpu::Features::TIMESTAMP_QUERY, "timestamp-query"),
        (wgpu::Features::SHADER_F64, "shader-f64"),
    ];
    AdapterInfo {
        name: i.name,
        backend: format!("{:?}", i.backend),
        device_type: format!("{:?}", i.device_type),
        features: named
            .iter()
            .filter(|(flag, _)| f.contains(*flag))
            .map(|&(_, name)| name)
            .collect(),
    }
}

/// The adapters wgpu can see (Vulkan by default; `WGPU_BACKEND` overrides), software ones
/// (device type "Cpu") included.
pub fn adapters() -> Vec<AdapterInfo> {
    quiet_probe(|| {
        let inst = instance();
        pollster::block_on(inst.enumerate_adapters(backends()))
            .iter()
            .map(info_of)
            .collect()
    })
}

/// Preference among adapters: a discrete GPU, then an integrated one, a virtual one, any
/// other, and last a software emulation on the CPU (lavapipe, llvmpipe, SwiftShader).
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// The adapter "gpu" means: the best-ranked one; a software adapter only with
/// `FERROGRAD_ALLOW_SOFTWARE_GPU=1` (it runs the shaders on the CPU, far slower than
/// ferrograd's own CPU path, so a script that picks "the GPU when there is one" must not
/// land on it unawares).
fn choose_adapter(inst: &wgpu::Instance) -> std::result::Result<wgpu::Adapter, String> {
    let mut all = pollster::block_on(inst.enumerate_adapters(backends()));
    all.sort_by_key(|a| rank(a.get_info().device_type));
    let Some(best) = all.into_iter().next() else {
        return Err(format!(
            "no GPU adapter found (backends {:?}). On Linux install a Vulkan driver (for a CPU \
             emulation, for tests: mesa-vulkan-drivers and libvulkan1, with \
             {ALLOW_SOFTWARE_GPU}=1)",
            backends()
        ));
    };
    let i = best.get_info();
    if i.device_type == wgpu::DeviceType::Cpu && !software_allowed() {
        return Err(format!(
            "no GPU: the only adapter, '{}' ({:?}), is a software emulation of a GPU on the CPU \
             (device type Cpu), slower than ferrograd's own CPU path; set \
             {ALLOW_SOFTWARE_GPU}=1 to use it anyway (tests, CI)",
            i.name, i.backend
        ));
    }
    Ok(best)
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

/// Binding 0 of group 0: a slot of the parameter ring (a dynamic offset per dispatch).
fn ring_entry() -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: None,
        },
        count: None,
    }
}

/// What the tensor-core product needs from the adapter.
const COOP_FEATURES: wgpu::Features =
    wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX.union(wgpu::Features::SHADER_F16);

/// The subgroup size when the adapter can run matmul_coop.wgsl: the cooperative-matrix
/// extension with a float16 x float16 -> float32 16 x 16 x 16 configuration, float16 in
/// shaders, and one subgroup size, 32 or 64 (each workgroup is one whole subgroup). None otherwise,
/// or when `FERROGRAD_GPU_TENSOR_CORES=0` turns the kernel off.
fn tensor_core_subgroup(adapter: &wgpu::Adapter) -> Option<u32> {
    if std::env::var("FERROGRAD_GPU_TENSOR_CORES").is_ok_and(|v| v == "0")
        || !adapter.features().contains(COOP_FEATURES)
    {
        return None;
    }
    use wgpu::CooperativeScalarType as T;
    let fits = adapter.cooperative_matrix_properties().iter().any(|c| {
        (c.m_size, c.n_size, c.k_size) == (16, 16, 16) && c.ab_type == T::F16 && c.cr_type == T::F32
    });
    let info = adapter.get_info();
    let sg = info.subgroup_min_size;
    (fits && sg == info.subgroup_max_size && matches!(sg, 32 | 64)).then_some(sg)
}

fn create() -> std::result::Result<Context, String> {
    quiet_probe(create_quietly)
}

fn create_quietly() -> std::result::Result<Context, String> {
    let inst = instance();
    let adapter = choose_adapter(&inst)?;
    let mut info = info_of(&adapter);
    let vulkan = info.backend == "Vulkan";
    let limits = adapter.limits();
    let profile_features =
        wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
    let profiling = std::env::var("FERROGRAD_GPU_PROFILE").is_ok_and(|v| v == "1")
        && adapter.features().contains(profile_features);
    let max_binding = limits.max_storage_buffer_binding_size;
    let base = if profiling {
        profile_features
    } else {
        wgpu::Features::empty()
    };
    let request = |coop: bool| {
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ferrograd"),
            required_features: if coop { base | COOP_FEATURES } else { base },
            required_limits: limits.clone(),
            experimental_features: if coop {
                // SAFETY: the one experimental feature requested is the cooperative matrix,
                // used only by matmul_coop.wgsl, in the configuration the adapter reported
                // (tensor_core_subgroup) and with whole subgroups as workgroups
                unsafe { wgpu::ExperimentalFeatures::enabled() }
            } else {
                wgpu::ExperimentalFeatures::disabled()
            },
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
    };
    // the tensor-core kernel is a bonus: a device refused with its features is asked for
    // again without them
    let mut coop_subgroup = tensor_core_subgroup(&adapter);
    let device = match coop_subgroup.map(|_| request(true)) {
        Some(Ok(d)) => Ok(d),
        Some(Err(_)) => {
            coop_subgroup = None;
            request(false)
        }
        None => request(false),
    };
    let (device, queue) =
        device.map_err(|e| format!("the GPU adapter '{}' refused a device: {e}", info.name))?;
    if coop_subgroup.is_some() {
        info.features.push("tensor-cores");
    }
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
        group(&[ring_entry(), storage(5, false), storage(6, false)]),
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
            bound: Default::default(),
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
        matmul: super::ops::MatmulSettings::from_env(vulkan),
        multi: std::sync::OnceLock::new(),
        coop_subgroup,
        graphs: Mutex::new(graph::Registry::default()),
        graph_claims: std::sync::atomic::AtomicUsize::new(0),
    })
}
