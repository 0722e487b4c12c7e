//! Storage: the reference-counted element buffer that views share.

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::tensor::Device;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Runs `$body` with `$v` bound to the elements of each variant of a [`CpuStorage`]
/// (by reference or value as `$s` is given), wrapping the result back into the same
/// variant: the one place that lists the host dtypes for dtype-generic moves.
#[macro_export]
macro_rules! each_storage {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::storage::CpuStorage::Bool($v) => $crate::storage::CpuStorage::Bool($body),
            $crate::storage::CpuStorage::U8($v) => $crate::storage::CpuStorage::U8($body),
            $crate::storage::CpuStorage::I32($v) => $crate::storage::CpuStorage::I32($body),
            $crate::storage::CpuStorage::I64($v) => $crate::storage::CpuStorage::I64($body),
            $crate::storage::CpuStorage::F16($v) => $crate::storage::CpuStorage::F16($body),
            $crate::storage::CpuStorage::BF16($v) => $crate::storage::CpuStorage::BF16($body),
            $crate::storage::CpuStorage::F32($v) => $crate::storage::CpuStorage::F32($body),
            $crate::storage::CpuStorage::F64($v) => $crate::storage::CpuStorage::F64($body),
        }
    };
}

/// Like [`each_storage!`] for a body whose value is not a vector (nothing is rewrapped).
#[macro_export]
macro_rules! with_storage {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::storage::CpuStorage::Bool($v) => $body,
            $crate::storage::CpuStorage::U8($v) => $body,
            $crate::storage::CpuStorage::I32($v) => $body,
            $crate::storage::CpuStorage::I64($v) => $body,
            $crate::storage::CpuStorage::F16($v) => $body,
            $crate::storage::CpuStorage::BF16($v) => $body,
            $crate::storage::CpuStorage::F32($v) => $body,
            $crate::storage::CpuStorage::F64($v) => $body,
        }
    };
}

/// Host elements of one dtype.
#[derive(Debug, Clone)]
pub enum CpuStorage {
    /// booleans
    Bool(Vec<bool>),
    /// 8-bit unsigned integers
    U8(Vec<u8>),
    /// 32-bit integers
    I32(Vec<i32>),
    /// 64-bit integers
    I64(Vec<i64>),
    /// half-precision floats
    F16(Vec<half::f16>),
    /// bfloat16 floats
    BF16(Vec<half::bf16>),
    /// 32-bit floats
    F32(Vec<f32>),
    /// 64-bit floats
    F64(Vec<f64>),
}

impl CpuStorage {
    /// The dtype of the elements.
    #[inline]
    pub fn dtype(&self) -> DType {
        with_storage!(self, v => crate::storage::elem_dtype(v))
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        with_storage!(self, v => v.len())
    }

    /// Whether the storage holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All the elements converted to the compute dtype of a storage-only dtype
    /// ([`DType::compute`]), position for position so a layout over this storage reads the
    /// converted one alike; `None` when the dtype is computed as it is.
    pub fn widened(&self) -> Option<CpuStorage> {
        fn each<S: Element, D: Element>(v: &[S], f: impl Fn(S) -> D) -> Vec<D> {
            v.iter().map(|&x| f(x)).collect()
        }
        Some(match self {
            CpuStorage::U8(v) => CpuStorage::I64(each(v, |x| x as i64)),
            CpuStorage::I32(v) => CpuStorage::I64(each(v, |x| x as i64)),
            CpuStorage::F16(v) => CpuStorage::F32(each(v, |x| x.to_f32())),
            CpuStorage::BF16(v) => CpuStorage::F32(each(v, |x| x.to_f32())),
            _ => return None,
        })
    }

    /// A storage of the compute dtype converted back to the storage-only dtype `to`
    /// (integers wrap, floats round to nearest even); any other storage as it is.
    pub fn narrowed(self, to: DType) -> CpuStorage {
        if !to.is_narrow() || self.dtype() != to.compute() {
            return self;
        }
        match (self, to) {
            (CpuStorage::I64(v), DType::U8) => CpuStorage::U8(v.iter().map(|&x| x as u8).collect()),
            (CpuStorage::I64(v), DType::I32) => {
                CpuStorage::I32(v.iter().map(|&x| x as i32).collect())
            }
            (CpuStorage::F32(v), DType::F16) => {
                CpuStorage::F16(v.iter().map(|&x| half::f16::from_f32(x)).collect())
            }
            (CpuStorage::F32(v), DType::BF16) => {
                CpuStorage::BF16(v.iter().map(|&x| half::bf16::from_f32(x)).collect())
            }
            (s, _) => s,
        }
    }
}

/// The dtype of a slice of elements (for `with_storage!`).
pub(crate) fn elem_dtype<T: Element>(_: &[T]) -> DType {
    T::DTYPE
}

/// A tensor's elements on one device: the storage-level seam. Each variant is a backend's
/// storage type; the ops reach them through the dispatching methods in `crate::backend`,
/// never by matching here. The dtype is the storage's own (a GPU bool says Bool).
#[derive(Debug)]
pub enum Buffer {
    /// host memory
    Cpu(CpuStorage),
    /// GPU memory (float32 words: float32 elements, or bools as 0/1)
    #[cfg(feature = "gpu")]
    Gpu(crate::backend::wgpu::WgpuStorage),
}

impl Buffer {
    /// The dtype of the elements.
    #[inline]
    pub fn dtype(&self) -> DType {
        match self {
            Buffer::Cpu(c) => c.dtype(),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(g) => g.dtype,
        }
    }

