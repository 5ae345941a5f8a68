//! What-if evaluation: simulate many configurations of one workflow under one load.
//!
//! Input is JSON Lines, one `{"id": "...", "config": {"<function>": {"cpu_millis": ..,
//! "memory_mib": .., "replicas": .., "concurrency": ..}, ...}}` per line. The whole input is
//! validated before anything is simulated; every problem is reported with its line and field.
//! Every configuration runs with the same seed (common random numbers), one warm-up window,
//! then `windows` measured windows whose means are reported.

use std::collections::BTreeMap;

use faasconf_core::{FieldError, FunctionConfig, Knob, Workflow, WorkflowConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sim::{Twin, TwinOptions};
use crate::workload::Workload;

/// One validated input line.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationRequest {
    /// The caller's identifier, echoed in the output.
    pub id: String,
    /// The configuration to simulate.
    pub config: WorkflowConfig,
}

/// Per-function means of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionOutcome {
    /// p75 latency, seconds.
    pub p75_s: f64,
    /// p95 latency, seconds.
    pub p95_s: f64,
    /// CPU used / CPU limit, averaged over pods (0..1, more when throttling waste is counted).
    pub cpu_util: f64,
}

/// One output line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationOutcome {
    /// The input line's id.
    pub id: String,
    /// End-to-end mean latency, seconds.
    pub e2e_mean_s: f64,
    /// End-to-end p95 latency, seconds.
    pub e2e_p95_s: f64,
    /// Successful / total requests.
    pub success_ratio: f64,
    /// Requests finished per window.
    pub requests_total: f64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Cost of the configuration.
    pub cost: f64,
    /// Per-function figures.
    pub functions: BTreeMap<String, FunctionOutcome>,
}

/// Parses and validates every line; returns all problems (line and field) if any.
pub fn parse_requests(
    workflow: &Workflow,
    text: &str,
) -> Result<Vec<EvaluationRequest>, Vec<FieldError>> {
    let mut requests = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at = |field: &str| format!("line {number}: {field}");
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                errors.push(FieldError::new(
                    format!("line {number}"),
                    format!("malformed JSON: {e}"),
                ));
                continue;
            }
        };
        let Some(object) = value.as_object() else {
            errors.push(FieldError::new(
                format!("line {number}"),
                "must be a JSON object",
            ));
            continue;
        };
        for key in object.keys().filter(|k| *k != "id" && *k != "config") {
            errors.push(FieldError::new(
                at(key),
                "unknown field (expected id and config)",
            ));
        }
        let id = match object.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                errors.push(FieldError::new(at("id"), "must be a non-empty string"));
                continue;
            }
            None => {
                errors.push(FieldError::new(at("id"), "missing"));
                continue;
            }
        };
        if let Some(first) = seen.insert(id.clone(), number) {
            errors.push(FieldError::new(
                at("id"),
                format!("{id:?} was already used on line {first}"),
            ));
        }
        match object.get("config") {
            None => errors.push(FieldError::new(at("config"), "missing")),
            Some(config) => match parse_config(workflow, config, &at("config")) {
                Ok(config) => requests.push(EvaluationRequest { id, config }),
                Err(mut e) => errors.append(&mut e),
            },
        }
    }
    if errors.is_empty() {
        Ok(requests)
    } else {
        Err(errors)
    }
}

