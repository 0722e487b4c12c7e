//! The ops, each with its forward kernel and its derivative rule (recorded through
//! [`crate::autograd::record`]). Derivative rules sit next to their forward code, with the
//! maths in a one-line comment.

pub mod binary;
pub mod conv;
pub mod index;
pub mod matmul;
pub mod nn;
pub mod reduce;
pub mod sort;
pub mod table;
pub mod unary;

pub use binary::{BinaryOp, CmpOp, LogicOp};
pub use index::IndexItem;
pub use unary::UnaryOp;
