//! The core's error type. Each variant maps to one Python exception class in the bindings.

/// Errors raised by tensor operations. Messages name the op and the values at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit the op (maps to `ShapeError(ValueError)`).
    #[error("{0}")]
    Shape(String),
    /// A dtype the op does not accept (maps to `DTypeError(TypeError)`).
    #[error("{0}")]
    DType(String),
    /// A device the op cannot use (maps to `DeviceError(RuntimeError)`).
    #[error("{0}")]
    Device(String),
    /// An index out of range (maps to `IndexError`).
    #[error("{0}")]
    Index(String),
    /// A bad argument value (maps to `ValueError`).
    #[error("{0}")]
    Value(String),
    /// An allocation that could not be made (maps to `MemoryError`).
    #[error("{0}")]
    Memory(String),
    /// A max, min or arg-reduction over a zero-size dim, which has no identity (maps to
    /// `EmptyReductionError`: NumPy raises a ValueError there, PyTorch an IndexError, and
    /// the class is both).
    #[error("{0}")]
    EmptyReduction(String),
    /// Misuse of the autograd graph (maps to `RuntimeError`).
    #[error("{0}")]
    Autograd(String),
    /// Work stopped on request, between chunks of a long kernel (maps to
    /// `KeyboardInterrupt`, the usual reason).
    #[error("{0}")]
    Interrupted(String),
}

/// Shorthand for results of the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Builds an [`Error::Shape`] with `format!` arguments.
#[macro_export]
macro_rules! shape_err {
    ($($t:tt)*) => { $crate::error::Error::Shape(format!($($t)*)) };
}

/// Builds an [`Error::DType`] with `format!` arguments.
#[macro_export]
macro_rules! dtype_err {
    ($($t:tt)*) => { $crate::error::Error::DType(format!($($t)*)) };
}

/// Builds an [`Error::Value`] with `format!` arguments.
#[macro_export]
macro_rules! value_err {
    ($($t:tt)*) => { $crate::error::Error::Value(format!($($t)*)) };
}
