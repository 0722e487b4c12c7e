//! The tensor handle: shared storage plus a layout, a dtype and autograd state.

use crate::autograd::{self, Node};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::layout::{checked_numel, fmt_shape, Layout};
use crate::storage::{
    try_collect, try_filled, try_vec, Buffer, BufferElement, CpuStorage, Storage,
};
use crate::{shape_err, value_err};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// The operands of an op after `Tensor::colocate`: borrowed where they were already in
/// place (a handle's clone and drop cost two atomics), up to three without a heap
/// allocation.
pub(crate) type Operands<'a> = SmallVec<[std::borrow::Cow<'a, Tensor>; 3]>;

pub(crate) struct Inner {
    storage: Arc<Storage>,
    layout: Layout,
    requires_grad: AtomicBool,
    /// the node that made the tensor, until an in-place op under autograd rewrites its
    /// history (see `inplace.rs`): from then on `rewritten` holds it
    grad_fn: Option<Arc<Node>>,
    rewritten: std::sync::OnceLock<Mutex<Option<Arc<Node>>>>,
    grad: Mutex<Option<Tensor>>,
    /// for a view: the tensor at the root of its view chain (see `ViewBase`)
    base: Option<ViewBase>,
    /// how many times an in-place op under autograd rewrote this tensor: its views'
    /// gradient paths made before then are stale
    rebases: AtomicU64,
}

/// A view's link to the tensor it views, so an in-place write through the view rewrites
/// that tensor's autograd history too, and the view's own history follows the tensor's
/// rewrites (PyTorch's view + in-place semantics). Weak: a view does not keep its base's
/// graph alive, and a base nobody holds cannot be observed.
pub(crate) struct ViewBase {
    root: std::sync::Weak<Inner>,
    /// the root's `rebases` when this view's `grad_fn` was made
    seen: AtomicU64,
    /// `inplace::REWRITES` when this view last checked its root: while no history anywhere
    /// was rewritten since, there is nothing to check (no weak upgrade on the hot path)
    checked: AtomicU64,
}

/// A host tensor's memory as another library sees it (see `Tensor::host_memory`).
pub struct HostMemory {
    /// address of the first element
    pub addr: usize,
    /// the elements' dtype
    pub dtype: DType,
    /// the shape
    pub shape: Vec<usize>,
    /// the strides, in elements
    pub strides: Vec<isize>,
    /// keeps the storage (and so the memory) alive
    _keep: Arc<Storage>,
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
            $crate::dtype::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::dtype::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::dtype::DType::F16 => {
                type $T = half::f16;
                $body
            }
            $crate::dtype::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
        }
    };
}

impl Tensor {
    // ---------------------------------------------------------------- construction

    #[inline]
    pub(crate) fn from_parts(storage: Arc<Storage>, layout: Layout) -> Tensor {
        Tensor(Arc::new(Inner {
            storage,
            layout,
            requires_grad: AtomicBool::new(false),
            grad_fn: None,
            rewritten: std::sync::OnceLock::new(),
            grad: Mutex::new(None),
            base: None,
            rebases: AtomicU64::new(0),
        }))
    }

    /// A tensor owning `buf`, shaped `shape` (the element count must match).
    #[inline(always)]
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

    /// A tensor over fresh storage whose elements `layout` describes (a backend's result
    /// that is a view of its own buffer, such as the GPU's dim-first concatenation).
    pub(crate) fn from_buffer_layout(buf: Buffer, layout: Layout) -> Tensor {
        Tensor::from_parts(Arc::new(Storage::new(buf)), layout)
    }

