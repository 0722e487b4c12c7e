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
/// The tensor-core product (float16 operands, float32 accumulation): only for adapters
/// with the cooperative-matrix extension, so not in `ALL` (it needs the `f16` and
/// `wgpu_cooperative_matrix` capabilities to validate).
pub const MATMUL_COOP: &str = concat!(
    "enable f16;\nenable wgpu_cooperative_matrix;\n",
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/generated/elementwise_ops.wgsl"),
    include_str!("../../../../../shaders/matmul_coop.wgsl")
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
pub const SOFTMAX: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/softmax.wgsl")
);
/// Batch normalization forward and backward.
pub const BATCHNORM: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/batchnorm.wgsl"),
    include_str!("../../../../../shaders/batchnorm_bindings.wgsl")
);
/// Batch normalization's forward in one dispatch, in the multi-tensor layout.
pub const BATCHNORM_FUSED: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/batchnorm.wgsl"),
    include_str!("../../../../../shaders/batchnorm_fused.wgsl")
);
/// Optimizer updates in place (SGD, Adam/AdamW, RMSprop).
pub const OPTIM: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/optim_step.wgsl"),
    include_str!("../../../../../shaders/optim.wgsl")
);
/// The optimizers' element updates, the prelude of the multi-tensor kernels.
pub const OPTIM_STEP: &str = include_str!("../../../../../shaders/optim_step.wgsl");
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
pub const HALF: &str = concat!(
    include_str!("../../../../../shaders/common.wgsl"),
    include_str!("../../../../../shaders/half.wgsl")
);
/// Every shader as compiled (prelude and generated parts prepended), with its name.
pub const ALL: [(&str, &str); 14] = [
    ("half", HALF),
    ("batchnorm_fused", BATCHNORM_FUSED),
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

/// The most tensors one multi-tensor optimizer dispatch updates (Adam binds 4 buffers a
/// tensor, so the adapter's bindings stop it at 8 or 9; the unscaling binds 1, SGD 2 or 3).
pub const MULTI_TENSORS: usize = 32;

/// Which update a multi-tensor optimizer kernel makes, and so which buffers each tensor
/// binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiKind {
    /// Adam/AdamW: weight, gradient, first and second moment
    Adam,
    /// SGD with momentum: weight, gradient, momentum buffer
    SgdMomentum,
    /// plain SGD: weight, gradient
    Sgd,
    /// Adadelta: weight, gradient, squared-gradient and squared-step averages
    Adadelta,
    /// mixed precision's gradient unscaling: the gradient (times `h.x` in place), plus one
    /// shared flag after every tensor's binding, set to 1.0 where a gradient held inf or NaN
    Unscale,
}

impl MultiKind {
    /// Buffers each tensor binds.
    pub fn buffers(self) -> usize {
        match self {
            MultiKind::Adam | MultiKind::Adadelta => 4,
            MultiKind::SgdMomentum => 3,
            MultiKind::Sgd => 2,
            MultiKind::Unscale => 1,
        }
    }

    /// Buffers bound after every tensor's slots: a gated kernel's `found` flag and `aux`
    /// (an optimizer's count of skipped steps; Unscale's scale state), or the ungated
    /// Unscale's flag alone.
    pub fn trailing(self, gated: bool) -> usize {
        match (self, gated) {
            (_, true) => 2,
            (MultiKind::Unscale, false) => 1,
            _ => 0,
        }
    }

    /// The pipeline key of its kernel (`gated`: the variant `multi_optimizer_source` makes
    /// with `gated`).
    pub fn key(self, gated: bool) -> &'static str {
        match (self, gated) {
            (MultiKind::Adam, false) => "adam_multi",
            (MultiKind::SgdMomentum, false) => "sgd_momentum_multi",
            (MultiKind::Sgd, false) => "sgd_multi",
            (MultiKind::Adadelta, false) => "adadelta_multi",
            (MultiKind::Unscale, false) => "unscale_multi",
            (MultiKind::Adam, true) => "adam_multi_gated",
            (MultiKind::SgdMomentum, true) => "sgd_momentum_multi_gated",
            (MultiKind::Sgd, true) => "sgd_multi_gated",
            (MultiKind::Adadelta, true) => "adadelta_multi_gated",
            (MultiKind::Unscale, true) => "unscale_multi_gated",
        }
    }
}

