//! The CI example in `deploy/ci`: both scripts run as a CI job would run them, against a policy
//! service on loopback with a trained model: the stack file gets the recommendation and keeps
//! everything else; the patch step emits one Deployment patch per function and applies each
//! with `kubectl patch` (a stand-in records the calls); an unreachable service or an error
//! answer fails the step with a clear message and changes nothing.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_openapi::api::apps::v1::Deployment;

fn script(name: &str) -> PathBuf {
    common::repository().join("deploy/ci").join(name)
}

/// Runs a script in `dir` with `env`, as a CI runner would.
fn run(name: &str, dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new("sh");
    command
        .arg(script(name))
        .current_dir(dir)
        .env("FAASCONF", common::bin_dir().join("faasconf"))
        .env_remove("FAASCONF_ENDPOINT");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A loopback address nothing listens on.
fn unreachable_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[test]
fn ci_steps_write_the_recommendation_into_stack_yml_and_emit_patches() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("faasconf.db");
    common::train_parallel(&store, &common::SMALL_TRAINING);
    let policy = common::parallel_policy(&store, None);
    let endpoint = policy.endpoint();
    let workflow = faasconf_core::catalog::builtin("parallel").unwrap();
    let names: Vec<String> = workflow.functions.iter().map(|f| f.name.clone()).collect();

    // The stack step.
    let job = dir.path().join("job");
    std::fs::create_dir_all(&job).unwrap();
    let mut stack = String::from(
        "version: 1.0\nprovider:\n  name: openfaas\n  gateway: http://gateway:8080   # in-cluster\nfunctions:\n",
    );
    for name in &names {
        stack.push_str(&format!(
            "  # {name}: owned by the ML team\n  {name}:\n    image: ghcr.io/example/{name}:7\n    labels:\n      team: ml\n"
        ));
    }
    // The operator sized the first function's CPU request low on purpose: it stays.
    stack.push_str("    requests:\n      cpu: 10m\n");
    let low = names.last().unwrap().clone();
    std::fs::write(job.join("stack.yml"), &stack).unwrap();
    let base = [("WORKFLOW", "parallel"), ("USERS", "20")];
    let ok = run(
        "recommend-stack.sh",
        &job,
        &[base.as_slice(), &[("FAASCONF_ENDPOINT", &endpoint)]].concat(),
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stderr(&ok).contains(&format!("kept the lower request {low} requests.cpu 10m")),
        "{}",
        stderr(&ok)
    );
    let text = std::fs::read_to_string(job.join("stack.yml")).unwrap();
    for line in [
        "  gateway: http://gateway:8080   # in-cluster".to_owned(),
        format!("  # {}: owned by the ML team", names[0]),
    ] {
        assert!(text.contains(&line), "{line:?} lost:\n{text}");
    }
    let merged: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(merged["provider"]["gateway"], "http://gateway:8080");
    for name in &names {
        let f = &merged["functions"][name.as_str()];
        assert_eq!(
            f["image"],
            format!("ghcr.io/example/{name}:7").as_str(),
            "{name} kept its image"
        );
        assert_eq!(f["labels"]["team"], "ml", "{name} kept its labels");
        let cpu = f["limits"]["cpu"].as_str().unwrap();
        let request = if *name == low { "10m" } else { cpu };
        assert!(
            cpu.ends_with('m') && f["requests"]["cpu"] == request,
            "{name}: {f:?}"
        );
        assert_eq!(f["requests"]["memory"], f["limits"]["memory"], "{name}");
        assert!(
            f["environment"]["max_inflight"]
                .as_str()
                .unwrap()
                .parse::<u32>()
                .unwrap()
                >= 1
        );
        assert_eq!(
            f["labels"]["com.openfaas.scale.min"],
            f["labels"]["com.openfaas.scale.max"]
        );
    }
    let configured = std::fs::read_to_string(job.join("stack.yml")).unwrap();

    // Unreachable service and an error answer: the step fails, says why, changes nothing.
    let down = unreachable_endpoint();
    let failed = run(
        "recommend-stack.sh",
        &job,
        &[base.as_slice(), &[("FAASCONF_ENDPOINT", &down)]].concat(),
    );
    assert!(!failed.status.success());
    let message = stderr(&failed);
    assert!(
        message.contains(&format!(
            "--endpoint {down}: the policy service is unreachable"
        )),
        "{message}"
    );
    assert!(message.contains("stack.yml is unchanged"), "{message}");
    let ghost = run(
        "recommend-stack.sh",
        &job,
        &[
            ("WORKFLOW", "ghost"),
            ("USERS", "20"),
            ("FAASCONF_ENDPOINT", &endpoint),
        ],
    );
    assert!(!ghost.status.success());
    assert!(stderr(&ghost).contains("NotFound"), "{}", stderr(&ghost));
    let missing = run("recommend-stack.sh", &job, &[("WORKFLOW", "parallel")]);
    assert!(
        !missing.status.success() && stderr(&missing).contains("FAASCONF_ENDPOINT"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(
        std::fs::read_to_string(job.join("stack.yml")).unwrap(),
        configured
    );

    // The patch step, applied through a kubectl stand-in that records its arguments.
    let kubectl = dir.path().join("kubectl");
    let calls = dir.path().join("kubectl.calls");
    common::write_script(
        &kubectl,
        &format!("#!/bin/sh\necho \"$*\" >> {}\n", calls.display()),
    );
    let kubectl_path = kubectl.to_str().unwrap().to_owned();
    let with_kubectl = [("KUBECTL", kubectl_path.as_str()), ("APPLY", "1")];
    let patched = run(
        "recommend-patch.sh",
        &job,
        &[
            base.as_slice(),
            &with_kubectl,
            &[("FAASCONF_ENDPOINT", &endpoint)],
        ]
        .concat(),
    );
    assert!(patched.status.success(), "{}", stderr(&patched));
    let recorded = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(recorded.lines().count(), names.len(), "{recorded}");
    for name in &names {
        let file = job.join("faasconf-patches").join(format!("{name}.yaml"));
        let call = format!(
            "patch deployment {name} --namespace openfaas-fn --type strategic --patch-file {}",
            Path::new("faasconf-patches")
                .join(format!("{name}.yaml"))
                .display()
        );
        assert!(
            recorded.lines().any(|l| l == call),
            "{call} not in {recorded}"
        );
        let patch: Deployment =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(patch.metadata.name.as_deref(), Some(name.as_str()));
        assert!(patch.spec.unwrap().replicas.unwrap() >= 1);
    }
    std::fs::remove_file(&calls).unwrap();
    let failed = run(
        "recommend-patch.sh",
        &job,
        &[
            base.as_slice(),
            &with_kubectl,
            &[("FAASCONF_ENDPOINT", &down)],
        ]
        .concat(),
    );
    assert!(!failed.status.success());
    assert!(
        stderr(&failed).contains("nothing patched"),
        "{}",
        stderr(&failed)
    );
    assert!(!calls.exists(), "kubectl was not called");
}
