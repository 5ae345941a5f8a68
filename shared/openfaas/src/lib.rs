//! `faasconf-openfaas`: how a function's configuration maps onto OpenFaaS, both ways — the one
//! place the Kubernetes backend, the CLI's `openfaas` (stack.yml) and `patch` outputs take the
//! field names, quantities and object bodies from.
//!
//! - [`Target::Deployment`] (OpenFaaS CE, faas-netes): server-side apply on the function's
//!   Deployment: `spec.replicas` and the `com.openfaas.scale.min/max` labels on the Deployment
//!   itself — never on the pod template, so that a change of replicas only scales (no pod is
//!   restarted) — and in the container named after the function its CPU/memory requests and
//!   limits and the watchdog's `max_inflight` environment variable (a change of these rolls the
//!   pods, as the twin models it).
//! - [`Target::Function`] (OpenFaaS Pro operator, which overwrites direct Deployment edits):
//!   server-side apply on the `functions.openfaas.com/v1` `Function`: `spec.labels`,
//!   `spec.environment`, `spec.limits`, `spec.requests`. The operator copies the labels onto the
//!   pod template, so there every change, replicas included, rolls the pods.
//!
//! - stack.yml ([`stack_fields`]): a function's `limits`, `requests`, `environment.max_inflight`
//!   and the scale labels, as `faas-cli deploy` reads them.
//!
//! Both objects carry our configuration version in the `faasconf.dev/config-version`
//! annotation. Only the fields we own are sent, so apply merges them entry by entry (containers
//! and env are keyed lists) and never touches the image or anything else another manager owns.
//! The Kubernetes API resources of the targets are the actuator's (`kube`); this crate is plain
//! JSON.

use faasconf_core::FunctionConfig;
use serde_json::{Value, json};

/// The annotation holding the configuration version an object was last applied at.
pub const VERSION_ANNOTATION: &str = "faasconf.dev/config-version";

/// Which object holds a function's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The Deployment faas-netes created (OpenFaaS CE).
    Deployment,
    /// The OpenFaaS `Function` custom resource (Pro operator).
    Function,
}

/// CPU quantity of `millis` (e.g. `500m`).
pub fn cpu_quantity(millis: u32) -> String {
    format!("{millis}m")
}

/// Memory quantity of `mib` (e.g. `512Mi`).
pub fn memory_quantity(mib: u32) -> String {
    format!("{mib}Mi")
}

/// The CPU and memory of `config` as Kubernetes quantities (`{"cpu": "500m", "memory":
/// "512Mi"}`): the requests and the limits alike.
pub fn resources_of(config: &FunctionConfig) -> Value {
    json!({ "cpu": cpu_quantity(config.cpu_millis), "memory": memory_quantity(config.memory_mib) })
}

/// The labels pinning a function's replicas (`com.openfaas.scale.min` = `max`).
pub fn scale_labels(config: &FunctionConfig) -> Value {
    let replicas = config.replicas.to_string();
    json!({ "com.openfaas.scale.min": replicas, "com.openfaas.scale.max": replicas })
}

/// A function's entry in an OpenFaaS stack.yml `functions:` map: limits and requests,
/// `max_inflight` and the scale labels.
pub fn stack_fields(config: &FunctionConfig) -> Value {
    let resources = resources_of(config);
    json!({
        "limits": resources,
        "requests": resources,
        "environment": { "max_inflight": config.concurrency.to_string() },
        "labels": scale_labels(config),
    })
}

/// The server-side apply body that sets `config` on function `name` (with `version`, our
/// version annotation; without, a plain patch body).
pub fn apply_body(
    target: Target,
    name: &str,
    namespace: &str,
    config: &FunctionConfig,
    version: Option<u64>,
) -> Value {
    let resources = resources_of(config);
    let mut metadata = json!({ "name": name, "namespace": namespace });
    if let Some(version) = version {
        metadata["annotations"] = json!({ VERSION_ANNOTATION: version.to_string() });
    }
    let scale = scale_labels(config);
    match target {
        Target::Deployment => json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": with_labels(metadata, scale),
            "spec": {
                "replicas": config.replicas,
                "template": {
                    "spec": { "containers": [{
                        "name": name,
                        "resources": { "requests": resources, "limits": resources },
                        "env": [{ "name": "max_inflight", "value": config.concurrency.to_string() }],
                    }] },
                },
            },
        }),
        Target::Function => json!({
            "apiVersion": "openfaas.com/v1",
            "kind": "Function",
            "metadata": metadata,
            "spec": {
                "name": name,
                "labels": scale,
                "environment": { "max_inflight": config.concurrency.to_string() },
                "requests": resources,
                "limits": resources,
            },
        }),
    }
}

fn with_labels(mut metadata: Value, labels: Value) -> Value {
    metadata["labels"] = labels;
    metadata
}