    /// A host tensor over memory another library owns (a DLPack producer's), without a
    /// copy: `ptr` is the first element, `strides` count elements. `release` runs when the
    /// last view of the storage is gone. `None` (and `release` dropped unrun) when the
    /// memory cannot be shared (see `alloc::lend`; also negative strides, bools, whose
    /// foreign bytes need not be 0 or 1, and empty arrays): the caller copies instead.
    ///
    /// # Safety
    /// `ptr` must reach every element the shape and strides address, as live values of
    /// `dtype` that stay valid and are not freed until `release` runs.
    pub unsafe fn from_lent(
        ptr: *mut u8,
        dtype: DType,
        shape: &[usize],
        strides: &[isize],
        release: crate::alloc::Release,
    ) -> Option<Tensor> {
        if shape.len() != strides.len() || strides.iter().any(|&s| s < 0) || dtype == DType::Bool {
            return None;
        }
        let numel = checked_numel(shape).ok()?;
        if numel == 0 {
            return None;
        }
        // the elements addressed lie in [0, span)
        let mut span = 1usize;
        for (&n, &s) in shape.iter().zip(strides) {
            span = span.checked_add((n - 1).checked_mul(s as usize)?)?;
        }
        let buf = any_dispatch!(dtype, T => {
            // SAFETY: as the caller promises, `span` elements of T from `ptr`
            Buffer::Cpu(T::host(unsafe { crate::alloc::lend(ptr as *mut T, span, release)? }))
        });
        let layout = Layout {
            shape: shape.into(),
            strides: strides.into(),
            offset: 0,
        };
        Some(Tensor::from_parts(Arc::new(Storage::lent(buf)), layout))
    }

