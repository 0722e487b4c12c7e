//! Captured steps (`fg.gpu.graph`, CUDA graphs' idea): between `capture_begin` and
//! `capture_end` every dispatch and copy is kept, with its pipeline, bind groups, parameter
//! bytes and metadata words, instead of being run. `Graph::replay` encodes them all again
//! into the pending commands, with no Python, autograd or kernel selection in between: the
//! host cost of a step becomes the cost of encoding it.
//!
//! What changes from replay to replay is patched into the kept bytes: each random draw's
//! stream (the generator's seed and offset at the replay, as the eager step would have
//! drawn them), Adam's bias corrections (a rebuild closure per dispatch), and
//! cross-entropy's class targets (read again from the host tensor). Buffers a graph binds
//! stay out of the pool while it lives: a tensor freed during the capture gives its buffer
//! to later allocations of the same capture only, as PyTorch's private graph pool does,
//! and one freed afterwards waits until the graph is dropped.

use super::*;
use crate::capture::LiveWords;
use std::collections::HashSet;

/// How a bind group's dynamic offset is set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offset {
    /// no dynamic offset; set when the pass holds another group there
    Fixed,
    /// a dynamic offset of 0 (binding 4 not in the meta ring); set when it changes
    Zero,
    /// the dispatch's slot in the parameter ring
    Uniform,
    /// the dispatch's words in the meta ring
    Meta,
}

/// One dispatch as `Context::record` takes it.
pub(crate) struct Dispatch<'a> {
    pub key: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    pub params: &'a [u8],
    pub meta: Option<&'a [u32]>,
    pub binds: Vec<(u32, wgpu::BindGroup, Offset)>,
    /// the pipeline's layout is not the common one: forget what the pass holds after it
    pub other_layout: bool,
    /// `Params::RNG_SEED`
    pub rng_at: Option<usize>,
    pub groups: [u32; 3],
}

/// Sets a dispatch's bind groups in `pass`, skipping fixed ones the pass holds already.
pub(super) fn set_groups(
    pass: &mut wgpu::ComputePass<'static>,
    bound: &mut [Option<wgpu::BindGroup>; 4],
    (binds, other_layout): (&[(u32, wgpu::BindGroup, Offset)], bool),
    uniform_off: u32,
    meta_off: u32,
) {
    for (i, g, off) in binds {
        let slot = &mut bound[*i as usize];
        let dynamic = match off {
            Offset::Fixed | Offset::Zero if slot.as_ref() == Some(g) => continue,
            Offset::Fixed => None,
            Offset::Zero => Some(0),
            Offset::Uniform => Some(uniform_off),
            Offset::Meta => Some(meta_off),
        };
        pass.set_bind_group(*i, g, dynamic.as_slice());
        *slot = Some(g.clone());
    }
    if other_layout {
        *bound = Default::default();
    }
}

/// A buffer-to-buffer copy.
pub(crate) struct CopyStep {
    pub src: wgpu::Buffer,
    pub src_off: u64,
    pub dst: wgpu::Buffer,
    pub dst_off: u64,
    pub size: u64,
}

/// Rewrites a kept dispatch's parameter bytes for a replay `advance` optimizer steps past
/// the captured one (0: the captured step itself).
pub(crate) type Rebuild = Box<dyn Fn(u64, &mut [u8]) + Send + Sync>;

enum Meta {
    None,
    /// words for the meta ring, padded to whole slots
    Ring(Vec<u8>),
    /// a buffer of their own (too large for the ring)
    Own(wgpu::Buffer),
}

struct Kept {
    key: &'static str,
    pipeline: wgpu::ComputePipeline,
    binds: Vec<(u32, wgpu::BindGroup, Offset)>,
    other_layout: bool,
    params: Vec<u8>,
    meta: Meta,
    rng_at: Option<usize>,
    rebuild: Option<Rebuild>,
    live: Option<LiveWords>,
    /// the number of words `live` gave at capture
    live_len: usize,
    groups: [u32; 3],
}

enum Step {
    Run(Kept),
    Copy(CopyStep),
}

