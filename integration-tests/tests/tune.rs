//! `faasconf tune` end to end: it starts a session against a running actuator through a running
//! policy, prints each iteration (JSON Lines or text: cost, latency, verdict, what changed) and
//! the summary, and stops the session on SIGTERM.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Server;
use faasconf_proto::v1;

fn tune(policy: &Server, actuator: &Server, extra: &[&str]) -> std::process::Command {
    let mut cmd = common::command("faasconf");
    cmd.args(["tune", "--endpoint"])
        .arg(policy.endpoint())
        .arg("--actuator")
        .arg(actuator.endpoint())
        .args(["--poll-ms", "100"])
        .args(extra);
    cmd
}

/// Each knob that differs, as `function knob before->after`, in the workflow's function order
/// (what `tune` reports).
fn changes(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let workflow = faasconf_core::catalog::builtin("parallel").unwrap();
    for name in workflow.function_names() {
        let f = &after[name];
        for (field, knob) in [
            ("cpu_millis", "cpu_millis"),
            ("memory_mib", "memory_mib"),
            ("replicas", "replicas"),
            ("concurrency", "max_inflight"),
        ] {
            let (was, now) = (&before[name][field], &f[field]);
            if was != now {
                out.push(format!("{name} {knob} {was}->{now}"));
            }
        }
    }
    out
}

#[test]
fn tune_starts_follows_and_stops_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let actuator = Server::start("faasconf-actuator", &common::VIRTUAL_PARALLEL_ACTUATOR);
    // The policy serves `parallel` from a topology file that carries its own QoS target: the
    // session judges against it when the request names none.
    let qos = faasconf_core::Qos {
        mean_latency_seconds: 9.0,
        min_success_ratio: 0.95,
    };
    let topology = dir.path().join("parallel.json");
    let workflow = faasconf_core::catalog::builtin("parallel")
        .unwrap()
        .with_qos(qos)
        .unwrap();
    std::fs::write(
        &topology,
        faasconf_core::catalog::topology_file(&workflow).to_string(),
    )
    .unwrap();
    let policy = common::policy_serving(
        &store,
        topology.to_str().unwrap(),
        Some(&actuator.endpoint()),
    );

    // JSON Lines: one object per iteration, then the summary.
    let out = tune(
        &policy,
        &actuator,
        &["--workflow", "parallel", "--iterations", "3", "--json"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for (k, i) in lines[..3].iter().enumerate() {
        assert_eq!(i["iteration"], k as u64 + 1);
        let (latency, success) = (
            i["e2e_mean_s"].as_f64().unwrap(),
            i["success_ratio"].as_f64().unwrap(),
        );
        assert_eq!(
            i["qos_met"].as_bool().unwrap(),
            latency < qos.mean_latency_seconds && success >= qos.min_success_ratio,
            "{i}"
        );
        assert_eq!(i["config"].as_object().unwrap().len(), 6, "{i}");
        match k {
            0 => assert!(i["changes"].is_null(), "{i}"),
            _ => assert_eq!(
                i["changes"],
                serde_json::json!(changes(&lines[k - 1]["config"], &i["config"])),
                "{i}"
            ),
        }
    }
    let summary = &lines[3];
    assert_eq!(summary["state"], "budget_spent", "{summary}");
    assert_eq!(summary["iterations"], 3);
    assert_eq!(summary["workflow"], "parallel");
    assert_eq!(
        summary["qos"],
        serde_json::json!({"mean_latency_ms": 9000.0, "min_success_ratio": 0.95})
    );
    let misses = lines[..3].iter().filter(|i| i["qos_met"] == false).count();
    assert_eq!(summary["qos_violations"], misses as u64);

    // Text, the workflow given as its topology file; then SIGTERM stops the session.
    let mut child = tune(
        &policy,
        &actuator,
        &[
            "--workflow",
            topology.to_str().unwrap(),
            "--iterations",
            "500",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let head = stdout.next().unwrap().unwrap();
    assert!(head.starts_with("tuning session "), "{head}");
    assert!(head.contains("QoS mean < 9.0 s, success >= 0.95"), "{head}");
    let session_id = head.split_whitespace().nth(2).unwrap().to_owned();
    assert!(stdout.next().unwrap().unwrap().contains("what changed"));
    let first = stdout.next().unwrap().unwrap();
    assert!(
        first.trim_start().starts_with("1 ") && first.ends_with("start"),
        "{first}"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = stdout.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopping tuning session"), "{stderr}");
    let last = rest.last().unwrap();
    assert!(last.starts_with("stopped: "), "{rest:?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = runtime.block_on(async {
        let mut client = v1::policy_client::PolicyClient::connect(policy.endpoint())
            .await
            .unwrap();
        client
            .get_tuning_status(v1::GetTuningStatusRequest { session_id })
            .await
            .unwrap()
            .into_inner()
            .state()
    });
    assert_eq!(state, v1::TuningSessionState::Stopped);

    // Bad input is named.
    let started = Instant::now();
    let out = tune(&policy, &actuator, &["--workflow", "nope"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("StartTuning") && stderr.contains("nope"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let out = tune(
        &policy,
        &actuator,
        &["--workflow", "parallel", "--iterations", "0"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--iterations"));
    let out = tune(&policy, &actuator, &["--workflow", "missing.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workflow missing.yaml"));
}
