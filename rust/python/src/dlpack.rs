//! DLPack export (`Tensor.__dlpack__`, `__dlpack_device__`): NumPy, PyTorch and JAX read a
//! host tensor's memory without a copy. The capsule holds a `DLManagedTensor` whose
//! manager context owns a handle on the storage, so the memory lives as long as the
//! consumer's array; the consumer calls the deleter, or the capsule's destructor does when
//! it was never consumed. The layout is the DLPack header's (dlpack.h, version 0.8 ABI).

use crate::prelude::*;
use pyo3::ffi;
use std::ffi::{c_char, c_void};

#[repr(C)]
struct DlDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DlDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DlTensor {
    data: *mut c_void,
    device: DlDevice,
    ndim: i32,
    dtype: DlDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DlManagedTensor {
    dl_tensor: DlTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DlManagedTensor)>,
}

/// DLPack 1.0's managed tensor, with a version and flags (0: writable, not a copy).
#[repr(C)]
struct DlManagedTensorVersioned {
    major: u32,
    minor: u32,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DlManagedTensorVersioned)>,
    flags: u64,
    dl_tensor: DlTensor,
}

/// What a capsule points at: the managed tensor first (its address is the capsule's
/// pointer), then the shape and strides it points into and the storage handle.
#[repr(C)]
struct Export<M> {
    managed: M,
    shape: Vec<i64>,
    strides: Vec<i64>,
    _memory: ferrograd_core::HostMemory,
}

const KDL_CPU: i32 = 1;
const KDL_VULKAN: i32 = 7;
const CAPSULE: &std::ffi::CStr = c"dltensor";
const CAPSULE_VERSIONED: &std::ffi::CStr = c"dltensor_versioned";
/// DLPack's flag for a copy made by the producer
const FLAG_IS_COPIED: u64 = 1 << 1;

/// DLPack's (type code, bits) for a dtype: int 0, uint 1, float 2, bfloat 4, bool 6.
fn dl_dtype(dt: DType) -> DlDataType {
    let (code, bits) = match dt {
        DType::Bool => (6, 8),
        DType::U8 => (1, 8),
        DType::I32 => (0, 32),
        DType::I64 => (0, 64),
        DType::F16 => (2, 16),
        DType::BF16 => (4, 16),
        DType::F32 => (2, 32),
        DType::F64 => (2, 64),
    };
    DlDataType {
        code,
        bits,
        lanes: 1,
    }
}

/// The consumer's (or the capsule's) call when it is done: frees the export, dropping its
/// storage handle. Needs no GIL (no Python object inside).
unsafe extern "C" fn deleter<M>(m: *mut M) {
    if !m.is_null() {
        // SAFETY: `m` is the first field of a Box<Export<M>> leaked in `__dlpack__`
        drop(unsafe { Box::from_raw(m as *mut Export<M>) });
    }
}

/// A capsule never consumed (still under its own name) frees its export itself; a
/// renamed ("used_...") one belongs to its consumer, which calls the deleter.
unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: called by Python with a live capsule made in `__dlpack__`
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, CAPSULE.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(capsule, CAPSULE.as_ptr());
            deleter(m as *mut DlManagedTensor);
        } else if ffi::PyCapsule_IsValid(capsule, CAPSULE_VERSIONED.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(capsule, CAPSULE_VERSIONED.as_ptr());
            deleter(m as *mut DlManagedTensorVersioned);
        }
        ffi::PyErr_Clear();
    }
}

/// A capsule named `name` around the leaked export `raw` (freed again if Python fails).
///
/// # Safety
/// `raw` must come from `Box::into_raw` of an Export whose first field is the managed
/// tensor the capsule name stands for.
unsafe fn capsule<'py, M>(
    py: Python<'py>,
    raw: *mut Export<M>,
    name: &'static std::ffi::CStr,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: as the caller's
    unsafe {
        let cap = ffi::PyCapsule_New(
            raw as *mut c_void,
            name.as_ptr() as *const c_char,
            Some(capsule_destructor),
        );
        if cap.is_null() {
            drop(Box::from_raw(raw));
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, cap))
    }
}

/// The two managed-tensor layouts a capsule may hold.
trait Managed: Sized {
    /// the capsule's name
    const NAME: &'static std::ffi::CStr;
    /// a managed tensor around `t` (`copied`: the producer made a copy)
    fn new(t: DlTensor, copied: bool) -> Self;
    fn tensor(&mut self) -> &mut DlTensor;
    fn set_context(&mut self, ctx: *mut c_void);
}

