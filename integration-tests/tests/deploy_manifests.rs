//! The Kubernetes manifests in `deploy/kubernetes`: every kustomization is built (resources and
//! strategic-merge patches, the subset of kustomize they use), every object it yields is parsed
//! into the typed object it claims to be and must serialise back to exactly what was written
//! (a misspelt or misplaced field is dropped by the typed object, so it fails here), and the
//! objects must fit together: probes, ports, selectors, security, and environment variables the
//! binaries read.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;
mod kustomize;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodTemplateSpec, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kustomize::{PodMonitor, build, kustomizations};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    common::repository()
        .join("deploy/kubernetes")
        .canonicalize()
        .unwrap()
}

/// The first place `a` and `b` differ, as a JSON path.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => first_difference(u, v, &format!("{path}.{k}")),
                (Some(_), None) => Some(format!("{path}.{k} (not a field of the typed object)")),
                // Typed objects of a kind (a volume claim template) always say what they are.
                (None, _) if k == "apiVersion" || k == "kind" => None,
                (None, _) => Some(format!("{path}.{k} (added by the typed object)")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]"))),
        _ => (a != b).then(|| format!("{path}: {a} became {b}")),
    }
}

/// Parses `object` as `T` and checks that nothing was lost or changed on the way.
fn typed<T: DeserializeOwned + Serialize>(object: &Value, origin: &str) -> T {
    let parsed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{origin}: not a valid {}: {e}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&parsed).unwrap();
    if let Some(difference) = first_difference(object, &back, "") {
        panic!("{origin}: {difference}");
    }
    parsed
}

/// The typed objects of one built kustomization.
#[derive(Default)]
struct Objects {
    deployments: Vec<Deployment>,
    stateful_sets: Vec<StatefulSet>,
    services: Vec<Service>,
    service_accounts: Vec<ServiceAccount>,
    network_policies: Vec<NetworkPolicy>,
    pod_monitors: Vec<PodMonitor>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    namespaces: Vec<Namespace>,
    config_maps: Vec<ConfigMap>,
}

fn parse_all(dir: &Path) -> Objects {
    let mut objects = Objects::default();
    for (origin, object) in build(dir) {
        let kind = (
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        );
        let origin = format!("{origin} ({}/{})", kind.0, kind.1);
        match kind {
            ("apps/v1", "Deployment") => objects.deployments.push(typed(&object, &origin)),
            ("apps/v1", "StatefulSet") => objects.stateful_sets.push(typed(&object, &origin)),
            ("v1", "Service") => objects.services.push(typed(&object, &origin)),
            ("v1", "ServiceAccount") => objects.service_accounts.push(typed(&object, &origin)),
            ("v1", "Namespace") => objects.namespaces.push(typed(&object, &origin)),
            ("v1", "ConfigMap") => objects.config_maps.push(typed(&object, &origin)),
            ("networking.k8s.io/v1", "NetworkPolicy") => {
                objects.network_policies.push(typed(&object, &origin));
            }
            ("monitoring.coreos.com/v1", "PodMonitor") => {
                objects.pod_monitors.push(typed(&object, &origin));
            }
            ("rbac.authorization.k8s.io/v1", "Role") => objects.roles.push(typed(&object, &origin)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                objects.role_bindings.push(typed(&object, &origin));
            }
            _ => panic!("{origin}: no typed check for this kind; add one"),
        }
    }
    objects
}

/// The pod templates of the workloads, by workload name.
fn pods(objects: &Objects) -> Vec<(String, &PodTemplateSpec)> {
    let name =
        |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.name.clone().unwrap();
    objects
        .deployments
        .iter()
        .map(|d| (name(&d.metadata), &d.spec.as_ref().unwrap().template))
        .chain(
            objects
                .stateful_sets
                .iter()
                .map(|s| (name(&s.metadata), &s.spec.as_ref().unwrap().template)),
        )
        .collect()
}

fn labels_match(
    selector: &std::collections::BTreeMap<String, String>,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let labels = labels.cloned().unwrap_or_default();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn port_named<'a>(container: &'a Container, name: &str) -> Option<&'a i32> {
    container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| &p.container_port)
}

