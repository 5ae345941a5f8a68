//! Generates the `faasconf.v1` messages and services from `proto/` with a vendored protoc.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let protos: Vec<PathBuf> = ["common", "actuator", "policy"]
        .iter()
        .map(|name| root.join(format!("faasconf/v1/{name}.proto")))
        .collect();
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("faasconf_descriptor.bin"))
        .compile_with_config(config, &protos, &[root])?;
    Ok(())
}
