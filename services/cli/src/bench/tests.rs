use super::*;
use std::path::PathBuf;

fn args() -> BenchArgs {
    BenchArgs {
        experiment: Experiment::Rq1,
        quick: true,
        out: PathBuf::from("out"),
        seeds: Vec::new(),
        methods: Vec::new(),
        workflows: Vec::new(),
        loads: Vec::new(),
        shape: None,
        functions: Vec::new(),
    }
}

#[test]
fn flags_narrow_the_grid() {
    let options = grid_options(&BenchArgs {
        workflows: vec!["tcktapp".into()],
        seeds: vec![4, 5],
        methods: vec!["faasconf".into(), "rambo".into()],
        ..args()
    })
    .expect("valid");
    assert_eq!(
        options.grid,
        vec![("tcktapp".to_owned(), loads_of("tcktapp"))]
    );
    assert_eq!(options.seeds, vec![4, 5]);
    assert_eq!(options.methods, vec![Method::FAASCONF, Method::Rambo]);
    let loads = grid_options(&BenchArgs {
        loads: vec![12],
        ..args()
    })
    .expect("valid");
    assert_eq!(loads.grid, vec![("parallel".to_owned(), vec![12])]);
}

#[test]
fn rq2_and_speed_refuse_the_flags_they_do_not_take() {
    let e = rq2_options(&BenchArgs {
        experiment: Experiment::Rq2,
        loads: vec![10],
        ..args()
    })
    .expect_err("rq2 follows the trace");
    assert!(e.to_string().contains("--loads"), "{e}");
    let e = rq2_options(&BenchArgs {
        experiment: Experiment::Rq2,
        workflows: vec!["parallel".into(), "branch".into()],
        ..args()
    })
    .expect_err("one workflow");
    assert!(e.to_string().contains("--workflows"), "{e}");
    let o = rq2_options(&BenchArgs {
        experiment: Experiment::Rq2,
        workflows: vec!["branch".into()],
        methods: vec!["faasconf".into(), "firm".into()],
        ..args()
    })
    .expect("valid");
    assert_eq!(o.workflow, "branch");
    assert_eq!(o.methods, vec![Method::FAASCONF, Method::Firm]);
    let e = run_speed(&BenchArgs {
        experiment: Experiment::Speed,
        methods: vec!["firm".into()],
        ..args()
    })
    .expect_err("speed has no methods");
    assert!(e.to_string().contains("speed takes"), "{e}");
}

#[test]
fn rq3_narrows_to_the_middle_load_of_each_workflow() {
    let o = grid_options(&BenchArgs {
        experiment: Experiment::Rq3,
        quick: false,
        workflows: vec!["tcktapp".into()],
        ..args()
    })
    .expect("valid");
    assert_eq!(o.grid, vec![("tcktapp".to_owned(), vec![30])]);
    assert_eq!(o.methods.len(), 9);
}

#[test]
fn results_take_each_report_present_and_name_the_command_of_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("rq2")).expect("dir");
    std::fs::write(
        dir.path().join("rq2/rq2.md"),
        "# rq2: dynamic load\n\n| method |\n|---|\n| faasconf |\n",
    )
    .expect("written");
    let md = results(dir.path());
    assert!(md.contains("## rq2: dynamic load\n"), "{md}");
    assert!(md.contains("| faasconf |"), "{md}");
    assert!(
        md.contains("Not run yet: `faasconf bench rq1 --out"),
        "{md}"
    );
    assert!(
        md.contains("Not run yet: `faasconf bench speed --out"),
        "{md}"
    );
}

