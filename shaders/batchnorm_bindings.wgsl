// batchnorm.wgsl's kernels in the common layout (every kernel but forward_main).
@group(0) @binding(0) var<uniform> p: Params;
@group(1) @binding(1) var<storage, read> in1: array<f32>;
@group(2) @binding(2) var<storage, read> in2: array<f32>;
@group(3) @binding(3) var<storage, read_write> out: array<f32>;
@group(2) @binding(4) var<storage, read> extra: array<f32>;
@group(0) @binding(5) var<storage, read_write> rw1: array<f32>;
@group(0) @binding(6) var<storage, read_write> rw2: array<f32>;
