//! The README's walkthrough ("Your own workflow on a cluster") run as written, in order, against
//! the twin backend: the block between `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->`
//! is run by bash with the binaries on PATH, in a directory that holds the repository's
//! `deploy/` and the operator's `stack.yml`. Both services run on loopback ports (the actuator
//! on its twin, serving the topology file the walkthrough writes) in place of the pods. What
//! needs a cluster is translated, and nothing else:
//! - `kubectl apply -f FILE` validates FILE against the upstream schemas
//!   (`kubernetes-validate --strict`);
//! - `kubectl apply -k DIR` renders DIR with kustomize and validates what it renders;
//! - `kubectl ... port-forward ...` does nothing (the policy already listens on loopback);
//! - the in-cluster endpoints become the loopback ones.
//!
//! Any other `kubectl` line fails the test, so the walkthrough cannot grow a step no test runs.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use common::Server;

const POLICY_IN_README: &str = "http://127.0.0.1:50052";
const ACTUATOR_IN_README: &str = "http://faasconf-actuator.faasconf.svc:50051";

/// The walkthrough's shell block, from the README.
fn walkthrough() -> String {
    let readme = std::fs::read_to_string(common::repository().join("README.md")).unwrap();
    let begin = readme
        .find("<!-- walkthrough:begin -->")
        .expect("begin marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("end marker");
    let block = &readme[begin..end];
    let start = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let stop = block[start..].find("```").expect("the block's end") + start;
    block[start..stop].to_owned()
}

/// `line` as it runs here (see the module doc).
fn translated(line: &str, policy: &str, actuator: &str) -> String {
    let line = line
        .replace(POLICY_IN_README, policy)
        .replace(ACTUATOR_IN_README, actuator);
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["kubectl", "apply", "-f", file] => {
            format!("kubernetes-validate --strict --quiet {file}")
        }
        ["kubectl", "apply", "-k", dir] => format!(
            "kubectl kustomize {dir} > rendered.yaml && kubernetes-validate --strict --quiet rendered.yaml"
        ),
        ["kubectl", .., "&"] if words.contains(&"port-forward") => ":".into(),
        ["kubectl", ..] => panic!("a cluster command the test does not translate: {line}"),
        _ => line,
    }
}

/// The operator's stack file for the example workflow, with a comment of theirs.
fn stack(workflow: &faasconf_core::Workflow) -> String {
    let mut text = String::from(
        "version: 1.0\nprovider:\n  name: openfaas\n  gateway: http://127.0.0.1:8080\nfunctions:\n",
    );
    for f in &workflow.functions {
        text.push_str(&format!(
            "  {0}:   # ours\n    lang: python3-http\n    image: ghcr.io/shop/{0}:1\n",
            f.name
        ));
    }
    text
}

#[test]
fn the_readme_walkthrough_runs_against_the_twin_backend() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::os::unix::fs::symlink(common::repository().join("deploy"), cwd.join("deploy")).unwrap();
    let example = common::repository().join("deploy/examples/shop.yaml");
    std::fs::copy(&example, cwd.join("shop.yaml")).unwrap();
    let workflow = faasconf_core::catalog::load_file(&example).unwrap();
    std::fs::write(cwd.join("stack.yml"), stack(&workflow)).unwrap();
    let topology = cwd.join("shop.yaml");
    let store = cwd.join("policy.db");
    let actuator = Server::start(
        "faasconf-actuator",
        &[
            "--workflow",
            topology.to_str().unwrap(),
            "--clock",
            "virtual",
            "--users",
            "20",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    let policy = common::policy_serving(
        &store,
        topology.to_str().unwrap(),
        Some(&actuator.endpoint()),
    );
    let script: Vec<String> = walkthrough()
        .lines()
        .map(|l| translated(l, &policy.endpoint(), &actuator.endpoint()))
        .collect();
    let path = format!(
        "{}:{}",
        common::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script.join("\n")])
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("FAASCONF_ENDPOINT")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the walkthrough failed:\n{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.join("\n")
    );

    // Each step did what the README says.
    let twin = std::fs::read_to_string(cwd.join("shop-twin.jsonl")).unwrap();
    assert_eq!(twin.lines().count(), 3, "three twin windows");
    assert!(stdout.contains("\"qos\""), "workflows show: {stdout}");
    assert!(
        stdout.contains("QoS mean < 0.6 s, success >= 0.95"),
        "the session judged against the topology's own target:\n{stdout}"
    );
    assert!(stdout.contains("budget_spent: 20 iterations"), "{stdout}");
    let trained: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("done: job "))
        .collect();
    assert_eq!(trained.len(), 2, "two training jobs: {stdout}");
    assert!(trained.iter().all(|l| l.contains("(promoted)")), "{stdout}");
    assert!(
        trained[1].contains("calibration on "),
        "the second job calibrated from the session's windows: {}",
        trained[1]
    );
    let stack: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(cwd.join("stack.yml")).unwrap()).unwrap();
    let text = std::fs::read_to_string(cwd.join("stack.yml")).unwrap();
    for f in &workflow.functions {
        let entry = &stack["functions"][f.name.as_str()];
        assert_eq!(
            entry["image"],
            format!("ghcr.io/shop/{}:1", f.name).as_str()
        );
        assert!(
            entry["limits"]["cpu"].as_str().unwrap().ends_with('m'),
            "{entry:?}"
        );
        assert!(text.contains(&format!("  {}:   # ours", f.name)), "{text}");
    }

    // train-job's bad input is the service's answer, named.
    for (args, expected) in [
        (vec!["--workflow", "ghost"], "NotFound"),
        (
            vec!["--workflow", "shop", "--samples", "99999999"],
            "samples",
        ),
    ] {
        let out = common::command("faasconf")
            .args(["train-job", "--endpoint", &policy.endpoint()])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}
