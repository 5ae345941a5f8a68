//! The built-in benchmark workflows (`sequential`, `parallel`, `branch`, `tcktapp`, see
//! `../shared/reference/workflows.md`) and topology files in YAML or JSON.
//!
//! The ML functions' profiles come from `profiles/ml-parallel-10.json`, made by
//! `faasconf sim calibrate` from the real history (see the README). `load` has no history of
//! its own; it decodes and converts like `rgb` and reuses its profile. TcktApp's profiles are
//! estimated from the prototype's measured per-function p75 (no history is available).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::FunctionBounds;
use crate::error::{Error, FieldError, Result};
use crate::profile::{FunctionProfile, PlatformProfile};
use crate::qos::Qos;
use crate::topology::{BranchArm, FunctionSpec, Stage, Workflow};

/// Names of the built-in workflows.
pub const BUILTIN: [&str; 4] = ["sequential", "parallel", "branch", "tcktapp"];

/// Calibrated profiles: a platform profile and one profile per function name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSet {
    /// Where the profiles come from (command, data file).
    #[serde(default)]
    pub source: String,
    /// Platform and load-generator parameters.
    pub platform: PlatformProfile,
    /// Profiles by function name.
    pub functions: BTreeMap<String, FunctionProfile>,
    /// Fit quality or other notes recorded by calibration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<serde_json::Value>,
}

impl ProfileSet {
    /// Parses a profile set from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let set: ProfileSet = serde_json::from_str(text).map_err(|e| Error::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        let mut errors = set.platform.validate("platform");
        for (name, p) in &set.functions {
            errors.extend(p.validate(&format!("functions.{name}")));
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(Error::Invalid(errors))
        }
    }

    /// Reads a profile set from a JSON file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// The profiles `workflow` holds (its platform and every function's), from `source`.
    pub fn of(workflow: &Workflow, source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            platform: workflow.platform,
            functions: workflow
                .functions
                .iter()
                .map(|f| (f.name.clone(), f.profile))
                .collect(),
            fit: None,
        }
    }

    /// The shipped calibrated profiles of the ML functions.
    pub fn shipped_ml() -> Self {
        // The file is part of the crate and checked by a test; a broken file is a build defect.
        Self::from_json(
            include_str!("../profiles/ml-parallel-10.json"),
            "profiles/ml-parallel-10.json",
        )
        .unwrap_or_else(|e| panic!("shipped profiles are invalid: {e}"))
    }
}

impl Workflow {
    /// This workflow with the profiles of `set` for the functions it names, and its platform.
    pub fn with_profiles(mut self, set: &ProfileSet) -> Self {
        for f in &mut self.functions {
            if let Some(p) = set.functions.get(&f.name) {
                f.profile = *p;
            }
        }
        self.platform = set.platform;
        self
    }
}

fn ml_function(name: &str, set: &ProfileSet) -> FunctionSpec {
    let profile_name = if name == "load" { "rgb" } else { name };
    FunctionSpec {
        name: name.to_owned(),
        bounds: FunctionBounds::ML,
        profile: set.functions.get(profile_name).copied().unwrap_or_default(),
    }
}

/// A built-in workflow by name, with its QoS target ([`builtin_qos`]).
pub fn builtin(name: &str) -> Result<Workflow> {
    plain_builtin(name)?.with_qos(builtin_qos(name))
}

/// The QoS target of a built-in workflow (`workflows.md`): mean latency 12 s for `sequential`,
/// 15 s for `tcktapp`, 13 s for the other ML workflows; success ratio at least 0.9.
pub fn builtin_qos(name: &str) -> Qos {
    let mean_latency_seconds = match name {
        "sequential" => 12.0,
        "tcktapp" => 15.0,
        _ => 13.0,
    };
    Qos {
        mean_latency_seconds,
        min_success_ratio: 0.9,
    }
}

