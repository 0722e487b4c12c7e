//! GPU device controls: adapters, statistics, profiling, matmul kernel choice, memory.

use crate::prelude::*;

/// The compute devices: the CPU, then every GPU adapter wgpu finds (name, backend, type).
#[pyfunction]
pub(crate) fn devices() -> Vec<(String, String, String)> {
    let cpu = ("cpu".to_string(), "cpu".to_string(), "Cpu".to_string());
    #[cfg(feature = "gpu")]
    {
        let gpus = ferrograd_core::gpu::adapters().into_iter();
        std::iter::once(cpu)
            .chain(gpus.map(|a| (a.name, a.backend, a.device_type)))
            .collect()
    }
    #[cfg(not(feature = "gpu"))]
    vec![cpu]
}

/// The GPU adapter tensors on "gpu" use, as (name, backend, type, features); DeviceError
/// when none.
#[pyfunction]
pub(crate) fn gpu_info() -> PyResult<(String, String, String, Vec<&'static str>)> {
    #[cfg(feature = "gpu")]
    {
        let ctx = ferrograd_core::gpu::context().map_err(err)?;
        let i = ctx.info();
        Ok((
            i.name.clone(),
            i.backend.clone(),
            i.device_type.clone(),
            i.features.clone(),
        ))
    }
    #[cfg(not(feature = "gpu"))]
    Err(DeviceError::new_err(
        "this build of ferrograd has no gpu backend",
    ))
}

/// The GPU runtime's counters: buffers created, dispatches recorded, submissions made,
/// bytes read back to the host, and the compiled kernel variants (for tests and benchmarks).
#[pyfunction]
pub(crate) fn gpu_stats(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    #[cfg(feature = "gpu")]
    {
        let ctx = ferrograd_core::gpu::context().map_err(err)?;
        let d = pyo3::types::PyDict::new(py);
        let (dispatches, submits) = ctx.counters();
        d.set_item("buffers_created", ctx.buffers_created())?;
        d.set_item("dispatches", dispatches)?;
        d.set_item("submits", submits)?;
        d.set_item("bytes_read", ctx.bytes_read())?;
        d.set_item("bind_groups_created", ctx.bind_groups_created())?;
        d.set_item("pipelines", ctx.pipeline_keys())?;
        d.set_item("max_binding", ctx.max_binding())?;
        Ok(d)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = py;
        Err(DeviceError::new_err(
            "this build of ferrograd has no gpu backend",
        ))
    }
}

/// Per-kernel GPU time, when the process started with `FERROGRAD_GPU_PROFILE=1`: a list of
/// (kernel, dispatches, total microseconds), slowest first, with "(gaps)" the idle time
/// between kernels; `None` when profiling is off. `reset` clears the totals.
#[pyfunction]
#[pyo3(signature = (reset = true))]
pub(crate) fn gpu_profile(reset: bool) -> PyResult<Option<Vec<(String, usize, f64)>>> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::context().map_err(err)?.profile(reset))
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = reset;
        Err(DeviceError::new_err(
            "this build of ferrograd has no gpu backend",
        ))
    }
}

#[cfg(not(feature = "gpu"))]
pub(crate) fn no_gpu<T>() -> PyResult<T> {
    Err(DeviceError::new_err(
        "this build of ferrograd has no gpu backend",
    ))
}

/// How the GPU matmul kernel is chosen: with `name` (a kernel from `gpu_matmul_kernels()`
/// or "auto", which times every kernel on the first product of each shape of at least
/// `tune_min_flops` (2mnk; default a 1024-cube) and keeps the fastest), sets it. Returns the
/// setting in force before the call.
#[pyfunction]
#[pyo3(signature = (name = None, tune_min_flops = None))]
pub(crate) fn gpu_matmul_kernel(
    name: Option<&str>,
    tune_min_flops: Option<f64>,
) -> PyResult<String> {
    #[cfg(feature = "gpu")]
    {
        use ferrograd_core::gpu as gpu_ops;
        if let Some(f) = tune_min_flops {
            gpu_ops::set_matmul_tune_min_flops(f).map_err(err)?;
        }
        match name {
            Some(n) => gpu_ops::set_matmul_kernel(n).map_err(err),
            None => gpu_ops::matmul_kernel().map_err(err),
        }
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = (name, tune_min_flops);
        no_gpu()
    }
}

/// Sets whether a split GPU matmul sums its parts in its own dispatch (on) or in a second
/// pass (off); returns the setting before. Both give the same bits (for tests).
#[pyfunction]
pub(crate) fn _gpu_matmul_split_k_fixup(on: bool) -> PyResult<bool> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::set_matmul_split_k_fixup(on).map_err(err)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = on;
        no_gpu()
    }
}

/// The most parts a GPU matmul may split its inner dimension into when its output has too
/// few tiles to fill the GPU (1: never split; default 16). With `max_splits`, sets it.
/// Returns the setting in force before the call.
#[pyfunction]
#[pyo3(signature = (max_splits = None))]
pub(crate) fn gpu_matmul_split_k(max_splits: Option<usize>) -> PyResult<usize> {
    #[cfg(feature = "gpu")]
    {
        use ferrograd_core::gpu as gpu_ops;
        match max_splits {
            Some(n) => gpu_ops::set_matmul_split_k(n).map_err(err),
            None => gpu_ops::matmul_split_k().map_err(err),
        }
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = max_splits;
        no_gpu()
    }
}

