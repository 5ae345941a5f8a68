//! The `faasconf` command line as a user runs it.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

const CONFIG: &str = r#"{"starter":{"cpu_millis":770,"memory_mib":1536,"replicas":4,"concurrency":4},"rgb":{"cpu_millis":1200,"memory_mib":1024,"replicas":3,"concurrency":4},"resize":{"cpu_millis":1200,"memory_mib":1024,"replicas":3,"concurrency":4},"update":{"cpu_millis":1200,"memory_mib":1024,"replicas":3,"concurrency":4},"resnet":{"cpu_millis":1800,"memory_mib":1024,"replicas":5,"concurrency":4},"mobilenet":{"cpu_millis":1500,"memory_mib":1024,"replicas":3,"concurrency":4}}"#;

/// `faasconf sim evaluate` of the parallel workflow at 10 users.
fn sim_evaluate(input: &Path, output: &Path, extra: &[&str]) -> Output {
    common::command("faasconf")
        .args(["sim", "evaluate", "--workflow", "parallel", "--users", "10"])
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn sim_run_is_deterministic_given_a_seed() {
    let run = |seed: &str| {
        let out = common::command("faasconf")
            .args([
                "sim",
                "run",
                "--workflow",
                "parallel",
                "--users",
                "10",
                "--windows",
                "3",
                "--seed",
                seed,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let a = run("3");
    assert_eq!(a, run("3"));
    assert_ne!(a, run("4"));
    let windows: Vec<serde_json::Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[2]["functions"].as_array().unwrap().len(), 6);
    assert!(windows[2]["workflow"]["total_requests"].as_u64().unwrap() > 0);
}

#[test]
fn sim_evaluate_answers_every_line_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let slower = CONFIG.replace("\"cpu_millis\":1800", "\"cpu_millis\":600");
    fs::write(
        &input,
        format!(
            "{{\"id\":\"fast\",\"config\":{CONFIG}}}\n{{\"id\":\"slow\",\"config\":{slower}}}\n"
        ),
    )
    .unwrap();
    let out = sim_evaluate(&input, &output, &["--windows", "2", "--seed", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "fast");
    assert_eq!(lines[1]["id"], "slow");
    for key in [
        "e2e_mean_s",
        "e2e_p95_s",
        "success_ratio",
        "requests_total",
        "throughput_rps",
        "cost",
    ] {
        assert!(lines[0][key].is_number(), "{key}");
    }
    for key in ["p75_s", "p95_s", "cpu_util"] {
        assert!(lines[0]["functions"]["resnet"][key].is_number(), "{key}");
    }
    assert!(
        lines[1]["functions"]["resnet"]["p75_s"].as_f64()
            > lines[0]["functions"]["resnet"]["p75_s"].as_f64()
    );
    assert!(lines[1]["cost"].as_f64() < lines[0]["cost"].as_f64());
}

#[test]
fn sim_evaluate_refuses_a_bad_file_whole_and_lists_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let lines = [
        format!("{{\"id\":\"ok\",\"config\":{CONFIG}}}"),
        format!(
            "{{\"id\":\"ghost\",\"config\":{}}}",
            CONFIG.replace("\"rgb\"", "\"ghost\"")
        ),
        format!(
            "{{\"id\":\"big\",\"config\":{}}}",
            CONFIG.replace("\"replicas\":5", "\"replicas\":50")
        ),
        "{broken".to_owned(),
    ];
    fs::write(&input, lines.join("\n")).unwrap();
    let out = sim_evaluate(&input, &output, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "line 2: config.ghost",
        "line 2: config.rgb",
        "line 3: config.resnet.replicas",
        "line 4",
    ] {
        assert!(err.contains(expected), "missing {expected} in {err}");
    }
    assert!(
        !output.exists(),
        "nothing is written when the input is refused"
    );
}

#[test]
fn bad_flags_are_named() {
    let out = common::command("faasconf")
        .args(["sim", "run", "--workflow", "nope", "--users", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workflow nope"));
    let out = common::command("faasconf")
        .args(["sim", "run", "--workflow", "parallel", "--users", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("workload.users"));
    let out = common::command("faasconf")
        .args([
            "sim",
            "run",
            "--workflow",
            "parallel",
            "--users",
            "3",
            "--rps",
            "2",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "two loads at once are refused");
}

/// The actuator refuses bad flags before it binds a port, naming the flag.
#[test]
fn actuator_flags_are_checked_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("queries.yaml");
    std::fs::write(
        &typo,
        "queries:\n  running_pods: count(up{namespace=\"${namespce}\"})\n",
    )
    .unwrap();
    let unknown = dir.path().join("unknown.yaml");
    std::fs::write(&unknown, "querys: {}\n").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--backend",
                "twin",
                "--prometheus-url",
                "http://127.0.0.1:9",
            ],
            "--prometheus-url is for --backend kubernetes",
        ),
        (
            &["--backend", "kubernetes", "--clock", "virtual"],
            "--clock virtual is for --backend twin",
        ),
        (
            &[
                "--backend",
                "kubernetes",
                "--prometheus-url",
                "prometheus:9090",
            ],
            "prometheus url",
        ),
        (
            &[
                "--backend",
                "kubernetes",
                "--prometheus-url",
                "http://127.0.0.1:9",
                "--prometheus-queries",
                typo.to_str().unwrap(),
            ],
            "queries.running_pods",
        ),
        (
            &[
                "--backend",
                "kubernetes",
                "--prometheus-url",
                "http://127.0.0.1:9",
                "--prometheus-queries",
                unknown.to_str().unwrap(),
            ],
            "unknown field `querys`",
        ),
    ];
    for (args, expected) in cases {
        let out = common::command("faasconf-actuator")
            .args([
                "--grpc-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
    }
    // No cluster here: the Kubernetes backend says where it looked.
    let out = common::command("faasconf-actuator")
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--backend",
            "kubernetes",
        ])
        .env("KUBECONFIG", dir.path().join("missing-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--backend kubernetes: no usable kubeconfig"),
        "{stderr}"
    );
}

#[test]
fn sim_fidelity_scores_a_history_file_and_names_bad_rows() {
    let history = common::repository().join("../shared/data/parallel_10_train.csv");
    let dir = tempfile::tempdir().unwrap();
    // The first 60 rows: a fidelity run on real measurements gives finite figures.
    let text = fs::read_to_string(&history).unwrap();
    let head: Vec<&str> = text.lines().take(61).collect();
    let small = dir.path().join("head.csv");
    fs::write(&small, head.join("\n")).unwrap();
    let out = common::command("faasconf")
        .args([
            "sim",
            "fidelity",
            "--workflow",
            "parallel",
            "--windows",
            "2",
            "--history",
        ])
        .arg(&small)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 60);
    assert!(report["e2e_spearman"].as_f64().unwrap().is_finite());
    // A row with a bad cell is refused with its line and column.
    let mut bad: Vec<String> = head.iter().map(|l| (*l).to_owned()).collect();
    bad[3] = bad[3].replacen("starter", "starterX", 1);
    fs::write(&small, bad.join("\n")).unwrap();
    let out = common::command("faasconf")
        .args(["sim", "fidelity", "--workflow", "parallel", "--history"])
        .arg(&small)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 4, column 25 (starter.name)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Calibration from a store: history imported into it (once), fitted from the store exactly as
/// from the CSV (the same rows, so the same profiles), and the wrong combinations named.
#[test]
fn sim_calibrate_fits_a_store_s_windows_as_it_fits_the_csv() {
    let history = common::repository().join("../shared/data/parallel_10_train.csv");
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(&history).unwrap();
    let head: Vec<&str> = text.lines().take(41).collect();
    let small = dir.path().join("head.csv");
    fs::write(&small, head.join("\n")).unwrap();
    let store = dir.path().join("faasconf.db");
    let run = |args: &[&str]| {
        let out = common::command("faasconf").args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let import = [
        "sim",
        "import",
        "--workflow",
        "parallel",
        "--history",
        &s(&small),
        "--store",
        &s(&store),
    ];
    let (ok, err) = run(&import);
    assert!(ok && err.contains("40 rows imported"), "{err}");
    let (ok, err) = run(&import);
    assert!(
        ok && err.contains("0 rows imported"),
        "imported once: {err}"
    );
    let fit = |from: [&str; 2], out: &Path| {
        let mut args = vec!["sim", "calibrate", "--workflow", "parallel", "--folds", "0"];
        args.extend([
            "--max-evaluations",
            "6",
            "--routing",
            "random",
            "--failure-mode",
            "run-to-end",
        ]);
        args.extend(from);
        let out_path = s(out);
        args.extend(["--out", &out_path]);
        let (ok, err) = run(&args);
        assert!(ok, "{err}");
        let mut profiles: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out).unwrap()).unwrap();
        profiles.as_object_mut().unwrap().remove("source");
        profiles
    };
    let from_store = fit(["--store", &s(&store)], &dir.path().join("store.json"));
    let from_csv = fit(["--history", &s(&small)], &dir.path().join("csv.json"));
    assert_eq!(from_store, from_csv);
    let (ok, err) = run(&[
        "sim",
        "calibrate",
        "--workflow",
        "parallel",
        "--out",
        "x.json",
    ]);
    assert!(!ok && err.contains("--history"), "{err}");
    let empty = dir.path().join("empty.db");
    let (ok, err) = run(&[
        "sim",
        "calibrate",
        "--workflow",
        "parallel",
        "--store",
        &s(&empty),
        "--out",
        "x.json",
    ]);
    assert!(
        !ok && err.contains("--store") && err.contains("0 usable windows"),
        "{err}"
    );
}

/// `faasconf bench` end to end at its smallest: `rq1 --quick` with one baseline writes the JSON
/// the issue names, the report, the plots and the journal; without a terminal it tells its
/// progress on standard error; run again it resumes from the journal (nothing is warmed up
/// again) and `bench results` takes its report.
#[test]
fn bench_rq1_quick_writes_its_results_and_resumes_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rq1");
    let bench = || {
        common::command("faasconf")
            .args(["bench", "rq1", "--quick", "--methods", "random", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = bench();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(stderr.contains("oracle parallel 20u"), "{stderr}");
    assert!(stderr.contains("warm-up parallel seed 0"), "{stderr}");
    assert!(
        stderr.contains("parallel 20u seed 0 random: best"),
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("rq1.json")).unwrap()).unwrap();
    assert_eq!(json["journal"], "rq1.journal.jsonl");
    assert!(
        json.get("cells").is_none(),
        "the cells are in the journal only"
    );
    let cells: Vec<serde_json::Value> = fs::read_to_string(out.join("rq1.journal.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap()
                .get("cell")
                .cloned()
        })
        .collect();
    assert_eq!(cells.len(), 1);
    for key in [
        "workflow",
        "users",
        "method",
        "seed",
        "best_cost",
        "feasible",
        "violations",
        "iterations_to_feasible",
    ] {
        assert!(cells[0].get(key).is_some(), "cells carry {key}");
    }
    assert_eq!(cells[0]["method"], "random");
    assert_eq!(json["oracle"][0]["users"], 20);
    assert!(out.join("rq1.md").exists() && out.join("rq1-parallel-cost.svg").exists());
    let journal = fs::read_to_string(out.join("rq1.journal.jsonl")).unwrap();
    assert_eq!(
        journal
            .lines()
            .filter(|l| l.starts_with("{\"cell\""))
            .count(),
        1
    );
    let again = bench();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(
        !stderr.contains("warm-up"),
        "resumed from the journal: {stderr}"
    );
    assert_eq!(
        fs::read_to_string(out.join("rq1.journal.jsonl")).unwrap(),
        journal
    );
    let results = common::command("faasconf")
        .args(["bench", "results", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(results.status.success());
    let md = fs::read_to_string(dir.path().join("RESULTS.md")).unwrap();
    assert!(
        md.contains("| parallel | random | 0/1 |") || md.contains("| parallel | random | 1/1 |"),
        "{md}"
    );
}

/// The README's main command, shortened: `faasconf demo --json` pre-trains, starts both services
/// as processes, tunes, and ends its standard output with one JSON summary line that agrees with
/// itself (QoS verdicts, best cost) and names every function of the workflow.
#[test]
fn demo_tunes_on_the_twin_and_ends_with_a_json_summary() {
    let workdir = tempfile::tempdir().unwrap();
    let out = common::command("faasconf")
        .args([
            "demo",
            "--json",
            "--samples",
            "200",
            "--updates",
            "50",
            "--iterations",
            "3",
            "--seed",
            "1",
            "--workdir",
        ])
        .arg(workdir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("pre-trained attmf"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "only the summary: {stdout}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["state"], "budget_spent");
    let iterations = summary["iterations"].as_array().unwrap();
    assert_eq!(iterations.len(), 3);
    let qos = faasconf_core::Qos::default();
    // Per configuration (by cost): windows met and windows applied.
    let mut record: Vec<(f64, u32, u32)> = Vec::new();
    for (i, iteration) in iterations.iter().enumerate() {
        assert_eq!(iteration["iteration"], i as u64 + 1);
        let cost = iteration["cost"].as_f64().unwrap();
        let latency = iteration["e2e_mean_s"].as_f64().unwrap();
        let success = iteration["success_ratio"].as_f64().unwrap();
        let met = iteration["qos_met"].as_bool().unwrap();
        assert!(cost > 0.0 && latency > 0.0 && (0.0..=1.0).contains(&success));
        assert_eq!(
            met,
            latency < qos.mean_latency_seconds && success >= qos.min_success_ratio,
            "{iteration}"
        );
        match record.iter_mut().find(|r| r.0 == cost) {
            Some(r) => (r.1, r.2) = (r.1 + u32::from(met), r.2 + 1),
            None => record.push((cost, u32::from(met), 1)),
        }
    }
    // The best met QoS in at least 80% of its windows; there is one when any did (the
    // cheapest of those unless its windows ran too near the target).
    let holding: Vec<f64> = record
        .iter()
        .filter(|(_, met, windows)| *met > 0 && f64::from(*met) >= 0.8 * f64::from(*windows))
        .map(|r| r.0)
        .collect();
    match summary["best_cost"].as_f64() {
        Some(best) => assert!(holding.contains(&best), "{best} in {holding:?}"),
        None => assert!(holding.is_empty(), "{holding:?} held but no best"),
    }
    let config = summary["final_config"].as_object().unwrap();
    let names: Vec<&str> = config.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["mobilenet", "resize", "resnet", "rgb", "starter", "update"]
    );
    for function in config.values() {
        for field in ["cpu_millis", "memory_mib", "replicas", "concurrency"] {
            assert!(function[field].as_u64().unwrap() > 0, "{field}: {function}");
        }
    }
    assert!(
        workdir.path().join("faasconf.db").exists() && workdir.path().join("models").is_dir(),
        "the store and the model stay in --workdir"
    );

    let out = common::command("faasconf")
        .args(["demo", "--workflow", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workflow nope"));
}
