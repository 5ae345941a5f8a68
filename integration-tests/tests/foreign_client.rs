//! A client that is not ours — Python grpcio with stubs generated from `proto/` by grpcio-tools
//! (`.ci/run` installs both from PyPI) — lists workflows, applies a configuration and reads three
//! telemetry windows from `faasconf-actuator --backend twin`.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use std::process::Command;

use common::Server;

#[test]
fn python_grpcio_client_lists_applies_and_streams() {
    let root = common::repository();
    let stubs = tempfile::tempdir().unwrap();
    let generated = Command::new("python3")
        .args(["-m", "grpc_tools.protoc", "-I", "proto", "--python_out"])
        .arg(stubs.path())
        .arg("--grpc_python_out")
        .arg(stubs.path())
        .args([
            "proto/faasconf/v1/common.proto",
            "proto/faasconf/v1/actuator.proto",
            "proto/faasconf/v1/policy.proto",
        ])
        .current_dir(root)
        .output()
        .expect("python3 with grpcio-tools (pip install grpcio grpcio-tools)");
    assert!(
        generated.status.success(),
        "grpc_tools.protoc: {}",
        String::from_utf8_lossy(&generated.stderr)
    );

    let server = Server::start(
        "faasconf-actuator",
        &[
            "--backend",
            "twin",
            "--clock",
            "virtual",
            "--workflow",
            "parallel,sequential",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/python/actuator_client.py"
        ))
        .arg(stubs.path())
        .arg(server.addr())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["workflows"],
        serde_json::json!(["parallel", "sequential"])
    );
    let before = summary["version_before"].as_u64().unwrap();
    assert_eq!(summary["version_after"].as_u64().unwrap(), before + 1);
    assert!(summary["diff"].as_u64().unwrap() >= 6);
    assert_eq!(summary["invalid"]["code"], "INVALID_ARGUMENT");
    assert!(
        summary["invalid"]["message"]
            .as_str()
            .unwrap()
            .contains("config.starter.replicas"),
        "{}",
        summary["invalid"]
    );
    let windows = summary["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    for (i, w) in windows.iter().enumerate() {
        assert_eq!(w["index"].as_u64().unwrap(), i as u64);
        assert_eq!(w["config_version"].as_u64().unwrap(), before + 1);
        assert_eq!(w["functions"].as_u64().unwrap(), 6);
    }
    assert!(server.terminate().success());
}