    /// The device holding the elements.
    pub fn device(&self) -> Device {
        match self {
            Buffer::Cpu(_) => Device::Cpu,
            #[cfg(feature = "gpu")]
            Buffer::Gpu(_) => Device::Gpu,
        }
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        match self {
            Buffer::Cpu(c) => c.len(),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(g) => g.len(),
        }
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Typed access to a [`Buffer`].
pub trait BufferElement: Element {
    /// The elements if the buffer holds this type.
    fn slice(b: &Buffer) -> Option<&[Self]>;
    /// Mutable elements if the buffer holds this type.
    fn slice_mut(b: &mut Buffer) -> Option<&mut [Self]>;
    /// Wraps a vector into a buffer.
    fn wrap(v: Vec<Self>) -> Buffer;
    /// The vector of a host storage of this type.
    fn unwrap(s: CpuStorage) -> Option<Vec<Self>>;
    /// The elements of a host storage of this type.
    fn of(s: &CpuStorage) -> Option<&[Self]>;
    /// Wraps a vector into a host storage.
    fn host(v: Vec<Self>) -> CpuStorage;
}

macro_rules! impl_buffer_element {
    ($t:ty, $v:ident) => {
        impl BufferElement for $t {
            #[inline(always)]
            fn slice(b: &Buffer) -> Option<&[Self]> {
                match b {
                    Buffer::Cpu(CpuStorage::$v(v)) => Some(v),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
            #[inline(always)]
            fn slice_mut(b: &mut Buffer) -> Option<&mut [Self]> {
                match b {
                    Buffer::Cpu(CpuStorage::$v(v)) => Some(v),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
            #[inline(always)]
            fn wrap(v: Vec<Self>) -> Buffer {
                Buffer::Cpu(CpuStorage::$v(v))
            }
            #[inline(always)]
            fn unwrap(s: CpuStorage) -> Option<Vec<Self>> {
                match s {
                    CpuStorage::$v(v) => Some(v),
                    _ => None,
                }
            }
            #[inline(always)]
            fn of(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$v(v) => Some(v),
                    _ => None,
                }
            }
            #[inline(always)]
            fn host(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$v(v)
            }
        }
    };
}
impl_buffer_element!(bool, Bool);
impl_buffer_element!(u8, U8);
impl_buffer_element!(i32, I32);
impl_buffer_element!(i64, I64);
impl_buffer_element!(half::f16, F16);
impl_buffer_element!(half::bf16, BF16);
impl_buffer_element!(f32, F32);
impl_buffer_element!(f64, F64);

/// Shared storage: the elements behind a lock, with their dtype and device stated once
/// (fixed for the storage's life: in-place updates keep both). The lock lets in-place
/// updates (optimizer steps) coexist with views.
#[derive(Debug)]
pub struct Storage {
    dtype: DType,
    device: Device,
    buf: RwLock<Buffer>,
    /// the elements are another library's memory (`alloc::lend`)
    lent: bool,
    /// how many times the elements were opened for writing: a backward rule that saved
    /// this storage checks it is unchanged (PyTorch's version counter)
    version: std::sync::atomic::AtomicU64,
}

impl Storage {
    /// Wraps a buffer.
    #[inline]
    pub fn new(buf: Buffer) -> Storage {
        Storage {
            dtype: buf.dtype(),
            device: buf.device(),
            buf: RwLock::new(buf),
            lent: false,
            version: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Wraps a host buffer over memory another library owns (`alloc::lend`): never
    /// exclusive, so nothing that updates a buffer it believes private (a gradient
    /// accumulated in place) takes it over.
    pub(crate) fn lent(buf: Buffer) -> Storage {
        Storage {
            lent: true,
            ..Storage::new(buf)
        }
    }

    /// The elements' dtype.
    #[inline]
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device holding the elements.
    #[inline]
    pub fn device(&self) -> Device {
        self.device
    }

    /// Whether no other storage shares these elements (a gpu buffer may be read under
    /// two dtypes, see `Tensor::with_dtype`).
    pub fn exclusive(&self) -> bool {
        if self.lent {
            return false;
        }
        match &*self.read() {
            Buffer::Cpu(_) => true,
            #[cfg(feature = "gpu")]
            Buffer::Gpu(g) => std::sync::Arc::strong_count(&g.buf) == 1,
        }
    }

    /// Read access (poisoning is ignored: buffers hold plain numbers, always valid).
    pub fn read(&self) -> RwLockReadGuard<'_, Buffer> {
        self.buf.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access; counts as a modification (see `version`).
    pub fn write(&self) -> RwLockWriteGuard<'_, Buffer> {
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.buf.write().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times the elements were opened for writing (in place) so far.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }
}

pub(crate) fn oom(n: usize, size: usize) -> Error {
    Error::Memory(format!(
        "cannot allocate {n} elements ({:.1} GiB)",
        (n as f64) * (size as f64) / (1u64 << 30) as f64
    ))
}

/// An empty vector with room for `n` elements, or `MemoryError` instead of an abort.
pub fn try_vec<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| oom(n, std::mem::size_of::<T>()))?;
    Ok(v)
}

/// The first `n` items of `items` collected into a vector allocated up front, or
/// `MemoryError` (`collect` would abort on a failed allocation).
pub fn try_collect<T>(n: usize, items: impl IntoIterator<Item = T>) -> Result<Vec<T>> {
    let mut v = try_vec(n)?;
    v.extend(items.into_iter().take(n));
    Ok(v)
}

/// A vector of `n` copies of `value`, or `MemoryError`.
pub fn try_filled<T: Clone>(n: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_vec(n)?;
    v.resize(n, value);
    Ok(v)
}
