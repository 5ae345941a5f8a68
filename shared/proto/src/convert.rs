//! Conversions between `faasconf.v1` messages and domain types. Everything a client sends is
//! validated here or by the domain; every problem is reported with its field path.

use faasconf_core::topology::FunctionSpec;
use faasconf_core::{FieldError, FunctionBounds, FunctionConfig, Range, Workflow, WorkflowConfig};

use crate::v1;

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
pub fn config_from_proto(workflow: &Workflow, config: Option<&v1::WorkflowConfig>, field: &str) -> Result<WorkflowConfig, Vec<FieldError>> {
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
        for (knob, value) in [("cpu_millis", f.cpu_millis), ("memory_mib", f.memory_mib), ("replicas", f.replicas), ("concurrency", f.concurrency)] {
            if value == 0 {
                errors.push(FieldError::new(format!("{path}.{knob}"), format!("missing (0) for function {:?}", f.function)));
            }
        }
        named.push((
            f.function.as_str(),
            FunctionConfig { cpu_millis: f.cpu_millis, memory_mib: f.memory_mib, replicas: f.replicas, concurrency: f.concurrency },
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    workflow.config_from_named(named).map_err(|e| {
        e.field_errors()
            .iter()
            .map(|f| FieldError::new(format!("{field}.{}", f.field.strip_prefix("config.").unwrap_or(&f.field)), f.message.clone()))
            .collect()
    })
}

fn range_to_proto(r: Range) -> Option<v1::Range> {
    Some(v1::Range { min: r.min, max: r.max })
}

fn bounds_to_proto(spec: &FunctionSpec) -> v1::FunctionBounds {
    let b: &FunctionBounds = &spec.bounds;
    v1::FunctionBounds {
        function: spec.name.clone(),
        cpu_millis: range_to_proto(b.cpu_millis),
        memory_mib: range_to_proto(b.memory_mib),
        replicas: range_to_proto(b.replicas),
        concurrency: range_to_proto(b.concurrency),
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
            .map(|e| v1::Edge { from: workflow.functions[e.from].name.clone(), to: workflow.functions[e.to].name.clone(), weight: e.weight })
            .collect(),
        adjacency: workflow.adjacency().into_iter().flatten().map(u32::from).collect(),
        bounds: workflow.functions.iter().map(bounds_to_proto).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog::builtin;

    fn proto_config(w: &Workflow) -> v1::WorkflowConfig {
        let c = WorkflowConfig(vec![FunctionConfig { cpu_millis: 1000, memory_mib: 1024, replicas: 2, concurrency: 3 }; w.len()]);
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
        let fields: Vec<String> = config_from_proto(&w, Some(&p), "config").unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["config.functions[1].replicas", "config.functions[2].function"]);

        let mut p = proto_config(&w);
        p.functions[4].cpu_millis = 9000;
        p.functions.pop();
        let fields: Vec<String> = config_from_proto(&w, Some(&p), "config").unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["config.resnet.cpu_millis", "config.mobilenet"]);
        assert_eq!(config_from_proto(&w, None, "config").unwrap_err()[0].field, "config");
    }

    #[test]
    fn workflows_carry_a_row_major_adjacency() {
        let w = builtin("tcktapp").unwrap();
        let p = workflow_to_proto(&w);
        assert_eq!(p.adjacency.len(), 144);
        assert_eq!(p.adjacency[1], 1, "get-left-trip-tickets calls get-left-ticket-of-interval");
        assert_eq!(p.bounds[0].cpu_millis, Some(v1::Range { min: 250, max: 1000 }));
    }
}
