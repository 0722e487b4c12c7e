//! Device buffers: the pooled float32 buffer, uploads, span copies and read-backs.

use super::*;

/// What binding 4 receives.
pub(crate) enum Extra<'a> {
    None,
    Words(&'a [u32]),
    Buffer(&'a GpuBuffer),
}

/// A float32 buffer on the device; goes back to the pool when dropped.
pub struct GpuBuffer {
    pub(super) buf: Option<wgpu::Buffer>,
    pub(super) len: usize,
    pub(super) ctx: Arc<Context>,
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
            if ctx.park(&b) {
                return; // a graph binds it: out of the pool until the graph goes
            }
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
        ctx.record_copy(
            (&src, 0),
            (self.raw(), (offset * 4) as u64),
            (values.len() * 4) as u64,
            &[self],
        )
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
        self.ctx.record_copy(
            (src.raw(), (src_offset * 4) as u64),
            (self.raw(), (offset * 4) as u64),
            (len * 4) as u64,
            &[src, self],
        )
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
        if crate::capture::active() {
            return Err(Error::Device(
                "gpu: a captured step cannot read GPU results back to the host (item(), \
                 numpy(), printing a value, a data-dependent shape): the replay would not \
                 run that host code; read the graph's outputs after replay()"
                    .into(),
            ));
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
        ctx.record_copy(
            (self.raw(), (start * 4) as u64),
            (&staging, 0),
            size,
            &[self],
        )?;
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
