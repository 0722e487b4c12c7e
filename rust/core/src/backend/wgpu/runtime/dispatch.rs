//! Recording dispatches: pipelines, bind groups, the uniform and metadata rings, submission,
//! the profiler and the memory counters.

use super::*;

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

    pub(crate) fn pipeline(&self, kernel: &Kernel) -> Result<wgpu::ComputePipeline> {
        self.pipeline_in(kernel, &self.pipeline_layout)
    }

    /// `pipeline` for a kernel of another bind-group layout (the multi-tensor kernels).
    pub(crate) fn pipeline_in(
        &self,
        kernel: &Kernel,
        layout: &wgpu::PipelineLayout,
    ) -> Result<wgpu::ComputePipeline> {
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
                layout: Some(layout),
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
    pub(crate) fn free_bytes(&self) -> u64 {
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
    pub(crate) fn trim_pool(&self, keep: u64) {
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
    pub(crate) fn release(&self, b: wgpu::Buffer) {
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
        let reused = self.reuse(bytes).or_else(|| {
            self.pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&bytes)
                .and_then(|v| v.pop_first())
        });
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
    pub(crate) fn create_tensor_buffer(
        &self,
        bytes: u64,
    ) -> std::result::Result<wgpu::Buffer, wgpu::Error> {
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
    pub(super) fn submit_pending(&self, p: &mut Pending) -> wgpu::SubmissionIndex {
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
    pub(super) fn take_commands(&self, p: &mut Pending) -> Option<wgpu::CommandBuffer> {
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

    /// Records a copy of `size` bytes after everything recorded so far, in the pending
    /// encoder (copies cannot sit inside a compute pass: the open one ends, and the next
    /// dispatch opens another). Nothing is submitted, so uploads cost no extra submission.
    /// While a graph captures, the copy is kept in the graph (with `uses`, the tensor
    /// buffers it touches) and nothing runs.
    pub(crate) fn record_copy(
        &self,
        (src, src_off): (&wgpu::Buffer, u64),
        (dst, dst_off): (&wgpu::Buffer, u64),
        size: u64,
        uses: &[&GpuBuffer],
    ) -> Result<()> {
        if crate::capture::active() {
            return self.capture_copy(
                graph::CopyStep {
                    src: src.clone(),
                    src_off,
                    dst: dst.clone(),
                    dst_off,
                    size,
                },
                uses,
            );
        }
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        self.encode_copy(&mut p, (src, src_off), (dst, dst_off), size);
        Ok(())
    }

    /// Encodes a copy into the pending encoder after everything in it (ending the open
    /// pass); submits when the batch is full.
    pub(super) fn encode_copy(
        &self,
        p: &mut Pending,
        (src, src_off): (&wgpu::Buffer, u64),
        (dst, dst_off): (&wgpu::Buffer, u64),
        size: u64,
    ) {
        p.pass = None;
        p.pipeline = None;
        let enc = p.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        enc.copy_buffer_to_buffer(src, src_off, dst, dst_off, Some(size));
        // copies count towards the batch too: their staging buffers live until submission
        p.count += 1;
        if p.count >= MAX_PENDING {
            self.submit_pending(p);
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
    pub(crate) fn check_uncaptured(&self) -> Result<()> {
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
        let _ = self.record_copy((b, 0), (b, 0), 4, &[]);
    }

    /// Submits the pending encoder; returns the submission to wait for.
    pub fn flush(&self) -> Option<wgpu::SubmissionIndex> {
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

        // group 0 moves with every dispatch's parameter slot, group 2 with the meta ring's
        // when it holds binding 4; the others are set again only when they change
        let g2_off = if meta_words.is_some() {
            Offset::Meta
        } else {
            Offset::Zero
        };
        self.record(
            Dispatch {
                key: kernel.key,
                pipeline,
                params: bytes,
                meta: meta_words,
                binds: vec![
                    (0, g0, Offset::Uniform),
                    (1, g1, Offset::Fixed),
                    (2, g2, g2_off),
                    (3, g3, Offset::Fixed),
                ],
                other_layout: false,
                rng_at: P::RNG_SEED,
                groups,
            },
            [
                binds.inputs[0],
                binds.inputs[1],
                Some(binds.output),
                binds.rw[0],
                binds.rw[1],
            ]
            .into_iter()
            .flatten()
            .chain(match binds.extra {
                Extra::Buffer(b) => Some(b),
                _ => None,
            }),
            own_meta,
        )
    }

    /// Records one dispatch into the open pass (opening one if needed): its parameter bytes
    /// go to the parameter ring, its metadata words to the meta ring, and its bind groups
    /// are set where the pass does not hold them already. While a graph captures, the
    /// dispatch is kept in the graph instead (with `uses`, the tensor buffers it binds, and
    /// `own_meta`, a metadata buffer of its own) and nothing runs.
    pub(super) fn record<'a>(
        &self,
        d: Dispatch<'_>,
        uses: impl Iterator<Item = &'a GpuBuffer>,
        own_meta: Option<wgpu::Buffer>,
    ) -> Result<()> {
        if crate::capture::active() {
            return self.capture_dispatch(d, uses, own_meta);
        }
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        self.encode(
            &mut p,
            (d.key, &d.pipeline),
            d.params,
            d.meta.map(bytemuck::cast_slice::<u32, u8>),
            (&d.binds, d.other_layout),
            d.groups,
        );
        Ok(())
    }

    /// Encodes one dispatch into the pending pass (opening one if needed): `params` into
    /// its slot of the parameter ring, `meta` (bytes of words) into the meta ring, the bind
    /// groups the pass does not hold already; submits when the batch is full.
    pub(super) fn encode(
        &self,
        p: &mut Pending,
        (key, pipeline): (&'static str, &wgpu::ComputePipeline),
        params: &[u8],
        meta: Option<&[u8]>,
        binds: (&[(u32, wgpu::BindGroup, Offset)], bool),
        groups: [u32; 3],
    ) {
        let meta_off = match meta {
            Some(m) => {
                let len = meta_span(m.len());
                if p.meta.len() + len > META_RING {
                    // the ring is full: submit what it holds, then start it again
                    self.submit_pending(p);
                }
                let off = p.meta.len();
                p.meta.extend_from_slice(m);
                p.meta.resize(off + len, 0);
                off as u32
            }
            None => 0,
        };
        let slot = p.count;
        let uniform_off = (slot * SLOT) as u32;
        p.params.resize(slot * SLOT, 0); // copies take slots without parameters
        p.params.extend_from_slice(params);
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
            p.bound = Default::default();
        }
        let same = p.pipeline.as_ref() == Some(pipeline);
        let q = 2 * p.profiled.len() as u32;
        {
            let Pending { pass, bound, .. } = &mut *p;
            let pass = pass
                .as_mut()
                .expect("a pass is open while an encoder exists");
            if !same {
                pass.set_pipeline(pipeline);
            }
            graph::set_groups(pass, bound, binds, uniform_off, meta_off);
            if let Some(prof) = &self.profiler {
                pass.write_timestamp(&prof.queries, q);
            }
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            if let Some(prof) = &self.profiler {
                pass.write_timestamp(&prof.queries, q + 1);
            }
        }
        if self.profiler.is_some() {
            p.profiled.push(key);
        }
        if !same {
            p.pipeline = Some(pipeline.clone());
        }
        p.count += 1;
        self.dispatches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if p.count >= MAX_PENDING {
            self.submit_pending(p);
        }
    }

    /// The bind groups for these buffers, from the cache (group 2 is not cached when
    /// binding 4 is a one-off metadata buffer).
    pub(crate) fn bind_groups(
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
        let g0 = self.state_group_in(&mut c, state);
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

    /// Group 0 (the parameter ring, and `state` at bindings 5 and 6), from the cache.
    fn state_group_in(&self, c: &mut BindCache, state: [&wgpu::Buffer; 2]) -> wgpu::BindGroup {
        c.state
            .entry([state[0].clone(), state[1].clone()])
            .or_insert_with(|| {
                self.bind_groups_created
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let ring = wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.uniform_ring,
                        offset: 0,
                        size: wgpu::BufferSize::new(SLOT as u64),
                    }),
                };
                let (s5, s6) = (
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: state[0].as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 6,
                        resource: state[1].as_entire_binding(),
                    },
                );
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &self.layouts[0],
                    entries: &[ring, s5, s6],
                })
            })
            .clone()
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