#[test]
fn results_summarise_a_grid_run_in_progress_from_its_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cell = |method: &str, best: Option<f64>| {
        let cell = faasconf_benchmark::protocol::CellResult {
            workflow: "parallel".into(),
            users: 20,
            method: method.into(),
            seed: 0,
            best_cost: best,
            best_config: None,
            feasible: best.is_some(),
            violations: 2,
            iterations_to_feasible: best.map(|_| 1),
            decision_seconds: 1.0,
            wall_seconds: 1.0,
            iterations: Vec::new(),
            held: None,
        };
        serde_json::json!({ "cell": cell }).to_string()
    };
    let options = serde_json::json!({ "options": Rq1Options::quick() }).to_string();
    let search = r#"{"search":{"workflow":"parallel","users":20,"cost":4.0,"seconds":9.0}}"#;
    let journal = [
        options,
        search.to_owned(),
        cell("faasconf", Some(3.0)),
        cell("firm", Some(4.0)),
    ]
    .join("\n");
    std::fs::create_dir_all(dir.path().join("rq1")).expect("dir");
    std::fs::write(dir.path().join("rq1/rq1.journal.jsonl"), journal + "\n").expect("written");
    std::fs::create_dir_all(dir.path().join("rq2")).expect("dir");
    std::fs::write(
        dir.path().join("rq2/rq2.journal.jsonl"),
        format!("{search}\n"),
    )
    .expect("written");
    std::fs::create_dir_all(dir.path().join("rq3")).expect("dir");
    std::fs::write(dir.path().join("rq3/rq3.journal.jsonl"), "not json\n").expect("written");
    let md = results(dir.path());
    assert!(md.contains("### rq1 in progress (interim)"), "{md}");
    assert!(
        md.contains("2 of 5 cells finished, 1 oracle searches"),
        "{md}"
    );
    // faasconf 3.0 against firm's 4.0 on the same cell: 25% cheaper; 25% below the search.
    assert!(
        md.contains("| parallel | firm | 1/1 | 4.000 | +25.0% (1) |"),
        "{md}"
    );
    assert!(
        md.contains("| parallel | faasconf | 1/1 | 3.000 | – (0) | -25.0% |"),
        "{md}"
    );
    assert!(
        md.contains("in progress, 1 oracle searches and 0 (method, seed) runs journalled"),
        "{md}"
    );
    assert!(
        md.contains("in progress, but its journal is unreadable: journal") && md.contains("line 1"),
        "{md}"
    );
}

#[test]
fn unknown_methods_and_workflows_name_their_flag() {
    let e = grid_options(&BenchArgs {
        methods: vec!["simplex".into()],
        ..args()
    })
    .expect_err("unknown method");
    assert!(
        e.to_string().contains("--methods") && e.to_string().contains("simplex"),
        "{e}"
    );
    let e = grid_options(&BenchArgs {
        workflows: vec!["nope".into()],
        ..args()
    })
    .expect_err("unknown workflow");
    assert!(format!("{e:#}").contains("--workflows nope"), "{e:#}");
}

#[test]
fn a_shape_is_for_rq2_and_must_be_known() {
    let rq2 = |shape: &str| BenchArgs {
        experiment: Experiment::Rq2,
        shape: Some(shape.into()),
        ..args()
    };
    let options = rq2_options(&rq2("steps")).unwrap();
    assert_eq!(options.shape, faasconf_benchmark::rq2::Shape::Steps);
    let e = rq2_options(&rq2("flat")).unwrap_err().to_string();
    assert!(e.contains("--shape") && e.contains("periodic"), "{e}");
    let e = bench(&BenchArgs {
        shape: Some("steps".into()),
        ..args()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("only rq2"), "{e}");
}

#[test]
fn scale_narrows_to_shapes_and_sizes_and_names_what_it_refuses() {
    let scale = |workflows: &[&str], functions: &[usize]| BenchArgs {
        experiment: Experiment::Scale,
        quick: false,
        workflows: workflows.iter().map(|w| (*w).to_owned()).collect(),
        functions: functions.to_vec(),
        ..args()
    };
    let options = scale::scale_options(&scale(&["mixed"], &[100])).expect("valid");
    assert_eq!(options.shapes, vec![faasconf_core::synthetic::Shape::Mixed]);
    assert_eq!(options.sizes, vec![100]);
    let full = scale::scale_options(&scale(&[], &[])).expect("valid");
    assert_eq!(full.sizes, vec![25, 50, 100]);
    let e = scale::scale_options(&scale(&["ring"], &[])).expect_err("unknown shape");
    assert!(e.to_string().contains("--workflows"), "{e}");
    let e = scale::scale_options(&scale(&[], &[500])).expect_err("too large");
    assert!(e.to_string().contains("--functions: 500"), "{e}");
    let e = bench(&BenchArgs {
        functions: vec![50],
        ..args()
    })
    .expect_err("rq1 has no sizes");
    assert!(e.to_string().contains("--functions"), "{e}");
}