impl Managed for DlManagedTensor {
    const NAME: &'static std::ffi::CStr = CAPSULE;
    fn new(t: DlTensor, _copied: bool) -> Self {
        DlManagedTensor {
            dl_tensor: t,
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(deleter::<DlManagedTensor>),
        }
    }
    fn tensor(&mut self) -> &mut DlTensor {
        &mut self.dl_tensor
    }
    fn set_context(&mut self, ctx: *mut c_void) {
        self.manager_ctx = ctx;
    }
}

impl Managed for DlManagedTensorVersioned {
    const NAME: &'static std::ffi::CStr = CAPSULE_VERSIONED;
    fn new(t: DlTensor, copied: bool) -> Self {
        DlManagedTensorVersioned {
            major: 1,
            minor: 0,
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(deleter::<DlManagedTensorVersioned>),
            flags: if copied { FLAG_IS_COPIED } else { 0 },
            dl_tensor: t,
        }
    }
    fn tensor(&mut self) -> &mut DlTensor {
        &mut self.dl_tensor
    }
    fn set_context(&mut self, ctx: *mut c_void) {
        self.manager_ctx = ctx;
    }
}

/// A capsule holding the host memory `mem` as managed tensor `M`.
fn export<M: Managed>(
    py: Python<'_>,
    mem: ferrograd_core::HostMemory,
    copied: bool,
) -> PyResult<Bound<'_, PyAny>> {
    let tensor = DlTensor {
        data: mem.addr as *mut c_void,
        device: DlDevice {
            device_type: KDL_CPU,
            device_id: 0,
        },
        ndim: mem.shape.len() as i32,
        dtype: dl_dtype(mem.dtype),
        shape: std::ptr::null_mut(),
        strides: std::ptr::null_mut(),
        byte_offset: 0,
    };
    let mut boxed = Box::new(Export {
        managed: M::new(tensor, copied),
        shape: mem.shape.iter().map(|&d| d as i64).collect(),
        strides: mem.strides.iter().map(|&s| s as i64).collect(),
        _memory: mem,
    });
    // the shape and strides the tensor points at live in the same (heap) export
    let e = &mut *boxed;
    e.managed.tensor().shape = e.shape.as_mut_ptr();
    e.managed.tensor().strides = e.strides.as_mut_ptr();
    let raw = Box::into_raw(boxed);
    // SAFETY: `raw` is a live Export whose first field is the managed tensor `M::NAME`
    // stands for
    unsafe {
        (*raw).managed.set_context(raw as *mut c_void);
        capsule(py, raw, M::NAME)
    }
}

#[pymethods]
impl PyTensor {
    /// The DLPack capsule of this host tensor (`np.from_dlpack(t)`, `torch.from_dlpack(t)`):
    /// the consumer views this tensor's memory, so writes through either side show in the
    /// other. As PyTorch's, a tensor that requires grad is refused (export `t.detach()`,
    /// whose writes autograd does not see); a GPU tensor is refused (export `t.cpu()`).
    /// `copy=True` exports a copy; `stream` and `dl_device` are accepted for the host.
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<Bound<'py, PyAny>>,
        max_version: Option<Bound<'py, PyAny>>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = stream;
        // DLPack 1.0 (versioned, with flags: NumPy makes arrays from older capsules
        // read-only) for consumers that ask for it
        let versioned = match &max_version {
            Some(v) if !v.is_none() => v.extract::<(u32, u32)>()?.0 >= 1,
            _ => false,
        };
        if let Some((kind, _)) = dl_device {
            if kind != KDL_CPU {
                return Err(pyo3::exceptions::PyBufferError::new_err(format!(
                    "__dlpack__: ferrograd exports to the host (device type {KDL_CPU}), not to device type {kind}"
                )));
            }
        }
        if self.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "__dlpack__: cannot export a tensor that requires grad (autograd would not see writes \
                 through the other library); use tensor.detach()",
            ));
        }
        if self.t.device() != ferrograd_core::Device::Cpu {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "__dlpack__: the tensor is on the gpu; export tensor.cpu()",
            ));
        }
        let t = if copy == Some(true) {
            self.t.detach().clone_tensor().map_err(err)?
        } else {
            self.t.clone()
        };
        let mem = t.host_memory().map_err(err)?;
        if versioned {
            export::<DlManagedTensorVersioned>(py, mem, copy == Some(true))
        } else {
            export::<DlManagedTensor>(py, mem, copy == Some(true))
        }
    }

    /// This host tensor's bits read as `dtype` over the same memory, or None when they
    /// cannot be aliased (the caller copies; see `Tensor::view_dtype`).
    fn _view_dtype(&self, dtype: PyDType) -> Option<PyTensor> {
        self.t.view_dtype(dtype.into()).map(wrap)
    }

    /// `(device type, device id)` in DLPack's terms: (1, 0) for the host; a GPU tensor
    /// answers (7, 0) (Vulkan), though only host tensors export.
    fn __dlpack_device__(&self) -> (i32, i32) {
        match self.t.device() {
            ferrograd_core::Device::Cpu => (KDL_CPU, 0),
            _ => (KDL_VULKAN, 0),
        }
    }
}