    /// This host tensor's bits read as `dtype`, over the same memory (PyTorch's
    /// `view(dtype)`): writes through either are seen by the other. With another element
    /// size the last dimension is rescaled; the caller has checked PyTorch's conditions
    /// (last stride 1, and sizes, other strides and the offset divisible). `None` when the
    /// memory cannot be aliased (a GPU tensor, a bool result, whose bytes need not be 0 or
    /// 1, misaligned memory, a storage whose bytes `dtype` does not divide, or the module
    /// not built with the caching allocator): the caller copies. No autograd.
    pub fn view_dtype(&self, dtype: DType) -> Option<Tensor> {
        let (from, to) = (self.dtype().size(), dtype.size());
        if dtype == DType::Bool {
            return None;
        }
        let (ptr, bytes) = match &*self.0.storage.read() {
            Buffer::Cpu(s) => {
                crate::with_storage!(s, v => (v.as_ptr() as *mut u8, std::mem::size_of_val(&v[..])))
            }
            #[cfg(feature = "gpu")]
            Buffer::Gpu(_) => return None,
        };
        if bytes % to != 0 {
            return None;
        }
        let l = &self.0.layout;
        let rescale = |n: usize| n * from / to;
        let mut layout = Layout {
            shape: l.shape.clone(),
            strides: l
                .strides
                .iter()
                .map(|&st| st * from as isize / to as isize)
                .collect(),
            offset: rescale(l.offset),
        };
        if from != to {
            let last = layout.shape.len().checked_sub(1)?;
            layout.shape[last] = rescale(l.shape[last]);
            layout.strides[last] = 1;
        }
        let keep = self.0.storage.clone();
        let release: crate::alloc::Release = Box::new(move || drop(keep));
        let buf = any_dispatch!(dtype, T => {
            // SAFETY: the storage's `bytes` hold valid values of any non-bool dtype, and stay
            // in place (host memory never moves) while `keep` holds the storage
            Buffer::Cpu(T::host(unsafe { crate::alloc::lend(ptr as *mut T, bytes / to, release)? }))
        });
        Some(Tensor::from_parts(Arc::new(Storage::lent(buf)), layout))
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
        if (end - start) * step < 0.0 {
            // PyTorch's "upper bound and lower bound inconsistent with step sign"
            return Err(value_err!(
                "arange: the step {step} points away from end={end} (start={start})"
            ));
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

    /// PyTorch's `to`: this tensor in `dtype` on `device` (None keeps each), differentiable.
    /// The cast runs where the source dtype is held: on the host after a move there, before
    /// a move to the GPU (which holds float32 and bool; an int64 sent there stays on the
    /// host). Unchanged, it is this tensor itself, or a copy when `copy` is set.
    pub fn to(&self, device: Option<Device>, dtype: Option<DType>, copy: bool) -> Result<Tensor> {
        let unchanged =
            dtype.is_none_or(|d| d == self.dtype()) && device.is_none_or(|d| d == self.device());
        if unchanged {
            return if copy {
                self.clone_tensor()
            } else {
                Ok(self.clone())
            };
        }
        let cast = |x: Tensor| match dtype {
            Some(d) => x.cast(d),
            None => Ok(x),
        };
        match device {
            Some(Device::Cpu) => cast(self.to_device(Device::Cpu)?),
            Some(d) => cast(self.clone())?.to_device(d),
            None => cast(self.clone()),
        }
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
        if device == Device::Gpu && self.dtype().is_int() {
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
        Ok(autograd::record_higher(
            out,
            "ToDeviceBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.to_device(back)?)]),
        ))
    }

    /// This tensor's data (detached) in `dtype` on `device`, converted where the data is
    /// held: on the host after the move for a host target, before the move for a GPU one
    /// (the GPU holds float32 and bool; int64 stays on the host).
    pub(crate) fn placed(&self, dtype: DType, device: Device) -> Result<Tensor> {
        let t = self.detach();
        match device {
            Device::Cpu => t.to_device(device)?.cast(dtype),
            Device::Gpu => t.cast(dtype)?.to_device(device),
        }
    }

    /// Writes `src` (this dtype, this device, broadcast to this shape) into the elements this
    /// view reaches, through the storage's `write`.
    pub(crate) fn write_storage(&self, src: &Tensor) -> Result<()> {
        let ls = src.layout().broadcast_to("copy_", self.shape())?;
        let src_guard = src.0.storage.read();
        let mut dst = self.0.storage.write();
        dst.write(&self.0.layout, &src_guard, &ls)
    }

    /// The elements in C order, in host memory (read back from the device).
    pub(crate) fn host_storage(&self) -> Result<CpuStorage> {
        if self.dtype().is_int() {
            crate::capture::check_int_read("reading the values of an integer tensor")?;
        }
        self.0.storage.read().to_host(&self.0.layout)
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
        if self.0.base.is_some() {
            self.refresh_view();
        }
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
    pub fn grad_fn(&self) -> Option<Arc<Node>> {
        if self.0.base.is_some() {
            self.refresh_view();
        }
        match self.0.rewritten.get() {
            Some(m) => m.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => self.0.grad_fn.clone(),
        }
    }

    /// Rewrites the tensor's history (an in-place op under autograd, see `inplace.rs`).
    pub(crate) fn set_grad_fn(&self, node: Arc<Node>) {
        let m = self.0.rewritten.get_or_init(|| Mutex::new(None));
        *m.lock().unwrap_or_else(|e| e.into_inner()) = Some(node);
        self.0.requires_grad.store(true, Ordering::Relaxed);
    }

    /// Whether this is a leaf of the graph (created by the user rather than by an op).
    pub fn is_leaf(&self) -> bool {
        self.grad_fn().is_none()
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

    /// The address of this handle's shared state: the same for every clone of one tensor.
    pub(crate) fn inner_addr(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.0)
    }

    /// The tensor a weak handle from `downgrade` points at, while it lives.
    pub(crate) fn upgrade(w: &std::sync::Weak<Inner>) -> Option<Tensor> {
        w.upgrade().map(Tensor)
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

    /// What a differentiable derivative rule keeps of an input (see
    /// `autograd::record_higher`): its values with the history they have now, so a
    /// `create_graph` pass differentiates through them. A leaf is kept itself (its gradient
    /// must reach its `.grad`); a tensor with a history gets a fresh handle on the same
    /// node, which an in-place rewrite of the original cannot reach (no cycle through the
    /// rewritten node); anything else is detached.
    pub(crate) fn saved_input(&self) -> Tensor {
        match self.grad_fn() {
            Some(n) => self.on_node(n),
            None if self.requires_grad() => self.clone(),
            None => self.detach(),
        }
    }

    /// A fresh handle on this tensor's values whose history is `node` (no view link).
    pub(crate) fn on_node(&self, node: Arc<Node>) -> Tensor {
        Tensor(Arc::new(Inner {
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            requires_grad: AtomicBool::new(true),
            grad_fn: Some(node),
            rewritten: std::sync::OnceLock::new(),
            grad: Mutex::new(None),
            base: None,
            rebases: AtomicU64::new(0),
        }))
    }

    pub(crate) fn with_grad_fn(self, node: Arc<Node>) -> Tensor {
        // a view keeps its base link: its recorded backward is the view's, made now
        let (storage, layout, base) = match Arc::try_unwrap(self.0) {
            Ok(inner) => (inner.storage, inner.layout, inner.base),
            Err(arc) => (
                arc.storage.clone(),
                arc.layout.clone(),
                arc.base.as_ref().map(|b| ViewBase {
                    root: b.root.clone(),
                    seen: AtomicU64::new(b.seen.load(Ordering::Acquire)),
                    checked: AtomicU64::new(b.checked.load(Ordering::Acquire)),
                }),
            ),
        };
        Tensor(Arc::new(Inner {
            storage,
            layout,
            requires_grad: AtomicBool::new(true),
            grad_fn: Some(node),
            rewritten: std::sync::OnceLock::new(),
            grad: Mutex::new(None),
            base,
            rebases: AtomicU64::new(0),
        }))
    }

    /// The operands of an elementwise op, on the device it runs on and in the dtype `dt`
    /// it computes in. It runs on the GPU when an operand is there and `dt` is not int64
    /// (int64 results are computed on the host, where the GPU backend keeps int64); the GPU
    /// kernels read float32 words, so GPU operands (bools as 0/1) stay as they are, a host
    /// scalar moves up as float32 (cast and move recorded, so a scalar that requires grad
    /// gets its gradient back on its own device and dtype), and a host int64/bool tensor
    /// (labels, argmax's results, masks) goes up as float32, so `x * (x > 0)` works as in
    /// PyTorch; a host float tensor next to a GPU one is refused. On the host every
    /// operand is cast to `dt`.
    pub(crate) fn colocate<'a>(op: &str, ts: &[&'a Tensor], dt: DType) -> Result<Operands<'a>> {
        Tensor::colocate_for(op, ts, dt, dt)
    }

    /// `colocate` for an op whose result has dtype `result` (a comparison's is bool, so
    /// int64 operands do not keep it on the host).
    pub(crate) fn colocate_for<'a>(
        op: &str,
        ts: &[&'a Tensor],
        dt: DType,
        result: DType,
    ) -> Result<Operands<'a>> {
        Tensor::colocate_on(op, ts, dt, Tensor::placement(ts, result))
    }

    /// The device an op over `ts` runs on: the GPU when one of them is there and the
    /// result's dtype is one it holds (int64 results are computed on the host). `ts` may
    /// include tensors that only steer (where's condition).
    pub(crate) fn placement(ts: &[&Tensor], result: DType) -> Device {
        if !result.is_int() && ts.iter().any(|t| t.device() == Device::Gpu) {
            Device::Gpu
        } else {
            Device::Cpu
        }
    }

    /// `colocate` onto a device chosen by `placement`.
    pub(crate) fn colocate_on<'a>(
        op: &str,
        ts: &[&'a Tensor],
        dt: DType,
        device: Device,
    ) -> Result<Operands<'a>> {
        use std::borrow::Cow;
        let on_gpu = device == Device::Gpu;
        if !on_gpu
            && ts
                .iter()
                .all(|t| t.device() == Device::Cpu && t.dtype() == dt)
        {
            // already in place (the tiny-op path: no casts to look at)
            return Ok(ts.iter().map(|&t| Cow::Borrowed(t)).collect());
        }
        ts.iter()
            .map(|&t| {
                if !on_gpu {
                    if t.device() == Device::Cpu && t.dtype() == dt {
                        return Ok(Cow::Borrowed(t));
                    }
                    let t = match t.device() {
                        Device::Cpu => t.clone(),
                        Device::Gpu => t.detach().to_device(Device::Cpu)?,
                    };
                    return t.cast(dt).map(Cow::Owned);
                }
                // the GPU's float dtypes differ only in rounding (float32 words): a half
                // operand of a float32 op is widened, a float32 one of a half op rounded,
                // as the host's casts do
                let half = |d: DType| d == DType::F16 || d == DType::BF16;
                if t.device() == Device::Gpu {
                    if t.dtype().is_float() && dt.is_float() && t.dtype() != dt && (half(dt) || half(t.dtype())) {
                        return t.cast(if half(dt) { dt } else { DType::F32 }).map(Cow::Owned);
                    }
                    return Ok(Cow::Borrowed(t));
                }
                if t.numel() == 1 {
                    // a bool stays a bool (its 0/1 word), so where(m, True, b) is a bool
                    let word = if t.dtype() == DType::Bool {
                        DType::Bool
                    } else if half(dt) {
                        dt
                    } else {
                        DType::F32
                    };
                    return t.cast(word)?.to_device(Device::Gpu).map(Cow::Owned);
                }
                match t.dtype() {
                    d if !d.is_float() => {
                        // float32 for arithmetic; a bool stays a bool where the op's dtype
                        // is (masked_fill of a bool tensor keeps its dtype, as PyTorch's)
                        let up = if dt == DType::Bool { DType::Bool } else { DType::F32 };
                        t.detach().cast(up)?.to_device(Device::Gpu).map(Cow::Owned)
                    }
                    _ => Err(Error::Device(format!(
                        "{op}: expected all tensors on one device, got gpu and cpu (shape {}); move one with .to()",
                        fmt_shape(t.shape())
                    ))),
                }
            })
            .collect()
    }

