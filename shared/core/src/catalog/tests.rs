use super::*;

fn matrix(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn tcktapp_adjacency_is_the_prototypes() {
    // From ../shared/reference/workflows.md (the prototype's matrix).
    let expected = matrix(
        "0 1 0 1 0 0 1 0 1 0 1 1
         1 0 0 0 1 1 0 1 0 1 0 0
         0 0 0 0 0 0 0 0 0 0 0 1
         1 0 0 0 1 0 0 0 0 0 0 1
         0 1 0 1 0 0 0 0 0 0 0 0
         0 1 0 0 0 0 0 0 0 0 0 0
         1 0 0 0 0 0 0 1 0 0 0 1
         0 1 0 0 0 0 1 0 0 0 0 0
         1 0 0 0 0 0 0 0 0 0 0 0
         0 1 0 0 0 0 0 0 0 0 0 0
         1 0 0 0 0 0 0 0 0 0 0 1
         1 0 1 1 0 0 1 0 0 0 1 0",
    );
    let w = builtin("tcktapp").unwrap();
    assert_eq!(w.len(), 12);
    assert_eq!(w.entry(), "get-left-trip-tickets");
    assert_eq!(w.adjacency(), expected);
}

#[test]
fn ml_workflows_have_the_documented_shapes() {
    let p = builtin("parallel").unwrap();
    assert_eq!(
        p.function_names(),
        ["starter", "rgb", "resize", "update", "resnet", "mobilenet"]
    );
    let a = p.adjacency();
    let linked = |x: usize, y: usize| a[x][y] == 1;
    assert!(linked(0, 1) && linked(1, 2) && linked(2, 3) && linked(3, 4) && linked(3, 5));
    assert!(
        !linked(4, 5),
        "resnet and mobilenet run in parallel, they do not call each other"
    );
    assert_eq!(p.edges.len(), 5);

    let b = builtin("branch").unwrap();
    assert_eq!(
        b.function_names(),
        [
            "starter",
            "rgb",
            "resize",
            "update",
            "mobilenet",
            "load",
            "resnet"
        ]
    );
    let a = b.adjacency();
    assert_eq!(a[0][1], 1);
    assert_eq!(a[0][5], 1);
    assert_eq!(a[5][6], 1);
    assert_eq!(a[4][5], 0, "the two arms are not connected");

    let s = builtin("sequential").unwrap();
    assert_eq!(s.edges.len(), 4);
    assert_eq!(
        s.functions[1].profile, p.functions[1].profile,
        "load reuses rgb's profile"
    );
}

#[test]
fn unknown_names_and_missing_files_are_clear() {
    assert!(matches!(resolve("nope"), Err(Error::UnknownWorkflow(_))));
    let err = resolve("/nonexistent/flow.yaml").unwrap_err();
    assert_eq!(err.field_errors()[0].field, "workflow");
}

#[test]
fn yaml_topology_files_load_with_defaults_and_nesting() {
    let yaml = r#"
name: shop
functions:
  - name: front
    bounds: { cpu_millis: {min: 100, max: 1000}, memory_mib: {min: 128, max: 512}, replicas: {min: 1, max: 5}, concurrency: {min: 1, max: 20} }
    profile: { cpu_core_seconds: 0.02, io_seconds: 0.01 }
  - name: cart
  - name: stock
plan:
  sequence:
    - call: { function: front, calls: { parallel: [ { call: cart }, { call: stock } ] } }
"#;
    let w = parse_topology(yaml, false, "shop.yaml").unwrap();
    assert_eq!(w.entry(), "front");
    assert_eq!(w.functions[0].bounds.replicas.max, 5);
    assert_eq!(w.functions[1].bounds, FunctionBounds::ML);
    assert_eq!(w.functions[0].profile.cpu_core_seconds, 0.02);
    assert_eq!(
        w.adjacency(),
        vec![vec![0, 1, 1], vec![1, 0, 0], vec![1, 0, 0]]
    );
}

#[test]
fn json_topology_with_explicit_edges() {
    let json = r#"{"name":"two","functions":[{"name":"a"},{"name":"b"}],
        "plan":{"sequence":[{"call":"a"},{"call":"b"}]},"edges":[{"from":"b","to":"a"}]}"#;
    let w = parse_topology(json, true, "two.json").unwrap();
    assert_eq!(w.edges.len(), 1);
    assert_eq!((w.edges[0].from, w.edges[0].to), (1, 0));
}

#[test]
fn bad_topologies_name_every_field() {
    let yaml = r#"
name: bad
functions:
  - name: a
    bounds: { cpu_millis: {min: 900, max: 100}, memory_mib: {min: 128, max: 512}, replicas: {min: 0, max: 5}, concurrency: {min: 1, max: 20} }
  - name: a
  - name: lonely
plan:
  sequence:
    - call: a
    - branch: [ { weight: -1, stage: { call: ghost } } ]
edges: [ { from: a, to: nobody } ]
"#;
    let err = parse_topology(yaml, false, "bad.yaml").unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    for expected in [
        "functions[0].bounds.cpu_millis",
        "functions[0].bounds.replicas.min",
        "functions[1].name",
        "plan.sequence[1].branch[0].weight",
        "plan.sequence[1].branch[0].stage.call",
        "functions[2]",
        "edges[0].to",
    ] {
        assert!(
            fields.contains(&expected),
            "missing {expected} in {fields:?}"
        );
    }
}