/// Every container: the image of its service, gRPC probes on its gRPC port, requests and
/// limits, non-root with a read-only root filesystem and no capabilities, and only environment
/// variables its binary reads.
fn check_containers(objects: &Objects, origin: &str) {
    for (workload, template) in pods(objects) {
        let spec = template.spec.as_ref().unwrap();
        let pod_security = spec.security_context.as_ref().unwrap();
        assert_eq!(
            pod_security.run_as_non_root,
            Some(true),
            "{origin} {workload}"
        );
        let binary = workload.as_str();
        let known = common::environment_of(binary);
        for c in &spec.containers {
            let at = format!("{origin} {workload}/{}", c.name);
            assert!(
                c.image.as_deref().unwrap().contains(&format!("/{binary}:")),
                "{at}: image {:?} is not {binary}'s",
                c.image
            );
            let grpc = *port_named(c, "grpc").unwrap_or_else(|| panic!("{at}: no grpc port"));
            assert!(port_named(c, "metrics").is_some(), "{at}: no metrics port");
            // Kubernetes gRPC probes speak plaintext: with TLS on, they go to the health port.
            let env_value = |name: &str| {
                c.env
                    .iter()
                    .flatten()
                    .find(|e| e.name == name)
                    .and_then(|e| e.value.clone())
            };
            let probed = match env_value("FAASCONF_HEALTH_ADDR") {
                Some(addr) => {
                    let port: i32 = addr.rsplit(':').next().unwrap().parse().unwrap();
                    assert_eq!(
                        port_named(c, "health"),
                        Some(&port),
                        "{at}: a `health` port {port}"
                    );
                    port
                }
                None => {
                    assert!(
                        env_value("FAASCONF_TLS_CERT").is_none(),
                        "{at}: TLS without FAASCONF_HEALTH_ADDR: the probes would fail"
                    );
                    grpc
                }
            };
            // Files the service reads lie in mounted volumes.
            let mounts: Vec<String> = c
                .volume_mounts
                .iter()
                .flatten()
                .map(|m| format!("{}/", m.mount_path))
                .collect();
            for e in c.env.iter().flatten() {
                let value = e.value.clone().unwrap_or_default();
                if value.starts_with("/etc/") {
                    assert!(
                        mounts.iter().any(|m| value.starts_with(m.as_str())),
                        "{at}: {} = {value} is in no mounted volume",
                        e.name
                    );
                }
            }
            let volumes: Vec<String> = spec
                .volumes
                .iter()
                .flatten()
                .map(|v| v.name.clone())
                .collect();
            for m in c.volume_mounts.iter().flatten() {
                // `data` is the StatefulSet's volume claim template.
                let claimed = m.name == "data";
                assert!(
                    claimed || volumes.contains(&m.name),
                    "{at}: mounts {} which is no volume",
                    m.name
                );
            }
            for (kind, probe) in [
                ("liveness", &c.liveness_probe),
                ("readiness", &c.readiness_probe),
            ] {
                let probe = probe
                    .as_ref()
                    .unwrap_or_else(|| panic!("{at}: no {kind} probe"));
                let port = probe.grpc.as_ref().map(|g| g.port);
                assert_eq!(
                    port,
                    Some(probed),
                    "{at}: {kind} probe is not grpc.health.v1 on {probed}"
                );
            }
            let resources = c.resources.as_ref().unwrap();
            for (what, set) in [
                ("requests", &resources.requests),
                ("limits", &resources.limits),
            ] {
                let set = set.as_ref().unwrap_or_else(|| panic!("{at}: no {what}"));
                assert!(
                    set.contains_key("cpu") && set.contains_key("memory"),
                    "{at}: {what}"
                );
            }
            let security = c.security_context.as_ref().unwrap();
            assert_eq!(security.read_only_root_filesystem, Some(true), "{at}");
            assert_eq!(security.allow_privilege_escalation, Some(false), "{at}");
            let dropped = security.capabilities.as_ref().and_then(|c| c.drop.clone());
            assert_eq!(dropped, Some(vec!["ALL".to_owned()]), "{at}");
            for env in c.env.iter().flatten() {
                assert!(
                    known.contains(&env.name)
                        || env.name == "RUST_LOG"
                        || env.name.starts_with("OTEL_"),
                    "{at}: {binary} reads no variable {} (it reads {known:?})",
                    env.name
                );
            }
        }
    }
}

