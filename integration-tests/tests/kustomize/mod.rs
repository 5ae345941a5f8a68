//! The part of kustomize the manifests in `deploy/kubernetes` use, for the tests: a
//! kustomization lists `resources` (files or other kustomizations) and `patches` (strategic-merge
//! patches with a `target`). Anything else in a kustomization is refused, so a manifest that
//! starts using more fails here rather than passing unchecked. Also the Prometheus operator's
//! `PodMonitor`, typed (k8s-openapi has no custom resources).

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

/// The objects the kustomization in `dir` yields, each with the file it came from.
pub fn build(dir: &Path) -> Vec<(String, Value)> {
    let k = read_kustomization(dir);
    let mut objects = Vec::new();
    for resource in &k.resources {
        let path = dir.join(resource);
        assert!(
            path.exists(),
            "{}: resource {resource} does not exist",
            dir.display()
        );
        if path.is_dir() {
            objects.extend(build(&path));
        } else {
            let origin = path.display().to_string();
            objects.extend(documents(&path).into_iter().map(|d| (origin.clone(), d)));
        }
    }
    for patch in &k.patches {
        let path = dir.join(&patch.path);
        let [document] = documents(&path).try_into().unwrap_or_else(|d: Vec<Value>| {
            panic!(
                "{}: a patch is one document, not {}",
                path.display(),
                d.len()
            )
        });
        assert_eq!(
            (
                document["kind"].as_str(),
                document["metadata"]["name"].as_str()
            ),
            (
                Some(patch.target.kind.as_str()),
                Some(patch.target.name.as_str())
            ),
            "{}: the patch names another object than its target",
            path.display()
        );
        let targets: Vec<&mut (String, Value)> = objects
            .iter_mut()
            .filter(|(_, o)| {
                o["kind"] == patch.target.kind.as_str()
                    && o["metadata"]["name"] == patch.target.name.as_str()
            })
            .collect();
        assert_eq!(
            targets.len(),
            1,
            "{}: patch target not found once",
            path.display()
        );
        for (origin, object) in targets {
            merge(object, &document, "");
            origin.push_str(&format!(" patched by {}", path.display()));
        }
    }
    objects
}

/// The key a list is merged by in a strategic-merge patch (Kubernetes' `patchMergeKey`), for the
/// lists the manifests patch; other lists are replaced.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "env" | "volumes" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ports" => Some("containerPort"),
        _ => None,
    }
}

/// Strategic merge of `patch` into `base`: objects merge field by field (null deletes), keyed
/// lists merge element by key, other values are replaced.
pub fn merge(base: &mut Value, patch: &Value, field: &str) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(existing) = b.get_mut(k) {
                    merge(existing, v, k);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (Value::Array(b), Value::Array(p)) if merge_key(field).is_some() => {
            let key = merge_key(field).unwrap();
            for element in p {
                match b.iter_mut().find(|e| e[key] == element[key]) {
                    Some(existing) => merge(existing, element, ""),
                    None => b.push(element.clone()),
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[test]
fn strategic_merge_merges_keyed_lists_and_replaces_the_rest() {
    let mut base = serde_json::json!({
        "spec": { "containers": [{ "name": "a", "env": [{ "name": "X", "value": "1" }, { "name": "Y", "value": "2" }], "args": ["p"] }], "drop": 1 }
    });
    let patch = serde_json::json!({
        "spec": { "containers": [{ "name": "a", "env": [{ "name": "Y", "value": "3" }, { "name": "Z", "value": "4" }], "args": ["q"] }], "drop": null }
    });
    merge(&mut base, &patch, "");
    assert_eq!(
        base,
        serde_json::json!({
            "spec": { "containers": [{ "name": "a", "env": [{ "name": "X", "value": "1" }, { "name": "Y", "value": "3" }, { "name": "Z", "value": "4" }], "args": ["q"] }] }
        })
    );
}