struct Capture {
    steps: Vec<Step>,
    /// pool buffers this capture binds
    held: HashSet<wgpu::Buffer>,
    /// buffers of tensors freed during the capture, for its later allocations (by size)
    reuse: HashMap<u64, Vec<wgpu::Buffer>>,
    /// the global random stream at the start
    rng: (u64, u64),
}

/// The captures and graphs' claims on pool buffers.
#[derive(Default)]
pub(super) struct Registry {
    capture: Option<Capture>,
    /// per buffer: how many graphs (a capture included) bind it, and whether its tensor is
    /// gone (it then waits here, out of the pool, until the last of them is dropped)
    held: HashMap<wgpu::Buffer, (u32, bool)>,
}

/// A captured step, replayed by [`Graph::replay`]; dropping it returns its buffers.
pub struct Graph {
    ctx: Arc<Context>,
    steps: Vec<Step>,
    held: Vec<wgpu::Buffer>,
    /// the global stream's offset where the capture's draws began, and how many it drew
    rng_begin: u64,
    rng_delta: u64,
    replays: u64,
    dispatches: usize,
}

fn capture_err(what: &str) -> Error {
    Error::Device(format!("gpu graph: {what}"))
}

impl Context {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.graphs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts capturing: dispatches and copies are kept for a graph instead of run.
    pub fn capture_begin(&self) -> Result<()> {
        if crate::capture::active() {
            return Err(capture_err("a capture is already recording"));
        }
        // what was queued before runs before the graph's first replay
        self.flush();
        let mut reg = self.registry();
        if reg.capture.is_some() {
            return Err(capture_err("a capture is already recording"));
        }
        reg.capture = Some(Capture {
            steps: Vec::new(),
            held: HashSet::new(),
            reuse: HashMap::new(),
            rng: crate::random::get_state(),
        });
        self.graph_claims.fetch_add(1, Ordering::Relaxed);
        crate::capture::set_active(true);
        Ok(())
    }