fn plain_builtin(name: &str) -> Result<Workflow> {
    let ml = ProfileSet::shipped_ml();
    let functions = |names: &[&str]| {
        names
            .iter()
            .map(|n| ml_function(n, &ml))
            .collect::<Vec<_>>()
    };
    match name {
        "sequential" => {
            let names = ["starter", "load", "resize", "update", "resnet"];
            Workflow::new(
                name,
                functions(&names),
                Stage::chain(&names),
                None,
                ml.platform,
            )
        }
        "parallel" => {
            let names = ["starter", "rgb", "resize", "update", "resnet", "mobilenet"];
            let plan = Stage::Sequence(vec![
                Stage::call("starter"),
                Stage::call("rgb"),
                Stage::call("resize"),
                Stage::call("update"),
                Stage::Parallel(vec![Stage::call("resnet"), Stage::call("mobilenet")]),
            ]);
            Workflow::new(name, functions(&names), plan, None, ml.platform)
        }
        "branch" => {
            let names = [
                "starter",
                "rgb",
                "resize",
                "update",
                "mobilenet",
                "load",
                "resnet",
            ];
            let plan = Stage::Sequence(vec![
                Stage::call("starter"),
                Stage::Branch(vec![
                    BranchArm {
                        weight: 2.0,
                        stage: Stage::chain(&["rgb", "resize", "update", "mobilenet"]),
                    },
                    BranchArm {
                        weight: 3.0,
                        stage: Stage::chain(&["load", "resnet"]),
                    },
                ]),
            ]);
            Workflow::new(name, functions(&names), plan, None, ml.platform)
        }
        "tcktapp" => tcktapp(),
        other => Err(Error::UnknownWorkflow(other.to_owned())),
    }
}

/// TrainTicket's "search ticket" (12 Java services, synchronous nested calls).
fn tcktapp() -> Result<Workflow> {
    // (name, measured mean p75 in seconds from the prototype, including nested calls).
    let measured = [
        ("get-left-trip-tickets", 0.194),
        ("get-left-ticket-of-interval", 3.51),
        ("get-price-by-routeid-and-traintype", 0.0118),
        ("get-route-by-routeid", 0.0083),
        ("get-route-by-tripid", 0.0383),
        ("get-sold-tickets", 0.0082),
        ("get-traintype-by-traintypeid", 0.01),
        ("get-traintype-by-tripid", 0.0372),
        ("query-already-sold-orders", 0.011),
        ("query-config-entity-by-config-name", 0.0088),
        ("query-for-station-id-by-station-name", 0.0109),
        ("query-for-travel", 0.2245),
    ];
    let own = |i: usize| {
        // Own time = measured p75 minus what its nested calls measured.
        let nested: &[usize] = match i {
            1 => &[4, 5, 7, 9],
            4 => &[3],
            7 => &[6],
            11 => &[10, 2, 3, 6],
            0 => &[],
            _ => &[],
        };
        let t = measured[i].1 - nested.iter().map(|&k| measured[k].1).sum::<f64>();
        t.max(0.004)
    };
    let functions = (0..measured.len())
        .map(|i| {
            let t = own(i);
            FunctionSpec {
                name: measured[i].0.to_owned(),
                bounds: FunctionBounds::TCKTAPP,
                profile: FunctionProfile {
                    // Java services: a third CPU, the rest MongoDB and downstream waits.
                    cpu_core_seconds: 0.3 * t,
                    cpu_cv: 0.4,
                    parallelism: 1.0,
                    io_seconds: 0.6 * t,
                    io_cv: 0.5,
                    throttle_waste: 0.5,
                    memory_base_mib: 300.0,
                    memory_per_request_mib: 4.0,
                    network_rx_bytes: 2_000.0,
                    cold_start_seconds: 20.0,
                },
            }
        })
        .collect();
    let n = |i: usize| measured[i].0;
    let plan = Stage::nested(
        n(0),
        Stage::Sequence(vec![
            Stage::call(n(10)),
            Stage::nested(
                n(11),
                Stage::Sequence(vec![
                    Stage::call(n(10)),
                    Stage::call(n(3)),
                    Stage::call(n(6)),
                    Stage::call(n(2)),
                ]),
            ),
            Stage::call(n(3)),
            Stage::call(n(6)),
            Stage::call(n(8)),
            Stage::nested(
                n(1),
                Stage::Sequence(vec![
                    Stage::nested(n(4), Stage::call(n(3))),
                    Stage::call(n(5)),
                    Stage::nested(n(7), Stage::call(n(6))),
                    Stage::call(n(9)),
                ]),
            ),
        ]),
    );
    let platform = PlatformProfile {
        user_think_seconds: 1.0,
        ..PlatformProfile::default()
    };
    Workflow::new("tcktapp", functions, plan, None, platform)
}

