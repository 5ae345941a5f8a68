//! The planner's tests.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::search::{Evaluation, Steady};
use checks::check_and_choose;
use faasconf_core::catalog::builtin;
use faasconf_training::{SampleOptions, TrainOptions, train, twin_samples};
use faasconf_twin::{Twin, TwinOptions, Workload};

/// A small model of `workflow`, quickly trained on the twin (for tests).
pub(crate) fn model(workflow: &Workflow) -> Model {
    let obs = twin_samples(
        workflow,
        &SampleOptions {
            samples: 60,
            episode_length: 10,
            ..SampleOptions::default()
        },
        &|_| {},
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        updates: 20,
        online_steps: 0,
        evaluate_every: 0,
        ..TrainOptions::default()
    };
    train(
        workflow,
        &obs,
        &options,
        dir.path(),
        faasconf_agents::default_device(),
        &mut |_| {},
    )
    .unwrap()
    .0
}

/// The first twin window of `workflow` at 10 users, every knob of every function at `level`.
fn first_window(workflow: &Workflow, level: f64) -> WindowReport {
    let start = workflow
        .config_from_actions(&vec![[level; 4]; workflow.len()])
        .unwrap();
    Twin::new(
        workflow.clone(),
        start,
        Workload::ClosedLoop { users: 10 },
        TwinOptions::default(),
    )
    .unwrap()
    .run_window()
}

/// A decision's input on `workflow` at 10 closed-loop users, nothing to avoid.
fn at_ten_users<'a>(
    workflow: &'a Workflow,
    window: &'a WindowReport,
    qos: &'a Qos,
    incumbent: Option<&'a WorkflowConfig>,
    memo: Option<&'a Arc<Memo>>,
) -> PlanInput<'a> {
    PlanInput {
        workflow,
        window,
        users: 10,
        arrivals_per_second: None,
        qos,
        incumbent,
        avoid: &[],
        memo,
    }
}

