//! Storage: the reference-counted element buffer that views share.

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A typed element buffer (host memory, or GPU memory with the gpu feature).
#[derive(Debug)]
pub enum Buffer {
    /// booleans
    Bool(Vec<bool>),
    /// 64-bit integers
    I64(Vec<i64>),
    /// 32-bit floats
    F32(Vec<f32>),
    /// 64-bit floats
    F64(Vec<f64>),
    /// 32-bit floats in GPU memory
    #[cfg(feature = "gpu")]
    Gpu(crate::gpu::GpuBuffer),
}

impl Buffer {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Buffer::Bool(_) => DType::Bool,
            Buffer::I64(_) => DType::I64,
            Buffer::F32(_) => DType::F32,
            Buffer::F64(_) => DType::F64,
            #[cfg(feature = "gpu")]
            Buffer::Gpu(_) => DType::F32,
        }
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        match self {
            Buffer::Bool(v) => v.len(),
            Buffer::I64(v) => v.len(),
            Buffer::F32(v) => v.len(),
            Buffer::F64(v) => v.len(),
            #[cfg(feature = "gpu")]
            Buffer::Gpu(b) => b.len(),
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
}

macro_rules! impl_buffer_element {
    ($t:ty, $v:ident) => {
        impl BufferElement for $t {
            #[inline(always)]
            fn slice(b: &Buffer) -> Option<&[Self]> {
                match b {
                    Buffer::$v(v) => Some(v),
                    _ => None,
                }
            }
            #[inline(always)]
            fn slice_mut(b: &mut Buffer) -> Option<&mut [Self]> {
                match b {
                    Buffer::$v(v) => Some(v),
                    _ => None,
                }
            }
            #[inline(always)]
            fn wrap(v: Vec<Self>) -> Buffer {
                Buffer::$v(v)
            }
        }
    };
}
impl_buffer_element!(bool, Bool);
impl_buffer_element!(i64, I64);
impl_buffer_element!(f32, F32);
impl_buffer_element!(f64, F64);

/// Shared storage. The lock lets in-place updates (optimizer steps) coexist with views.
#[derive(Debug)]
pub struct Storage {
    buf: RwLock<Buffer>,
}

impl Storage {
    /// Wraps a buffer.
    pub fn new(buf: Buffer) -> Storage {
        Storage {
            buf: RwLock::new(buf),
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
