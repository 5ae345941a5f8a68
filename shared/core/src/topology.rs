//! Workflows as DAGs of functions with stage semantics.
//!
//! A workflow's `plan` is what its orchestrator does for one request: call a function, run
//! stages in sequence (a failure stops the sequence), in parallel (fan-out, then join), or one
//! of several weighted branches. A called function may itself call others synchronously
//! (`calls`): it holds its concurrency slot while it waits, as TrainTicket's Java services do.
//!
//! Invocation edges (for the policy's adjacency) come from the plan unless given explicitly:
//! consecutive top-level stages are connected (the orchestrator passes data along the
//! pipeline), and a function with `calls` is connected to each function it calls directly.

use serde::{Deserialize, Serialize};

use crate::config::{FunctionBounds, FunctionConfig, WorkflowConfig};
use crate::error::{Error, FieldError, Result};
use crate::profile::{FunctionProfile, PlatformProfile};
use crate::qos::Qos;

/// One function call of a plan, possibly with nested synchronous calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "CallSpec", into = "CallSpec")]
pub struct Call {
    /// The called function's name.
    pub function: String,
    /// What the function calls (synchronously) after its own work, if anything.
    pub calls: Option<Box<Stage>>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum CallSpec {
    Name(String),
    Nested { function: String, calls: Box<Stage> },
}

impl From<CallSpec> for Call {
    fn from(spec: CallSpec) -> Self {
        match spec {
            CallSpec::Name(function) => Call {
                function,
                calls: None,
            },
            CallSpec::Nested { function, calls } => Call {
                function,
                calls: Some(calls),
            },
        }
    }
}

impl From<Call> for CallSpec {
    fn from(call: Call) -> Self {
        match call.calls {
            None => CallSpec::Name(call.function),
            Some(calls) => CallSpec::Nested {
                function: call.function,
                calls,
            },
        }
    }
}

/// One alternative of a weighted branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchArm {
    /// Relative weight (probability = weight / sum of weights).
    pub weight: f64,
    /// What runs when this arm is taken.
    pub stage: Stage,
}

/// A stage of a workflow plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Call one function.
    Call(Call),
    /// Run stages one after another; the first failure fails the sequence.
    Sequence(Vec<Stage>),
    /// Run stages at once and wait for all (fan-out/join); any failure fails the join.
    Parallel(Vec<Stage>),
    /// Run one of the arms, chosen at random by weight.
    Branch(Vec<BranchArm>),
}

impl Stage {
    /// A plain call of `function`.
    pub fn call(function: &str) -> Stage {
        Stage::Call(Call {
            function: function.to_owned(),
            calls: None,
        })
    }

    /// A call of `function` that then calls `calls` synchronously.
    pub fn nested(function: &str, calls: Stage) -> Stage {
        Stage::Call(Call {
            function: function.to_owned(),
            calls: Some(Box::new(calls)),
        })
    }

    /// A sequence of plain calls.
    pub fn chain(functions: &[&str]) -> Stage {
        Stage::Sequence(functions.iter().map(|f| Stage::call(f)).collect())
    }

    /// Names of the functions this stage starts with (called first).
    fn entries(&self) -> Vec<&str> {
        match self {
            Stage::Call(call) => vec![&call.function],
            Stage::Sequence(stages) => stages.first().map(Stage::entries).unwrap_or_default(),
            Stage::Parallel(stages) => stages.iter().flat_map(Stage::entries).collect(),
            Stage::Branch(arms) => arms.iter().flat_map(|a| a.stage.entries()).collect(),
        }
    }

    /// Names of the functions this stage ends with (whose output flows on).
    fn exits(&self) -> Vec<&str> {
        match self {
            Stage::Call(call) => vec![&call.function],
            Stage::Sequence(stages) => stages.last().map(Stage::exits).unwrap_or_default(),
            Stage::Parallel(stages) => stages.iter().flat_map(Stage::exits).collect(),
            Stage::Branch(arms) => arms.iter().flat_map(|a| a.stage.exits()).collect(),
        }
    }

    /// Names of the functions invoked directly by whoever runs this stage.
    fn direct_calls(&self) -> Vec<&str> {
        match self {
            Stage::Call(call) => vec![&call.function],
            Stage::Sequence(stages) | Stage::Parallel(stages) => {
                stages.iter().flat_map(Stage::direct_calls).collect()
            }
            Stage::Branch(arms) => arms.iter().flat_map(|a| a.stage.direct_calls()).collect(),
        }
    }

