//! Conversions between `faasconf.v1` messages and domain types. Everything a client sends is
//! validated here or by the domain; every problem is reported with its field path.

use faasconf_core::limits::quoted;
use faasconf_core::topology::FunctionSpec;
use faasconf_core::{FieldError, FunctionBounds, FunctionConfig, Range, Workflow, WorkflowConfig};

use crate::v1;

/// The load model a request declares: `None` for `LOAD_MODEL_UNSPECIFIED` (the service's
/// default applies); an unknown value is refused, naming `field`.
pub fn load_model_from_proto(
    field: &str,
    value: i32,
) -> Result<Option<faasconf_core::telemetry::LoadModel>, FieldError> {
    use faasconf_core::telemetry::LoadModel;
    match v1::LoadModel::try_from(value) {
        Ok(v1::LoadModel::Unspecified) => Ok(None),
        Ok(v1::LoadModel::Measured) => Ok(Some(LoadModel::Measured)),
        Ok(v1::LoadModel::OpenLoop) => Ok(Some(LoadModel::OpenLoop)),
        Ok(v1::LoadModel::ClosedLoop) => Ok(Some(LoadModel::ClosedLoop)),
        Err(_) => Err(FieldError::new(
            field,
            format!("{value} is not a load model (1: measured, 2: open loop, 3: closed loop)"),
        )),
    }
}

/// A domain configuration as a proto message (functions named, in workflow order).
pub fn config_to_proto(workflow: &Workflow, config: &WorkflowConfig) -> v1::WorkflowConfig {
    v1::WorkflowConfig {
        functions: workflow
            .functions
            .iter()
            .zip(&config.0)
            .map(|(spec, c)| v1::FunctionConfig {
                function: spec.name.clone(),
                cpu_millis: c.cpu_millis,
                memory_mib: c.memory_mib,
                replicas: c.replicas,
                concurrency: c.concurrency,
            })
            .collect(),
    }
}