/// DLPack 1.0's flag for memory the consumer must not write
const FLAG_READ_ONLY: u64 = 1;

/// The dtype for DLPack's (type code, bits), where ferrograd has one.
fn from_dl_dtype(d: &DlDataType) -> Option<DType> {
    if d.lanes != 1 {
        return None;
    }
    Some(match (d.code, d.bits) {
        (6, 8) => DType::Bool,
        (1, 8) => DType::U8,
        (0, 32) => DType::I32,
        (0, 64) => DType::I64,
        (2, 16) => DType::F16,
        (4, 16) => DType::BF16,
        (2, 32) => DType::F32,
        (2, 64) => DType::F64,
        _ => return None,
    })
}

/// A host tensor sharing the memory of `obj` (anything with `__dlpack__`), or `None` when
/// it cannot be shared (not host memory, read-only, a dtype or layout ferrograd's storage
/// cannot view, bools); the caller then copies. The capsule is kept, unconsumed, until
/// the last view of the storage is gone, and its destructor hands the memory back to the
/// producer (DLPack's rule for a capsule no consumer renamed).
#[pyfunction]
pub(crate) fn _from_dlpack_shared(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
) -> PyResult<Option<PyTensor>> {
    if let Ok(dev) = obj.call_method0("__dlpack_device__") {
        if dev.extract::<(i32, i32)>()?.0 != KDL_CPU {
            return Ok(None);
        }
    }
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("max_version", (1, 0))?;
    let cap = match obj.call_method("__dlpack__", (), Some(&kwargs)) {
        Ok(c) => c,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) => {
            obj.call_method0("__dlpack__")?
        }
        Err(e) => return Err(e),
    };
    let raw = cap.as_ptr();
    // SAFETY: `raw` is a live object; a capsule under either name holds the managed tensor
    // of that layout, valid while the capsule is unconsumed and alive (kept by `release`)
    let (t, flags) = unsafe {
        if ffi::PyCapsule_IsValid(raw, CAPSULE_VERSIONED.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(raw, CAPSULE_VERSIONED.as_ptr())
                as *const DlManagedTensorVersioned;
            if (*m).major != 1 {
                return Ok(None);
            }
            (&(*m).dl_tensor, (*m).flags)
        } else if ffi::PyCapsule_IsValid(raw, CAPSULE.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(raw, CAPSULE.as_ptr()) as *const DlManagedTensor;
            (&(*m).dl_tensor, 0)
        } else {
            return Err(PyTypeError::new_err(
                "from_dlpack: __dlpack__ returned no unconsumed DLPack capsule",
            ));
        }
    };
    let Some(dtype) = from_dl_dtype(&t.dtype) else {
        return Ok(None);
    };
    if flags & FLAG_READ_ONLY != 0 || t.device.device_type != KDL_CPU || t.ndim < 0 {
        return Ok(None);
    }
    let ndim = t.ndim as usize;
    // SAFETY: DLPack's shape and (optional) strides arrays hold `ndim` entries
    let shape: Vec<i64> = unsafe { std::slice::from_raw_parts(t.shape, ndim).to_vec() };
    if shape.iter().any(|&n| n < 0) {
        return Ok(None);
    }
    let shape: Vec<usize> = shape.iter().map(|&n| n as usize).collect();
    let strides: Vec<isize> = if t.strides.is_null() {
        ferrograd_core::layout::contiguous_strides(&shape).to_vec()
    } else {
        // SAFETY: as above
        unsafe { std::slice::from_raw_parts(t.strides, ndim) }
            .iter()
            .map(|&s| s as isize)
            .collect()
    };
    let data = (t.data as *mut u8).wrapping_add(t.byte_offset as usize);
    let keep: Py<PyAny> = cap.clone().unbind();
    // dropping the capsule (with the GIL, or queued by PyO3 until a thread holds it) runs
    // its destructor, which calls the producer's deleter
    let release: ferrograd_core::alloc::Release = Box::new(move || drop(keep));
    // SAFETY: the producer keeps the elements the shape and strides reach alive and in
    // place until its deleter runs, which is after `release`
    let shared = unsafe { Tensor::from_lent(data, dtype, &shape, &strides, release) };
    Ok(shared.map(wrap))
}

/// Registers the DLPack import function.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_from_dlpack_shared, m)?)
}