    /// Edges implied by this stage when run by the orchestrator (pipeline semantics).
    fn pipeline_edges<'a>(&'a self, out: &mut Vec<(&'a str, &'a str, f64)>) {
        match self {
            Stage::Call(call) => call.nested_edges(out),
            Stage::Sequence(stages) => {
                for pair in stages.windows(2) {
                    for from in pair[0].exits() {
                        for to in pair[1].entries() {
                            out.push((from, to, 1.0));
                        }
                    }
                }
                stages.iter().for_each(|s| s.pipeline_edges(out));
            }
            Stage::Parallel(stages) => stages.iter().for_each(|s| s.pipeline_edges(out)),
            Stage::Branch(arms) => arms.iter().for_each(|a| a.stage.pipeline_edges(out)),
        }
    }

    /// Every call in this stage, depth first.
    pub fn calls(&self) -> Vec<&Call> {
        let mut out = Vec::new();
        self.collect_calls(&mut out);
        out
    }

    fn collect_calls<'a>(&'a self, out: &mut Vec<&'a Call>) {
        match self {
            Stage::Call(call) => {
                out.push(call);
                if let Some(nested) = &call.calls {
                    nested.collect_calls(out);
                }
            }
            Stage::Sequence(stages) | Stage::Parallel(stages) => {
                stages.iter().for_each(|s| s.collect_calls(out))
            }
            Stage::Branch(arms) => arms.iter().for_each(|a| a.stage.collect_calls(out)),
        }
    }

    fn validate(&self, path: &str, known: &[&str], errors: &mut Vec<FieldError>) {
        match self {
            Stage::Call(call) => {
                if !known.contains(&call.function.as_str()) {
                    errors.push(FieldError::new(
                        format!("{path}.call"),
                        format!("unknown function {:?}", call.function),
                    ));
                }
                if let Some(nested) = &call.calls {
                    nested.validate(&format!("{path}.call.calls"), known, errors);
                }
            }
            Stage::Sequence(stages) | Stage::Parallel(stages) => {
                let kind = if matches!(self, Stage::Sequence(_)) {
                    "sequence"
                } else {
                    "parallel"
                };
                if stages.is_empty() {
                    errors.push(FieldError::new(
                        format!("{path}.{kind}"),
                        "must hold at least one stage",
                    ));
                }
                for (i, s) in stages.iter().enumerate() {
                    s.validate(&format!("{path}.{kind}[{i}]"), known, errors);
                }
            }
            Stage::Branch(arms) => {
                if arms.is_empty() {
                    errors.push(FieldError::new(
                        format!("{path}.branch"),
                        "must hold at least one arm",
                    ));
                }
                for (i, arm) in arms.iter().enumerate() {
                    if !(arm.weight.is_finite() && arm.weight > 0.0) {
                        errors.push(FieldError::new(
                            format!("{path}.branch[{i}].weight"),
                            format!("{} is not a positive number", arm.weight),
                        ));
                    }
                    arm.stage
                        .validate(&format!("{path}.branch[{i}].stage"), known, errors);
                }
            }
        }
    }
}

impl Call {
    fn nested_edges<'a>(&'a self, out: &mut Vec<(&'a str, &'a str, f64)>) {
        if let Some(nested) = &self.calls {
            for to in nested.direct_calls() {
                out.push((&self.function, to, 1.0));
            }
            nested.nested_only_edges(out);
        }
    }
}

impl Stage {
    /// Edges of nested calls only (inside a function, siblings are not chained).
    fn nested_only_edges<'a>(&'a self, out: &mut Vec<(&'a str, &'a str, f64)>) {
        match self {
            Stage::Call(call) => call.nested_edges(out),
            Stage::Sequence(stages) | Stage::Parallel(stages) => {
                stages.iter().for_each(|s| s.nested_only_edges(out))
            }
            Stage::Branch(arms) => arms.iter().for_each(|a| a.stage.nested_only_edges(out)),
        }
    }
}

/// One invocation edge between two functions (indices into [`Workflow::functions`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Caller (or upstream stage).
    pub from: usize,
    /// Callee (or downstream stage).
    pub to: usize,
    /// Weight (1 unless a branch says otherwise).
    pub weight: f64,
}

/// A function of a workflow: its name, configuration space and resource profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// Function name (the OpenFaaS function / Deployment name).
    pub name: String,
    /// Configuration space.
    pub bounds: FunctionBounds,
    /// Resource profile the twin simulates.
    pub profile: FunctionProfile,
}

/// A validated workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// Workflow name.
    pub name: String,
    /// Functions, in canonical order (rows of the adjacency matrix, order of configurations).
    pub functions: Vec<FunctionSpec>,
    /// What the orchestrator does for one request.
    pub plan: Stage,
    /// Invocation edges.
    pub edges: Vec<Edge>,
    /// Platform and load-generator parameters the twin uses for this workflow.
    pub platform: PlatformProfile,
    /// The workflow's own QoS target (a topology file's `qos`); [`Workflow::qos`] reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<Qos>,
}

