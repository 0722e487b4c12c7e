//! The tensor handle: shared storage plus a layout, a dtype and autograd state.

use crate::autograd::{self, Node};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::layout::{checked_numel, fmt_shape, normalize_dim, Layout, Shape};
use crate::storage::{
    try_collect, try_filled, try_vec, Buffer, BufferElement, CpuStorage, Storage,
};
use crate::{shape_err, value_err};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a tensor's storage lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// Host memory.
    Cpu,
    /// The wgpu device (float32 only).
    Gpu,
}

impl Device {
    /// Parses a device name: `cpu`, or `gpu` (also `cuda`/`wgpu`, and `:0` of each: the one
    /// GPU, as PyTorch scripts name it), refused clearly when this build or this machine has
    /// no GPU.
    pub fn parse(name: &str) -> Result<Device> {
        match name {
            "cpu" => Ok(Device::Cpu),
            "gpu" | "cuda" | "wgpu" | "gpu:0" | "cuda:0" | "wgpu:0" => {
                #[cfg(feature = "gpu")]
                {
                    crate::gpu::context()?;
                    Ok(Device::Gpu)
                }
                #[cfg(not(feature = "gpu"))]
                Err(Error::Device(format!(
                    "device '{name}' is not available: this build of ferrograd has only the cpu backend"
                )))
            }
            other => Err(Error::Device(format!(
                "unknown device '{other}' (expected 'cpu' or 'gpu')"
            ))),
        }
    }

    /// The name users see.
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
        }
    }
}

pub(crate) struct Inner {
    storage: Arc<Storage>,
    layout: Layout,
    requires_grad: AtomicBool,
    grad_fn: Option<Arc<Node>>,
    grad: Mutex<Option<Tensor>>,
}

/// A cheap, clonable handle to an n-dimensional array with optional autograd state.
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor(shape={}, dtype={})",
            fmt_shape(self.shape()),
            self.dtype()
        )
    }
}

/// Runs `$body` with `$T` bound to the Rust type of a float dtype; other dtypes are refused.
#[macro_export]
macro_rules! float_dispatch {
    ($dt:expr, $op:expr, $T:ident => $body:expr) => {
        match $dt {
            $crate::dtype::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::dtype::DType::F64 => {
                type $T = f64;
                $body
            }
            d => {
                return Err($crate::dtype_err!(
                    "{}: expected a floating-point tensor (float32 or float64), got {}",
                    $op,
                    d
                ))
            }
        }
    };
}

/// Runs `$body` with `$T` bound to the Rust type of any dtype.
#[macro_export]
macro_rules! any_dispatch {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            $crate::dtype::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::dtype::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::dtype::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::dtype::DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}

impl Tensor {
    // ---------------------------------------------------------------- construction

    pub(crate) fn from_parts(storage: Arc<Storage>, layout: Layout) -> Tensor {
        Tensor(Arc::new(Inner {
            storage,
            layout,
            requires_grad: AtomicBool::new(false),
            grad_fn: None,
            grad: Mutex::new(None),
        }))
    }

    /// A tensor owning `buf`, shaped `shape` (the element count must match).
    pub fn from_buffer(buf: Buffer, shape: &[usize]) -> Result<Tensor> {
        let n = checked_numel(shape)?;
        if n != buf.len() {
            return Err(shape_err!(
                "tensor: {} elements cannot have shape {}",
                buf.len(),
                fmt_shape(shape)
            ));
        }
        Ok(Tensor::from_parts(
            Arc::new(Storage::new(buf)),
            Layout::contiguous(shape),
        ))
    }