/// Why an object does not hold a readable configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ObjectError {
    /// JSON path of the offending field in the object.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn object_error(field: impl Into<String>, message: impl Into<String>) -> ObjectError {
    ObjectError {
        field: field.into(),
        message: message.into(),
    }
}

/// The configuration an object holds and the version annotation on it. Knobs that are not set
/// read as 0 (no limit, as Kubernetes and the watchdog treat them).
pub fn read_config(
    target: Target,
    name: &str,
    object: &Value,
) -> Result<(FunctionConfig, Option<u64>), ObjectError> {
    let version = match object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(VERSION_ANNOTATION))
    {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    object_error(
                        format!("metadata.annotations[{VERSION_ANNOTATION}]"),
                        format!("{v} is not a version number"),
                    )
                })?,
        ),
    };
    let config = match target {
        Target::Deployment => deployment_config(name, object)?,
        Target::Function => function_config(object)?,
    };
    Ok((config, version))
}

/// The configuration a Deployment runs (also used to see the operator's rollout of a Function).
pub fn deployment_config(name: &str, object: &Value) -> Result<FunctionConfig, ObjectError> {
    let replicas = match object.pointer("/spec/replicas") {
        None => 1, // the API default
        Some(v) => v
            .as_u64()
            .and_then(|r| u32::try_from(r).ok())
            .ok_or_else(|| object_error("spec.replicas", format!("{v} is not a replica count")))?,
    };
    let containers = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .ok_or_else(|| object_error("spec.template.spec.containers", "missing"))?;
    let container = match containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(c) => c,
        None if containers.len() == 1 => &containers[0],
        None => {
            return Err(object_error(
                "spec.template.spec.containers",
                format!("no container named {name:?}"),
            ));
        }
    };
    let path = format!("spec.template.spec.containers[{name}]");
    let (cpu_millis, memory_mib) =
        resources(container.get("resources"), &format!("{path}.resources"))?;
    let concurrency = match container
        .get("env")
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some("max_inflight"))
        }) {
        None => 0,
        Some(e) => parse_count(e.get("value"), &format!("{path}.env[max_inflight]"))?,
    };
    Ok(FunctionConfig {
        cpu_millis,
        memory_mib,
        replicas,
        concurrency,
    })
}

fn function_config(object: &Value) -> Result<FunctionConfig, ObjectError> {
    let spec = object
        .get("spec")
        .ok_or_else(|| object_error("spec", "missing"))?;
    let (cpu_millis, memory_mib) = resources(Some(spec), "spec")?;
    let replicas = match spec.pointer("/labels/com.openfaas.scale.min") {
        None => 1,
        Some(v) => parse_count(Some(v), "spec.labels[com.openfaas.scale.min]")?,
    };
    let concurrency = match spec.pointer("/environment/max_inflight") {
        None => 0,
        Some(v) => parse_count(Some(v), "spec.environment[max_inflight]")?,
    };
    Ok(FunctionConfig {
        cpu_millis,
        memory_mib,
        replicas,
        concurrency,
    })
}

/// CPU millis and memory MiB from `limits` (falling back to `requests`) under `holder`.
fn resources(holder: Option<&Value>, path: &str) -> Result<(u32, u32), ObjectError> {
    let pick = |knob: &str| -> Option<(&Value, String)> {
        ["limits", "requests"].into_iter().find_map(|kind| {
            holder?
                .get(kind)?
                .get(knob)
                .map(|v| (v, format!("{path}.{kind}.{knob}")))
        })
    };
    let cpu = match pick("cpu") {
        None => 0,
        Some((v, field)) => v
            .as_str()
            .and_then(parse_cpu_millis)
            .ok_or_else(|| object_error(field, format!("{v} is not a CPU quantity")))?,
    };
    let memory = match pick("memory") {
        None => 0,
        Some((v, field)) => v
            .as_str()
            .and_then(parse_memory_mib)
            .ok_or_else(|| object_error(field, format!("{v} is not a memory quantity")))?,
    };
    Ok((cpu, memory))
}