/// Parses a configuration object `{"<function>": {knobs}}` for `workflow`: every function
/// exactly once, every knob present, whole and within bounds. Errors are prefixed with `prefix`.
pub fn parse_config(
    workflow: &Workflow,
    value: &Value,
    prefix: &str,
) -> Result<WorkflowConfig, Vec<FieldError>> {
    let Some(config) = value.as_object() else {
        return Err(vec![FieldError::new(
            prefix,
            "must be an object of functions",
        )]);
    };
    let mut errors = Vec::new();
    let mut named = Vec::new();
    for (function, knobs) in config {
        match parse_function_config(knobs, &format!("{prefix}.{function}")) {
            Ok(c) => named.push((function.as_str(), c)),
            Err(mut e) => errors.append(&mut e),
        }
    }
    // Unknown, missing and out-of-bounds functions; a function whose knobs were already
    // reported is not reported missing again.
    let reported: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
    let strip = |field: &str| field.strip_prefix("config.").unwrap_or(field).to_owned();
    if let Err(e) = workflow.config_from_named(named.iter().copied()) {
        for f in e.field_errors() {
            let field = format!("{prefix}.{}", strip(&f.field));
            if f.message.starts_with("missing")
                && reported.iter().any(|r| r.starts_with(&format!("{field}.")))
            {
                continue;
            }
            errors.push(FieldError::new(field, f.message.clone()));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    workflow
        .config_from_named(named)
        .map_err(|e| e.field_errors().to_vec())
}

fn parse_function_config(value: &Value, prefix: &str) -> Result<FunctionConfig, Vec<FieldError>> {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError::new(prefix, "must be an object of knobs")]);
    };
    let mut errors = Vec::new();
    for key in object.keys() {
        if !Knob::ALL.iter().any(|k| k.name() == key) {
            errors.push(FieldError::new(
                format!("{prefix}.{key}"),
                "unknown knob (cpu_millis, memory_mib, replicas, concurrency)",
            ));
        }
    }
    let mut config = FunctionConfig {
        cpu_millis: 0,
        memory_mib: 0,
        replicas: 0,
        concurrency: 0,
    };
    for knob in Knob::ALL {
        let field = format!("{prefix}.{knob}");
        match object.get(knob.name()) {
            None => errors.push(FieldError::new(field, "missing")),
            Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => config.set(knob, n),
                None => errors.push(FieldError::new(
                    field,
                    format!("{v} is not a whole number in 0..=4294967295"),
                )),
            },
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// Simulates every request (spread over `threads` threads, 0 = all cores), in input order.
pub fn evaluate(
    workflow: &Workflow,
    requests: &[EvaluationRequest],
    workload: &Workload,
    windows: u32,
    options: TwinOptions,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> crate::Result<Vec<EvaluationOutcome>> {
    workload.validate()?;
    crate::parallel::parallel_map(requests, threads, |r| {
        let outcome = evaluate_one(workflow, r, workload, windows, options);
        progress(1);
        outcome
    })
    .into_iter()
    .collect()
}

fn evaluate_one(
    workflow: &Workflow,
    request: &EvaluationRequest,
    workload: &Workload,
    windows: u32,
    options: TwinOptions,
) -> crate::Result<EvaluationOutcome> {
    let mut twin = Twin::new(
        workflow.clone(),
        request.config.clone(),
        workload.clone(),
        options,
    )?;
    twin.run_window();
    let windows = windows.max(1);
    let k = f64::from(windows);
    let mut out = EvaluationOutcome {
        id: request.id.clone(),
        e2e_mean_s: 0.0,
        e2e_p95_s: 0.0,
        success_ratio: 0.0,
        requests_total: 0.0,
        throughput_rps: 0.0,
        cost: request.config.cost(),
        functions: workflow
            .functions
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    FunctionOutcome {
                        p75_s: 0.0,
                        p95_s: 0.0,
                        cpu_util: 0.0,
                    },
                )
            })
            .collect(),
    };
    for _ in 0..windows {
        let w = twin.run_window();
        out.e2e_mean_s += w.workflow.mean_latency_seconds / k;
        out.e2e_p95_s += w.workflow.p95_latency_seconds / k;
        out.success_ratio += w.workflow.success_ratio / k;
        out.requests_total += w.workflow.total_requests as f64 / k;
        out.throughput_rps += w.workflow.throughput_rps / k;
        for (f, (spec, c)) in w
            .functions
            .iter()
            .zip(workflow.functions.iter().zip(&request.config.0))
        {
            if let Some(o) = out.functions.get_mut(&spec.name) {
                o.p75_s += f.latency_p75_seconds / k;
                o.p95_s += f.latency_p95_seconds / k;
                o.cpu_util += f.cpu_usage_percent / 100.0 / (f64::from(c.cpu_millis) / 1000.0) / k;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasconf_core::catalog::builtin;

    const GOOD: &str = r#"{"id":"r1","config":{"starter":{"cpu_millis":770,"memory_mib":1536,"replicas":4,"concurrency":4},"rgb":{"cpu_millis":1000,"memory_mib":1024,"replicas":2,"concurrency":3},"resize":{"cpu_millis":1000,"memory_mib":1024,"replicas":2,"concurrency":3},"update":{"cpu_millis":1000,"memory_mib":1024,"replicas":2,"concurrency":3},"resnet":{"cpu_millis":2000,"memory_mib":1024,"replicas":4,"concurrency":3},"mobilenet":{"cpu_millis":1500,"memory_mib":1024,"replicas":2,"concurrency":3}}}"#;

    mod fuzz {
        use faasconf_core::testing::{cases, edited};
        use proptest::prelude::*;

        use super::*;

        fn lines() -> impl Strategy<Value = String> {
            let insert = prop_oneof![
                Just("\n".to_owned()),
                Just("-1".to_owned()),
                Just("1e99".to_owned()),
                Just("\"ghost\":{}".to_owned()),
                Just(",".to_owned()),
                Just("null".to_owned()),
                Just("4294967296".to_owned()),
                ".{0,4}",
            ];
            let valid = format!("{GOOD}\n{}", GOOD.replace("\"r1\"", "\"r2\""));
            edited(valid, insert, 5)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

            /// Edited or arbitrary JSON Lines: every line a valid configuration with a unique
            /// id, or errors that name a line; never a panic.
            #[test]
            fn fuzz_evaluation_lines(text in lines()) {
                let w = builtin("parallel").unwrap();
                match parse_requests(&w, &text) {
                    Ok(requests) => {
                        let ids: std::collections::BTreeSet<&str> = requests.iter().map(|r| r.id.as_str()).collect();
                        prop_assert_eq!(ids.len(), requests.len());
                        for r in &requests {
                            for (spec, c) in w.functions.iter().zip(&r.config.0) {
                                prop_assert!(spec.bounds.check(c, "x").is_empty());
                            }
                        }
                    }
                    Err(errors) => {
                        prop_assert!(!errors.is_empty());
                        for e in &errors {
                            prop_assert!(e.field.starts_with("line "), "{e}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn good_lines_parse_and_evaluate_deterministically() {
        let w = builtin("parallel").unwrap();
        let text = format!(
            "{GOOD}\n\n{}",
            GOOD.replace("\"r1\"", "\"r2\"")
                .replace("\"cpu_millis\":2000", "\"cpu_millis\":600")
        );
        let requests = parse_requests(&w, &text).unwrap();
        assert_eq!(requests.len(), 2);
        let load = Workload::ClosedLoop { users: 10 };
        let options = TwinOptions {
            window_seconds: 30.0,
            seed: 5,
        };
        let a = evaluate(&w, &requests, &load, 2, options, 2, &|_| {}).unwrap();
        let b = evaluate(&w, &requests, &load, 2, options, 1, &|_| {}).unwrap();
        assert_eq!(a, b, "threads do not change results");
        assert_eq!(a[0].id, "r1");
        assert!(
            a[1].functions["resnet"].p75_s > a[0].functions["resnet"].p75_s,
            "less CPU, slower resnet"
        );
        assert!(a[0].functions["resnet"].cpu_util > 0.0 && a[0].e2e_mean_s > 0.0);
        assert!((a[0].cost - requests[0].config.cost()).abs() < 1e-12);
    }

    #[test]
    fn every_bad_line_is_reported_by_line_and_field() {
        let w = builtin("parallel").unwrap();
        let lines = [
            GOOD.to_owned(),
            GOOD.replace("\"starter\"", "\"ghost\""),
            GOOD.replace("\"replicas\":4,\"concurrency\":4", "\"replicas\":4"),
            GOOD.replace("\"cpu_millis\":770", "\"cpu_millis\":7700"),
            GOOD.replace("\"cpu_millis\":770", "\"cpu_millis\":\"NaN\""),
            "{not json".to_owned(),
            GOOD.replace("\"r1\"", "\"r9\"")
                .replace("\"memory_mib\":1536", "\"memory_mib\":1.5"),
            GOOD.to_owned(),
        ];
        let errors = parse_requests(&w, &lines.join("\n")).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "line 2: config.ghost",
            "line 2: config.starter",
            "line 3: config.starter.concurrency",
            "line 4: config.starter.cpu_millis",
            "line 5: config.starter.cpu_millis",
            "line 6",
            "line 7: config.starter.memory_mib",
            "line 8: id",
        ] {
            assert!(
                fields.contains(&expected),
                "missing {expected} in {fields:?}"
            );
        }
    }
}
