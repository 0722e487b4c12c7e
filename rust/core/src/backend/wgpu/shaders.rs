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
pub const OPTIM: &str = concat!(
    include_str!("../../../../../shaders/adam_step.wgsl"),
    include_str!("../../../../../shaders/optim.wgsl")
);
/// Adam's element update, the prelude of the multi-tensor kernel (generated in Rust).
pub const ADAM_STEP: &str = include_str!("../../../../../shaders/adam_step.wgsl");
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

/// The most tensors one multi-tensor Adam dispatch updates (4 buffers each).
pub const ADAM_MULTI_TENSORS: usize = 8;

/// The multi-tensor Adam kernel for `tensors` tensors (at most `ADAM_MULTI_TENSORS`):
/// (weight, gradient, first and second moment) buffer quadruples at group 1's bindings,
/// each thread finding its tensor from the element counts, then adam_step.wgsl's update.
/// Generated, because WGSL cannot index bindings: one `case` per tensor.
pub fn adam_multi_source(tensors: usize) -> &'static str {
    static MADE: std::sync::Mutex<Vec<(usize, &'static str)>> = std::sync::Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = made.iter().find(|(k, _)| *k == tensors) {
        return s;
    }
    let src: &'static str = {
        use std::fmt::Write;
        let mut s = String::from(ADAM_STEP);
        s.push_str(
            "\nstruct Params {\n    count: u32,\n    row: u32,\n    _pad: vec2<u32>,\n    \
             h: vec4<f32>,\n    k: vec4<f32>,\n    n: array<vec4<u32>, 2>,\n}\n\n\
             @group(0) @binding(0) var<uniform> p: Params;\n",
        );
        for t in 0..tensors {
            for (j, name) in ["w", "g", "m", "v"].iter().enumerate() {
                let _ = writeln!(
                    s,
                    "@group(1) @binding({}) var<storage, read_write> {name}{t}: array<f32>;",
                    4 * t + j
                );
            }
        }
        s.push_str(
            "\n@compute @workgroup_size(64)\n\
             fn adam_multi_main(@builtin(global_invocation_id) gid: vec3<u32>) {\n    \
             var i = gid.x + gid.y * p.row;\n    var t = 0u;\n    loop {\n        \
             if (t >= p.count) { return; }\n        let n = p.n[t / 4u][t % 4u];\n        \
             if (i < n) { break; }\n        i -= n;\n        t += 1u;\n    }\n    \
             switch t {\n",
        );
        for t in 0..tensors {
            let _ = writeln!(
                s,
                "        case {t}u: {{\n            \
                 let r = adam_step(w{t}[i], g{t}[i], m{t}[i], v{t}[i], p.h, p.k);\n            \
                 w{t}[i] = r.x;\n            m{t}[i] = r.y;\n            v{t}[i] = r.z;\n        }}"
            );
        }
        s.push_str("        default: {}\n    }\n}\n");
        Box::leak(s.into_boxed_str())
    };
    made.push((tensors, src));
    src
}

/// The shaders generated at run time, with their names (validated like `ALL`).
pub fn generated() -> [(&'static str, &'static str); 1] {
    [("adam_multi", adam_multi_source(ADAM_MULTI_TENSORS))]
}
