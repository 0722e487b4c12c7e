//! WGSL sources, included at compile time: each shader as the runtime compiles it, with
//! the shared prelude (common.wgsl) and the op table's generated part prepended.

/// Elementwise unary/binary kernels and unary backward.
pub const ELEMENTWISE: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/generated/elementwise_ops.wgsl"),
    include_str!("../../../../../shaders/elementwise.wgsl")
);
/// Tiled matrix product with a bias/activation epilogue.
pub const MATMUL: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/generated/elementwise_ops.wgsl"),
    include_str!("../../../../../shaders/matmul.wgsl")
);
/// The fast matrix product: 64 x 64 and 128 x 128 tiles, vec4 loads.
pub const MATMUL_VEC4: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/generated/elementwise_ops.wgsl"),
    include_str!("../../../../../shaders/matmul_vec4.wgsl")
);
/// The fast matrix product in more tile shapes, generated fully unrolled
/// (scripts/gen_matmul_tiled.py).
pub const MATMUL_TILED: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/generated/elementwise_ops.wgsl"),
    include_str!("../../../../../shaders/generated/matmul_tiled.wgsl")
);
/// Axis reductions (sum, mean, max, min, argmax).
pub const REDUCE: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/reduce.wgsl")
);
/// Dropout masks from the counter-based generator.
pub const DROPOUT: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/dropout.wgsl")
);
/// Row-wise log_softmax.
pub const SOFTMAX: &str = include_str!("../../../../../shaders/softmax.wgsl");
/// Batch normalization forward and backward.
pub const BATCHNORM: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/batchnorm.wgsl")
);
/// Optimizer updates in place (SGD, Adam/AdamW, RMSprop).
pub const OPTIM: &str = include_str!("../../../../../shaders/optim.wgsl");
/// Row gathers (index_select).
pub const GATHER: &str = include_str!("../../../../../shaders/gather.wgsl");
/// Sliding windows (convolution, pooling): unfold (im2col), fold (col2im), max pooling.
pub const CONV: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/conv.wgsl")
);
/// Convolution as an implicit matrix product (the windows read inside the tile loads).
pub const CONV_GEMM: &str = include_str!("../../../../../shaders/conv_gemm.wgsl");
/// Half-precision storage: packing float32 words into halves and back, by their bits.
pub const HALF: &str = include_str!("../../../../../shaders/half.wgsl");
/// Every shader as compiled (prelude and generated parts prepended), with its name.
pub const ALL: [(&str, &str); 13] = [
    ("half", HALF),
    ("conv", CONV),
    ("conv_gemm", CONV_GEMM),
    ("batchnorm", BATCHNORM),
    ("optim", OPTIM),
    ("matmul_vec4", MATMUL_VEC4),
    ("matmul_tiled", MATMUL_TILED),
    ("softmax", SOFTMAX),
    ("gather", GATHER),
    ("elementwise", ELEMENTWISE),
    ("matmul", MATMUL),
    ("reduce", REDUCE),
    ("dropout", DROPOUT),
];