fn parse_count(v: Option<&Value>, field: &str) -> Result<u32, ObjectError> {
    let v = v.ok_or_else(|| object_error(field, "missing"))?;
    let parsed = match v {
        Value::String(s) => s.trim().parse::<u32>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    parsed.ok_or_else(|| object_error(field, format!("{v} is not a non-negative integer")))
}

fn split_number(quantity: &str) -> Option<(f64, &str)> {
    let quantity = quantity.trim();
    let end = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(quantity.len());
    let number: f64 = quantity[..end].parse().ok()?;
    number.is_finite().then_some((number, &quantity[end..]))
}

/// A Kubernetes CPU quantity (`500m`, `1`, `0.25`) in millicores, rounded up.
pub fn parse_cpu_millis(quantity: &str) -> Option<u32> {
    let (number, suffix) = split_number(quantity)?;
    let millis = match suffix {
        "m" => number,
        "" => number * 1000.0,
        _ => return None,
    };
    (millis <= f64::from(u32::MAX)).then(|| millis.ceil() as u32)
}

/// A Kubernetes memory quantity (`512Mi`, `1Gi`, `536870912`, `500M`) in MiB, rounded to nearest.
pub fn parse_memory_mib(quantity: &str) -> Option<u32> {
    let (number, suffix) = split_number(quantity)?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    let mib = number * factor / (1024.0 * 1024.0);
    (mib <= f64::from(u32::MAX)).then(|| mib.round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: FunctionConfig = FunctionConfig {
        cpu_millis: 750,
        memory_mib: 1536,
        replicas: 3,
        concurrency: 6,
    };

    #[test]
    fn quantities_parse_as_kubernetes_writes_them() {
        assert_eq!(parse_cpu_millis("500m"), Some(500));
        assert_eq!(parse_cpu_millis("2"), Some(2000));
        assert_eq!(parse_cpu_millis("0.25"), Some(250));
        assert_eq!(parse_cpu_millis("1.5Gi"), None);
        assert_eq!(parse_memory_mib("512Mi"), Some(512));
        assert_eq!(parse_memory_mib("1Gi"), Some(1024));
        assert_eq!(parse_memory_mib("536870912"), Some(512));
        assert_eq!(parse_memory_mib("128974848"), Some(123));
        assert_eq!(parse_memory_mib("500M"), Some(477));
        assert_eq!(parse_memory_mib("lots"), None);
    }

    #[test]
    fn what_is_applied_reads_back_for_both_targets() {
        for target in [Target::Deployment, Target::Function] {
            let body = apply_body(target, "resnet", "openfaas-fn", &CONFIG, Some(7));
            assert_eq!(
                read_config(target, "resnet", &body),
                Ok((CONFIG, Some(7))),
                "{target:?}"
            );
        }
    }

    #[test]
    fn the_deployment_body_carries_only_our_fields() {
        let body = apply_body(Target::Deployment, "resnet", "openfaas-fn", &CONFIG, None);
        assert_eq!(
            body,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "resnet", "namespace": "openfaas-fn",
                    "labels": { "com.openfaas.scale.min": "3", "com.openfaas.scale.max": "3" } },
                "spec": { "replicas": 3, "template": {
                    "spec": { "containers": [{ "name": "resnet",
                        "resources": { "requests": { "cpu": "750m", "memory": "1536Mi" }, "limits": { "cpu": "750m", "memory": "1536Mi" } },
                        "env": [{ "name": "max_inflight", "value": "6" }] }] } } }
            })
        );
    }

    #[test]
    fn a_change_of_replicas_leaves_the_pod_template_as_it_was() {
        let more = FunctionConfig {
            replicas: 5,
            ..CONFIG
        };
        let (a, b) = (
            apply_body(
                Target::Deployment,
                "resnet",
                "openfaas-fn",
                &CONFIG,
                Some(1),
            ),
            apply_body(Target::Deployment, "resnet", "openfaas-fn", &more, Some(2)),
        );
        assert_eq!(a["spec"]["template"], b["spec"]["template"]);
        assert_ne!(a["spec"]["replicas"], b["spec"]["replicas"]);
        let cpu = FunctionConfig {
            cpu_millis: 500,
            ..CONFIG
        };
        let c = apply_body(Target::Deployment, "resnet", "openfaas-fn", &cpu, Some(2));
        assert_ne!(a["spec"]["template"], c["spec"]["template"]);
    }

    #[test]
    fn unreadable_objects_name_the_field() {
        let mut body = apply_body(Target::Deployment, "resnet", "openfaas-fn", &CONFIG, None);
        body["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
            json!("fast");
        let e = read_config(Target::Deployment, "resnet", &body).unwrap_err();
        assert_eq!(
            e.field,
            "spec.template.spec.containers[resnet].resources.limits.cpu"
        );
        body["spec"]["template"]["spec"]["containers"][0]["name"] = json!("other");
        body["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "sidecar" }));
        assert_eq!(
            read_config(Target::Deployment, "resnet", &body)
                .unwrap_err()
                .field,
            "spec.template.spec.containers"
        );
        let mut f = apply_body(Target::Function, "resnet", "openfaas-fn", &CONFIG, None);
        f["spec"]["environment"]["max_inflight"] = json!("-1");
        assert_eq!(
            read_config(Target::Function, "resnet", &f)
                .unwrap_err()
                .field,
            "spec.environment[max_inflight]"
        );
    }

    #[test]
    fn unset_knobs_read_as_unlimited() {
        let bare = json!({ "spec": { "template": { "spec": { "containers": [{ "name": "resnet", "image": "x" }] } } } });
        assert_eq!(
            deployment_config("resnet", &bare),
            Ok(FunctionConfig {
                cpu_millis: 0,
                memory_mib: 0,
                replicas: 1,
                concurrency: 0
            })
        );
    }
}
