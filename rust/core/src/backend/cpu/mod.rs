//! The host backend: kernels over contiguous slices, vectorized per instruction set.