#[test]
fn screening_returns_a_twin_verdict_no_worse_than_the_policy_alone() {
    let w = builtin("parallel").unwrap();
    let m = model(&w);
    let window = first_window(&w, 0.5);
    let qos = Qos::default();
    let mut rng = Rng::new(1);
    let alone = plan(
        &at_ten_users(&w, &window, &qos, None, None),
        &m,
        PlanState {
            explorer: None,
            confirmations: &mut Tally::default(),
            rng: &mut rng,
            cancel: &Default::default(),
        },
        &PlanOptions {
            screen: false,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(alone.verdict, None);
    assert_eq!(
        alone.config,
        Model::config_of(&w, &m.decide(&w, &window).unwrap()).unwrap(),
        "unscreened, the policy's own action"
    );
    assert_eq!(alone.weights.len(), w.len() * w.len());
    let options = PlanOptions {
        candidates: 4,
        refine_budget: 60,
        screen_windows: 3,
        holdout_seeds: 2,
        holdout_windows: 4,
        ..PlanOptions::default()
    };
    let mut confirmations = Tally::default();
    let screened = plan(
        &at_ten_users(&w, &window, &qos, Some(&alone.config), None),
        &m,
        PlanState {
            explorer: None,
            confirmations: &mut confirmations,
            rng: &mut rng,
            cancel: &Default::default(),
        },
        &options,
    )
    .unwrap();
    let verdict = screened.verdict.unwrap();
    assert!((verdict.cost - screened.config.cost()).abs() < 1e-9);
    assert!(
        screened.screened >= 5,
        "4 candidates and the incumbent at least: {}",
        screened.screened
    );
    // The incumbent was a candidate and, when acceptable, is checked on the held-out and
    // the confirmation seeds too: when it passes all three, what is chosen is no dearer.
    let on = |seeds: Vec<u64>, windows| {
        Evaluation {
            arrivals_per_second: None,
            users: 10,
            windows,
            seeds,
            window_seconds: window.duration_seconds,
            threads: 0,
            qos,
            cancel: Default::default(),
            memo: None,
        }
        .steady(&w, &alone.config)
    };
    let screening = on(
        (0..options.screen_seeds)
            .map(|k| options.twin_seed + k)
            .collect(),
        options.screen_windows,
    );
    let holdout = on(
        (0..options.holdout_seeds)
            .map(|k| options.twin_seed + 1000 + k)
            .collect(),
        options.holdout_windows,
    );
    let ok = |s: &Steady, bar: f64| s.feasible(&qos) && s.pass_rate() >= bar;
    let confirmed = confirmations
        .pass_rate(&alone.config)
        .is_some_and(|r| r >= options.confirm_pass_rate);
    if ok(&screening, options.screen_pass_rate) && ok(&holdout, options.pass_rate) && confirmed {
        assert!(
            verdict.cost <= alone.config.cost() + 1e-9,
            "{} > {}",
            verdict.cost,
            alone.config.cost()
        );
    }
    if verdict.qos_met {
        assert!(
            screened.expected_pass_rate.is_some(),
            "a held-out pass rate comes with a screened choice"
        );
    }
    // A configuration the session has seen fail is not chosen again.
    let avoided = plan(
        &PlanInput {
            workflow: &w,
            window: &window,
            users: 10,
            arrivals_per_second: None,
            qos: &qos,
            incumbent: Some(&screened.config),
            avoid: std::slice::from_ref(&screened.config),
            memo: None,
        },
        &m,
        PlanState {
            explorer: None,
            confirmations: &mut confirmations,
            rng: &mut rng,
            cancel: &Default::default(),
        },
        &options,
    )
    .unwrap();
    assert_ne!(avoided.config, screened.config);
}

#[test]
fn the_configuration_applied_stays_while_its_record_holds_and_a_confirmed_cheaper_one_replaces_it()
{
    let w = builtin("parallel").unwrap();
    let qos = Qos::default();
    // Low bars, so that whether a generous configuration passes the held-out check does not
    // hang on a window's noise; the records decide.
    let options = PlanOptions {
        pass_rate: 0.6,
        confirm_pass_rate: 0.6,
        holdout_seeds: 2,
        holdout_windows: 10,
        confirm_seeds: 1,
        confirm_windows: 10,
        ..PlanOptions::default()
    };
    let evaluation = Evaluation {
        arrivals_per_second: None,
        users: 10,
        windows: 5,
        seeds: vec![1, 2],
        window_seconds: 30.0,
        threads: 0,
        qos,
        cancel: Default::default(),
        memo: None,
    };
    let generous = w
        .config_from_actions(&vec![[1.0, 1.0, 0.3, 0.5]; w.len()])
        .unwrap();
    let cheaper = w
        .config_from_actions(&vec![[0.9, 0.9, 0.3, 0.5]; w.len()])
        .unwrap();
    assert!(cheaper.cost() < generous.cost());
    let visited: Vec<(WorkflowConfig, Steady, Option<usize>)> = [&cheaper, &generous]
        .iter()
        .map(|c| ((*c).clone(), evaluation.steady(&w, c), None))
        .collect();
    let choose = |records: [(u32, u32); 2], current: &WorkflowConfig| {
        let mut tally = Tally::default();
        tally.add(&cheaper, records[0].0, records[0].1);
        tally.add(&generous, records[1].0, records[1].1);
        let anchors = [current.clone()];
        let screen = Screen {
            workflow: &w,
            evaluation: evaluation.clone(),
            strict: qos,
            options: &options,
            cancel: &Default::default(),
            misses: None,
        };
        let (choice, _, _) = check_and_choose(
            &screen,
            &visited,
            &anchors,
            current,
            &mut tally,
            &mut Rng::new(3),
        );
        choice.map(|(k, _)| k)
    };
    // A cheaper configuration confirmed again and again replaces the one applied now.
    assert_eq!(choose([(1000, 0), (1000, 0)], &generous), Some(0));
    // One that kept failing its confirmations does not.
    assert_eq!(choose([(0, 1000), (1000, 0)], &generous), Some(1));
    // The one applied now stays while its record is above the bar less the slack (0.57 >
    // 0.55), though under the bar a newcomer must clear (0.6).
    assert_eq!(choose([(570, 430), (1000, 0)], &cheaper), Some(0));
    // Below the slack it is given up for one whose record passes.
    assert_eq!(choose([(400, 600), (1000, 0)], &cheaper), Some(1));
}

#[test]
fn a_decision_where_an_earlier_one_screened_reuses_its_ground_and_simulates_less() {
    let w = builtin("parallel").unwrap();
    let m = model(&w);
    let window = first_window(&w, 0.6);
    let qos = Qos::default();
    let options = PlanOptions {
        candidates: 4,
        random_starts: 8,
        refine_budget: 90,
        screen_windows: 3,
        holdout_seeds: 2,
        holdout_windows: 4,
        confirm_seeds: 1,
        confirm_windows: 4,
        ..PlanOptions::default()
    };
    let memo = Arc::new(Memo::new());
    let mut rng = Rng::new(5);
    let mut confirmations = Tally::default();
    let mut decide = |memo: Option<&Arc<Memo>>, incumbent: Option<&WorkflowConfig>| {
        plan(
            &at_ten_users(&w, &window, &qos, incumbent, memo),
            &m,
            PlanState {
                explorer: None,
                confirmations: &mut confirmations,
                rng: &mut rng,
                cancel: &Default::default(),
            },
            &options,
        )
        .unwrap()
    };
    let first = decide(Some(&memo), None);
    assert_eq!(first.reused_windows, 0, "nothing to remember yet");
    assert!(first.twin_windows > 0);
    let second = decide(Some(&memo), Some(&first.config));
    assert!(second.reused_windows > 0, "{second:?}");
    assert!(
        second.twin_windows < first.twin_windows,
        "a warm decision simulates less: {} then {}",
        first.twin_windows,
        second.twin_windows
    );
    // Without a memo every window judged is simulated.
    let cold = decide(None, Some(&first.config));
    assert_eq!(cold.reused_windows, 0);
    assert!(cold.twin_windows > second.twin_windows);
}
