//! How good a trained policy is on its own, without safe exploration or the planner: its greedy
//! decisions followed on the twin at each load, over several twin seeds.
//!
//! This is what compares learning algorithms (`attmf` against `mf`, ...): the planner and SES
//! around a policy in the service hide what the policy itself learnt.

use faasconf_core::{Qos, Workflow};
use faasconf_twin::TwinOptions;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::Model;

/// How to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateOptions {
    /// Closed-loop user levels.
    pub loads: Vec<u32>,
    /// Twin seeds per load (each a separate rollout).
    pub seeds: u64,
    /// Policy steps per rollout; the windows after the first `settle` steps are scored.
    pub steps: usize,
    /// Steps left out of the score (the policy moving away from the start).
    pub settle: usize,
    /// Window length, seconds.
    pub window_seconds: f64,
    /// QoS of the reward.
    pub qos: Qos,
    /// First twin seed.
    pub seed: u64,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        Self {
            loads: vec![10, 20, 30],
            seeds: 4,
            steps: 6,
            settle: 2,
            window_seconds: 30.0,
            qos: Qos::default(),
            seed: 0x5eed,
        }
    }
}

/// The greedy policy's record at one load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolicyScore {
    /// Closed-loop users.
    pub users: u32,
    /// Windows scored.
    pub windows: usize,
    /// Mean reward of the scored windows (cost and QoS together: higher is better).
    pub reward: f64,
    /// Mean cost of the configurations the policy chose.
    pub cost: f64,
    /// Share of the scored windows that met QoS.
    pub qos_met_share: f64,
    /// Mean end-to-end latency, seconds.
    pub e2e_mean_seconds: f64,
}

/// Follows `model`'s greedy policy from the middle configuration at each load.
pub fn evaluate_policy(
    workflow: &Workflow,
    model: &Model,
    options: &EvaluateOptions,
) -> Result<Vec<PolicyScore>, Error> {
    options.qos.validate("qos")?;
    if options.seeds == 0 {
        return Err(Error::invalid("seeds", "must be at least 1"));
    }
    if options.settle >= options.steps {
        return Err(Error::invalid(
            "settle",
            format!(
                "{} leaves no step of {} to score",
                options.settle, options.steps
            ),
        ));
    }
    let start = workflow.config_from_actions(&vec![[0.5; 4]; workflow.len()])?;
    let mut scores = Vec::with_capacity(options.loads.len());
    for &users in &options.loads {
        let (mut reward, mut cost, mut met, mut latency, mut windows) = (0.0, 0.0, 0usize, 0.0, 0);
        for k in 0..options.seeds {
            let rollout = model.rollout(
                workflow,
                start.clone(),
                users,
                options.steps,
                TwinOptions {
                    window_seconds: options.window_seconds,
                    seed: options.seed.wrapping_add(k),
                },
            )?;
            // rollout[0] is the start's window; rollout[i] follows step i.
            for w in rollout.iter().skip(1 + options.settle) {
                reward += options.qos.reward(&w.workflow);
                cost += w.workflow.cost;
                latency += w.workflow.mean_latency_seconds;
                met += usize::from(options.qos.met(&w.workflow));
                windows += 1;
            }
        }
        let n = windows.max(1) as f64;
        scores.push(PolicyScore {
            users,
            windows,
            reward: reward / n,
            cost: cost / n,
            qos_met_share: met as f64 / n,
            e2e_mean_seconds: latency / n,
        });
    }
    Ok(scores)
}