    /// A fresh tensor from a backend kernel over two tensors' storages, read through their
    /// layouts broadcast to one shape (no autograd recorded).
    #[inline(always)]
    pub(crate) fn zip_storage(
        op: &str,
        a: &Tensor,
        b: &Tensor,
        f: impl FnOnce(&Buffer, &Layout, &Buffer, &Layout) -> Result<Buffer>,
    ) -> Result<Tensor> {
        if a.shape() == b.shape() {
            // nothing to broadcast (the common case): the operands' own layouts
            let out = f(
                &a.0.storage.read(),
                a.layout(),
                &b.0.storage.read(),
                b.layout(),
            )?;
            return Tensor::from_buffer(out, a.shape());
        }
        let shape = crate::layout::broadcast_shapes(op, a.shape(), b.shape())?;
        let la = a.layout().broadcast_to(op, &shape)?;
        let lb = b.layout().broadcast_to(op, &shape)?;
        let out = f(&a.0.storage.read(), &la, &b.0.storage.read(), &lb)?;
        Tensor::from_buffer(out, &shape)
    }

    /// A fresh contiguous tensor of this one's shape from a backend kernel that reads this
    /// tensor's storage through its layout (no autograd recorded).
    #[inline(always)]
    pub(crate) fn map_storage(
        &self,
        f: impl FnOnce(&Buffer, &Layout) -> Result<Buffer>,
    ) -> Result<Tensor> {
        let out = f(&self.0.storage.read(), &self.0.layout)?;
        Tensor::from_buffer(out, self.shape())
    }