impl Workflow {
    /// The twin this workflow is, as a short hex digest (SHA-256 of its JSON: topology,
    /// bounds, profiles, platform): what twin samples and models are keyed by, so that samples
    /// of another twin (other profiles, after a calibration) are never taken for this one's.
    /// The QoS target is not part of the twin and not of the digest.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let twin = Workflow {
            qos: None,
            ..self.clone()
        };
        // Serialising a validated workflow cannot fail (plain structs, finite numbers); were it
        // to, the digest of nothing still names a twin, only not this one.
        let json = serde_json::to_vec(&twin).unwrap_or_default();
        Sha256::digest(json)
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Builds and validates a workflow; edges are derived from the plan when `edges` is `None`.
    pub fn new(
        name: impl Into<String>,
        functions: Vec<FunctionSpec>,
        plan: Stage,
        edges: Option<Vec<(String, String)>>,
        platform: PlatformProfile,
    ) -> Result<Self> {
        let name = name.into();
        let mut errors = Vec::new();
        if name.trim().is_empty() {
            errors.push(FieldError::new("name", "must not be empty"));
        }
        if functions.is_empty() {
            errors.push(FieldError::new(
                "functions",
                "must list at least one function",
            ));
        }
        for (i, f) in functions.iter().enumerate() {
            if f.name.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("functions[{i}].name"),
                    "must not be empty",
                ));
            }
            if functions[..i].iter().any(|g| g.name == f.name) {
                errors.push(FieldError::new(
                    format!("functions[{i}].name"),
                    format!("{:?} is listed twice", f.name),
                ));
            }
            errors.extend(f.bounds.validate(&format!("functions[{i}].bounds")));
            errors.extend(f.profile.validate(&format!("functions[{i}].profile")));
        }
        errors.extend(platform.validate("platform"));
        let known: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        plan.validate("plan", &known, &mut errors);
        let called: Vec<&str> = plan.calls().iter().map(|c| c.function.as_str()).collect();
        for (i, f) in functions.iter().enumerate() {
            if !called.contains(&f.name.as_str()) {
                errors.push(FieldError::new(
                    format!("functions[{i}]"),
                    format!("{:?} is never called by the plan", f.name),
                ));
            }
        }
        let index = |n: &str| known.iter().position(|k| *k == n);
        let mut resolved = Vec::new();
        match edges {
            Some(explicit) => {
                for (i, (from, to)) in explicit.iter().enumerate() {
                    match (index(from), index(to)) {
                        (Some(f), Some(t)) if f != t => resolved.push(Edge {
                            from: f,
                            to: t,
                            weight: 1.0,
                        }),
                        (Some(_), Some(_)) => errors.push(FieldError::new(
                            format!("edges[{i}]"),
                            "an edge must join two different functions",
                        )),
                        (None, _) => errors.push(FieldError::new(
                            format!("edges[{i}].from"),
                            format!("unknown function {from:?}"),
                        )),
                        (_, None) => errors.push(FieldError::new(
                            format!("edges[{i}].to"),
                            format!("unknown function {to:?}"),
                        )),
                    }
                }
            }
            None => {
                let mut derived = Vec::new();
                plan.pipeline_edges(&mut derived);
                for (from, to, weight) in derived {
                    if let (Some(f), Some(t)) = (index(from), index(to))
                        && f != t
                        && !resolved.iter().any(|e: &Edge| e.from == f && e.to == t)
                    {
                        resolved.push(Edge {
                            from: f,
                            to: t,
                            weight,
                        });
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(Self {
            name,
            functions,
            plan,
            edges: resolved,
            platform,
            qos: None,
        })
    }

    /// This workflow with its own QoS target, validated (`qos.*` fields named in errors).
    pub fn with_qos(mut self, qos: Qos) -> Result<Self> {
        qos.validate("qos")?;
        self.qos = Some(qos);
        Ok(self)
    }

    /// The QoS target a request about this workflow defaults to: its own, else the reference's
    /// ([`Qos::default`]).
    pub fn qos(&self) -> Qos {
        self.qos.unwrap_or_default()
    }

    /// This workflow with every function's bounds narrowed to `limits` (one per function, in
    /// order: e.g. what an actuator announces, the platform's limits within its topology's
    /// bounds), so that what is planned here is what the platform accepts. A knob whose ranges
    /// do not overlap is an error naming `{field}[i].{knob}`.
    pub fn within(&self, limits: &[FunctionBounds], field: &str) -> Result<Workflow> {
        if limits.len() != self.len() {
            return Err(Error::field(
                field,
                format!(
                    "{} functions' bounds, but {} has {} functions",
                    limits.len(),
                    self.name,
                    self.len()
                ),
            ));
        }
        let mut narrowed = self.clone();
        let mut errors = Vec::new();
        for (i, (f, limit)) in narrowed.functions.iter_mut().zip(limits).enumerate() {
            match f.bounds.within(limit) {
                Ok(b) => f.bounds = b,
                Err(knob) => errors.push(FieldError::new(
                    format!("{field}[{i}].{knob}"),
                    format!(
                        "{}: {}..={} does not overlap this workflow's {}..={}",
                        f.name,
                        limit.range(knob).min,
                        limit.range(knob).max,
                        f.bounds.range(knob).min,
                        f.bounds.range(knob).max
                    ),
                )),
            }
        }
        if errors.is_empty() {
            Ok(narrowed)
        } else {
            Err(Error::Invalid(errors))
        }
    }

    /// Number of functions.
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// Whether the workflow has no function (never true for a validated workflow).
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// Function names in canonical order.
    pub fn function_names(&self) -> Vec<&str> {
        self.functions.iter().map(|f| f.name.as_str()).collect()
    }

    /// Index of a function by name.
    pub fn function_index(&self, name: &str) -> Option<usize> {
        self.functions.iter().position(|f| f.name == name)
    }

    /// The function the orchestrator calls first.
    pub fn entry(&self) -> &str {
        self.plan.entries().first().copied().unwrap_or_default()
    }

    /// Symmetric 0/1 adjacency matrix over the functions (row-major, n x n).
    pub fn adjacency(&self) -> Vec<Vec<u8>> {
        let n = self.len();
        let mut a = vec![vec![0u8; n]; n];
        for e in &self.edges {
            a[e.from][e.to] = 1;
            a[e.to][e.from] = 1;
        }
        a
    }

    /// Checks that `config` has one configuration per function, each within its bounds.
    pub fn validate_config(&self, config: &WorkflowConfig) -> Result<()> {
        let mut errors = Vec::new();
        if config.0.len() != self.len() {
            errors.push(FieldError::new(
                "config",
                format!(
                    "has {} functions, workflow {} has {}",
                    config.0.len(),
                    self.name,
                    self.len()
                ),
            ));
        }
        for (spec, c) in self.functions.iter().zip(&config.0) {
            errors.extend(spec.bounds.check(c, &format!("config.{}", spec.name)));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(errors))
        }
    }

    /// Builds a configuration from `(function name, config)` pairs: every function exactly once,
    /// every knob within bounds. All problems are reported together.
    pub fn config_from_named<'a>(
        &self,
        named: impl IntoIterator<Item = (&'a str, FunctionConfig)>,
    ) -> Result<WorkflowConfig> {
        let mut slots: Vec<Option<FunctionConfig>> = vec![None; self.len()];
        let mut errors = Vec::new();
        for (name, c) in named {
            match self.function_index(name) {
                None => errors.push(FieldError::new(
                    format!("config.{name}"),
                    format!("unknown function of workflow {}", self.name),
                )),
                Some(i) if slots[i].is_some() => {
                    errors.push(FieldError::new(format!("config.{name}"), "given twice"))
                }
                Some(i) => {
                    errors.extend(
                        self.functions[i]
                            .bounds
                            .check(&c, &format!("config.{name}")),
                    );
                    slots[i] = Some(c);
                }
            }
        }
        for (spec, slot) in self.functions.iter().zip(&slots) {
            if slot.is_none() {
                errors.push(FieldError::new(
                    format!("config.{}", spec.name),
                    "missing: every function needs a configuration",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(WorkflowConfig(slots.into_iter().flatten().collect()))
    }

    /// Maps one normalised action per function (`n x 4`) to a configuration.
    pub fn config_from_actions(&self, actions: &[[f64; 4]]) -> Result<WorkflowConfig> {
        if actions.len() != self.len() {
            return Err(Error::field(
                "actions",
                format!(
                    "has {} rows, workflow {} has {} functions",
                    actions.len(),
                    self.name,
                    self.len()
                ),
            ));
        }
        self.functions
            .iter()
            .zip(actions)
            .map(|(f, a)| f.bounds.from_action(*a))
            .collect::<Result<Vec<_>>>()
            .map(WorkflowConfig)
    }

    /// The normalised actions of a configuration.
    pub fn actions_of(&self, config: &WorkflowConfig) -> Vec<[f64; 4]> {
        self.functions
            .iter()
            .zip(&config.0)
            .map(|(f, c)| f.bounds.to_action(c))
            .collect()
    }
}
