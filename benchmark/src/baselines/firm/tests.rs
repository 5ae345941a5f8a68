//! FIRM's parts: the critical path and its components on a window, and its DDPG agent (with
//! the published hyper-parameters) converging to a known optimum.

use super::*;
use faasconf_core::catalog;
use faasconf_twin::{Twin, TwinOptions, Workload};

fn window(workflow: &Workflow, p75: &[f64], p95: &[f64]) -> WindowReport {
    let config = workflow
        .config_from_actions(&vec![[0.5; 4]; workflow.len()])
        .expect("in bounds");
    let mut twin = Twin::new(
        workflow.clone(),
        config,
        Workload::ClosedLoop { users: 10 },
        TwinOptions {
            window_seconds: 30.0,
            seed: 1,
        },
    )
    .expect("twin");
    let mut w = twin.run_window();
    for (j, f) in w.functions.iter_mut().enumerate() {
        f.latency_p75_seconds = p75[j];
        f.latency_p95_seconds = p95[j];
    }
    w
}

#[test]
fn the_critical_path_takes_the_slow_branch_of_the_join_and_picks_its_culprits() {
    let workflow = catalog::builtin("parallel").expect("built in");
    // starter, rgb, resize, update, resnet, mobilenet
    let names = workflow.function_names();
    let at = |name: &str| names.iter().position(|n| *n == name).expect("function");
    let mut p75 = vec![1.0; 6];
    p75[at("resnet")] = 4.0;
    p75[at("mobilenet")] = 2.0;
    let mut p95 = p75.clone();
    p95[at("rgb")] = 2.0; // congested: twice its p75
    let w = window(&workflow, &p75, &p95);
    let critical = critical_components(&workflow, &w);
    assert!(
        critical.contains(&at("resnet")),
        "the slowest stage: {critical:?}"
    );
    assert!(
        critical.contains(&at("rgb")),
        "the congested one: {critical:?}"
    );
    assert!(
        !critical.contains(&at("mobilenet")),
        "off the critical path: {critical:?}"
    );
    assert!(
        !critical.contains(&at("starter")),
        "on the path, neither slow nor congested"
    );
}

#[test]
fn firms_agent_converges_to_a_known_optimum() {
    // A bandit: whatever the state, reward 1 - |a - target|^2; the optimum is the target.
    let target = [0.3, 0.6, 0.8];
    let mut learner = agent(2, 4).expect("agent");
    let mut rng = Rng::new(9);
    let state = [0.5_f32, -0.5];
    for _ in 0..3000 {
        let mut batch = Batch {
            states: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            next_states: Vec::new(),
            imitate: Vec::new(),
        };
        for _ in 0..64 {
            let a = [rng.uniform(), rng.uniform(), rng.uniform()];
            let loss: f64 = a.iter().zip(target).map(|(a, t)| (a - t).powi(2)).sum();
            batch.states.extend(state);
            batch.actions.extend(a.map(|v| v as f32));
            batch.rewards.push((1.0 - loss) as f32);
            batch.next_states.extend(state);
        }
        learner.update(&batch).expect("updates");
    }
    let chosen = learner.act(&state).expect("acts").actions;
    for (a, t) in chosen.iter().zip(target) {
        assert!((f64::from(*a) - t).abs() < 0.1, "{chosen:?} vs {target:?}");
    }
}

#[test]
fn firm_tunes_only_cpu_memory_and_replicas_of_critical_functions() {
    let workflow = catalog::builtin("parallel").expect("built in");
    let mut firm = Firm::new(
        workflow.clone(),
        Qos::default(),
        &[],
        FirmOptions {
            pretrain_updates: 0,
            ..FirmOptions::default()
        },
        3,
    )
    .expect("builds");
    let w = window(&workflow, &[1.0, 1.0, 1.0, 1.0, 4.0, 2.0], &[1.2; 6]);
    let proposal = firm.propose(&w).expect("proposes");
    let critical = critical_components(&workflow, &w);
    for j in 0..workflow.len() {
        let (before, after) = (w.config.0[j], proposal.config.0[j]);
        assert_eq!(before.concurrency, after.concurrency, "no concurrency knob");
        if !critical.contains(&j) {
            assert_eq!(before, after, "function {j} is not critical");
        }
    }
    assert_ne!(w.config, proposal.config, "the critical ones moved");
}