/// The GPU matmul kernels by name, the default first.
#[pyfunction]
pub(crate) fn gpu_matmul_kernels() -> PyResult<Vec<&'static str>> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::matmul_kernel_names())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// What "auto" measured: ((layout, m, n, k), chosen kernel, [(kernel, seconds per product)]);
/// NaN seconds mark a kernel rejected because its output differed from the default's.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub(crate) fn gpu_matmul_tuning() -> PyResult<
    Vec<(
        (&'static str, usize, usize, usize),
        &'static str,
        Vec<(&'static str, f64)>,
    )>,
> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::matmul_tuning().map_err(err)
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// Test hook: records a command the GPU must reject, so a test can check that the error
/// comes back from the next wait as a DeviceError (never a panic).
#[pyfunction]
pub(crate) fn _gpu_record_invalid_command() -> PyResult<()> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::context()
            .map_err(err)?
            .record_invalid_command_for_tests();
        Ok(())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// Submits the queued GPU work and waits for it to finish (for timing).
#[pyfunction]
pub(crate) fn gpu_synchronize(py: Python<'_>) -> PyResult<()> {
    #[cfg(feature = "gpu")]
    {
        let ctx = ferrograd_core::gpu::context().map_err(err)?;
        py.detach(|| ctx.synchronize()).map_err(err)
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = py;
        no_gpu()
    }
}

/// Submits the queued GPU work without waiting for it (benchmarks: a step's host time
/// including its submission).
#[pyfunction]
pub(crate) fn gpu_flush() -> PyResult<()> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::context().map_err(err)?.flush();
        Ok(())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// (bytes held by GPU tensors, bytes of all GPU tensor buffers incl. the free pool).
#[pyfunction]
pub(crate) fn gpu_memory() -> PyResult<(u64, u64)> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::context().map_err(err)?.memory())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// Releases the GPU buffer pool's free buffers.
#[pyfunction]
pub(crate) fn gpu_empty_cache() -> PyResult<()> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::context().map_err(err)?.empty_cache();
        Ok(())
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// The cap on free pooled GPU bytes (set when `limit` is given).
#[pyfunction]
#[pyo3(signature = (limit=None))]
pub(crate) fn gpu_pool_limit(limit: Option<u64>) -> PyResult<u64> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::context()
            .map_err(err)?
            .pool_limit(limit))
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = limit;
        no_gpu()
    }
}

/// GPU tensor buffers created so far (the pool reuses freed ones; for memory tests).
#[pyfunction]
pub(crate) fn gpu_buffers_created() -> PyResult<usize> {
    #[cfg(feature = "gpu")]
    {
        Ok(ferrograd_core::gpu::context()
            .map_err(err)?
            .buffers_created())
    }
    #[cfg(not(feature = "gpu"))]
    Err(DeviceError::new_err(
        "this build of ferrograd has no gpu backend",
    ))
}

/// A captured GPU step (`ferrograd.gpu.Graph` holds one): `replay()` records and submits
/// its dispatches again without Python; dropping it returns the buffers it binds.
#[pyclass(name = "GpuGraph", module = "ferrograd._core")]
pub(crate) struct PyGpuGraph {
    #[cfg(feature = "gpu")]
    inner: std::sync::Mutex<ferrograd_core::gpu::Graph>,
}

#[pymethods]
impl PyGpuGraph {
    /// Submits the captured dispatches again (after the work queued before it); `advance`:
    /// optimizer steps past the captured one (Adam's bias corrections follow it).
    #[pyo3(signature = (advance=0))]
    fn replay(&self, py: Python<'_>, advance: u64) -> PyResult<()> {
        #[cfg(feature = "gpu")]
        {
            py.detach(|| {
                self.inner
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replay(advance)
            })
            .map_err(err)
        }
        #[cfg(not(feature = "gpu"))]
        {
            let _ = (py, advance);
            no_gpu()
        }
    }

    /// Dispatches one replay submits.
    #[getter]
    fn dispatches(&self) -> usize {
        #[cfg(feature = "gpu")]
        return self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dispatches();
        #[cfg(not(feature = "gpu"))]
        0
    }

    /// Replays made so far.
    #[getter]
    fn replays(&self) -> u64 {
        #[cfg(feature = "gpu")]
        return self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replays();
        #[cfg(not(feature = "gpu"))]
        0
    }
}

/// Starts capturing GPU work into a graph (nothing runs until it is replayed).
#[pyfunction]
pub(crate) fn gpu_capture_begin() -> PyResult<()> {
    #[cfg(feature = "gpu")]
    {
        ferrograd_core::gpu::context()
            .and_then(|c| c.capture_begin())
            .map_err(err)
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// Ends the capture: the graph, or an error saying why it cannot be replayed.
#[pyfunction]
pub(crate) fn gpu_capture_end() -> PyResult<PyGpuGraph> {
    #[cfg(feature = "gpu")]
    {
        let g = ferrograd_core::gpu::context()
            .and_then(|c| c.capture_end())
            .map_err(err)?;
        Ok(PyGpuGraph {
            inner: std::sync::Mutex::new(g),
        })
    }
    #[cfg(not(feature = "gpu"))]
    no_gpu()
}

/// Discards a capture that failed part way (no-op when none records).
#[pyfunction]
pub(crate) fn gpu_capture_abort() -> PyResult<()> {
    #[cfg(feature = "gpu")]
    if let Ok(c) = ferrograd_core::gpu::context() {
        c.capture_abort();
    }
    Ok(())
}