    /// `map_storage` for a kernel whose result has another shape.
    pub(crate) fn map_storage_to(
        &self,
        shape: &[usize],
        f: impl FnOnce(&Buffer, &Layout) -> Result<Buffer>,
    ) -> Result<Tensor> {
        let out = f(&self.0.storage.read(), &self.0.layout)?;
        Tensor::from_buffer(out, shape)
    }

    /// Runs an in-place update of this tensor's storage from `g`'s, with `state`'s storages
    /// updated too (all distinct: the caller checks that nothing aliases).
    #[allow(clippy::type_complexity)]
    pub(crate) fn update_storages(
        &self,
        g: &Tensor,
        state: &[&Tensor],
        f: impl FnOnce(
            &mut Buffer,
            &Layout,
            (&Buffer, &Layout),
            &mut [(&mut Buffer, &Layout)],
        ) -> Result<()>,
    ) -> Result<()> {
        let gg = g.0.storage.read();
        let mut pw = self.0.storage.write();
        let mut guards: Vec<_> = state.iter().map(|t| t.0.storage.write()).collect();
        let mut st: Vec<(&mut Buffer, &Layout)> = guards
            .iter_mut()
            .zip(state)
            .map(|(w, t)| (&mut **w, t.layout()))
            .collect();
        f(&mut pw, &self.0.layout, (&gg, g.layout()), &mut st)
    }

