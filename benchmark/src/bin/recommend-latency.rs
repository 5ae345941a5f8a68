//! `recommend-latency`: `RecommendConfig` latency over loopback gRPC against the release
//! `faasconf-policy` binary (built beside this one), with a loaded model: the window path (a
//! telemetry window in the request) and the twin-validated path. Writes JSON and a Markdown
//! table.
//!
//! `cargo build --release --bins && ./target/release/recommend-latency [--requests N]
//! [--twin-requests M] [--out DIR] [--seed S]`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use faasconf_core::catalog;
use faasconf_proto::v1::{self, policy_client::PolicyClient};
use faasconf_store::Store;
use faasconf_training::{JobSpec, TrainOptions, run_job};
use faasconf_twin::{Twin, TwinOptions, Workload};

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn summary(mut micros: Vec<f64>) -> serde_json::Value {
    micros.sort_by(f64::total_cmp);
    serde_json::json!({
        "requests": micros.len(),
        "p50_us": percentile(&micros, 0.5),
        "p90_us": percentile(&micros, 0.9),
        "p99_us": percentile(&micros, 0.99),
        "max_us": micros.last(),
        "mean_us": micros.iter().sum::<f64>() / micros.len().max(1) as f64,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut requests = 5000usize;
    let mut twin_requests = 20usize;
    let mut out = std::path::PathBuf::from("benchmark/results");
    let mut seed = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--requests" => requests = v.parse().unwrap_or_else(|_| panic!("--requests {v}")),
            "--twin-requests" => {
                twin_requests = v.parse().unwrap_or_else(|_| panic!("--twin-requests {v}"))
            }
            "--out" => out = v.into(),
            "--seed" => seed = v.parse().unwrap_or_else(|_| panic!("--seed {v}")),
            other => panic!("unknown flag {other}"),
        }
    }
    let workflow = catalog::builtin("parallel").unwrap_or_else(|e| panic!("{e}"));
    let dir =
        std::env::temp_dir().join(format!("faasconf-recommend-latency-{}", std::process::id()));
    let store_path = dir.join("faasconf.db");
    let models = dir.join("models");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    {
        let mut store = Store::open(&store_path).unwrap_or_else(|e| panic!("{e}"));
        let spec = JobSpec {
            workflow: "parallel".into(),
            samples: 600,
            loads: vec![10, 20, 30],
            train: TrainOptions {
                updates: 300,
                evaluate_every: 0,
                seed,
                ..TrainOptions::default()
            },
            promote: true,
        };
        run_job(
            &mut store,
            &workflow,
            &spec,
            &models,
            faasconf_agents::default_device(),
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("training: {e}"));
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let policy_bin = exe
        .parent()
        .map(|d| d.join("faasconf-policy"))
        .unwrap_or_else(|| panic!("no directory"));
    let mut child = Command::new(&policy_bin)
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--workflow",
            "parallel",
            "--store",
        ])
        .arg(&store_path)
        .arg("--models")
        .arg(&models)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} ({e}): cargo build --release --bins first",
                policy_bin.display()
            )
        });
    let mut reader = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("stdout")));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the policy exited before listening");
        }
        if let Some(a) = line.trim().strip_prefix("listening on ") {
            break a.to_owned();
        }
    };
    let mut client = PolicyClient::connect(format!("http://{addr}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let start = workflow
        .config_from_actions(&vec![[0.5; 4]; workflow.len()])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut twin = Twin::new(
        workflow.clone(),
        start,
        Workload::ClosedLoop { users: 20 },
        TwinOptions {
            window_seconds: 30.0,
            seed,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    twin.run_window();
    let window = faasconf_proto::window::window_to_proto(&workflow, &twin.run_window());
    let load = Some(v1::Load {
        kind: Some(v1::load::Kind::ConcurrentUsers(20)),
    });
    let with_window = v1::RecommendConfigRequest {
        workflow: "parallel".into(),
        load,
        qos: None,
        current: Some(window),
        model_version: String::new(),
    };
    let without = v1::RecommendConfigRequest {
        current: None,
        ..with_window.clone()
    };
    for _ in 0..200 {
        client
            .recommend_config(with_window.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut fast = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        client
            .recommend_config(with_window.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        fast.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut slow = Vec::with_capacity(twin_requests);
    for _ in 0..twin_requests {
        let t = Instant::now();
        client
            .recommend_config(without.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        slow.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let result = serde_json::json!({
        "workflow": "parallel",
        "users": 20,
        "device": "flex (CPU)",
        "window_path": summary(fast),
        "twin_path": summary(slow),
    });
    std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_string_pretty(&result).unwrap_or_default();
    std::fs::write(out.join("recommend_latency.json"), &json).unwrap_or_else(|e| panic!("{e}"));
    let row = |name: &str, v: &serde_json::Value| {
        format!(
            "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            v["requests"],
            v["p50_us"].as_f64().unwrap_or(f64::NAN),
            v["p90_us"].as_f64().unwrap_or(f64::NAN),
            v["p99_us"].as_f64().unwrap_or(f64::NAN),
            v["max_us"].as_f64().unwrap_or(f64::NAN)
        )
    };
    let table = format!(
        "| path | requests | p50 µs | p90 µs | p99 µs | max µs |\n|---|---|---|---|---|---|\n{}{}",
        row("with a window", &result["window_path"]),
        row("twin-validated", &result["twin_path"])
    );
    std::fs::write(out.join("recommend_latency.md"), &table).unwrap_or_else(|e| panic!("{e}"));
    println!("{json}\n\n{table}");
}
