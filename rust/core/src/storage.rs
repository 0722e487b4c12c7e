//! Storage: the reference-counted element buffer that views share.

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::tensor::Device;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Host elements of one dtype.
#[derive(Debug)]
pub enum CpuStorage {
    /// booleans
    Bool(Vec<bool>),
    /// 64-bit integers
    I64(Vec<i64>),
    /// 32-bit floats
    F32(Vec<f32>),
    /// 64-bit floats
    F64(Vec<f64>),
}

impl CpuStorage {
    /// The dtype of the elements.
    #[inline]
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::Bool(_) => DType::Bool,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
        }
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::Bool(v) => v.len(),
            CpuStorage::I64(v) => v.len(),
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
        }
    }

    /// Whether the storage holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
            Buffer::Gpu(g) => g.buf.len(),
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
        }
    };
}
impl_buffer_element!(bool, Bool);
impl_buffer_element!(i64, I64);
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
}

impl Storage {
    /// Wraps a buffer.
    #[inline]
    pub fn new(buf: Buffer) -> Storage {
        Storage {
            dtype: buf.dtype(),
            device: buf.device(),
            buf: RwLock::new(buf),
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

    /// Write access.
    pub fn write(&self) -> RwLockWriteGuard<'_, Buffer> {
        self.buf.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn oom(n: usize, size: usize) -> Error {
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