    /// Where this host tensor's elements are in memory, for sharing them with another
    /// library (DLPack): the address of the first element, the dtype, shape and strides (in
    /// elements), and a handle that keeps the memory alive. A storage's host memory never
    /// moves while the storage lives (in-place kernels write into it), so the address stays
    /// valid as long as the handle. Host tensors only.
    pub fn host_memory(&self) -> Result<HostMemory> {
        let addr = {
            let guard = self.0.storage.read();
            match &*guard {
                Buffer::Cpu(s) => {
                    // (the view's first element: its offset counts elements)
                    crate::with_storage!(s, v => v.as_ptr().wrapping_add(self.0.layout.offset) as usize)
                }
                #[cfg(feature = "gpu")]
                Buffer::Gpu(_) => {
                    return Err(Error::Device(
                        "host_memory: the tensor is on the gpu; move it with .cpu() first".into(),
                    ))
                }
            }
        };
        Ok(HostMemory {
            addr,
            dtype: self.dtype(),
            shape: self.shape().to_vec(),
            strides: self.0.layout.strides.to_vec(),
            _keep: self.0.storage.clone(),
        })
    }

    /// The shared storage itself (autograd records its version when a rule saves it).
    pub(crate) fn storage_arc(&self) -> &Arc<Storage> {
        &self.0.storage
    }

    /// How many in-place writes this tensor's storage has seen (PyTorch's `_version`).
    pub fn version(&self) -> u64 {
        self.0.storage.version()
    }

    /// The address of the storage (two tensors with one address share their storage).
    pub(crate) fn storage_addr(&self) -> usize {
        Arc::as_ptr(&self.0.storage) as usize
    }

    /// Read access to the storage, for kernels over several tensors' storages.
    pub(crate) fn storage_guard(&self) -> std::sync::RwLockReadGuard<'_, Buffer> {
        self.0.storage.read()
    }

    /// Write access to the storage, for kernels that update a tensor in place (the caller
    /// checks that no storage it also reads is this one).
    pub(crate) fn storage_guard_mut(&self) -> std::sync::RwLockWriteGuard<'_, Buffer> {
        self.0.storage.write()
    }

    /// A view of the same storage under another layout (no autograd recorded; the caller
    /// records the view's backward). It remembers the root of its view chain, so in-place
    /// writes through it reach that tensor's history (see `inplace.rs`).
    pub(crate) fn view_with(&self, layout: Layout) -> Tensor {
        let checked = inplace::REWRITES.load(Ordering::Acquire);
        let (root, seen) = match &self.0.base {
            Some(b) if b.root.strong_count() > 0 => {
                // up to date with the root first, so its `seen` is the root's count now
                self.refresh_view();
                (b.root.clone(), b.seen.load(Ordering::Acquire))
            }
            _ => (
                Arc::downgrade(&self.0),
                self.0.rebases.load(Ordering::Acquire),
            ),
        };
        Tensor(Arc::new(Inner {
            storage: self.0.storage.clone(),
            layout,
            requires_grad: AtomicBool::new(false),
            grad_fn: None,
            rewritten: std::sync::OnceLock::new(),
            grad: Mutex::new(None),
            base: Some(ViewBase {
                root,
                seen: AtomicU64::new(seen),
                checked: AtomicU64::new(checked),
            }),
            rebases: AtomicU64::new(0),
        }))
    }

    // ---------------------------------------------------------------- data access

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
            CpuStorage::F64(v) => Ok(v),
            other => crate::with_storage!(&other, v => conv(v)),
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
        Ok(autograd::record_higher(
            out,
            "ContiguousBackward",
            &[self],
            Default::default(),
            |g| Ok(vec![Some(g.clone())]),
        ))
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
        Ok(autograd::record_higher(
            out,
            "CloneBackward",
            &[self],
            Default::default(),
            |g| Ok(vec![Some(g.clone())]),
        ))
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
        Ok(autograd::record_higher(
            out,
            "ToCopyBackward",
            &[self],
            Default::default(),
            move |g| Ok(vec![Some(g.cast(src)?)]),
        ))
    }
}

mod inplace;
mod views;