    /// Ends the capture: the graph of what it kept, or why it cannot be replayed (the
    /// capture is then discarded).
    pub fn capture_end(self: &Arc<Self>) -> Result<Graph> {
        let reserved = crate::capture::reserved();
        crate::capture::set_active(false);
        let cap = self
            .registry()
            .capture
            .take()
            .ok_or_else(|| capture_err("capture_end without capture_begin"))?;
        let held: Vec<wgpu::Buffer> = cap.held.iter().cloned().collect();
        let now = crate::random::get_state();
        let starts: HashSet<u64> = cap
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Run(k) => k.rng_at.map(|at| read_u64(&k.params, at + 8)),
                Step::Copy(_) => None,
            })
            .collect();
        let mut graph = Graph {
            ctx: self.clone(),
            dispatches: cap
                .steps
                .iter()
                .filter(|s| matches!(s, Step::Run(_)))
                .count(),
            steps: cap.steps,
            held,
            rng_begin: cap.rng.1,
            rng_delta: now.1.wrapping_sub(cap.rng.1),
            replays: 0,
        };
        // nothing ran: the draws happen at each replay, which moves the stream on then
        crate::random::set_state(cap.rng.0, cap.rng.1);
        if now.0 != cap.rng.0 {
            graph.steps.clear();
            return Err(capture_err(
                "the random seed changed during the capture (manual_seed inside it)",
            ));
        }
        if let Some((start, n)) = reserved.iter().find(|(s, _)| !starts.contains(s)) {
            graph.steps.clear();
            return Err(capture_err(&format!(
                "{n} random numbers (at {start}) were drawn on the host during the capture: \
                 every replay would repeat them; draw them on the GPU (dropout) or outside \
                 the capture"
            )));
        }
        Ok(graph)
    }

    /// Discards a capture that failed (its buffers go back as a dropped graph's do).
    pub fn capture_abort(self: &Arc<Self>) {
        if crate::capture::active() || self.registry().capture.is_some() {
            drop(self.capture_end());
        }
    }

    fn hold(reg: &mut Registry, bufs: impl Iterator<Item = wgpu::Buffer>) {
        let Registry { capture, held } = reg;
        let cap = capture.as_mut().expect("a capture is recording");
        for b in bufs {
            if cap.held.insert(b.clone()) {
                held.entry(b).or_insert((0, false)).0 += 1;
            }
        }
    }

    /// `record` while capturing.
    pub(super) fn capture_dispatch<'a>(
        &self,
        d: Dispatch<'_>,
        uses: impl Iterator<Item = &'a GpuBuffer>,
        own_meta: Option<wgpu::Buffer>,
    ) -> Result<()> {
        let live = d.meta.and_then(crate::capture::take_live_words);
        let meta = match (own_meta, d.meta) {
            (Some(b), _) => Meta::Own(b),
            (None, Some(m)) => {
                let mut bytes = bytemuck::cast_slice::<u32, u8>(m).to_vec();
                bytes.resize(meta_span(m.len() * 4), 0);
                Meta::Ring(bytes)
            }
            (None, None) => Meta::None,
        };
        let mut reg = self.registry();
        Self::hold(&mut reg, uses.map(|b| b.raw().clone()));
        let cap = reg.capture.as_mut().expect("a capture is recording");
        cap.steps.push(Step::Run(Kept {
            key: d.key,
            pipeline: d.pipeline,
            binds: d.binds,
            other_layout: d.other_layout,
            params: d.params.to_vec(),
            meta,
            rng_at: d.rng_at,
            rebuild: None,
            live_len: d.meta.map_or(0, <[u32]>::len),
            live,
            groups: d.groups,
        }));
        Ok(())
    }

    /// `record_copy` while capturing.
    pub(super) fn capture_copy(&self, c: CopyStep, uses: &[&GpuBuffer]) -> Result<()> {
        let mut reg = self.registry();
        Self::hold(&mut reg, uses.iter().map(|b| b.raw().clone()));
        let cap = reg.capture.as_mut().expect("a capture is recording");
        cap.steps.push(Step::Copy(c));
        Ok(())
    }

    /// While capturing, gives the dispatch recorded last a rebuild of its parameters per
    /// replay (Adam's bias corrections move with the step count); otherwise nothing.
    pub(crate) fn patch_last(&self, rebuild: impl Fn(u64, &mut [u8]) + Send + Sync + 'static) {
        if !crate::capture::active() {
            return;
        }
        let mut reg = self.registry();
        if let Some(Step::Run(k)) = reg.capture.as_mut().and_then(|c| c.steps.last_mut()) {
            k.rebuild = Some(Box::new(rebuild));
        }
    }

    /// A tensor's buffer is being freed: keeps it out of the pool if a graph binds it (true).
    pub(super) fn park(&self, b: &wgpu::Buffer) -> bool {
        if self.graph_claims.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut reg = self.registry();
        let Registry { capture, held } = &mut *reg;
        let Some(entry) = held.get_mut(b) else {
            return false;
        };
        entry.1 = true;
        // bound by the recording capture alone: its later allocations may take it
        if let Some(cap) = capture
            .as_mut()
            .filter(|c| entry.0 == 1 && c.held.contains(b))
        {
            cap.reuse.entry(b.size()).or_default().push(b.clone());
        }
        true
    }

    /// While capturing, a buffer of `bytes` freed earlier in the same capture.
    pub(super) fn reuse(&self, bytes: u64) -> Option<wgpu::Buffer> {
        if !crate::capture::active() {
            return None;
        }
        let mut reg = self.registry();
        let Registry { capture, held } = &mut *reg;
        let b = capture.as_mut()?.reuse.get_mut(&bytes)?.pop()?;
        if let Some(e) = held.get_mut(&b) {
            e.1 = false;
        }
        Some(b)
    }

    /// A graph (or a discarded capture) is gone: its buffers whose tensors are gone too go
    /// back to the pool.
    fn unhold(&self, bufs: &[wgpu::Buffer]) {
        let mut back = Vec::new();
        {
            let mut reg = self.registry();
            for b in bufs {
                if let Some(e) = reg.held.get_mut(b) {
                    e.0 -= 1;
                    if e.0 == 0 {
                        if e.1 {
                            back.push(b.clone());
                        }
                        reg.held.remove(b);
                    }
                }
            }
        }
        self.graph_claims.fetch_sub(1, Ordering::Relaxed);
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        for b in back {
            pool.entry(b.size()).or_default().insert(b);
        }
    }
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let lo = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let hi = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
    (hi as u64) << 32 | lo as u64
}