/// Services, the NetworkPolicy and the PodMonitor select pods that exist, on ports they have.
fn check_selectors(objects: &Objects, origin: &str) {
    let pods = pods(objects);
    let selected = |selector: &std::collections::BTreeMap<String, String>| {
        pods.iter()
            .filter(|(_, t)| labels_match(selector, t.metadata.as_ref().unwrap().labels.as_ref()))
            .map(|(n, t)| (n.clone(), &t.spec.as_ref().unwrap().containers[0]))
            .collect::<Vec<_>>()
    };
    for service in &objects.services {
        let spec = service.spec.as_ref().unwrap();
        let chosen = selected(spec.selector.as_ref().unwrap());
        let at = format!(
            "{origin} Service {}",
            service.metadata.name.as_deref().unwrap()
        );
        assert_eq!(chosen.len(), 1, "{at} selects {} workloads", chosen.len());
        for port in spec.ports.iter().flatten() {
            use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
            let Some(IntOrString::String(target)) = &port.target_port else {
                panic!("{at}: target ports are named");
            };
            assert!(
                port_named(chosen[0].1, target).is_some(),
                "{at}: no port {target}"
            );
        }
    }
    for policy in &objects.network_policies {
        let spec = policy.spec.as_ref().unwrap();
        let chosen = selected(
            spec.pod_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap(),
        );
        assert_eq!(
            chosen.len(),
            1,
            "{origin}: the NetworkPolicy selects one workload"
        );
        for rule in spec.ingress.iter().flatten() {
            for port in rule.ports.iter().flatten() {
                use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
                let Some(IntOrString::String(name)) = &port.port else {
                    panic!("{origin}: NetworkPolicy ports are named");
                };
                assert!(
                    port_named(chosen[0].1, name).is_some(),
                    "{origin}: no port {name}"
                );
            }
        }
    }
    for monitor in &objects.pod_monitors {
        let chosen = selected(monitor.spec.selector.match_labels.as_ref().unwrap());
        let names: BTreeSet<&str> = chosen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["faasconf-actuator", "faasconf-policy"]),
            "{origin}: the PodMonitor scrapes both services"
        );
        for endpoint in &monitor.spec.pod_metrics_endpoints {
            for (n, c) in &chosen {
                assert!(
                    port_named(c, &endpoint.port).is_some(),
                    "{origin}: {n} has no port {}",
                    endpoint.port
                );
            }
        }
    }
}

#[test]
fn every_kustomization_builds_into_typed_objects_that_fit_together() {
    let dirs = kustomizations(&deploy_dir());
    assert!(dirs.len() >= 2, "base and overlays: {dirs:?}");
    for dir in dirs {
        let origin = dir
            .strip_prefix(deploy_dir())
            .unwrap()
            .display()
            .to_string();
        let objects = parse_all(&dir);
        assert_eq!(objects.deployments.len(), 1, "{origin}: the actuator");
        assert_eq!(objects.stateful_sets.len(), 1, "{origin}: the policy");
        let policy = objects.stateful_sets[0].spec.as_ref().unwrap();
        assert!(
            policy
                .volume_claim_templates
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
            "{origin}: the policy's store lives on a volume"
        );
        assert_eq!(objects.pod_monitors.len(), 1, "{origin}");
        assert_eq!(objects.network_policies.len(), 1, "{origin}");
        check_containers(&objects, &origin);
        check_selectors(&objects, &origin);
        // A workload's service account exists; the actuator's token is mounted only where a
        // Role is granted to it.
        for (workload, template) in pods(&objects) {
            let account = template
                .spec
                .as_ref()
                .unwrap()
                .service_account_name
                .clone()
                .unwrap();
            let sa = objects
                .service_accounts
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(&account))
                .unwrap_or_else(|| panic!("{origin}: {workload}'s ServiceAccount {account}"));
            let mounted = sa.automount_service_account_token.unwrap_or(true);
            let bound = objects
                .role_bindings
                .iter()
                .any(|b| b.subjects.iter().flatten().any(|s| s.name == account));
            assert_eq!(
                mounted, bound,
                "{origin}: {account} has a token exactly when it has a Role"
            );
        }
    }
}

#[test]
fn the_openfaas_overlay_serves_only_the_workflows_of_its_config_map() {
    let objects = parse_all(&deploy_dir().join("overlays/openfaas"));
    let example =
        std::fs::read_to_string(common::repository().join("deploy/examples/shop.yaml")).unwrap();
    let workflows = objects
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("faasconf-workflows"))
        .expect("ConfigMap faasconf-workflows");
    let data = workflows.data.as_ref().unwrap();
    assert_eq!(
        data["shop.yaml"], example,
        "the ConfigMap holds deploy/examples/shop.yaml as it is"
    );
    let served = pods(&objects);
    assert_eq!(served.len(), 2, "actuator and policy");
    for (workload, template) in served {
        let spec = template.spec.as_ref().unwrap();
        let c = &spec.containers[0];
        let path = c
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "FAASCONF_WORKFLOWS")
            .and_then(|e| e.value.clone())
            .unwrap_or_else(|| {
                panic!(
                    "{workload}: FAASCONF_WORKFLOWS unset: it would serve every built-in workflow"
                )
            });
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| path.starts_with(&format!("{}/", m.mount_path)))
            .unwrap_or_else(|| panic!("{workload}: {path} is in no mount"));
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        assert_eq!(
            volume.config_map.as_ref().map(|c| c.name.as_str()),
            Some("faasconf-workflows"),
            "{workload}"
        );
        let key = &path[mount.mount_path.len() + 1..];
        let text = data
            .get(key)
            .unwrap_or_else(|| panic!("{workload}: {key} is no key of the ConfigMap"));
        let workflow = faasconf_core::catalog::parse_topology(text, false, key).unwrap();
        // OpenFaaS CE: at most 15 functions, 5 replicas each.
        assert!(workflow.len() <= 15, "{workload}");
        assert!(
            workflow
                .functions
                .iter()
                .all(|f| f.bounds.replicas.max <= 5),
            "{workload}"
        );
    }
}