#[test]
fn unknown_keys_are_parse_errors_that_name_the_key() {
    let err = parse_topology(
        "name: x\nfunctions: [{name: a, cpu: 3}]\nplan: {call: a}\n",
        false,
        "x.yaml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("cpu"), "{err}");
}

#[test]
fn shipped_profiles_parse_and_cover_the_ml_functions() {
    let set = ProfileSet::shipped_ml();
    for f in ["starter", "rgb", "resize", "update", "resnet", "mobilenet"] {
        assert!(set.functions.contains_key(f), "{f}");
    }
}

#[test]
fn config_from_named_reports_unknown_missing_and_out_of_bounds() {
    use crate::config::FunctionConfig;
    let w = builtin("sequential").unwrap();
    let ok = FunctionConfig {
        cpu_millis: 1000,
        memory_mib: 1024,
        replicas: 2,
        concurrency: 2,
    };
    let bad = FunctionConfig { replicas: 99, ..ok };
    let err = w
        .config_from_named([
            ("starter", ok),
            ("load", bad),
            ("ghost", ok),
            ("starter", ok),
        ])
        .unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "config.load.replicas",
            "config.ghost",
            "config.starter",
            "config.resize",
            "config.update",
            "config.resnet"
        ]
    );
    let all = w
        .config_from_named(w.function_names().into_iter().map(|n| (n, ok)))
        .unwrap();
    assert_eq!(all.0.len(), 5);
    w.validate_config(&all).unwrap();
}

#[test]
fn a_topology_file_reads_back_to_the_same_workflow() {
    for name in BUILTIN {
        let mut workflow = builtin(name).expect("built in");
        workflow.functions[0].profile.cpu_core_seconds *= 1.37;
        workflow.platform.user_think_seconds = 0.7;
        let text = topology_file(&workflow).to_string();
        let back = parse_topology(&text, true, "test").expect("reads back");
        assert_eq!(back, workflow, "{name}");
    }
}

#[test]
fn a_workflow_within_announced_bounds_plans_inside_them() {
    let w = builtin("parallel").unwrap();
    let capped: Vec<_> = w
        .functions
        .iter()
        .map(|f| f.bounds.with_max_replicas(5))
        .collect();
    let narrowed = w.within(&capped, "bounds").unwrap();
    assert!(
        narrowed
            .functions
            .iter()
            .all(|f| f.bounds.replicas.max == 5)
    );
    let top = narrowed
        .config_from_actions(&vec![[1.0; 4]; w.len()])
        .unwrap();
    assert!(top.0.iter().all(|c| c.replicas == 5));
    let err = w.within(&capped[1..], "bounds").unwrap_err();
    assert_eq!(err.field_errors()[0].field, "bounds");
    let mut disjoint = capped.clone();
    disjoint[1].cpu_millis = crate::config::Range::new(4000, 5000);
    let err = w.within(&disjoint, "bounds").unwrap_err();
    assert_eq!(err.field_errors()[0].field, "bounds[1].cpu_millis");
}

#[test]
fn a_topology_file_carries_its_qos_target_outside_the_twin() {
    let base =
        "name: shop\nfunctions: [{name: a}, {name: b}]\nplan: {sequence: [{call: a}, {call: b}]}\n";
    let plain = parse_topology(base, false, "shop.yaml").unwrap();
    assert_eq!(plain.qos, None);
    assert_eq!(plain.qos(), Qos::default());
    let with = parse_topology(
        &format!("{base}qos: {{mean_latency_seconds: 2.5}}\n"),
        false,
        "shop.yaml",
    )
    .unwrap();
    assert_eq!(
        with.qos(),
        Qos {
            mean_latency_seconds: 2.5,
            min_success_ratio: 0.9
        }
    );
    // The target is not the twin: samples and models are shared.
    assert_eq!(with.fingerprint(), plain.fingerprint());
    let back = parse_topology(&topology_file(&with).to_string(), true, "back").unwrap();
    assert_eq!(back, with);
    // Bad targets name the field; a misspelt key is named by the parser.
    let err = parse_topology(
        &format!("{base}qos: {{mean_latency_seconds: -1, min_success_ratio: 1.5}}\n"),
        false,
        "shop.yaml",
    )
    .unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(fields, ["qos.mean_latency", "qos.min_success_ratio"]);
    let err = parse_topology(
        &format!("{base}qos: {{mean_latency_ms: 2500}}\n"),
        false,
        "x",
    )
    .unwrap_err();
    assert!(err.to_string().contains("mean_latency_ms"), "{err}");
}

#[test]
fn built_in_workflows_carry_the_reference_targets() {
    let target = |name: &str| builtin(name).unwrap().qos().mean_latency_seconds;
    assert_eq!(target("sequential"), 12.0);
    assert_eq!(target("tcktapp"), 15.0);
    assert_eq!(target("parallel"), 13.0);
    assert_eq!(target("branch"), 13.0);
}