/// A topology file (YAML or JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyFile {
    name: String,
    functions: Vec<FunctionEntry>,
    plan: Stage,
    #[serde(default)]
    edges: Option<Vec<EdgeEntry>>,
    #[serde(default)]
    platform: Option<PlatformProfile>,
    /// The workflow's QoS target; requests that name none default to it.
    #[serde(default)]
    qos: Option<QosEntry>,
}

/// A topology file's `qos`: the mean latency target, and the success ratio (0.9 when absent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QosEntry {
    mean_latency_seconds: f64,
    #[serde(default = "default_success_ratio")]
    min_success_ratio: f64,
}

fn default_success_ratio() -> f64 {
    Qos::default().min_success_ratio
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionEntry {
    name: String,
    #[serde(default)]
    bounds: Option<FunctionBounds>,
    #[serde(default)]
    profile: Option<FunctionProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeEntry {
    from: String,
    to: String,
}

/// Loads a workflow from a topology file: `.json` as JSON, anything else as YAML (a superset).
pub fn load_file(path: &Path) -> Result<Workflow> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    parse_topology(&text, is_json, &path.display().to_string())
}

/// Parses topology text; `origin` names it in errors.
pub fn parse_topology(text: &str, is_json: bool, origin: &str) -> Result<Workflow> {
    let parse_error = |message: String| Error::Parse {
        path: origin.to_owned(),
        message,
    };
    // YAML is read into the JSON data model first so both formats share one schema
    // (serde_yaml_ng would otherwise want YAML tags for the stage enum).
    let value: serde_json::Value = if is_json {
        serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| parse_error(e.to_string()))?
    };
    let file: TopologyFile =
        serde_json::from_value(value).map_err(|e| parse_error(e.to_string()))?;
    let functions = file
        .functions
        .into_iter()
        .map(|f| FunctionSpec {
            name: f.name,
            bounds: f.bounds.unwrap_or(FunctionBounds::ML),
            profile: f.profile.unwrap_or_default(),
        })
        .collect();
    let edges = file
        .edges
        .map(|es| es.into_iter().map(|e| (e.from, e.to)).collect());
    let workflow = Workflow::new(
        file.name,
        functions,
        file.plan,
        edges,
        file.platform.unwrap_or_default(),
    )?;
    match file.qos {
        None => Ok(workflow),
        Some(q) => workflow.with_qos(Qos {
            mean_latency_seconds: q.mean_latency_seconds,
            min_success_ratio: q.min_success_ratio,
        }),
    }
}

/// `workflow` as a topology file (JSON): what [`parse_topology`] reads back to the same
/// workflow, profiles and platform included — a calibrated or drawn twin as an artifact the
/// services and the CLI accept wherever they take a topology file.
pub fn topology_file(workflow: &Workflow) -> serde_json::Value {
    let name = |i: usize| workflow.functions[i].name.clone();
    let mut file = serde_json::json!({
        "name": workflow.name,
        "functions": workflow.functions,
        "plan": workflow.plan,
        "platform": workflow.platform,
    });
    if let Some(qos) = workflow.qos {
        file["qos"] = serde_json::json!(qos);
    }
    // Edges the plan implies (with their branch weights) are left to the plan.
    let derived = Workflow::new(
        workflow.name.clone(),
        workflow.functions.clone(),
        workflow.plan.clone(),
        None,
        workflow.platform,
    );
    if derived.is_ok_and(|d| d.edges != workflow.edges) {
        file["edges"] = workflow
            .edges
            .iter()
            .map(|e| serde_json::json!({ "from": name(e.from), "to": name(e.to) }))
            .collect();
    }
    file
}

/// A built-in workflow by name, or a topology file when `name_or_path` names an existing file.
pub fn resolve(name_or_path: &str) -> Result<Workflow> {
    let path = Path::new(name_or_path);
    if BUILTIN.contains(&name_or_path) {
        builtin(name_or_path)
    } else if path.is_file() {
        load_file(path)
    } else if name_or_path.ends_with(".yaml")
        || name_or_path.ends_with(".yml")
        || name_or_path.ends_with(".json")
    {
        Err(Error::Invalid(vec![FieldError::new(
            "workflow",
            format!("topology file {name_or_path:?} does not exist"),
        )]))
    } else {
        Err(Error::UnknownWorkflow(name_or_path.to_owned()))
    }
}

#[cfg(test)]
mod tests;