/// The cAdvisor scrape job shipped for OpenFaaS CE's Prometheus (`deploy/prometheus`): valid for
/// promtool, and it keeps every cAdvisor series the default queries read.
#[test]
fn the_cadvisor_scrape_job_keeps_every_series_the_queries_read() {
    let dir = common::repository().join("deploy/prometheus");
    let text = std::fs::read_to_string(dir.join("cadvisor-scrape.yml")).unwrap();
    let parsed: Value = serde_yaml_ng::from_str(&text).unwrap();
    let job = &parsed["scrape_configs"][0];
    assert_eq!(job["kubernetes_sd_configs"][0]["role"], "node", "{job}");
    // Debian's promtool is built without Kubernetes discovery: the rest of the job (TLS,
    // authorization, relabelling regexes) is checked with static targets in its place.
    let mut checkable = parsed.clone();
    let checked_job = checkable["scrape_configs"][0].as_object_mut().unwrap();
    checked_job.remove("kubernetes_sd_configs");
    checked_job.insert(
        "static_configs".into(),
        serde_json::json!([{ "targets": ["kubernetes.default.svc:443"] }]),
    );
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("cadvisor-scrape.yml");
    std::fs::write(&config, serde_yaml_ng::to_string(&checkable).unwrap()).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "config", "--syntax-only"])
        .arg(&config)
        .output()
        .expect("promtool (apt-get install prometheus)");
    assert!(
        out.status.success(),
        "promtool check config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let keep = parsed["scrape_configs"][0]["metric_relabel_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source_labels"][0] == "__name__")
        .and_then(|r| r["regex"].as_str())
        .unwrap();
    // The job's keep rule is one alternation: `container_(a|b|...)`.
    let kept: BTreeSet<String> = keep
        .strip_prefix("container_(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("keep rule {keep} is not container_(a|b|...)"))
        .split('|')
        .map(|a| format!("container_{a}"))
        .collect();
    let queries = serde_json::to_value(faasconf_prometheus::Queries::default()).unwrap();
    let mut read = BTreeSet::new();
    for template in queries.as_object().unwrap().values() {
        let template = template.as_str().unwrap();
        for (at, _) in template.match_indices("container_") {
            let name: String = template[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // A series is followed by its selector (`${container_label}` is a placeholder).
            if template[at + name.len()..].starts_with('{') {
                read.insert(name);
            }
        }
    }
    assert!(read.len() >= 4, "{read:?}");
    for name in &read {
        assert!(kept.contains(name), "{name} is dropped by the scrape job");
    }
    for document in kustomize::documents(&dir.join("cadvisor-rbac.yaml")) {
        match document["kind"].as_str() {
            Some("ClusterRole") => {
                let _: ClusterRole = typed(&document, "cadvisor-rbac.yaml");
            }
            Some("ClusterRoleBinding") => {
                let _: ClusterRoleBinding = typed(&document, "cadvisor-rbac.yaml");
            }
            other => panic!("cadvisor-rbac.yaml: unexpected {other:?}"),
        }
    }
}

#[test]
fn every_manifest_file_is_part_of_a_kustomization() {
    let mut used = BTreeSet::new();
    for dir in kustomizations(&deploy_dir()) {
        used.extend(kustomize::files(&dir));
    }
    let mut all = BTreeSet::new();
    kustomize::yaml_files(&deploy_dir(), &mut all);
    let unused: Vec<_> = all.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "manifests no kustomization uses (so no test checks): {unused:?}"
    );
}

#[test]
fn a_misspelt_field_is_caught() {
    let mut object: Value = serde_yaml_ng::from_str(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selector: {a: b}, ports: [{port: 1, targetPort: grpc}]}\n",
    )
    .unwrap();
    let _: Service = typed(&object, "correct");
    object["spec"]["ports"][0]["tragetPort"] = Value::from("grpc");
    let caught = std::panic::catch_unwind(|| {
        let _: Service = typed(&object, "misspelt");
    });
    let message = caught.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains(".spec.ports[0].tragetPort"), "{message}");
}

#[test]
fn the_upstream_schemas_reject_a_misspelt_field_and_a_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.yaml");
    let good = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selector: {a: b}, ports: [{port: 1, targetPort: grpc}]}\n";
    std::fs::write(&file, good).unwrap();
    kustomize::validate(&file).unwrap();
    for (bad, named) in [
        (good.replace("targetPort", "tragetPort"), "tragetPort"),
        (good.replace("port: 1,", "port: one,"), "one"),
    ] {
        std::fs::write(&file, &bad).unwrap();
        let failures = kustomize::validate(&file).unwrap_err();
        assert!(failures.contains(named), "{failures}");
    }
}