/// The multi-tensor optimizer kernel of `kind` for `tensors` tensors (at most
/// `MULTI_TENSORS`): each tensor's buffers at group 1's next bindings, each thread finding
/// its tensor from the element counts, then optim_step.wgsl's update (or, for `Unscale`,
/// the gradient scaled and checked, the flag at the binding after the last tensor's).
/// Generated, because WGSL cannot index bindings: one `case` per tensor.
///
/// `gated` (mixed precision without a read-back, as PyTorch's fused optimizers with a
/// GradScaler): the binding after the tensors' is the flag Unscale set, the one after it
/// `aux`. An optimizer writes nothing where the flag is set (the skipped step; with flag 8,
/// one thread adds it to the count of skipped steps `aux[0]`), and Adam
/// takes its bias corrections from the step count `k.w` less the skipped steps `aux[0]`
/// (computed here in float32, where the ungated kernel takes host-made constants);
/// Unscale multiplies by `aux[1]`, the scale state's inverse scale.
pub fn multi_optimizer_source(kind: MultiKind, tensors: usize, gated: bool) -> &'static str {
    type Made = Vec<((MultiKind, usize, bool), &'static str)>;
    static MADE: std::sync::Mutex<Made> = std::sync::Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = made.iter().find(|(k, _)| *k == (kind, tensors, gated)) {
        return s;
    }
    use std::fmt::Write;
    let names: &[&str] = match kind {
        MultiKind::Unscale => &["w"],
        _ => &["w", "g", "m", "v"][..kind.buffers()],
    };
    let mut s = String::from(OPTIM_STEP);
    s.push_str(
        "\nstruct Params {\n    count: u32,\n    row: u32,\n    flags: u32,\n    _pad: u32,\n    \
         h: vec4<f32>,\n    k: vec4<f32>,\n    n: array<vec4<u32>, 8>,\n}\n\n\
         @group(0) @binding(0) var<uniform> p: Params;\n",
    );
    for t in 0..tensors {
        for (j, name) in names.iter().enumerate() {
            let _ = writeln!(
                s,
                "@group(1) @binding({}) var<storage, read_write> {name}{t}: array<f32>;",
                names.len() * t + j
            );
        }
    }
    let base = names.len() * tensors;
    if kind == MultiKind::Unscale {
        let _ = writeln!(
            s,
            "@group(1) @binding({base}) var<storage, read_write> found: array<atomic<u32>>;"
        );
    } else if gated {
        let _ = writeln!(
            s,
            "@group(1) @binding({base}) var<storage, read_write> found: array<u32>;"
        );
    }
    if gated {
        let _ = writeln!(
            s,
            "@group(1) @binding({}) var<storage, read_write> aux: array<f32>;",
            base + 1
        );
    }
    s.push_str(
        "\n@compute @workgroup_size(64)\n\
         fn multi_main(@builtin(global_invocation_id) gid: vec3<u32>) {\n",
    );
    if gated && kind != MultiKind::Unscale {
        // a skipped step: nothing moves (the flag is 1.0's bits or 0); one thread of the
        // dispatch flagged 8 counts it (no thread reads the count when the step is skipped,
        // and none writes it when it is not, so no dispatch races another)
        s.push_str(
            "    if (found[0] != 0u) {\n        \
             if ((p.flags & 8u) != 0u && gid.x == 0u && gid.y == 0u) { aux[0] = aux[0] + 1.0; }\n        \
             return;\n    }\n",
        );
    }
    if gated && kind == MultiKind::Adam {
        s.push_str("    let k = adam_device_k(p.h, p.k, aux[0]);\n");
    } else if kind == MultiKind::Adam {
        s.push_str("    let k = p.k;\n");
    }
    let inv = if gated { "aux[1]" } else { "p.h.x" };
    s.push_str(
        "    var i = gid.x + gid.y * p.row;\n    var t = 0u;\n    loop {\n        \
         if (t >= p.count) { return; }\n        let n = p.n[t / 4u][t % 4u];\n        \
         if (i < n) { break; }\n        i -= n;\n        t += 1u;\n    }\n    \
         switch t {\n",
    );
    for t in 0..tensors {
        let body = match kind {
            MultiKind::Adam => format!(
                "let r = adam_step(w{t}[i], g{t}[i], m{t}[i], v{t}[i], p.h, k);\n            \
                 w{t}[i] = r.x;\n            m{t}[i] = r.y;\n            v{t}[i] = r.z;"
            ),
            MultiKind::SgdMomentum => format!(
                "let r = sgd_step(w{t}[i], g{t}[i], m{t}[i], p.h, p.flags);\n            \
                 w{t}[i] = r.x;\n            m{t}[i] = r.y;"
            ),
            MultiKind::Adadelta => format!(
                "let r = adadelta_step(w{t}[i], g{t}[i], m{t}[i], v{t}[i], p.h);\n            \
                 w{t}[i] = r.x;\n            m{t}[i] = r.y;\n            v{t}[i] = r.z;"
            ),
            MultiKind::Sgd => format!(
                "let r = sgd_step(w{t}[i], g{t}[i], 0.0, p.h, p.flags);\n            \
                 w{t}[i] = r.x;"
            ),
            // inf and NaN have every exponent bit set; 0x3f800000 is 1.0's bits
            MultiKind::Unscale => format!(
                "let x = w{t}[i];\n            \
                 if ((bitcast<u32>(x) & 0x7fffffffu) >= 0x7f800000u) {{ \
                 atomicMax(&found[0], 0x3f800000u); }}\n            \
                 w{t}[i] = x * {inv};"
            ),
        };
        let _ = writeln!(s, "        case {t}u: {{\n            {body}\n        }}");
    }
    s.push_str("        default: {}\n    }\n}\n");
    let src: &'static str = Box::leak(s.into_boxed_str());
    made.push(((kind, tensors, gated), src));
    src
}

/// The shaders generated at run time, with their names (validated like `ALL`).
pub fn generated() -> Vec<(&'static str, &'static str)> {
    let kinds = [
        MultiKind::Adam,
        MultiKind::SgdMomentum,
        MultiKind::Sgd,
        MultiKind::Adadelta,
        MultiKind::Unscale,
    ];
    [false, true]
        .into_iter()
        .flat_map(|gated| {
            kinds.map(|k| {
                (
                    k.key(gated),
                    multi_optimizer_source(k, MULTI_TENSORS, gated),
                )
            })
        })
        .collect()
}