/// A proto configuration validated against `workflow`: every function exactly once, every knob
/// set (0 counts as missing: no knob may be 0) and within bounds. `field` prefixes the paths.
pub fn config_from_proto(
    workflow: &Workflow,
    config: Option<&v1::WorkflowConfig>,
    field: &str,
) -> Result<WorkflowConfig, Vec<FieldError>> {
    let Some(config) = config else {
        return Err(vec![FieldError::new(field, "missing")]);
    };
    let mut errors = Vec::new();
    let mut named = Vec::new();
    for (i, f) in config.functions.iter().enumerate() {
        let path = format!("{field}.functions[{i}]");
        if f.function.is_empty() {
            errors.push(FieldError::new(format!("{path}.function"), "missing"));
            continue;
        }
        for (knob, value) in [
            ("cpu_millis", f.cpu_millis),
            ("memory_mib", f.memory_mib),
            ("replicas", f.replicas),
            ("concurrency", f.concurrency),
        ] {
            if value == 0 {
                errors.push(FieldError::new(
                    format!("{path}.{knob}"),
                    format!(
                        "missing (0) for function {}",
                        faasconf_core::limits::quoted(&f.function)
                    ),
                ));
            }
        }
        named.push((
            f.function.as_str(),
            FunctionConfig {
                cpu_millis: f.cpu_millis,
                memory_mib: f.memory_mib,
                replicas: f.replicas,
                concurrency: f.concurrency,
            },
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    named_config(workflow, named, field)
}

/// [`Workflow::config_from_named`], its errors' paths under `field` instead of `config`.
fn named_config<'a>(
    workflow: &Workflow,
    named: impl IntoIterator<Item = (&'a str, FunctionConfig)>,
    field: &str,
) -> Result<WorkflowConfig, Vec<FieldError>> {
    workflow.config_from_named(named).map_err(|e| {
        e.field_errors()
            .iter()
            .map(|f| {
                FieldError::new(
                    format!(
                        "{field}.{}",
                        f.field.strip_prefix("config.").unwrap_or(&f.field)
                    ),
                    f.message.clone(),
                )
            })
            .collect()
    })
}

/// A configuration in force that a session can start from, and what had to be defined for it.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinedStart {
    /// Every knob set and within bounds.
    pub config: WorkflowConfig,
    /// Each knob that was not (`{field}.functions[i].{knob}`, and what it starts at): unset
    /// knobs (0: no CPU or memory limit, no `max_inflight`) at the top of their bounds, the
    /// nearest to "unlimited"; set knobs outside the bounds at the nearest bound.
    pub defined: Vec<FieldError>,
}

/// What a platform reports running (`config`, where 0 means "not set", as Kubernetes and the
/// OpenFaaS watchdog read it) as a configuration within `workflow`'s bounds; see
/// [`DefinedStart`]. Errors only for what cannot be defined: a function missing, unknown or
/// listed twice.
pub fn defined_start(
    workflow: &Workflow,
    config: Option<&v1::WorkflowConfig>,
    field: &str,
) -> Result<DefinedStart, Vec<FieldError>> {
    let Some(config) = config else {
        return Err(vec![FieldError::new(field, "missing")]);
    };
    let mut defined = Vec::new();
    let mut named = Vec::new();
    for (i, f) in config.functions.iter().enumerate() {
        let mut c = FunctionConfig {
            cpu_millis: f.cpu_millis,
            memory_mib: f.memory_mib,
            replicas: f.replicas,
            concurrency: f.concurrency,
        };
        if let Some(spec) = workflow
            .function_index(&f.function)
            .map(|j| &workflow.functions[j])
        {
            for knob in faasconf_core::Knob::ALL {
                let (value, range) = (c.get(knob), spec.bounds.range(knob));
                let (start, why) = match value {
                    0 => (range.max, "unset".to_owned()),
                    v if v < range.min => (range.min, format!("{v} is below the bounds")),
                    v if v > range.max => (range.max, format!("{v} is above the bounds")),
                    _ => continue,
                };
                c.set(knob, start);
                defined.push(FieldError::new(
                    format!("{field}.functions[{i}].{knob}"),
                    format!("{} {why}: starts at {start}", quoted(&f.function)),
                ));
            }
        }
        named.push((f.function.as_str(), c));
    }
    let config = named_config(workflow, named, field)?;
    Ok(DefinedStart { config, defined })
}

fn range_to_proto(r: Range) -> Option<v1::Range> {
    Some(v1::Range {
        min: r.min,
        max: r.max,
    })
}

/// One function's bounds as a proto message.
pub fn bounds_to_proto(spec: &FunctionSpec) -> v1::FunctionBounds {
    let b: &FunctionBounds = &spec.bounds;
    v1::FunctionBounds {
        function: spec.name.clone(),
        cpu_millis: range_to_proto(b.cpu_millis),
        memory_mib: range_to_proto(b.memory_mib),
        replicas: range_to_proto(b.replicas),
        concurrency: range_to_proto(b.concurrency),
    }
}

/// Each function's bounds from `bounds` (one per function of `workflow`, any order, by name),
/// checked whole: every function once, every range present and valid. Errors name
/// `{field}[i]...`.
pub fn bounds_from_proto(
    workflow: &Workflow,
    bounds: &[v1::FunctionBounds],
    field: &str,
) -> Result<Vec<FunctionBounds>, Vec<FieldError>> {
    let mut slots: Vec<Option<FunctionBounds>> = vec![None; workflow.len()];
    let mut errors = Vec::new();
    for (i, b) in bounds.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Some(index) = workflow.function_index(&b.function) else {
            errors.push(FieldError::new(
                format!("{at}.function"),
                format!(
                    "{} is not a function of {}",
                    quoted(&b.function),
                    workflow.name
                ),
            ));
            continue;
        };
        let range = |r: Option<&v1::Range>, knob: &str, errors: &mut Vec<FieldError>| {
            r.map(|r| Range::new(r.min, r.max)).unwrap_or_else(|| {
                errors.push(FieldError::new(format!("{at}.{knob}"), "missing"));
                Range::new(1, 1)
            })
        };
        let parsed = FunctionBounds {
            cpu_millis: range(b.cpu_millis.as_ref(), "cpu_millis", &mut errors),
            memory_mib: range(b.memory_mib.as_ref(), "memory_mib", &mut errors),
            replicas: range(b.replicas.as_ref(), "replicas", &mut errors),
            concurrency: range(b.concurrency.as_ref(), "concurrency", &mut errors),
        };
        errors.extend(parsed.validate(&at));
        if slots[index].replace(parsed).is_some() {
            errors.push(FieldError::new(
                format!("{at}.function"),
                format!("{} is listed twice", quoted(&b.function)),
            ));
        }
    }
    for (spec, slot) in workflow.functions.iter().zip(&slots) {
        if slot.is_none() {
            errors.push(FieldError::new(
                field,
                format!("missing the bounds of {}", quoted(&spec.name)),
            ));
        }
    }
    if errors.is_empty() {
        Ok(slots.into_iter().flatten().collect())
    } else {
        Err(errors)
    }
}

/// A workflow's topology, adjacency and bounds as a proto message.
pub fn workflow_to_proto(workflow: &Workflow) -> v1::Workflow {
    v1::Workflow {
        name: workflow.name.clone(),
        functions: workflow.functions.iter().map(|f| f.name.clone()).collect(),
        entry: workflow.entry().to_owned(),
        edges: workflow
            .edges
            .iter()
            .map(|e| v1::Edge {
                from: workflow.functions[e.from].name.clone(),
                to: workflow.functions[e.to].name.clone(),
                weight: e.weight,
            })
            .collect(),
        adjacency: workflow
            .adjacency()
            .into_iter()
            .flatten()
            .map(u32::from)
            .collect(),
        bounds: workflow.functions.iter().map(bounds_to_proto).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog::builtin;

    #[test]
    fn unset_knobs_start_at_the_top_of_their_bounds_and_set_ones_are_kept() {
        let w = builtin("parallel").unwrap();
        let start = w.config_from_actions(&vec![[0.5; 4]; w.len()]).unwrap();
        let mut running = config_to_proto(&w, &start);
        let exact = defined_start(&w, Some(&running), "current_config").unwrap();
        assert_eq!(exact.config, start);
        assert!(exact.defined.is_empty());
        running.functions[1].cpu_millis = 0;
        running.functions[1].concurrency = 0;
        running.functions[2].memory_mib = 100_000;
        let d = defined_start(&w, Some(&running), "current_config").unwrap();
        let b = &w.functions[1].bounds;
        assert_eq!(d.config.0[1].cpu_millis, b.cpu_millis.max);
        assert_eq!(d.config.0[1].concurrency, b.concurrency.max);
        assert_eq!(d.config.0[1].replicas, start.0[1].replicas);
        assert_eq!(
            d.config.0[2].memory_mib,
            w.functions[2].bounds.memory_mib.max
        );
        let fields: Vec<_> = d.defined.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "current_config.functions[1].cpu_millis",
                "current_config.functions[1].concurrency",
                "current_config.functions[2].memory_mib"
            ]
        );
        running.functions.pop();
        let e = defined_start(&w, Some(&running), "current_config").unwrap_err();
        assert!(
            e.iter().all(|e| e.field.starts_with("current_config")),
            "{e:?}"
        );
    }

    #[test]
    fn bounds_round_trip_and_bad_ones_name_their_field() {
        let w = builtin("parallel").unwrap();
        let proto: Vec<_> = w.functions.iter().rev().map(bounds_to_proto).collect();
        let back = bounds_from_proto(&w, &proto, "bounds").unwrap();
        assert_eq!(
            back,
            w.functions.iter().map(|f| f.bounds).collect::<Vec<_>>()
        );
        let mut bad = proto.clone();
        bad[0].replicas = None;
        bad[1].cpu_millis = Some(v1::Range { min: 9, max: 3 });
        bad[2].function = "nope".into();
        let fields: Vec<_> = bounds_from_proto(&w, &bad, "bounds")
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert!(
            fields.contains(&"bounds[0].replicas".to_owned()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"bounds[1].cpu_millis".to_owned()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"bounds[2].function".to_owned()),
            "{fields:?}"
        );
        assert!(fields.contains(&"bounds".to_owned()), "{fields:?}");
    }

    #[test]
    fn load_models_convert_and_unknown_ones_name_the_field() {
        use faasconf_core::telemetry::LoadModel;
        let read = |v: v1::LoadModel| load_model_from_proto("load_model", v as i32).unwrap();
        assert_eq!(read(v1::LoadModel::Unspecified), None);
        assert_eq!(read(v1::LoadModel::Measured), Some(LoadModel::Measured));
        assert_eq!(read(v1::LoadModel::OpenLoop), Some(LoadModel::OpenLoop));
        assert_eq!(read(v1::LoadModel::ClosedLoop), Some(LoadModel::ClosedLoop));
        for bad in [-1, 4, 17] {
            let e = load_model_from_proto("load_model", bad).unwrap_err();
            assert_eq!(e.field, "load_model");
        }
    }

    fn proto_config(w: &Workflow) -> v1::WorkflowConfig {
        let c = WorkflowConfig(vec![
            FunctionConfig {
                cpu_millis: 1000,
                memory_mib: 1024,
                replicas: 2,
                concurrency: 3
            };
            w.len()
        ]);
        config_to_proto(w, &c)
    }

    #[test]
    fn configurations_round_trip() {
        let w = builtin("parallel").unwrap();
        let p = proto_config(&w);
        let back = config_from_proto(&w, Some(&p), "config").unwrap();
        assert_eq!(config_to_proto(&w, &back), p);
    }

    #[test]
    fn proto_errors_name_the_field() {
        let w = builtin("parallel").unwrap();
        let mut p = proto_config(&w);
        p.functions[1].replicas = 0;
        p.functions[2].function.clear();
        let fields: Vec<String> = config_from_proto(&w, Some(&p), "config")
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "config.functions[1].replicas",
                "config.functions[2].function"
            ]
        );

        let mut p = proto_config(&w);
        p.functions[4].cpu_millis = 9000;
        p.functions.pop();
        let fields: Vec<String> = config_from_proto(&w, Some(&p), "config")
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["config.resnet.cpu_millis", "config.mobilenet"]);
        assert_eq!(
            config_from_proto(&w, None, "config").unwrap_err()[0].field,
            "config"
        );
    }

    use proptest::prelude::*;

    /// One knob value drawn around the bounds: missing (0), below, inside, above.
    fn knob_around(min: u32, max: u32) -> impl Strategy<Value = u32> {
        prop_oneof![
            1 => Just(0u32),
            1 => (1..=min.max(1)).prop_map(move |v| v.min(min.saturating_sub(1)).max(1)),
            6 => min..=max,
            1 => (max + 1)..=(max + 5000),
        ]
    }

    /// How a function entry is mutated.
    #[derive(Debug, Clone, Copy)]
    enum Entry {
        Keep,
        Drop,
        Rename,
        Duplicate,
    }

    fn entry() -> impl Strategy<Value = Entry> {
        prop_oneof![12 => Just(Entry::Keep), 1 => Just(Entry::Drop), 1 => Just(Entry::Rename), 1 => Just(Entry::Duplicate)]
    }

    fn request() -> impl Strategy<Value = (Vec<Entry>, Vec<[u32; 4]>)> {
        let b = FunctionBounds::ML;
        let knobs = (
            knob_around(b.cpu_millis.min, b.cpu_millis.max),
            knob_around(b.memory_mib.min, b.memory_mib.max),
            knob_around(b.replicas.min, b.replicas.max),
            knob_around(b.concurrency.min, b.concurrency.max),
        )
            .prop_map(|(c, m, r, k)| [c, m, r, k]);
        (
            proptest::collection::vec(entry(), 6),
            proptest::collection::vec(knobs, 6),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The validation accepts exactly the valid requests (every function once, every knob set
        /// and within bounds) and, when it refuses, names every bad knob and function.
        #[test]
        fn validation_accepts_exactly_the_valid_configurations((entries, knobs) in request()) {
            let w = builtin("parallel").unwrap();
            let mut functions = Vec::new();
            for (j, (entry, k)) in entries.iter().zip(&knobs).enumerate() {
                let name = w.functions[j].name.clone();
                let make = |function: String| v1::FunctionConfig { function, cpu_millis: k[0], memory_mib: k[1], replicas: k[2], concurrency: k[3] };
                match entry {
                    Entry::Keep => functions.push(make(name)),
                    Entry::Drop => {}
                    Entry::Rename => functions.push(make(format!("{name}-x"))),
                    Entry::Duplicate => {
                        functions.push(make(name.clone()));
                        functions.push(make(name));
                    }
                }
            }
            let request = v1::WorkflowConfig { functions: functions.clone() };
            let in_bounds = |k: &[u32; 4]| {
                let c = FunctionConfig { cpu_millis: k[0], memory_mib: k[1], replicas: k[2], concurrency: k[3] };
                FunctionBounds::ML.check(&c, "x").is_empty()
            };
            let valid = entries.iter().all(|e| matches!(e, Entry::Keep)) && knobs.iter().all(in_bounds);
            match config_from_proto(&w, Some(&request), "config") {
                Ok(config) => {
                    prop_assert!(valid, "accepted an invalid request: {request:?}");
                    prop_assert_eq!(config_to_proto(&w, &config), request);
                }
                Err(errors) => {
                    prop_assert!(!valid, "refused a valid request: {errors:?}");
                    prop_assert!(!errors.is_empty());
                    for e in &errors {
                        prop_assert!(e.field.starts_with("config"), "{e}");
                    }
                    // Every zero knob is named by position; past that, every kept function's
                    // out-of-bounds knob by name.
                    let any_zero = functions.iter().any(|f| [f.cpu_millis, f.memory_mib, f.replicas, f.concurrency].contains(&0));
                    for (i, f) in functions.iter().enumerate() {
                        for (knob, v) in [("cpu_millis", f.cpu_millis), ("memory_mib", f.memory_mib), ("replicas", f.replicas), ("concurrency", f.concurrency)] {
                            if v == 0 {
                                let field = format!("config.functions[{i}].{knob}");
                                prop_assert!(errors.iter().any(|e| e.field == field), "{field} not named in {errors:?}");
                            }
                        }
                    }
                    if !any_zero {
                        for (j, (entry, k)) in entries.iter().zip(&knobs).enumerate() {
                            if matches!(entry, Entry::Keep) && !in_bounds(k) {
                                let prefix = format!("config.{}.", w.functions[j].name);
                                prop_assert!(errors.iter().any(|e| e.field.starts_with(&prefix)), "{prefix}* not named in {errors:?}");
                            }
                            if matches!(entry, Entry::Drop | Entry::Rename) {
                                let field = format!("config.{}", w.functions[j].name);
                                prop_assert!(errors.iter().any(|e| e.field == field), "missing {field} not named in {errors:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn workflows_carry_a_row_major_adjacency() {
        let w = builtin("tcktapp").unwrap();
        let p = workflow_to_proto(&w);
        assert_eq!(p.adjacency.len(), 144);
        assert_eq!(
            p.adjacency[1], 1,
            "get-left-trip-tickets calls get-left-ticket-of-interval"
        );
        assert_eq!(
            p.bounds[0].cpu_millis,
            Some(v1::Range {
                min: 250,
                max: 1000
            })
        );
    }
}
