//! The WGSL sources, checked without a GPU: the generated part is current with the op
//! table, and every shader as the runtime compiles it (prelude and generated parts
//! prepended) parses and validates with naga.

use std::path::Path;

fn shaders_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders")
}

#[test]
fn generated_elementwise_ops_match_the_op_table() {
    let path = shaders_dir().join("generated/elementwise_ops.wgsl");
    let want = ferrograd_core::ops::table::generated_wgsl();
    if std::env::var("FERROGRAD_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: run FERROGRAD_BLESS=1 cargo test -p ferrograd-core --test shaders",
        path.display()
    );
}

#[cfg(feature = "gpu")]
fn validate(name: &str, src: &str) {
    validate_with(name, src, naga::valid::Capabilities::default());
}

#[cfg(feature = "gpu")]
fn validate_with(name: &str, src: &str, caps: naga::valid::Capabilities) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
}

#[cfg(feature = "gpu")]
#[test]
fn every_shader_validates_as_compiled() {
    for (name, src) in ferrograd_core::gpu::shaders::ALL
        .into_iter()
        .chain(ferrograd_core::gpu::shaders::generated())
    {
        validate(name, src);
    }
    // the tensor-core product, with the capabilities the runtime requests for it
    let coop =
        naga::valid::Capabilities::COOPERATIVE_MATRIX | naga::valid::Capabilities::SHADER_FLOAT16;
    validate_with(
        "matmul_coop",
        ferrograd_core::gpu::shaders::MATMUL_COOP,
        coop,
    );
    // every file in shaders/ is part of some compiled source
    let all: String = ferrograd_core::gpu::shaders::ALL
        .iter()
        .map(|(_, s)| *s)
        .chain([ferrograd_core::gpu::shaders::MATMUL_COOP])
        .collect();
    for dir in [shaders_dir(), shaders_dir().join("generated")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                all.contains(&text),
                "{} is not compiled into any shader",
                path.display()
            );
        }
    }
}