fn write_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes());
    bytes[at + 4..at + 8].copy_from_slice(&((v >> 32) as u32).to_le_bytes());
}

impl Graph {
    /// Dispatches one replay records.
    pub fn dispatches(&self) -> usize {
        self.dispatches
    }

    /// Replays made so far.
    pub fn replays(&self) -> u64 {
        self.replays
    }

    /// Records every kept dispatch and copy again into the pending commands, after whatever
    /// was queued before (submitted as eager work is: when a batch fills, or at a wait);
    /// `advance`: how many optimizer steps past
    /// the captured one this replay performs (the optimizer's step counts say; Adam's bias
    /// corrections follow it). Random draws start where the global generator is now, which
    /// then moves on as the eager step would move it. Live metadata (class targets) is read
    /// and checked first, so a bad value fails the replay before anything runs.
    pub fn replay(&mut self, advance: u64) -> Result<()> {
        if crate::capture::active() {
            return Err(capture_err(
                "cannot replay a graph while a capture is recording",
            ));
        }
        let live: Vec<Option<Vec<u8>>> = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Run(Kept {
                    live: Some(f),
                    live_len,
                    meta,
                    ..
                }) => {
                    let words = f()?;
                    if words.len() != *live_len {
                        return Err(capture_err(&format!(
                            "an input re-read at replay has {} values, {live_len} at capture",
                            words.len()
                        )));
                    }
                    let mut bytes = bytemuck::cast_slice::<u32, u8>(&words).to_vec();
                    if let Meta::Ring(m) = meta {
                        bytes.resize(m.len(), 0);
                    }
                    Ok(Some(bytes))
                }
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        let ctx = &*self.ctx;
        // the draws start where the generator is now, as the eager step's would
        let (seed, now) = crate::random::get_state();
        let shift = now.wrapping_sub(self.rng_begin);
        let mut bytes = Vec::with_capacity(SLOT);
        let mut p = ctx.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (step, live) in self.steps.iter().zip(&live) {
            let k = match step {
                Step::Copy(c) => {
                    ctx.encode_copy(&mut p, (&c.src, c.src_off), (&c.dst, c.dst_off), c.size);
                    continue;
                }
                Step::Run(k) => k,
            };
            bytes.clear();
            bytes.extend_from_slice(&k.params);
            if let Some(f) = &k.rebuild {
                f(advance, &mut bytes);
            }
            if let Some(at) = k.rng_at {
                let start = read_u64(&bytes, at + 8);
                write_u64(&mut bytes, at, seed);
                write_u64(&mut bytes, at + 8, start.wrapping_add(shift));
            }
            let meta = match (&k.meta, live) {
                (Meta::Ring(_), Some(words)) => Some(words.as_slice()),
                (Meta::Ring(m), None) => Some(m.as_slice()),
                (Meta::Own(b), Some(words)) => {
                    // queued work may still bind this buffer with the words it held: submit
                    // that first, so the new words land after it
                    if p.encoder.is_some() {
                        ctx.submit_pending(&mut p);
                    }
                    ctx.queue.write_buffer(b, 0, words);
                    None
                }
                _ => None,
            };
            ctx.encode(
                &mut p,
                (k.key, &k.pipeline),
                &bytes,
                meta,
                (&k.binds, k.other_layout),
                k.groups,
            );
        }
        drop(p);
        crate::random::advance(self.rng_delta);
        self.replays += 1;
        Ok(())
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        self.steps.clear();
        self.ctx.unhold(&self.held);
    }
}