    /// A tensor owning `data`, shaped `shape`.
    pub fn from_vec<T: BufferElement>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_buffer(T::wrap(data), shape)
    }

    /// A 0-dimensional tensor.
    pub fn scalar(value: f64, dtype: DType) -> Tensor {
        any_dispatch!(dtype, T => Tensor::from_vec(vec![T::from_f64(value)], &[]).expect("one element"))
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        let n = checked_numel(shape)?;
        any_dispatch!(dtype, T => Tensor::from_vec(try_filled(n, T::from_f64(value))?, shape))
    }

    /// Zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 0.0, dtype)
    }

    /// Ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 1.0, dtype)
    }

    /// Values from `start` up to (not including) `end` in steps of `step`.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(value_err!("arange: step must be finite and non-zero, got start={start}, end={end}, step={step}"));
        }
        let n = ((end - start) / step).ceil().max(0.0);
        if n > (isize::MAX as f64) / 8.0 {
            return Err(Error::Memory(format!(
                "arange: {n} elements cannot be allocated"
            )));
        }
        let n = n as usize;
        any_dispatch!(dtype, T => {
            let mut v = try_vec::<T>(n)?;
            v.extend((0..n).map(|i| T::from_f64(start + i as f64 * step)));
            Tensor::from_vec(v, &[n])
        })
    }

    /// An `n` x `m` matrix with ones on the diagonal.
    pub fn eye(n: usize, m: usize, dtype: DType) -> Result<Tensor> {
        let total = checked_numel(&[n, m])?;
        any_dispatch!(dtype, T => {
            let mut v = try_filled(total, T::zero())?;
            for i in 0..n.min(m) {
                v[i * m + i] = T::from_f64(1.0);
            }
            Tensor::from_vec(v, &[n, m])
        })
    }

    // ---------------------------------------------------------------- accessors

    /// Size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.0.layout.shape
    }

    /// Strides in elements.
    pub fn strides(&self) -> &[isize] {
        &self.0.layout.strides
    }

    /// The layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }

    /// Device of the storage.
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }

    /// Whether the storage is in GPU memory.
    pub fn is_gpu(&self) -> bool {
        self.device() == Device::Gpu
    }

    /// Refuses a GPU tensor for an op the GPU backend does not have yet.
    pub(crate) fn expect_cpu(&self, op: &str) -> Result<()> {
        if self.is_gpu() {
            return Err(Error::Device(format!(
                "{op}: not implemented on the gpu backend yet; move the tensor with .to('cpu')"
            )));
        }
        Ok(())
    }

    /// The same data on `device` (a copy when it moves; the same handle otherwise).
    /// Gradients flow back across the move. int64 tensors stay on the cpu when asked for
    /// the gpu (which must exist): the gpu backend holds float32 and bool (as 0/1 floats),
    /// and its kernels read labels and indices from the host.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        crate::backend::require(device)?;
        if device == Device::Gpu && self.dtype() == DType::I64 {
            // int64 tensors (labels, indices) live on the cpu, where the gpu kernels read
            // them, as argmax's results do; moving one is accepted so a PyTorch-style
            // `y.to(device)` works
            return Ok(self.clone());
        }
        let host = self.0.storage.read().to_host(&self.0.layout)?;
        let out = Tensor::from_buffer(Buffer::upload(host, device)?, self.shape())?;
        if !self.dtype().is_float() {
            return Ok(out); // masks and labels are never differentiable
        }
        let back = self.device();
        Ok(autograd::record(
            out,
            "ToDeviceBackward",
            &[self],
            move |g| Ok(vec![Some(g.to_device(back)?)]),
        ))
    }

    /// Runs an op that has no GPU kernel yet on GPU inputs: they move to the CPU (through
    /// the differentiable `to_device`, so gradients flow back), `f` runs there, and a float
    /// result moves back to the GPU. `None` when every input is already on the CPU.
    pub(crate) fn gpu_fallback(
        inputs: &[&Tensor],
        f: impl FnOnce(&[Tensor]) -> Result<Tensor>,
    ) -> Option<Result<Tensor>> {
        if !inputs.iter().any(|t| t.is_gpu()) {
            return None;
        }
        let run = || {
            let cpu: Vec<Tensor> = inputs
                .iter()
                .map(|t| t.to_device(Device::Cpu))
                .collect::<Result<_>>()?;
            let out = f(&cpu)?;
            if matches!(out.dtype(), DType::F32 | DType::Bool) {
                out.to_device(Device::Gpu)
            } else {
                Ok(out) // int64 results stay on the CPU: the gpu backend holds float32 and bool
            }
        };
        Some(run())
    }

    /// Overwrites a GPU tensor's elements with `values` (C order; in-place updates). A
    /// strided view rewrites the span of the buffer it reaches: read back, the view's
    /// elements replaced, written back (the GPU writes contiguous spans only).
    #[cfg(feature = "gpu")]
    pub(crate) fn gpu_overwrite(&self, values: &[f32]) -> Result<()> {
        let l = &self.0.layout;
        if l.is_contiguous() {
            let off = l.offset;
            return self.with_gpu(|b, _| b.write_at(off, values))?;
        }
        let Some((lo, hi)) = l.span() else {
            return Ok(());
        };
        self.with_gpu(|b, _| {
            let mut span = b.download_range(lo, hi - lo)?;
            let mut k = 0;
            l.for_each_index(|i| {
                span[i - lo] = values[k];
                k += 1;
            });
            b.write_at(lo, &span)
        })?
    }

    /// Applies a CPU in-place update to a GPU tensor: download, update, upload.
    pub(crate) fn inplace_via_cpu(&self, f: impl FnOnce(&Tensor) -> Result<()>) -> Result<()> {
        let cpu = self.detach().to_device(Device::Cpu)?;
        f(&cpu)?;
        #[cfg(feature = "gpu")]
        {
            // float32 or bool (0/1), both held as floats on the gpu
            let v = cpu.to_f64_vec()?;
            let v: Vec<f32> = try_collect(v.len(), v.iter().map(|&x| x as f32))?;
            self.gpu_overwrite(&v)
        }
        #[cfg(not(feature = "gpu"))]
        Ok(())
    }

    /// The elements in C order, in host memory (read back from the device).
    pub(crate) fn host_storage(&self) -> Result<CpuStorage> {
        self.0.storage.read().to_host(&self.0.layout)
    }

    /// The GPU buffer behind this tensor (for the GPU kernels).
    #[cfg(feature = "gpu")]
    pub(crate) fn with_gpu<R>(
        &self,
        f: impl FnOnce(&crate::gpu::GpuBuffer, &Layout) -> R,
    ) -> Result<R> {
        let guard = self.0.storage.read();
        match &*guard {
            Buffer::Gpu(g) => Ok(f(&g.buf, &self.0.layout)),
            _ => Err(Error::Device("internal: expected a gpu tensor".into())),
        }
    }

    /// Runs `f` with the device buffers of several GPU tensors (read-locked meanwhile).
    #[cfg(feature = "gpu")]
    pub(crate) fn with_gpus<R>(
        ts: &[&Tensor],
        f: impl FnOnce(&[&crate::gpu::GpuBuffer]) -> R,
    ) -> Result<R> {
        let guards: Vec<_> = ts.iter().map(|t| t.0.storage.read()).collect();
        let mut bufs = Vec::with_capacity(ts.len());
        for g in &guards {
            match &**g {
                Buffer::Gpu(g) => bufs.push(&*g.buf),
                _ => return Err(Error::Device("internal: expected a gpu tensor".into())),
            }
        }
        Ok(f(&bufs))
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.layout.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// Whether the elements are stored in C order without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// Whether two handles share storage (views of one another).
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        if Arc::ptr_eq(&self.0.storage, &other.0.storage) {
            return true;
        }
        // a gpu bool and its float reading (`with_dtype`) share one device buffer
        #[cfg(feature = "gpu")]
        if let (Buffer::Gpu(a), Buffer::Gpu(b)) =
            (&*self.0.storage.read(), &*other.0.storage.read())
        {
            return Arc::ptr_eq(&a.buf, &b.buf);
        }
        false
    }

    /// Whether this tensor takes part in autograd.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Sets `requires_grad` on a leaf (only float tensors can require gradients).
    pub fn set_requires_grad(&self, on: bool) -> Result<()> {
        if on && !self.dtype().is_float() {
            return Err(Error::DType(format!(
                "requires_grad: only floating-point tensors can require gradients, got {}",
                self.dtype()
            )));
        }
        if !self.is_leaf() {
            return Err(Error::Autograd(
                "requires_grad: can only be changed on leaf tensors; use detach() on a result of an op".into(),
            ));
        }
        self.0.requires_grad.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// The node that produced this tensor, if autograd recorded one.
    pub fn grad_fn(&self) -> Option<&Arc<Node>> {
        self.0.grad_fn.as_ref()
    }

    /// Whether this is a leaf of the graph (created by the user rather than by an op).
    pub fn is_leaf(&self) -> bool {
        self.0.grad_fn.is_none()
    }

    /// The accumulated gradient.
    pub fn grad(&self) -> Option<Tensor> {
        self.grad_slot().clone()
    }

    /// Replaces the accumulated gradient (shape and dtype are checked).
    pub fn set_grad(&self, g: Option<Tensor>) -> Result<()> {
        if let Some(g) = &g {
            if g.shape() != self.shape() {
                return Err(shape_err!(
                    "grad: assigned gradient has shape {} but the tensor has shape {}",
                    fmt_shape(g.shape()),
                    fmt_shape(self.shape())
                ));
            }
            if g.dtype() != self.dtype() {
                return Err(Error::DType(format!(
                    "grad: assigned gradient has dtype {} but the tensor has dtype {}",
                    g.dtype(),
                    self.dtype()
                )));
            }
            if g.device() != self.device() {
                return Err(Error::Device(format!(
                    "grad: assigned gradient is on {} but the tensor is on {}",
                    g.device().name(),
                    self.device().name()
                )));
            }
        }
        *self.grad_slot() = g;
        Ok(())
    }

    pub(crate) fn grad_slot(&self) -> MutexGuard<'_, Option<Tensor>> {
        self.0.grad.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Computes gradients of this tensor with respect to the graph's leaves.
    pub fn backward(&self, gradient: Option<Tensor>, retain_graph: bool) -> Result<()> {
        autograd::backward(self, gradient, retain_graph)
    }

    /// A handle to the same data, cut from the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), self.0.layout.clone())
    }

    pub(crate) fn with_grad_fn(self, node: Arc<Node>) -> Tensor {
        let (storage, layout) = match Arc::try_unwrap(self.0) {
            Ok(inner) => (inner.storage, inner.layout),
            Err(arc) => (arc.storage.clone(), arc.layout.clone()),
        };
        Tensor(Arc::new(Inner {
            storage,
            layout,
            requires_grad: AtomicBool::new(true),
            grad_fn: Some(node),
            grad: Mutex::new(None),
        }))
    }

    /// The same storage read as another dtype, cut from the graph. Only for the gpu
    /// backend, whose bool tensors hold 0/1 floats: a gpu bool is read as float32 by the
    /// float kernels, and a kernel's 0/1 float result is tagged bool.
    #[cfg(feature = "gpu")]
    pub(crate) fn with_dtype(&self, dtype: DType) -> Tensor {
        debug_assert!(self.is_gpu() && matches!(dtype, DType::F32 | DType::Bool));
        let buf = match &*self.0.storage.read() {
            Buffer::Gpu(g) => g.buf.clone(),
            Buffer::Cpu(_) => unreachable!("with_dtype is for gpu tensors"),
        };
        let storage = Storage::new(Buffer::Gpu(crate::gpu::WgpuStorage { buf, dtype }));
        Tensor::from_parts(Arc::new(storage), self.0.layout.clone())
    }

    /// A fresh contiguous tensor of this one's shape from a backend kernel that reads this
    /// tensor's storage through its layout (no autograd recorded).
    pub(crate) fn map_storage(
        &self,
        f: impl FnOnce(&Buffer, &Layout) -> Result<Buffer>,
    ) -> Result<Tensor> {
        let out = f(&self.0.storage.read(), &self.0.layout)?;
        Tensor::from_buffer(out, self.shape())
    }

    /// Read access to the storage, for kernels over several tensors' storages.
    pub(crate) fn storage_guard(&self) -> std::sync::RwLockReadGuard<'_, Buffer> {
        self.0.storage.read()
    }

    /// A view of the same storage under another layout (no autograd recorded).
    pub(crate) fn view_with(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), layout)
    }

    // ---------------------------------------------------------------- data access

    /// Runs `f` on the raw storage slice and the layout (read-locked meanwhile).
    pub(crate) fn read<T: BufferElement, R>(&self, f: impl FnOnce(&[T], &Layout) -> R) -> R {
        let guard = self.0.storage.read();
        let s = T::slice(&guard)
            .expect("a host buffer of the tensor's dtype (gpu tensors take the gpu path)");
        f(s, &self.0.layout)
    }

    /// Runs `f` on the mutable elements of a contiguous tensor (write-locked meanwhile).
    pub(crate) fn write_contig<T: BufferElement, R>(&self, f: impl FnOnce(&mut [T]) -> R) -> R {
        let mut guard = self.0.storage.write();
        let s = T::slice_mut(&mut guard).expect("dtype tag matches the buffer");
        let l = &self.0.layout;
        f(&mut s[l.contiguous_range()])
    }

    /// Runs `f` on the elements in C order: a borrowed slice when contiguous, else a copy.
    pub(crate) fn with_contig<T: BufferElement, R>(&self, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        self.read(|s: &[T], l| {
            if l.is_contiguous() {
                Ok(f(&s[l.contiguous_range()]))
            } else {
                Ok(f(&l.gather(s)?))
            }
        })
    }

    /// The elements in C order as a vector of `T` (the dtype must be `T`'s; a bool tensor
    /// may also be read as 0/1 floats).
    pub fn to_vec<T: BufferElement>(&self) -> Result<Vec<T>> {
        let dt = self.dtype();
        if dt != T::DTYPE && !(dt == DType::Bool && T::DTYPE == DType::F32) {
            return Err(Error::DType(format!(
                "to_vec: tensor has dtype {} but {} was asked for",
                self.dtype(),
                T::DTYPE
            )));
        }
        match self.host_storage()? {
            CpuStorage::Bool(v) if T::DTYPE == DType::F32 => {
                try_collect(v.len(), v.iter().map(|&b| T::from_f64(b as u8 as f64)))
            }
            host => Ok(T::unwrap(host).expect("the dtype was checked")),
        }
    }

    /// The elements converted to f64, in C order.
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        fn conv<T: Element>(v: &[T]) -> Result<Vec<f64>> {
            try_collect(v.len(), v.iter().map(|x| x.to_f64()))
        }
        match self.host_storage()? {
            CpuStorage::Bool(v) => conv(&v),
            CpuStorage::I64(v) => conv(&v),
            CpuStorage::F32(v) => conv(&v),
            CpuStorage::F64(v) => Ok(v),
        }
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(value_err!(
                "item: only a tensor with one element can be converted to a Python scalar, got shape {}",
                fmt_shape(self.shape())
            ));
        }
        Ok(self.to_f64_vec()?[0])
    }

    /// A C-contiguous tensor with the same values (the same handle when already contiguous).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let out = self.copy_data()?;
        Ok(autograd::record(out, "ContiguousBackward", &[self], |g| {
            Ok(vec![Some(g.clone())])
        }))
    }

    /// A copy of the data into fresh contiguous storage, without autograd.
    /// This tensor's data as a fresh leaf with storage nobody else can see: the storage
    /// itself when this handle is its only owner and covers it exactly (no copy), else a
    /// copy. For gradients, which are updated in place and must not alias.
    pub(crate) fn into_owned_data(self) -> Result<Tensor> {
        let exclusive = Arc::strong_count(&self.0) == 1
            && Arc::strong_count(&self.0.storage) == 1
            && self.0.layout.offset == 0
            && self.is_contiguous()
            && self.0.storage.read().len() == self.numel()
            && self.0.storage.exclusive();
        if exclusive {
            Ok(self.detach())
        } else {
            self.copy_data()
        }
    }

    pub(crate) fn copy_data(&self) -> Result<Tensor> {
        self.map_storage(|b, l| b.copy(l))
    }

    /// A copy with its own storage; gradients flow back to the source.
    pub fn clone_tensor(&self) -> Result<Tensor> {
        let out = self.copy_data()?;
        Ok(autograd::record(out, "CloneBackward", &[self], |g| {
            Ok(vec![Some(g.clone())])
        }))
    }

    /// Converts to another dtype; between float types the gradient flows back.
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let out = {
            let buf = self.0.storage.read().cast(&self.0.layout, dtype)?;
            Tensor::from_buffer(buf, self.shape())?
        };
        if !dtype.is_float() {
            return Ok(out);
        }
        let src = self.dtype();
        Ok(autograd::record(out, "ToCopyBackward", &[self], move |g| {
            Ok(vec![Some(g.cast(src)?)])
        }))
    }

    // ---------------------------------------------------------------- views

    /// A tensor with the same data and a new shape; one dim may be -1 (inferred).
    /// A view when the strides allow it, else a copy (as `torch.reshape`).
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor> {
        self.reshape_impl("reshape", shape, true)
    }

    /// Like [`Tensor::reshape`] but never copies: refuses when no view is possible.
    pub fn view(&self, shape: &[isize]) -> Result<Tensor> {
        self.reshape_impl("view", shape, false)
    }

    fn reshape_impl(&self, op: &str, shape: &[isize], allow_copy: bool) -> Result<Tensor> {
        let new_shape = self.infer_shape(op, shape)?;
        if new_shape.as_slice() == self.shape() {
            return Ok(self.clone());
        }
        let out = match self.0.layout.reshape_view(&new_shape) {
            Some(l) => self.view_with(l),
            None if allow_copy => {
                let c = self.copy_data()?;
                c.view_with(Layout::contiguous(&new_shape))
            }
            None => {
                return Err(shape_err!(
                    "view: a tensor of shape {} with strides {:?} cannot be viewed as {}; use reshape()",
                    fmt_shape(self.shape()),
                    self.strides(),
                    fmt_shape(&new_shape)
                ))
            }
        };
        let in_shape: Vec<isize> = self.shape().iter().map(|&d| d as isize).collect();
        Ok(autograd::record(
            out,
            "ReshapeBackward",
            &[self],
            move |g| Ok(vec![Some(g.reshape(&in_shape)?)]),
        ))
    }

    fn infer_shape(&self, op: &str, shape: &[isize]) -> Result<Shape> {
        let numel = self.numel();
        let mut infer = None;
        let mut known = 1usize;
        for (i, &d) in shape.iter().enumerate() {
            if d == -1 {
                if infer.is_some() {
                    return Err(shape_err!(
                        "{op}: only one dimension can be -1, got {shape:?}"
                    ));
                }
                infer = Some(i);
            } else if d < 0 {
                return Err(shape_err!("{op}: invalid size {d} in shape {shape:?}"));
            } else {
                known = known
                    .checked_mul(d as usize)
                    .ok_or_else(|| shape_err!("{op}: shape {shape:?} is too large"))?;
            }
        }
        let mut out: Shape = shape.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(i) = infer {
            if known == 0 || !numel.is_multiple_of(known) {
                return Err(shape_err!(
                    "{op}: shape {:?} is invalid for a tensor of shape {} ({} elements)",
                    shape,
                    fmt_shape(self.shape()),
                    numel
                ));
            }
            out[i] = numel / known;
        } else if known != numel {
            return Err(shape_err!(
                "{op}: shape {:?} is invalid for a tensor of shape {} ({} elements)",
                shape,
                fmt_shape(self.shape()),
                numel
            ));
        }
        checked_numel(&out)?;
        Ok(out)
    }

    /// Swaps two dims (a view).
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let n = self.ndim();
        if n < 2 && (d0 == 0 || d0 == -1) && (d1 == 0 || d1 == -1) {
            return Ok(self.clone());
        }
        let a = normalize_dim("transpose", d0, n)?;
        let b = normalize_dim("transpose", d1, n)?;
        let out = self.view_with(self.0.layout.transpose(a, b));
        Ok(autograd::record(
            out,
            "TransposeBackward",
            &[self],
            move |g| Ok(vec![Some(g.transpose(a as isize, b as isize)?)]),
        ))
    }

    /// Reorders dims (a view).
    pub fn permute(&self, dims: &[isize]) -> Result<Tensor> {
        let n = self.ndim();
        if dims.len() != n {
            return Err(shape_err!(
                "permute: got {} dims {:?} for a tensor of shape {}",
                dims.len(),
                dims,
                fmt_shape(self.shape())
            ));
        }
        let mut perm = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        for &d in dims {
            let d = normalize_dim("permute", d, n)?;
            if seen[d] {
                return Err(shape_err!("permute: dims {dims:?} repeat a dimension"));
            }
            seen[d] = true;
            perm.push(d);
        }
        let out = self.view_with(self.0.layout.permute(&perm));
        let mut inv = vec![0isize; n];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i as isize;
        }
        Ok(autograd::record(
            out,
            "PermuteBackward",
            &[self],
            move |g| Ok(vec![Some(g.permute(&inv)?)]),
        ))
    }

    /// Broadcasts to `shape` without copying (stride 0); -1 keeps a dim.
    pub fn expand(&self, shape: &[isize]) -> Result<Tensor> {
        let n = shape.len();
        if n < self.ndim() {
            return Err(shape_err!(
                "expand: cannot expand shape {} to {} dims",
                fmt_shape(self.shape()),
                n
            ));
        }
        let lead = n - self.ndim();
        let mut target: Shape = SmallVec::with_capacity(n);
        for (i, &d) in shape.iter().enumerate() {
            if d == -1 {
                if i < lead {
                    return Err(shape_err!(
                        "expand: -1 is not allowed for a new leading dim"
                    ));
                }
                target.push(self.shape()[i - lead]);
            } else if d < 0 {
                return Err(shape_err!("expand: invalid size {d}"));
            } else {
                target.push(d as usize);
            }
        }
        self.broadcast_to(&target)
    }

    /// PyTorch's `repeat`: the tensor tiled `reps[i]` times along dim i; more counts than
    /// dims add leading dims. A copy; the gradient sums over the tiles.
    pub fn repeat(&self, reps: &[isize]) -> Result<Tensor> {
        if reps.len() < self.ndim() {
            return Err(shape_err!(
                "repeat: {} repeat counts for a tensor of shape {}; give at least one per dim",
                reps.len(),
                fmt_shape(self.shape())
            ));
        }
        if let Some(r) = reps.iter().find(|&&r| r < 0) {
            return Err(value_err!("repeat: repeat counts must be >= 0, got {r}"));
        }
        let lead = reps.len() - self.ndim();
        let shape: Vec<isize> = std::iter::repeat_n(1, lead)
            .chain(self.shape().iter().map(|&d| d as isize))
            .collect();
        // view as (1, s0, 1, s1, ...), expand to (r0, s0, r1, s1, ...), merge each pair; a
        // dim repeated once needs no pair
        let mut single = Vec::with_capacity(2 * reps.len());
        let mut tiled = Vec::with_capacity(2 * reps.len());
        let mut out = Vec::with_capacity(reps.len());
        for (&s, &r) in shape.iter().zip(reps) {
            if r == 1 {
                single.push(s);
                tiled.push(s);
            } else {
                single.extend([1, s]);
                tiled.extend([r, s]);
            }
            out.push(
                r.checked_mul(s).ok_or_else(|| {
                    Error::Memory(format!("repeat: {reps:?} repeats are too many"))
                })?,
            );
        }
        if tiled.len() > 8 {
            // past the 8 dims the GPU kernels index: tile one dim at a time instead
            let out_shape: Vec<usize> = out.iter().map(|&d| d as usize).collect();
            if out_shape.contains(&0) {
                // nothing to tile (and a count of 2**40 must not become 2**40 parts)
                return Tensor::zeros(&out_shape, self.dtype())?.to_device(self.device());
            }
            let mut t = self.reshape(&shape)?;
            for (d, &r) in reps.iter().enumerate() {
                if r != 1 {
                    t = if r == 0 {
                        t.narrow(d as isize, 0, 0)?
                    } else {
                        Tensor::cat(&vec![t; r as usize], d as isize)?
                    };
                }
            }
            return if t.shares_storage(self) {
                t.clone_tensor()
            } else {
                Ok(t)
            };
        }
        let r = self.reshape(&single)?.expand(&tiled)?.reshape(&out)?;
        // a copy, as PyTorch's: the reshape above may still be a view (of stride-0 dims, or
        // of the tensor itself when every count is 1), which in-place writes must not share
        if r.shares_storage(self) {
            r.clone_tensor()
        } else {
            Ok(r)
        }
    }

    /// Broadcasts to `shape` (a view), summing the gradient back.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let l = self.0.layout.broadcast_to("expand", shape)?;
        let out = self.view_with(l);
        let in_shape: Shape = SmallVec::from_slice(self.shape());
        Ok(autograd::record(out, "ExpandBackward", &[self], move |g| {
            Ok(vec![Some(g.sum_to(&in_shape)?)])
        }))
    }

    /// Inserts a size-1 dim at `dim` (a view).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let n = self.ndim();
        let d = normalize_dim("unsqueeze", dim, n + 1)?;
        let mut shape: Vec<isize> = self.shape().iter().map(|&x| x as isize).collect();
        shape.insert(d, 1);
        self.reshape(&shape)
    }

    /// Removes size-1 dims (all of them, or just `dim`).
    pub fn squeeze(&self, dim: Option<isize>) -> Result<Tensor> {
        let n = self.ndim();
        let keep: Vec<isize> = match dim {
            None => self
                .shape()
                .iter()
                .filter(|&&d| d != 1)
                .map(|&d| d as isize)
                .collect(),
            Some(d) => {
                if n == 0 {
                    normalize_dim("squeeze", d, 0)?; // only 0 and -1 name a 0-d tensor's dim
                    return Ok(self.clone());
                }
                let d = normalize_dim("squeeze", d, n)?;
                self.shape()
                    .iter()
                    .enumerate()
                    .filter(|&(i, &s)| !(i == d && s == 1))
                    .map(|(_, &s)| s as isize)
                    .collect()
            }
        };
        self.reshape(&keep)
    }

    /// Flattens dims `start..=end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        let n = self.ndim();
        if n == 0 {
            // a 0-d tensor's only dims are 0 and -1, as for reductions
            normalize_dim("flatten", start, 0)?;
            normalize_dim("flatten", end, 0)?;
            return self.reshape(&[1]);
        }
        let s = normalize_dim("flatten", start, n)?;
        let e = normalize_dim("flatten", end, n)?;
        if s > e {
            return Err(shape_err!(
                "flatten: start_dim {start} comes after end_dim {end}"
            ));
        }
        let mut shape: Vec<isize> = Vec::new();
        for (i, &d) in self.shape().iter().enumerate() {
            if i <= s || i > e {
                shape.push(d as isize);
            } else {
                let last = shape.len() - 1;
                shape[last] *= d as isize;
            }
        }
        self.reshape(&shape)
    }

    /// Sums a (broadcast) gradient back down to `shape`.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let n = self.ndim();
        let lead = n.checked_sub(shape.len()).ok_or_else(|| {
            shape_err!(
                "sum_to: cannot reduce shape {} to {}",
                fmt_shape(self.shape()),
                fmt_shape(shape)
            )
        })?;
        let mut dims: Vec<isize> = (0..lead as isize).collect();
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 && self.shape()[lead + i] != 1 {
                dims.push((lead + i) as isize);
            }
        }
        let s = if dims.is_empty() {
            self.clone()
        } else {
            self.sum(Some(&dims), true)?
        };
        let target: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
        s.reshape(&target)
    }

    // ---------------------------------------------------------------- in-place updates

    /// What every in-place op checks before it writes: no autograd graph depends on the
    /// tensor, and no two of its elements share memory (an expanded view: the last write
    /// would win silently, so PyTorch refuses it too).
    fn check_inplace(&self, op: &str) -> Result<()> {
        if autograd::is_grad_enabled() && self.requires_grad() {
            return Err(Error::Autograd(format!(
                "{op}: a tensor that requires grad cannot be modified in place while grad mode is on; \
                 wrap the update in no_grad()"
            )));
        }
        if self.0.layout.has_internal_overlap() {
            return Err(value_err!(
                "{op}: the tensor of shape {} (strides {:?}) is an expanded view whose elements share memory; \
                 an in-place write into it is ambiguous, clone() it first",
                fmt_shape(self.shape()),
                self.strides()
            ));
        }
        Ok(())
    }

    /// The checks of an in-place write into this tensor (for writes that go through a view
    /// of it, such as index assignment): see `check_inplace`.
    pub fn check_writable(&self, op: &str) -> Result<()> {
        self.check_inplace(op)
    }

    /// Stores the result of an in-place op (`self op= other`) back into this tensor. As in
    /// PyTorch, the result must have this tensor's shape, and a result dtype of a higher kind
    /// (float into int64 or bool, int64 into bool) is refused instead of truncated.
    fn store_result(&self, op: &str, result: &Tensor) -> Result<()> {
        fn kind(d: DType) -> u8 {
            match d {
                DType::Bool => 0,
                DType::I64 => 1,
                DType::F32 | DType::F64 => 2,
            }
        }
        if kind(result.dtype()) > kind(self.dtype()) {
            return Err(Error::DType(format!(
                "{op}: the result has dtype {}, which cannot be stored in place into a tensor of dtype {}; \
                 use the out-of-place operator instead",
                result.dtype(),
                self.dtype()
            )));
        }
        if result.shape() != self.shape() {
            return Err(shape_err!(
                "{op}: the result shape {} differs from the tensor's shape {}",
                fmt_shape(result.shape()),
                fmt_shape(self.shape())
            ));
        }
        self.write_from(result)
    }

    /// Computes `f(self)` outside the graph and stores it in place (see `store_result`).
    fn update_with(&self, op: &str, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<()> {
        self.check_inplace(op)?;
        let result = {
            let _g = autograd::NoGradGuard::new();
            f(self)?
        };
        self.store_result(op, &result)
    }

    /// Writes `values` (C order, already converted) into this tensor's elements.
    fn write_elements<T: BufferElement>(&self, values: &[T]) {
        let mut guard = self.0.storage.write();
        let dst = T::slice_mut(&mut guard).expect("dtype tag matches the buffer");
        let l = &self.0.layout;
        if l.is_contiguous() {
            dst[l.contiguous_range()].copy_from_slice(values);
        } else {
            let mut k = 0;
            l.for_each_index(|i| {
                dst[i] = values[k];
                k += 1;
            });
        }
    }

    /// Copies `src` (broadcast to this shape, converted to this dtype) into this tensor.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        self.check_inplace("copy_")?;
        self.write_from(src)
    }

    /// The write of `copy_`, after its checks: any dtype converts, as in PyTorch's `copy_`.
    fn write_from(&self, src: &Tensor) -> Result<()> {
        if self.numel() == 0 {
            // nothing to write (an empty GPU view's offset may still name element 0)
            return src.broadcast_to(self.shape()).map(|_| ());
        }
        #[cfg(feature = "gpu")]
        if self.is_gpu() && self.is_contiguous() {
            // device to device: make the source a contiguous gpu buffer of this dtype (float32
            // or bool), then copy it in; a host source converts before it goes up
            let _g = autograd::NoGradGuard::new();
            let s = if src.is_gpu() {
                src.detach().cast(self.dtype())?
            } else {
                src.detach().cast(self.dtype())?.to_device(Device::Gpu)?
            };
            let s = s.broadcast_to(self.shape())?;
            // a contiguous source is copied in from where it lies in its buffer (exactly
            // this tensor's element count: a view's buffer may be longer), unless it is this
            // tensor's own storage (a buffer cannot be copied onto itself; overlapping views
            // need a temporary anyway)
            let direct = s.is_contiguous() && !s.shares_storage(self);
            let s = if direct {
                s
            } else {
                crate::ops::gpu_ops::copy(&s)?
            };
            let (off, from, n) = (self.0.layout.offset, s.layout().offset, self.numel());
            s.with_gpu(|sb, _| self.with_gpu(|db, _| db.copy_from(off, sb, from, n)))???;
            return Ok(());
        }
        if self.is_gpu() || src.is_gpu() {
            let src = src.detach().to_device(Device::Cpu)?;
            if self.is_gpu() {
                return self.inplace_via_cpu(|t| t.write_from(&src));
            }
            return self.write_from(&src);
        }
        let _g = autograd::NoGradGuard::new();
        let src = src.cast(self.dtype())?.broadcast_to(self.shape())?;
        any_dispatch!(self.dtype(), T => {
            let vals: Vec<T> = src.with_contig(|s: &[T]| s.to_vec())?;
            self.write_elements(&vals);
        });
        Ok(())
    }

    /// Sets every element to the one element of `value` (a number as a 0-d tensor, or a
    /// one-element tensor; converted to this dtype, as PyTorch's `fill_`), exactly for int64.
    pub fn fill_with_(&self, value: &Tensor) -> Result<()> {
        if value.numel() != 1 {
            return Err(shape_err!(
                "fill_: the value must be a number or a one-element tensor, got shape {}",
                fmt_shape(value.shape())
            ));
        }
        self.check_inplace("fill_")?;
        self.write_from(&value.detach().reshape(&[])?)
    }

    /// Sets every element to `value`.
    pub fn fill_(&self, value: f64) -> Result<()> {
        self.check_inplace("fill_")?;
        if self.is_gpu() && self.is_contiguous() {
            // a one-element upload broadcast by copy_, queued like any other gpu work
            return self.write_from(&Tensor::scalar(value, self.dtype()));
        }
        if self.is_gpu() {
            return self.inplace_via_cpu(|t| t.write_from(&Tensor::scalar(value, t.dtype())));
        }
        any_dispatch!(self.dtype(), T => {
            let vals = try_filled(self.numel(), T::from_f64(value))?;
            self.write_elements(&vals);
        });
        Ok(())
    }

    /// `self += alpha * other` in place (the optimizer's primitive). The sum is computed
    /// with the usual promotion, so `int_tensor.add_(1.5)` is refused rather than truncated;
    /// a non-integral `alpha` counts as a float operand.
    pub fn add_(&self, other: &Tensor, alpha: f64) -> Result<()> {
        self.scaled_add_("add_", other, alpha)
    }

    /// `self -= alpha * other` in place.
    pub fn sub_(&self, other: &Tensor, alpha: f64) -> Result<()> {
        self.scaled_add_("sub_", other, -alpha)
    }

    fn scaled_add_(&self, op: &str, other: &Tensor, alpha: f64) -> Result<()> {
        self.update_with(op, |t| {
            if alpha == 1.0 {
                return t.add(other);
            }
            // alpha * other in the sum's dtype (an int64 other next to a float tensor would
            // overflow in int64); a non-integral alpha makes an integer sum float32
            let mut dt = t.dtype().promote(other.dtype());
            if dt == DType::Bool || (!dt.is_float() && alpha.fract() != 0.0) {
                dt = if alpha.fract() == 0.0 {
                    DType::I64
                } else {
                    DType::F32
                };
            }
            if dt.is_float() && (t.is_gpu() || other.is_gpu()) {
                dt = DType::F32; // the gpu computes in float32 (int64 stays on the host)
            }
            let o = if other.is_gpu() && dt.is_float() {
                other.clone()
            } else {
                other.cast(dt)?
            };
            t.add(&o.mul(&Tensor::scalar(alpha, dt))?)
        })
    }

    /// `self *= other` in place (a tensor or a 0-d scalar; promotion as for `add_`).
    pub fn mul_(&self, other: &Tensor) -> Result<()> {
        self.update_with("mul_", |t| t.mul(other))
    }

    /// `self /= other` in place; true division gives floats, so integer tensors refuse it.
    pub fn div_(&self, other: &Tensor) -> Result<()> {
        self.update_with("div_", |t| t.div(other))
    }

    /// Replaces the tensor with `f(self)`, computed outside the graph, for in-place forms of
    /// out-of-place ops (`clamp_`, `masked_fill_`); the result must keep shape and dtype kind.
    pub fn apply_(&self, op: &str, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<()> {
        self.update_with(op, f)
    }
}
