//! Multi-tensor dispatches: one kernel over several tensors, each bound as a buffer of its
//! own, so an optimizer step over a network's parameters takes a few dispatches instead of
//! one per tensor (the Residual network has 86). Group 0 holds the parameter ring alone;
//! group 1 `slots` read-write buffers at bindings 0, 1, ..., as many as the adapter lets a
//! shader stage bind, up to `MAX_SLOTS`.

use super::*;

/// The most buffers a multi-tensor kernel binds (Adam: 4 a tensor, so 8 tensors, and a
/// gated step's flag and skipped-step count after them).
const MAX_SLOTS: usize = 36;
/// Fewer than this and a multi-tensor kernel is not worth a layout of its own.
const MIN_SLOTS: usize = 16;

/// The layouts of the multi-tensor kernels, group 0's bind group, and a buffer for each
/// slot a dispatch leaves empty (read-write bindings may not share a buffer).
pub(crate) struct MultiLayout {
    /// buffers group 1 binds
    pub slots: usize,
    ring: wgpu::BindGroup,
    group: wgpu::BindGroupLayout,
    pipeline: wgpu::PipelineLayout,
    spare: Vec<wgpu::Buffer>,
    /// group 1's bind groups by their buffers (a training loop binds the same ones)
    cache: Mutex<HashMap<Vec<wgpu::Buffer>, wgpu::BindGroup>>,
}

fn storage_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Context {
    /// The multi-tensor layout, or None where the adapter binds fewer than `MIN_SLOTS`
    /// storage buffers to a shader stage (WebGPU's default is 8): callers go per tensor.
    pub(crate) fn multi_layout(&self) -> Option<&MultiLayout> {
        self.multi.get_or_init(|| self.make_multi_layout()).as_ref()
    }

    fn make_multi_layout(&self) -> Option<MultiLayout> {
        let l = self.device.limits();
        let slots = (l.max_storage_buffers_per_shader_stage as usize)
            .min(l.max_bindings_per_bind_group as usize)
            .min(MAX_SLOTS)
            / 4
            * 4;
        if slots < MIN_SLOTS {
            return None;
        }
        let layout = |label: &str, entries: &[wgpu::BindGroupLayoutEntry]| {
            self.device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(label),
                    entries,
                })
        };
        let ring_layout = layout("ferrograd multi-tensor parameters", &[ring_entry()]);
        let entries: Vec<_> = (0..slots as u32).map(storage_entry).collect();
        let group = layout("ferrograd multi-tensor buffers", &entries);
        let ring = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &ring_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.uniform_ring,
                    offset: 0,
                    size: wgpu::BufferSize::new(SLOT as u64),
                }),
            }],
        });
        let pipeline = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("ferrograd multi-tensor"),
                bind_group_layouts: &[Some(&ring_layout), Some(&group)],
                immediate_size: 0,
            });
        let spare = (0..slots)
            .map(|_| {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("unused multi-tensor slot"),
                    size: 16,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            })
            .collect();
        Some(MultiLayout {
            slots,
            ring,
            group,
            pipeline,
            spare,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Records one dispatch of the multi-tensor `kernel` with `bufs` at group 1's first
    /// bindings (distinct buffers, at most the layout's `slots`; None: a spare the kernel
    /// does not touch).
    pub(crate) fn run_multi<P: Params>(
        &self,
        kernel: &Kernel,
        params: &P,
        bufs: &[Option<&GpuBuffer>],
        groups: [u32; 3],
    ) -> Result<()> {
        let layout = self.multi_layout().ok_or_else(|| {
            Error::Device("gpu: this adapter binds too few buffers for multi-tensor kernels".into())
        })?;
        if bufs.len() > layout.slots {
            return Err(Error::Device(format!(
                "gpu: a multi-tensor kernel binds at most {} buffers here, got {}",
                layout.slots,
                bufs.len()
            )));
        }
        let pipeline = self.pipeline_in(kernel, &layout.pipeline)?;
        let key: Vec<wgpu::Buffer> = layout
            .spare
            .iter()
            .enumerate()
            .map(|(i, spare)| match bufs.get(i) {
                Some(Some(b)) => b.raw().clone(),
                _ => spare.clone(),
            })
            .collect();
        let g1 = {
            let mut cache = layout.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_BIND_GROUPS {
                cache.clear();
            }
            cache
                .entry(key)
                .or_insert_with_key(|key| {
                    self.bind_groups_created
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let entries: Vec<wgpu::BindGroupEntry<'_>> = key
                        .iter()
                        .enumerate()
                        .map(|(i, b)| wgpu::BindGroupEntry {
                            binding: i as u32,
                            resource: b.as_entire_binding(),
                        })
                        .collect();
                    self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: None,
                        layout: &layout.group,
                        entries: &entries,
                    })
                })
                .clone()
        };
        self.record(
            Dispatch {
                key: kernel.key,
                pipeline,
                params: bytemuck::bytes_of(params),
                meta: None,
                binds: vec![
                    (0, layout.ring.clone(), Offset::Uniform),
                    (1, g1, Offset::Fixed),
                ],
                // groups 0 and 1 now hold another layout's groups: the next kernel sets its own
                other_layout: true,
                rng_at: P::RNG_SEED,
                groups,
            },
            bufs.iter().flatten().copied(),
            None,
        )
    }
}
